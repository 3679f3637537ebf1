//! `PostgresAlertStore` on a real PostgreSQL server (`DATABASE_URL`): the
//! whole conformance suite, each test in its own schema, plus the behaviour
//! only a shared database can show.
#![cfg(feature = "postgres")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::ops::Deref;
use std::sync::Arc;

use alertkit_core::{
    Alert, AlertFilter, AlertId, AlertQuery, AlertStore, Audience, Error, NewAlert, Severity,
    Viewer,
};
use alertkit_storage::PostgresAlertStore;
use alertkit_testkit::fixtures::{alert, at};
use alertkit_testkit::services::service_url;

/// A store in a fresh schema, dropped again when the test ends (also on panic).
struct TestPg {
    store: PostgresAlertStore,
    url: String,
}

impl Deref for TestPg {
    type Target = PostgresAlertStore;
    fn deref(&self) -> &PostgresAlertStore {
        &self.store
    }
}

impl Drop for TestPg {
    fn drop(&mut self) {
        let (url, schema) = (self.url.clone(), self.store.schema().to_owned());
        // Drop is synchronous and may run inside the test's runtime: clean up
        // from a thread with its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(async {
                if let Ok(s) = PostgresAlertStore::builder(url)
                    .schema(schema)
                    .max_connections(1)
                    .connect()
                    .await
                {
                    let _ = s.drop_schema().await;
                    s.close().await;
                }
            });
            Ok::<_, std::io::Error>(())
        })
        .join();
    }
}

fn schema_name() -> String {
    format!("akt_{}", uuid::Uuid::now_v7().simple())
}

async fn connect(url: &str, schema: &str) -> PostgresAlertStore {
    PostgresAlertStore::builder(url)
        .schema(schema)
        .max_connections(8)
        .connect()
        .await
        .expect("connect to DATABASE_URL")
}

async fn setup() -> Option<TestPg> {
    let url = service_url("DATABASE_URL")?;
    let store = connect(&url, &schema_name()).await;
    store.migrate().await.expect("migrate");
    Some(TestPg { store, url })
}

alertkit_testkit::alert_store_conformance!(setup());

#[tokio::test]
async fn migrations_run_twice_and_concurrently() {
    let Some(pg) = setup().await else { return };
    // Already migrated by setup; again, and from two "instances" at once.
    pg.migrate().await.unwrap();
    let other = connect(&pg.url, pg.schema()).await;
    let third = connect(&pg.url, pg.schema()).await;
    let (a, b) = tokio::join!(other.migrate(), third.migrate());
    a.unwrap();
    b.unwrap();
    // A brand-new schema migrated by two instances at once.
    let fresh = schema_name();
    let (x, y) = (
        connect(&pg.url, &fresh).await,
        connect(&pg.url, &fresh).await,
    );
    let (a, b) = tokio::join!(x.migrate(), y.migrate());
    a.unwrap();
    b.unwrap();
    x.ping().await.unwrap();
    assert_eq!(
        x.count(&Viewer::all("root"), &AlertFilter::default(), at(0))
            .await
            .unwrap(),
        0
    );
    x.drop_schema().await.unwrap();
}

#[tokio::test]
async fn concurrent_raises_of_one_key_from_8_tasks_make_one_alert() {
    let Some(pg) = setup().await else { return };
    let store = Arc::new(connect(&pg.url, pg.schema()).await);
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
    for t in tasks {
        if !t.await.unwrap().unwrap().deduplicated {
            created += 1;
        }
    }
    assert_eq!(created, 1);
    let page = store
        .list(&Viewer::all("root"), &AlertQuery::default(), at(2))
        .await
        .unwrap();
    assert_eq!(page.total, 1);
    assert_eq!(page.alerts[0].alert.occurrences, 8);
}

#[tokio::test]
async fn ten_thousand_alerts_page_exactly_once_while_inserts_continue() {
    let Some(pg) = setup().await else { return };
    let batch: Vec<(Alert, Vec<_>)> = (0..10_000)
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
    let mut expected: Vec<AlertId> = batch.iter().map(|(a, _)| a.id).collect();
    let by_pos: std::collections::HashMap<AlertId, (chrono::DateTime<chrono::Utc>, AlertId)> =
        batch
            .iter()
            .map(|(a, _)| (a.id, (a.created_at, a.id)))
            .collect();
    expected.sort_by_key(|id| std::cmp::Reverse(by_pos[id]));
    for chunk in batch.chunks(2_000) {
        pg.insert_many(chunk.to_vec(), at(0)).await.unwrap();
    }

    // A writer keeps raising newer alerts while the reader pages.
    let writer_store = connect(&pg.url, pg.schema()).await;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop2 = stop.clone();
    let writer = tokio::spawn(async move {
        let mut n = 0;
        while !stop2.load(std::sync::atomic::Ordering::Relaxed) {
            let a = alert(
                NewAlert::new("live", Severity::High, format!("l{n}"))
                    .audience(Audience::everyone()),
                at(100_000 + n),
            );
            writer_store
                .insert_or_dedup(a, &[], at(100_000 + n))
                .await
                .unwrap();
            n += 1;
        }
        n
    });

    let viewer = Viewer::new("anyone", Vec::<String>::new());
    let filter = AlertFilter {
        alert_types: vec!["bulk".into()],
        ..Default::default()
    };
    let mut q = AlertQuery::filtered(filter).limit(50);
    let mut seen = Vec::new();
    loop {
        let page = pg.list(&viewer, &q, at(0)).await.unwrap();
        seen.extend(page.alerts.iter().map(|v| v.alert.id));
        match page.next_cursor {
            Some(c) => q.cursor = Some(c),
            None => break,
        }
    }
    // Unfiltered paging too: the first page may grow, later pages never repeat.
    let mut q = AlertQuery::default().limit(50);
    let mut all = Vec::new();
    for _ in 0..40 {
        let page = pg.list(&viewer, &q, at(0)).await.unwrap();
        all.extend(page.alerts.iter().map(|v| v.alert.id));
        match page.next_cursor {
            Some(c) => q.cursor = Some(c),
            None => break,
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let written = writer.await.unwrap();
    assert!(written > 0, "the writer ran concurrently");
    assert_eq!(seen.len(), 10_000);
    assert_eq!(
        seen, expected,
        "pages of 50 cover the 10k exactly once, in order"
    );
    let mut dedup = all.clone();
    dedup.sort();
    dedup.dedup();
    assert_eq!(dedup.len(), all.len(), "no alert appears on two pages");
}

#[tokio::test]
async fn hostile_input_is_stored_verbatim_or_refused_as_invalid() {
    let Some(pg) = setup().await else { return };
    // Bypassing the engine's validation, a NUL byte reaches PostgreSQL, which
    // refuses it: that is Invalid, not a backend failure.
    let mut a = alert(NewAlert::new("t", Severity::Low, "x"), at(1));
    a.title = "nul\0byte".into();
    let err = pg.insert_or_dedup(a, &[], at(1)).await.unwrap_err();
    assert!(matches!(err, Error::Invalid(_)), "got {err:?}");
    // Filters with operator-looking or quoting strings are plain values.
    for s in ["' OR 1=1 --", "$ne", "{\"$gt\":0}", "%"] {
        let f = AlertFilter {
            tags: vec![s.into()],
            alert_types: vec![s.into()],
            ..Default::default()
        };
        assert_eq!(pg.count(&Viewer::all("root"), &f, at(2)).await.unwrap(), 0);
    }
    let viewer = Viewer::new("x' OR '1'='1", ["g\"; DROP SCHEMA x; --"]);
    assert_eq!(
        pg.count(&viewer, &AlertFilter::default(), at(2))
            .await
            .unwrap(),
        0
    );
}

#[tokio::test]
async fn unreachable_database_is_unavailable() {
    let err = PostgresAlertStore::builder("postgres://postgres@127.0.0.1:1/none")
        .acquire_timeout(std::time::Duration::from_millis(500))
        .connect()
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "got {err:?}");
    let err = PostgresAlertStore::builder("not a url")
        .connect()
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Invalid(_)));
    let err = PostgresAlertStore::builder("postgres://x/y")
        .schema("Bad-Name")
        .connect()
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Invalid(_)));
}
