//! [`AlertStore`](alertkit_core::AlertStore) cases: receipts.

use alertkit_core::{AlertFilter, AlertId, AlertStore, Audience, Error};

use crate::fixtures::{alert, alice, at, bob, carol, root, simple};

use super::{now, put, seed, strs, titles};

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

/// `receipts_many` returns, per alert, what `receipts` returns, in one call.
pub async fn receipts_many_batches_alerts(store: &dyn AlertStore) {
    let a = put(store, alert(simple("a", Audience::everyone()), at(1))).await;
    let b = put(store, alert(simple("b", Audience::everyone()), at(2))).await;
    let c = put(store, alert(simple("c", Audience::everyone()), at(3))).await;
    store.mark_read(&alice(), a.id, at(5)).await.unwrap();
    store.dismiss(&bob(), a.id, at(6)).await.unwrap();
    store.mark_read(&bob(), b.id, at(7)).await.unwrap();
    let got = store
        .receipts_many(&[a.id, b.id, c.id, AlertId::new()])
        .await
        .unwrap();
    assert_eq!(got.len(), 2, "alerts without receipts are absent");
    assert_eq!(got[&a.id], store.receipts(a.id).await.unwrap());
    assert_eq!(got[&a.id].len(), 2);
    assert_eq!(got[&b.id].len(), 1);
    assert_eq!(got[&b.id]["bob"].read_at, Some(at(7)));
    assert!(store.receipts_many(&[]).await.unwrap().is_empty());
}
