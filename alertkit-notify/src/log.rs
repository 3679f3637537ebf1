//! Notifiers without a network: [`LogNotifier`] and [`RecordingNotifier`].

use std::sync::Mutex;

use alertkit_core::{Channel, Notification, Notifier, Result};
use async_trait::async_trait;

/// Writes each notification as a `tracing` event at INFO level; the reference
/// server's zero-config notifier. Never fails.
#[derive(Debug, Clone, Copy)]
pub struct LogNotifier {
    channel: Channel,
}

impl LogNotifier {
    /// A log notifier standing in for `channel`.
    pub fn new(channel: Channel) -> Self {
        LogNotifier { channel }
    }
}

#[async_trait]
impl Notifier for LogNotifier {
    fn channel(&self) -> Channel {
        self.channel
    }

    async fn notify(&self, n: &Notification) -> Result<()> {
        if let Some(d) = &n.digest {
            tracing::info!(
                channel = n.channel.as_str(),
                to = %n.recipient.user_id,
                period = d.period.as_str(),
                alerts = d.alerts.len(),
                attempt = n.attempt,
                "digest"
            );
            return Ok(());
        }
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
    use alertkit_core::{AlertId, Audience, NewAlert, Recipient, Severity};

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
            digest: None,
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
    async fn log_notifier_accepts_everything_through_dyn() {
        let n: Box<dyn Notifier> = Box::new(LogNotifier::new(Channel::Slack));
        assert_eq!(n.channel(), Channel::Slack);
        n.notify(&notification(1)).await.unwrap();
    }
}
