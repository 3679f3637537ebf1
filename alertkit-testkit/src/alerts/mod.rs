//! Conformance cases for [`AlertStore`]:
//! alerts, lists and filters, receipts, dedup, retention and the change
//! feed. Each takes a fresh, empty store.

mod changes;
mod dedup;
mod lists;
mod receipts;
mod retention;

pub use changes::*;
pub use dedup::*;
pub use lists::*;
pub use receipts::*;
pub use retention::*;

use std::collections::BTreeMap;

use alertkit_core::{
    Alert, AlertFilter, AlertQuery, AlertStore, Audience, NewAlert, Severity, Viewer,
};
use chrono::{DateTime, Utc};

use crate::fixtures::{alert, at};

/// Far enough after every fixture time that nothing has expired.
pub(crate) fn now() -> DateTime<Utc> {
    at(10_000)
}

pub(crate) async fn put<S: AlertStore + ?Sized>(store: &S, a: Alert) -> Alert {
    let created = a.created_at;
    let raised = store
        .insert_or_dedup(a, &[], created)
        .await
        .expect("insert");
    assert!(
        !raised.deduplicated,
        "a fresh alert must not be deduplicated"
    );
    raised.alert
}

/// Every alert the viewer sees through the filter, paging with the largest limit.
pub(crate) async fn titles_at(
    store: &dyn AlertStore,
    viewer: &Viewer,
    filter: AlertFilter,
    now: DateTime<Utc>,
) -> Vec<String> {
    let mut out = Vec::new();
    let mut q = AlertQuery::filtered(filter).limit(200);
    loop {
        let page = store.list(viewer, &q, now).await.expect("list");
        out.extend(page.alerts.into_iter().map(|v| v.alert.title));
        match page.next_cursor {
            Some(c) => q.cursor = Some(c),
            None => return out,
        }
    }
}

pub(crate) async fn titles(
    store: &dyn AlertStore,
    viewer: &Viewer,
    filter: AlertFilter,
) -> Vec<String> {
    titles_at(store, viewer, filter, now()).await
}

pub(crate) fn strs(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// The shared data set. Alice (group ops) sees a0 a1 a2 a5 a6; Bob (group
/// sales) sees a2 a3 a4 a5; admins see all. Created one minute apart.
pub(crate) async fn seed(store: &dyn AlertStore) -> BTreeMap<String, Alert> {
    let rows: [(&str, &str, Severity, &[&str], Audience); 7] = [
        (
            "a0",
            "logistics_delay",
            Severity::High,
            &["VCH20"],
            Audience::user("alice"),
        ),
        (
            "a1",
            "capacity_warning",
            Severity::Medium,
            &["VCH20", "PK16TT"],
            Audience::group("ops"),
        ),
        (
            "a2",
            "capacity_warning",
            Severity::Low,
            &["PK16TT"],
            Audience::everyone(),
        ),
        (
            "a3",
            "sla_at_risk",
            Severity::Critical,
            &["store-7"],
            Audience::user("bob"),
        ),
        (
            "a4",
            "sla_breached",
            Severity::Info,
            &[],
            Audience::group("sales"),
        ),
        (
            "a5",
            "logistics_delay",
            Severity::Medium,
            &["PK16TT"],
            Audience::everyone(),
        ),
        (
            "a6",
            "high_workload",
            Severity::High,
            &["host-1"],
            Audience::user("alice"),
        ),
    ];
    let mut out = BTreeMap::new();
    for (i, (title, ty, sev, tags, aud)) in rows.into_iter().enumerate() {
        let new = NewAlert::new(ty, sev, title)
            .tags(tags.iter().copied())
            .audience(aud);
        let a = put(store, alert(new, at(i as i64 + 1))).await;
        out.insert(title.to_string(), a);
    }
    out
}
