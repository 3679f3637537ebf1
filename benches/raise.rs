//! Durable single raises with 16 concurrent callers, beside the database's
//! own single-row insert rate measured in the same run.
//!
//! Each caller loops on `AlertKit::raise` (one alert per call, its own
//! acknowledgement) for `SECS` seconds (default 5); the engine's group
//! commit shares transactions between callers that raise at the same time.
//! The baselines: for SQLite, 16 callers each committing single-row
//! `INSERT`s into a table of the same file settings (WAL,
//! `synchronous=NORMAL`); for PostgreSQL, `pgbench -c 16 -j 2` running a
//! one-row `INSERT` script (each its own transaction).
//!
//! ```sh
//! DATABASE_URL=postgres://postgres@127.0.0.1/postgres cargo bench --bench raise --all-features
//! ```
//! Without `DATABASE_URL` only SQLite runs. Figures in benches/README.md.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use alertkit::storage::{PostgresAlertStore, SqliteAlertStore};
use alertkit::transport::LocalBroadcaster;
use alertkit::{AlertKit, Audience, NewAlert, Principal, Severity, Store};

const CALLERS: usize = 16;

fn secs() -> Duration {
    Duration::from_secs(
        std::env::var("SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(5),
    )
}

/// Raises/s with `CALLERS` callers, each raising one alert per call.
async fn raises_per_sec(store: Arc<dyn Store>) -> f64 {
    let kit = AlertKit::builder()
        .store(store)
        .broadcaster(Arc::new(LocalBroadcaster::new()))
        .build()
        .unwrap();
    let done = Arc::new(AtomicU64::new(0));
    let until = Instant::now() + secs();
    let started = Instant::now();
    let tasks: Vec<_> = (0..CALLERS)
        .map(|c| {
            let (kit, done) = (kit.clone(), done.clone());
            tokio::spawn(async move {
                let system = Principal::system();
                let mut i = 0u64;
                while Instant::now() < until {
                    let new =
                        NewAlert::new("capacity_warning", Severity::High, format!("c{c} #{i}"))
                            .message("Forecast crosses capacity within the horizon")
                            .audience(Audience::user(format!("u{}", i % 1000)));
                    kit.raise(&system, new).await.unwrap();
                    done.fetch_add(1, Ordering::Relaxed);
                    i += 1;
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

/// Single-row insert transactions/s into SQLite with the store's settings.
async fn sqlite_baseline(path: &std::path::Path) -> f64 {
    use sqlx::sqlite::{
        SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous,
    };
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(Duration::from_secs(5));
    let pool = SqlitePoolOptions::new()
        .max_connections(CALLERS as u32)
        .connect_with(options)
        .await
        .unwrap();
    sqlx::query("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)")
        .execute(&pool)
        .await
        .unwrap();
    let done = Arc::new(AtomicU64::new(0));
    let until = Instant::now() + secs();
    let started = Instant::now();
    let tasks: Vec<_> = (0..CALLERS)
        .map(|_| {
            let (pool, done) = (pool.clone(), done.clone());
            tokio::spawn(async move {
                while Instant::now() < until {
                    sqlx::query(
                        "INSERT INTO t (v) VALUES ('Forecast crosses capacity within the horizon')",
                    )
                    .execute(&pool)
                    .await
                    .unwrap();
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

/// `pgbench` single-row insert transactions/s, 16 clients.
fn pgbench(url: &str) -> Option<f64> {
    let script = std::env::temp_dir().join(format!("alertkit-pgbench-{}.sql", std::process::id()));
    std::fs::write(
        &script,
        "INSERT INTO alertkit_pgbench (v) VALUES ('Forecast crosses capacity within the horizon');\n",
    )
    .ok()?;
    let psql = |sql: &str| {
        std::process::Command::new("psql")
            .args([url, "-q", "-c", sql])
            .status()
            .ok()
            .filter(|s| s.success())
    };
    psql(
        "DROP TABLE IF EXISTS alertkit_pgbench; CREATE TABLE alertkit_pgbench (id bigserial PRIMARY KEY, v text NOT NULL)",
    )?;
    let out = std::process::Command::new("pgbench")
        .args(["-n", "-c", &CALLERS.to_string(), "-j", "2", "-T"])
        .arg(secs().as_secs().to_string())
        .arg("-f")
        .arg(&script)
        .arg(url)
        .output()
        .ok()?;
    psql("DROP TABLE IF EXISTS alertkit_pgbench");
    let _ = std::fs::remove_file(&script);
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| l.strip_prefix("tps = "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    println!(
        "durable single raises, {CALLERS} concurrent callers, {}s each",
        secs().as_secs()
    );
    rt.block_on(async {
        let dir = std::env::temp_dir().join(format!("alertkit-raise-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let store = SqliteAlertStore::builder(dir.join("alerts.db"))
            .connect()
            .await
            .unwrap();
        store.migrate().await.unwrap();
        let raises = raises_per_sec(Arc::new(store)).await;
        let base = sqlite_baseline(&dir.join("baseline.db")).await;
        println!(
            "  sqlite:     {raises:>9.0} raises/s   (single-row insert transactions: {base:.0}/s)"
        );
        let _ = std::fs::remove_dir_all(&dir);

        if let Ok(url) = std::env::var("DATABASE_URL") {
            let pg = PostgresAlertStore::builder(url.clone())
                .schema("alertkit_bench_raise")
                .connect()
                .await
                .unwrap();
            pg.drop_schema().await.unwrap();
            pg.migrate().await.unwrap();
            let raises = raises_per_sec(Arc::new(pg)).await;
            let base = tokio::task::spawn_blocking(move || pgbench(&url))
                .await
                .unwrap();
            let base = base.map_or("pgbench failed".to_owned(), |b| format!("{b:.0}/s"));
            println!("  postgresql: {raises:>9.0} raises/s   (pgbench single-row inserts: {base})");
        }
    });
}
