//! Reports over 100,000 alerts: how long an `alerts` report takes (the
//! grouped query, the exact total, the CSV and JSON written), for an admin
//! who sees every alert and for a user who sees those of their group, on
//! SQLite and on PostgreSQL; and a `deliveries` report over as many
//! deliveries.
//!
//! `cargo bench --bench reports` (`N=…` changes the alert count; PostgreSQL
//! runs when `DATABASE_URL` is set, in a schema of its own dropped
//! afterwards). Not a criterion bench: each report is seconds of work on
//! one backend, so it prints the best and the median of 5.
#![allow(clippy::panic)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use alertkit::scheduler::Reports;
use alertkit::storage::{PostgresAlertStore, SqliteAlertStore};
use alertkit::{
    AlertKit, Audience, Channel, DeliveryTarget, NewAlert, Permission, Principal, ReportFilter,
    ReportKind, ReportRequest, ReportStatus, ReportStore, Severity, Store,
};
use alertkit_testkit::fixtures;
use chrono::Utc;

async fn seed(store: &dyn Store, n: usize) {
    let end = Utc::now();
    let sevs = [Severity::Low, Severity::Medium, Severity::High];
    let audiences = [
        Audience::everyone(),
        Audience::group("planners"),
        Audience::group("ops"),
    ];
    let mut batch = Vec::new();
    for i in 0..n {
        let at = end - chrono::Duration::seconds(1 + (i as i64 * 86_000 / n as i64));
        let a = fixtures::alert(
            NewAlert::new(["disk", "cpu", "mem", "net"][i % 4], sevs[i % 3], "bench")
                .tags([["vch20", "vch21", "pk16", "api", "db"][i % 5]])
                .audience(audiences[i % 3].clone()),
            at,
        );
        let targets = vec![DeliveryTarget::new(format!("u{}", i % 50), Channel::Email)];
        batch.push((a, targets));
        if batch.len() == 2_000 {
            store
                .insert_many(std::mem::take(&mut batch), end)
                .await
                .unwrap_or_else(|e| panic!("seed: {e}"));
        }
    }
    if !batch.is_empty() {
        store
            .insert_many(batch, end)
            .await
            .unwrap_or_else(|e| panic!("seed: {e}"));
    }
}

async fn time(reports: &Reports, by: &Principal, kind: ReportKind) -> (Duration, u64) {
    let now = Utc::now();
    let request = ReportRequest {
        kind,
        from: now - chrono::Duration::days(1),
        to: now,
        filter: ReportFilter::default(),
    };
    let t = Instant::now();
    let r = reports
        .trigger(by, request)
        .await
        .unwrap_or_else(|e| panic!("trigger: {e}"));
    reports
        .run_due()
        .await
        .unwrap_or_else(|e| panic!("run: {e}"));
    let took = t.elapsed();
    let done = reports
        .status(by, r.id)
        .await
        .unwrap_or_else(|e| panic!("status: {e}"));
    assert_eq!(done.status, ReportStatus::Completed, "{:?}", done.error);
    (took, done.rows.unwrap_or_default())
}

async fn bench(name: &str, store: Arc<dyn Store>, reports_store: Arc<dyn ReportStore>, n: usize) {
    let t = Instant::now();
    seed(&*store, n).await;
    println!(
        "{name}: seeded {n} alerts with one delivery each in {:.1?}",
        t.elapsed()
    );
    let kit = AlertKit::builder()
        .store(store)
        .broadcaster(Arc::new(alertkit::transport::LocalBroadcaster::new()))
        .build()
        .unwrap_or_else(|e| panic!("kit: {e}"));
    let dir = std::env::temp_dir().join(format!("akbench-reports-{}", uuid::Uuid::now_v7()));
    let reports = Reports::new(reports_store, kit, &dir);
    let admin = Principal::admin("root");
    let planner = Principal::user("pam")
        .with_groups(["planners"])
        .with_permissions([Permission::ReportsCreate]);
    for (who, by, kind) in [
        ("alerts, admin (all)", &admin, ReportKind::Alerts),
        ("alerts, group member (2/3)", &planner, ReportKind::Alerts),
        ("deliveries, admin", &admin, ReportKind::Deliveries),
    ] {
        let mut times = Vec::new();
        let mut rows = 0;
        for _ in 0..5 {
            let (took, r) = time(&reports, by, kind).await;
            times.push(took);
            rows = r;
        }
        times.sort();
        println!(
            "{name:>8} | {who:<28} | best {:>8.1?} | median {:>8.1?} | {rows} rows",
            times[0], times[2]
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::main]
async fn main() {
    let n: usize = std::env::var("N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let file = std::env::temp_dir().join(format!("akbench-reports-{}.db", uuid::Uuid::now_v7()));
    let lite = SqliteAlertStore::builder(&file)
        .connect()
        .await
        .unwrap_or_else(|e| panic!("sqlite: {e}"));
    lite.migrate()
        .await
        .unwrap_or_else(|e| panic!("migrate: {e}"));
    bench("sqlite", Arc::new(lite.clone()), Arc::new(lite.clone()), n).await;
    lite.close().await;
    for ext in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{ext}", file.display()));
    }
    match std::env::var("DATABASE_URL") {
        Ok(url) if !url.is_empty() => {
            let pg = PostgresAlertStore::builder(url)
                .schema(format!("akbench_reports_{}", uuid::Uuid::now_v7().simple()))
                .connect()
                .await
                .unwrap_or_else(|e| panic!("postgres: {e}"));
            pg.migrate()
                .await
                .unwrap_or_else(|e| panic!("migrate: {e}"));
            bench("postgres", Arc::new(pg.clone()), Arc::new(pg.clone()), n).await;
            pg.drop_schema()
                .await
                .unwrap_or_else(|e| panic!("drop schema: {e}"));
        }
        _ => println!("postgres: skipped (DATABASE_URL is not set)"),
    }
}
