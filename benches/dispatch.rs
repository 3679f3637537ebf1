//! The outbox dispatcher: deliveries per second to a loopback webhook sink
//! (SQLite, and PostgreSQL when `DATABASE_URL` is set), and the end-to-end
//! latency from a raise to the email arriving at a loopback SMTP sink.
//!
//! ```sh
//! cargo bench --bench dispatch --all-features
//! ```

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use alertkit::notify::{
    Dispatcher, DispatcherConfig, EmailNotifier, StaticDirectory, WebhookNotifier,
};
use alertkit::storage::{PostgresAlertStore, SqliteAlertStore};
use alertkit::transport::LocalBroadcaster;
use alertkit::{
    AlertId, AlertKit, Audience, Channel, DeliveryTarget, NewAlert, Principal, Recipient, Severity,
    Store, Subscription,
};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::runtime::Runtime;
use tokio::sync::mpsc;

const N: usize = 2000;

/// A webhook sink answering 204 to every POST, counting them.
async fn webhook_sink() -> (String, Arc<AtomicU64>) {
    let hits = Arc::new(AtomicU64::new(0));
    let h = hits.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move || {
            let h = h.clone();
            async move {
                h.fetch_add(1, Ordering::Relaxed);
                axum::http::StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/hook"), hits)
}

fn dispatcher(store: Arc<dyn Store>, url: &str) -> Dispatcher {
    let dir = StaticDirectory::new();
    for u in 0..5 {
        dir.set(Recipient {
            user_id: format!("u{u}"),
            webhook_url: Some(url.to_owned()),
            ..Default::default()
        });
    }
    Dispatcher::builder(store, Arc::new(dir))
        .notifier(Arc::new(
            WebhookNotifier::new(b"bench-secret-bench-secret".to_vec())
                .unwrap()
                .allow_private(true)
                .unwrap(),
        ))
        .config(DispatcherConfig {
            batch: 500,
            concurrency: 64,
            per_destination: HashMap::new(),
            ..Default::default()
        })
        .build()
        .unwrap()
}

/// Enqueues N deliveries (N/5 alerts × 5 users).
async fn enqueue(store: &dyn Store) {
    let targets: Vec<_> = (0..5)
        .map(|u| DeliveryTarget::new(format!("u{u}"), Channel::Webhook))
        .collect();
    let items: Vec<_> = (0..N / 5)
        .map(|i| {
            let a = NewAlert::new("bench", Severity::High, format!("a{i}"))
                .into_alert(AlertId::new(), chrono::Utc::now(), Audience::everyone)
                .unwrap();
            (a, targets.clone())
        })
        .collect();
    store.insert_many(items, chrono::Utc::now()).await.unwrap();
}

fn throughput(c: &mut Criterion) {
    let rt = Runtime::new().unwrap();
    let (url, hits) = rt.block_on(webhook_sink());
    let mut stores: Vec<(&str, Arc<dyn Store>)> = Vec::new();
    let path = std::env::temp_dir().join(format!("alertkit-dispatch-{}.db", uuid::Uuid::now_v7()));
    stores.push((
        "sqlite",
        rt.block_on(async {
            let s = SqliteAlertStore::builder(&path).connect().await.unwrap();
            s.migrate().await.unwrap();
            Arc::new(s) as Arc<dyn Store>
        }),
    ));
    let pg_schema = format!("akbench_dispatch_{}", uuid::Uuid::now_v7().simple());
    let pg = std::env::var("DATABASE_URL").ok().map(|url| {
        rt.block_on(async {
            let s = PostgresAlertStore::builder(url)
                .schema(&pg_schema)
                .max_connections(16)
                .connect()
                .await
                .unwrap();
            s.migrate().await.unwrap();
            s
        })
    });
    if let Some(pg) = &pg {
        stores.push(("postgres", Arc::new(pg.clone())));
    }
    let mut g = c.benchmark_group("dispatch_to_webhook");
    g.sample_size(10).throughput(Throughput::Elements(N as u64));
    for (name, store) in stores {
        let d = dispatcher(store.clone(), &url);
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        enqueue(&*store).await;
                        let before = hits.load(Ordering::Relaxed);
                        let t = Instant::now();
                        while d.run_once().await.unwrap() > 0 {}
                        total += t.elapsed();
                        assert_eq!(hits.load(Ordering::Relaxed) - before, N as u64);
                    }
                    total
                })
            })
        });
    }
    g.finish();
    if let Some(pg) = pg {
        rt.block_on(async {
            let _ = pg.drop_schema().await;
        });
    }
    for ext in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{ext}", path.display()));
    }
}

/// A minimal SMTP sink: accepts every message and reports its subject line
/// the moment the final `.` arrives.
async fn smtp_sink(tx: mpsc::UnboundedSender<(String, Instant)>) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let (r, mut w) = sock.into_split();
                let mut lines = BufReader::new(r).lines();
                let _ = w.write_all(b"220 sink\r\n").await;
                let (mut data, mut subject) = (false, String::new());
                while let Ok(Some(line)) = lines.next_line().await {
                    if data {
                        if line == "." {
                            data = false;
                            let _ = tx.send((std::mem::take(&mut subject), Instant::now()));
                            let _ = w.write_all(b"250 ok\r\n").await;
                        } else if let Some(s) = line.strip_prefix("Subject: ") {
                            subject = s.to_owned();
                        }
                        continue;
                    }
                    let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
                    let reply: &[u8] = match verb.as_str() {
                        "EHLO" | "HELO" => b"250 sink\r\n",
                        "DATA" => {
                            data = true;
                            b"354 go on\r\n"
                        }
                        "QUIT" => b"221 bye\r\n",
                        _ => b"250 ok\r\n",
                    };
                    let _ = w.write_all(reply).await;
                }
            });
        }
    });
    port
}

/// Raise → email received, one alert at a time, on SQLite; prints p50/p99.
fn raise_to_email(_c: &mut Criterion) {
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let port = smtp_sink(tx).await;
        let path = std::env::temp_dir().join(format!("alertkit-e2e-{}.db", uuid::Uuid::now_v7()));
        let store = SqliteAlertStore::builder(&path).connect().await.unwrap();
        store.migrate().await.unwrap();
        let store: Arc<dyn Store> = Arc::new(store);
        let kit = AlertKit::builder()
            .store(store.clone())
            .broadcaster(Arc::new(LocalBroadcaster::new()))
            .build()
            .unwrap();
        let alice = Principal::user("alice");
        kit.set_contacts(&alice, Recipient {
            email: Some("alice@example.test".into()),
            ..Default::default()
        })
        .await
        .unwrap();
        kit.set_subscriptions(&alice, vec![Subscription {
            user_id: String::new(),
            alert_type: "capacity_warning".into(),
            enabled: true,
            channels: vec![Channel::Email],
            min_severity: Severity::High,
            digest: None,
        }])
        .await
        .unwrap();
        let email = EmailNotifier::from_url(&format!("smtp://127.0.0.1:{port}"), "a@bench.test").unwrap();
        let running = Dispatcher::builder(
            kit.outbox(),
            Arc::new(alertkit::notify::StoreDirectory::new(kit.rule_store())),
        )
        .notifier(Arc::new(email))
        .config(DispatcherConfig {
            poll_every: Duration::from_millis(5),
            per_destination: HashMap::new(),
            ..Default::default()
        })
        .build()
        .unwrap()
        .spawn();
        let mut lat = Vec::new();
        for i in 0..200 {
            let title = format!("e2e {i}");
            let t = Instant::now();
            let new = NewAlert::new("capacity_warning", Severity::Critical, &title)
                .audience(Audience::user("alice"));
            kit.raise(&Principal::system(), new).await.unwrap();
            loop {
                let (subject, at) = rx.recv().await.unwrap();
                if subject.ends_with(&title) {
                    lat.push(at - t);
                    break;
                }
            }
        }
        running.shutdown().await;
        lat.sort();
        let pct = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)];
        println!(
            "raise_to_email (SQLite, loopback SMTP, dispatcher polling every 5 ms, 200 alerts): p50 {:?}, p99 {:?}, max {:?}",
            pct(0.50),
            pct(0.99),
            lat[lat.len() - 1]
        );
        for ext in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{ext}", path.display()));
        }
    });
}

criterion_group!(benches, throughput, raise_to_email);
criterion_main!(benches);
