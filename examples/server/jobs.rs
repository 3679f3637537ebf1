//! The server's scheduler: the built-in jobs on the store's job table (so
//! replicas sharing the store run each tick once), its REST routes and
//! their OpenAPI document.
//!
//! | variable | effect |
//! |---|---|
//! | `ALERTKIT_TZ` | IANA time zone of the built-in jobs' times (default UTC) |
//! | `ALERTKIT_ADMIN_GROUP` | who gets `job_failed` alerts (default `admins`) |

use std::sync::Arc;

use alertkit::scheduler::{CronScheduler, SchedulerHandle, register_builtin};
use alertkit::{AlertKit, Audience, Authenticator, RuleEvaluator, Scheduler};

use crate::{env, fail};

/// The running scheduler and the routes serving it.
pub struct Jobs {
    pub handle: SchedulerHandle,
    pub routes: axum::Router,
}

/// Builds the scheduler, registers the built-in jobs and starts it.
pub async fn start(kit: &AlertKit, auth: Arc<dyn Authenticator>) -> Jobs {
    let group = env("ALERTKIT_ADMIN_GROUP").unwrap_or_else(|| "admins".into());
    let scheduler = CronScheduler::builder(kit.job_store())
        .clock(kit.clock().clone())
        .failure_alerts(kit.clone(), Audience::group(group))
        .build();
    let tz = env("ALERTKIT_TZ");
    // Rules are evaluated against the sources an application plugs in; the
    // reference server has none yet, so threshold and SLA rules report that.
    let evaluator = Arc::new(RuleEvaluator::new(kit.clone()));
    register_builtin(&scheduler, kit, tz.as_deref(), Some(evaluator))
        .await
        .unwrap_or_else(|e| fail("ALERTKIT_TZ", &e.to_string()));
    let handle = scheduler.spawn();
    let shared: Arc<dyn Scheduler> = Arc::new(scheduler);
    let routes =
        alertkit::transport::http::authenticated(alertkit::scheduler::http::router(shared), auth);
    Jobs { handle, routes }
}
