//! Scheduled jobs.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::Result;

/// When a job runs.
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

/// What to do about ticks missed while no instance was running.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MisfirePolicy {
    /// Forget missed ticks; wait for the next one.
    Skip,
    /// Run once now for all the missed ticks, then follow the schedule.
    #[default]
    RunOnce,
}

/// A job's definition.
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
    /// The error, when it failed.
    pub error: Option<String>,
}

/// A job with its live state.
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
