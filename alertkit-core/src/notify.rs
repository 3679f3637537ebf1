//! Delivering alerts on external channels.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::alert::Alert;
use crate::error::Result;
use crate::rule::Channel;

/// Where one user can be reached. Also the body of `GET/PUT /api/me/contacts`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recipient {
    /// The user (on input, empty or the caller).
    #[serde(default)]
    pub user_id: String,
    /// Email address.
    pub email: Option<String>,
    /// Slack member or channel id.
    pub slack_id: Option<String>,
    /// Webhook URL.
    pub webhook_url: Option<String>,
}

fn invalid(what: &str, v: &str) -> crate::Error {
    crate::Error::invalid(format!(
        "{what} `{}` is not valid",
        crate::id::truncate(v, 64)
    ))
}

fn clean(v: &str) -> bool {
    !v.chars().any(|c| c.is_control() || c.is_whitespace())
}

/// An email address: at most 254 characters, one `@` not at either end, no
/// spaces or control characters.
pub(crate) fn check_email(e: &str) -> Result<()> {
    let ok = e.len() <= 254
        && e.matches('@').count() == 1
        && clean(e)
        && !e.starts_with('@')
        && !e.ends_with('@');
    if ok { Ok(()) } else { Err(invalid("email", e)) }
}

/// An `http(s)://` URL of at most 2048 characters without spaces.
pub(crate) fn check_url(what: &str, u: &str) -> Result<()> {
    let ok = u.len() <= 2048 && clean(u) && (u.starts_with("https://") || u.starts_with("http://"));
    if ok { Ok(()) } else { Err(invalid(what, u)) }
}

impl Recipient {
    /// Checks the contact details a user may set: an email address (at
    /// most 254 characters, one `@`, no spaces or control characters), a
    /// Slack id (member, channel or an `https://` incoming-webhook URL, at
    /// most 256), a webhook URL (`http(s)://`, at most 2048).
    pub fn validate(&self) -> Result<()> {
        if let Some(e) = &self.email {
            check_email(e)?;
        }
        if let Some(s) = &self.slack_id
            && (s.is_empty() || s.len() > 256 || !clean(s))
        {
            return Err(invalid("slack_id", s));
        }
        if let Some(u) = &self.webhook_url {
            check_url("webhook_url", u)?;
        }
        Ok(())
    }
}

/// One delivery of one alert to one recipient on one channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    /// The delivery's id; stable across retries, so receivers can drop repeats.
    pub id: Uuid,
    /// The alert.
    pub alert: Alert,
    /// Who it goes to.
    pub recipient: Recipient,
    /// On which channel.
    pub channel: Channel,
    /// Which attempt this is, from 1.
    pub attempt: u32,
}

/// Sends notifications on one channel.
///
/// Errors tell the dispatcher what to do: [`Error::is_retryable`](crate::Error::is_retryable)
/// ones are retried (after [`Error::retry_after`](crate::Error::retry_after) when
/// given), any other is permanent.
#[async_trait]
pub trait Notifier: Send + Sync + 'static {
    /// The channel this notifier serves.
    fn channel(&self) -> Channel;

    /// Delivers one notification.
    async fn notify(&self, notification: &Notification) -> Result<()>;
}
