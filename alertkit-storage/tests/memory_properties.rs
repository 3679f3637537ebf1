//! Property test: for random alerts, audiences, receipts and filters, paging
//! through `list` returns exactly what a brute-force filter of the same data
//! returns, in order, and no user ever sees an alert outside its audience.
//!
//! The oracle below is written from the specification (`docs/wire.md`, `docs/design.md`),
//! independently of `AlertFilter::matches`, which the memory store uses.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;

use alertkit_core::{
    Alert, AlertFilter, AlertId, AlertQuery, AlertStatus, AlertStore, Audience, NewAlert, Receipt,
    Severity, Target, Viewer,
};
use alertkit_storage::MemoryAlertStore;
use chrono::{DateTime, Duration, TimeZone, Utc};
use proptest::prelude::*;

const USERS: [&str; 3] = ["u0", "u1", "u2"];
const GROUPS: [&str; 2] = ["g0", "g1"];
const TYPES: [&str; 3] = ["capacity_warning", "sla_breached", "logistics_delay"];
const TAGS: [&str; 3] = ["VCH20", "PK16TT", "HN-01"];

fn t(minute: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap() + Duration::minutes(minute)
}

#[derive(Debug, Clone)]
struct AlertSpec {
    ty: usize,
    severity: Severity,
    tags: Vec<usize>,
    targets: Vec<u8>,
    minute: i64,
    expires_in: Option<i64>,
    resolved: bool,
}

#[derive(Debug, Clone)]
struct ReceiptSpec {
    alert: usize,
    user: usize,
    read: bool,
    dismissed: bool,
}

#[derive(Debug, Clone)]
struct Case {
    alerts: Vec<AlertSpec>,
    receipts: Vec<ReceiptSpec>,
    viewer_user: usize,
    viewer_groups: Vec<usize>,
    admin: bool,
    filter: AlertFilter,
    limit: u32,
    now: i64,
}

fn severity() -> impl Strategy<Value = Severity> {
    prop::sample::select(Severity::ALL.to_vec())
}

fn alert_spec() -> impl Strategy<Value = AlertSpec> {
    (
        0..TYPES.len(),
        severity(),
        prop::collection::vec(0..TAGS.len(), 0..3),
        // 0..3 users, 3..5 groups, 5 everyone
        prop::collection::vec(0u8..6, 1..3),
        0i64..15,
        prop::option::of(1i64..40),
        any::<bool>(),
    )
        .prop_map(
            |(ty, severity, tags, targets, minute, expires_in, resolved)| AlertSpec {
                ty,
                severity,
                tags,
                targets,
                minute,
                expires_in,
                resolved: resolved && minute % 3 == 0,
            },
        )
}

fn filter() -> impl Strategy<Value = AlertFilter> {
    (
        prop::option::of(0i64..15),
        prop::option::of(0i64..15),
        prop::collection::vec(severity(), 0..3),
        prop::option::of(severity()),
        prop::collection::vec(0..TYPES.len(), 0..2),
        prop::collection::vec(0..TAGS.len(), 0..2),
        prop::option::of(prop::sample::select(vec![
            AlertStatus::Active,
            AlertStatus::Resolved,
        ])),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(since, until, severities, min, types, tags, status, unread, dismissed)| AlertFilter {
                since: since.map(t),
                until: until.map(t),
                severities,
                min_severity: min,
                alert_types: types.into_iter().map(|i| TYPES[i].to_string()).collect(),
                tags: tags.into_iter().map(|i| TAGS[i].to_string()).collect(),
                status,
                unread_only: unread,
                include_dismissed: dismissed,
            },
        )
}

fn case() -> impl Strategy<Value = Case> {
    (
        prop::collection::vec(alert_spec(), 0..30),
        prop::collection::vec(
            (0usize..30, 0..USERS.len(), any::<bool>(), any::<bool>()),
            0..40,
        ),
        0..USERS.len(),
        prop::collection::vec(0..GROUPS.len(), 0..2),
        prop::bool::weighted(0.2),
        filter(),
        1u32..8,
        0i64..45,
    )
        .prop_map(
            |(alerts, receipts, viewer_user, viewer_groups, admin, filter, limit, now)| Case {
                receipts: receipts
                    .into_iter()
                    .filter(|r| r.0 < alerts.len())
                    .map(|(alert, user, read, dismissed)| ReceiptSpec {
                        alert,
                        user,
                        read,
                        dismissed,
                    })
                    .collect(),
                alerts,
                viewer_user,
                viewer_groups,
                admin,
                filter,
                limit,
                now,
            },
        )
}

fn target(code: u8) -> Target {
    match code {
        0..=2 => Target::user(USERS[code as usize]),
        3 | 4 => Target::group(GROUPS[code as usize - 3]),
        _ => Target::Everyone,
    }
}

/// The specification, spelled out: may `user` in `groups` (or an admin) see it?
fn oracle_visible(a: &Alert, user: &str, groups: &[String], admin: bool) -> bool {
    admin
        || a.audience.targets().iter().any(|t| match t {
            Target::Everyone => true,
            Target::User(u) => u == user,
            Target::Group(g) => groups.contains(g),
        })
}

fn oracle_keeps(f: &AlertFilter, a: &Alert, r: Receipt, now: DateTime<Utc>) -> bool {
    if let Some(exp) = a.expires_at
        && exp <= now
    {
        return false;
    }
    if let Some(since) = f.since
        && a.created_at <= since
    {
        return false;
    }
    if let Some(until) = f.until
        && a.created_at > until
    {
        return false;
    }
    if !f.severities.is_empty() && !f.severities.contains(&a.severity) {
        return false;
    }
    if let Some(min) = f.min_severity
        && a.severity.rank() < min.rank()
    {
        return false;
    }
    if !f.alert_types.is_empty() && !f.alert_types.contains(&a.alert_type) {
        return false;
    }
    if !f.tags.is_empty() && !a.tags.iter().any(|t| f.tags.contains(t)) {
        return false;
    }
    if let Some(st) = f.status
        && st != a.status
    {
        return false;
    }
    if f.unread_only && r.read_at.is_some() {
        return false;
    }
    if !f.include_dismissed && r.dismissed_at.is_some() {
        return false;
    }
    true
}

async fn run(case: Case) -> Result<(), TestCaseError> {
    let store = MemoryAlertStore::new();
    let mut alerts: Vec<Alert> = Vec::new();
    for spec in &case.alerts {
        let mut new = NewAlert::new(TYPES[spec.ty], spec.severity, "p")
            .tags(spec.tags.iter().map(|i| TAGS[*i]))
            .audience(
                spec.targets
                    .iter()
                    .map(|c| target(*c))
                    .collect::<Audience>(),
            );
        if let Some(e) = spec.expires_in {
            new = new.expires_at(t(spec.minute + e));
        }
        let a = new
            .into_alert(AlertId::new(), t(spec.minute), Audience::everyone)
            .unwrap();
        let stored = store
            .insert_or_dedup(a, &[], t(spec.minute))
            .await
            .unwrap()
            .alert;
        let stored = if spec.resolved {
            store.resolve(stored.id, t(spec.minute)).await.unwrap().0
        } else {
            stored
        };
        alerts.push(stored);
    }
    // Receipts are written through the store by users who can see the alert,
    // at minute 0 (so they work regardless of `now`); the oracle keeps its own copy.
    let mut receipts: HashMap<(AlertId, &str), Receipt> = HashMap::new();
    for r in &case.receipts {
        let a = &alerts[r.alert];
        let user = USERS[r.user];
        let viewer = Viewer::new(user, GROUPS);
        if !oracle_visible(a, user, &viewer.groups, false) || a.is_expired(t(0)) {
            continue;
        }
        let entry = receipts.entry((a.id, user)).or_default();
        if r.read {
            store.mark_read(&viewer, a.id, t(0)).await.unwrap();
            entry.read_at.get_or_insert(t(0));
        }
        if r.dismissed {
            store.dismiss(&viewer, a.id, t(0)).await.unwrap();
            entry.dismissed_at.get_or_insert(t(0));
        }
    }

    let user = USERS[case.viewer_user];
    let groups: Vec<String> = case
        .viewer_groups
        .iter()
        .map(|g| GROUPS[*g].to_string())
        .collect();
    let viewer = Viewer {
        user_id: user.into(),
        groups: groups.clone(),
        sees_all: case.admin,
    };
    let now = t(case.now);

    let mut expected: Vec<&Alert> = alerts
        .iter()
        .filter(|a| {
            let r = receipts.get(&(a.id, user)).copied().unwrap_or_default();
            oracle_visible(a, user, &groups, case.admin) && oracle_keeps(&case.filter, a, r, now)
        })
        .collect();
    expected.sort_by_key(|a| std::cmp::Reverse((a.created_at, a.id)));
    let expected_unread = expected
        .iter()
        .filter(|a| {
            receipts
                .get(&(a.id, user))
                .is_none_or(|r| r.read_at.is_none())
        })
        .count() as u64;

    let mut got = Vec::new();
    let mut q = AlertQuery::filtered(case.filter.clone()).limit(case.limit);
    for _ in 0..100 {
        let page = store.list(&viewer, &q, now).await.unwrap();
        prop_assert_eq!(page.total, expected.len() as u64);
        prop_assert_eq!(page.unread_count, expected_unread);
        prop_assert!(page.alerts.len() <= case.limit as usize);
        for v in &page.alerts {
            prop_assert!(
                case.admin || oracle_visible(&v.alert, user, &groups, false),
                "{} saw alert for {:?}",
                user,
                v.alert.audience
            );
            let r = receipts
                .get(&(v.alert.id, user))
                .copied()
                .unwrap_or_default();
            prop_assert_eq!(v.receipt, r, "the viewer's own receipt is attached");
        }
        got.extend(page.alerts.into_iter().map(|v| v.alert.id));
        match page.next_cursor {
            Some(c) => q.cursor = Some(c),
            None => break,
        }
    }
    let expected_ids: Vec<AlertId> = expected.iter().map(|a| a.id).collect();
    prop_assert_eq!(got, expected_ids);
    prop_assert_eq!(
        store.count(&viewer, &case.filter, now).await.unwrap(),
        expected.len() as u64
    );
    prop_assert_eq!(
        store.stats(&viewer, &case.filter, now).await.unwrap().total,
        expected.len() as u64
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn list_over_all_pages_equals_brute_force(case in case()) {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        rt.block_on(run(case))?;
    }
}
