//! `SqliteAlertStore` on a real SQLite file per test: the whole conformance
//! suite plus file-level behaviour.
#![cfg(feature = "sqlite")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::ops::Deref;
use std::path::PathBuf;
use std::sync::Arc;

use alertkit_core::{AlertFilter, AlertQuery, AlertStore, Audience, NewAlert, Severity, Viewer};
use alertkit_storage::SqliteAlertStore;
use alertkit_testkit::fixtures::{alert, at};

/// A store in a fresh file, removed (with its WAL files) when the test ends.
struct TestLite {
    store: SqliteAlertStore,
    path: PathBuf,
}

impl Deref for TestLite {
    type Target = SqliteAlertStore;
    fn deref(&self) -> &SqliteAlertStore {
        &self.store
    }
}

impl Drop for TestLite {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let mut p = self.path.clone().into_os_string();
            p.push(suffix);
            let _ = std::fs::remove_file(p);
        }
    }
}

async fn open(path: &std::path::Path) -> SqliteAlertStore {
    SqliteAlertStore::builder(path)
        .connect()
        .await
        .expect("open sqlite")
}

async fn setup() -> Option<TestLite> {
    let path = std::env::temp_dir().join(format!(
        "alertkit-test-{}.db",
        uuid::Uuid::now_v7().simple()
    ));
    let store = open(&path).await;
    store.migrate().await.expect("migrate");
    Some(TestLite { store, path })
}

alertkit_testkit::alert_store_conformance!(setup());

#[tokio::test]
async fn migrations_run_twice_and_data_survives_reopening() {
    let t = setup().await.unwrap();
    t.migrate().await.unwrap();
    let a = alert(
        NewAlert::new("t", Severity::High, "persisted").audience(Audience::everyone()),
        at(1),
    );
    t.insert_or_dedup(a.clone(), &[], at(1)).await.unwrap();
    t.close().await;
    let again = open(&t.path).await;
    again.migrate().await.unwrap();
    let v = again.get(&Viewer::all("root"), a.id, at(2)).await.unwrap();
    assert_eq!(v.alert, a);
    again.close().await;
}

#[tokio::test]
async fn concurrent_raises_of_one_key_from_8_tasks_make_one_alert() {
    let t = setup().await.unwrap();
    let store = Arc::new(t.store.clone());
    let tasks: Vec<_> = (0..8)
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
    for task in tasks {
        if !task.await.unwrap().unwrap().deduplicated {
            created += 1;
        }
    }
    assert_eq!(created, 1);
    let page = store
        .list(&Viewer::all("root"), &AlertQuery::default(), at(2))
        .await
        .unwrap();
    assert_eq!((page.total, page.alerts[0].alert.occurrences), (1, 8));
}

#[tokio::test]
async fn ten_thousand_alerts_page_exactly_once_while_inserts_continue() {
    let t = setup().await.unwrap();
    let batch: Vec<_> = (0..10_000)
        .map(|i| {
            (
                alert(
                    NewAlert::new("bulk", Severity::Low, format!("b{i}"))
                        .audience(Audience::everyone()),
                    at(i / 7),
                ),
                vec![],
            )
        })
        .collect();
    let mut expected: Vec<_> = batch.iter().map(|(a, _)| (a.created_at, a.id)).collect();
    expected.sort_by_key(|p| std::cmp::Reverse(*p));
    t.insert_many(batch, at(0)).await.unwrap();

    let writer_store = t.store.clone();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop2 = stop.clone();
    let writer = tokio::spawn(async move {
        let mut n = 0;
        while !stop2.load(std::sync::atomic::Ordering::Relaxed) {
            let a = alert(
                NewAlert::new("bulk", Severity::High, format!("l{n}"))
                    .audience(Audience::everyone()),
                at(100_000 + n),
            );
            writer_store
                .insert_or_dedup(a, &[], at(100_000 + n))
                .await
                .unwrap();
            n += 1;
            tokio::task::yield_now().await;
        }
        n
    });
    let viewer = Viewer::new("anyone", Vec::<String>::new());
    let filter = AlertFilter {
        alert_types: vec!["bulk".into()],
        ..Default::default()
    };
    // The first page is taken before the writer's alerts land; later pages
    // must hold exactly the older alerts.
    let mut q = AlertQuery::filtered(filter.clone()).limit(50);
    q.filter.until = Some(at(10_000));
    let mut seen = Vec::new();
    loop {
        let page = t.list(&viewer, &q, at(0)).await.unwrap();
        seen.extend(page.alerts.iter().map(|v| (v.alert.created_at, v.alert.id)));
        match page.next_cursor {
            Some(c) => q.cursor = Some(c),
            None => break,
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(writer.await.unwrap() > 0, "the writer ran concurrently");
    assert_eq!(seen, expected);
}
