//! Events published when alerts or receipts change.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::alert::Alert;
use crate::audience::Audience;
use crate::id::AlertId;
use crate::principal::{Permission, Viewer};

/// A change to an alert or to one user's state on it, as published on a
/// [`Broadcaster`](crate::Broadcaster).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum AlertEvent {
    /// A new alert was raised.
    Created {
        /// The alert as stored.
        alert: Alert,
    },
    /// An active alert was raised again (dedup hit).
    Updated {
        /// The alert after the merge.
        alert: Alert,
        /// Whether its severity went up.
        escalated: bool,
    },
    /// An alert was resolved.
    Resolved {
        /// The alert after resolving.
        alert: Alert,
    },
    /// A user read one or more alerts.
    Read {
        /// Who read them.
        user_id: String,
        /// Which alerts.
        alert_ids: Vec<AlertId>,
        /// When.
        at: DateTime<Utc>,
    },
    /// A user dismissed an alert.
    Dismissed {
        /// Who dismissed it.
        user_id: String,
        /// Which alert.
        alert_id: AlertId,
        /// When.
        at: DateTime<Utc>,
    },
    /// An alert was deleted.
    Deleted {
        /// Which alert.
        alert_id: AlertId,
        /// Who could see it (so they can be told).
        audience: Audience,
    },
    /// An ephemeral message for every connected client (never stored).
    Broadcast {
        /// The text.
        message: String,
        /// `info`, `warning` or `error`.
        level: String,
        /// Free JSON for the client.
        data: serde_json::Value,
        /// When it was sent.
        at: DateTime<Utc>,
    },
    /// An ephemeral application frame `{type: topic, data, at}` for the
    /// connected clients holding `permission` (all of them when `None`);
    /// never stored. The reference server's `forecast` frames are these.
    Topic {
        /// The frame's `type` (see [`AlertKit::publish_topic`](crate::AlertKit::publish_topic)).
        topic: String,
        /// Who may receive it.
        permission: Option<Permission>,
        /// Free JSON for the client.
        data: serde_json::Value,
        /// When it was sent.
        at: DateTime<Utc>,
    },
}

impl AlertEvent {
    /// The event's name on the wire (`created`, `updated`, …).
    pub fn name(&self) -> &'static str {
        match self {
            AlertEvent::Created { .. } => "created",
            AlertEvent::Updated { .. } => "updated",
            AlertEvent::Resolved { .. } => "resolved",
            AlertEvent::Read { .. } => "read",
            AlertEvent::Dismissed { .. } => "dismissed",
            AlertEvent::Deleted { .. } => "deleted",
            AlertEvent::Broadcast { .. } => "broadcast",
            AlertEvent::Topic { .. } => "topic",
        }
    }

    /// The alert the event carries, for alert-level events.
    pub fn alert(&self) -> Option<&Alert> {
        match self {
            AlertEvent::Created { alert }
            | AlertEvent::Updated { alert, .. }
            | AlertEvent::Resolved { alert } => Some(alert),
            _ => None,
        }
    }

    /// Whether this viewer should be told: alert events go to the alert's
    /// audience (and admins), receipt events only to the user they belong to.
    pub fn is_visible_to(&self, viewer: &Viewer) -> bool {
        match self {
            AlertEvent::Created { alert }
            | AlertEvent::Updated { alert, .. }
            | AlertEvent::Resolved { alert } => alert.audience.is_visible_to(viewer),
            AlertEvent::Deleted { audience, .. } => audience.is_visible_to(viewer),
            AlertEvent::Read { user_id, .. } | AlertEvent::Dismissed { user_id, .. } => {
                *user_id == viewer.user_id
            }
            AlertEvent::Broadcast { .. } => true,
            // Permission is checked against the principal, not the viewer.
            AlertEvent::Topic { permission, .. } => permission.is_none(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_events_cross_the_bus_as_json() {
        let e = AlertEvent::Topic {
            topic: "forecast".into(),
            permission: Some(Permission::ForecastRead),
            data: serde_json::json!({"series": "vch20"}),
            at: Utc::now(),
        };
        let wire = serde_json::to_string(&e).unwrap();
        assert!(wire.contains(r#""event":"topic""#), "{wire}");
        assert!(wire.contains(r#""permission":"forecast.read""#), "{wire}");
        assert_eq!(serde_json::from_str::<AlertEvent>(&wire).unwrap(), e);
        assert_eq!(e.name(), "topic");
        assert!(!e.is_visible_to(&Viewer::new("bob", Vec::<String>::new())));
    }

    #[test]
    fn receipt_events_reach_only_their_user() {
        let e = AlertEvent::Dismissed {
            user_id: "alice".into(),
            alert_id: AlertId::new(),
            at: Utc::now(),
        };
        assert!(e.is_visible_to(&Viewer::new("alice", Vec::<String>::new())));
        assert!(!e.is_visible_to(&Viewer::new("bob", Vec::<String>::new())));
        // Admins see every alert, not other users' receipts.
        assert!(!e.is_visible_to(&Viewer::all("root")));
        let j = serde_json::to_value(&e).unwrap();
        assert_eq!(j["event"], "dismissed");
        assert_eq!(e.name(), "dismissed");
    }
}
