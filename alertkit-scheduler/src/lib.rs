//! Scheduled jobs for alertkit: [`CronScheduler`] runs cron and interval
//! jobs on Tokio, each tick **once across every instance** sharing a store.
//!
//! # How a tick runs once
//! Ticks are instants every instance computes alike: a cron expression in a
//! named time zone ([`Compiled`], DST-correct), or multiples of an interval
//! since the Unix epoch. When a tick falls due, every instance tries to claim
//! it with [`JobStore::claim_job_run`](alertkit_core::JobStore::claim_job_run),
//! which is unique on (job, tick): exactly one wins and runs it; the others
//! move on. No Redis or leader election is needed, and it works on
//! PostgreSQL, MongoDB and SQLite (one file shared by several processes).
//! The ticks of one instant are claimed together in one store call
//! ([`claim_job_runs`](alertkit_core::JobStore::claim_job_runs)), and a run
//! without jitter is recorded straight as `running`, so a job's body starts
//! one round trip after its tick. The loop sleeps until just before the
//! next tick and yields the last 1.5 ms, as Tokio's timer is coarser than
//! that.
//!
//! # Policies (per job, in [`JobSpec`])
//! - **Misfires** ([`MisfirePolicy`]): after downtime, the ticks since the
//!   job's last recorded run that are late by more than
//!   [`SchedulerConfig::misfire_grace`] (60 s) are *missed*. `Skip` runs
//!   none, `RunOnce` (default) runs the latest once, `CatchUp` runs each,
//!   oldest first, one after another. Ticks within the grace always run.
//! - **Overlap** ([`Overlap`]): a tick that comes while this instance is
//!   still running the job is skipped (default; a manual trigger then gets
//!   `Conflict`) or queued until the run ends.
//! - **Timeout**: a run taking longer than `timeout_secs` is cut off and
//!   fails.
//! - **Jitter**: `jitter_secs` delays each run's start by a random part of
//!   it, so jobs sharing a schedule do not all start in the same instant.
//! - **Retries**: a failed run (error, timeout or panic) is retried after
//!   each of `retry_delays_secs` (default 60, 300, 900); the run record goes
//!   back to `pending` with its attempt number and last error, then to
//!   `running`, and ends `succeeded` or `failed`. A run is `pending` while
//!   it waits (for its jitter, its retry, or after being taken over from a
//!   dead instance); a tick claimed to start at once is `running` from its
//!   claim.
//! - **Failure alerts**: with
//!   [`failure_alerts`](CronSchedulerBuilder::failure_alerts), a job whose
//!   last 3 runs failed raises a `job_failed` alert (deduplicated per job);
//!   its next success resolves it.
//! - **Reports** ([`reports`]): [`Reports`] stores report requests in a
//!   [`ReportStore`](alertkit_core::ReportStore); the [`ReportJob`] claims
//!   them under a lease (once across instances) and writes CSV and JSON
//!   files; [`ReportRetentionJob`] deletes old ones.
//!
//! # Example
//! ```
//! use std::sync::Arc;
//! use alertkit_core::{Job, JobContext, JobSpec, Result, Schedule, Scheduler};
//! use alertkit_scheduler::CronScheduler;
//! use alertkit_storage::MemoryAlertStore;
//!
//! struct Cleanup;
//! #[async_trait::async_trait]
//! impl Job for Cleanup {
//!     async fn run(&self, ctx: JobContext) -> Result<()> {
//!         println!("cleaning up for the tick at {}", ctx.scheduled_at);
//!         Ok(())
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<()> {
//! let scheduler = CronScheduler::builder(Arc::new(MemoryAlertStore::new())).build();
//! let spec = JobSpec::new(
//!     "cleanup",
//!     "purge expired alerts",
//!     Schedule::Cron { expr: "0 0 2 * * *".into(), timezone: Some("Europe/Berlin".into()) },
//! );
//! scheduler.register(spec, Arc::new(Cleanup)).await?;
//! let handle = scheduler.spawn();
//! // … serve …
//! handle.shutdown().await;
//! # Ok(())
//! # }
//! ```
//!
//! # Replicas and crashes
//! A claimed run is held under a lease ([`SchedulerConfig::lease`], 30 s)
//! that the holding instance's loop renews. If the instance dies, another
//! takes the run over once the lease lapses
//! ([`JobStore::claim_stale_job_runs`](alertkit_core::JobStore::claim_stale_job_runs)),
//! as the next attempt of the same tick; saves are fenced by attempt, so a
//! holder that comes back cannot overwrite the newer run. A run waiting for
//! its retry is held the same way. Pause and resume are stored
//! ([`JobStore::set_job_paused`](alertkit_core::JobStore::set_job_paused)):
//! every instance follows them on its next loop.

mod api;
pub mod builtin;
mod cron;
#[cfg(feature = "axum")]
pub mod http;
pub mod reports;
mod schedule;
mod table;

pub use alertkit_core::scheduler::{
    Job, JobContext, JobInfo, JobRun, JobSpec, MisfirePolicy, Overlap, RunStatus, Schedule,
    Scheduler,
};
pub use builtin::{Builtin, SeriesRetentionJob, register_builtin};
pub use cron::{CronScheduler, CronSchedulerBuilder, SchedulerConfig, SchedulerHandle};
pub use reports::{ReportJob, ReportRetentionJob, Reports};
pub use schedule::Compiled;
