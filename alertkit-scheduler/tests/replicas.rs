//! Three schedulers on one store, in real time: a 1-second job runs once per
//! tick, none twice and none missed, on PostgreSQL (three pools on one
//! schema) and on SQLite (three pools on one file, as three processes
//! would).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use alertkit_core::{Job, JobContext, JobSpec, JobStore, Result, Schedule, Scheduler};
use alertkit_scheduler::CronScheduler;
use alertkit_storage::{PostgresAlertStore, SqliteBuilder};
use alertkit_testkit::services::service_url;
use chrono::{DateTime, Utc};

/// Counts executions across every replica.
struct Count(Arc<AtomicUsize>);

#[async_trait::async_trait]
impl Job for Count {
    async fn run(&self, _: JobContext) -> Result<()> {
        self.0.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(100)).await;
        Ok(())
    }
}

const SECONDS: i64 = 30;

/// Three stores on one PostgreSQL schema, as three processes would have.
async fn three_pools(url: &str, schema: &str) -> Vec<PostgresAlertStore> {
    let mut stores = Vec::new();
    for _ in 0..3 {
        let s = PostgresAlertStore::builder(url)
            .schema(schema)
            .max_connections(4)
            .connect()
            .await
            .unwrap();
        s.migrate().await.unwrap();
        stores.push(s);
    }
    stores
}

async fn three_replicas(stores: [Arc<dyn JobStore>; 3]) {
    let runs = Arc::new(AtomicUsize::new(0));
    let mut handles = Vec::new();
    for store in &stores {
        let s = CronScheduler::builder(store.clone()).build();
        s.register(
            JobSpec::new("every_second", "tick", Schedule::Interval { every_secs: 1 }),
            Arc::new(Count(runs.clone())),
        )
        .await
        .unwrap();
        handles.push(s.spawn());
    }
    let start = Utc::now();
    tokio::time::sleep(Duration::from_secs(SECONDS as u64)).await;
    let end = Utc::now();
    for h in handles {
        h.shutdown().await;
    }
    let recorded = stores[0].job_runs("every_second", 1000).await.unwrap();
    let ticks: Vec<DateTime<Utc>> = recorded.iter().map(|r| r.scheduled_at).collect();
    let distinct: BTreeSet<_> = ticks.iter().copied().collect();
    assert_eq!(ticks.len(), distinct.len(), "no tick recorded twice");
    assert_eq!(
        runs.load(Ordering::SeqCst),
        ticks.len(),
        "each recorded tick ran once, on one replica"
    );
    // Every whole second strictly inside the window ran.
    let first = start.timestamp() + 1;
    let last = end.timestamp() - 1;
    let missing: Vec<i64> = (first..=last)
        .filter(|s| !distinct.contains(&DateTime::from_timestamp(*s, 0).unwrap()))
        .collect();
    assert!(missing.is_empty(), "ticks missed: {missing:?}");
    assert!(
        (first..=last).count() >= (SECONDS - 2) as usize,
        "the window held {SECONDS} s"
    );
    assert!(
        recorded
            .iter()
            .all(|r| r.status == alertkit_core::RunStatus::Succeeded),
        "every run succeeded"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_schedulers_on_postgres_run_each_tick_once() {
    let Some(url) = service_url("DATABASE_URL") else {
        return;
    };
    let schema = format!("aksched_{}", uuid::Uuid::now_v7().simple());
    let stores = three_pools(&url, &schema).await;
    let dropper = stores[0].clone();
    let [a, b, c]: [PostgresAlertStore; 3] = stores.try_into().unwrap_or_else(|_| panic!());
    let outcome = tokio::spawn(three_replicas([Arc::new(a), Arc::new(b), Arc::new(c)])).await;
    let _ = dropper.drop_schema().await;
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_schedulers_on_one_sqlite_file_run_each_tick_once() {
    let dir = std::env::temp_dir().join(format!("aksched-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("jobs.db");
    let mut stores: Vec<Arc<dyn JobStore>> = Vec::new();
    for _ in 0..3 {
        let s = SqliteBuilder::new(&path).connect().await.unwrap();
        s.migrate().await.unwrap();
        stores.push(Arc::new(s));
    }
    let [a, b, c]: [Arc<dyn JobStore>; 3] = stores.try_into().unwrap_or_else(|_| panic!());
    let outcome = tokio::spawn(three_replicas([a, b, c])).await;
    let _ = std::fs::remove_dir_all(&dir);
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

/// Hangs on replica 0 (which is then killed); returns at once elsewhere.
struct HangsOnFirst {
    replica: usize,
    done: Arc<AtomicUsize>,
}

#[async_trait::async_trait]
impl Job for HangsOnFirst {
    async fn run(&self, _: JobContext) -> Result<()> {
        if self.replica == 0 {
            std::future::pending::<()>().await;
        }
        self.done.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_of_a_killed_replica_is_taken_over_once_its_lease_lapses() {
    let Some(url) = service_url("DATABASE_URL") else {
        return;
    };
    let schema = format!("aksched_{}", uuid::Uuid::now_v7().simple());
    let stores = three_pools(&url, &schema).await;
    let dropper = stores[0].clone();
    let outcome = tokio::spawn(async move {
        let done = Arc::new(AtomicUsize::new(0));
        let mut schedulers = Vec::new();
        let mut handles = Vec::new();
        for (replica, store) in stores.into_iter().enumerate() {
            let s = CronScheduler::builder(Arc::new(store))
                .config(alertkit_scheduler::SchedulerConfig {
                    lease: Duration::from_secs(2),
                    poll: Duration::from_millis(100),
                    ..Default::default()
                })
                .build();
            s.register(
                JobSpec::new("report", "r", Schedule::Interval { every_secs: 86_400 }),
                Arc::new(HangsOnFirst {
                    replica,
                    done: done.clone(),
                }),
            )
            .await
            .unwrap();
            handles.push(s.spawn());
            schedulers.push(s);
        }
        let run = schedulers[0].trigger("report").await.unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        // Replica 0 dies mid-run.
        handles.remove(0).abort();
        let store = PostgresAlertStore::builder(&url)
            .schema(&schema)
            .connect()
            .await
            .unwrap();
        let mut last = None;
        for _ in 0..100 {
            let r = store.job_runs("report", 5).await.unwrap();
            if r[0].status == alertkit_core::RunStatus::Succeeded {
                last = Some(r);
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let runs = last.expect("the run was taken over and finished within 10 s");
        assert_eq!(runs.len(), 1, "the same run, not a new tick");
        assert_eq!((runs[0].id, runs[0].attempt), (run.id, 2));
        // Let the survivors go on a while: nobody runs it a third time.
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert_eq!(done.load(Ordering::SeqCst), 1, "taken over exactly once");
        for h in handles {
            h.shutdown().await;
        }
    })
    .await;
    let _ = dropper.drop_schema().await;
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}
