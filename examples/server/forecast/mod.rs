//! The forecast pipeline: actuals uploaded as CSV into the store's series
//! tables, a job every two hours that fits each series and stores its
//! predictions, `capacity_warning` alerts when a forecast nears a series'
//! capacity, and the history of actual against predicted. Clients holding
//! `forecast.read` get `forecast` WebSocket frames: `{type: "forecast",
//! data: {kind: "predictions", series, made_at, points}}` after each fit and
//! `{kind: "actuals", series: {name: rows}, from, to}` after each upload.
//!
//! | route | needs | does |
//! |---|---|---|
//! | `POST /api/forecast/upload` | `forecast.manage` | CSV `timestamp,series,value` (`content-type: text/csv`) or, built with the `parquet` feature, Parquet with those columns (`application/vnd.apache.parquet`), up to `ALERTKIT_UPLOAD_MAX_MB` |
//! | `GET /api/forecast/series` | `forecast.read` | every series: capacity, unit, newest point, last forecast outcome |
//! | `PUT /api/forecast/series/{name}` | `forecast.manage` | `{capacity, unit}` |
//! | `GET /api/forecast/history?series=&range=1h\|6h\|24h\|7d` | `forecast.read` | actual and predicted points with intervals |
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `ALERTKIT_UPLOAD_MAX_MB` | `64` | largest upload, in MiB |
//! | `ALERTKIT_FORECAST_WINDOW_DAYS` | `14` | history each fit uses |
//! | `ALERTKIT_FORECAST_HORIZON_HOURS` | `24` | how far ahead |
//! | `ALERTKIT_CAPACITY_SHARE` | `0.9` | share of capacity that raises a warning |
//! | `ALERTKIT_CAPACITY_BOUND` | `point` | `upper` compares the interval's upper bound |
//! | `ALERTKIT_FORECAST_GROUP` | `planners` | who gets the warnings |
//! | `ALERTKIT_SERIES_RETENTION_DAYS` | `90` | points and predictions older than this are deleted daily at 03:30 (`series_retention`) |

pub mod demo;
pub mod job;
pub mod metrics;
pub mod model;
#[cfg(feature = "parquet")]
pub mod parquet;
pub mod upload;

use std::sync::Arc;

use alertkit::{JobSpec, Permission, Principal, Schedule, Scheduler, SeriesSettings, SeriesStore};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Extension, Json, Router};
use chrono::Duration;
use serde::Deserialize;
use serde_json::json;

use crate::api::{denied, error, from_core};
use crate::{env, fail};
use job::{Outcomes, Settings};

/// What the routes share.
#[derive(Clone)]
pub struct Forecast {
    pub kit: alertkit::AlertKit,
    pub series: Arc<dyn SeriesStore>,
    pub outcomes: Outcomes,
    pub settings: Settings,
    /// Largest upload, in bytes.
    pub upload_max: u64,
    /// How long points and predictions are kept.
    pub retention: Duration,
}

fn number<T: std::str::FromStr>(var: &str, default: T, ok: impl Fn(&T) -> bool) -> T {
    match env(var) {
        None => default,
        Some(v) => match v.parse::<T>() {
            Ok(n) if ok(&n) => n,
            _ => fail(var, &format!("{v:?} is not an allowed value")),
        },
    }
}

impl Forecast {
    /// From the environment (see the module docs); exits 2 on a bad value.
    pub fn from_env(kit: alertkit::AlertKit, series: Arc<dyn SeriesStore>) -> Forecast {
        let upload_mb: u64 = number("ALERTKIT_UPLOAD_MAX_MB", 64, |n| (1..=4096).contains(n));
        let settings = Settings {
            window: Duration::days(number("ALERTKIT_FORECAST_WINDOW_DAYS", 14, |n: &i64| {
                (1..=365).contains(n)
            })),
            horizon: Duration::hours(number("ALERTKIT_FORECAST_HORIZON_HOURS", 24, |n: &i64| {
                (1..=24 * 30).contains(n)
            })),
            share: number("ALERTKIT_CAPACITY_SHARE", 0.9, |n: &f64| {
                *n > 0.0 && *n <= 2.0
            }),
            use_upper: match env("ALERTKIT_CAPACITY_BOUND").as_deref() {
                None | Some("point") => false,
                Some("upper") => true,
                Some(other) => fail(
                    "ALERTKIT_CAPACITY_BOUND",
                    &format!("{other:?}: use point or upper"),
                ),
            },
            audience: alertkit::Audience::group(
                env("ALERTKIT_FORECAST_GROUP").unwrap_or_else(|| "planners".into()),
            ),
        };
        Forecast {
            kit,
            series,
            outcomes: Default::default(),
            settings,
            upload_max: upload_mb * 1024 * 1024,
            retention: Duration::days(number("ALERTKIT_SERIES_RETENTION_DAYS", 90, |n: &i64| {
                (1..=36_500).contains(n)
            })),
        }
    }

    /// Registers `forecast` (every 2 hours) and `series_retention` (daily
    /// at 03:30), in `ALERTKIT_TZ`.
    pub async fn register(&self, scheduler: &dyn Scheduler) -> alertkit::Result<()> {
        let cron = |expr: &str| Schedule::Cron {
            expr: expr.into(),
            timezone: env("ALERTKIT_TZ"),
        };
        let mut spec = JobSpec::new(
            "forecast",
            "fit each series, store its predictions, warn near capacity",
            cron("0 0 */2 * * *"),
        );
        spec.timeout_secs = Some(900);
        let job = job::ForecastJob {
            kit: self.kit.clone(),
            series: self.series.clone(),
            settings: self.settings.clone(),
            outcomes: self.outcomes.clone(),
        };
        scheduler.register(spec, Arc::new(job)).await?;
        let retention = alertkit::scheduler::SeriesRetentionJob::new(
            self.series.clone(),
            self.kit.clock().clone(),
            self.retention,
        );
        let spec = JobSpec::new(
            "series_retention",
            "delete series points and predictions past their retention",
            cron("0 30 3 * * *"),
        );
        scheduler.register(spec, Arc::new(retention)).await
    }

    /// The routes (put behind the transport's auth layer).
    pub fn routes(&self) -> Router {
        Router::new()
            .route("/api/forecast/upload", post(upload_route))
            .route("/api/forecast/series", get(list_series))
            .route("/api/forecast/series/{name}", put(put_series))
            .route("/api/forecast/history", get(history))
            .with_state(self.clone())
    }
}

/// An error in the wire's shape.
async fn upload_route(
    State(f): State<Forecast>,
    p: Option<Extension<Principal>>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    if let Some(r) = denied(p, Permission::ForecastManage) {
        return r;
    }
    let ctype = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        });
    let format = match ctype.as_deref() {
        Some("text/csv" | "application/csv") => upload::Format::Csv,
        #[cfg(feature = "parquet")]
        Some("application/vnd.apache.parquet" | "application/x-parquet") => upload::Format::Parquet,
        _ => {
            return error(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                if cfg!(feature = "parquet") {
                    "send the actuals as CSV (content-type: text/csv) or Parquet \
                     (content-type: application/vnd.apache.parquet)"
                } else {
                    "send the actuals as CSV with content-type: text/csv"
                },
            );
        }
    };
    match upload::upload(body, format, f.upload_max, &*f.series).await {
        Ok(summary) => {
            job::publish(
                &f.kit,
                json!({"kind": "actuals", "series": summary.series, "from": summary.from, "to": summary.to}),
            )
            .await;
            (StatusCode::OK, Json(summary)).into_response()
        }
        Err(upload::Refused::TooLarge(max)) => error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("uploads are limited to {} MiB", max / (1024 * 1024)),
        ),
        Err(upload::Refused::Rows {
            rows,
            bad_rows,
            errors,
        }) => {
            let first = errors
                .first()
                .map(|e| format!("line {}: {}", e.line, e.message))
                .unwrap_or_default();
            let message = if bad_rows > 0 {
                format!("{bad_rows} of {rows} rows are bad; nothing was stored (first: {first})")
            } else {
                first
            };
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                Json(json!({
                    "error": { "code": "invalid", "message": message },
                    "rows": rows, "bad_rows": bad_rows, "errors": errors,
                })),
            )
                .into_response()
        }
        Err(upload::Refused::Failed(status, message)) => {
            let code = if status == StatusCode::BAD_REQUEST {
                "bad_request"
            } else {
                "unavailable"
            };
            error(status, code, message)
        }
    }
}

async fn list_series(State(f): State<Forecast>, p: Option<Extension<Principal>>) -> Response {
    if let Some(r) = denied(p, Permission::ForecastRead) {
        return r;
    }
    let all = match f.series.series().await {
        Ok(a) => a,
        Err(e) => return from_core(e),
    };
    let outcomes = f.outcomes.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let items: Vec<serde_json::Value> = all
        .into_iter()
        .map(|s| {
            let last = outcomes.get(&s.name).cloned();
            json!({
                "name": s.name, "capacity": s.capacity, "unit": s.unit,
                "last_at": s.last_at, "last_forecast": last,
            })
        })
        .collect();
    Json(json!({ "series": items })).into_response()
}

async fn put_series(
    State(f): State<Forecast>,
    p: Option<Extension<Principal>>,
    Path(name): Path<String>,
    body: Result<Json<SeriesSettings>, axum::extract::rejection::JsonRejection>,
) -> Response {
    if let Some(r) = denied(p, Permission::ForecastManage) {
        return r;
    }
    let Json(settings) = match body {
        Ok(b) => b,
        Err(rej) => return alertkit::transport::http::ApiError::from(rej).into_response(),
    };
    if let Err(e) = alertkit::series::validate_series_name(&name).and_then(|_| settings.validate())
    {
        return from_core(e);
    }
    match f.series.put_series(&name, &settings).await {
        Ok(info) => Json(info).into_response(),
        Err(e) => from_core(e),
    }
}

#[derive(Deserialize)]
struct HistoryQuery {
    series: Option<String>,
    range: Option<String>,
}

async fn history(
    State(f): State<Forecast>,
    p: Option<Extension<Principal>>,
    q: Result<Query<HistoryQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    if let Some(r) = denied(p, Permission::ForecastRead) {
        return r;
    }
    let Ok(Query(q)) = q else {
        return error(StatusCode::BAD_REQUEST, "bad_request", "bad query string");
    };
    let Some(series) = q.series.filter(|s| !s.is_empty()) else {
        return error(StatusCode::BAD_REQUEST, "bad_request", "series is required");
    };
    if let Err(e) = alertkit::series::validate_series_name(&series) {
        return error(StatusCode::BAD_REQUEST, "bad_request", e);
    }
    let range = match q.range.as_deref().unwrap_or("24h") {
        "1h" => Duration::hours(1),
        "6h" => Duration::hours(6),
        "24h" => Duration::hours(24),
        "7d" => Duration::days(7),
        other => {
            return error(
                StatusCode::BAD_REQUEST,
                "bad_request",
                format!("range {other:?}: use 1h, 6h, 24h or 7d"),
            );
        }
    };
    let info = match f.series.series().await {
        Ok(all) => all.into_iter().find(|s| s.name == series),
        Err(e) => return from_core(e),
    };
    let Some(info) = info else {
        return error(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("series {series}"),
        );
    };
    // The window ends at the newest actual (or now), so uploaded history
    // shows as it is; predictions run to the horizon past it.
    let end = info.last_at.unwrap_or_else(chrono::Utc::now);
    let from = end - range;
    let to_actual = end + Duration::milliseconds(1);
    let to_predicted = end + f.settings.horizon + Duration::milliseconds(1);
    let actual = match f.series.points(&series, from, to_actual, 10_000).await {
        Ok(a) => a,
        Err(e) => return from_core(e),
    };
    let predicted = match f
        .series
        .predictions(&series, from, to_predicted, 10_000)
        .await
    {
        Ok(a) => a,
        Err(e) => return from_core(e),
    };
    Json(json!({
        "series": series, "unit": info.unit, "capacity": info.capacity,
        "from": from, "to": end,
        "actual": actual.iter().map(|p| json!({"at": p.at, "value": p.value})).collect::<Vec<_>>(),
        "predicted": predicted.iter().map(|p| json!({
            "at": p.at, "value": p.value, "lower": p.lower, "upper": p.upper, "made_at": p.made_at,
        })).collect::<Vec<_>>(),
    }))
    .into_response()
}
