//! Alert rules and per-user subscriptions.

use chrono::{DateTime, LocalResult, NaiveDateTime, NaiveTime, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::alert::NewAlert;
use crate::error::{Error, Result};
use crate::severity::Severity;

/// What a rule watches.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleKind {
    /// A metric crosses a threshold.
    Threshold,
    /// An item approaches or passes its SLA deadline.
    Sla,
    /// An application event happens.
    Event,
}

/// Longest `for_secs` and `cooldown_secs` a rule may have: 365 days.
pub const MAX_RULE_SECS: u64 = 365 * 24 * 3600;

/// A named rule that raises alerts from a template when its conditions hold.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertRule {
    /// Stable id.
    pub id: Uuid,
    /// Unique name.
    pub name: String,
    /// What it watches.
    pub kind: RuleKind,
    /// Whether it is evaluated.
    pub enabled: bool,
    /// Kind-specific conditions (metric, operator, threshold, …) as JSON.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub conditions: Value,
    /// The alert it raises; title and message may hold `{placeholders}`.
    pub template: NewAlert,
    /// How long the condition must hold before the alert is raised, in seconds.
    #[serde(default, deserialize_with = "crate::whole::u64")]
    pub for_secs: u64,
    /// Least time between two raises, in seconds.
    #[serde(default, deserialize_with = "crate::whole::u64")]
    pub cooldown_secs: u64,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

impl AlertRule {
    /// Checks the name, the conditions and the template (as of `now`).
    pub fn validate(&self, now: DateTime<Utc>) -> Result<()> {
        if self.name.trim().is_empty()
            || self.name.chars().count() > 200
            || self.name.chars().any(char::is_control)
        {
            return Err(Error::invalid(
                "rule name must be 1 to 200 characters without control characters",
            ));
        }
        if self.for_secs > MAX_RULE_SECS || self.cooldown_secs > MAX_RULE_SECS {
            return Err(Error::invalid(format!(
                "for_secs and cooldown_secs must be at most {MAX_RULE_SECS} (365 days)"
            )));
        }
        if !self.conditions.is_object() {
            return Err(Error::invalid("rule conditions must be a JSON object"));
        }
        if crate::alert::has_nul(&self.conditions) {
            return Err(Error::invalid(
                "rule conditions must not contain NUL characters",
            ));
        }
        crate::evaluate::check_conditions(self)?;
        self.template.validate(now)
    }
}

/// A channel an alert can be delivered on.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// The in-app inbox and live WebSocket push.
    InApp,
    /// Email.
    Email,
    /// Slack.
    Slack,
    /// An HTTP webhook.
    Webhook,
}

impl Channel {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::InApp => "in_app",
            Channel::Email => "email",
            Channel::Slack => "slack",
            Channel::Webhook => "webhook",
        }
    }
}

impl std::str::FromStr for Channel {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "in_app" => Ok(Channel::InApp),
            "email" => Ok(Channel::Email),
            "slack" => Ok(Channel::Slack),
            "webhook" => Ok(Channel::Webhook),
            _ => Err(Error::invalid(format!(
                "channel `{}` is not one of in_app, email, slack, webhook",
                crate::id::truncate(s, 32)
            ))),
        }
    }
}

/// How often batched deliveries go out, when a subscription asks for a digest.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Digest {
    /// One message an hour.
    Hourly,
    /// One message a day.
    Daily,
}

/// The alert type a subscription with this value matches: every type.
pub const ANY_ALERT_TYPE: &str = "*";

/// A user's wish to be told about one alert type on some channels.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subscription {
    /// Whose subscription; on `PUT /api/alerts/subscriptions` it may be
    /// left out (it is the caller's).
    #[serde(default)]
    pub user_id: String,
    /// The alert type, or [`ANY_ALERT_TYPE`].
    pub alert_type: String,
    /// Whether it is in effect.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Where to deliver.
    pub channels: Vec<Channel>,
    /// Only alerts this severe or more.
    #[serde(default = "lowest")]
    pub min_severity: Severity,
    /// Batch deliveries instead of sending each.
    #[serde(default)]
    pub digest: Option<Digest>,
}

fn yes() -> bool {
    true
}

fn lowest() -> Severity {
    Severity::Info
}

impl Digest {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Digest::Hourly => "hourly",
            Digest::Daily => "daily",
        }
    }

    /// When the period holding `at` ends in time zone `tz`: the next full
    /// hour (hourly) or the next midnight (daily), local time, as a UTC
    /// instant after `at`. A local time that a DST change skips becomes the
    /// first instant after the gap (a skipped midnight → 01:00); a repeated
    /// one is taken at its first occurrence.
    pub fn period_end(self, at: DateTime<Utc>, tz: Tz) -> DateTime<Utc> {
        let local = at.with_timezone(&tz).naive_local();
        let next = match self {
            Digest::Hourly => {
                local.date().and_time(NaiveTime::MIN)
                    + chrono::Duration::hours(i64::from(local.hour()) + 1)
            }
            Digest::Daily => (local.date() + chrono::Days::new(1)).and_time(NaiveTime::MIN),
        };
        first_instant_at_or_after(tz, next)
    }
}

/// The first real instant at or after the local time `t` in `tz`.
fn first_instant_at_or_after(tz: Tz, t: NaiveDateTime) -> DateTime<Utc> {
    let mut t = t;
    // DST gaps are at most a few hours; step through them in quarter hours.
    for _ in 0..32 {
        match tz.from_local_datetime(&t) {
            LocalResult::Single(at) | LocalResult::Ambiguous(at, _) => {
                return at.with_timezone(&Utc);
            }
            LocalResult::None => t += chrono::Duration::minutes(15),
        }
    }
    t.and_utc()
}

impl std::str::FromStr for Digest {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "hourly" => Ok(Digest::Hourly),
            "daily" => Ok(Digest::Daily),
            _ => Err(Error::invalid(format!(
                "digest `{}` is not hourly or daily",
                crate::id::truncate(s, 32)
            ))),
        }
    }
}

impl RuleKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            RuleKind::Threshold => "threshold",
            RuleKind::Sla => "sla",
            RuleKind::Event => "event",
        }
    }
}

impl std::str::FromStr for RuleKind {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "threshold" => Ok(RuleKind::Threshold),
            "sla" => Ok(RuleKind::Sla),
            "event" => Ok(RuleKind::Event),
            _ => Err(Error::invalid(format!(
                "rule kind `{}` is not threshold, sla or event",
                crate::id::truncate(s, 32)
            ))),
        }
    }
}

impl Subscription {
    /// An enabled subscription of `user_id` to `alert_type` on `channels`, any severity.
    pub fn new(
        user_id: impl Into<String>,
        alert_type: impl Into<String>,
        channels: impl IntoIterator<Item = Channel>,
    ) -> Self {
        Subscription {
            user_id: user_id.into(),
            alert_type: alert_type.into(),
            enabled: true,
            channels: channels.into_iter().collect(),
            min_severity: Severity::Info,
            digest: None,
        }
    }

    /// Whether an alert of this type and severity should be delivered.
    pub fn wants(&self, alert_type: &str, severity: Severity) -> bool {
        self.enabled
            && (self.alert_type == ANY_ALERT_TYPE || self.alert_type == alert_type)
            && severity >= self.min_severity
    }

    /// Checks the alert type and channels.
    pub fn validate(&self) -> Result<()> {
        let t = &self.alert_type;
        if t.is_empty() || t.chars().count() > 100 || t.chars().any(char::is_control) {
            return Err(Error::invalid(
                "subscription alert_type must be 1 to 100 characters",
            ));
        }
        if self.channels.is_empty() {
            return Err(Error::invalid("subscription needs at least one channel"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscription_matching() {
        let mut s = Subscription::new("u", "sla_breached", [Channel::Email]);
        s.min_severity = Severity::High;
        assert!(s.wants("sla_breached", Severity::Critical));
        assert!(!s.wants("sla_breached", Severity::Medium));
        assert!(!s.wants("other", Severity::Critical));
        let any = Subscription::new("u", ANY_ALERT_TYPE, [Channel::InApp]);
        assert!(any.wants("whatever", Severity::Info));
        s.enabled = false;
        assert!(!s.wants("sla_breached", Severity::Critical));
        assert!(Subscription::new("u", "t", []).validate().is_err());
    }

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn digest_periods_end_at_local_hours_and_midnights() {
        let hcm: Tz = "Asia/Ho_Chi_Minh".parse().unwrap();
        // 23:10 local on the 1st (16:10 UTC) → midnight local (17:00 UTC).
        let at = utc("2026-03-01T16:10:00Z");
        assert_eq!(
            Digest::Daily.period_end(at, hcm),
            utc("2026-03-01T17:00:00Z")
        );
        assert_eq!(
            Digest::Hourly.period_end(at, hcm),
            utc("2026-03-01T17:00:00Z")
        );
        // 00:00 local exactly starts the next day: it ends at the next midnight.
        let midnight = utc("2026-03-01T17:00:00Z");
        assert_eq!(
            Digest::Daily.period_end(midnight, hcm),
            utc("2026-03-02T17:00:00Z")
        );
        let kolkata: Tz = "Asia/Kolkata".parse().unwrap();
        assert_eq!(
            Digest::Hourly.period_end(utc("2026-03-01T10:10:00Z"), kolkata),
            utc("2026-03-01T10:30:00Z"),
            "hours are local hours (UTC+5:30)"
        );
    }

    #[test]
    fn digest_periods_across_dst() {
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        // Spring forward (2026-03-29, 02:00 → 03:00): the day is 23 h long.
        let start = utc("2026-03-28T23:00:00Z");
        let end = Digest::Daily.period_end(start, berlin);
        assert_eq!(end, utc("2026-03-29T22:00:00Z"));
        // 01:30 local → 02:00 does not exist → the period ends at 03:00 local.
        assert_eq!(
            Digest::Hourly.period_end(utc("2026-03-29T00:30:00Z"), berlin),
            utc("2026-03-29T01:00:00Z")
        );
        // Fall back (2026-10-25): the day is 25 h long, one period.
        let start = utc("2026-10-24T22:00:00Z");
        assert_eq!(
            Digest::Daily.period_end(start, berlin),
            utc("2026-10-25T23:00:00Z")
        );
        // Havana skips midnight itself (2026-03-08): the day ends at 01:00.
        let havana: Tz = "America/Havana".parse().unwrap();
        assert_eq!(
            Digest::Daily.period_end(utc("2026-03-07T12:00:00Z"), havana),
            utc("2026-03-08T05:00:00Z")
        );
    }

    #[test]
    fn subscription_wire_defaults() {
        let s: Subscription = serde_json::from_value(serde_json::json!({
            "user_id": "u", "alert_type": "t", "channels": ["in_app", "slack"]
        }))
        .unwrap();
        assert!(s.enabled);
        assert_eq!(s.min_severity, Severity::Info);
        assert_eq!(s.channels, vec![Channel::InApp, Channel::Slack]);
    }
}

/// What a caller gives to create or replace a rule; the engine assigns the
/// id and timestamps.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewRule {
    /// See [`AlertRule::name`].
    pub name: String,
    /// See [`AlertRule::kind`].
    pub kind: RuleKind,
    /// See [`AlertRule::enabled`].
    #[serde(default = "yes")]
    pub enabled: bool,
    /// See [`AlertRule::conditions`].
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub conditions: Value,
    /// See [`AlertRule::template`].
    pub template: NewAlert,
    /// See [`AlertRule::for_secs`].
    #[serde(default, deserialize_with = "crate::whole::u64")]
    pub for_secs: u64,
    /// See [`AlertRule::cooldown_secs`].
    #[serde(default, deserialize_with = "crate::whole::u64")]
    pub cooldown_secs: u64,
}

impl NewRule {
    /// The stored rule with this id, created (or last changed) at `now`.
    pub fn into_rule(self, id: Uuid, created_at: DateTime<Utc>, now: DateTime<Utc>) -> AlertRule {
        AlertRule {
            id,
            name: self.name,
            kind: self.kind,
            enabled: self.enabled,
            conditions: self.conditions,
            template: self.template,
            for_secs: self.for_secs,
            cooldown_secs: self.cooldown_secs,
            created_at,
            updated_at: now,
        }
    }
}
