//! Delivering alerts on external channels.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::alert::Alert;
use crate::error::Result;
use crate::rule::Channel;

/// Where one user can be reached.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recipient {
    /// The user.
    pub user_id: String,
    /// Email address.
    pub email: Option<String>,
    /// Slack member or channel id.
    pub slack_id: Option<String>,
    /// Webhook URL.
    pub webhook_url: Option<String>,
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
