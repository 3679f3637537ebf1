//! The scheduler's `/health` component: its loop and the leases it holds.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use alertkit_core::{
    AlertKit, ComponentStatus, HealthCheck, Job, JobContext, JobSpec, Result, Schedule, Scheduler,
};
use alertkit_scheduler::CronScheduler;
use alertkit_storage::MemoryAlertStore;
use alertkit_transport::LocalBroadcaster;
use tokio::sync::Semaphore;

struct Gated(Arc<Semaphore>);

#[async_trait::async_trait]
impl Job for Gated {
    async fn run(&self, _ctx: JobContext) -> Result<()> {
        let _permit = self.0.acquire().await;
        Ok(())
    }
}

#[tokio::test]
async fn health_follows_the_loop_and_counts_held_leases() {
    let kit = AlertKit::builder()
        .store(Arc::new(MemoryAlertStore::new()))
        .broadcaster(Arc::new(LocalBroadcaster::new()))
        .build()
        .unwrap();
    let scheduler = CronScheduler::builder(kit.job_store()).build();
    let gate = Arc::new(Semaphore::new(0));
    scheduler
        .register(
            JobSpec::new(
                "slow",
                "waits for the gate",
                Schedule::Interval { every_secs: 3600 },
            ),
            Arc::new(Gated(gate.clone())),
        )
        .await
        .unwrap();
    assert_eq!(scheduler.name(), "scheduler");

    // Not spawned: nothing runs the jobs.
    let h = scheduler.check().await;
    assert_eq!(h.status, ComponentStatus::Degraded);
    assert_eq!(h.details["loop"], "stopped");
    assert_eq!(h.details["jobs"], 1);

    let handle = scheduler.spawn();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let h = scheduler.check().await;
    assert_eq!(h.status, ComponentStatus::Ok, "{h:?}");
    assert_eq!(h.details["loop"], "running");
    assert_eq!(h.details["held_runs"], 0);
    assert_eq!(h.details["lease_secs"], 30);

    // A run in progress holds a lease.
    scheduler.trigger("slow").await.unwrap();
    let mut held = 0;
    for _ in 0..50 {
        held = scheduler.check().await.details["held_runs"]
            .as_u64()
            .unwrap();
        if held == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(held, 1);
    gate.add_permits(1);
    for _ in 0..50 {
        held = scheduler.check().await.details["held_runs"]
            .as_u64()
            .unwrap();
        if held == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(held, 0, "the lease is let go when the run ends");
    handle.shutdown().await;
}
