//! The REST router (feature `axum`): the alert API of DESIGN.md §6 over an
//! [`AlertKit`].
//!
//! ```no_run
//! # async fn demo(kit: alertkit_core::AlertKit, auth: std::sync::Arc<dyn alertkit_core::Authenticator>) -> std::io::Result<()> {
//! let app = alertkit_transport::http::router(kit, auth);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8000").await?;
//! axum::serve(listener, app).await
//! # }
//! ```
//!
//! The OpenAPI document ([`crate::openapi`]) is served at `/openapi.json`
//! and a Swagger UI at `/docs`.
//!
//! Every route but `/health`, `/openapi.json` and `/docs` needs a bearer token (`Authorization: Bearer …`
//! or `?token=`). Errors are `{"error":{"code":"…","message":"…"}}` with 400
//! (malformed request), 401, 403, 404, 409, 413, 422 (invalid content),
//! 429 (with `Retry-After`), 503; internal failures are 500 without details.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::num::NonZeroU32;
use std::sync::Arc;

use alertkit_core::{
    AlertFilter, AlertId, AlertKit, AlertQuery, AlertStatus, Authenticator, Cursor, Error,
    ErrorKind, NewAlert, NewRule, Principal, Severity, Subscription,
};
use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use serde_json::{Value, json};

use crate::hub::{WsConfig, WsHub};
use crate::openapi::ApiDoc;
use utoipa::OpenApi;

/// Largest request body accepted, in bytes (413 beyond).
pub const BODY_LIMIT: usize = 64 * 1024;

/// Requests per minute per user allowed by default.
pub const DEFAULT_RATE_LIMIT: u32 = 60;

/// Settings of the router.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// Requests per minute per authenticated user (429 beyond, with
    /// `Retry-After`); bursts up to the same number are allowed.
    pub rate_limit_per_minute: u32,
    /// The WebSocket hub's settings (used when the router makes its hub).
    pub ws: WsConfig,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            rate_limit_per_minute: DEFAULT_RATE_LIMIT,
            ws: WsConfig::default(),
        }
    }
}

#[derive(Clone)]
struct AppState {
    kit: AlertKit,
    auth: Arc<dyn Authenticator>,
    limiter: Arc<DefaultKeyedRateLimiter<String>>,
    hub: WsHub,
}

/// The alert API as an axum router with default settings.
pub fn router(kit: AlertKit, auth: Arc<dyn Authenticator>) -> Router {
    router_with(kit, auth, HttpConfig::default())
}

/// The alert API as an axum router (state included; merge or nest it).
pub fn router_with(kit: AlertKit, auth: Arc<dyn Authenticator>, config: HttpConfig) -> Router {
    let hub = WsHub::new(kit, config.ws.clone());
    router_with_hub(hub, auth, config)
}

/// The alert API around a hub you keep, so you can call
/// [`WsHub::shutdown`] (every WebSocket closes with 1001) before stopping
/// the server. `config.ws` is ignored: the hub has its own.
///
/// ```no_run
/// # async fn demo(kit: alertkit_core::AlertKit, auth: std::sync::Arc<dyn alertkit_core::Authenticator>) -> std::io::Result<()> {
/// use alertkit_transport::hub::{WsConfig, WsHub};
/// let hub = WsHub::new(kit, WsConfig::default());
/// let app = alertkit_transport::http::router_with_hub(hub.clone(), auth, Default::default());
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:8000").await?;
/// let closer = hub.clone();
/// axum::serve(listener, app)
///     .with_graceful_shutdown(async move {
///         let _ = tokio::signal::ctrl_c().await;
///         closer.shutdown();
///     })
///     .await?;
/// // WebSockets outlive `serve`: let them write their close frames.
/// hub.drained(std::time::Duration::from_secs(5)).await;
/// # Ok(())
/// # }
/// ```
pub fn router_with_hub(hub: WsHub, auth: Arc<dyn Authenticator>, config: HttpConfig) -> Router {
    let kit = hub.kit().clone();
    let per_minute = NonZeroU32::new(config.rate_limit_per_minute).unwrap_or(NonZeroU32::MIN);
    let limiter = Arc::new(RateLimiter::keyed(Quota::per_minute(per_minute)));
    Router::new()
        .route("/health", get(health))
        .route("/api/alerts", get(list).post(create))
        .route("/api/alerts/unread", get(list_unread))
        .route("/api/alerts/unread/count", get(unread_count))
        .route("/api/alerts/stats", get(stats))
        .route("/api/alerts/mark-all-read", post(mark_all_read))
        .route("/api/alerts/rules", get(rules).post(create_rule))
        .route(
            "/api/alerts/rules/{id}",
            put(update_rule).delete(delete_rule),
        )
        .route(
            "/api/alerts/subscriptions",
            get(subscriptions).put(set_subscriptions),
        )
        .route("/api/alerts/{id}", get(get_one).delete(delete_one))
        .route("/api/alerts/{id}/mark-read", post(mark_read))
        .route("/api/alerts/{id}/dismiss", post(dismiss))
        .route("/ws", get(ws_upgrade))
        .route("/api/ws/stats", get(ws_stats))
        .route("/api/ws/push/broadcast", post(push_broadcast))
        .merge(utoipa_swagger_ui::SwaggerUi::new("/docs").url("/openapi.json", ApiDoc::openapi()))
        .route("/ws/alerts/{user_id}", get(ws_upgrade_for))
        .route("/ws/notifications/{user_id}", get(ws_notifications_for))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(AppState {
            kit,
            auth,
            limiter,
            hub,
        })
}

/// Only the WebSocket routes (`/ws`, `/ws/alerts/{user}`,
/// `/ws/notifications/{user}`), for serving the hub on a bare listener of
/// its own:
///
/// ```no_run
/// # async fn demo(kit: alertkit_core::AlertKit, auth: std::sync::Arc<dyn alertkit_core::Authenticator>) -> std::io::Result<()> {
/// use alertkit_transport::hub::{WsConfig, WsHub};
/// let hub = WsHub::new(kit, WsConfig::default());
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:8001").await?;
/// axum::serve(listener, alertkit_transport::http::ws_router(hub, auth)).await
/// # }
/// ```
pub fn ws_router(hub: WsHub, auth: Arc<dyn Authenticator>) -> Router {
    let limiter = Arc::new(RateLimiter::keyed(Quota::per_minute(NonZeroU32::MIN)));
    Router::new()
        .route("/ws", get(ws_upgrade))
        .route("/ws/alerts/{user_id}", get(ws_upgrade_for))
        .route("/ws/notifications/{user_id}", get(ws_notifications_for))
        .with_state(AppState {
            kit: hub.kit().clone(),
            auth,
            limiter,
            hub,
        })
}

// ---- errors ------------------------------------------------------------------

/// An error response.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    retry_after: Option<u64>,
}

impl ApiError {
    fn bad_request(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            code: "bad_request",
            message: message.into(),
            retry_after: None,
        }
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        let kind = e.kind();
        let status = match kind {
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::Conflict => StatusCode::CONFLICT,
            ErrorKind::Invalid => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorKind::Forbidden => StatusCode::FORBIDDEN,
            ErrorKind::Unauthenticated => StatusCode::UNAUTHORIZED,
            ErrorKind::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            ErrorKind::Unavailable | ErrorKind::Timeout => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let message = if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!(error = %e, "internal error");
            "internal error".to_owned()
        } else {
            e.to_string()
        };
        ApiError {
            status,
            code: kind.code(),
            message,
            retry_after: e.retry_after().map(|d| d.as_secs().max(1)),
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        match r.status() {
            StatusCode::PAYLOAD_TOO_LARGE => ApiError {
                status: StatusCode::PAYLOAD_TOO_LARGE,
                code: "too_large",
                message: format!("request body over {BODY_LIMIT} bytes"),
                retry_after: None,
            },
            // Well-formed JSON of the wrong shape (bad severity, missing field).
            StatusCode::UNPROCESSABLE_ENTITY => ApiError {
                status: StatusCode::UNPROCESSABLE_ENTITY,
                code: "invalid",
                message: r.body_text(),
                retry_after: None,
            },
            _ => ApiError::bad_request(r.body_text()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Json(json!({ "error": { "code": self.code, "message": self.message } }));
        let mut res = (self.status, body).into_response();
        if let Some(secs) = self.retry_after
            && let Ok(v) = HeaderValue::from_str(&secs.to_string())
        {
            res.headers_mut().insert(header::RETRY_AFTER, v);
        }
        res
    }
}

type ApiResult<T> = Result<T, ApiError>;

// ---- authentication -------------------------------------------------------------

/// The authenticated caller.
struct Authed(Principal);

/// The caller, if the request carries a token (WebSocket upgrades may
/// authenticate with their first message instead).
struct MaybeAuthed(Option<Principal>);

impl FromRequestParts<AppState> for MaybeAuthed {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> ApiResult<Self> {
        let has_token = parts.headers.contains_key(header::AUTHORIZATION)
            || parts
                .uri
                .query()
                .is_some_and(|q| q.split('&').any(|kv| kv.starts_with("token=")));
        if !has_token {
            return Ok(MaybeAuthed(None));
        }
        Authed::from_request_parts(parts, state)
            .await
            .map(|Authed(p)| MaybeAuthed(Some(p)))
    }
}

impl FromRequestParts<AppState> for Authed {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> ApiResult<Self> {
        let header_token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::to_owned);
        let query_token = || {
            parts.uri.query().and_then(|q| {
                q.split('&')
                    .filter_map(|kv| kv.split_once('='))
                    .find(|(k, _)| *k == "token")
                    .map(|(_, v)| v.to_owned())
            })
        };
        let token = header_token
            .or_else(query_token)
            .ok_or_else(|| Error::Unauthenticated("a bearer token is required".into()))?;
        let principal = state.auth.authenticate(&token).await?;
        if let Err(not_until) = state.limiter.check_key(&principal.user_id) {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            return Err(Error::RateLimited {
                retry_after: Some(wait),
            }
            .into());
        }
        Ok(Authed(principal))
    }
}

// ---- query parsing ------------------------------------------------------------------

fn values<'a>(params: &'a [(String, String)], names: &[&str]) -> Vec<&'a str> {
    params
        .iter()
        .filter(|(k, _)| names.contains(&k.as_str()))
        .flat_map(|(_, v)| v.split(','))
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .collect()
}

fn one<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .rev()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn time_param(params: &[(String, String)], name: &str) -> ApiResult<Option<DateTime<Utc>>> {
    one(params, name)
        .map(|v| {
            DateTime::parse_from_rfc3339(v)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| ApiError::bad_request(format!("`{name}` must be an RFC 3339 time")))
        })
        .transpose()
}

fn bool_param(params: &[(String, String)], name: &str) -> ApiResult<bool> {
    match one(params, name) {
        None => Ok(false),
        Some("true" | "1" | "") => Ok(true),
        Some("false" | "0") => Ok(false),
        Some(_) => Err(ApiError::bad_request(format!(
            "`{name}` must be true or false"
        ))),
    }
}

fn filter_from(params: &[(String, String)]) -> ApiResult<AlertFilter> {
    let severities = values(params, &["severity"])
        .into_iter()
        .map(|s| {
            s.parse::<Severity>()
                .map_err(|e| ApiError::bad_request(e.to_string()))
        })
        .collect::<ApiResult<Vec<_>>>()?;
    let min_severity = one(params, "min_severity")
        .map(|s| {
            s.parse::<Severity>()
                .map_err(|e| ApiError::bad_request(e.to_string()))
        })
        .transpose()?;
    let status = one(params, "status")
        .map(|s| {
            s.parse::<AlertStatus>()
                .map_err(|e| ApiError::bad_request(e.to_string()))
        })
        .transpose()?;
    Ok(AlertFilter {
        since: time_param(params, "since")?,
        until: time_param(params, "until")?,
        severities,
        min_severity,
        alert_types: values(params, &["alert_type"])
            .into_iter()
            .map(str::to_owned)
            .collect(),
        tags: values(params, &["tag", "product_code"])
            .into_iter()
            .map(str::to_owned)
            .collect(),
        status,
        unread_only: bool_param(params, "unread_only")?,
        include_dismissed: bool_param(params, "include_dismissed")?,
    })
}

fn query_from(params: &[(String, String)]) -> ApiResult<AlertQuery> {
    let limit = one(params, "limit")
        .map(|l| {
            l.parse::<u32>()
                .map_err(|_| ApiError::bad_request("`limit` must be a number"))
        })
        .transpose()?;
    let q = AlertQuery {
        filter: filter_from(params)?,
        limit,
        cursor: one(params, "cursor").map(Cursor::from_raw),
    };
    q.validate()
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    Ok(q)
}

fn alert_id(raw: &str) -> ApiResult<AlertId> {
    raw.parse()
        .map_err(|_| Error::not_found(format!("alert {raw}")).into())
}

// ---- caching ------------------------------------------------------------------------------

/// A JSON response with a weak ETag of its body; `304 Not Modified` when the
/// request's `If-None-Match` already names it (polling clients save the body).
fn with_etag(headers: &HeaderMap, value: &impl serde::Serialize) -> ApiResult<Response> {
    let body = serde_json::to_vec(value).map_err(|e| Error::backend("http", e))?;
    let mut hasher = DefaultHasher::new();
    body.hash(&mut hasher);
    let etag = format!("W/\"{:016x}\"", hasher.finish());
    let matches = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let tag = HeaderValue::from_str(&etag).map_err(|e| Error::backend("http", e))?;
    let mut res = if matches {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        ([(header::CONTENT_TYPE, "application/json")], body).into_response()
    };
    res.headers_mut().insert(header::ETAG, tag);
    Ok(res)
}

// ---- handlers -------------------------------------------------------------------------

#[utoipa::path(
    get, path = "/health", tag = "health", security(()),
    responses((status = 200, description = "Every component is up", body = crate::openapi::HealthDoc),
              (status = 503, description = "A component is down", body = crate::openapi::HealthDoc))
)]
async fn health(State(s): State<AppState>) -> Response {
    match s.kit.store().ping().await {
        Ok(()) => Json(json!({ "status": "ok", "components": { "store": "ok" } })).into_response(),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "degraded", "components": { "store": e.to_string() } })),
        )
            .into_response(),
    }
}

#[utoipa::path(
    get, path = "/api/alerts", tag = "alerts", params(crate::openapi::ListParams),
    responses((status = 200, description = "A page, newest first (ETag)", body = crate::openapi::AlertPageDoc),
              (status = 304, description = "Unchanged since If-None-Match"), (status = 400, description = "Malformed request", body = crate::openapi::ErrorDoc))
)]
async fn list(
    State(s): State<AppState>,
    Authed(p): Authed,
    headers: HeaderMap,
    Query(params): Query<Vec<(String, String)>>,
) -> ApiResult<Response> {
    let q = query_from(&params)?;
    with_etag(&headers, &s.kit.list(&p, &q).await?)
}

#[utoipa::path(
    get, path = "/api/alerts/unread", tag = "alerts", params(crate::openapi::ListParams),
    responses((status = 200, description = "A page of unread alerts (ETag)", body = crate::openapi::AlertPageDoc),
              (status = 304, description = "Unchanged since If-None-Match"), (status = 400, description = "Malformed request", body = crate::openapi::ErrorDoc))
)]
async fn list_unread(
    State(s): State<AppState>,
    Authed(p): Authed,
    headers: HeaderMap,
    Query(params): Query<Vec<(String, String)>>,
) -> ApiResult<Response> {
    let mut q = query_from(&params)?;
    q.filter.unread_only = true;
    with_etag(&headers, &s.kit.list(&p, &q).await?)
}

#[utoipa::path(
    get, path = "/api/alerts/unread/count", tag = "alerts",
    responses((status = 200, description = "The badge (ETag)", body = crate::openapi::UnreadDoc),
              (status = 304, description = "Unchanged since If-None-Match"))
)]
async fn unread_count(
    State(s): State<AppState>,
    Authed(p): Authed,
    headers: HeaderMap,
) -> ApiResult<Response> {
    with_etag(
        &headers,
        &json!({ "unread": s.kit.unread_count(&p).await? }),
    )
}

#[utoipa::path(
    get, path = "/api/alerts/stats", tag = "alerts", params(crate::openapi::ListParams),
    responses((status = 200, description = "Counts by severity and type", body = alertkit_core::Stats), (status = 400, description = "Malformed request", body = crate::openapi::ErrorDoc))
)]
async fn stats(
    State(s): State<AppState>,
    Authed(p): Authed,
    Query(params): Query<Vec<(String, String)>>,
) -> ApiResult<Response> {
    let f = filter_from(&params)?;
    Ok(Json(s.kit.stats(&p, &f).await?).into_response())
}

#[utoipa::path(
    get, path = "/api/alerts/{id}", tag = "alerts", params(("id" = String, Path, description = "Alert id")),
    responses((status = 200, description = "The alert with the caller's receipt", body = crate::openapi::AlertViewDoc), (status = 404, description = "No such alert (or not visible)", body = crate::openapi::ErrorDoc))
)]
async fn get_one(
    State(s): State<AppState>,
    Authed(p): Authed,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    Ok(Json(s.kit.get(&p, alert_id(&id)?).await?).into_response())
}

#[utoipa::path(
    post, path = "/api/alerts", tag = "alerts", request_body = alertkit_core::NewAlert,
    responses((status = 201, description = "Stored (or merged: `deduplicated`)", body = crate::openapi::CreatedDoc),
              (status = 400, description = "Malformed request", body = crate::openapi::ErrorDoc), (status = 403, description = "Not permitted", body = crate::openapi::ErrorDoc), (status = 413, description = "Body over 64 KiB", body = crate::openapi::ErrorDoc), (status = 422, description = "Invalid content", body = crate::openapi::ErrorDoc))
)]
async fn create(
    State(s): State<AppState>,
    Authed(p): Authed,
    body: Result<Json<NewAlert>, JsonRejection>,
) -> ApiResult<Response> {
    let Json(new) = body?;
    let raised = s.kit.raise(&p, new).await?;
    let mut view = serde_json::to_value(alertkit_core::AlertView::new(
        raised.alert,
        Default::default(),
    ))
    .map_err(|e| Error::backend("http", e))?;
    if let Some(obj) = view.as_object_mut() {
        obj.insert("deduplicated".into(), Value::Bool(raised.deduplicated));
    }
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

/// `{user_id}` as older clients send it (seed 000): must be the caller.
#[derive(serde::Deserialize, Default)]
struct ReceiptBody {
    user_id: Option<String>,
}

/// The optional body of mark-read and dismiss: empty, or `{user_id}`
/// naming the caller.
fn check_self(p: &Principal, body: &[u8]) -> ApiResult<()> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(());
    }
    let b: ReceiptBody =
        serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("body: {e}")))?;
    match b.user_id {
        Some(u) if u != p.user_id => {
            Err(Error::forbidden("user_id must be the token's subject").into())
        }
        _ => Ok(()),
    }
}

/// Which receipt a route writes.
#[derive(Clone, Copy)]
enum ReceiptKind {
    Read,
    Dismissed,
}

async fn write_receipt(
    s: &AppState,
    p: &Principal,
    raw_id: &str,
    body: &[u8],
    kind: ReceiptKind,
) -> ApiResult<Json<Value>> {
    check_self(p, body)?;
    let id = alert_id(raw_id)?;
    let r = match kind {
        ReceiptKind::Read => s.kit.mark_read(p, id).await?,
        ReceiptKind::Dismissed => s.kit.dismiss(p, id).await?,
    };
    Ok(Json(
        json!({ "alert_id": id, "read_at": r.read_at, "dismissed_at": r.dismissed_at }),
    ))
}

#[utoipa::path(
    post, path = "/api/alerts/{id}/mark-read", tag = "alerts", params(("id" = String, Path, description = "Alert id")),
    request_body(content = Option<crate::openapi::ReceiptBodyDoc>, description = "Optional; a `user_id` must be the caller (seed clients send it)"),
    responses((status = 200, description = "The caller's receipt", body = crate::openapi::ReceiptDoc), (status = 403, description = "Not permitted", body = crate::openapi::ErrorDoc), (status = 404, description = "No such alert (or not visible)", body = crate::openapi::ErrorDoc))
)]
async fn mark_read(
    State(s): State<AppState>,
    Authed(p): Authed,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<Json<Value>> {
    write_receipt(&s, &p, &id, &body, ReceiptKind::Read).await
}

#[utoipa::path(
    post, path = "/api/alerts/{id}/dismiss", tag = "alerts", params(("id" = String, Path, description = "Alert id")),
    request_body(content = Option<crate::openapi::ReceiptBodyDoc>, description = "Optional; a `user_id` must be the caller (seed clients send it)"),
    responses((status = 200, description = "The caller's receipt", body = crate::openapi::ReceiptDoc), (status = 403, description = "Not permitted", body = crate::openapi::ErrorDoc), (status = 404, description = "No such alert (or not visible)", body = crate::openapi::ErrorDoc))
)]
async fn dismiss(
    State(s): State<AppState>,
    Authed(p): Authed,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<Json<Value>> {
    write_receipt(&s, &p, &id, &body, ReceiptKind::Dismissed).await
}

#[utoipa::path(
    post, path = "/api/alerts/mark-all-read", tag = "alerts", params(crate::openapi::ListParams),
    responses((status = 200, description = "How many were marked", body = crate::openapi::MarkedDoc), (status = 400, description = "Malformed request", body = crate::openapi::ErrorDoc))
)]
async fn mark_all_read(
    State(s): State<AppState>,
    Authed(p): Authed,
    Query(params): Query<Vec<(String, String)>>,
) -> ApiResult<Json<Value>> {
    let f = filter_from(&params)?;
    Ok(Json(
        json!({ "marked": s.kit.mark_all_read(&p, &f).await? }),
    ))
}

/// `?cursor=` on the WebSocket upgrade: resume from there.
#[derive(Debug, serde::Deserialize)]
struct WsParams {
    cursor: Option<String>,
}

impl WsParams {
    fn cursor(&self) -> ApiResult<Option<u64>> {
        match &self.cursor {
            None => Ok(None),
            Some(c) => c
                .parse()
                .map(Some)
                .map_err(|_| Error::invalid("`cursor` must be a cursor the server sent").into()),
        }
    }
}

/// Upgrades to the WebSocket endpoint. A path's user must be the token's
/// (checked again after first-message auth).
fn upgrade(
    s: AppState,
    p: Option<Principal>,
    path_user: Option<String>,
    params: &WsParams,
    ws: axum::extract::WebSocketUpgrade,
) -> ApiResult<Response> {
    if let (Some(p), Some(u)) = (&p, &path_user)
        && p.user_id != *u
    {
        return Err(Error::forbidden("the path's user is not the token's").into());
    }
    let cursor = params.cursor()?;
    Ok(ws_limits(ws, &s.hub)
        .on_upgrade(move |socket| crate::ws::serve(socket, s.hub, s.auth, p, path_user, cursor)))
}

/// The codec's own frame limit: well above [`WsConfig::max_message`], so
/// that oversized client messages are read and refused with 1009.
fn ws_limits(ws: axum::extract::WebSocketUpgrade, hub: &WsHub) -> axum::extract::WebSocketUpgrade {
    let limit = hub.config().max_message.saturating_mul(4).max(BODY_LIMIT);
    ws.max_message_size(limit).max_frame_size(limit)
}

#[utoipa::path(
    get, path = "/ws", tag = "live", params(crate::openapi::WsParamsDoc),
    responses((status = 101, description = "Switching to WebSocket (protocol: `alertkit_transport::ws`)"), (status = 400, description = "Malformed request", body = crate::openapi::ErrorDoc))
)]
async fn ws_upgrade(
    State(s): State<AppState>,
    MaybeAuthed(p): MaybeAuthed,
    Query(params): Query<WsParams>,
    ws: axum::extract::WebSocketUpgrade,
) -> ApiResult<Response> {
    upgrade(s, p, None, &params, ws)
}

#[utoipa::path(
    get, path = "/ws/alerts/{user_id}", tag = "live",
    params(("user_id" = String, Path, description = "Must be the token's subject"), crate::openapi::WsParamsDoc),
    responses((status = 101, description = "Switching to WebSocket"), (status = 400, description = "Malformed request", body = crate::openapi::ErrorDoc), (status = 403, description = "Not permitted", body = crate::openapi::ErrorDoc))
)]
async fn ws_upgrade_for(
    State(s): State<AppState>,
    MaybeAuthed(p): MaybeAuthed,
    Path(user_id): Path<String>,
    Query(params): Query<WsParams>,
    ws: axum::extract::WebSocketUpgrade,
) -> ApiResult<Response> {
    upgrade(s, p, Some(user_id), &params, ws)
}

#[utoipa::path(
    get, path = "/ws/notifications/{user_id}", tag = "live",
    params(("user_id" = String, Path, description = "Must be the token's subject"), crate::openapi::WsParamsDoc),
    responses((status = 101, description = "Switching to WebSocket (alias of /ws/alerts/{user_id})"))
)]
async fn ws_notifications_for(
    state: State<AppState>,
    authed: MaybeAuthed,
    path: Path<String>,
    params: Query<WsParams>,
    ws: axum::extract::WebSocketUpgrade,
) -> ApiResult<Response> {
    ws_upgrade_for(state, authed, path, params, ws).await
}

#[utoipa::path(
    get, path = "/api/ws/stats", tag = "live",
    responses((status = 200, description = "This instance's WebSocket counters", body = crate::openapi::WsStatsDoc))
)]
async fn ws_stats(State(s): State<AppState>, Authed(_caller): Authed) -> Json<Value> {
    Json(s.hub.stats())
}

/// Body of `POST /api/ws/push/broadcast`.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
struct BroadcastBody {
    /// The text (1 to 4096 bytes).
    message: String,
    /// `info` (default), `warning` or `error`.
    level: Option<String>,
    /// A JSON object of at most 16 KiB, passed through.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    data: Value,
}

#[utoipa::path(
    post, path = "/api/ws/push/broadcast", tag = "live", request_body = BroadcastBody,
    responses((status = 202, description = "Sent to every open connection on every instance"), (status = 400, description = "Malformed request", body = crate::openapi::ErrorDoc), (status = 403, description = "Not permitted", body = crate::openapi::ErrorDoc), (status = 413, description = "Body over 64 KiB", body = crate::openapi::ErrorDoc), (status = 422, description = "Invalid content", body = crate::openapi::ErrorDoc))
)]
async fn push_broadcast(
    State(s): State<AppState>,
    Authed(p): Authed,
    body: Result<Json<BroadcastBody>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let Json(b) = body?;
    s.kit
        .broadcast(&p, &b.message, b.level.as_deref(), b.data)
        .await?;
    Ok((StatusCode::ACCEPTED, Json(json!({"sent": true}))))
}

#[utoipa::path(
    delete, path = "/api/alerts/{id}", tag = "alerts", params(("id" = String, Path, description = "Alert id")),
    responses((status = 204, description = "Deleted"), (status = 403, description = "Not permitted", body = crate::openapi::ErrorDoc), (status = 404, description = "No such alert (or not visible)", body = crate::openapi::ErrorDoc))
)]
async fn delete_one(
    State(s): State<AppState>,
    Authed(p): Authed,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    s.kit.delete(&p, alert_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    get, path = "/api/alerts/rules", tag = "rules",
    responses((status = 200, description = "Every rule, by name", body = Vec<alertkit_core::AlertRule>), (status = 403, description = "Not permitted", body = crate::openapi::ErrorDoc))
)]
async fn rules(State(s): State<AppState>, Authed(p): Authed) -> ApiResult<Response> {
    Ok(Json(s.kit.rules(&p).await?).into_response())
}

#[utoipa::path(
    post, path = "/api/alerts/rules", tag = "rules", request_body = alertkit_core::NewRule,
    responses((status = 201, description = "Created", body = alertkit_core::AlertRule), (status = 400, description = "Malformed request", body = crate::openapi::ErrorDoc), (status = 403, description = "Not permitted", body = crate::openapi::ErrorDoc), (status = 409, description = "Conflict", body = crate::openapi::ErrorDoc), (status = 413, description = "Body over 64 KiB", body = crate::openapi::ErrorDoc), (status = 422, description = "Invalid content", body = crate::openapi::ErrorDoc))
)]
async fn create_rule(
    State(s): State<AppState>,
    Authed(p): Authed,
    body: Result<Json<NewRule>, JsonRejection>,
) -> ApiResult<Response> {
    let Json(rule) = body?;
    Ok((
        StatusCode::CREATED,
        Json(s.kit.create_rule(&p, rule).await?),
    )
        .into_response())
}

fn rule_id(raw: &str) -> ApiResult<uuid::Uuid> {
    uuid::Uuid::parse_str(raw).map_err(|_| Error::not_found(format!("rule {raw}")).into())
}

#[utoipa::path(
    put, path = "/api/alerts/rules/{id}", tag = "rules", params(("id" = String, Path, description = "Rule id")),
    request_body = alertkit_core::NewRule,
    responses((status = 200, description = "Replaced", body = alertkit_core::AlertRule), (status = 400, description = "Malformed request", body = crate::openapi::ErrorDoc), (status = 403, description = "Not permitted", body = crate::openapi::ErrorDoc), (status = 404, description = "No such rule", body = crate::openapi::ErrorDoc), (status = 409, description = "Conflict", body = crate::openapi::ErrorDoc), (status = 413, description = "Body over 64 KiB", body = crate::openapi::ErrorDoc), (status = 422, description = "Invalid content", body = crate::openapi::ErrorDoc))
)]
async fn update_rule(
    State(s): State<AppState>,
    Authed(p): Authed,
    Path(id): Path<String>,
    body: Result<Json<NewRule>, JsonRejection>,
) -> ApiResult<Response> {
    let id = rule_id(&id)?;
    let Json(rule) = body?;
    Ok(Json(s.kit.update_rule(&p, id, rule).await?).into_response())
}

#[utoipa::path(
    delete, path = "/api/alerts/rules/{id}", tag = "rules", params(("id" = String, Path, description = "Rule id")),
    responses((status = 204, description = "Deleted"), (status = 403, description = "Not permitted", body = crate::openapi::ErrorDoc), (status = 404, description = "No such rule", body = crate::openapi::ErrorDoc))
)]
async fn delete_rule(
    State(s): State<AppState>,
    Authed(p): Authed,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    s.kit.delete_rule(&p, rule_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    get, path = "/api/alerts/subscriptions", tag = "subscriptions",
    responses((status = 200, description = "The caller's subscriptions", body = Vec<alertkit_core::Subscription>))
)]
async fn subscriptions(State(s): State<AppState>, Authed(p): Authed) -> ApiResult<Response> {
    Ok(Json(s.kit.subscriptions(&p).await?).into_response())
}

#[utoipa::path(
    put, path = "/api/alerts/subscriptions", tag = "subscriptions", request_body = Vec<alertkit_core::Subscription>,
    responses((status = 200, description = "Replaced", body = Vec<alertkit_core::Subscription>), (status = 400, description = "Malformed request", body = crate::openapi::ErrorDoc), (status = 413, description = "Body over 64 KiB", body = crate::openapi::ErrorDoc), (status = 422, description = "Invalid content", body = crate::openapi::ErrorDoc))
)]
async fn set_subscriptions(
    State(s): State<AppState>,
    Authed(p): Authed,
    body: Result<Json<Vec<Subscription>>, JsonRejection>,
) -> ApiResult<Response> {
    let Json(subs) = body?;
    Ok(Json(s.kit.set_subscriptions(&p, subs).await?).into_response())
}
