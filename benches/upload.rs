//! The forecast upload with a 50 MB CSV (1.8 million rows, three series of
//! 5-minute points): how long the reference server's upload path takes
//! (streamed to a spool file, every row checked, then written in batches)
//! and how much memory it needs, on SQLite and on PostgreSQL.
//!
//! `cargo bench --bench upload` (`MB=…` changes the size; PostgreSQL runs
//! when `DATABASE_URL` is set, in a schema of its own dropped afterwards).
//! It calls the server's own upload code (`examples/server/forecast/
//! upload.rs`) with the file streamed as a request body, and reads the
//! process's peak RSS from `/proc/self/status` (`VmHWM`, reset through
//! `/proc/self/clear_refs` before each upload), so the figure is what the
//! upload adds to a running process. Linux only.
#![allow(clippy::panic, clippy::unwrap_used, dead_code, unused_imports)]

#[cfg(feature = "parquet")]
#[path = "../examples/server/forecast/parquet.rs"]
mod parquet;
#[path = "../examples/server/forecast/upload.rs"]
mod upload;

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use alertkit::SeriesStore;
use alertkit::storage::{PostgresAlertStore, SqliteAlertStore};

/// A `VmRSS` / `VmHWM` figure of this process, in KiB.
fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn generate(path: &Path, mb: u64) -> u64 {
    let mut w = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    writeln!(w, "timestamp,series,value").unwrap();
    let end = chrono::Utc::now().timestamp() / 300 * 300;
    let mut rows = 0u64;
    let mut bytes = 0u64;
    let mut i = 0i64;
    while bytes < mb * 1_000_000 {
        let t = end - i * 300;
        for (s, base) in [
            ("vch20.load", 50.0),
            ("vch21.load", 40.0),
            ("api.requests", 900.0),
        ] {
            let v = base + (i % 288) as f64 * 0.137 + (rows % 97) as f64 * 0.01;
            let line = format!("{t},{s},{v:.4}\n");
            bytes += line.len() as u64;
            w.write_all(line.as_bytes()).unwrap();
            rows += 1;
        }
        i += 1;
    }
    w.flush().unwrap();
    rows
}

async fn run(name: &str, store: &dyn SeriesStore, file: &Path, rows: u64) {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let before = status_kib("VmRSS:");
    let body = axum::body::Body::from_stream(tokio_util::io::ReaderStream::new(
        tokio::fs::File::open(file).await.unwrap(),
    ));
    let t = Instant::now();
    let summary = match upload::upload(body, upload::Format::Csv, 4096 << 20, store).await {
        Ok(s) => s,
        Err(_) => panic!("{name}: the upload was refused"),
    };
    let took = t.elapsed();
    let peak = status_kib("VmHWM:");
    assert_eq!(summary.rows, rows);
    println!(
        "{name:>8} | {rows} rows in {took:.1?} ({:.0} rows/s) | RSS before {:.1} MiB, peak {:.1} MiB (+{:.1} MiB)",
        rows as f64 / took.as_secs_f64(),
        before as f64 / 1024.0,
        peak as f64 / 1024.0,
        peak.saturating_sub(before) as f64 / 1024.0,
    );
}

#[tokio::main]
async fn main() {
    let mb: u64 = std::env::var("MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let dir = std::env::temp_dir().join(format!("akbench-upload-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).unwrap();
    let csv = dir.join("actuals.csv");
    let rows = generate(&csv, mb);
    let size = std::fs::metadata(&csv).map(|m| m.len()).unwrap_or(0);
    println!("file: {:.1} MB, {rows} rows", size as f64 / 1e6);

    let lite = SqliteAlertStore::builder(dir.join("bench.db"))
        .connect()
        .await
        .unwrap_or_else(|e| panic!("sqlite: {e}"));
    lite.migrate()
        .await
        .unwrap_or_else(|e| panic!("migrate: {e}"));
    run("sqlite", &lite, &csv, rows).await;
    lite.close().await;

    match std::env::var("DATABASE_URL") {
        Ok(url) if !url.is_empty() => {
            let pg = PostgresAlertStore::builder(url)
                .schema(format!("akbench_upload_{}", uuid::Uuid::now_v7().simple()))
                .connect()
                .await
                .unwrap_or_else(|e| panic!("postgres: {e}"));
            pg.migrate()
                .await
                .unwrap_or_else(|e| panic!("migrate: {e}"));
            run("postgres", &pg, &csv, rows).await;
            pg.drop_schema()
                .await
                .unwrap_or_else(|e| panic!("drop schema: {e}"));
        }
        _ => println!("postgres: skipped (DATABASE_URL is not set)"),
    }
    let _ = std::fs::remove_dir_all(&dir);
}
