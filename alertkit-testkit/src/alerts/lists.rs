//! [`AlertStore`](alertkit_core::AlertStore) cases: lists.

use std::collections::BTreeMap;

use alertkit_core::{
    Alert, AlertFilter, AlertId, AlertQuery, AlertStatus, AlertStore, Audience, Error, NewAlert,
    Severity, Target, Viewer,
};
use chrono::Duration;
use serde_json::json;

use crate::fixtures::{alert, alice, at, bob, carol, root, simple};

use super::{now, put, seed, strs, titles, titles_at};

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
            store
                .find_active(s, None, now())
                .await
                .unwrap()
                .iter()
                .map(|x| x.id)
                .collect::<Vec<_>>(),
            vec![a.id]
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
