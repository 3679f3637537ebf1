//! Building blocks for the cases: a fixed epoch, viewers, alerts.

use alertkit_core::{Alert, AlertId, Audience, NewAlert, Severity, Viewer};
use chrono::{DateTime, Duration, TimeZone, Utc};

/// The suite's epoch: every case's times are offsets from it.
pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
        .single()
        .expect("valid epoch")
}

/// `t0() + minutes`.
pub fn at(minutes: i64) -> DateTime<Utc> {
    t0() + Duration::minutes(minutes)
}

/// Alice, in group `ops`.
pub fn alice() -> Viewer {
    Viewer::new("alice", ["ops"])
}

/// Bob, in group `sales`.
pub fn bob() -> Viewer {
    Viewer::new("bob", ["sales"])
}

/// Carol, in no group.
pub fn carol() -> Viewer {
    Viewer::new("carol", Vec::<String>::new())
}

/// An admin who sees everything.
pub fn root() -> Viewer {
    Viewer::all("root")
}

/// A stored alert built from `new`, created at `created_at`, with a fresh id.
pub fn alert(new: NewAlert, created_at: DateTime<Utc>) -> Alert {
    new.into_alert(AlertId::new(), created_at, || Audience::user("alice"))
        .expect("fixture alerts are valid")
}

/// A minimal alert input for `audience`.
pub fn simple(title: &str, audience: Audience) -> NewAlert {
    NewAlert::new("test_alert", Severity::Medium, title).audience(audience)
}
