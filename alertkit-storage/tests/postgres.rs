//! `PostgresAlertStore` on a real PostgreSQL server (`DATABASE_URL`): the
//! whole conformance suite, each test in its own schema, plus the behaviour
//! only a shared database can show.
#![cfg(feature = "postgres")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use alertkit_core::{AlertFilter, AlertStore, Error, NewAlert, Severity, Viewer};
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

alertkit_testkit::store_conformance!(setup());
alertkit_testkit::series_store_conformance!(setup());
alertkit_testkit::report_store_conformance!(setup());

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_raises_of_one_key_from_8_tasks_make_one_alert() {
    let Some(pg) = setup().await else { return };
    alertkit_testkit::scenarios::concurrent_raises_make_one_alert(
        Arc::new(connect(&pg.url, pg.schema()).await),
        8,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_alerts_page_exactly_once_while_inserts_continue() {
    let Some(pg) = setup().await else { return };
    alertkit_testkit::scenarios::ten_thousand_page_exactly_once_while_inserting(
        Arc::new(connect(&pg.url, pg.schema()).await),
        Duration::ZERO,
    )
    .await;
}
