//! The delivery outbox: one row per (alert, user, channel, severity) that
//! subscriptions ask for, written in the same transaction as the alert and
//! drained by a dispatcher.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::alert::Alert;
use crate::error::{Error, Result};
use crate::id::AlertId;
use crate::rule::{Channel, Digest};
use crate::severity::Severity;

/// Who to deliver a raised alert to, on which channel.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct DeliveryTarget {
    /// The receiving user.
    pub user_id: String,
    /// The channel.
    pub channel: Channel,
    /// For a digest subscription: the period the alert goes into.
    pub digest: Option<DigestSlot>,
}

/// The digest period an alert was raised in, for one receiver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct DigestSlot {
    /// Hourly or daily.
    pub period: Digest,
    /// When the period ends (in the receiver's time zone, see
    /// [`Digest::period_end`]): the digest is due then.
    pub ends_at: DateTime<Utc>,
}

impl DeliveryTarget {
    /// A target sent at once.
    pub fn new(user_id: impl Into<String>, channel: Channel) -> Self {
        DeliveryTarget {
            user_id: user_id.into(),
            channel,
            digest: None,
        }
    }

    /// A target collected into the digest of `slot`'s period.
    pub fn digest(user_id: impl Into<String>, channel: Channel, slot: DigestSlot) -> Self {
        DeliveryTarget {
            user_id: user_id.into(),
            channel,
            digest: Some(slot),
        }
    }
}

/// Where a delivery is.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Waiting for `next_attempt_at`.
    Pending,
    /// Claimed by a dispatcher until `lease_until`.
    InFlight,
    /// Delivered.
    Sent,
    /// Given up on (dead-lettered).
    Dead,
}

impl DeliveryStatus {
    /// Every status, in a delivery's order.
    pub const ALL: [DeliveryStatus; 4] = [
        DeliveryStatus::Pending,
        DeliveryStatus::InFlight,
        DeliveryStatus::Sent,
        DeliveryStatus::Dead,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::InFlight => "in_flight",
            DeliveryStatus::Sent => "sent",
            DeliveryStatus::Dead => "dead",
        }
    }
}

impl std::str::FromStr for DeliveryStatus {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "pending" => Ok(DeliveryStatus::Pending),
            "in_flight" => Ok(DeliveryStatus::InFlight),
            "sent" => Ok(DeliveryStatus::Sent),
            "dead" => Ok(DeliveryStatus::Dead),
            _ => Err(Error::invalid(format!("unknown delivery status `{s}`"))),
        }
    }
}

/// One delivery of one alert to one user on one channel.
///
/// Unique per (alert, user, channel, severity): raising the same alert again
/// never enqueues a second delivery to a receiver, but an escalation (a new
/// severity) does.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    /// Stable id, also the idempotency key handed to receivers.
    pub id: Uuid,
    /// The alert.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Uuid))]
    pub alert_id: AlertId,
    /// The receiving user.
    pub user_id: String,
    /// The channel.
    pub channel: Channel,
    /// The alert's severity when this delivery was enqueued.
    pub severity: Severity,
    /// For an item of a digest: its period. Digest items are due when their
    /// period ends and are sent together, one message per (user, channel),
    /// claimed with [`Outbox::claim_digest`](crate::Outbox::claim_digest).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<Digest>,
    /// Where it is.
    pub status: DeliveryStatus,
    /// Attempts started so far.
    pub attempts: u32,
    /// When it may next be claimed.
    pub next_attempt_at: DateTime<Utc>,
    /// While in flight: when the claim lapses and another dispatcher may take it.
    pub lease_until: Option<DateTime<Utc>>,
    /// The last attempt's error.
    pub last_error: Option<String>,
    /// When it was enqueued.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

impl Delivery {
    /// A pending delivery of `alert` to `target`, due at `now`, or for a
    /// digest item when its period ends.
    pub fn new(alert: &Alert, target: &DeliveryTarget, now: DateTime<Utc>) -> Self {
        Delivery {
            id: Uuid::now_v7(),
            alert_id: alert.id,
            user_id: target.user_id.clone(),
            channel: target.channel,
            severity: alert.severity,
            digest: target.digest.map(|s| s.period),
            status: DeliveryStatus::Pending,
            attempts: 0,
            next_attempt_at: target.digest.map_or(now, |s| s.ends_at),
            lease_until: None,
            last_error: None,
            created_at: now,
            updated_at: now,
        }
    }

    /// Whether a dispatcher may claim it at `now`: pending and due, or in
    /// flight with a lapsed lease (its dispatcher died).
    pub fn is_claimable(&self, now: DateTime<Utc>) -> bool {
        match self.status {
            DeliveryStatus::Pending => self.next_attempt_at <= now,
            DeliveryStatus::InFlight => self.lease_until.is_some_and(|l| l <= now),
            DeliveryStatus::Sent | DeliveryStatus::Dead => false,
        }
    }

    /// Applies a claim: in flight until `lease_until`, one more attempt.
    pub fn claim(&mut self, now: DateTime<Utc>, lease_until: DateTime<Utc>) {
        self.status = DeliveryStatus::InFlight;
        self.lease_until = Some(lease_until);
        self.attempts = self.attempts.saturating_add(1);
        self.updated_at = now;
    }

    /// Makes a dead letter pending again, due at `now`, with a fresh retry
    /// schedule (attempts back to 0; the last error is kept).
    pub fn replay(&mut self, now: DateTime<Utc>) {
        self.status = DeliveryStatus::Pending;
        self.attempts = 0;
        self.next_attempt_at = now;
        self.lease_until = None;
        self.updated_at = now;
    }

    /// Applies an attempt's outcome.
    pub fn complete(&mut self, outcome: &DeliveryOutcome, now: DateTime<Utc>) {
        self.lease_until = None;
        self.updated_at = now;
        match outcome {
            DeliveryOutcome::Sent => {
                self.status = DeliveryStatus::Sent;
                self.last_error = None;
            }
            DeliveryOutcome::Retry { at, error } => {
                self.status = DeliveryStatus::Pending;
                self.next_attempt_at = *at;
                self.last_error = Some(error.clone());
            }
            DeliveryOutcome::Dead { error } => {
                self.status = DeliveryStatus::Dead;
                self.last_error = Some(error.clone());
            }
        }
    }
}

/// One recorded attempt of a delivery: when it ended, how, and why not.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryAttempt {
    /// The delivery.
    pub delivery_id: Uuid,
    /// Its attempt number (from 1; a replayed dead letter starts again at 1).
    pub attempt: u32,
    /// When the attempt's outcome was recorded.
    pub at: DateTime<Utc>,
    /// `sent`, `retry` or `dead`.
    pub outcome: String,
    /// What went wrong, when it did.
    pub error: Option<String>,
}

impl DeliveryAttempt {
    /// The record of attempt `attempt` of `delivery_id` ending in `outcome` at `at`.
    pub fn of(
        delivery_id: Uuid,
        attempt: u32,
        outcome: &DeliveryOutcome,
        at: DateTime<Utc>,
    ) -> Self {
        let (name, error) = match outcome {
            DeliveryOutcome::Sent => ("sent", None),
            DeliveryOutcome::Retry { error, .. } => ("retry", Some(error.clone())),
            DeliveryOutcome::Dead { error } => ("dead", Some(error.clone())),
        };
        DeliveryAttempt {
            delivery_id,
            attempt,
            at,
            outcome: name.to_owned(),
            error,
        }
    }
}

/// A claimed delivery with the alert to send.
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimedDelivery {
    /// The delivery, as claimed.
    pub delivery: Delivery,
    /// Its alert, as stored now.
    pub alert: Alert,
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// Delivered; never to be sent again.
    Sent,
    /// Failed; try again at `at`.
    Retry {
        /// When to try again.
        at: DateTime<Utc>,
        /// What went wrong.
        error: String,
    },
    /// Failed for good.
    Dead {
        /// What went wrong.
        error: String,
    },
}
