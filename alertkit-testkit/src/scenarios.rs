//! Scenarios that need a real, shared backend: tasks racing on separate
//! connections, and paging a large set while writes continue. Called from
//! each database backend's test file (the in-memory store needs neither).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use alertkit_core::{AlertFilter, AlertQuery, AlertStore, Audience, NewAlert, Severity, Viewer};

use crate::fixtures::{alert, at};

/// `tasks` spawned tasks raise one dedup key at once: exactly one creates
/// the alert, which ends with `occurrences == tasks`.
pub async fn concurrent_raises_make_one_alert(store: Arc<dyn AlertStore>, tasks: usize) {
    let handles: Vec<_> = (0..tasks)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let a = alert(
                    NewAlert::new("capacity_warning", Severity::High, format!("t{i}"))
                        .dedup_key("cap:race"),
                    at(1),
                );
                store.insert_or_dedup(a, &[], at(1)).await
            })
        })
        .collect();
    let mut created = 0;
    for h in handles {
        if !h.await.expect("task").expect("raise").deduplicated {
            created += 1;
        }
    }
    assert_eq!(created, 1, "exactly one raise creates the alert");
    let page = store
        .list(&Viewer::all("root"), &AlertQuery::default(), at(2))
        .await
        .expect("list");
    assert_eq!(page.total, 1);
    assert_eq!(page.alerts[0].alert.occurrences, tasks as u32);
}

/// 10,000 alerts (seven per timestamp) are paged 50 at a time while another
/// task keeps raising newer ones (pausing `writer_pause` between raises):
/// the pages hold every one of the 10,000 exactly once, newest first.
pub async fn ten_thousand_page_exactly_once_while_inserting(
    store: Arc<dyn AlertStore>,
    writer_pause: Duration,
) {
    let batch: Vec<_> = (0..10_000)
        .map(|i| {
            let new = NewAlert::new("bulk", Severity::Low, format!("b{i}"))
                .audience(Audience::everyone());
            (alert(new, at(i / 7)), vec![])
        })
        .collect();
    let mut expected: Vec<_> = batch.iter().map(|(a, _)| (a.created_at, a.id)).collect();
    expected.sort_by_key(|p| std::cmp::Reverse(*p));
    for chunk in batch.chunks(1_000) {
        store
            .insert_many(chunk.to_vec(), at(0))
            .await
            .expect("insert_many");
    }

    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (store, stop) = (store.clone(), stop.clone());
        tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                let new = NewAlert::new("bulk", Severity::High, format!("l{n}"))
                    .audience(Audience::everyone());
                let a = alert(new, at(100_000 + n));
                store
                    .insert_or_dedup(a, &[], at(100_000 + n))
                    .await
                    .expect("live raise");
                n += 1;
                tokio::time::sleep(writer_pause).await;
            }
            n
        })
    };

    let viewer = Viewer::new("anyone", Vec::<String>::new());
    let filter = AlertFilter {
        alert_types: vec!["bulk".into()],
        ..Default::default()
    };
    let mut q = AlertQuery::filtered(filter).limit(50);
    let mut seen = Vec::new();
    let mut live_after_bulk = false;
    loop {
        let page = store.list(&viewer, &q, at(0)).await.expect("list");
        for v in &page.alerts {
            if v.alert.title.starts_with('b') {
                seen.push((v.alert.created_at, v.alert.id));
            } else if !seen.is_empty() {
                // Live alerts are newer than every bulk one: in newest-first
                // order none may follow a bulk alert.
                live_after_bulk = true;
            }
        }
        match page.next_cursor {
            Some(c) => q.cursor = Some(c),
            None => break,
        }
    }
    stop.store(true, Ordering::Relaxed);
    assert!(
        writer.await.expect("writer") > 0,
        "the writer ran concurrently"
    );
    assert!(!live_after_bulk, "a newer alert appeared on a later page");
    assert_eq!(seen.len(), 10_000);
    assert_eq!(
        seen, expected,
        "pages of 50 cover the 10,000 exactly once, in order"
    );
}
