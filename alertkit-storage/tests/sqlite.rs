//! `SqliteAlertStore` on a real SQLite file per test: the whole conformance
//! suite plus file-level behaviour.
#![cfg(feature = "sqlite")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::ops::Deref;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use alertkit_core::{AlertStore, Audience, NewAlert, Severity, Viewer};
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

alertkit_testkit::store_conformance!(setup());
alertkit_testkit::series_store_conformance!(setup());
alertkit_testkit::report_store_conformance!(setup());

#[tokio::test]
async fn migrations_run_twice_and_data_survives_reopening() {
    let t = setup().await.unwrap();
    t.migrate().await.unwrap();
    let a = alert(
        NewAlert::new("t", Severity::High, "persisted").audience(Audience::everyone()),
        at(1),
    );
    let a = t.insert_or_dedup(a, &[], at(1)).await.unwrap().alert;
    t.close().await;
    let again = open(&t.path).await;
    again.migrate().await.unwrap();
    let v = again.get(&Viewer::all("root"), a.id, at(2)).await.unwrap();
    assert_eq!(v.alert, a);
    again.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_raises_of_one_key_from_8_tasks_make_one_alert() {
    let t = setup().await.unwrap();
    alertkit_testkit::scenarios::concurrent_raises_make_one_alert(Arc::new(t.store.clone()), 8)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_alerts_page_exactly_once_while_inserts_continue() {
    let t = setup().await.unwrap();
    alertkit_testkit::scenarios::ten_thousand_page_exactly_once_while_inserting(
        Arc::new(t.store.clone()),
        Duration::ZERO,
    )
    .await;
}
