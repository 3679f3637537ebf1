//! The REST router (feature `axum`): the alert API (`docs/wire.md` in the
//! repository) over an
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
//! The OpenAPI document ([`openapi`]) is served at `/openapi.json`
//! and a Swagger UI at `/docs`.
//!
//! Every route but `/health`, `/openapi.json` and `/docs` needs a bearer token (`Authorization: Bearer …`
//! or `?token=`). Errors are `{"error":{"code":"…","message":"…"}}` with 400
//! (malformed request), 401, 403, 404, 409, 413, 422 (invalid content),
//! 429 (with `Retry-After`), 503; internal failures are 500 without details.

pub(crate) mod alerts;
mod constraints;
mod errors;
mod extractors;
pub(crate) mod live;
pub(crate) mod notify;
pub mod openapi;
pub(crate) mod rules;

use crate::ws::hub::{WsConfig, WsHub};
use alertkit_core::{AlertKit, Authenticator};
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post, put};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::num::NonZeroU32;
use std::sync::Arc;

use alerts::*;
pub use errors::ApiError;
use errors::*;
use extractors::*;
use live::*;
use notify::{
    create_route as create_route_handler, delete_route as delete_route_handler, delivery_attempts,
    get_contacts, list_deliveries, list_routes, put_contacts, retry_delivery,
    update_route as update_route_handler,
};
use rules::*;

/// Largest request body accepted, in bytes (413 beyond).
pub const BODY_LIMIT: usize = 64 * 1024;

/// Requests per minute per user allowed by default.
pub const DEFAULT_RATE_LIMIT: u32 = 60;

/// Settings of the router.
#[derive(Clone)]
pub struct HttpConfig {
    /// Requests per minute per authenticated user (429 beyond, with
    /// `Retry-After`); bursts up to the same number are allowed. WebSocket
    /// upgrades count as requests. `0` turns rate limiting off.
    pub rate_limit_per_minute: u32,
    /// The WebSocket hub's settings (used when the router makes its hub).
    pub ws: WsConfig,
    /// More OpenAPI documents merged into `/openapi.json` (and `/docs`), for
    /// routes merged beside this router, such as the scheduler's.
    pub extra_docs: Vec<utoipa::openapi::OpenApi>,
    /// More components `/health` reports beside the store, the bus and the
    /// dispatcher backlog (a scheduler, an SMTP server); each may degrade
    /// the service, none takes it down.
    pub health_checks: Vec<Arc<dyn alertkit_core::HealthCheck>>,
}

impl std::fmt::Debug for HttpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpConfig")
            .field("rate_limit_per_minute", &self.rate_limit_per_minute)
            .field("ws", &self.ws)
            .field("extra_docs", &self.extra_docs.len())
            .field("health_checks", &self.health_checks.len())
            .finish()
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            rate_limit_per_minute: DEFAULT_RATE_LIMIT,
            ws: WsConfig::default(),
            extra_docs: Vec::new(),
            health_checks: Vec::new(),
        }
    }
}

/// Puts the caller of each request into its extensions, for routers that
/// read a [`Principal`](alertkit_core::Principal) with
/// `Option<Extension<Principal>>` and do not know about tokens (the
/// scheduler's routes): a valid `Authorization: Bearer` token adds its
/// principal, a bad or expired one is answered with 401 here, and a request
/// without one goes on without a principal. Errors are JSON as elsewhere.
///
/// ```no_run
/// # fn demo(sched: std::sync::Arc<dyn alertkit_core::Scheduler>, auth: std::sync::Arc<dyn alertkit_core::Authenticator>, app: axum::Router) -> axum::Router {
/// let scheduler_routes = axum::Router::new(); // e.g. alertkit_scheduler::http::router(sched)
/// app.merge(alertkit_transport::http::authenticated(scheduler_routes, auth))
/// # }
/// ```
pub fn authenticated(router: Router, auth: Arc<dyn Authenticator>) -> Router {
    router
        .layer(axum::middleware::from_fn_with_state(auth, put_principal))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(axum::middleware::map_response(json_errors))
}

async fn put_principal(
    axum::extract::State(auth): axum::extract::State<Arc<dyn Authenticator>>,
    mut req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let token = req
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::to_owned);
    if let Some(token) = token {
        match auth.authenticate(&token).await {
            Ok(p) => {
                req.extensions_mut().insert(p);
            }
            Err(e) => return ApiError::from(e).into_response(),
        }
    }
    next.run(req).await
}

#[derive(Clone)]
pub(crate) struct AppState {
    pub(crate) kit: AlertKit,
    pub(crate) auth: Arc<dyn Authenticator>,
    pub(crate) limiter: Option<UserRateLimit>,
    pub(crate) hub: WsHub,
    pub(crate) health_checks: Arc<[Arc<dyn alertkit_core::HealthCheck>]>,
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
/// use alertkit_transport::ws::hub::{WsConfig, WsHub};
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
    let limiter = limiter(config.rate_limit_per_minute);
    Router::new()
        .route("/health", get(health))
        .route("/health/live", get(health_live))
        .route("/health/ready", get(health_ready))
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
        .route("/ws/live", get(ws_live))
        .route("/api/ws/stats", get(ws_stats))
        .route("/api/me/contacts", get(get_contacts).put(put_contacts))
        .route("/api/deliveries", get(list_deliveries))
        .route(
            "/api/notify/routes",
            get(list_routes).post(create_route_handler),
        )
        .route(
            "/api/notify/routes/{id}",
            put(update_route_handler).delete(delete_route_handler),
        )
        .route("/api/deliveries/{id}/retry", post(retry_delivery))
        .route("/api/deliveries/{id}/attempts", get(delivery_attempts))
        .route("/api/ws/push/broadcast", post(push_broadcast))
        .route("/api/ws/disconnect", post(ws_disconnect))
        .merge(
            utoipa_swagger_ui::SwaggerUi::new("/docs").external_url_unchecked(
                "/openapi.json",
                openapi::document(config.extra_docs.iter().cloned()),
            ),
        )
        .route("/ws/alerts/{user_id}", get(ws_upgrade_for))
        .route("/ws/notifications/{user_id}", get(ws_notifications_for))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(axum::middleware::map_response(json_errors))
        .layer(axum::middleware::from_fn(record_request))
        .with_state(AppState {
            kit,
            auth,
            limiter,
            hub,
            health_checks: config.health_checks.clone().into(),
        })
}

/// Middleware counting each request in `alertkit_http_requests_total` and
/// timing it in `alertkit_http_request_seconds`, labelled by the matched
/// route's template (`/api/alerts/{id}`, never the raw path, so ids do not
/// multiply the series; `unmatched` for a 404 without a route). The core
/// router has it; add it to routers you merge beside it:
/// `router.layer(axum::middleware::from_fn(record_request))`.
pub async fn record_request(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |m| m.as_str().to_owned());
    let method = req.method().as_str().to_owned();
    let span = tracing::info_span!(
        "request",
        method = %method,
        route = %route,
        status = tracing::field::Empty,
        alert_id = tracing::field::Empty,
    );
    if let Some(id) = alert_id_of(&route, req.uri().path()) {
        span.record("alert_id", id);
    }
    let started = std::time::Instant::now();
    let res = tracing::Instrument::instrument(next.run(req), span.clone()).await;
    span.record("status", res.status().as_u16());
    tracing::debug!(parent: &span, took_ms = started.elapsed().as_millis() as u64, "request served");
    metrics::histogram!(
        alertkit_core::telemetry::HTTP_REQUEST_SECONDS,
        "route" => route.clone(),
        "method" => method.clone(),
    )
    .record(started.elapsed().as_secs_f64());
    metrics::counter!(
        alertkit_core::telemetry::HTTP_REQUESTS,
        "route" => route,
        "method" => method,
        "status" => res.status().as_u16().to_string(),
    )
    .increment(1);
    res
}

/// The alert id in `path` when its route is one of an alert's
/// (`/api/alerts/{id}…`).
fn alert_id_of<'a>(route: &str, path: &'a str) -> Option<&'a str> {
    route
        .split('/')
        .zip(path.split('/'))
        .find(|(t, _)| *t == "{id}")
        .filter(|_| route.starts_with("/api/alerts/"))
        .map(|(_, v)| v)
}

/// A per-user request limit: `per_minute` requests a minute, bursts up to
/// the same number. What the core router applies (`HttpConfig::
/// rate_limit_per_minute`); also for routes of your own that need a
/// tighter limit.
#[derive(Clone)]
pub struct UserRateLimit(Arc<DefaultKeyedRateLimiter<String>>);

impl std::fmt::Debug for UserRateLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserRateLimit").finish_non_exhaustive()
    }
}

impl UserRateLimit {
    /// `per_minute` requests a minute per user; `None` when 0 (no limit).
    pub fn per_minute(per_minute: u32) -> Option<Self> {
        NonZeroU32::new(per_minute)
            .map(|n| UserRateLimit(Arc::new(RateLimiter::keyed(Quota::per_minute(n)))))
    }

    /// Counts one request of `user_id`; `RateLimited` (with how long to
    /// wait) when over the limit.
    pub fn check(&self, user_id: &str) -> alertkit_core::Result<()> {
        use governor::clock::{Clock, DefaultClock};
        self.0.check_key(&user_id.to_owned()).map_err(|not_until| {
            alertkit_core::Error::RateLimited {
                retry_after: Some(not_until.wait_time_from(DefaultClock::default().now())),
            }
        })
    }
}

/// The per-user limiter for `per_minute` requests; `None` when 0 (off).
fn limiter(per_minute: u32) -> Option<UserRateLimit> {
    UserRateLimit::per_minute(per_minute)
}

/// Only the WebSocket routes (`/ws`, `/ws/alerts/{user}`,
/// `/ws/notifications/{user}`), for serving the hub on a bare listener of
/// its own:
///
/// ```no_run
/// # async fn demo(kit: alertkit_core::AlertKit, auth: std::sync::Arc<dyn alertkit_core::Authenticator>) -> std::io::Result<()> {
/// use alertkit_transport::ws::hub::{WsConfig, WsHub};
/// let hub = WsHub::new(kit, WsConfig::default());
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:8001").await?;
/// axum::serve(listener, alertkit_transport::http::ws_router(hub, auth)).await
/// # }
/// ```
pub fn ws_router(hub: WsHub, auth: Arc<dyn Authenticator>) -> Router {
    ws_router_with(hub, auth, HttpConfig::default())
}

/// [`ws_router`] with settings: `config.rate_limit_per_minute` bounds the
/// upgrades per user per minute (0: unlimited); `config.ws` is ignored (the
/// hub has its own).
pub fn ws_router_with(hub: WsHub, auth: Arc<dyn Authenticator>, config: HttpConfig) -> Router {
    let limiter = limiter(config.rate_limit_per_minute);
    Router::new()
        .route("/ws", get(ws_upgrade))
        .route("/ws/live", get(ws_live))
        .route("/ws/alerts/{user_id}", get(ws_upgrade_for))
        .route("/ws/notifications/{user_id}", get(ws_notifications_for))
        .fallback(not_found)
        .layer(axum::middleware::map_response(json_errors))
        .with_state(AppState {
            kit: hub.kit().clone(),
            auth,
            limiter,
            hub,
            health_checks: config.health_checks.clone().into(),
        })
}
