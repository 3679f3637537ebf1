//! The built-in jobs every alertkit deployment wants, registered by one
//! call: [`register_builtin`].

use std::sync::Arc;

use alertkit_core::{
    AlertKit, Error, Job, JobContext, JobSpec, MisfirePolicy, Principal, Result, RuleEvaluator,
    RuleKind, Schedule, Scheduler,
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

/// `rules` and `sla_watch`: one evaluation of the enabled rules of a kind
/// ([`RuleEvaluator::evaluate`]). A run fails, naming them, when rules
/// could not be evaluated; the others were.
#[derive(Debug, Clone)]
pub struct EvaluateJob {
    evaluator: Arc<RuleEvaluator>,
    kind: RuleKind,
}

impl EvaluateJob {
    /// The job evaluating the rules of `kind`.
    pub fn new(evaluator: Arc<RuleEvaluator>, kind: RuleKind) -> Self {
        EvaluateJob { evaluator, kind }
    }
}

#[async_trait]
impl Job for EvaluateJob {
    async fn run(&self, ctx: JobContext) -> Result<()> {
        let e = self.evaluator.evaluate(self.kind).await?;
        tracing::info!(job = %ctx.job_id, rules = e.rules, raised = e.raised, resolved = e.resolved, "rules evaluated");
        if e.errors.is_empty() {
            Ok(())
        } else {
            Err(Error::invalid(e.errors.join("; ")))
        }
    }
}

/// Registers the built-in jobs on `scheduler`, in `timezone` (an IANA
/// name; UTC when `None`):
///
/// | id | schedule | protected |
/// |---|---|---|
/// | `retention` | 02:00 daily, misfire: run once | yes |
/// | `rules` | every minute: threshold rules (with `evaluator`) | yes |
/// | `sla_watch` | every 5 minutes: SLA rules (with `evaluator`) | no |
///
/// The daily summary joins this list when it is built.
pub async fn register_builtin(
    scheduler: &dyn Scheduler,
    kit: &AlertKit,
    timezone: Option<&str>,
    evaluator: Option<Arc<RuleEvaluator>>,
) -> Result<()> {
    if let Some(evaluator) = evaluator {
        let mut rules = JobSpec::new(
            "rules",
            "Evaluate the threshold rules",
            Schedule::Interval { every_secs: 60 },
        );
        rules.protected = true;
        rules.misfire = MisfirePolicy::Skip;
        rules.retry_delays_secs = vec![];
        scheduler
            .register(
                rules,
                Arc::new(EvaluateJob::new(evaluator.clone(), RuleKind::Threshold)),
            )
            .await?;
        let mut sla = JobSpec::new(
            "sla_watch",
            "Evaluate the SLA rules",
            Schedule::Interval { every_secs: 300 },
        );
        sla.misfire = MisfirePolicy::Skip;
        sla.retry_delays_secs = vec![];
        scheduler
            .register(sla, Arc::new(EvaluateJob::new(evaluator, RuleKind::Sla)))
            .await?;
    }
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
