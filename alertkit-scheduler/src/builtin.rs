//! The built-in jobs every alertkit deployment wants, registered by one
//! call: [`register_builtin`].

use std::sync::Arc;

use alertkit_core::{
    AlertKit, Job, JobContext, JobSpec, MisfirePolicy, Principal, Result, Schedule, Scheduler,
};
use async_trait::async_trait;

/// `retention`: deletes expired alerts and alerts past the engine's
/// retention, with their receipts and deliveries, in bounded batches
/// ([`AlertKit::purge_expired`]).
#[derive(Debug, Clone)]
pub struct RetentionJob {
    kit: AlertKit,
}

impl RetentionJob {
    /// The job for `kit`.
    pub fn new(kit: AlertKit) -> Self {
        RetentionJob { kit }
    }
}

#[async_trait]
impl Job for RetentionJob {
    async fn run(&self, ctx: JobContext) -> Result<()> {
        let n = self
            .kit
            .purge_expired(&Principal::admin("scheduler"))
            .await?;
        tracing::info!(job = %ctx.job_id, deleted = n, "retention cleanup");
        Ok(())
    }
}

/// Registers the built-in jobs on `scheduler`, in `timezone` (an IANA
/// name; UTC when `None`):
///
/// | id | schedule | protected |
/// |---|---|---|
/// | `retention` | 02:00 daily, misfire: run once | yes |
///
/// Rule evaluation, the SLA watch and the daily summary join this list as
/// they are built.
pub async fn register_builtin(
    scheduler: &dyn Scheduler,
    kit: &AlertKit,
    timezone: Option<&str>,
) -> Result<()> {
    let mut retention = JobSpec::new(
        "retention",
        "Delete expired alerts and alerts past retention, with their deliveries",
        Schedule::Cron {
            expr: "0 0 2 * * *".into(),
            timezone: timezone.map(str::to_owned),
        },
    );
    retention.protected = true;
    retention.misfire = MisfirePolicy::RunOnce;
    scheduler
        .register(retention, Arc::new(RetentionJob::new(kit.clone())))
        .await
}
