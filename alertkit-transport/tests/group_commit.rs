//! The engine's group commit: concurrent single raises share transactions,
//! and each caller gets its own result (a failing raise in a batch is in
//! `alertkit-core`'s engine tests).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;

use alertkit_core::{AlertKit, Audience, NewAlert, Principal, Severity};
use alertkit_storage::MemoryAlertStore;
use alertkit_testkit::counting::CountingStore;
use alertkit_transport::LocalBroadcaster;

fn new_alert(i: usize) -> NewAlert {
    NewAlert::new("capacity_warning", Severity::High, format!("raise {i}"))
        .audience(Audience::user(format!("u{i}")))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_raises_share_transactions_and_each_gets_its_own_alert() {
    let store = Arc::new(CountingStore::new(MemoryAlertStore::new()));
    let kit = AlertKit::builder()
        .store(store.clone())
        .broadcaster(Arc::new(LocalBroadcaster::new()))
        .build()
        .unwrap();
    const N: usize = 400;
    let raises = (0..N).map(|i| {
        let kit = kit.clone();
        tokio::spawn(async move { kit.raise(&Principal::system(), new_alert(i)).await })
    });
    let raised: Vec<_> = futures::future::join_all(raises)
        .await
        .into_iter()
        .map(|r| r.unwrap().unwrap())
        .collect();
    // Each caller got its own alert, stored and numbered.
    for (i, r) in raised.iter().enumerate() {
        assert_eq!(r.alert.title, format!("raise {i}"));
        assert!(r.alert.seq > 0);
    }
    let seqs: std::collections::HashSet<u64> = raised.iter().map(|r| r.alert.seq).collect();
    assert_eq!(seqs.len(), N, "distinct change numbers");
    let writes = store.calls("insert_many") + store.calls("insert_or_dedup");
    assert!(
        writes < N as u64 / 2,
        "{N} concurrent raises took {writes} writes: {:?}",
        store.snapshot()
    );
    assert_eq!(kit.change_feed(0, 1000).await.unwrap().len(), N);
}
