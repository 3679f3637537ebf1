//! Reports over HTTP: request one, poll its status, download its files.
//! The work is done by the `reports` job (`alertkit::scheduler::reports`):
//! a request is stored as pending, the job is triggered at once on this
//! instance and runs every 30 s on whichever instance claims the tick, and
//! the store's lease makes each report run once across replicas.
//!
//! | route | needs | does |
//! |---|---|---|
//! | `POST /api/reports/trigger` | `reports.create` (`deliveries`: also `alerts.manage`) | `{kind, from, to, filter}` → 202 `{report_id, status: "PENDING", status_url}` |
//! | `GET /api/reports/status?report_id=` | the requester, or `alerts.manage` | the status; when `COMPLETED`, `url` (CSV) and `files` |
//! | `GET /files/reports/{file}` | as the status | `<id>.csv` or `<id>.json`, as an attachment |
//!
//! Requests are limited to 10 a minute per user (429 with `Retry-After`
//! beyond), so one caller cannot fill the queue or the disk.
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `ALERTKIT_REPORT_DIR` | `alertkit-reports` | where the files are written (replicas must share it) |
//! | `ALERTKIT_REPORT_RETENTION_DAYS` | `7` | finished reports and their files are deleted daily at 04:00 (`report_retention`) |

use std::sync::Arc;

use alertkit::scheduler::reports::{FileFormat, ReportJob, ReportRetentionJob, Reports, file_name};
use alertkit::{
    JobSpec, Overlap, Report, ReportRequest, ReportStatus, ReportStore, Schedule, Scheduler,
};
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::Duration;
use serde::Deserialize;
use serde_json::json;

use crate::api::{Caller, error, from_core};
use crate::{env, fail};

/// Report requests a user may make per minute.
const REQUESTS_PER_MINUTE: u32 = 10;

/// What the routes share.
#[derive(Clone)]
pub struct ReportRoutes {
    reports: Reports,
    scheduler: Arc<dyn Scheduler>,
    keep: Duration,
    requests: Option<alertkit::transport::http::UserRateLimit>,
}

impl ReportRoutes {
    /// From the environment (see the module docs); exits 2 on a bad value.
    pub fn from_env(
        store: Arc<dyn ReportStore>,
        kit: alertkit::AlertKit,
        scheduler: Arc<dyn Scheduler>,
    ) -> ReportRoutes {
        let dir = env("ALERTKIT_REPORT_DIR").unwrap_or_else(|| "alertkit-reports".into());
        let days = match env("ALERTKIT_REPORT_RETENTION_DAYS") {
            None => 7,
            Some(v) => match v.parse::<i64>() {
                Ok(n) if (1..=3650).contains(&n) => n,
                _ => fail(
                    "ALERTKIT_REPORT_RETENTION_DAYS",
                    &format!("{v:?}: a number of days from 1 to 3650"),
                ),
            },
        };
        ReportRoutes {
            reports: Reports::new(store, kit, dir),
            scheduler,
            keep: Duration::days(days),
            requests: alertkit::transport::http::UserRateLimit::per_minute(REQUESTS_PER_MINUTE),
        }
    }

    /// Where the files go, for the banner.
    pub fn dir(&self) -> String {
        self.reports.dir().display().to_string()
    }

    /// Registers `reports` (every 30 s) and `report_retention` (daily at
    /// 04:00, in `ALERTKIT_TZ`).
    pub async fn register(&self) -> alertkit::Result<()> {
        let mut spec = JobSpec::new(
            "reports",
            "produce the requested reports",
            Schedule::Interval { every_secs: 30 },
        );
        // A request made during a pass queues another, so it never waits
        // for the next tick.
        spec.overlap = Overlap::Queue;
        spec.timeout_secs = Some(3600);
        self.scheduler
            .register(spec, Arc::new(ReportJob(self.reports.clone())))
            .await?;
        let spec = JobSpec::new(
            "report_retention",
            "delete finished reports and their files past their retention",
            Schedule::Cron {
                expr: "0 0 4 * * *".into(),
                timezone: env("ALERTKIT_TZ"),
            },
        );
        let job = ReportRetentionJob {
            reports: self.reports.clone(),
            keep: self.keep,
        };
        self.scheduler.register(spec, Arc::new(job)).await
    }

    /// The routes (to be wrapped in the authentication layer).
    pub fn routes(&self) -> Router {
        Router::new()
            .route("/api/reports/trigger", post(trigger))
            .route("/api/reports/status", get(status))
            .route("/files/reports/{file}", get(download))
            .with_state(self.clone())
    }
}

fn view(r: &Report) -> serde_json::Value {
    let done = r.status == ReportStatus::Completed;
    let file = |f| done.then(|| format!("/files/reports/{}", file_name(r.id, f)));
    json!({
        "report_id": r.id,
        "kind": r.request.kind,
        "status": r.status,
        "from": r.request.from,
        "to": r.request.to,
        "filter": r.request.filter,
        "attempts": r.attempts,
        "error": r.error,
        "rows": r.rows,
        "created_at": r.created_at,
        "finished_at": r.finished_at,
        "url": file(FileFormat::Csv),
        "files": done.then(|| json!({
            "csv": file(FileFormat::Csv),
            "json": file(FileFormat::Json),
        })),
    })
}

async fn trigger(
    State(s): State<ReportRoutes>,
    Caller(p): Caller,
    body: Result<Json<ReportRequest>, JsonRejection>,
) -> Response {
    if let Some(Err(e)) = s.requests.as_ref().map(|r| r.check(&p.user_id)) {
        return from_core(e);
    }
    let Json(request) = match body {
        Ok(b) => b,
        Err(e) => return error(e.status(), "invalid", e.body_text()),
    };
    let report = match s.reports.trigger(&p, request).await {
        Ok(r) => r,
        Err(e) => return from_core(e),
    };
    // Start now rather than at the next tick; with `Overlap::Queue` this
    // queues behind a pass already running.
    if let Err(e) = s.scheduler.trigger("reports").await {
        tracing::debug!(error = %e, "reports job not triggered; the next tick runs it");
    }
    (
        StatusCode::ACCEPTED,
        Json(json!({
            "report_id": report.id,
            "status": report.status,
            "status_url": format!("/api/reports/status?report_id={}", report.id),
        })),
    )
        .into_response()
}

#[derive(Deserialize)]
struct StatusQuery {
    report_id: uuid::Uuid,
}

async fn status(
    State(s): State<ReportRoutes>,
    Caller(p): Caller,
    q: Result<Query<StatusQuery>, QueryRejection>,
) -> Response {
    let Query(q) = match q {
        Ok(q) => q,
        Err(_) => {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid",
                "report_id must be a report's id (a UUID)",
            );
        }
    };
    match s.reports.status(&p, q.report_id).await {
        Ok(r) => Json(view(&r)).into_response(),
        Err(e) => from_core(e),
    }
}

async fn download(
    State(s): State<ReportRoutes>,
    Caller(p): Caller,
    Path(name): Path<String>,
) -> Response {
    let (path, report, format) = match s.reports.file(&p, &name).await {
        Ok(f) => f,
        Err(e) => return from_core(e),
    };
    let file = match tokio::fs::File::open(&path).await {
        Ok(f) => f,
        Err(e) => {
            return error(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("report file {name}: {e}"),
            );
        }
    };
    let day = report.request.from.format("%Y%m%d");
    let attachment = format!(
        "attachment; filename=\"{}-report-{day}-{}.{}\"",
        report.request.kind.as_str(),
        report.id.simple(),
        format.extension()
    );
    (
        [
            (header::CONTENT_TYPE, format.content_type().to_owned()),
            (header::CONTENT_DISPOSITION, attachment),
            (header::CACHE_CONTROL, "private, no-store".to_owned()),
        ],
        axum::body::Body::from_stream(tokio_util::io::ReaderStream::new(file)),
    )
        .into_response()
}
