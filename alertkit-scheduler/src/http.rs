//! The scheduler's REST routes (feature `axum`), under `/api/scheduler`.
//!
//! | method | path | permission | answer |
//! |---|---|---|---|
//! | GET | `/api/scheduler/status` | `scheduler.manage` or `alerts.manage` | job counts: total, paused, running, failing |
//! | GET | `/api/scheduler/jobs` | same | every job with schedule, next run, last run, paused |
//! | GET | `/api/scheduler/jobs/{id}` | same | one job; 404 if unknown |
//! | GET | `/api/scheduler/jobs/{id}/runs?limit=` | same | its latest runs (default 20, at most 1000), newest first |
//! | POST | `/api/scheduler/jobs/{id}/pause` | `scheduler.manage` | 204; 403 for a protected job |
//! | POST | `/api/scheduler/jobs/{id}/resume` | `scheduler.manage` | 204 |
//! | POST | `/api/scheduler/jobs/{id}/run` | `scheduler.manage` | 202 with the run; 409 while it runs and overlap is refused |
//!
//! The routes read the caller from the request's extensions: a
//! [`Principal`] the host's authentication layer put there (alertkit's
//! transport does, with `alertkit_transport::http::authenticated`). Without
//! one they answer 401. Errors are `{"error": {"code", "message"}}`.

use std::sync::Arc;

use alertkit_core::{Error, ErrorKind, JobInfo, JobRun, Permission, Principal, Scheduler};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// The routes, with the scheduler as their state (merge them into your app
/// behind an authentication layer).
pub fn router(scheduler: Arc<dyn Scheduler>) -> Router {
    Router::new()
        .route("/api/scheduler/status", get(status))
        .route("/api/scheduler/jobs", get(list))
        .route("/api/scheduler/jobs/{id}", get(get_one))
        .route("/api/scheduler/jobs/{id}/runs", get(runs))
        .route("/api/scheduler/jobs/{id}/pause", post(pause))
        .route("/api/scheduler/jobs/{id}/resume", post(resume))
        .route("/api/scheduler/jobs/{id}/run", post(run_now))
        .with_state(scheduler)
}

/// An error as the wire shows it.
struct ApiError(Error);

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        ApiError(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = match self.0.kind() {
            ErrorKind::Invalid => (StatusCode::UNPROCESSABLE_ENTITY, "invalid"),
            ErrorKind::NotFound => (StatusCode::NOT_FOUND, "not_found"),
            ErrorKind::Forbidden => (StatusCode::FORBIDDEN, "forbidden"),
            ErrorKind::Unauthenticated => (StatusCode::UNAUTHORIZED, "unauthenticated"),
            ErrorKind::Conflict => (StatusCode::CONFLICT, "conflict"),
            ErrorKind::RateLimited => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            _ => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
        };
        let body = json!({ "error": { "code": code, "message": self.0.to_string() } });
        (status, Json(body)).into_response()
    }
}

type ApiResult<T> = Result<T, ApiError>;

/// The caller, from the authentication layer.
fn caller(p: Option<Extension<Principal>>) -> ApiResult<Principal> {
    p.map(|Extension(p)| p).ok_or_else(|| {
        ApiError(Error::Unauthenticated(
            "send a bearer token in the Authorization header".into(),
        ))
    })
}

/// Reading needs `scheduler.manage` or `alerts.manage`.
fn reader(p: Option<Extension<Principal>>) -> ApiResult<Principal> {
    let p = caller(p)?;
    if p.can(Permission::SchedulerManage) || p.can(Permission::AlertsManage) {
        Ok(p)
    } else {
        Err(ApiError(Error::forbidden(
            "reading the scheduler needs scheduler.manage or alerts.manage",
        )))
    }
}

/// Changing needs `scheduler.manage`.
fn manager(p: Option<Extension<Principal>>) -> ApiResult<Principal> {
    let p = caller(p)?;
    p.require(Permission::SchedulerManage)?;
    Ok(p)
}

/// Job counts.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchedulerStatus {
    /// Registered jobs.
    pub jobs: usize,
    /// Paused jobs.
    pub paused: usize,
    /// Jobs with a run in progress on this instance.
    pub running: usize,
    /// Jobs whose latest run failed, by id.
    pub failing: Vec<String>,
}

/// Most runs one `GET /api/scheduler/jobs/{id}/runs` returns.
pub const MAX_RUNS: u32 = 1000;

/// `?limit=` of the runs route.
#[derive(Debug, Deserialize)]
pub struct RunsQuery {
    /// How many runs (default 20, at most 1000).
    pub limit: Option<u32>,
}

#[utoipa::path(
    get, path = "/api/scheduler/status", tag = "scheduler",
    responses((status = 200, description = "Job counts", body = SchedulerStatus), (status = 401, description = "No token"), (status = 403, description = "Not permitted"))
)]
async fn status(
    State(s): State<Arc<dyn Scheduler>>,
    p: Option<Extension<Principal>>,
) -> ApiResult<Json<SchedulerStatus>> {
    reader(p)?;
    let jobs = s.list().await?;
    Ok(Json(SchedulerStatus {
        jobs: jobs.len(),
        paused: jobs.iter().filter(|j| j.paused).count(),
        running: jobs.iter().filter(|j| j.running).count(),
        failing: jobs
            .iter()
            .filter(|j| {
                j.last_run
                    .as_ref()
                    .is_some_and(|r| r.status == alertkit_core::RunStatus::Failed)
            })
            .map(|j| j.spec.id.clone())
            .collect(),
    }))
}

#[utoipa::path(
    get, path = "/api/scheduler/jobs", tag = "scheduler",
    responses((status = 200, description = "Every job", body = Vec<JobInfo>), (status = 401, description = "No token"), (status = 403, description = "Not permitted"))
)]
async fn list(
    State(s): State<Arc<dyn Scheduler>>,
    p: Option<Extension<Principal>>,
) -> ApiResult<Json<Vec<JobInfo>>> {
    reader(p)?;
    Ok(Json(s.list().await?))
}

#[utoipa::path(
    get, path = "/api/scheduler/jobs/{id}", tag = "scheduler", params(("id" = String, Path, description = "Job id")),
    responses((status = 200, description = "The job", body = JobInfo), (status = 401, description = "No token"), (status = 403, description = "Not permitted"), (status = 404, description = "No such job"))
)]
async fn get_one(
    State(s): State<Arc<dyn Scheduler>>,
    p: Option<Extension<Principal>>,
    Path(id): Path<String>,
) -> ApiResult<Json<JobInfo>> {
    reader(p)?;
    Ok(Json(s.get(&id).await?))
}

#[utoipa::path(
    get, path = "/api/scheduler/jobs/{id}/runs", tag = "scheduler",
    params(("id" = String, Path, description = "Job id"), ("limit" = Option<u32>, Query, description = "How many (default 20, at most 1000)", minimum = 1, maximum = 1000)),
    responses((status = 200, description = "Latest runs, newest first", body = Vec<JobRun>), (status = 400, description = "`limit` is not a number"), (status = 401, description = "No token"), (status = 403, description = "Not permitted"), (status = 404, description = "No such job"), (status = 422, description = "`limit` out of range"))
)]
async fn runs(
    State(s): State<Arc<dyn Scheduler>>,
    p: Option<Extension<Principal>>,
    Path(id): Path<String>,
    Query(q): Query<RunsQuery>,
) -> ApiResult<Json<Vec<JobRun>>> {
    reader(p)?;
    let limit = q.limit.unwrap_or(20);
    if !(1..=MAX_RUNS).contains(&limit) {
        return Err(ApiError(Error::invalid(format!(
            "limit must be between 1 and {MAX_RUNS}, got {limit}"
        ))));
    }
    Ok(Json(s.runs(&id, limit).await?))
}

#[utoipa::path(
    post, path = "/api/scheduler/jobs/{id}/pause", tag = "scheduler", params(("id" = String, Path, description = "Job id")),
    responses((status = 204, description = "Paused"), (status = 401, description = "No token"), (status = 403, description = "Not permitted, or the job is protected"), (status = 404, description = "No such job"))
)]
async fn pause(
    State(s): State<Arc<dyn Scheduler>>,
    p: Option<Extension<Principal>>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    manager(p)?;
    s.pause(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    post, path = "/api/scheduler/jobs/{id}/resume", tag = "scheduler", params(("id" = String, Path, description = "Job id")),
    responses((status = 204, description = "Resumed"), (status = 401, description = "No token"), (status = 403, description = "Not permitted"), (status = 404, description = "No such job"))
)]
async fn resume(
    State(s): State<Arc<dyn Scheduler>>,
    p: Option<Extension<Principal>>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    manager(p)?;
    s.resume(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    post, path = "/api/scheduler/jobs/{id}/run", tag = "scheduler", params(("id" = String, Path, description = "Job id")),
    responses((status = 202, description = "Started", body = JobRun), (status = 401, description = "No token"), (status = 403, description = "Not permitted"), (status = 404, description = "No such job"), (status = 409, description = "Already running"))
)]
async fn run_now(
    State(s): State<Arc<dyn Scheduler>>,
    p: Option<Extension<Principal>>,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, Json<JobRun>)> {
    manager(p)?;
    Ok((StatusCode::ACCEPTED, Json(s.trigger(&id).await?)))
}

/// The OpenAPI description of these routes; merge it into your app's
/// document (the reference server does).
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(status, list, get_one, runs, pause, resume, run_now),
    components(schemas(SchedulerStatus, JobInfo, JobRun)),
    tags((name = "scheduler", description = "Jobs: list, history, pause, resume, run now"))
)]
pub struct SchedulerApi;

/// [`SchedulerApi`]'s document, ready to merge (no `utoipa` import needed).
pub fn openapi() -> utoipa::openapi::OpenApi {
    <SchedulerApi as utoipa::OpenApi>::openapi()
}
