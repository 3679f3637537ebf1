//! Delivering alerts on external channels.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::alert::Alert;
use crate::error::Result;
use crate::rule::{Channel, Digest};
use chrono_tz::Tz;

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
    /// The user's IANA time zone (`Europe/Berlin`), where digest periods
    /// start and end; UTC when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
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
/// Every IANA time zone name [`Recipient::time_zone`] accepts.
pub fn time_zone_names() -> impl Iterator<Item = &'static str> {
    chrono_tz::TZ_VARIANTS.iter().map(|tz| tz.name())
}

pub(crate) fn check_email(e: &str) -> Result<()> {
    let ok = e.chars().count() <= 254
        && e.matches('@').count() == 1
        && clean(e)
        && !e.starts_with('@')
        && !e.ends_with('@');
    if ok { Ok(()) } else { Err(invalid("email", e)) }
}

/// An `http(s)://` URL of at most 2048 characters without spaces.
pub(crate) fn check_url(what: &str, u: &str) -> Result<()> {
    let ok = u.chars().count() <= 2048
        && clean(u)
        && (u.starts_with("https://") || u.starts_with("http://"));
    if ok { Ok(()) } else { Err(invalid(what, u)) }
}

impl Recipient {
    /// Checks the contact details a user may set: an email address (at
    /// most 254 characters, one `@`, no spaces or control characters), a
    /// Slack id (member, channel or an `https://` incoming-webhook URL, at
    /// most 256), a webhook URL (`http(s)://`, at most 2048), an IANA time
    /// zone name.
    pub fn validate(&self) -> Result<()> {
        if let Some(tz) = &self.time_zone
            && tz.parse::<Tz>().is_err()
        {
            return Err(crate::Error::invalid(format!(
                "time_zone `{}` is not an IANA time zone name (like Europe/Berlin)",
                crate::id::truncate(tz, 64)
            )));
        }
        if let Some(e) = &self.email {
            check_email(e)?;
        }
        if let Some(s) = &self.slack_id
            && (s.is_empty() || s.chars().count() > 256 || !clean(s))
        {
            return Err(invalid("slack_id", s));
        }
        if let Some(u) = &self.webhook_url {
            check_url("webhook_url", u)?;
        }
        Ok(())
    }

    /// The user's time zone ([`time_zone`](Self::time_zone)), UTC when
    /// unset or unknown.
    pub fn tz(&self) -> Tz {
        self.time_zone
            .as_deref()
            .and_then(|t| t.parse().ok())
            .unwrap_or(Tz::UTC)
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
    /// For a digest: the period and every alert it lists, highest severity
    /// first (`alert` is the first of them). `None` for a single alert.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<DigestBatch>,
}

/// The alerts of one digest period, for one recipient on one channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DigestBatch {
    /// Hourly or daily.
    pub period: Digest,
    /// The alerts, highest severity first, then oldest first; each once.
    pub alerts: Vec<Alert>,
}

impl Notification {
    /// A notification of one alert (not a digest).
    pub fn single(
        id: Uuid,
        alert: Alert,
        recipient: Recipient,
        channel: Channel,
        attempt: u32,
    ) -> Self {
        Notification {
            id,
            alert,
            recipient,
            channel,
            attempt,
            digest: None,
        }
    }

    /// The alerts it tells about: the digest's, or the one alert.
    pub fn alerts(&self) -> &[Alert] {
        match &self.digest {
            Some(d) if !d.alerts.is_empty() => &d.alerts,
            _ => std::slice::from_ref(&self.alert),
        }
    }
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
