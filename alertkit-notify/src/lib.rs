//! Notifiers: deliver one alert to one recipient on one channel.
//!
//! | notifier | type | feature | status |
//! |---|---|---|---|
//! | console (log line) | [`ConsoleNotifier`] | always | ready |
//! | in-memory recorder | [`RecordingNotifier`] | always | ready (tests) |
//! | email (SMTP) | — | `email` | not built yet |
//! | Slack | — | `slack` | not built yet |
//! | webhook | — | `webhook` | not built yet |
//!
//! The [`Notifier`] trait and its [`Notification`] live in `alertkit-core`
//! and are re-exported here.

use std::sync::Mutex;

use async_trait::async_trait;

use alertkit_core::Result;
pub use alertkit_core::{Channel, Notification, Notifier, Recipient};

/// Writes each notification as a `tracing` event at INFO level; the reference
/// server's zero-config notifier. Never fails.
#[derive(Debug, Clone, Copy)]
pub struct ConsoleNotifier {
    channel: Channel,
}

impl ConsoleNotifier {
    /// A console notifier standing in for `channel`.
    pub fn new(channel: Channel) -> Self {
        ConsoleNotifier { channel }
    }
}

#[async_trait]
impl Notifier for ConsoleNotifier {
    fn channel(&self) -> Channel {
        self.channel
    }

    async fn notify(&self, n: &Notification) -> Result<()> {
        tracing::info!(
            channel = n.channel.as_str(),
            to = %n.recipient.user_id,
            alert_id = %n.alert.id,
            severity = %n.alert.severity,
            alert_type = %n.alert.alert_type,
            attempt = n.attempt,
            "{}",
            n.alert.title
        );
        Ok(())
    }
}

/// Keeps every notification it is given, in order; for tests and demos.
#[derive(Debug)]
pub struct RecordingNotifier {
    channel: Channel,
    sent: Mutex<Vec<Notification>>,
}

impl RecordingNotifier {
    /// A recorder for `channel`.
    pub fn new(channel: Channel) -> Self {
        RecordingNotifier {
            channel,
            sent: Mutex::new(Vec::new()),
        }
    }

    /// What it was given so far.
    pub fn sent(&self) -> Vec<Notification> {
        self.sent.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

#[async_trait]
impl Notifier for RecordingNotifier {
    fn channel(&self) -> Channel {
        self.channel
    }

    async fn notify(&self, n: &Notification) -> Result<()> {
        self.sent
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(n.clone());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alertkit_core::{AlertId, Audience, NewAlert, Severity};

    fn notification(attempt: u32) -> Notification {
        let alert = NewAlert::new("sla_breached", Severity::High, "Ticket 42 breached")
            .into_alert(AlertId::new(), chrono::Utc::now(), || {
                Audience::user("alice")
            })
            .unwrap();
        Notification {
            id: uuid::Uuid::now_v7(),
            alert,
            recipient: Recipient {
                user_id: "alice".into(),
                email: Some("alice@example.test".into()),
                ..Default::default()
            },
            channel: Channel::Email,
            attempt,
        }
    }

    #[tokio::test]
    async fn recorder_keeps_notifications_in_order() {
        let r = RecordingNotifier::new(Channel::Email);
        let (a, b) = (notification(1), notification(2));
        r.notify(&a).await.unwrap();
        r.notify(&b).await.unwrap();
        assert_eq!(r.sent(), vec![a, b]);
        assert_eq!(r.channel(), Channel::Email);
    }

    #[tokio::test]
    async fn console_notifier_accepts_everything_through_dyn() {
        let n: Box<dyn Notifier> = Box::new(ConsoleNotifier::new(Channel::Slack));
        assert_eq!(n.channel(), Channel::Slack);
        n.notify(&notification(1)).await.unwrap();
    }
}
