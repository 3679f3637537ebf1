//! [`SlackNotifier`]: Block Kit messages through an incoming webhook or the
//! Web API (`chat.postMessage` with a bot token).
//!
//! Where a message goes: a recipient whose `slack_id` is an `https://` URL
//! gets it through that incoming webhook; any other `slack_id` (a member or
//! channel id) through `chat.postMessage` with the bot token; with neither,
//! the default webhook, if one is set.
//!
//! Error classes (what the dispatcher does):
//!
//! | answer | class |
//! |---|---|
//! | HTTP 429 (`Retry-After`), Web API `ratelimited` | rate limited: retried after `Retry-After` |
//! | HTTP 5xx, 408, no answer, Web API `internal_error`, `fatal_error`, `service_unavailable`, `request_timeout` | retried on the schedule |
//! | `invalid_payload`, `channel_not_found`, `no_service`, `invalid_auth`, `not_authed`, `account_inactive`, `token_revoked`, other 4xx | permanent: dead letter |

use std::time::Duration;

use alertkit_core::{Alert, Channel, DigestBatch, Error, Notification, Notifier, Result};
use async_trait::async_trait;
use serde_json::{Value, json};

use crate::http::{check_public, check_url, client, retry_after, send_error, status_error};
use crate::template::{Template, colour};

/// The Slack Web API base, overridable for tests.
pub const SLACK_API: &str = "https://slack.com/api";

/// Sends notifications to Slack; see the [module docs](self).
#[derive(Clone)]
pub struct SlackNotifier {
    client: reqwest::Client,
    bot_token: Option<String>,
    default_webhook: Option<String>,
    api_base: String,
    template: Template,
    allow_private: bool,
}

impl std::fmt::Debug for SlackNotifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlackNotifier")
            .field("bot_token", &self.bot_token.as_ref().map(|_| "<redacted>"))
            .field(
                "default_webhook",
                &self.default_webhook.as_ref().map(|_| "<redacted>"),
            )
            .field("api_base", &self.api_base)
            .finish()
    }
}

impl SlackNotifier {
    /// A notifier with neither bot token nor default webhook: it sends only
    /// to recipients whose `slack_id` is an incoming-webhook URL.
    pub fn new() -> Result<Self> {
        Ok(SlackNotifier {
            client: client(Duration::from_secs(10), false)?,
            bot_token: None,
            default_webhook: None,
            api_base: SLACK_API.to_owned(),
            template: Template::default(),
            allow_private: false,
        })
    }

    /// Also sends to loopback and private addresses (default: refused as a
    /// permanent error; webhook URLs may come from users). For tests and
    /// closed networks.
    pub fn allow_private(mut self, allow: bool) -> Result<Self> {
        self.client = client(Duration::from_secs(10), allow)?;
        self.allow_private = allow;
        Ok(self)
    }

    /// Sends to member and channel ids with `chat.postMessage` and this bot
    /// token (`xoxb-…`).
    pub fn bot_token(mut self, token: impl Into<String>) -> Self {
        self.bot_token = Some(token.into());
        self
    }

    /// The incoming webhook for recipients without a Slack id of their own
    /// (a team channel). Checked to be an http(s) URL. Mind that personal
    /// alerts then land in that shared channel; to send chosen alerts to a
    /// team channel, prefer a team route ([`alertkit_core::Route`]).
    pub fn default_webhook(mut self, url: impl Into<String>) -> Result<Self> {
        let url = url.into();
        check_url("Slack webhook", &url)?;
        self.default_webhook = Some(url);
        Ok(self)
    }

    /// The Web API base URL (default [`SLACK_API`]; tests point it at a stand-in).
    pub fn api_base(mut self, base: impl Into<String>) -> Self {
        self.api_base = base.into().trim_end_matches('/').to_owned();
        self
    }

    /// The template (its app URL becomes the message's link).
    pub fn template(mut self, template: Template) -> Self {
        self.template = template;
        self
    }

    /// The Block Kit message for an alert: a coloured attachment with the
    /// title, message, type, severity, tags and link; `text` is the
    /// notification fallback.
    pub fn message(&self, alert: &Alert) -> Value {
        let mut fields = vec![
            json!({"type": "mrkdwn", "text": format!("*Type*\n{}", alert.alert_type)}),
            json!({"type": "mrkdwn", "text": format!("*Severity*\n{}", alert.severity.as_str())}),
        ];
        if !alert.tags.is_empty() {
            fields.push(
                json!({"type": "mrkdwn", "text": format!("*Tags*\n{}", alert.tags.join(", "))}),
            );
        }
        let mut blocks = vec![
            json!({"type": "header", "text": {"type": "plain_text", "text": truncate(&alert.title, 150)}}),
            json!({"type": "section", "fields": fields}),
        ];
        if !alert.message.is_empty() {
            blocks.insert(
                1,
                json!({"type": "section", "text": {"type": "mrkdwn", "text": truncate(&alert.message, 2900)}}),
            );
        }
        if let Some(link) = self.template.link(alert) {
            blocks.push(json!({"type": "actions", "elements": [
                {"type": "button", "text": {"type": "plain_text", "text": "Open in the app"}, "url": link}
            ]}));
        }
        json!({
            "text": self.template.subject(alert),
            "attachments": [{"color": colour(alert.severity), "blocks": blocks}],
        })
    }

    /// The Block Kit message for a digest: a header with the counts, then
    /// one line per alert (highest severity first, at most 45 lines, Slack's
    /// block limit leaving room for the header), coloured by the most severe.
    pub fn digest_message(&self, d: &DigestBatch) -> Value {
        const MAX_LINES: usize = 45;
        let subject = self.template.digest_subject(d);
        let mut blocks = vec![
            json!({"type": "header", "text": {"type": "plain_text", "text": truncate(&subject, 150)}}),
        ];
        for a in d.alerts.iter().take(MAX_LINES) {
            let title = escape_mrkdwn(&truncate(&a.title, 200));
            let line = match self.template.link(a) {
                Some(link) => format!(
                    "*{}* <{link}|{title}> · {}",
                    a.severity.as_str(),
                    escape_mrkdwn(&a.alert_type)
                ),
                None => format!(
                    "*{}* {title} · {}",
                    a.severity.as_str(),
                    escape_mrkdwn(&a.alert_type)
                ),
            };
            blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": line}}));
        }
        if d.alerts.len() > MAX_LINES {
            blocks.push(json!({"type": "context", "elements": [
                {"type": "mrkdwn", "text": format!("and {} more", d.alerts.len() - MAX_LINES)}
            ]}));
        }
        let top = d
            .alerts
            .first()
            .map_or(alertkit_core::Severity::Info, |a| a.severity);
        json!({
            "text": subject,
            "attachments": [{"color": colour(top), "blocks": blocks}],
        })
    }

    async fn via_webhook(&self, url: &str, body: &Value) -> Result<()> {
        let url = check_url("Slack webhook", url)?;
        if !self.allow_private {
            check_public("Slack webhook", &url).await?;
        }
        let res = self
            .client
            .post(url)
            .json(body)
            .send()
            .await
            .map_err(|e| send_error("Slack", &e))?;
        if res.status().is_success() {
            return Ok(());
        }
        let status = res.status();
        let retry = retry_after(res.headers());
        let text = res.text().await.unwrap_or_default();
        Err(status_error("Slack", status, retry, &text))
    }

    async fn via_api(&self, token: &str, channel: &str, body: &Value) -> Result<()> {
        let mut body = body.clone();
        body["channel"] = json!(channel);
        let res = self
            .client
            .post(format!("{}/chat.postMessage", self.api_base))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .map_err(|e| send_error("Slack", &e))?;
        let status = res.status();
        let retry = retry_after(res.headers());
        let text = res.text().await.unwrap_or_default();
        if !status.is_success() {
            return Err(status_error("Slack", status, retry, &text));
        }
        let answer: Value = serde_json::from_str(&text)
            .map_err(|_| Error::Unavailable("Slack answered something that is not JSON".into()))?;
        if answer["ok"] == true {
            return Ok(());
        }
        let code = answer["error"].as_str().unwrap_or("unknown_error");
        Err(api_error(code, retry))
    }
}

/// The class of a Web API `error` code.
fn api_error(code: &str, retry: Option<Duration>) -> Error {
    match code {
        "ratelimited" | "rate_limited" => Error::RateLimited { retry_after: retry },
        "internal_error" | "fatal_error" | "service_unavailable" | "request_timeout" => {
            Error::Unavailable(format!("Slack: {code}"))
        }
        _ => Error::invalid(format!("Slack refused the message: {code}")),
    }
}

fn truncate(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

/// Escapes the three characters Slack's mrkdwn treats as control (`&`,
/// `<`, `>`), so a title cannot forge a link or a mention.
fn escape_mrkdwn(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[async_trait]
impl Notifier for SlackNotifier {
    fn channel(&self) -> Channel {
        Channel::Slack
    }

    async fn notify(&self, n: &Notification) -> Result<()> {
        let body = match &n.digest {
            Some(d) => self.digest_message(d),
            None => self.message(&n.alert),
        };
        match (
            n.recipient.slack_id.as_deref(),
            &self.bot_token,
            &self.default_webhook,
        ) {
            (Some(url), _, _) if url.starts_with("https://") || url.starts_with("http://") => {
                self.via_webhook(url, &body).await
            }
            (Some(id), Some(token), _) => self.via_api(token, id, &body).await,
            (_, _, Some(url)) => self.via_webhook(url, &body).await,
            (Some(_), None, None) => Err(Error::invalid(
                "a Slack member id needs a bot token (SLACK_BOT_TOKEN)",
            )),
            (None, _, None) => Err(Error::invalid(format!(
                "{} has no Slack id and there is no default webhook",
                n.recipient.user_id
            ))),
        }
    }
}
