//! [`AlertStore`](alertkit_core::AlertStore) cases: dedup.

use alertkit_core::{
    AlertFilter, AlertId, AlertQuery, AlertStatus, AlertStore, Audience, Error, NewAlert, Severity,
};
use serde_json::json;

use crate::fixtures::{alert, alice, at, root, simple};

use super::{now, put};

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
            .find_active("cap:X", None, now())
            .await
            .unwrap()
            .iter()
            .map(|a| a.id)
            .collect::<Vec<_>>(),
        vec![first.id]
    );
    assert!(
        store
            .find_active("cap:Y", None, now())
            .await
            .unwrap()
            .is_empty()
    );
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
    assert!(
        store
            .find_active("cap:Z", None, now())
            .await
            .unwrap()
            .is_empty()
    );
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

/// A repeat merges only into the alert the same creator raised with the
/// same key for the same audience; another creator or another audience gets
/// an alert of its own, and the first one is left untouched.
pub async fn dedup_is_scoped_to_creator_and_audience(store: &dyn AlertStore) {
    let mk = |creator: &str, aud: Audience, min: i64| {
        let mut a = alert(simple("x", aud).dedup_key("shared"), at(min));
        a.created_by = Some(creator.into());
        a
    };
    let first = store
        .insert_or_dedup(mk("svc", Audience::everyone(), 1), &[], at(1))
        .await
        .unwrap();
    assert!(!first.deduplicated);
    assert_eq!(first.alert.created_by.as_deref(), Some("svc"));

    // Another raiser, same key and audience: its own alert.
    let mut hijack = mk("mallory", Audience::everyone(), 2);
    hijack.title = "pwned".into();
    hijack.severity = Severity::Critical;
    hijack.expires_at = Some(at(3));
    let h = store.insert_or_dedup(hijack, &[], at(2)).await.unwrap();
    assert!(!h.deduplicated, "another creator's key must not merge");
    assert_ne!(h.alert.id, first.alert.id);
    let orig = store.get(&root(), first.alert.id, now()).await.unwrap();
    assert_eq!(
        (
            orig.alert.title.as_str(),
            orig.alert.occurrences,
            orig.alert.severity,
            orig.alert.expires_at
        ),
        ("x", 1, Severity::Medium, None),
        "the first alert is untouched"
    );

    // The same raiser for another audience: another alert.
    let other = store
        .insert_or_dedup(mk("svc", Audience::user("bob"), 3), &[], at(3))
        .await
        .unwrap();
    assert!(!other.deduplicated);

    // The same raiser, key and audience: merged.
    let again = store
        .insert_or_dedup(mk("svc", Audience::everyone(), 4), &[], at(4))
        .await
        .unwrap();
    assert!(again.deduplicated);
    assert_eq!(again.alert.id, first.alert.id);
    assert_eq!(again.alert.occurrences, 2);
    assert_eq!(again.alert.created_by.as_deref(), Some("svc"));

    // find_active: every holder of the key, or one creator's.
    let all = store.find_active("shared", None, at(2)).await.unwrap();
    assert_eq!(all.len(), 3);
    let svc = store
        .find_active("shared", Some("svc".into()), at(2))
        .await
        .unwrap();
    assert_eq!(svc.len(), 2);
    assert!(svc.iter().all(|a| a.created_by.as_deref() == Some("svc")));
    let m = store
        .find_active("shared", Some("mallory".into()), at(2))
        .await
        .unwrap();
    assert_eq!(m.iter().map(|a| a.id).collect::<Vec<_>>(), vec![h.alert.id]);
    assert!(
        store
            .find_active("shared", Some("nobody".into()), at(2))
            .await
            .unwrap()
            .is_empty()
    );
}

/// A merge keeps the later of the two expiries (no expiry is the latest).
pub async fn dedup_merge_never_shortens_expiry(store: &dyn AlertStore) {
    let raise = |min: i64, expires: Option<i64>| {
        let mut n = simple("e", Audience::user("alice")).dedup_key("exp");
        if let Some(e) = expires {
            n = n.expires_at(at(e));
        }
        store.insert_or_dedup(alert(n, at(min)), &[], at(min))
    };
    let first = raise(1, Some(500)).await.unwrap();
    let shorter = raise(2, Some(100)).await.unwrap();
    assert!(shorter.deduplicated);
    assert_eq!(shorter.alert.expires_at, Some(at(500)), "not shortened");
    let read = store.get(&alice(), first.alert.id, at(3)).await.unwrap();
    assert_eq!(read.alert.expires_at, Some(at(500)), "stored as returned");
    let later = raise(4, Some(900)).await.unwrap();
    assert_eq!(later.alert.expires_at, Some(at(900)), "extended");
    let never = raise(5, None).await.unwrap();
    assert_eq!(never.alert.expires_at, None, "no expiry is the latest");
    let after = raise(6, Some(700)).await.unwrap();
    assert_eq!(after.alert.expires_at, None);
    // Still visible past every expiry it was ever given.
    let read = store.get(&alice(), first.alert.id, at(1000)).await.unwrap();
    assert_eq!((read.alert.expires_at, read.alert.occurrences), (None, 5));
}
