//! [`AlertStore`](alertkit_core::AlertStore) cases: changes.

use std::collections::BTreeMap;

use alertkit_core::{Alert, AlertId, AlertStatus, AlertStore, Audience};
use chrono::{DateTime, Utc};

use crate::fixtures::{alert, alice, at, bob, root, simple};

use super::{now, put, strs};

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

/// `changes_for` returns only the changes of alerts the viewer may see,
/// in `(after, upto]`, in order, with the viewer's own receipt.
pub async fn changes_for_a_viewer_filter_visibility_with_receipts(store: &dyn AlertStore) {
    let start = store.latest_seq().await.unwrap();
    let mine = put(store, alert(simple("mine", Audience::user("alice")), at(1))).await;
    put(store, alert(simple("bobs", Audience::user("bob")), at(2))).await;
    let ops = put(store, alert(simple("ops", Audience::group("ops")), at(3))).await;
    let all = put(store, alert(simple("all", Audience::everyone()), at(4))).await;
    let gone = simple("gone", Audience::everyone()).expires_at(at(50));
    put(store, alert(gone, at(5))).await;
    store.mark_read(&alice(), ops.id, at(6)).await.unwrap();
    store.mark_read(&bob(), all.id, at(7)).await.unwrap();
    let upto = store.latest_seq().await.unwrap();
    let titles = |v: Vec<alertkit_core::AlertView>| -> Vec<String> {
        v.into_iter().map(|v| v.alert.title).collect()
    };

    let got = store
        .changes_for(&alice(), start, upto, 100, at(100))
        .await
        .unwrap();
    assert!(got.windows(2).all(|w| w[0].alert.seq < w[1].alert.seq));
    assert_eq!(got[1].receipt.read_at, Some(at(6)));
    assert!(
        got[2].receipt.read_at.is_none(),
        "bob's receipt is not alice's"
    );
    assert_eq!(titles(got), strs(&["mine", "ops", "all"]));
    let limited = store
        .changes_for(&alice(), start, upto, 1, at(100))
        .await
        .unwrap();
    assert_eq!(titles(limited), strs(&["mine"]));
    let after = store
        .changes_for(&alice(), mine.seq, upto, 100, at(100))
        .await
        .unwrap();
    assert_eq!(titles(after), strs(&["ops", "all"]));
    let bounded = store
        .changes_for(&alice(), start, ops.seq, 100, at(100))
        .await
        .unwrap();
    assert_eq!(titles(bounded), strs(&["mine", "ops"]));
    let admin = store
        .changes_for(&root(), start, upto, 100, at(10))
        .await
        .unwrap();
    assert_eq!(titles(admin), strs(&["mine", "bobs", "ops", "all", "gone"]));
    let bob_sees = store
        .changes_for(&bob(), start, upto, 100, at(10))
        .await
        .unwrap();
    assert_eq!(bob_sees[1].receipt.read_at, Some(at(7)));
    assert_eq!(titles(bob_sees), strs(&["bobs", "all", "gone"]));
    assert!(
        store
            .changes_for(&alice(), upto, upto, 100, at(100))
            .await
            .unwrap()
            .is_empty()
    );
}
