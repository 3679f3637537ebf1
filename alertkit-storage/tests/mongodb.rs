//! `MongoAlertStore` on a real MongoDB-wire server (`MONGODB_URL`; SecantusDB
//! in `scripts/test`): the whole conformance suite, each test in its own
//! database, plus concurrency and input-safety checks.
#![cfg(feature = "mongodb")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::ops::Deref;
use std::sync::Arc;

use alertkit_core::{AlertFilter, AlertQuery, AlertStore, Audience, NewAlert, Severity, Viewer};
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

alertkit_testkit::alert_store_conformance!(setup());

#[tokio::test]
async fn init_twice_is_fine() {
    let Some(m) = setup().await else { return };
    m.init().await.unwrap();
    m.ping().await.unwrap();
}

#[tokio::test]
async fn concurrent_raises_of_one_key_from_8_tasks_make_one_alert() {
    let Some(m) = setup().await else { return };
    let store = Arc::new(m.store.clone());
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
    assert_eq!((page.total, page.alerts[0].alert.occurrences), (1, 8));
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
    m.insert_or_dedup(a.clone(), &[], at(1)).await.unwrap();
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

#[tokio::test]
async fn ten_thousand_alerts_page_exactly_once() {
    let Some(m) = setup().await else { return };
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
    for chunk in batch.chunks(1_000) {
        m.insert_many(chunk.to_vec(), at(0)).await.unwrap();
    }
    let writer_store = m.store.clone();
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
            // A steady trickle: the test server is single-threaded Python.
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        n
    });
    let mut q = AlertQuery::filtered(AlertFilter {
        alert_types: vec!["bulk".into()],
        until: Some(at(10_000)),
        ..Default::default()
    })
    .limit(50);
    let mut seen = Vec::new();
    loop {
        let page = m
            .list(&Viewer::new("x", Vec::<String>::new()), &q, at(0))
            .await
            .unwrap();
        seen.extend(page.alerts.iter().map(|v| (v.alert.created_at, v.alert.id)));
        match page.next_cursor {
            Some(c) => q.cursor = Some(c),
            None => break,
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(writer.await.unwrap() > 0);
    assert_eq!(seen, expected);
}
