//! Scheduled jobs for alertkit.
//!
//! This crate re-exports the [`Scheduler`] trait and its types from
//! `alertkit-core`. It has no scheduler implementation yet: the
//! cron/interval scheduler with cross-instance claims (through the
//! [`JobStore`](alertkit_core::JobStore) role), run history and built-in
//! jobs is not built.

pub use alertkit_core::scheduler::{
    Job, JobContext, JobInfo, JobRun, JobSpec, MisfirePolicy, RunStatus, Schedule, Scheduler,
};
