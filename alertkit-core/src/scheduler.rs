//! Scheduled jobs.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::Result;

/// When a job runs.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Schedule {
    /// A cron expression with seconds (`0 0 */2 * * *`) in a time zone.
    Cron {
        /// The expression.
        expr: String,
        /// IANA time zone name; UTC when absent.
        #[serde(default)]
        timezone: Option<String>,
    },
    /// Every so many seconds.
    Interval {
        /// The period, in seconds.
        every_secs: u64,
    },
}

/// What to do about ticks missed while no instance was running: ticks late
/// by more than the scheduler's grace (default 60 s) when it sees them.
/// Ticks within the grace always run, each once.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MisfirePolicy {
    /// Forget missed ticks; wait for the next one.
    Skip,
    /// Run once now for all the missed ticks (as the latest of them, unless a
    /// tick within the grace runs anyway), then follow the schedule.
    #[default]
    RunOnce,
    /// Run every missed tick, oldest first (bounded by the scheduler's
    /// catch-up limit, default 100).
    CatchUp,
}

/// What to do with a tick that comes while the job's previous run is still
/// going.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Overlap {
    /// Skip the tick (and refuse a manual trigger with `Conflict`).
    #[default]
    Skip,
    /// Run it when the previous run ends.
    Queue,
}

fn default_retry_delays() -> Vec<u64> {
    vec![60, 300, 900]
}

/// A job's definition.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobSpec {
    /// Stable id (`forecast`, `retention`, …).
    pub id: String,
    /// What it does, for people.
    pub description: String,
    /// When it runs.
    pub schedule: Schedule,
    /// Protected jobs cannot be paused or removed through the API.
    #[serde(default)]
    pub protected: bool,
    /// What to do about missed ticks.
    #[serde(default)]
    pub misfire: MisfirePolicy,
    /// What to do with a tick while the previous run goes on.
    #[serde(default)]
    pub overlap: Overlap,
    /// A run taking longer is cut off and counts as failed.
    #[serde(default)]
    pub timeout_secs: Option<u64>,
    /// The waits before each retry of a failed run, in seconds (default 60,
    /// 300, 900: four attempts in all); empty for no retries.
    #[serde(default = "default_retry_delays")]
    pub retry_delays_secs: Vec<u64>,
    /// Each run starts up to this many seconds after its tick, at random,
    /// so that many jobs on one schedule do not all hit a backend in the
    /// same instant (default 0: at the tick).
    #[serde(default)]
    pub jitter_secs: u64,
}

impl JobSpec {
    /// A job running on `schedule`, with the default policies: misfires run
    /// once, overlapping ticks are skipped, no timeout, retries after 1, 5
    /// and 15 minutes.
    pub fn new(id: impl Into<String>, description: impl Into<String>, schedule: Schedule) -> Self {
        JobSpec {
            id: id.into(),
            description: description.into(),
            schedule,
            protected: false,
            misfire: MisfirePolicy::default(),
            overlap: Overlap::default(),
            timeout_secs: None,
            retry_delays_secs: default_retry_delays(),
            jitter_secs: 0,
        }
    }

    /// Checks the id (1 to 100 characters of letters, digits, `_`, `-`,
    /// `.`, `:`), the timeout and the retries (at most 10).
    pub fn validate(&self) -> Result<()> {
        let id_ok = !self.id.is_empty()
            && self.id.len() <= 100
            && self
                .id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_-.:".contains(c));
        if !id_ok {
            return Err(crate::Error::invalid(format!(
                "job id `{}` must be 1 to 100 letters, digits, `_`, `-`, `.` or `:`",
                crate::id::truncate(&self.id, 100)
            )));
        }
        if self.timeout_secs == Some(0) {
            return Err(crate::Error::invalid("a job timeout must be at least 1 s"));
        }
        if self.retry_delays_secs.len() > 10 {
            return Err(crate::Error::invalid("a job retries at most 10 times"));
        }
        if self.jitter_secs > 3600 {
            return Err(crate::Error::invalid("a job's jitter is at most 3600 s"));
        }
        Ok(())
    }
}

/// What a job run is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobContext {
    /// The job.
    pub job_id: String,
    /// The tick this run is for (the trigger time for manual runs).
    pub scheduled_at: DateTime<Utc>,
}

/// The work a job does.
#[async_trait]
pub trait Job: Send + Sync + 'static {
    /// Runs once.
    async fn run(&self, ctx: JobContext) -> Result<()>;
}

/// Where a run is.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    /// Claimed, not started.
    Pending,
    /// Started.
    Running,
    /// Finished without error.
    Succeeded,
    /// Finished with an error.
    Failed,
}

impl RunStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Pending => "pending",
            RunStatus::Running => "running",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
        }
    }
}

impl std::str::FromStr for RunStatus {
    type Err = crate::Error;

    fn from_str(s: &str) -> crate::Result<Self> {
        match s {
            "pending" => Ok(RunStatus::Pending),
            "running" => Ok(RunStatus::Running),
            "succeeded" => Ok(RunStatus::Succeeded),
            "failed" => Ok(RunStatus::Failed),
            _ => Err(crate::Error::invalid(format!("unknown run status `{s}`"))),
        }
    }
}

/// One run of a job.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobRun {
    /// The run's id.
    pub id: Uuid,
    /// The job.
    pub job_id: String,
    /// The tick it is for.
    pub scheduled_at: DateTime<Utc>,
    /// When it started.
    pub started_at: Option<DateTime<Utc>>,
    /// When it finished.
    pub finished_at: Option<DateTime<Utc>>,
    /// Where it is.
    pub status: RunStatus,
    /// The error, when it failed (or, while pending a retry, the last error).
    pub error: Option<String>,
    /// Which attempt of the tick this is, from 1.
    #[serde(default = "first")]
    pub attempt: u32,
    /// While pending or running: until when the instance holding it has
    /// it; it renews the lease while it works, and once it lapses another
    /// instance takes the run over
    /// ([`JobStore::claim_stale_job_runs`](crate::JobStore::claim_stale_job_runs)).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_until: Option<DateTime<Utc>>,
}

fn first() -> u32 {
    1
}

impl JobRun {
    /// How long it ran, once finished.
    pub fn duration(&self) -> Option<chrono::Duration> {
        Some(self.finished_at? - self.started_at?)
    }
}

/// A job with its live state.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobInfo {
    /// The definition.
    #[serde(flatten)]
    pub spec: JobSpec,
    /// Whether it is paused.
    pub paused: bool,
    /// When it runs next (none while paused).
    pub next_run: Option<DateTime<Utc>>,
    /// The latest run.
    pub last_run: Option<JobRun>,
    /// Whether a run is in progress in this instance.
    #[serde(default)]
    pub running: bool,
}

/// Runs jobs on schedules, once per tick across all instances.
#[async_trait]
pub trait Scheduler: Send + Sync + 'static {
    /// Registers (or replaces) a job.
    async fn register(&self, spec: JobSpec, job: Arc<dyn Job>) -> Result<()>;
    /// Every job.
    async fn list(&self) -> Result<Vec<JobInfo>>;
    /// One job.
    async fn get(&self, id: &str) -> Result<JobInfo>;
    /// Pauses a job; [`Forbidden`](crate::Error::Forbidden) if it is protected.
    async fn pause(&self, id: &str) -> Result<()>;
    /// Resumes a paused job.
    async fn resume(&self, id: &str) -> Result<()>;
    /// Runs a job now, off schedule; returns the run.
    async fn trigger(&self, id: &str) -> Result<JobRun>;
    /// Removes a job; `Forbidden` if it is protected.
    async fn remove(&self, id: &str) -> Result<()>;
    /// The latest runs of a job, newest first.
    async fn runs(&self, id: &str, limit: u32) -> Result<Vec<JobRun>>;
}
