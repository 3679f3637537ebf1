//! Scheduled jobs for alertkit.
//!
//! Today this crate re-exports the [`Scheduler`] trait and its types from
//! `alertkit-core`; the cron/interval scheduler with cross-instance leases,
//! run history and the built-in jobs (rule evaluation, SLA watch, retention,
//! daily summary) is planned.

pub use alertkit_core::scheduler::{
    Job, JobContext, JobInfo, JobRun, JobSpec, MisfirePolicy, RunStatus, Schedule, Scheduler,
};
