//! Store throughput per backend: single and batched inserts, first-page
//! lists; and PostgreSQL at 1M alerts (page 1 and page 1000).
//!
//! ```sh
//! cargo bench --bench store --all-features                  # memory + sqlite (+ postgres/mongodb when their URLs are set)
//! ALERTKIT_BENCH_1M=1 cargo bench --bench store --all-features -- postgres_1m
//! ```
//! `DATABASE_URL` and `MONGODB_URL` select the servers (`scripts/services.sh`
//! prints them). The 1M data set lives in schema `alertkit_bench_1m` and is
//! reused across runs; drop the schema to rebuild it.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use alertkit::storage::{MemoryAlertStore, MongoAlertStore, PostgresAlertStore, SqliteAlertStore};
use alertkit::{
    Alert, AlertFilter, AlertId, AlertQuery, AlertStore, Audience, NewAlert, Severity, Viewer,
};
use chrono::{DateTime, TimeZone, Utc};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use tokio::runtime::Runtime;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
}

/// The i-th alert of the synthetic data set: one in ten for everyone, the
/// rest for one of 1000 users; five types, 100 product tags.
fn synthetic(i: u64) -> Alert {
    let audience = if i.is_multiple_of(10) {
        Audience::everyone()
    } else {
        Audience::user(format!("u{}", i % 1000))
    };
    NewAlert::new(
        [
            "capacity_warning",
            "sla_breached",
            "logistics_delay",
            "high_workload",
            "sla_at_risk",
        ][(i % 5) as usize],
        Severity::ALL[(i % 5) as usize],
        format!("alert {i}"),
    )
    .message("Forecast crosses capacity within the horizon")
    .tags([format!("P{}", i % 100)])
    .audience(audience)
    .into_alert(
        AlertId::new(),
        t0() + chrono::Duration::milliseconds(i as i64 * 10),
        Audience::everyone,
    )
    .unwrap()
}

async fn fill(store: &dyn AlertStore, from: u64, n: u64) {
    let mut i = from;
    while i < from + n {
        let chunk: Vec<_> = (i..(from + n).min(i + 1000))
            .map(|j| (synthetic(j), vec![]))
            .collect();
        i += chunk.len() as u64;
        store.insert_many(chunk, t0()).await.expect("fill");
    }
}

struct Backend {
    name: &'static str,
    store: Arc<dyn AlertStore>,
}

async fn backends() -> Vec<Backend> {
    let mut out = vec![Backend {
        name: "memory",
        store: Arc::new(MemoryAlertStore::new()),
    }];
    let path = std::env::temp_dir().join(format!("alertkit-bench-{}.db", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let lite = SqliteAlertStore::builder(&path)
        .connect()
        .await
        .expect("sqlite");
    lite.migrate().await.expect("migrate");
    out.push(Backend {
        name: "sqlite",
        store: Arc::new(lite),
    });
    if let Ok(url) = std::env::var("DATABASE_URL") {
        let pg = PostgresAlertStore::builder(url)
            .schema("alertkit_bench")
            .max_connections(4)
            .connect()
            .await
            .expect("pg");
        pg.drop_schema().await.expect("drop");
        pg.migrate().await.expect("migrate");
        out.push(Backend {
            name: "postgres",
            store: Arc::new(pg),
        });
    } else {
        eprintln!("DATABASE_URL unset: skipping postgres");
    }
    if let Ok(url) = std::env::var("MONGODB_URL") {
        let m = MongoAlertStore::builder(url)
            .database("alertkit_bench")
            .connect()
            .await
            .expect("mongo");
        m.drop_database().await.expect("drop");
        m.init().await.expect("init");
        out.push(Backend {
            name: "mongodb",
            store: Arc::new(m),
        });
    } else {
        eprintln!("MONGODB_URL unset: skipping mongodb");
    }
    out
}

fn per_backend(c: &mut Criterion) {
    let rt = Runtime::new().unwrap();
    let backends = rt.block_on(backends());
    let mut next = 10_000_000u64;
    for b in &backends {
        let mut g = c.benchmark_group(format!("store/{}", b.name));
        g.sample_size(10).measurement_time(Duration::from_secs(5));
        g.throughput(Throughput::Elements(1));
        g.bench_function("insert_single", |bench| {
            bench.to_async(&rt).iter(|| {
                next += 1;
                let a = synthetic(next);
                let store = b.store.clone();
                async move { store.insert_or_dedup(a, &[], t0()).await.unwrap() }
            })
        });
        g.throughput(Throughput::Elements(1000));
        g.bench_function(BenchmarkId::new("insert_batch", 1000), |bench| {
            bench.to_async(&rt).iter(|| {
                next += 1000;
                let items: Vec<_> = (next..next + 1000)
                    .map(|i| (synthetic(i), vec![]))
                    .collect();
                let store = b.store.clone();
                async move { store.insert_many(items, t0()).await.unwrap() }
            })
        });
        g.throughput(Throughput::Elements(1));
        let viewer = Viewer::new("u7", Vec::<String>::new());
        g.bench_function("list_first_page", |bench| {
            bench.to_async(&rt).iter(|| {
                let store = b.store.clone();
                let viewer = viewer.clone();
                async move {
                    store
                        .list(&viewer, &AlertQuery::default(), t0())
                        .await
                        .unwrap()
                }
            })
        });
        g.finish();
    }
}

/// PostgreSQL with 1M alerts: page 1 and page 1000 (50 per page) for a user
/// and for an admin, and the batched insert rate while filling.
fn postgres_1m(c: &mut Criterion) {
    if std::env::var("ALERTKIT_BENCH_1M").is_err() {
        eprintln!("ALERTKIT_BENCH_1M unset: skipping postgres_1m");
        return;
    }
    let Ok(url) = std::env::var("DATABASE_URL") else {
        return;
    };
    let rt = Runtime::new().unwrap();
    let pg = rt.block_on(async {
        let pg = PostgresAlertStore::builder(url)
            .schema("alertkit_bench_1m")
            .max_connections(8)
            .connect()
            .await
            .unwrap();
        pg.migrate().await.unwrap();
        let have = pg
            .count(&Viewer::all("root"), &AlertFilter::default(), t0())
            .await
            .unwrap();
        if have < 1_000_000 {
            let start = Instant::now();
            // Four writers, batches of 1000.
            let per = (1_000_000 - have).div_ceil(4);
            let tasks: Vec<_> = (0..4)
                .map(|w| {
                    let pg = pg.clone();
                    tokio::spawn(async move { fill(&pg, have + w * per, per).await })
                })
                .collect();
            for t in tasks {
                t.await.unwrap();
            }
            let secs = start.elapsed().as_secs_f64();
            eprintln!(
                "filled {} alerts in {secs:.1} s: {:.0} alerts/s",
                1_000_000 - have,
                (1_000_000 - have) as f64 / secs
            );
            // Realistic read state: 30% of personal alerts read by their
            // user, half the broadcast ones read by u7 (the bench's viewer).
            let db = sqlx::PgPool::connect(&std::env::var("DATABASE_URL").unwrap())
                .await
                .unwrap();
            for sql in [
                "INSERT INTO alertkit_bench_1m.alert_receipts (user_id, alert_id, read_at) \
                 SELECT substr(audience[1], 6), id, created_at FROM alertkit_bench_1m.alerts \
                 WHERE audience[1] LIKE 'user:%' AND random() < 0.3 ON CONFLICT DO NOTHING",
                "INSERT INTO alertkit_bench_1m.alert_receipts (user_id, alert_id, read_at) \
                 SELECT 'u7', id, created_at FROM alertkit_bench_1m.alerts \
                 WHERE audience[1] = 'everyone' AND random() < 0.5 ON CONFLICT DO NOTHING",
            ] {
                sqlx::query(sql).execute(&db).await.unwrap();
            }
            db.close().await;
            pg.vacuum_analyze().await.unwrap();
        }
        pg
    });
    for (who, viewer) in [
        ("user", Viewer::new("u7", Vec::<String>::new())),
        ("admin", Viewer::all("root")),
    ] {
        let page1000 = rt.block_on(async {
            let mut q = AlertQuery::default();
            for _ in 0..999 {
                q.cursor = pg.list(&viewer, &q, t0()).await.unwrap().next_cursor;
            }
            q
        });
        let first = AlertQuery::default();
        let mut g = c.benchmark_group(format!("store/postgres_1m/{who}"));
        g.sample_size(50);
        g.bench_function("list_page_1", |b| {
            b.to_async(&rt).iter(|| pg.list(&viewer, &first, t0()))
        });
        g.bench_function("list_page_1000", |b| {
            b.to_async(&rt).iter(|| pg.list(&viewer, &page1000, t0()))
        });
        g.finish();
    }
}

criterion_group!(store, per_backend, postgres_1m);
criterion_main!(store);
