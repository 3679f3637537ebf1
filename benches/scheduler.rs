//! The scheduler with 10,000 registered jobs: how late each tick starts
//! (p50/p99/max of start − tick), and the loop's CPU when nothing is due.
//!
//! `cargo bench --bench scheduler` (in-memory store; about 40 s). Not a
//! criterion bench: it measures a running loop in real time. By default
//! every job fires every 10 s at offset `i % 10` (1,000 ticks due at the
//! same instant each second); `SPREAD=60` makes it every minute at second
//! `i % 60` (about 167 a second); `SPREAD=few` has 10 jobs due every second
//! and the rest daily; `JOBS=n` changes the job count. `STORE=postgres`
//! claims the ticks in PostgreSQL (`DATABASE_URL`, a schema of its own,
//! dropped afterwards) instead of the in-memory store.
#![allow(clippy::panic)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use alertkit::scheduler::CronScheduler;
use alertkit::storage::{MemoryAlertStore, PostgresAlertStore};
use alertkit::{Job, JobContext, JobSpec, JobStore, Result, Schedule, Scheduler};
use chrono::Utc;

/// Records how late it started, in microseconds.
struct Late(Arc<Mutex<Vec<(i64, i64)>>>);

#[async_trait::async_trait]
impl Job for Late {
    async fn run(&self, ctx: JobContext) -> Result<()> {
        let late = (Utc::now() - ctx.scheduled_at)
            .num_microseconds()
            .unwrap_or(i64::MAX);
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((ctx.scheduled_at.timestamp(), late));
        Ok(())
    }
}

/// User + system CPU time of this process, from /proc (Linux).
fn cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // USER_HZ is 100 on Linux.
    Some(Duration::from_millis(ticks * 10))
}

fn percentile(sorted: &[i64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)] as f64 / 1000.0
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let jobs_n: usize = std::env::var("JOBS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    const JOBS: usize = 10_000;
    let pg = match std::env::var("STORE").as_deref() {
        Ok("postgres") => {
            let url = std::env::var("DATABASE_URL")
                .unwrap_or_else(|_| panic!("STORE=postgres needs DATABASE_URL"));
            let s = PostgresAlertStore::builder(url)
                .schema(format!("akbench_sched_{}", uuid::Uuid::now_v7().simple()))
                .max_connections(8)
                .connect()
                .await
                .unwrap_or_else(|e| panic!("connect: {e}"));
            s.migrate().await.unwrap_or_else(|e| panic!("migrate: {e}"));
            Some(s)
        }
        _ => None,
    };
    let store: Arc<dyn JobStore> = match &pg {
        Some(pg) => Arc::new(pg.clone()),
        None => Arc::new(MemoryAlertStore::new()),
    };
    println!(
        "store: {}",
        if pg.is_some() { "postgres" } else { "memory" }
    );
    // 1. Ticks: every job fires every 10 s at second offset i % 10, so a
    //    thousand ticks fall due each second.
    let sched = CronScheduler::builder(store).build();
    let late = Arc::new(Mutex::new(Vec::new()));
    for i in 0..jobs_n {
        let mut spec = JobSpec::new(
            format!("job{i}"),
            "bench",
            Schedule::Cron {
                expr: match std::env::var("SPREAD").as_deref() {
                    Ok("60") => format!("{} * * * * *", i % 60),
                    // 10 jobs every second, the rest daily at noon.
                    Ok("few") if i >= 10 => "0 0 12 * * *".into(),
                    Ok("few") => "* * * * * *".into(),
                    _ => format!("{}-59/10 * * * * *", i % 10),
                },
                timezone: None,
            },
        );
        spec.retry_delays_secs = vec![];
        sched
            .register(spec, Arc::new(Late(late.clone())))
            .await
            .unwrap_or_else(|e| panic!("register: {e}"));
    }
    let handle = sched.spawn();
    tokio::time::sleep(Duration::from_secs(3)).await; // warm up
    late.lock().unwrap_or_else(|p| p.into_inner()).clear();
    let cpu0 = cpu_time();
    let t0 = Instant::now();
    tokio::time::sleep(Duration::from_secs(20)).await;
    let busy = cpu_time()
        .zip(cpu0)
        .map(|(b, a)| (b - a).as_secs_f64() / t0.elapsed().as_secs_f64());
    handle.shutdown().await;
    if let Some(pg) = &pg {
        pg.drop_schema()
            .await
            .unwrap_or_else(|e| panic!("drop schema: {e}"));
    }
    let raw = late.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let mut l: Vec<i64> = raw.iter().map(|(_, l)| *l).collect();
    l.sort_unstable();
    // The first start of each second: how late the loop woke up.
    let mut first: std::collections::BTreeMap<i64, i64> = Default::default();
    for (t, l) in &raw {
        let e = first.entry(*t).or_insert(*l);
        *e = (*e).min(*l);
    }
    let mut woke: Vec<i64> = first.values().copied().collect();
    woke.sort_unstable();
    println!(
        "loop wake-up (first start of each tick second): p50 {:.2} ms, max {:.2} ms",
        percentile(&woke, 0.5),
        percentile(&woke, 1.0)
    );
    println!(
        "{JOBS} jobs, {} ticks in 20 s: start − tick p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; CPU {:.1} % of one core",
        l.len(),
        percentile(&l, 0.5),
        percentile(&l, 0.99),
        percentile(&l, 1.0),
        busy.unwrap_or(f64::NAN) * 100.0
    );

    // 2. Idle: 10,000 daily jobs, none due for hours.
    let idle = CronScheduler::builder(Arc::new(MemoryAlertStore::new())).build();
    let hour = (Utc::now() + chrono::Duration::hours(6))
        .format("%H")
        .to_string();
    for i in 0..JOBS {
        let spec = JobSpec::new(
            format!("daily{i}"),
            "bench",
            Schedule::Cron {
                expr: format!("0 {} {hour} * * *", i % 60),
                timezone: Some("Europe/Berlin".into()),
            },
        );
        idle.register(spec, Arc::new(Late(late.clone())))
            .await
            .unwrap_or_else(|e| panic!("register: {e}"));
    }
    let handle = idle.spawn();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let cpu0 = cpu_time();
    let t0 = Instant::now();
    tokio::time::sleep(Duration::from_secs(15)).await;
    let busy = cpu_time()
        .zip(cpu0)
        .map(|(b, a)| (b - a).as_secs_f64() / t0.elapsed().as_secs_f64());
    handle.shutdown().await;
    println!(
        "{JOBS} jobs, none due: scheduler CPU {:.2} % of one core",
        busy.unwrap_or(f64::NAN) * 100.0
    );
}
