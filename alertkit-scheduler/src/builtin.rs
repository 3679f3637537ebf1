//! The built-in jobs every alertkit deployment wants, registered by one
//! call: [`register_builtin`].

use std::sync::Arc;

use alertkit_core::{
    AlertFilter, AlertKit, Audience, Error, Job, JobContext, JobSpec, MisfirePolicy, NewAlert,
    Permission, Principal, Result, RuleEvaluator, RuleKind, Schedule, Scheduler, Severity,
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

/// `series_retention`: deletes stored series points and predictions older
/// than `keep`, in batches of `batch` until none are left
/// ([`SeriesStore::purge_series`](alertkit_core::SeriesStore::purge_series)).
#[derive(Clone)]
pub struct SeriesRetentionJob {
    store: Arc<dyn alertkit_core::SeriesStore>,
    clock: Arc<dyn alertkit_core::Clock>,
    keep: chrono::Duration,
    batch: u32,
}

impl std::fmt::Debug for SeriesRetentionJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SeriesRetentionJob")
            .field("keep", &self.keep)
            .field("batch", &self.batch)
            .finish_non_exhaustive()
    }
}

impl SeriesRetentionJob {
    /// Keeps `keep` of history (batches of 10,000), by `clock`'s time.
    pub fn new(
        store: Arc<dyn alertkit_core::SeriesStore>,
        clock: Arc<dyn alertkit_core::Clock>,
        keep: chrono::Duration,
    ) -> Self {
        SeriesRetentionJob {
            store,
            clock,
            keep,
            batch: 10_000,
        }
    }
}

#[async_trait]
impl Job for SeriesRetentionJob {
    async fn run(&self, ctx: JobContext) -> Result<()> {
        let before = self.clock.now() - self.keep;
        let mut total = 0u64;
        loop {
            let n = self.store.purge_series(before, self.batch).await?;
            total += n;
            if n == 0 {
                break;
            }
            // Let other work in between batches.
            tokio::task::yield_now().await;
        }
        tracing::info!(job = %ctx.job_id, deleted = total, %before, "series retention");
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

/// `daily_summary`: for each configured group, one `daily_summary` alert
/// to the managers counting what the group's members could see in the day
/// before the tick (by severity and type). Nothing for a group with an
/// empty day; one alert per group and day (deduplicated on both).
#[derive(Debug, Clone)]
pub struct DailySummaryJob {
    kit: AlertKit,
    groups: Vec<String>,
    managers: Audience,
}

impl DailySummaryJob {
    /// Summaries of `groups` for `managers`.
    pub fn new(kit: AlertKit, groups: Vec<String>, managers: Audience) -> Self {
        DailySummaryJob {
            kit,
            groups,
            managers,
        }
    }
}

#[async_trait]
impl Job for DailySummaryJob {
    async fn run(&self, ctx: JobContext) -> Result<()> {
        let end = ctx.scheduled_at;
        let start = end - chrono::Duration::days(1);
        let ms = chrono::Duration::milliseconds(1);
        // [start, end): `since` is exclusive, `until` inclusive.
        let filter = AlertFilter {
            since: Some(start - ms),
            until: Some(end - ms),
            include_dismissed: true,
            ..Default::default()
        };
        for group in &self.groups {
            let viewer = Principal::user(format!("daily_summary:{group}"))
                .with_groups([group.clone()])
                .with_permissions([Permission::AlertsRead]);
            let stats = self.kit.stats(&viewer, &filter).await?;
            if stats.total == 0 {
                continue;
            }
            let by_severity: Vec<String> = stats
                .by_severity
                .iter()
                .rev()
                .map(|(sev, n)| format!("{n} {}", sev.as_str()))
                .collect();
            let by_type: Vec<String> = stats
                .by_type
                .iter()
                .map(|(t, n)| format!("{t}: {n}"))
                .collect();
            let day = start.format("%Y-%m-%d");
            let alert = NewAlert::new(
                "daily_summary",
                Severity::Info,
                format!(
                    "Daily summary for {group}, {day}: {} alerts ({})",
                    stats.total,
                    by_severity.join(", ")
                ),
            )
            .message(by_type.join("\n"))
            .tags([group.clone()])
            .audience(self.managers.clone())
            .dedup_key(format!("daily_summary:{group}:{day}"));
            self.kit
                .raise(&Principal::admin("scheduler"), alert)
                .await?;
        }
        Ok(())
    }
}

/// What [`register_builtin`] registers besides `retention`.
#[derive(Debug, Clone, Default)]
pub struct Builtin {
    /// IANA time zone of the daily jobs' times; UTC when `None`.
    pub timezone: Option<String>,
    /// Evaluates the rules: adds `rules` and `sla_watch`.
    pub evaluator: Option<Arc<RuleEvaluator>>,
    /// Groups to summarise daily: adds `daily_summary` when not empty.
    pub summary_groups: Vec<String>,
    /// Who gets the daily summaries (default `group:managers`).
    pub managers: Option<Audience>,
    /// How often `rules` evaluates the threshold rules, in seconds
    /// (default 60).
    pub rules_every_secs: Option<u64>,
}

/// Registers the built-in jobs on `scheduler`:
///
/// | id | schedule | protected |
/// |---|---|---|
/// | `retention` | 02:00 daily, misfire: run once | yes |
/// | `rules` | every minute (`rules_every_secs`): threshold rules (with an evaluator) | yes |
/// | `sla_watch` | every 5 minutes: SLA rules (with an evaluator) | no |
/// | `daily_summary` | 00:00 daily: the day before, per group (with groups) | no |
///
/// Daily times are in `options.timezone`.
pub async fn register_builtin(
    scheduler: &dyn Scheduler,
    kit: &AlertKit,
    options: Builtin,
) -> Result<()> {
    let timezone = options.timezone.as_deref();
    if !options.summary_groups.is_empty() {
        let mut summary = JobSpec::new(
            "daily_summary",
            "Summarise each group's previous day for the managers",
            Schedule::Cron {
                expr: "0 0 0 * * *".into(),
                timezone: timezone.map(str::to_owned),
            },
        );
        summary.misfire = MisfirePolicy::RunOnce;
        let managers = options
            .managers
            .clone()
            .unwrap_or_else(|| Audience::group("managers"));
        scheduler
            .register(
                summary,
                Arc::new(DailySummaryJob::new(
                    kit.clone(),
                    options.summary_groups.clone(),
                    managers,
                )),
            )
            .await?;
    }
    let evaluator = options.evaluator;
    if let Some(evaluator) = evaluator {
        let mut rules = JobSpec::new(
            "rules",
            "Evaluate the threshold rules",
            Schedule::Interval {
                every_secs: options.rules_every_secs.unwrap_or(60),
            },
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

#[cfg(test)]
mod series_tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use alertkit_core::{ManualClock, Point, SeriesStore};
    use alertkit_storage::MemoryAlertStore;

    #[tokio::test]
    async fn series_retention_deletes_only_what_is_older_than_kept() {
        let store = Arc::new(MemoryAlertStore::new());
        let now = chrono::DateTime::<chrono::Utc>::from_timestamp(1_795_514_400, 0).unwrap();
        let clock = Arc::new(ManualClock::new(now));
        let points: Vec<Point> = (0..25_000)
            .map(|i| Point {
                series: "cpu".into(),
                at: now - chrono::Duration::minutes(i),
                value: 1.0,
            })
            .collect();
        store.put_points(&points).await.unwrap();
        let job = SeriesRetentionJob::new(store.clone(), clock, chrono::Duration::days(7));
        job.run(JobContext {
            job_id: "series_retention".into(),
            scheduled_at: now,
        })
        .await
        .unwrap();
        let left = store
            .points(
                "cpu",
                now - chrono::Duration::days(365),
                now + chrono::Duration::days(1),
                100_000,
            )
            .await
            .unwrap();
        // 7 days of minutes, the instant 7 days back included.
        assert_eq!(left.len(), 7 * 24 * 60 + 1);
        assert!(left.iter().all(|p| p.at >= now - chrono::Duration::days(7)));
    }
}
