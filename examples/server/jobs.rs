//! The server's scheduler: the built-in jobs on the store's job table (so
//! replicas sharing the store run each tick once), its REST routes and
//! their OpenAPI document.
//!
//! | variable | effect |
//! |---|---|
//! | `ALERTKIT_TZ` | IANA time zone of the built-in jobs' times (default UTC) |
//! | `ALERTKIT_ADMIN_GROUP` | who gets `job_failed` alerts (default `admins`) |
//! | `ALERTKIT_SUMMARY_GROUPS` | groups summarised each midnight (`planners,support`); none by default |
//! | `ALERTKIT_MANAGER_GROUP` | who gets the daily summaries (default `managers`) |
//! | `ALERTKIT_RULES_EVERY_SECS` | how often the threshold rules are evaluated (default 60) |

use std::sync::Arc;

use alertkit::scheduler::{Builtin, CronScheduler, SchedulerHandle, register_builtin};
use alertkit::{AlertKit, Audience, Authenticator, MetricSource, RuleEvaluator, Scheduler};

use crate::{env, fail};

/// The running scheduler and the routes serving it.
pub struct Jobs {
    pub handle: SchedulerHandle,
    pub routes: axum::Router,
    /// The scheduler, for jobs registered elsewhere (the forecast).
    pub scheduler: Arc<dyn Scheduler>,
    /// The registered job ids, for the start-up banner.
    pub summary: String,
    /// The `scheduler` component of `/health`.
    pub health: Arc<dyn alertkit::HealthCheck>,
}

/// Builds the scheduler, registers the built-in jobs and starts it.
pub async fn start(
    kit: &AlertKit,
    auth: Arc<dyn Authenticator>,
    metrics: Arc<dyn MetricSource>,
) -> Jobs {
    let group = env("ALERTKIT_ADMIN_GROUP").unwrap_or_else(|| "admins".into());
    let scheduler = CronScheduler::builder(kit.job_store())
        .clock(kit.clock().clone())
        .failure_alerts(kit.clone(), Audience::group(group))
        .build();
    let tz = env("ALERTKIT_TZ");
    // Threshold rules read the uploaded series (`forecast/metrics.rs`); the
    // reference server has no deadline source, so SLA rules report that.
    let evaluator = Arc::new(RuleEvaluator::new(kit.clone()).metrics(metrics));
    let summary_groups = env("ALERTKIT_SUMMARY_GROUPS")
        .map(|g| {
            g.split(',')
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default();
    let options = Builtin {
        timezone: tz,
        evaluator: Some(evaluator),
        summary_groups,
        managers: Some(Audience::group(
            env("ALERTKIT_MANAGER_GROUP").unwrap_or_else(|| "managers".into()),
        )),
        rules_every_secs: env("ALERTKIT_RULES_EVERY_SECS").map(|v| {
            v.parse().ok().filter(|&s| s >= 1).unwrap_or_else(|| {
                fail(
                    "ALERTKIT_RULES_EVERY_SECS",
                    "must be a whole number of seconds, at least 1",
                )
            })
        }),
    };
    register_builtin(&scheduler, kit, options)
        .await
        .unwrap_or_else(|e| fail("ALERTKIT_TZ", &e.to_string()));
    let ids: Vec<String> = scheduler
        .list()
        .await
        .map(|jobs| jobs.into_iter().map(|j| j.spec.id).collect())
        .unwrap_or_default();
    let summary = ids.join(", ");
    let handle = scheduler.spawn();
    let shared: Arc<dyn Scheduler> = Arc::new(scheduler.clone());
    let routes = alertkit::transport::http::authenticated(
        alertkit::scheduler::http::router(shared.clone()),
        auth,
    );
    Jobs {
        handle,
        routes,
        scheduler: shared,
        summary,
        health: Arc::new(scheduler),
    }
}
