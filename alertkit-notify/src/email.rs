//! [`EmailNotifier`]: multipart (text + HTML) email over pooled SMTP (lettre).
//!
//! The server comes as a URL:
//!
//! | URL | transport |
//! |---|---|
//! | `smtps://user:pass@host:465` | implicit TLS |
//! | `smtp://user:pass@host:587?tls=required` | STARTTLS, required |
//! | `smtp://127.0.0.1:2525` | plain: only to a loopback host |
//!
//! Each message's `Message-ID` is derived from the delivery id
//! (`<{delivery id}@alertkit>`), so a resend after a crash carries the same
//! id and mail systems and people can recognise it. SMTP 4xx answers and
//! connection failures are retried; 5xx answers (bad address, refused) are
//! permanent.

use alertkit_core::{Channel, Error, Notification, Notifier, Result};
use async_trait::async_trait;
use lettre::message::{Mailbox, MultiPart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::template::Template;

/// Sends each notification as an email; see the [module docs](self).
#[derive(Clone)]
pub struct EmailNotifier {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    template: Template,
}

impl std::fmt::Debug for EmailNotifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmailNotifier")
            .field("from", &self.from.to_string())
            .field("server", &"<redacted>")
            .finish()
    }
}

/// The host of an SMTP URL (after any `user:pass@`, before `:port`, `/`, `?`).
fn host_of(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let rest = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let hostport = &rest[..end];
    let host = if let Some(v6) = hostport.strip_prefix('[') {
        v6.split(']').next()?
    } else {
        hostport.split(':').next()?
    };
    Some(host)
}

fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

impl EmailNotifier {
    /// A notifier sending through the SMTP server at `url` (see the module
    /// docs) from `from` (`"Alerts <alerts@example.com>"` or a bare
    /// address). [`Error::Invalid`] names what is wrong: a bad URL or
    /// address, or plain SMTP to a host that is not loopback. Must be called
    /// inside a Tokio runtime (the connection pool runs a task there).
    pub fn from_url(url: &str, from: &str) -> Result<Self> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(Error::invalid(
                "EmailNotifier must be created inside a Tokio runtime",
            ));
        }
        let scheme = url.split_once("://").map(|(s, _)| s).unwrap_or("");
        let host = host_of(url).ok_or_else(|| Error::invalid("SMTP URL has no host"))?;
        let plain = scheme == "smtp" && !url.contains("tls=");
        if plain && !is_loopback(host) {
            return Err(Error::invalid(format!(
                "plain SMTP to {host} would send passwords and mail unencrypted; \
                 use smtps:// or smtp://…?tls=required (plain is only for loopback)"
            )));
        }
        if scheme != "smtp" && scheme != "smtps" {
            return Err(Error::invalid(format!(
                "SMTP URL scheme `{scheme}` is not smtp or smtps"
            )));
        }
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| Error::invalid(format!("SMTP URL: {e}")))?
            .timeout(Some(std::time::Duration::from_secs(15)))
            .build();
        let from: Mailbox = from
            .parse()
            .map_err(|e| Error::invalid(format!("sender address `{from}`: {e}")))?;
        Ok(EmailNotifier {
            transport,
            from,
            template: Template::default(),
        })
    }

    /// A `/health` check (`smtp`) that this notifier's server answers: an
    /// SMTP greeting and `NOOP` at most every 30 s (between probes the last
    /// answer is reported, with its age), so a busy `/health` does not
    /// flood the mail server. Unreachable is `degraded`: emails wait in the
    /// outbox meanwhile.
    pub fn health_check(&self) -> SmtpHealth {
        SmtpHealth {
            transport: self.transport.clone(),
            last: std::sync::Arc::new(tokio::sync::Mutex::new(None)),
        }
    }

    /// The template for subject and bodies.
    pub fn template(mut self, template: Template) -> Self {
        self.template = template;
        self
    }

    /// The message for one notification.
    pub fn message(&self, n: &Notification) -> Result<Message> {
        let to = n.recipient.email.as_deref().ok_or_else(|| {
            Error::invalid(format!("{} has no email address", n.recipient.user_id))
        })?;
        // A team route's list arrives as `a@x, b@y`.
        let mut builder = Message::builder().from(self.from.clone());
        for addr in to.split(',').map(str::trim).filter(|a| !a.is_empty()) {
            let mailbox: Mailbox = addr
                .parse()
                .map_err(|e| Error::invalid(format!("email address `{addr}`: {e}")))?;
            builder = builder.to(mailbox);
        }
        builder
            .subject(self.template.subject_of(n))
            .message_id(Some(format!("<{}@alertkit>", n.id)))
            .multipart(MultiPart::alternative_plain_html(
                self.template.text_of(n),
                self.template.html_of(n),
            ))
            .map_err(|e| Error::invalid(format!("email: {e}")))
    }
}

#[async_trait]
impl Notifier for EmailNotifier {
    fn channel(&self) -> Channel {
        Channel::Email
    }

    async fn notify(&self, n: &Notification) -> Result<()> {
        let message = self.message(n)?;
        match self.transport.send(message).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_permanent() => Err(Error::invalid(format!("SMTP refused: {e}"))),
            Err(e) if e.is_timeout() => Err(Error::Timeout(format!("SMTP: {e}"))),
            Err(e) => Err(Error::Unavailable(format!("SMTP: {e}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outside_a_runtime_is_an_error_not_a_panic() {
        assert!(EmailNotifier::from_url("smtp://127.0.0.1:2525", "a@b.test").is_err());
    }

    #[tokio::test]
    async fn urls_are_checked() {
        assert_eq!(host_of("smtp://u:p@127.0.0.1:2525"), Some("127.0.0.1"));
        assert_eq!(
            host_of("smtps://mail.example.com"),
            Some("mail.example.com")
        );
        assert_eq!(host_of("smtp://[::1]:25?x"), Some("::1"));
        assert!(EmailNotifier::from_url("smtp://127.0.0.1:2525", "a@b.test").is_ok());
        assert!(EmailNotifier::from_url("smtp://localhost:2525", "a@b.test").is_ok());
        let plain = EmailNotifier::from_url("smtp://u:p@mail.example.com:25", "a@b.test");
        assert!(plain.unwrap_err().to_string().contains("unencrypted"));
        assert!(
            EmailNotifier::from_url("smtp://mail.example.com:587?tls=required", "a@b.test").is_ok()
        );
        assert!(EmailNotifier::from_url("smtps://mail.example.com", "a@b.test").is_ok());
        assert!(EmailNotifier::from_url("http://mail.example.com", "a@b.test").is_err());
        assert!(EmailNotifier::from_url("smtp://127.0.0.1:2525", "not an address").is_err());
    }
}

/// Whether an SMTP server answers; from [`EmailNotifier::health_check`].
#[derive(Clone)]
pub struct SmtpHealth {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    last: std::sync::Arc<tokio::sync::Mutex<Option<Probe>>>,
}

/// When the SMTP server was last probed, and what went wrong if anything.
type Probe = (std::time::Instant, Option<String>);

impl std::fmt::Debug for SmtpHealth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpHealth").finish_non_exhaustive()
    }
}

/// How long an SMTP probe's answer is reused.
const SMTP_PROBE_EVERY: std::time::Duration = std::time::Duration::from_secs(30);

#[async_trait]
impl alertkit_core::HealthCheck for SmtpHealth {
    fn name(&self) -> &str {
        "smtp"
    }

    async fn check(&self) -> alertkit_core::ComponentHealth {
        // One probe at a time; the others wait for its answer.
        let mut last = self.last.lock().await;
        let fresh = last
            .as_ref()
            .is_some_and(|(at, _)| at.elapsed() < SMTP_PROBE_EVERY);
        if !fresh {
            let outcome = match tokio::time::timeout(
                std::time::Duration::from_secs(5),
                self.transport.test_connection(),
            )
            .await
            {
                Ok(Ok(true)) => None,
                Ok(Ok(false)) => Some("the SMTP server did not accept NOOP".to_owned()),
                Ok(Err(e)) => Some(format!("SMTP: {e}")),
                Err(_) => Some("SMTP: no answer within 5 s".to_owned()),
            };
            *last = Some((std::time::Instant::now(), outcome));
        }
        let mut details = serde_json::Map::new();
        let (at, error) = match last.as_ref() {
            Some((at, e)) => (*at, e.clone()),
            None => (std::time::Instant::now(), None),
        };
        details.insert("checked_seconds_ago".into(), at.elapsed().as_secs().into());
        match error {
            None => alertkit_core::ComponentHealth::ok(details),
            Some(e) => alertkit_core::ComponentHealth::degraded(e, details),
        }
    }
}
