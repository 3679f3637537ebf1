//! Alerts, the input that raises them, and the per-viewer view of them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::audience::{Audience, MAX_TARGET_LEN, Target};
use crate::clock::truncate_to_millis;
use crate::error::{Error, Result};
use crate::id::AlertId;
use crate::severity::Severity;

/// Whether an alert still holds.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertStatus {
    /// The condition still holds; raising the same `dedup_key` merges into it.
    Active,
    /// The condition has cleared.
    Resolved,
}

impl AlertStatus {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertStatus::Active => "active",
            AlertStatus::Resolved => "resolved",
        }
    }
}

impl std::str::FromStr for AlertStatus {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "active" => Ok(AlertStatus::Active),
            "resolved" => Ok(AlertStatus::Resolved),
            _ => Err(Error::invalid(format!(
                "status `{}` is not one of active, resolved",
                crate::id::truncate(s, 32)
            ))),
        }
    }
}

/// The thing an alert is about, when it is one identifiable thing
/// (a shipment, a ticket, a host).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Resource {
    /// The kind of thing (`shipment`, `ticket`, …).
    #[serde(rename = "type")]
    pub kind: String,
    /// Its id.
    pub id: String,
}

/// A stored alert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// Time-ordered id.
    pub id: AlertId,
    /// Free-form type (`capacity_warning`, `sla_breached`, …); subscriptions key on it.
    pub alert_type: String,
    /// How urgent it is.
    pub severity: Severity,
    /// One-line summary.
    pub title: String,
    /// Longer text.
    pub message: String,
    /// The things it is about: product codes, hosts, store ids.
    pub tags: Vec<String>,
    /// The one resource it is about, if any.
    pub resource: Option<Resource>,
    /// Who may see it.
    pub audience: Audience,
    /// Free JSON object for the application.
    pub metadata: Value,
    /// Raising an alert with the key of an active alert merges into it.
    pub dedup_key: Option<String>,
    /// Active or resolved.
    pub status: AlertStatus,
    /// How many times it was raised (1 + dedup hits).
    pub occurrences: u32,
    /// When it was first raised.
    pub created_at: DateTime<Utc>,
    /// When it last changed (dedup hit, resolve).
    pub updated_at: DateTime<Utc>,
    /// When it was last raised.
    pub last_seen_at: DateTime<Utc>,
    /// When it stops being shown and may be purged.
    pub expires_at: Option<DateTime<Utc>>,
    /// The store's change sequence number of its last change (raise, merge,
    /// resolve): see [`AlertStore::changes_since`](crate::AlertStore::changes_since).
    /// 0 until stored.
    #[serde(default)]
    pub seq: u64,
    /// The user id of the principal that first raised it (`None` for
    /// alerts stored before alertkit recorded it). Only its creator, or a
    /// principal with `alerts.manage`, may resolve it, and only its creator's
    /// repeats merge into it.
    #[serde(default)]
    pub created_by: Option<String>,
}

impl Alert {
    /// Whether the alert has expired at `now`.
    pub fn is_expired(&self, now: DateTime<Utc>) -> bool {
        self.expires_at.is_some_and(|e| e <= now)
    }

    /// The scope within which a repeat merges into this alert, or `None`
    /// without a `dedup_key`: the key, the audience and the creator together
    /// (as a SHA-256 hex digest, which backends keep unique among active
    /// alerts).
    ///
    /// A raise therefore merges only into an alert that the same principal
    /// raised, with the same key, for the same audience, which is an alert
    /// it could have created itself. A raise with someone else's key, or for
    /// another audience, makes an alert of its own.
    pub fn dedup_scope(&self) -> Option<String> {
        use sha2::Digest as _;
        use std::fmt::Write as _;
        let key = self.dedup_key.as_deref()?;
        let mut h = sha2::Sha256::new();
        // Length-prefixed fields: no two different scopes hash alike.
        let mut part = |p: &str| {
            h.update((p.len() as u64).to_le_bytes());
            h.update(p.as_bytes());
        };
        part(self.created_by.as_deref().unwrap_or(""));
        part(key);
        for t in self.audience.targets() {
            part(&t.to_string());
        }
        let mut out = String::with_capacity(64);
        for b in h.finalize() {
            let _ = write!(out, "{b:02x}");
        }
        Some(out)
    }

    /// Folds a newer raise of the same [dedup scope](Self::dedup_scope) into
    /// this alert: one more occurrence, `last_seen_at`/`updated_at` = `now`,
    /// title, message and metadata from the newer raise, the severity
    /// escalated if the newer one is higher (never lowered), and the expiry
    /// extended if the newer one is later (never shortened; no expiry is
    /// the latest). Returns whether it escalated.
    ///
    /// Every backend uses this so dedup behaves the same everywhere.
    pub fn merge_repeat(&mut self, newer: &Alert, now: DateTime<Utc>) -> bool {
        let escalated = newer.severity > self.severity;
        if escalated {
            self.severity = newer.severity;
        }
        self.occurrences = self.occurrences.saturating_add(1);
        self.title.clone_from(&newer.title);
        self.message.clone_from(&newer.message);
        self.metadata.clone_from(&newer.metadata);
        // A past expiry (an expired alert not yet resolved) counts as none
        // left: the repeat revives it with its own.
        self.expires_at = match (self.expires_at, newer.expires_at) {
            (None, _) | (_, None) => None,
            (Some(old), Some(new)) if old <= now => Some(new),
            (Some(old), Some(new)) => Some(old.max(new)),
        };
        self.last_seen_at = now;
        self.updated_at = now;
        escalated
    }
}

/// Limits enforced on [`NewAlert`].
pub mod limits {
    /// Longest `alert_type`, in characters.
    pub const ALERT_TYPE: usize = 100;
    /// Longest title, in characters.
    pub const TITLE: usize = 200;
    /// Longest message, in characters.
    pub const MESSAGE: usize = 10_000;
    /// Most tags on one alert.
    pub const TAGS: usize = 50;
    /// Longest tag, in characters.
    pub const TAG: usize = 100;
    /// Longest dedup key, in characters.
    pub const DEDUP_KEY: usize = 256;
    /// Most audience targets.
    pub const AUDIENCE: usize = 100;
    /// Longest resource type or id, in characters.
    pub const RESOURCE: usize = 200;
    /// Largest metadata, in bytes of JSON.
    pub const METADATA_BYTES: usize = 16 * 1024;
}

/// What the application gives to raise an alert.
///
/// This is also the JSON body of `POST /api/alerts`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewAlert {
    /// See [`Alert::alert_type`].
    pub alert_type: String,
    /// See [`Alert::severity`].
    pub severity: Severity,
    /// See [`Alert::title`]; must not be blank.
    pub title: String,
    /// See [`Alert::message`].
    #[serde(default)]
    pub message: String,
    /// See [`Alert::tags`].
    #[serde(default)]
    pub tags: Vec<String>,
    /// See [`Alert::resource`].
    #[serde(default)]
    pub resource: Option<Resource>,
    /// Who may see it (`user:<id>`, `group:<name>`, `everyone`); empty
    /// means the raising principal only.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<String>, example = json!(["group:planners"])))]
    pub audience: Audience,
    /// See [`Alert::metadata`]; must be a JSON object (or absent).
    #[serde(default = "empty_object")]
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub metadata: Value,
    /// See [`Alert::dedup_key`].
    #[serde(default)]
    pub dedup_key: Option<String>,
    /// See [`Alert::expires_at`]; must be in the future.
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
}

fn empty_object() -> Value {
    Value::Object(Default::default())
}

impl NewAlert {
    /// A new alert with the required fields; the rest default to empty.
    pub fn new(
        alert_type: impl Into<String>,
        severity: Severity,
        title: impl Into<String>,
    ) -> Self {
        NewAlert {
            alert_type: alert_type.into(),
            severity,
            title: title.into(),
            message: String::new(),
            tags: Vec::new(),
            resource: None,
            audience: Audience::default(),
            metadata: empty_object(),
            dedup_key: None,
            expires_at: None,
        }
    }

    /// Sets the message.
    pub fn message(mut self, message: impl Into<String>) -> Self {
        self.message = message.into();
        self
    }

    /// Sets the tags.
    pub fn tags<I, S>(mut self, tags: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.tags = tags.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the resource.
    pub fn resource(mut self, kind: impl Into<String>, id: impl Into<String>) -> Self {
        self.resource = Some(Resource {
            kind: kind.into(),
            id: id.into(),
        });
        self
    }

    /// Sets the audience.
    pub fn audience(mut self, audience: Audience) -> Self {
        self.audience = audience;
        self
    }

    /// Sets the metadata (a JSON object).
    pub fn metadata(mut self, metadata: Value) -> Self {
        self.metadata = metadata;
        self
    }

    /// Sets the dedup key.
    pub fn dedup_key(mut self, key: impl Into<String>) -> Self {
        self.dedup_key = Some(key.into());
        self
    }

    /// Sets the expiry.
    pub fn expires_at(mut self, at: DateTime<Utc>) -> Self {
        self.expires_at = Some(at);
        self
    }

    /// Checks every field; the error names the field and the rule broken.
    pub fn validate(&self, now: DateTime<Utc>) -> Result<()> {
        check_short("alert_type", &self.alert_type, limits::ALERT_TYPE)?;
        check_short("title", &self.title, limits::TITLE)?;
        check_text("message", &self.message, limits::MESSAGE)?;
        if self.tags.len() > limits::TAGS {
            return Err(Error::invalid(format!("at most {} tags", limits::TAGS)));
        }
        for tag in &self.tags {
            check_short("tag", tag, limits::TAG)?;
        }
        if let Some(r) = &self.resource {
            check_short("resource.type", &r.kind, limits::RESOURCE)?;
            check_short("resource.id", &r.id, limits::RESOURCE)?;
        }
        if self.audience.targets().len() > limits::AUDIENCE {
            return Err(Error::invalid(format!(
                "at most {} audience entries",
                limits::AUDIENCE
            )));
        }
        for target in self.audience.targets() {
            match target {
                Target::User(name) => check_short("audience user", name, MAX_TARGET_LEN)?,
                Target::Group(name) => check_short("audience group", name, MAX_TARGET_LEN)?,
                Target::Everyone => {}
            }
        }
        if let Some(k) = &self.dedup_key {
            check_short("dedup_key", k, limits::DEDUP_KEY)?;
        }
        if !self.metadata.is_object() {
            return Err(Error::invalid("metadata must be a JSON object"));
        }
        if has_nul(&self.metadata) {
            return Err(Error::invalid("metadata must not contain NUL characters"));
        }
        let size = serde_json::to_vec(&self.metadata).map_or(usize::MAX, |v| v.len());
        if size > limits::METADATA_BYTES {
            return Err(Error::invalid(format!(
                "metadata is {size} bytes; at most {} allowed",
                limits::METADATA_BYTES
            )));
        }
        if let Some(e) = self.expires_at
            && e <= now
        {
            return Err(Error::invalid("expires_at must be in the future"));
        }
        Ok(())
    }

    /// Validates and turns the input into a stored alert with the given id,
    /// created at `now`. An empty audience becomes `default_audience`.
    /// Timestamps are truncated to milliseconds (see [`truncate_to_millis`]).
    pub fn into_alert(
        self,
        id: AlertId,
        now: DateTime<Utc>,
        default_audience: impl FnOnce() -> Audience,
    ) -> Result<Alert> {
        let now = truncate_to_millis(now);
        self.validate(now)?;
        let audience = if self.audience.is_empty() {
            default_audience()
        } else {
            self.audience
        };
        if audience.is_empty() {
            return Err(Error::invalid("audience must not be empty"));
        }
        let mut tags = self.tags;
        tags.sort();
        tags.dedup();
        Ok(Alert {
            id,
            alert_type: self.alert_type,
            severity: self.severity,
            title: self.title,
            message: self.message,
            tags,
            resource: self.resource,
            audience,
            metadata: self.metadata,
            dedup_key: self.dedup_key,
            status: AlertStatus::Active,
            occurrences: 1,
            created_at: now,
            updated_at: now,
            last_seen_at: now,
            expires_at: self.expires_at.map(truncate_to_millis),
            seq: 0,
            created_by: None,
        })
    }
}

fn check_short(field: &str, value: &str, max: usize) -> Result<()> {
    if value.trim().is_empty() {
        return Err(Error::invalid(format!("{field} must not be empty")));
    }
    if value.chars().any(char::is_control) {
        return Err(Error::invalid(format!(
            "{field} must not contain control characters"
        )));
    }
    check_len(field, value, max)
}

fn check_text(field: &str, value: &str, max: usize) -> Result<()> {
    if value
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Err(Error::invalid(format!(
            "{field} must not contain control characters other than newlines and tabs"
        )));
    }
    check_len(field, value, max)
}

fn check_len(field: &str, value: &str, max: usize) -> Result<()> {
    let n = value.chars().count();
    if n > max {
        return Err(Error::invalid(format!(
            "{field} is {n} characters; at most {max} allowed"
        )));
    }
    Ok(())
}

pub(crate) fn has_nul(v: &Value) -> bool {
    match v {
        Value::String(s) => s.contains('\0'),
        Value::Array(a) => a.iter().any(has_nul),
        Value::Object(o) => o.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
        _ => false,
    }
}

/// One user's state on one alert.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    /// When the user read it.
    pub read_at: Option<DateTime<Utc>>,
    /// When the user dismissed it.
    pub dismissed_at: Option<DateTime<Utc>>,
}

impl Receipt {
    /// Whether the user has read it.
    pub fn is_read(&self) -> bool {
        self.read_at.is_some()
    }

    /// Whether the user has dismissed it.
    pub fn is_dismissed(&self) -> bool {
        self.dismissed_at.is_some()
    }
}

/// An alert as one viewer sees it: the alert plus that viewer's receipt.
///
/// Serializes to the wire shape (`docs/wire.md` in the repository): every alert field, plus
/// `timestamp` (= `created_at`), `read`, `read_at`, `dismissed`, `dismissed_at`.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertView {
    /// The alert.
    pub alert: Alert,
    /// The viewer's receipt.
    pub receipt: Receipt,
}

impl AlertView {
    /// Pairs an alert with a receipt.
    pub fn new(alert: Alert, receipt: Receipt) -> Self {
        AlertView { alert, receipt }
    }
}

#[derive(Serialize)]
struct ViewOut<'a> {
    #[serde(flatten)]
    alert: &'a Alert,
    timestamp: DateTime<Utc>,
    read: bool,
    read_at: Option<DateTime<Utc>>,
    dismissed: bool,
    dismissed_at: Option<DateTime<Utc>>,
}

#[derive(Deserialize)]
struct ViewIn {
    #[serde(flatten)]
    alert: Alert,
    #[serde(default)]
    read_at: Option<DateTime<Utc>>,
    #[serde(default)]
    dismissed_at: Option<DateTime<Utc>>,
}

impl Serialize for AlertView {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        ViewOut {
            alert: &self.alert,
            timestamp: self.alert.created_at,
            read: self.receipt.is_read(),
            read_at: self.receipt.read_at,
            dismissed: self.receipt.is_dismissed(),
            dismissed_at: self.receipt.dismissed_at,
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for AlertView {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let v = ViewIn::deserialize(d)?;
        Ok(AlertView {
            alert: v.alert,
            receipt: Receipt {
                read_at: v.read_at,
                dismissed_at: v.dismissed_at,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone};
    use serde_json::json;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap()
    }

    fn ok() -> NewAlert {
        NewAlert::new("capacity_warning", Severity::High, "Capacity at 95%")
            .message("VCH20 will exceed capacity in 6h")
            .tags(["VCH20", "PK16TT", "VCH20"])
            .resource("warehouse", "w1")
            .dedup_key("cap:VCH20")
            .metadata(json!({"forecast": 0.95}))
            .expires_at(now() + Duration::days(1))
    }

    fn invalid(n: NewAlert) -> String {
        match n.validate(now()) {
            Err(Error::Invalid(m)) => m,
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn valid_alert_becomes_stored_alert() {
        let id = AlertId::new();
        let t = now() + Duration::nanoseconds(1_234_567);
        let a = ok().into_alert(id, t, || Audience::user("me")).unwrap();
        assert_eq!(a.id, id);
        assert_eq!(a.tags, vec!["PK16TT", "VCH20"]);
        assert_eq!(a.audience, Audience::user("me"));
        assert_eq!(a.status, AlertStatus::Active);
        assert_eq!(a.occurrences, 1);
        assert_eq!(a.created_at.timestamp_subsec_nanos(), 1_000_000);
        assert_eq!(a.created_at, a.updated_at);
    }

    #[test]
    fn each_rule_gives_a_clear_invalid_error() {
        assert!(
            invalid(NewAlert {
                title: "  ".into(),
                ..ok()
            })
            .contains("title must not be empty")
        );
        assert!(
            invalid(NewAlert {
                alert_type: "".into(),
                ..ok()
            })
            .contains("alert_type")
        );
        assert!(
            invalid(NewAlert {
                title: "x".repeat(201),
                ..ok()
            })
            .contains("at most 200")
        );
        assert!(
            invalid(NewAlert {
                message: "x".repeat(10_001),
                ..ok()
            })
            .contains("message")
        );
        assert!(
            invalid(NewAlert {
                message: "a\0b".into(),
                ..ok()
            })
            .contains("control")
        );
        assert!(invalid(ok().tags(["a\0"])).contains("tag"));
        assert!(invalid(ok().tags((0..51).map(|i| i.to_string()))).contains("at most 50 tags"));
        assert!(invalid(ok().metadata(json!([1]))).contains("object"));
        assert!(invalid(ok().metadata(json!({"k": "\u{0}"}))).contains("NUL"));
        assert!(invalid(ok().metadata(json!({"k": "x".repeat(17_000)}))).contains("bytes"));
        assert!(invalid(ok().expires_at(now())).contains("future"));
        assert!(invalid(ok().dedup_key("k".repeat(300))).contains("dedup_key"));
        assert!(invalid(ok().audience(Audience::user(""))).contains("audience user"));
        assert!(invalid(ok().audience(Audience::group("a\nb"))).contains("audience group"));
        let many: Audience = (0..101).map(|i| Target::user(i.to_string())).collect();
        assert!(invalid(ok().audience(many)).contains("audience"));
        // Multi-line messages are fine.
        assert!(ok().message("line 1\nline 2\ttab").validate(now()).is_ok());
    }

    #[test]
    fn bad_severity_is_refused_on_input() {
        let body = json!({"alert_type": "t", "severity": "urgent", "title": "x"});
        assert!(serde_json::from_value::<NewAlert>(body).is_err());
        let body = json!({"alert_type": "t", "severity": "warning", "title": "x"});
        let n: NewAlert = serde_json::from_value(body).unwrap();
        assert_eq!(n.severity, Severity::Medium);
        assert_eq!(n.metadata, json!({}));
    }

    #[test]
    fn view_has_the_wire_fields() {
        let a = ok()
            .into_alert(AlertId::new(), now(), || Audience::user("me"))
            .unwrap();
        let read = now() + Duration::minutes(1);
        let v = AlertView::new(
            a.clone(),
            Receipt {
                read_at: Some(read),
                dismissed_at: None,
            },
        );
        let j = serde_json::to_value(&v).unwrap();
        for key in [
            "id",
            "alert_type",
            "severity",
            "title",
            "message",
            "tags",
            "resource",
            "audience",
            "metadata",
            "dedup_key",
            "status",
            "occurrences",
            "created_at",
            "updated_at",
            "last_seen_at",
            "expires_at",
            "timestamp",
            "read",
            "read_at",
            "dismissed",
            "dismissed_at",
        ] {
            assert!(j.get(key).is_some(), "missing {key}");
        }
        assert_eq!(j["timestamp"], j["created_at"]);
        assert_eq!(j["read"], json!(true));
        assert_eq!(j["dismissed"], json!(false));
        assert_eq!(j["severity"], json!("high"));
        assert_eq!(j["resource"], json!({"type": "warehouse", "id": "w1"}));
        assert_eq!(j["audience"], json!(["user:me"]));
        assert_eq!(j["created_at"], json!("2026-03-01T12:00:00Z"));
        let back: AlertView = serde_json::from_value(j).unwrap();
        assert_eq!(back, v);
    }

    #[test]
    fn merge_escalates_but_never_lowers() {
        let mut a = ok()
            .into_alert(AlertId::new(), now(), || Audience::user("me"))
            .unwrap();
        let later = now() + Duration::hours(2);
        let mut lower = a.clone();
        lower.severity = Severity::Low;
        lower.message = "newer".into();
        assert!(!a.merge_repeat(&lower, later));
        assert_eq!(a.severity, Severity::High);
        assert_eq!(a.message, "newer");
        assert_eq!(a.occurrences, 2);
        assert_eq!(a.last_seen_at, later);
        let mut higher = a.clone();
        higher.severity = Severity::Critical;
        assert!(a.merge_repeat(&higher, later));
        assert_eq!(a.severity, Severity::Critical);
        assert_eq!(a.occurrences, 3);
        assert_eq!(a.created_at, now());
    }

    #[test]
    fn merge_never_shortens_the_expiry() {
        let at = |h| Some(now() + Duration::hours(h));
        let base = ok()
            .into_alert(AlertId::new(), now(), || Audience::user("me"))
            .unwrap();
        let merged = |old, new, when| {
            let mut a = base.clone();
            a.expires_at = old;
            let mut n = base.clone();
            n.expires_at = new;
            a.merge_repeat(&n, when);
            a.expires_at
        };
        assert_eq!(merged(at(10), at(1), now()), at(10), "shorter is ignored");
        assert_eq!(merged(at(1), at(10), now()), at(10), "longer extends");
        assert_eq!(merged(None, at(1), now()), None, "no expiry stays");
        assert_eq!(merged(at(1), None, now()), None, "none is the latest");
        // Already expired (not yet purged): the repeat revives it with its own.
        assert_eq!(merged(at(1), at(5), now() + Duration::hours(2)), at(5));
    }

    #[test]
    fn dedup_scope_separates_creators_and_audiences() {
        let mk = |creator: &str, audience: Audience, key: Option<&str>| {
            let mut n = ok().audience(audience);
            n.dedup_key = key.map(str::to_owned);
            let mut a = n
                .into_alert(AlertId::new(), now(), || Audience::user("x"))
                .unwrap();
            a.created_by = Some(creator.into());
            a.dedup_scope()
        };
        let base = mk("svc", Audience::everyone(), Some("k"));
        assert_eq!(base.as_deref().map(str::len), Some(64));
        assert_eq!(base, mk("svc", Audience::everyone(), Some("k")));
        assert_ne!(base, mk("mallory", Audience::everyone(), Some("k")));
        assert_ne!(base, mk("svc", Audience::user("bob"), Some("k")));
        assert_ne!(base, mk("svc", Audience::everyone(), Some("k2")));
        assert_eq!(mk("svc", Audience::everyone(), None), None);
        // Field boundaries cannot be shifted to collide.
        assert_ne!(
            mk("ab", Audience::user("c"), Some("k")),
            mk("a", Audience::user("c"), Some("bk"))
        );
    }
}
