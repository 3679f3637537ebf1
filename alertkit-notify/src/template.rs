//! The words of a notification: subject, plain text and HTML, from the
//! alert's fields and a link back to the app.

use alertkit_core::{Alert, Digest, DigestBatch, Notification, Severity};

/// Renders notifications. `Template::default()` links nowhere; give it the
/// app's base URL to add a link to each alert (`{app_url}/alerts/{id}`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Template {
    app_url: Option<String>,
}

impl Template {
    /// A template linking alerts under `app_url` (e.g. `https://alerts.example.com`).
    pub fn with_app_url(app_url: impl Into<String>) -> Self {
        Template {
            app_url: Some(app_url.into().trim_end_matches('/').to_owned()),
        }
    }

    /// The link to an alert, when an app URL is set.
    pub fn link(&self, alert: &Alert) -> Option<String> {
        self.app_url
            .as_ref()
            .map(|base| format!("{base}/alerts/{}", alert.id))
    }

    /// `[HIGH] VCH20 near capacity` (one line, control characters removed).
    pub fn subject(&self, alert: &Alert) -> String {
        let title: String = alert.title.chars().filter(|c| !c.is_control()).collect();
        format!("[{}] {title}", alert.severity.as_str().to_uppercase())
    }

    /// The plain-text body.
    pub fn text(&self, alert: &Alert) -> String {
        let mut out = format!(
            "{}\n\n{}\n\nType: {}\nSeverity: {}\n",
            alert.title,
            alert.message,
            alert.alert_type,
            alert.severity.as_str()
        );
        if !alert.tags.is_empty() {
            out.push_str(&format!("Tags: {}\n", alert.tags.join(", ")));
        }
        out.push_str(&format!(
            "Raised: {}\n",
            alert.created_at.format("%Y-%m-%d %H:%M UTC")
        ));
        if alert.occurrences > 1 {
            out.push_str(&format!("Occurrences: {}\n", alert.occurrences));
        }
        if let Some(link) = self.link(alert) {
            out.push_str(&format!("\n{link}\n"));
        }
        out
    }

    /// The HTML body (every field escaped).
    pub fn html(&self, alert: &Alert) -> String {
        let e = escape;
        let mut out = format!(
            "<!doctype html><html><body style=\"font-family:sans-serif\">\
             <h2 style=\"border-left:6px solid {};padding-left:8px\">{}</h2>\
             <p>{}</p><table>\
             <tr><th align=\"left\">Type</th><td>{}</td></tr>\
             <tr><th align=\"left\">Severity</th><td>{}</td></tr>",
            colour(alert.severity),
            e(&alert.title),
            e(&alert.message).replace('\n', "<br>"),
            e(&alert.alert_type),
            alert.severity.as_str()
        );
        if !alert.tags.is_empty() {
            out.push_str(&format!(
                "<tr><th align=\"left\">Tags</th><td>{}</td></tr>",
                e(&alert.tags.join(", "))
            ));
        }
        out.push_str("</table>");
        if let Some(link) = self.link(alert) {
            out.push_str(&format!(
                "<p><a href=\"{}\">Open in the app</a></p>",
                e(&link)
            ));
        }
        out.push_str("</body></html>");
        out
    }
}

impl Template {
    /// The subject of a notification: [`subject`](Self::subject) for one
    /// alert, [`digest_subject`](Self::digest_subject) for a digest.
    pub fn subject_of(&self, n: &Notification) -> String {
        match &n.digest {
            Some(d) => self.digest_subject(d),
            None => self.subject(&n.alert),
        }
    }

    /// The plain-text body of a notification (one alert or a digest).
    pub fn text_of(&self, n: &Notification) -> String {
        match &n.digest {
            Some(d) => self.digest_text(d),
            None => self.text(&n.alert),
        }
    }

    /// The HTML body of a notification (one alert or a digest).
    pub fn html_of(&self, n: &Notification) -> String {
        match &n.digest {
            Some(d) => self.digest_html(d),
            None => self.html(&n.alert),
        }
    }

    /// `Daily digest: 3 alerts (1 critical, 2 high)`.
    pub fn digest_subject(&self, d: &DigestBatch) -> String {
        let period = match d.period {
            Digest::Hourly => "Hourly",
            Digest::Daily => "Daily",
        };
        let n = d.alerts.len();
        let mut counts: Vec<String> = Vec::new();
        for sev in Severity::ALL.iter().rev() {
            let c = d.alerts.iter().filter(|a| a.severity == *sev).count();
            if c > 0 {
                counts.push(format!("{c} {}", sev.as_str()));
            }
        }
        format!(
            "{period} digest: {n} alert{} ({})",
            if n == 1 { "" } else { "s" },
            counts.join(", ")
        )
    }

    /// The plain-text digest: one line per alert, highest severity first.
    pub fn digest_text(&self, d: &DigestBatch) -> String {
        let mut out = format!("{}\n\n", self.digest_subject(d));
        for a in &d.alerts {
            let title: String = a.title.chars().filter(|c| !c.is_control()).collect();
            out.push_str(&format!(
                "- [{}] {title} ({}, {})\n",
                a.severity.as_str().to_uppercase(),
                a.alert_type,
                a.created_at.format("%Y-%m-%d %H:%M UTC")
            ));
            if let Some(link) = self.link(a) {
                out.push_str(&format!("  {link}\n"));
            }
        }
        out
    }

    /// The HTML digest: a table of the alerts, every field escaped.
    pub fn digest_html(&self, d: &DigestBatch) -> String {
        let e = escape;
        let mut out = format!(
            "<!doctype html><html><body style=\"font-family:sans-serif\"><h2>{}</h2><table>\
             <tr><th align=\"left\">Severity</th><th align=\"left\">Alert</th>\
             <th align=\"left\">Type</th><th align=\"left\">Raised (UTC)</th></tr>",
            e(&self.digest_subject(d))
        );
        for a in &d.alerts {
            let title = match self.link(a) {
                Some(link) => format!("<a href=\"{}\">{}</a>", e(&link), e(&a.title)),
                None => e(&a.title),
            };
            out.push_str(&format!(
                "<tr><td style=\"border-left:6px solid {};padding-left:6px\">{}</td>\
                 <td>{title}</td><td>{}</td><td>{}</td></tr>",
                colour(a.severity),
                a.severity.as_str(),
                e(&a.alert_type),
                a.created_at.format("%Y-%m-%d %H:%M")
            ));
        }
        out.push_str("</table></body></html>");
        out
    }
}

/// The colour of a severity (Slack attachments, the HTML border).
pub fn colour(s: Severity) -> &'static str {
    match s {
        Severity::Info => "#439FE0",
        Severity::Low => "#2EB67D",
        Severity::Medium => "#ECB22E",
        Severity::High => "#E8912D",
        Severity::Critical => "#E01E5A",
    }
}

/// Escapes text for HTML element content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use alertkit_core::{AlertId, Audience, NewAlert};

    #[test]
    fn renders_fields_escaped_with_a_link() {
        let a = NewAlert::new(
            "capacity_warning",
            Severity::High,
            "VCH20 <b>near</b> capacity",
        )
        .message("95% by 14:00 & rising")
        .tags(["VCH20"])
        .into_alert(AlertId::new(), chrono::Utc::now(), || Audience::user("u"))
        .unwrap();
        let t = Template::with_app_url("https://alerts.test/");
        assert_eq!(t.subject(&a), "[HIGH] VCH20 <b>near</b> capacity");
        let text = t.text(&a);
        assert!(text.contains("95% by 14:00 & rising") && text.contains("Tags: VCH20"));
        assert!(text.contains(&format!("https://alerts.test/alerts/{}", a.id)));
        let html = t.html(&a);
        assert!(html.contains("VCH20 &lt;b&gt;near&lt;/b&gt; capacity"));
        assert!(html.contains("95% by 14:00 &amp; rising"));
        assert!(!html.contains("<b>near"));
        assert!(Template::default().link(&a).is_none());
    }
}
