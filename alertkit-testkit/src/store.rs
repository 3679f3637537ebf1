//! Conformance cases for [`AlertStore`]. Each takes a fresh, empty store.

use std::collections::BTreeMap;

use alertkit_core::clock::Clock;
use alertkit_core::rule::ANY_ALERT_TYPE;
use alertkit_core::{
    Alert, AlertFilter, AlertId, AlertQuery, AlertRule, AlertStatus, AlertStore, Audience, Channel,
    DeliveryOutcome, DeliveryStatus, DeliveryTarget, Error, JobRun, ManualClock, NewAlert,
    RuleKind, RunStatus, Severity, Subscription, Target, Viewer,
};
use chrono::{DateTime, Duration, Utc};
use serde_json::json;

use crate::fixtures::{alert, alice, at, bob, carol, root, simple, t0};

/// Far enough after every fixture time that nothing has expired.
fn now() -> DateTime<Utc> {
    at(10_000)
}

async fn put(store: &dyn AlertStore, a: Alert) -> Alert {
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
async fn titles_at(
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

async fn titles(store: &dyn AlertStore, viewer: &Viewer, filter: AlertFilter) -> Vec<String> {
    titles_at(store, viewer, filter, now()).await
}

fn strs(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// The shared data set. Alice (group ops) sees a0 a1 a2 a5 a6; Bob (group
/// sales) sees a2 a3 a4 a5; admins see all. Created one minute apart.
async fn seed(store: &dyn AlertStore) -> BTreeMap<String, Alert> {
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

/// Every field written comes back unchanged from `get` and `list`.
pub async fn insert_get_round_trip(store: &dyn AlertStore) {
    let new = NewAlert::new(
        "capacity_warning",
        Severity::Critical,
        "Kho Hà Nội sắp đầy ✓",
    )
    .message("Line 1\nLine 2\twith tab — and ünïcödé")
    .tags(["VCH20", "PK16TT", "kho-01"])
    .resource("warehouse", "HN-01")
    .audience(Audience::from_targets([
        Target::user("alice"),
        Target::group("ops"),
    ]))
    .metadata(json!({"forecast": {"p50": 0.93, "p90": 1.07}, "series": ["a", "b"], "n": 3}))
    .dedup_key("capacity:VCH20")
    .expires_at(at(60 * 24));
    let a = alert(new, at(1) + Duration::milliseconds(123));
    let raised = store
        .insert_or_dedup(a.clone(), &[], a.created_at)
        .await
        .unwrap();
    assert!(!raised.deduplicated && !raised.escalated);
    assert!(raised.alert.seq > 0, "a stored alert has a change number");
    let a = Alert {
        seq: raised.alert.seq,
        ..a
    };
    assert_eq!(raised.alert, a, "insert returns the alert as stored");

    let v = store.get(&alice(), a.id, at(2)).await.unwrap();
    assert_eq!(v.alert, a, "get returns every field as written");
    assert!(v.receipt.read_at.is_none() && v.receipt.dismissed_at.is_none());

    let page = store
        .list(&alice(), &AlertQuery::default(), at(2))
        .await
        .unwrap();
    assert_eq!(page.alerts.len(), 1);
    assert_eq!(
        page.alerts[0].alert, a,
        "list returns every field as written"
    );

    // A minimal alert: every optional field empty.
    let bare = put(store, alert(simple("bare", Audience::user("alice")), at(3))).await;
    assert_eq!(
        store.get(&alice(), bare.id, at(4)).await.unwrap().alert,
        bare
    );
}

/// `get` of an id never stored is `NotFound`.
pub async fn get_missing_is_not_found(store: &dyn AlertStore) {
    let err = store
        .get(&alice(), AlertId::new(), now())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound(_)), "got {err:?}");
}

/// `get` of an alert outside the viewer's audience is `NotFound`, not `Forbidden`
/// (its existence is not revealed); an admin sees it.
pub async fn get_invisible_is_not_found(store: &dyn AlertStore) {
    let a = put(store, alert(simple("bob's", Audience::user("bob")), at(1))).await;
    let err = store.get(&alice(), a.id, now()).await.unwrap_err();
    assert!(matches!(err, Error::NotFound(_)), "got {err:?}");
    assert_eq!(
        store.get(&root(), a.id, now()).await.unwrap().alert.id,
        a.id
    );
}

/// Lists are newest first; equal `created_at` are ordered by id, descending.
pub async fn list_is_newest_first(store: &dyn AlertStore) {
    seed(store).await;
    assert_eq!(
        titles(store, &alice(), AlertFilter::default()).await,
        strs(&["a6", "a5", "a2", "a1", "a0"])
    );
    assert_eq!(
        titles(store, &bob(), AlertFilter::default()).await,
        strs(&["a5", "a4", "a3", "a2"])
    );
    // Same timestamp: the later id comes first.
    let x = alert(simple("x", Audience::user("carol")).tags(["tie"]), at(50));
    let y = alert(simple("y", Audience::user("carol")).tags(["tie"]), at(50));
    assert!(y.id > x.id && y.created_at == x.created_at);
    put(store, y).await;
    put(store, x).await;
    let tie = AlertFilter {
        tags: strs(&["tie"]),
        ..Default::default()
    };
    assert_eq!(titles(store, &carol(), tie).await, strs(&["y", "x"]));
}

/// `since` keeps alerts created strictly after it.
pub async fn filter_since(store: &dyn AlertStore) {
    seed(store).await;
    let f = AlertFilter {
        since: Some(at(3)),
        ..Default::default()
    };
    assert_eq!(titles(store, &alice(), f).await, strs(&["a6", "a5"]));
}

/// `until` keeps alerts created at or before it.
pub async fn filter_until(store: &dyn AlertStore) {
    seed(store).await;
    let f = AlertFilter {
        until: Some(at(3)),
        ..Default::default()
    };
    assert_eq!(titles(store, &alice(), f).await, strs(&["a2", "a1", "a0"]));
}

/// `severities` keeps any of the listed severities.
pub async fn filter_severity_set(store: &dyn AlertStore) {
    seed(store).await;
    let f = AlertFilter {
        severities: vec![Severity::High, Severity::Low],
        ..Default::default()
    };
    assert_eq!(titles(store, &alice(), f).await, strs(&["a6", "a2", "a0"]));
    let f = AlertFilter {
        severities: vec![Severity::Critical],
        ..Default::default()
    };
    assert!(titles(store, &alice(), f).await.is_empty());
}

/// `min_severity` keeps that severity and above.
pub async fn filter_min_severity(store: &dyn AlertStore) {
    seed(store).await;
    let f = AlertFilter {
        min_severity: Some(Severity::Medium),
        ..Default::default()
    };
    assert_eq!(
        titles(store, &alice(), f).await,
        strs(&["a6", "a5", "a1", "a0"])
    );
    let f = AlertFilter {
        min_severity: Some(Severity::Critical),
        ..Default::default()
    };
    assert_eq!(titles(store, &root(), f).await, strs(&["a3"]));
}

/// `alert_types` keeps any of the listed types.
pub async fn filter_alert_type(store: &dyn AlertStore) {
    seed(store).await;
    let f = AlertFilter {
        alert_types: strs(&["capacity_warning"]),
        ..Default::default()
    };
    assert_eq!(titles(store, &alice(), f).await, strs(&["a2", "a1"]));
    let f = AlertFilter {
        alert_types: strs(&["sla_at_risk", "sla_breached"]),
        ..Default::default()
    };
    assert_eq!(titles(store, &root(), f).await, strs(&["a4", "a3"]));
}

/// `tags` keeps alerts carrying any of the listed tags.
pub async fn filter_tag(store: &dyn AlertStore) {
    seed(store).await;
    let f = AlertFilter {
        tags: strs(&["PK16TT"]),
        ..Default::default()
    };
    assert_eq!(titles(store, &alice(), f).await, strs(&["a5", "a2", "a1"]));
    let f = AlertFilter {
        tags: strs(&["VCH20", "host-1"]),
        ..Default::default()
    };
    assert_eq!(titles(store, &alice(), f).await, strs(&["a6", "a1", "a0"]));
    let f = AlertFilter {
        tags: strs(&["nope"]),
        ..Default::default()
    };
    assert!(titles(store, &alice(), f).await.is_empty());
}

/// `status` keeps active or resolved alerts.
pub async fn filter_status(store: &dyn AlertStore) {
    let s = seed(store).await;
    store.resolve(s["a1"].id, at(20)).await.unwrap();
    let f = AlertFilter {
        status: Some(AlertStatus::Resolved),
        ..Default::default()
    };
    assert_eq!(titles(store, &alice(), f).await, strs(&["a1"]));
    let f = AlertFilter {
        status: Some(AlertStatus::Active),
        ..Default::default()
    };
    assert_eq!(
        titles(store, &alice(), f).await,
        strs(&["a6", "a5", "a2", "a0"])
    );
}

/// `unread_only` leaves out what the viewer read (and only the viewer).
pub async fn filter_unread_only(store: &dyn AlertStore) {
    let s = seed(store).await;
    store.mark_read(&alice(), s["a5"].id, at(20)).await.unwrap();
    let f = AlertFilter {
        unread_only: true,
        ..Default::default()
    };
    assert_eq!(
        titles(store, &alice(), f.clone()).await,
        strs(&["a6", "a2", "a1", "a0"])
    );
    assert_eq!(
        titles(store, &bob(), f).await,
        strs(&["a5", "a4", "a3", "a2"])
    );
}

/// Dismissed alerts are left out unless `include_dismissed`.
pub async fn dismissed_hidden_unless_included(store: &dyn AlertStore) {
    let s = seed(store).await;
    store.dismiss(&alice(), s["a2"].id, at(20)).await.unwrap();
    assert_eq!(
        titles(store, &alice(), AlertFilter::default()).await,
        strs(&["a6", "a5", "a1", "a0"])
    );
    let f = AlertFilter {
        include_dismissed: true,
        ..Default::default()
    };
    let page = store
        .list(&alice(), &AlertQuery::filtered(f), now())
        .await
        .unwrap();
    let titles: Vec<_> = page.alerts.iter().map(|v| v.alert.title.as_str()).collect();
    assert_eq!(titles, ["a6", "a5", "a2", "a1", "a0"]);
    let a2 = page.alerts.iter().find(|v| v.alert.title == "a2").unwrap();
    assert_eq!(a2.receipt.dismissed_at, Some(at(20)));
    // Bob's view of the same broadcast alert is unaffected.
    assert!(
        titles_at(store, &bob(), AlertFilter::default(), now())
            .await
            .contains(&"a2".to_string())
    );
}

/// Several conditions together must all hold.
pub async fn filters_combined(store: &dyn AlertStore) {
    let s = seed(store).await;
    let f = AlertFilter {
        tags: strs(&["PK16TT"]),
        min_severity: Some(Severity::Medium),
        since: Some(at(1)),
        ..Default::default()
    };
    assert_eq!(
        titles(store, &alice(), f.clone()).await,
        strs(&["a5", "a1"])
    );
    store.mark_read(&alice(), s["a5"].id, at(20)).await.unwrap();
    let f = AlertFilter {
        unread_only: true,
        ..f
    };
    assert_eq!(titles(store, &alice(), f.clone()).await, strs(&["a1"]));
    let f = AlertFilter {
        alert_types: strs(&["capacity_warning"]),
        until: Some(at(2)),
        severities: vec![Severity::Medium],
        status: Some(AlertStatus::Active),
        ..f
    };
    assert_eq!(titles(store, &alice(), f).await, strs(&["a1"]));
}

/// Pages of 10 over 57 visible alerts (many sharing timestamps) cover each
/// exactly once, in order, with `total` constant and `has_more` false at the end.
pub async fn pages_cover_the_set_exactly_once(store: &dyn AlertStore) {
    let mut expected = Vec::new();
    for i in 0..70 {
        // Groups of three share a timestamp, to exercise the id tiebreak.
        let aud = if i % 5 == 4 {
            Audience::user("bob")
        } else {
            Audience::group("ops")
        };
        let a = put(
            store,
            alert(simple(&format!("p{i}"), aud.clone()), at(i / 3)),
        )
        .await;
        if aud.is_visible_to(&alice()) {
            expected.push((a.created_at, a.id));
        }
    }
    expected.sort();
    expected.reverse();
    assert_eq!(expected.len(), 56);

    let mut seen = Vec::new();
    let mut q = AlertQuery::default().limit(10);
    let mut pages = 0;
    loop {
        let page = store.list(&alice(), &q, now()).await.unwrap();
        pages += 1;
        assert_eq!(page.total, 56, "total counts every page");
        assert!(page.alerts.len() <= 10);
        seen.extend(page.alerts.iter().map(|v| (v.alert.created_at, v.alert.id)));
        assert_eq!(page.has_more, page.next_cursor.is_some());
        match page.next_cursor {
            Some(c) => q.cursor = Some(c),
            None => break,
        }
        assert!(pages < 20, "paging does not terminate");
    }
    assert_eq!(pages, 6);
    assert_eq!(seen, expected, "pages cover every alert once, newest first");
}

/// New alerts arriving between pages do not shift or repeat later pages.
pub async fn pages_stable_under_concurrent_inserts(store: &dyn AlertStore) {
    let mut original = Vec::new();
    for i in 0..30 {
        original.push(
            put(
                store,
                alert(simple(&format!("o{i}"), Audience::everyone()), at(i)),
            )
            .await
            .id,
        );
    }
    let mut seen = Vec::new();
    let mut q = AlertQuery::default().limit(7);
    let mut round = 0;
    loop {
        let page = store.list(&carol(), &q, now()).await.unwrap();
        // Counts describe the session as it started, whatever arrives meanwhile.
        assert_eq!((page.total, page.unread_count), (30, 30));
        seen.extend(page.alerts.iter().map(|v| v.alert.id));
        // Between pages, more alerts arrive (newer, as live inserts are).
        for j in 0..3 {
            put(
                store,
                alert(
                    simple(&format!("n{round}-{j}"), Audience::everyone()),
                    at(100 + round * 3 + j),
                ),
            )
            .await;
        }
        round += 1;
        match page.next_cursor {
            Some(c) => q.cursor = Some(c),
            None => break,
        }
    }
    original.reverse();
    assert_eq!(
        seen, original,
        "later pages hold exactly the alerts older than the first page"
    );
}

/// The page size is honoured: 1, the default of 50, the maximum of 200, and an
/// exact last page reports no more.
pub async fn limit_bounds(store: &dyn AlertStore) {
    for i in 0..250 {
        put(
            store,
            alert(simple(&format!("l{i}"), Audience::user("alice")), at(i)),
        )
        .await;
    }
    let page = store
        .list(&alice(), &AlertQuery::default().limit(1), now())
        .await
        .unwrap();
    assert_eq!(page.alerts.len(), 1);
    assert!(page.has_more);
    assert_eq!(page.total, 250);
    let page = store
        .list(&alice(), &AlertQuery::default(), now())
        .await
        .unwrap();
    assert_eq!(page.alerts.len(), 50, "default limit is 50");
    let page = store
        .list(&alice(), &AlertQuery::default().limit(200), now())
        .await
        .unwrap();
    assert_eq!(page.alerts.len(), 200);
    let rest = store
        .list(
            &alice(),
            &AlertQuery::default().limit(50).after(page.next_cursor),
            now(),
        )
        .await
        .unwrap();
    assert_eq!(rest.alerts.len(), 50);
    assert!(!rest.has_more, "an exactly full last page has no more");
    assert!(rest.next_cursor.is_none());
}

/// A cursor not made by alertkit is `Invalid`.
pub async fn malformed_cursor_is_invalid(store: &dyn AlertStore) {
    seed(store).await;
    for raw in ["garbage", "", "MTIzNDU", "eyJhIjoxfQ"] {
        let q = AlertQuery::default().after(Some(alertkit_core::Cursor::from_raw(raw)));
        let err = store.list(&alice(), &q, now()).await.unwrap_err();
        assert!(matches!(err, Error::Invalid(_)), "{raw:?} gave {err:?}");
    }
}

/// Stats and unread counts are per user: one reading a broadcast alert does
/// not change the other's counts.
pub async fn stats_and_unread_for_two_users_with_broadcast(store: &dyn AlertStore) {
    let e = put(
        store,
        alert(
            NewAlert::new("capacity_warning", Severity::High, "E").audience(Audience::everyone()),
            at(1),
        ),
    )
    .await;
    put(
        store,
        alert(
            NewAlert::new("sla_breached", Severity::Low, "A").audience(Audience::user("alice")),
            at(2),
        ),
    )
    .await;
    put(
        store,
        alert(
            NewAlert::new("sla_breached", Severity::High, "B").audience(Audience::user("bob")),
            at(3),
        ),
    )
    .await;
    store.mark_read(&alice(), e.id, at(4)).await.unwrap();

    let unread = AlertFilter {
        unread_only: true,
        ..Default::default()
    };
    assert_eq!(store.count(&alice(), &unread, now()).await.unwrap(), 1);
    assert_eq!(store.count(&bob(), &unread, now()).await.unwrap(), 2);
    assert_eq!(
        store
            .count(&alice(), &AlertFilter::default(), now())
            .await
            .unwrap(),
        2
    );

    let sa = store
        .stats(&alice(), &AlertFilter::default(), now())
        .await
        .unwrap();
    assert_eq!((sa.total, sa.total_unread), (2, 1));
    assert_eq!(
        sa.by_severity,
        BTreeMap::from([(Severity::Low, 1), (Severity::High, 1)])
    );
    assert_eq!(
        sa.by_type,
        BTreeMap::from([
            ("capacity_warning".to_string(), 1),
            ("sla_breached".to_string(), 1)
        ])
    );
    let sb = store
        .stats(&bob(), &AlertFilter::default(), now())
        .await
        .unwrap();
    assert_eq!((sb.total, sb.total_unread), (2, 2));
    assert_eq!(sb.by_severity, BTreeMap::from([(Severity::High, 2)]));
    let sr = store
        .stats(&root(), &AlertFilter::default(), now())
        .await
        .unwrap();
    assert_eq!((sr.total, sr.total_unread), (3, 3));

    let page = store
        .list(&bob(), &AlertQuery::default(), now())
        .await
        .unwrap();
    assert_eq!((page.total, page.unread_count), (2, 2));
    let page = store
        .list(&alice(), &AlertQuery::default(), now())
        .await
        .unwrap();
    assert_eq!((page.total, page.unread_count), (2, 1));
}

/// Stats count only what the filter keeps; dismissed alerts are left out.
pub async fn stats_respect_filter(store: &dyn AlertStore) {
    let s = seed(store).await;
    store.dismiss(&alice(), s["a0"].id, at(20)).await.unwrap();
    let f = AlertFilter {
        min_severity: Some(Severity::Medium),
        ..Default::default()
    };
    let st = store.stats(&alice(), &f, now()).await.unwrap();
    // a6 high, a5 medium, a1 medium (a0 dismissed).
    assert_eq!(st.total, 3);
    assert_eq!(
        st.by_severity,
        BTreeMap::from([(Severity::Medium, 2), (Severity::High, 1)])
    );
    assert_eq!(st.by_type.get("capacity_warning"), Some(&1));
    assert_eq!(st.by_type.get("logistics_delay"), Some(&1));
    assert_eq!(st.by_type.get("high_workload"), Some(&1));
}

/// Reading a broadcast alert marks it for that user only.
pub async fn mark_read_isolated_between_users(store: &dyn AlertStore) {
    let a = put(store, alert(simple("all", Audience::everyone()), at(1))).await;
    let r = store.mark_read(&alice(), a.id, at(5)).await.unwrap();
    assert_eq!(r.read_at, Some(at(5)));
    assert_eq!(
        store
            .get(&alice(), a.id, now())
            .await
            .unwrap()
            .receipt
            .read_at,
        Some(at(5))
    );
    assert_eq!(
        store
            .get(&bob(), a.id, now())
            .await
            .unwrap()
            .receipt
            .read_at,
        None
    );
    assert_eq!(
        store
            .get(&root(), a.id, now())
            .await
            .unwrap()
            .receipt
            .read_at,
        None
    );
}

/// Marking read twice keeps the first time.
pub async fn mark_read_is_idempotent(store: &dyn AlertStore) {
    let a = put(store, alert(simple("x", Audience::user("alice")), at(1))).await;
    store.mark_read(&alice(), a.id, at(5)).await.unwrap();
    let again = store.mark_read(&alice(), a.id, at(9)).await.unwrap();
    assert_eq!(again.read_at, Some(at(5)));
}

/// Dismissing is per user, idempotent, and does not mark read.
pub async fn dismiss_isolated_between_users(store: &dyn AlertStore) {
    let a = put(store, alert(simple("g", Audience::everyone()), at(1))).await;
    let r = store.dismiss(&alice(), a.id, at(5)).await.unwrap();
    assert_eq!(r.dismissed_at, Some(at(5)));
    assert_eq!(r.read_at, None);
    assert_eq!(
        store
            .dismiss(&alice(), a.id, at(7))
            .await
            .unwrap()
            .dismissed_at,
        Some(at(5))
    );
    assert_eq!(
        store
            .get(&bob(), a.id, now())
            .await
            .unwrap()
            .receipt
            .dismissed_at,
        None
    );
    let unread = AlertFilter {
        unread_only: true,
        ..Default::default()
    };
    assert_eq!(
        store.count(&alice(), &unread, now()).await.unwrap(),
        0,
        "dismissed leaves the badge"
    );
    assert_eq!(store.count(&bob(), &unread, now()).await.unwrap(), 1);
}

/// Receipts cannot be written on alerts the viewer cannot see, or that do not exist.
pub async fn receipts_on_invisible_alert_are_not_found(store: &dyn AlertStore) {
    let a = put(store, alert(simple("b", Audience::user("bob")), at(1))).await;
    assert!(matches!(
        store.mark_read(&alice(), a.id, now()).await,
        Err(Error::NotFound(_))
    ));
    assert!(matches!(
        store.dismiss(&alice(), a.id, now()).await,
        Err(Error::NotFound(_))
    ));
    assert!(matches!(
        store.mark_read(&alice(), AlertId::new(), now()).await,
        Err(Error::NotFound(_))
    ));
    assert_eq!(
        store
            .get(&bob(), a.id, now())
            .await
            .unwrap()
            .receipt
            .read_at,
        None
    );
}

/// Mark-all-read with a filter marks exactly the matching unread alerts the
/// viewer sees, returns their ids, and touches no one else's state.
pub async fn mark_all_read_with_filter(store: &dyn AlertStore) {
    let s = seed(store).await;
    store.mark_read(&alice(), s["a1"].id, at(15)).await.unwrap();
    let f = AlertFilter {
        tags: strs(&["PK16TT", "VCH20"]),
        ..Default::default()
    };
    let mut ids = store.mark_all_read(&alice(), &f, at(20)).await.unwrap();
    ids.sort();
    let mut want = vec![s["a0"].id, s["a2"].id, s["a5"].id];
    want.sort();
    assert_eq!(ids, want, "already-read a1 and untagged a6 are not marked");
    assert_eq!(
        store
            .get(&alice(), s["a1"].id, now())
            .await
            .unwrap()
            .receipt
            .read_at,
        Some(at(15))
    );
    assert_eq!(
        store
            .get(&alice(), s["a5"].id, now())
            .await
            .unwrap()
            .receipt
            .read_at,
        Some(at(20))
    );
    let unread = AlertFilter {
        unread_only: true,
        ..Default::default()
    };
    assert_eq!(titles(store, &alice(), unread.clone()).await, strs(&["a6"]));
    assert_eq!(
        titles(store, &bob(), unread.clone()).await,
        strs(&["a5", "a4", "a3", "a2"])
    );
    // Everything, then nothing left.
    assert_eq!(
        store
            .mark_all_read(&alice(), &AlertFilter::default(), at(21))
            .await
            .unwrap(),
        vec![s["a6"].id]
    );
    assert!(
        store
            .mark_all_read(&alice(), &AlertFilter::default(), at(22))
            .await
            .unwrap()
            .is_empty()
    );
}

/// Raising an active alert's dedup key merges into it.
pub async fn dedup_merges_active_alert(store: &dyn AlertStore) {
    let first = put(
        store,
        alert(
            NewAlert::new("capacity_warning", Severity::Medium, "v1")
                .message("m1")
                .dedup_key("cap:X")
                .audience(Audience::user("alice")),
            at(1),
        ),
    )
    .await;
    let again = alert(
        NewAlert::new("capacity_warning", Severity::Medium, "v2")
            .message("m2")
            .dedup_key("cap:X")
            .metadata(json!({"run": 2}))
            .audience(Audience::user("alice")),
        at(120),
    );
    let raised = store
        .insert_or_dedup(again.clone(), &[], at(120))
        .await
        .unwrap();
    assert!(raised.deduplicated);
    assert!(!raised.escalated);
    let a = raised.alert;
    assert_eq!(a.id, first.id, "the active alert absorbs the repeat");
    assert_eq!(a.occurrences, 2);
    assert_eq!(a.created_at, at(1));
    assert_eq!(a.last_seen_at, at(120));
    assert_eq!(a.updated_at, at(120));
    assert_eq!((a.title.as_str(), a.message.as_str()), ("v2", "m2"));
    assert_eq!(a.metadata, json!({"run": 2}));
    assert_eq!(store.get(&alice(), first.id, now()).await.unwrap().alert, a);
    assert_eq!(
        store
            .count(&root(), &AlertFilter::default(), now())
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .find_active("cap:X", now())
            .await
            .unwrap()
            .map(|a| a.id),
        Some(first.id)
    );
    assert!(store.find_active("cap:Y", now()).await.unwrap().is_none());
}

/// A repeat with a higher severity escalates; a lower one never lowers it.
pub async fn dedup_escalates_never_lowers(store: &dyn AlertStore) {
    let key = "sla:ticket-9";
    let mk = |sev, m| alert(NewAlert::new("sla_at_risk", sev, "t").dedup_key(key), at(m));
    put(store, mk(Severity::Medium, 1)).await;
    let r = store
        .insert_or_dedup(mk(Severity::Critical, 2), &[], at(2))
        .await
        .unwrap();
    assert!(r.deduplicated && r.escalated);
    assert_eq!(r.alert.severity, Severity::Critical);
    let r = store
        .insert_or_dedup(mk(Severity::Low, 3), &[], at(3))
        .await
        .unwrap();
    assert!(r.deduplicated && !r.escalated);
    assert_eq!(r.alert.severity, Severity::Critical);
    assert_eq!(r.alert.occurrences, 3);
    let f = AlertFilter {
        severities: vec![Severity::Critical],
        ..Default::default()
    };
    assert_eq!(
        store.count(&alice(), &f, now()).await.unwrap(),
        1,
        "filters see the escalated severity"
    );
}

/// Eight concurrent raises of one key give one alert with eight occurrences.
pub async fn dedup_concurrent_raises_make_one_alert(store: &dyn AlertStore) {
    let raises = (0..8).map(|i| {
        let a = alert(
            NewAlert::new("capacity_warning", Severity::High, format!("r{i}"))
                .dedup_key("cap:concurrent"),
            at(1),
        );
        store.insert_or_dedup(a, &[], at(1))
    });
    let results = futures::future::join_all(raises).await;
    let created = results
        .iter()
        .filter(|r| matches!(r, Ok(r) if !r.deduplicated))
        .count();
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert_eq!(created, 1, "exactly one raise creates the alert");
    let page = store
        .list(&root(), &AlertQuery::default(), now())
        .await
        .unwrap();
    assert_eq!(page.total, 1);
    assert_eq!(page.alerts[0].alert.occurrences, 8);
}

/// A repeat of an active alert that has expired revives it: the repeat's
/// expiry replaces the old one, so the alert is visible again with its
/// history (same id, occurrences counted on).
pub async fn dedup_revives_expired_active_alert(store: &dyn AlertStore) {
    let first = put(
        store,
        alert(
            simple("v1", Audience::user("alice"))
                .dedup_key("fc:VCH20")
                .expires_at(at(120)),
            at(0),
        ),
    )
    .await;
    assert!(matches!(
        store.get(&alice(), first.id, at(130)).await,
        Err(Error::NotFound(_))
    ));
    let repeat = alert(
        simple("v2", Audience::user("alice"))
            .dedup_key("fc:VCH20")
            .expires_at(at(250)),
        at(130),
    );
    let r = store.insert_or_dedup(repeat, &[], at(130)).await.unwrap();
    assert!(r.deduplicated);
    assert_eq!(r.alert.id, first.id);
    assert_eq!(r.alert.expires_at, Some(at(250)));
    assert_eq!(r.alert.occurrences, 2);
    let v = store.get(&alice(), first.id, at(130)).await.unwrap();
    assert_eq!(v.alert.title, "v2");
    // A repeat without expiry makes it permanent.
    let forever = alert(
        simple("v3", Audience::user("alice")).dedup_key("fc:VCH20"),
        at(131),
    );
    assert_eq!(
        store
            .insert_or_dedup(forever, &[], at(131))
            .await
            .unwrap()
            .alert
            .expires_at,
        None
    );
    assert!(store.get(&alice(), first.id, at(100_000)).await.is_ok());
}

/// Different keys, and alerts without a key, never merge.
pub async fn dedup_keys_are_independent(store: &dyn AlertStore) {
    put(
        store,
        alert(simple("k1", Audience::user("alice")).dedup_key("k1"), at(1)),
    )
    .await;
    put(
        store,
        alert(simple("k2", Audience::user("alice")).dedup_key("k2"), at(2)),
    )
    .await;
    put(store, alert(simple("none", Audience::user("alice")), at(3))).await;
    put(store, alert(simple("none", Audience::user("alice")), at(4))).await;
    assert_eq!(
        store
            .count(&alice(), &AlertFilter::default(), now())
            .await
            .unwrap(),
        4
    );
}

/// Once resolved, the key is free: the next raise creates a new alert.
pub async fn resolve_then_dedup_creates_new_alert(store: &dyn AlertStore) {
    let first = put(
        store,
        alert(
            simple("v1", Audience::user("alice")).dedup_key("cap:Z"),
            at(1),
        ),
    )
    .await;
    let (resolved, changed) = store.resolve(first.id, at(5)).await.unwrap();
    assert!(changed);
    assert_eq!(resolved.status, AlertStatus::Resolved);
    assert_eq!(resolved.updated_at, at(5));
    assert!(store.find_active("cap:Z", now()).await.unwrap().is_none());
    let r = store
        .insert_or_dedup(
            alert(
                simple("v2", Audience::user("alice")).dedup_key("cap:Z"),
                at(10),
            ),
            &[],
            at(10),
        )
        .await
        .unwrap();
    assert!(!r.deduplicated);
    assert_ne!(r.alert.id, first.id);
    assert_eq!(r.alert.occurrences, 1);
    assert_eq!(
        store
            .get(&alice(), first.id, now())
            .await
            .unwrap()
            .alert
            .status,
        AlertStatus::Resolved
    );
    // And the new one is the active holder of the key from now on.
    let r2 = store
        .insert_or_dedup(
            alert(
                simple("v3", Audience::user("alice")).dedup_key("cap:Z"),
                at(11),
            ),
            &[],
            at(11),
        )
        .await
        .unwrap();
    assert!(r2.deduplicated);
    assert_eq!(r2.alert.id, r.alert.id);
}

/// Resolving twice changes nothing the second time.
pub async fn resolve_is_idempotent(store: &dyn AlertStore) {
    let a = put(store, alert(simple("x", Audience::user("alice")), at(1))).await;
    store.resolve(a.id, at(2)).await.unwrap();
    let (again, changed) = store.resolve(a.id, at(3)).await.unwrap();
    assert!(!changed);
    assert_eq!(again.updated_at, at(2));
}

/// Resolving an unknown id is `NotFound`.
pub async fn resolve_missing_is_not_found(store: &dyn AlertStore) {
    assert!(matches!(
        store.resolve(AlertId::new(), now()).await,
        Err(Error::NotFound(_))
    ));
    assert!(matches!(
        store.delete(AlertId::new()).await,
        Err(Error::NotFound(_))
    ));
}

/// Delete removes the alert, frees its dedup key and drops its receipts.
pub async fn delete_removes_alert_and_receipts(store: &dyn AlertStore) {
    let a = put(
        store,
        alert(simple("d", Audience::everyone()).dedup_key("del"), at(1)),
    )
    .await;
    store.mark_read(&alice(), a.id, at(2)).await.unwrap();
    let deleted = store.delete(a.id).await.unwrap();
    assert_eq!(deleted.id, a.id);
    assert_eq!(deleted.audience, Audience::everyone());
    assert!(matches!(
        store.get(&root(), a.id, now()).await,
        Err(Error::NotFound(_))
    ));
    assert!(store.find_active("del", now()).await.unwrap().is_none());
    // Storing the same id again starts with no receipts.
    put(store, a.clone()).await;
    assert_eq!(
        store
            .get(&alice(), a.id, now())
            .await
            .unwrap()
            .receipt
            .read_at,
        None
    );
}

/// Alerts past `expires_at` disappear from every read and receipt operation.
pub async fn expired_alerts_are_invisible(store: &dyn AlertStore) {
    let clock = ManualClock::new(at(0));
    let a = put(
        store,
        alert(
            simple("soon", Audience::user("alice")).expires_at(at(10)),
            at(1),
        ),
    )
    .await;
    put(
        store,
        alert(simple("stays", Audience::user("alice")), at(2)),
    )
    .await;
    clock.set(at(9));
    assert_eq!(
        titles_at(store, &alice(), AlertFilter::default(), clock.now()).await,
        strs(&["stays", "soon"])
    );
    assert!(store.get(&alice(), a.id, clock.now()).await.is_ok());
    clock.advance(Duration::minutes(1));
    let now = clock.now();
    assert_eq!(
        titles_at(store, &alice(), AlertFilter::default(), now).await,
        strs(&["stays"])
    );
    assert!(matches!(
        store.get(&alice(), a.id, now).await,
        Err(Error::NotFound(_))
    ));
    assert!(matches!(
        store.mark_read(&alice(), a.id, now).await,
        Err(Error::NotFound(_))
    ));
    assert_eq!(
        store
            .count(&alice(), &AlertFilter::default(), now)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .stats(&root(), &AlertFilter::default(), now)
            .await
            .unwrap()
            .total,
        1
    );
    assert_eq!(
        store
            .mark_all_read(&alice(), &AlertFilter::default(), now)
            .await
            .unwrap()
            .len(),
        1
    );
}

/// Purge deletes expired alerts and those not updated within retention, with
/// their receipts, and keeps the rest.
pub async fn purge_expired_and_past_retention(store: &dyn AlertStore) {
    let clock = ManualClock::new(t0());
    let retention = Duration::days(30);
    let expiring = put(
        store,
        alert(
            simple("expiring", Audience::everyone()).expires_at(at(60)),
            at(0),
        ),
    )
    .await;
    let old = put(store, alert(simple("old", Audience::everyone()), at(0))).await;
    store.mark_read(&alice(), old.id, at(1)).await.unwrap();
    put(
        store,
        alert(
            simple("renewed", Audience::everyone()).dedup_key("r"),
            at(0),
        ),
    )
    .await;
    put(
        store,
        alert(simple("fresh", Audience::everyone()), at(60 * 24 * 20)),
    )
    .await;

    clock.advance(Duration::minutes(30));
    assert_eq!(
        store
            .purge_expired(clock.now(), retention, 100)
            .await
            .unwrap(),
        0
    );
    clock.advance(Duration::minutes(30));
    assert_eq!(
        store
            .purge_expired(clock.now(), retention, 100)
            .await
            .unwrap(),
        1,
        "expired now"
    );
    assert!(matches!(
        store.get(&root(), expiring.id, clock.now()).await,
        Err(Error::NotFound(_))
    ));

    // A dedup hit on day 25 keeps `renewed` alive past day 30.
    let repeat = alert(
        simple("renewed", Audience::everyone()).dedup_key("r"),
        at(60 * 24 * 25),
    );
    store
        .insert_or_dedup(repeat, &[], at(60 * 24 * 25))
        .await
        .unwrap();

    clock.set(t0() + Duration::days(31));
    assert_eq!(
        store
            .purge_expired(clock.now(), retention, 100)
            .await
            .unwrap(),
        1,
        "old is past retention"
    );
    let left = titles_at(store, &root(), AlertFilter::default(), clock.now()).await;
    assert_eq!(left, strs(&["fresh", "renewed"]));
    assert!(matches!(
        store.get(&alice(), old.id, clock.now()).await,
        Err(Error::NotFound(_))
    ));
    // Its receipt went with it.
    put(store, old.clone()).await;
    assert_eq!(
        store
            .get(&alice(), old.id, clock.now())
            .await
            .unwrap()
            .receipt
            .read_at,
        None
    );
}

/// Purge deletes at most `batch` alerts per call.
pub async fn purge_in_bounded_batches(store: &dyn AlertStore) {
    for i in 0..5 {
        put(
            store,
            alert(
                simple(&format!("e{i}"), Audience::everyone()).expires_at(at(10)),
                at(i),
            ),
        )
        .await;
    }
    put(store, alert(simple("keep", Audience::everyone()), at(6))).await;
    let n: Vec<u64> = {
        let mut v = Vec::new();
        for _ in 0..4 {
            v.push(
                store
                    .purge_expired(at(11), Duration::days(30), 2)
                    .await
                    .unwrap(),
            );
        }
        v
    };
    assert_eq!(n, vec![2, 2, 1, 0]);
    assert_eq!(
        titles(store, &root(), AlertFilter::default()).await,
        strs(&["keep"])
    );
}

/// Users see their own, their groups' and everyone's alerts; admins see all.
pub async fn visibility_user_group_everyone_admin(store: &dyn AlertStore) {
    let multi = Audience::from_targets([Target::user("carol"), Target::group("sales")]);
    put(store, alert(simple("multi", multi), at(1))).await;
    put(store, alert(simple("ops", Audience::group("ops")), at(2))).await;
    put(store, alert(simple("all", Audience::everyone()), at(3))).await;
    put(store, alert(simple("dave", Audience::user("dave")), at(4))).await;
    let dan = Viewer::new("dan", ["ops", "sales"]);
    assert_eq!(
        titles(store, &alice(), AlertFilter::default()).await,
        strs(&["all", "ops"])
    );
    assert_eq!(
        titles(store, &bob(), AlertFilter::default()).await,
        strs(&["all", "multi"])
    );
    assert_eq!(
        titles(store, &carol(), AlertFilter::default()).await,
        strs(&["all", "multi"])
    );
    assert_eq!(
        titles(store, &dan, AlertFilter::default()).await,
        strs(&["all", "ops", "multi"])
    );
    assert_eq!(
        titles(store, &root(), AlertFilter::default()).await,
        strs(&["dave", "all", "ops", "multi"])
    );
    // A user whose id looks like a group name gets nothing extra.
    let sneaky = Viewer::new("ops", Vec::<String>::new());
    assert_eq!(
        titles(store, &sneaky, AlertFilter::default()).await,
        strs(&["all"])
    );
}

/// Strings that break naive query building round-trip unchanged.
pub async fn hostile_strings_round_trip(store: &dyn AlertStore) {
    let nasty = [
        "O'Brien; DROP TABLE alerts; --",
        "$where",
        "{\"$gt\": \"\"}",
        "%_\\",
        "🔥 ⚠️ 日本語",
    ];
    for (i, s) in nasty.iter().enumerate() {
        let new = NewAlert::new(*s, Severity::High, *s)
            .message(s.repeat(100))
            .tags([*s])
            .dedup_key(*s)
            .audience(Audience::from_targets([
                Target::user(*s),
                Target::group(*s),
            ]))
            .metadata(json!({ *s: *s }));
        let a = put(store, alert(new, at(i as i64))).await;
        let viewer = Viewer::new(*s, Vec::<String>::new());
        assert_eq!(store.get(&viewer, a.id, now()).await.unwrap().alert, a);
        let f = AlertFilter {
            tags: vec![s.to_string()],
            alert_types: vec![s.to_string()],
            ..Default::default()
        };
        assert_eq!(
            titles(store, &viewer, f).await,
            vec![s.to_string()],
            "filter by {s:?}"
        );
        assert_eq!(
            store.find_active(s, now()).await.unwrap().map(|x| x.id),
            Some(a.id)
        );
    }
    let big = "x".repeat(10_000);
    let a = put(
        store,
        alert(
            simple("big", Audience::user("alice")).message(big.clone()),
            at(50),
        ),
    )
    .await;
    assert_eq!(
        store
            .get(&alice(), a.id, now())
            .await
            .unwrap()
            .alert
            .message,
        big
    );
    // Past the engine's validation, a 10 KB tag or a NUL byte either
    // round-trips exactly or is refused as Invalid, never a backend failure.
    let mut long_tag = alert(simple("long tag", Audience::user("alice")), at(60));
    long_tag.tags = vec!["t".repeat(10_000)];
    let mut nul = alert(simple("nul", Audience::user("alice")), at(61));
    nul.alert_type = "type\0with NUL".into();
    for a in [long_tag, nul] {
        match store.insert_or_dedup(a.clone(), &[], a.created_at).await {
            Ok(r) => {
                let back = store.get(&alice(), a.id, now()).await.unwrap().alert;
                assert!(
                    back == Alert {
                        seq: r.alert.seq,
                        ..a.clone()
                    },
                    "{} changed",
                    a.title
                );
            }
            Err(e) => assert!(matches!(e, Error::Invalid(_)), "{} gave {e:?}", a.title),
        }
    }
    // Only the exact string matches: no wildcard or operator semantics.
    let f = AlertFilter {
        tags: strs(&["%"]),
        ..Default::default()
    };
    assert!(titles(store, &root(), f).await.is_empty());
}

fn rule(name: &str) -> AlertRule {
    let now = t0();
    AlertRule {
        id: uuid::Uuid::now_v7(),
        name: name.into(),
        kind: RuleKind::Threshold,
        enabled: true,
        conditions: json!({"metric": "queue_depth", "op": ">", "value": 100}),
        template: NewAlert::new("high_workload", Severity::High, "Queue {value}"),
        for_secs: 300,
        cooldown_secs: 900,
        created_at: now,
        updated_at: now,
    }
}

/// Rules: create, unique names, get, list by name, update, delete.
pub async fn rules_crud(store: &dyn AlertStore) {
    let b = store.create_rule(rule("b-queue")).await.unwrap();
    let a = store.create_rule(rule("a-sla")).await.unwrap();
    assert!(matches!(
        store.create_rule(rule("a-sla")).await,
        Err(Error::Conflict(_))
    ));
    assert_eq!(store.get_rule(b.id).await.unwrap(), b);
    let names: Vec<_> = store
        .list_rules()
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.name)
        .collect();
    assert_eq!(names, ["a-sla", "b-queue"]);

    let mut changed = b.clone();
    changed.enabled = false;
    changed.conditions = json!({"metric": "queue_depth", "op": ">", "value": 500});
    changed.updated_at = at(5);
    assert_eq!(store.update_rule(changed.clone()).await.unwrap(), changed);
    assert_eq!(store.get_rule(b.id).await.unwrap(), changed);
    let mut clash = changed.clone();
    clash.name = "a-sla".into();
    assert!(matches!(
        store.update_rule(clash).await,
        Err(Error::Conflict(_))
    ));
    assert!(matches!(
        store.update_rule(rule("ghost")).await,
        Err(Error::NotFound(_))
    ));

    store.delete_rule(a.id).await.unwrap();
    assert!(matches!(
        store.get_rule(a.id).await,
        Err(Error::NotFound(_))
    ));
    assert!(matches!(
        store.delete_rule(a.id).await,
        Err(Error::NotFound(_))
    ));
    assert_eq!(store.list_rules().await.unwrap().len(), 1);
}

/// Subscriptions: replace a user's set; match by type (or `*`), severity, enabled.
pub async fn subscriptions_replace_and_match(store: &dyn AlertStore) {
    let mut email_high =
        Subscription::new("alice", "sla_breached", [Channel::Email, Channel::InApp]);
    email_high.min_severity = Severity::High;
    let any = Subscription::new("bob", ANY_ALERT_TYPE, [Channel::Slack]);
    let mut off = Subscription::new("carol", "sla_breached", [Channel::Webhook]);
    off.enabled = false;
    store
        .set_subscriptions("alice", vec![email_high.clone()])
        .await
        .unwrap();
    store
        .set_subscriptions("bob", vec![any.clone()])
        .await
        .unwrap();
    store.set_subscriptions("carol", vec![off]).await.unwrap();
    assert_eq!(
        store.subscriptions("alice").await.unwrap(),
        vec![email_high.clone()]
    );
    assert!(store.subscriptions("nobody").await.unwrap().is_empty());

    let users = |subs: Vec<Subscription>| {
        let mut u: Vec<String> = subs.into_iter().map(|s| s.user_id).collect();
        u.sort();
        u
    };
    assert_eq!(
        users(
            store
                .subscribers("sla_breached", Severity::Critical)
                .await
                .unwrap()
        ),
        ["alice", "bob"]
    );
    assert_eq!(
        users(
            store
                .subscribers("sla_breached", Severity::Medium)
                .await
                .unwrap()
        ),
        ["bob"]
    );
    assert_eq!(
        users(store.subscribers("other", Severity::Info).await.unwrap()),
        ["bob"]
    );

    // Replacing drops what is not in the new set.
    let digest = Subscription {
        digest: Some(alertkit_core::Digest::Daily),
        ..Subscription::new("alice", "capacity_warning", [Channel::Email])
    };
    store
        .set_subscriptions("alice", vec![digest.clone()])
        .await
        .unwrap();
    assert_eq!(store.subscriptions("alice").await.unwrap(), vec![digest]);
    assert_eq!(
        users(
            store
                .subscribers("sla_breached", Severity::Critical)
                .await
                .unwrap()
        ),
        ["bob"]
    );
    store.set_subscriptions("alice", vec![]).await.unwrap();
    assert!(store.subscriptions("alice").await.unwrap().is_empty());
}

fn targets(list: &[(&str, Channel)]) -> Vec<DeliveryTarget> {
    list.iter()
        .map(|(u, c)| DeliveryTarget::new(*u, *c))
        .collect()
}

fn keyed(sev: Severity, minute: i64) -> Alert {
    alert(
        NewAlert::new("sla_at_risk", sev, "outbox")
            .dedup_key("outbox:k")
            .audience(Audience::everyone()),
        at(minute),
    )
}

/// A new alert enqueues one pending delivery per target, due at once, in the
/// same write; repeated targets collapse.
pub async fn outbox_enqueued_with_new_alert(store: &dyn AlertStore) {
    let t = targets(&[
        ("alice", Channel::Email),
        ("bob", Channel::Slack),
        ("alice", Channel::Email),
    ]);
    let a = store
        .insert_or_dedup(keyed(Severity::High, 1), &t, at(1))
        .await
        .unwrap()
        .alert;
    let ds = store.deliveries(a.id).await.unwrap();
    let mut got: Vec<(String, Channel)> =
        ds.iter().map(|d| (d.user_id.clone(), d.channel)).collect();
    got.sort();
    assert_eq!(
        got,
        vec![
            ("alice".to_string(), Channel::Email),
            ("bob".to_string(), Channel::Slack)
        ]
    );
    for d in &ds {
        assert_eq!(d.status, DeliveryStatus::Pending);
        assert_eq!(
            (d.attempts, d.severity, d.alert_id),
            (0, Severity::High, a.id)
        );
        assert_eq!((d.next_attempt_at, d.created_at), (at(1), at(1)));
        assert!(d.lease_until.is_none() && d.last_error.is_none());
    }
    let none = store
        .insert_or_dedup(
            alert(simple("quiet", Audience::everyone()), at(2)),
            &[],
            at(2),
        )
        .await
        .unwrap();
    assert!(store.deliveries(none.alert.id).await.unwrap().is_empty());
}

/// A dedup hit enqueues nothing; an escalation enqueues again at the new
/// severity; a receiver never gets two deliveries at one severity.
pub async fn outbox_only_escalation_notifies_again(store: &dyn AlertStore) {
    let t = targets(&[("alice", Channel::Email)]);
    let a = store
        .insert_or_dedup(keyed(Severity::Medium, 1), &t, at(1))
        .await
        .unwrap()
        .alert;
    store
        .insert_or_dedup(keyed(Severity::Medium, 2), &t, at(2))
        .await
        .unwrap();
    store
        .insert_or_dedup(keyed(Severity::Low, 3), &t, at(3))
        .await
        .unwrap();
    assert_eq!(
        store.deliveries(a.id).await.unwrap().len(),
        1,
        "repeats do not notify again"
    );
    let r = store
        .insert_or_dedup(keyed(Severity::Critical, 4), &t, at(4))
        .await
        .unwrap();
    assert!(r.escalated);
    let ds = store.deliveries(a.id).await.unwrap();
    let sevs: Vec<Severity> = ds.iter().map(|d| d.severity).collect();
    assert_eq!(sevs, vec![Severity::Medium, Severity::Critical]);
    assert_eq!(ds[1].created_at, at(4));
}

/// Claims lease deliveries: claimed ones are not claimed again until the
/// lease lapses, then they are, with the attempt counted.
pub async fn outbox_claims_lease_and_expire(store: &dyn AlertStore) {
    let t = targets(&[
        ("u1", Channel::Email),
        ("u2", Channel::Email),
        ("u3", Channel::Slack),
    ]);
    let a = store
        .insert_or_dedup(keyed(Severity::High, 1), &t, at(1))
        .await
        .unwrap()
        .alert;
    let lease = Duration::minutes(5);
    assert!(
        store
            .claim_deliveries(at(0), lease, 10)
            .await
            .unwrap()
            .is_empty(),
        "not due before creation"
    );
    let first = store.claim_deliveries(at(2), lease, 2).await.unwrap();
    assert_eq!(first.len(), 2);
    for c in &first {
        assert_eq!(c.alert, a, "the claim carries the alert");
        assert_eq!(c.delivery.status, DeliveryStatus::InFlight);
        assert_eq!(c.delivery.attempts, 1);
        assert_eq!(c.delivery.lease_until, Some(at(7)));
    }
    let second = store.claim_deliveries(at(3), lease, 10).await.unwrap();
    assert_eq!(second.len(), 1, "only the unclaimed one is left");
    assert!(first.iter().all(|c| c.delivery.id != second[0].delivery.id));
    assert!(
        store
            .claim_deliveries(at(6), lease, 10)
            .await
            .unwrap()
            .is_empty(),
        "leases hold"
    );
    // The first dispatcher died: at 7 its two leases lapse and are re-claimed.
    let again = store.claim_deliveries(at(7), lease, 10).await.unwrap();
    let mut ids: Vec<_> = again.iter().map(|c| c.delivery.id).collect();
    let mut want: Vec<_> = first.iter().map(|c| c.delivery.id).collect();
    ids.sort();
    want.sort();
    assert_eq!(ids, want);
    assert!(again.iter().all(|c| c.delivery.attempts == 2));
}

/// Outcomes: sent is final, retry waits until its time, dead is final; a
/// stale attempt cannot overwrite a newer one.
pub async fn outbox_outcomes(store: &dyn AlertStore) {
    let t = targets(&[
        ("u1", Channel::Email),
        ("u2", Channel::Slack),
        ("u3", Channel::Webhook),
    ]);
    let a = store
        .insert_or_dedup(keyed(Severity::High, 1), &t, at(1))
        .await
        .unwrap()
        .alert;
    let lease = Duration::minutes(5);
    let claimed = store.claim_deliveries(at(1), lease, 10).await.unwrap();
    assert_eq!(claimed.len(), 3);
    let by_user = |u: &str| {
        claimed
            .iter()
            .find(|c| c.delivery.user_id == u)
            .unwrap()
            .delivery
            .clone()
    };
    let (d1, d2, d3) = (by_user("u1"), by_user("u2"), by_user("u3"));

    let sent = store
        .complete_delivery(d1.id, 1, DeliveryOutcome::Sent, at(2))
        .await
        .unwrap();
    assert_eq!(
        (sent.status, sent.lease_until, sent.updated_at),
        (DeliveryStatus::Sent, None, at(2))
    );
    let retry = DeliveryOutcome::Retry {
        at: at(60),
        error: "429 Too Many Requests".into(),
    };
    let r = store
        .complete_delivery(d2.id, 1, retry, at(2))
        .await
        .unwrap();
    assert_eq!(
        (r.status, r.next_attempt_at),
        (DeliveryStatus::Pending, at(60))
    );
    assert_eq!(r.last_error.as_deref(), Some("429 Too Many Requests"));
    let dead = DeliveryOutcome::Dead {
        error: "410 Gone".into(),
    };
    assert_eq!(
        store
            .complete_delivery(d3.id, 1, dead, at(2))
            .await
            .unwrap()
            .status,
        DeliveryStatus::Dead
    );

    // Completing twice, or a wrong attempt, conflicts.
    assert!(matches!(
        store
            .complete_delivery(d1.id, 1, DeliveryOutcome::Sent, at(3))
            .await,
        Err(Error::Conflict(_))
    ));
    assert!(matches!(
        store
            .complete_delivery(uuid::Uuid::now_v7(), 1, DeliveryOutcome::Sent, at(3))
            .await,
        Err(Error::NotFound(_))
    ));

    assert!(
        store
            .claim_deliveries(at(59), lease, 10)
            .await
            .unwrap()
            .is_empty(),
        "retry waits; sent and dead are final"
    );
    let later = store.claim_deliveries(at(60), lease, 10).await.unwrap();
    assert_eq!(later.len(), 1);
    assert_eq!(
        (later[0].delivery.id, later[0].delivery.attempts),
        (d2.id, 2)
    );
    // The attempt-1 worker, late, cannot record over attempt 2.
    assert!(matches!(
        store
            .complete_delivery(d2.id, 1, DeliveryOutcome::Sent, at(61))
            .await,
        Err(Error::Conflict(_))
    ));
    store
        .complete_delivery(d2.id, 2, DeliveryOutcome::Sent, at(61))
        .await
        .unwrap();
    let statuses: Vec<DeliveryStatus> = store
        .deliveries(a.id)
        .await
        .unwrap()
        .iter()
        .map(|d| d.status)
        .collect();
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == DeliveryStatus::Sent)
            .count(),
        2
    );
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == DeliveryStatus::Dead)
            .count(),
        1
    );
}

/// Concurrent claims never hand one delivery to two dispatchers.
pub async fn outbox_concurrent_claims_never_overlap(store: &dyn AlertStore) {
    let t: Vec<DeliveryTarget> = (0..40)
        .map(|i| DeliveryTarget::new(format!("u{i}"), Channel::Email))
        .collect();
    store
        .insert_or_dedup(keyed(Severity::High, 1), &t, at(1))
        .await
        .unwrap();
    let claims = (0..6).map(|_| store.claim_deliveries(at(2), Duration::minutes(5), 8));
    let results = futures::future::join_all(claims).await;
    let mut ids = Vec::new();
    for r in results {
        ids.extend(r.unwrap().into_iter().map(|c| c.delivery.id));
    }
    let n = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), n, "a delivery was claimed twice");
    assert_eq!(n, 40, "6 claims of 8 cover all 40");
}

/// Deleting or purging an alert drops its deliveries.
pub async fn outbox_follows_alert_deletion(store: &dyn AlertStore) {
    let t = targets(&[("u1", Channel::Email)]);
    let a = store
        .insert_or_dedup(keyed(Severity::High, 1), &t, at(1))
        .await
        .unwrap()
        .alert;
    store.delete(a.id).await.unwrap();
    assert!(store.deliveries(a.id).await.unwrap().is_empty());
    assert!(
        store
            .claim_deliveries(at(2), Duration::minutes(5), 10)
            .await
            .unwrap()
            .is_empty()
    );
}

fn run(job: &str, tick: i64) -> JobRun {
    JobRun {
        id: uuid::Uuid::now_v7(),
        job_id: job.into(),
        scheduled_at: at(tick),
        started_at: None,
        finished_at: None,
        status: RunStatus::Pending,
        error: None,
    }
}

/// Each (job, tick) is claimed once, also by concurrent claimers.
pub async fn job_run_claimed_once_per_tick(store: &dyn AlertStore) {
    assert!(store.claim_job_run(&run("forecast", 120)).await.unwrap());
    assert!(
        !store.claim_job_run(&run("forecast", 120)).await.unwrap(),
        "same tick twice"
    );
    assert!(store.claim_job_run(&run("forecast", 240)).await.unwrap());
    assert!(
        store.claim_job_run(&run("retention", 120)).await.unwrap(),
        "other job, same tick"
    );
    let claims: Vec<JobRun> = (0..8).map(|_| run("rules", 1)).collect();
    let results = futures::future::join_all(claims.iter().map(|r| store.claim_job_run(r))).await;
    let won = results.into_iter().filter(|r| *r.as_ref().unwrap()).count();
    assert_eq!(won, 1, "exactly one of eight instances runs the tick");
}

/// Runs are updated through their life and listed newest tick first.
pub async fn job_runs_update_and_list(store: &dyn AlertStore) {
    let mut runs = Vec::new();
    for tick in [0, 120, 240] {
        let r = run("forecast", tick);
        assert!(store.claim_job_run(&r).await.unwrap());
        runs.push(r);
    }
    let mut r = runs[2].clone();
    r.status = RunStatus::Running;
    r.started_at = Some(at(240) + Duration::milliseconds(5));
    store.update_job_run(&r).await.unwrap();
    r.status = RunStatus::Failed;
    r.finished_at = Some(at(241));
    r.error = Some("model did not converge: 'nan'".into());
    store.update_job_run(&r).await.unwrap();

    let listed = store.job_runs("forecast", 10).await.unwrap();
    assert_eq!(listed.len(), 3);
    assert_eq!(listed[0], r, "every field round-trips");
    let ticks: Vec<_> = listed.iter().map(|r| r.scheduled_at).collect();
    assert_eq!(ticks, vec![at(240), at(120), at(0)]);
    assert_eq!(store.job_runs("forecast", 2).await.unwrap().len(), 2);
    assert!(store.job_runs("other", 10).await.unwrap().is_empty());
    assert!(matches!(
        store.update_job_run(&run("ghost", 5)).await,
        Err(Error::NotFound(_))
    ));
}

/// A batch behaves like the same raises one by one: new alerts, dedup within
/// the batch and against stored alerts, deliveries, results in input order.
pub async fn insert_many_matches_single_raises(store: &dyn AlertStore) {
    let stored = put(
        store,
        alert(
            simple("existing", Audience::everyone()).dedup_key("k-old"),
            at(0),
        ),
    )
    .await;
    let email = targets(&[("alice", Channel::Email)]);
    let items = vec![
        (
            alert(simple("p1", Audience::everyone()), at(1)),
            email.clone(),
        ),
        (
            alert(simple("k1", Audience::everyone()).dedup_key("k-new"), at(1)),
            email.clone(),
        ),
        (alert(simple("p2", Audience::user("bob")), at(2)), vec![]),
        (
            alert(
                NewAlert::new("test_alert", Severity::Critical, "k1 again")
                    .dedup_key("k-new")
                    .audience(Audience::everyone()),
                at(2),
            ),
            email.clone(),
        ),
        (
            alert(
                simple("old again", Audience::everyone()).dedup_key("k-old"),
                at(3),
            ),
            vec![],
        ),
    ];
    let ids: Vec<AlertId> = items.iter().map(|(a, _)| a.id).collect();
    let out = store.insert_many(items, at(3)).await.unwrap();
    let shape: Vec<(bool, bool)> = out.iter().map(|r| (r.deduplicated, r.escalated)).collect();
    assert_eq!(
        shape,
        vec![
            (false, false),
            (false, false),
            (false, false),
            (true, true),
            (true, false)
        ]
    );
    assert_eq!(out[0].alert.id, ids[0]);
    assert_eq!(out[2].alert.id, ids[2]);
    assert_eq!(
        out[3].alert.id, ids[1],
        "the repeat within the batch merged into k1"
    );
    assert_eq!(out[3].alert.occurrences, 2);
    assert_eq!(out[4].alert.id, stored.id);
    assert_eq!(
        store
            .count(&root(), &AlertFilter::default(), now())
            .await
            .unwrap(),
        4
    );
    assert_eq!(
        store.get(&bob(), ids[2], now()).await.unwrap().alert,
        out[2].alert
    );
    assert_eq!(store.deliveries(ids[0]).await.unwrap().len(), 1);
    let sevs: Vec<Severity> = store
        .deliveries(ids[1])
        .await
        .unwrap()
        .iter()
        .map(|d| d.severity)
        .collect();
    assert_eq!(
        sevs,
        vec![Severity::Medium, Severity::Critical],
        "escalation inside the batch notifies again"
    );
    assert!(store.insert_many(vec![], at(4)).await.unwrap().is_empty());
}

/// Page totals count the newest `COUNT_CAP` matches; `count` and `stats`
/// stay exact.
pub async fn page_counts_saturate_at_the_cap(store: &dyn AlertStore) {
    let cap = alertkit_core::query::COUNT_CAP;
    let n = cap + 20;
    let items: Vec<_> = (0..n)
        .map(|i| {
            (
                alert(
                    simple(&format!("c{i}"), Audience::user("alice")),
                    at(i as i64),
                ),
                vec![],
            )
        })
        .collect();
    let ids: Vec<AlertId> = items.iter().map(|(a, _)| a.id).collect();
    for chunk in items.chunks(200) {
        store.insert_many(chunk.to_vec(), at(0)).await.unwrap();
    }
    // Read 5 of the oldest 20 (outside the newest `cap`) and 7 of the newest.
    for id in ids[..5].iter().chain(&ids[ids.len() - 7..]) {
        store.mark_read(&alice(), *id, now()).await.unwrap();
    }
    let page = store
        .list(&alice(), &AlertQuery::default(), now())
        .await
        .unwrap();
    assert_eq!(page.total, cap, "total saturates at the cap");
    assert_eq!(page.unread_count, cap - 7, "unread among the newest `cap`");
    let exact = store
        .count(&alice(), &AlertFilter::default(), now())
        .await
        .unwrap();
    assert_eq!(exact, n);
    let unread = AlertFilter {
        unread_only: true,
        ..Default::default()
    };
    assert_eq!(store.count(&alice(), &unread, now()).await.unwrap(), n - 12);
    assert_eq!(
        store
            .stats(&alice(), &AlertFilter::default(), now())
            .await
            .unwrap()
            .total,
        n
    );
    // Under the cap, page counts are exact.
    let f = AlertFilter {
        until: Some(at(9)),
        ..Default::default()
    };
    let page = store
        .list(&alice(), &AlertQuery::filtered(f), now())
        .await
        .unwrap();
    assert_eq!((page.total, page.unread_count), (10, 5));
}

fn seqs(alerts: &[Alert]) -> Vec<(String, u64)> {
    alerts.iter().map(|a| (a.title.clone(), a.seq)).collect()
}

/// Raises, merges and resolves each take the next change number; reads
/// and receipts do not; `changes_since` lists each alert once under its
/// latest number, lowest first, without expired or deleted alerts.
pub async fn changes_follow_raise_merge_resolve(store: &dyn AlertStore) {
    assert_eq!(store.latest_seq().await.unwrap(), 0);
    assert!(store.changes_since(0, 10, now()).await.unwrap().is_empty());
    let a = put(
        store,
        alert(simple("a", Audience::everyone()).dedup_key("k-a"), at(1)),
    )
    .await;
    let b = put(store, alert(simple("b", Audience::user("bob")), at(2))).await;
    assert!(a.seq > 0 && b.seq > a.seq, "{} {}", a.seq, b.seq);
    assert_eq!(store.latest_seq().await.unwrap(), b.seq);
    let all = store.changes_since(0, 10, now()).await.unwrap();
    assert_eq!(seqs(&all), vec![("a".into(), a.seq), ("b".into(), b.seq)]);
    assert_eq!(all[0], a, "changes carry the stored alert");
    let after_a = store.changes_since(a.seq, 10, now()).await.unwrap();
    assert_eq!(seqs(&after_a), vec![("b".into(), b.seq)]);
    let first = store.changes_since(0, 1, now()).await.unwrap();
    assert_eq!(seqs(&first), vec![("a".into(), a.seq)], "limit holds");

    // Receipts change nothing here.
    store.mark_read(&alice(), a.id, at(3)).await.unwrap();
    store.dismiss(&bob(), b.id, at(3)).await.unwrap();
    assert_eq!(store.latest_seq().await.unwrap(), b.seq);

    // A merge moves the alert after b, and it appears once.
    let merged = store
        .insert_or_dedup(
            alert(simple("a2", Audience::everyone()).dedup_key("k-a"), at(4)),
            &[],
            at(4),
        )
        .await
        .unwrap();
    assert!(merged.deduplicated);
    assert!(merged.alert.seq > b.seq);
    let all = store.changes_since(0, 10, now()).await.unwrap();
    assert_eq!(
        seqs(&all),
        vec![("b".into(), b.seq), ("a2".into(), merged.alert.seq)]
    );

    // Resolving takes a number; resolving again does not.
    let (resolved, changed) = store.resolve(b.id, at(5)).await.unwrap();
    assert!(changed && resolved.seq > merged.alert.seq);
    let (again, changed) = store.resolve(b.id, at(6)).await.unwrap();
    assert!(!changed);
    assert_eq!(again.seq, resolved.seq);
    assert_eq!(store.latest_seq().await.unwrap(), resolved.seq);
    let tail = store
        .changes_since(merged.alert.seq, 10, now())
        .await
        .unwrap();
    assert_eq!(seqs(&tail), vec![("b".into(), resolved.seq)]);
    assert_eq!(tail[0].status, AlertStatus::Resolved);

    // Expired alerts are left out, deleted ones are gone.
    let short = put(
        store,
        alert(
            simple("short", Audience::everyone()).expires_at(at(20)),
            at(7),
        ),
    )
    .await;
    let listed = |t: DateTime<Utc>| async move {
        seqs(&store.changes_since(resolved.seq, 10, t).await.unwrap())
    };
    assert_eq!(listed(at(8)).await, vec![("short".into(), short.seq)]);
    assert!(listed(at(21)).await.is_empty());
    store.delete(merged.alert.id).await.unwrap();
    let all = store.changes_since(0, 10, at(8)).await.unwrap();
    assert_eq!(
        seqs(&all),
        vec![("b".into(), resolved.seq), ("short".into(), short.seq)]
    );

    // A batch takes numbers in input order.
    let batch = store
        .insert_many(
            vec![
                (alert(simple("m1", Audience::everyone()), at(9)), vec![]),
                (alert(simple("m2", Audience::everyone()), at(9)), vec![]),
            ],
            at(9),
        )
        .await
        .unwrap();
    assert!(batch[0].alert.seq > short.seq && batch[1].alert.seq > batch[0].alert.seq);
    let tail = store.changes_since(short.seq, 10, at(9)).await.unwrap();
    assert_eq!(
        seqs(&tail),
        vec![
            ("m1".into(), batch[0].alert.seq),
            ("m2".into(), batch[1].alert.seq)
        ]
    );
}

/// `receipts` returns every user's receipt on one alert, and nothing for
/// an alert nobody touched or that does not exist.
pub async fn receipts_of_one_alert(store: &dyn AlertStore) {
    let a = put(store, alert(simple("a", Audience::everyone()), at(1))).await;
    let other = put(store, alert(simple("o", Audience::everyone()), at(1))).await;
    assert!(store.receipts(a.id).await.unwrap().is_empty());
    store.mark_read(&alice(), a.id, at(2)).await.unwrap();
    store.dismiss(&bob(), a.id, at(3)).await.unwrap();
    store.mark_read(&carol(), other.id, at(3)).await.unwrap();
    let r = store.receipts(a.id).await.unwrap();
    assert_eq!(r.len(), 2, "{r:?}");
    assert_eq!(r["alice"].read_at, Some(at(2)));
    assert_eq!(r["alice"].dismissed_at, None);
    assert_eq!(r["bob"].dismissed_at, Some(at(3)));
    assert_eq!(r["bob"].read_at, None);
    assert!(store.receipts(AlertId::new()).await.unwrap().is_empty());
}

/// The trap of sequences committed out of order: a reader that follows
/// `changes_since` from the highest number it has seen, while several
/// writers raise, merge and resolve at once, sees every change and never
/// goes backwards. (A plain serial/sequence column fails this: a number
/// taken early can commit after a later one was read.)
pub async fn changes_reader_misses_nothing_under_concurrent_writers(store: &dyn AlertStore) {
    const WRITERS: usize = 6;
    const EACH: usize = 20;
    let done = std::sync::atomic::AtomicUsize::new(0);
    let writer = |w: usize| {
        let done = &done;
        async move {
            for i in 0..EACH {
                let mut new = simple(&format!("w{w}-{i}"), Audience::everyone());
                if i % 5 == 4 {
                    // Merges into an alert another writer may hold too.
                    new = new.dedup_key(format!("shared-{}", i % 3));
                }
                let raised = store
                    .insert_or_dedup(alert(new, at(1)), &[], at(1))
                    .await
                    .expect("raise");
                if i % 7 == 6 {
                    store
                        .resolve(raised.alert.id, at(2))
                        .await
                        .expect("resolve");
                }
            }
            done.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    };
    let reader = async {
        let mut watermark = 0;
        let mut seen: BTreeMap<AlertId, u64> = BTreeMap::new();
        loop {
            let finished = done.load(std::sync::atomic::Ordering::SeqCst) == WRITERS;
            let batch = store
                .changes_since(watermark, 7, now())
                .await
                .expect("changes");
            for a in &batch {
                assert!(
                    a.seq > watermark,
                    "went backwards: {} after {watermark}",
                    a.seq
                );
                watermark = a.seq;
                seen.insert(a.id, a.seq);
            }
            if finished && batch.is_empty() {
                return seen;
            }
            if batch.is_empty() {
                tokio::time::sleep(std::time::Duration::from_millis(2)).await;
            }
        }
    };
    let (seen, ()) = futures::join!(
        reader,
        futures::FutureExt::map(futures::future::join_all((0..WRITERS).map(writer)), |_| ())
    );
    // What the reader ended with is exactly every alert's latest state.
    let truth: BTreeMap<AlertId, u64> = store
        .changes_since(0, 10_000, now())
        .await
        .unwrap()
        .into_iter()
        .map(|a| (a.id, a.seq))
        .collect();
    assert_eq!(seen, truth);
    assert!(truth.len() > WRITERS * EACH / 2, "{}", truth.len());
}
