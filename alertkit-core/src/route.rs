//! Team routes: admin-managed matchers that send alerts to a shared
//! destination (a Slack channel's incoming webhook, a list of email
//! addresses, a webhook URL), one delivery per (alert, route).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::alert::Alert;
use crate::error::{Error, Result};
use crate::notify::{Recipient, check_email, check_url};
use crate::rule::Channel;
use crate::severity::Severity;

/// The prefix of the delivery "user" of a route: `route:<id>`.
pub const ROUTE_PREFIX: &str = "route:";

/// Where a route sends.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Destination {
    /// A Slack incoming webhook (one channel).
    Slack {
        /// `https://hooks.slack.com/services/…`
        webhook_url: String,
    },
    /// Email to every address of the list.
    Email {
        /// 1 to 50 addresses.
        addresses: Vec<String>,
    },
    /// A signed JSON webhook.
    Webhook {
        /// `http(s)://…`
        url: String,
    },
}

impl Destination {
    /// The channel it is sent on.
    pub fn channel(&self) -> Channel {
        match self {
            Destination::Slack { .. } => Channel::Slack,
            Destination::Email { .. } => Channel::Email,
            Destination::Webhook { .. } => Channel::Webhook,
        }
    }
}

/// What `POST`/`PUT /api/notify/routes` take.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewRoute {
    /// A name for people (1 to 100 characters).
    pub name: String,
    /// Whether it sends (default true).
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Only these alert types (empty: any).
    #[serde(default)]
    pub alert_types: Vec<String>,
    /// Only this severity or higher (default `info`: all).
    #[serde(default = "lowest")]
    pub min_severity: Severity,
    /// Only alerts carrying one of these tags (empty: any).
    #[serde(default)]
    pub tags: Vec<String>,
    /// Where it sends.
    pub destination: Destination,
}

fn yes() -> bool {
    true
}

fn lowest() -> Severity {
    Severity::Info
}

/// A stored team route.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    /// Its id.
    pub id: Uuid,
    /// The matchers and destination.
    #[serde(flatten)]
    pub spec: NewRoute,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

impl NewRoute {
    /// Checks the name, matchers and destination.
    pub fn validate(&self) -> Result<()> {
        let name = self.name.trim();
        if name.is_empty()
            || self.name.chars().count() > 100
            || self.name.chars().any(char::is_control)
        {
            return Err(Error::invalid("route name must be 1 to 100 characters"));
        }
        for (field, list) in [("alert_types", &self.alert_types), ("tags", &self.tags)] {
            if list.len() > 50 || list.iter().any(|v| v.is_empty() || v.chars().count() > 200) {
                return Err(Error::invalid(format!(
                    "route {field}: at most 50 values of 1 to 200 characters"
                )));
            }
        }
        match &self.destination {
            // http:// is accepted for relays and local sinks; the notifier's
            // address guard still refuses private and loopback targets
            // unless it is told to allow them.
            Destination::Slack { webhook_url } => check_url("webhook_url", webhook_url),
            Destination::Email { addresses } if addresses.is_empty() || addresses.len() > 50 => {
                Err(Error::invalid(
                    "an email destination needs 1 to 50 addresses",
                ))
            }
            Destination::Email { addresses } => addresses.iter().try_for_each(|a| check_email(a)),
            Destination::Webhook { url } => check_url("url", url),
        }
    }
}

impl Route {
    /// Whether the route wants this alert.
    pub fn matches(&self, alert: &Alert) -> bool {
        let s = &self.spec;
        s.enabled
            && alert.severity >= s.min_severity
            && (s.alert_types.is_empty() || s.alert_types.contains(&alert.alert_type))
            && (s.tags.is_empty() || s.tags.iter().any(|t| alert.tags.contains(t)))
    }

    /// The delivery "user" of this route: `route:<id>`.
    pub fn target_user(&self) -> String {
        format!("{ROUTE_PREFIX}{}", self.id)
    }

    /// The destination as a [`Recipient`] the notifiers understand: the
    /// Slack webhook as `slack_id`, the addresses joined by `, ` as `email`,
    /// the URL as `webhook_url`.
    pub fn recipient(&self) -> Recipient {
        let mut r = Recipient {
            user_id: self.target_user(),
            ..Default::default()
        };
        match &self.spec.destination {
            Destination::Slack { webhook_url } => r.slack_id = Some(webhook_url.clone()),
            Destination::Email { addresses } => r.email = Some(addresses.join(", ")),
            Destination::Webhook { url } => r.webhook_url = Some(url.clone()),
        }
        r
    }

    /// The route id named by a delivery user (`route:<id>`), if it is one.
    pub fn id_of(user: &str) -> Option<Uuid> {
        user.strip_prefix(ROUTE_PREFIX)?.parse().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AlertId, Audience, NewAlert};

    fn route(spec: NewRoute) -> Route {
        Route {
            id: Uuid::now_v7(),
            spec,
            created_at: Utc::now(),
            updated_at: Utc::now(),
        }
    }

    #[test]
    fn matchers_and_destinations() {
        let spec = NewRoute {
            name: "ops slack".into(),
            enabled: true,
            alert_types: vec!["capacity_warning".into()],
            min_severity: Severity::High,
            tags: vec!["VCH20".into(), "PK16TT".into()],
            destination: Destination::Slack {
                webhook_url: "https://hooks.slack.test/T/B/X".into(),
            },
        };
        spec.validate().unwrap();
        let r = route(spec.clone());
        let mk = |ty: &str, sev, tags: &[&str]| {
            NewAlert::new(ty, sev, "t")
                .tags(tags.iter().copied())
                .into_alert(AlertId::new(), Utc::now(), Audience::everyone)
                .unwrap()
        };
        assert!(r.matches(&mk("capacity_warning", Severity::Critical, &["VCH20"])));
        assert!(!r.matches(&mk("capacity_warning", Severity::Medium, &["VCH20"])));
        assert!(!r.matches(&mk("sla_breached", Severity::Critical, &["VCH20"])));
        assert!(!r.matches(&mk("capacity_warning", Severity::Critical, &["other"])));
        let off = route(NewRoute {
            enabled: false,
            ..spec.clone()
        });
        assert!(!off.matches(&mk("capacity_warning", Severity::Critical, &["VCH20"])));
        assert_eq!(Route::id_of(&r.target_user()), Some(r.id));
        assert_eq!(Route::id_of("alice"), None);
        assert_eq!(
            r.recipient().slack_id.as_deref(),
            Some("https://hooks.slack.test/T/B/X")
        );
        assert_eq!(r.spec.destination.channel(), Channel::Slack);
        for bad in [
            Destination::Slack {
                webhook_url: "ftp://hooks.test/x".into(),
            },
            Destination::Email { addresses: vec![] },
            Destination::Email {
                addresses: vec!["no-at".into()],
            },
            Destination::Webhook {
                url: "file:///etc/passwd".into(),
            },
        ] {
            assert!(
                NewRoute {
                    destination: bad.clone(),
                    ..spec.clone()
                }
                .validate()
                .is_err(),
                "{bad:?}"
            );
        }
        assert!(
            NewRoute {
                name: " ".into(),
                ..spec
            }
            .validate()
            .is_err()
        );
    }
}
