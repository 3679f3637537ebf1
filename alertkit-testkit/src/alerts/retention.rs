//! [`AlertStore`](alertkit_core::AlertStore) cases: retention.

use alertkit_core::clock::Clock;
use alertkit_core::{AlertFilter, AlertStore, Audience, Error, ManualClock};
use chrono::Duration;

use crate::fixtures::{alert, alice, at, root, simple, t0};

use super::{now, put, strs, titles, titles_at};

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
    assert!(
        store
            .find_active("del", None, now())
            .await
            .unwrap()
            .is_empty()
    );
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
