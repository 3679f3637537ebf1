//! `MongoAlertStore` on a real MongoDB-wire server (`MONGODB_URL`; SecantusDB
//! in `scripts/test`): the whole conformance suite, each test in its own
//! database, plus concurrency and input-safety checks.
#![cfg(feature = "mongodb")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use alertkit_core::{AlertFilter, AlertStore, Audience, NewAlert, Severity, Viewer};
use alertkit_storage::MongoAlertStore;
use alertkit_testkit::fixtures::{alert, at};
use alertkit_testkit::services::service_url;

/// A store in a fresh database, dropped when the test ends (also on panic).
struct TestMongo {
    store: MongoAlertStore,
    url: String,
}

impl Deref for TestMongo {
    type Target = MongoAlertStore;
    fn deref(&self) -> &MongoAlertStore {
        &self.store
    }
}

impl Drop for TestMongo {
    fn drop(&mut self) {
        let (url, db) = (self.url.clone(), self.store.database().to_owned());
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(async {
                if let Ok(s) = MongoAlertStore::builder(url).database(db).connect().await {
                    let _ = s.drop_database().await;
                }
            });
            Ok::<_, std::io::Error>(())
        })
        .join();
    }
}

async fn setup() -> Option<TestMongo> {
    let url = service_url("MONGODB_URL")?;
    let db = format!("akt_{}", uuid::Uuid::now_v7().simple());
    let store = MongoAlertStore::builder(&url)
        .database(db)
        .connect()
        .await
        .expect("connect");
    store.init().await.expect("init");
    Some(TestMongo { store, url })
}

alertkit_testkit::store_conformance!(setup());
alertkit_testkit::series_store_conformance!(setup());
alertkit_testkit::report_store_conformance!(setup());

#[tokio::test]
async fn init_twice_is_fine() {
    let Some(m) = setup().await else { return };
    m.init().await.unwrap();
    m.ping().await.unwrap();
}

#[tokio::test]
async fn operator_strings_are_data() {
    let Some(m) = setup().await else { return };
    let a = alert(
        NewAlert::new("$where", Severity::High, "{\"$gt\": \"\"}")
            .tags(["$ne", "{\"$gt\":0}"])
            .metadata(serde_json::json!({"$where": "sleep(1000)", "a.b": {"$gt": 1}}))
            .audience(Audience::user("$in")),
        at(1),
    );
    let a = m.insert_or_dedup(a, &[], at(1)).await.unwrap().alert;
    let viewer = Viewer::new("$in", Vec::<String>::new());
    assert_eq!(m.get(&viewer, a.id, at(2)).await.unwrap().alert, a);
    let f = AlertFilter {
        tags: vec!["$ne".into()],
        alert_types: vec!["$where".into()],
        ..Default::default()
    };
    assert_eq!(m.count(&viewer, &f, at(2)).await.unwrap(), 1);
    // An operator-looking filter value matches nothing else.
    let f = AlertFilter {
        tags: vec!["{\"$exists\":true}".into()],
        ..Default::default()
    };
    assert_eq!(m.count(&Viewer::all("root"), &f, at(2)).await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_raises_of_one_key_from_8_tasks_make_one_alert() {
    let Some(m) = setup().await else { return };
    alertkit_testkit::scenarios::concurrent_raises_make_one_alert(Arc::new(m.store.clone()), 8)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_alerts_page_exactly_once_while_inserts_continue() {
    let Some(m) = setup().await else { return };
    // A steady trickle of writes: the test server is single-threaded Python.
    alertkit_testkit::scenarios::ten_thousand_page_exactly_once_while_inserting(
        Arc::new(m.store.clone()),
        Duration::from_millis(20),
    )
    .await;
}
