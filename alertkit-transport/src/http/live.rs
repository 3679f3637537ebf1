//! Health, WebSocket upgrades, WebSocket stats and admin broadcasts.

use crate::ws::hub::WsHub;
use alertkit_core::{Error, Permission, Principal};
use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::*;

// ---- handlers -------------------------------------------------------------------------

#[utoipa::path(
    get, path = "/health", tag = "health", security(()),
    responses((status = 200, description = "Up: every component `ok`, or some `degraded` (the bus, a delivery backlog over 5 minutes)", body = crate::http::openapi::HealthDoc),
              (status = 503, description = "Down: the store does not answer", body = crate::http::openapi::HealthDoc))
)]
pub(crate) async fn health(State(s): State<AppState>) -> Response {
    let h = s.kit.health().await;
    let state = |r: &alertkit_core::Result<()>, down: &str| match r {
        Ok(()) => json!({"status": "ok"}),
        Err(e) => json!({"status": down, "error": e.to_string()}),
    };
    let dispatcher = match h.backlog {
        Some(b) => json!({
            "status": if h.backlog_degraded() { "degraded" } else { "ok" },
            "unfinished": b.unfinished,
            "oldest_due_seconds": h.backlog_wait.num_seconds(),
        }),
        None => json!({"status": "degraded", "error": "the backlog could not be read"}),
    };
    let mut components = serde_json::Map::new();
    components.insert("store".into(), state(&h.store, "down"));
    components.insert("bus".into(), state(&h.bus, "degraded"));
    components.insert("dispatcher".into(), dispatcher);
    let extra = futures::future::join_all(
        s.health_checks
            .iter()
            .map(|c| async move { (c.name().to_owned(), c.check().await) }),
    )
    .await;
    let mut extra_ok = true;
    for (name, c) in extra {
        extra_ok &= c.status == alertkit_core::ComponentStatus::Ok;
        let mut v = c.details;
        v.insert("status".into(), json!(c.status.as_str()));
        if let Some(e) = c.error {
            v.insert("error".into(), json!(e));
        }
        components.insert(name, Value::Object(v));
    }
    let status = if h.is_down() {
        "down"
    } else if h.is_ok() && extra_ok {
        "ok"
    } else {
        "degraded"
    };
    let body = json!({
        "status": status,
        "components": components,
        "store_backend": h.store_backend,
    });
    if h.is_down() {
        (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
    } else {
        Json(body).into_response()
    }
}

#[utoipa::path(
    get, path = "/health/live", tag = "health", security(()),
    responses((status = 200, description = "The process answers (for liveness probes)"))
)]
pub(crate) async fn health_live() -> Response {
    Json(json!({"status": "ok"})).into_response()
}

#[utoipa::path(
    get, path = "/health/ready", tag = "health", security(()),
    responses((status = 200, description = "The store answers: ready for traffic"),
              (status = 503, description = "The store does not answer"))
)]
pub(crate) async fn health_ready(State(s): State<AppState>) -> Response {
    match s.kit.store().ping().await {
        Ok(()) => Json(json!({"status": "ok"})).into_response(),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "down", "error": e.to_string()})),
        )
            .into_response(),
    }
}

/// `?cursor=` on the WebSocket upgrade: resume from there.
#[derive(Debug, serde::Deserialize)]
pub(crate) struct WsParams {
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
pub(crate) fn upgrade(
    s: AppState,
    p: Option<Principal>,
    path_user: Option<String>,
    params: &WsParams,
    ws: axum::extract::WebSocketUpgrade,
) -> ApiResult<Response> {
    if let Some(p) = &p {
        p.require(Permission::AlertsRead)?;
    }
    if let (Some(p), Some(u)) = (&p, &path_user)
        && p.user_id != *u
    {
        return Err(Error::forbidden("the path's user is not the token's").into());
    }
    if let Some(wait) = p.as_ref().and_then(|p| s.hub.held_for(&p.user_id)) {
        return Err(ApiError::unavailable_for(
            "disconnected by an administrator: poll the REST API until Retry-After has passed",
            wait,
        ));
    }
    let cursor = params.cursor()?;
    Ok(ws_limits(ws, &s.hub).on_upgrade(move |socket| {
        crate::ws::connection::serve(socket, s.hub, s.auth, p, path_user, cursor)
    }))
}

/// The codec's own frame limit: well above [`WsConfig::max_message`], so
/// that oversized client messages are read and refused with 1009.
pub(crate) fn ws_limits(
    ws: axum::extract::WebSocketUpgrade,
    hub: &WsHub,
) -> axum::extract::WebSocketUpgrade {
    let limit = hub.config().max_message.saturating_mul(4).max(BODY_LIMIT);
    ws.max_message_size(limit)
        .max_frame_size(limit)
        .read_buffer_size(hub.config().read_buffer.max(256))
}

#[utoipa::path(
    get, path = "/ws", tag = "live", params(crate::http::openapi::WsParamsDoc),
    responses((status = 101, description = "Switching to WebSocket (protocol: `alertkit_transport::ws`)"), (status = 400, description = "Malformed request", body = crate::http::openapi::ErrorDoc))
)]
pub(crate) async fn ws_upgrade(
    State(s): State<AppState>,
    MaybeAuthed(p): MaybeAuthed,
    Query(params): Query<WsParams>,
    ws: axum::extract::WebSocketUpgrade,
) -> ApiResult<Response> {
    upgrade(s, p, None, &params, ws)
}

#[utoipa::path(
    get, path = "/ws/live", tag = "live", params(crate::http::openapi::WsParamsDoc),
    responses((status = 101, description = "Switching to WebSocket (alias of /ws)"))
)]
pub(crate) async fn ws_live(
    state: State<AppState>,
    authed: MaybeAuthed,
    params: Query<WsParams>,
    ws: axum::extract::WebSocketUpgrade,
) -> ApiResult<Response> {
    ws_upgrade(state, authed, params, ws).await
}

#[utoipa::path(
    get, path = "/ws/alerts/{user_id}", tag = "live",
    params(("user_id" = String, Path, description = "Must be the token's subject"), crate::http::openapi::WsParamsDoc),
    responses((status = 101, description = "Switching to WebSocket"), (status = 400, description = "Malformed request", body = crate::http::openapi::ErrorDoc), (status = 403, description = "Not permitted", body = crate::http::openapi::ErrorDoc))
)]
pub(crate) async fn ws_upgrade_for(
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
    params(("user_id" = String, Path, description = "Must be the token's subject"), crate::http::openapi::WsParamsDoc),
    responses((status = 101, description = "Switching to WebSocket (alias of /ws/alerts/{user_id})"))
)]
pub(crate) async fn ws_notifications_for(
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
    responses((status = 200, description = "This instance's WebSocket counters", body = crate::http::openapi::WsStatsDoc))
)]
pub(crate) async fn ws_stats(
    State(s): State<AppState>,
    Authed(p): Authed,
) -> ApiResult<Json<Value>> {
    p.require(Permission::AlertsManage)?;
    Ok(Json(s.hub.stats()))
}

/// Longest hold `POST /api/ws/disconnect` accepts: one hour.
pub(crate) const MAX_HOLD_SECS: u64 = 3600;

/// Body of `POST /api/ws/disconnect`.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct DisconnectBody {
    /// Whose connections to close.
    user_id: String,
    /// Refuse the user's new connections for this long (0 to 3600; 0, the
    /// default, lets them reconnect at once and lifts an earlier hold).
    #[serde(default, deserialize_with = "alertkit_core::whole::u64")]
    retry_after_secs: u64,
}

#[utoipa::path(
    post, path = "/api/ws/disconnect", tag = "live", request_body = DisconnectBody,
    responses((status = 200, description = "`{closed}`: how many of the user's connections on this instance were closed with 4000", body = crate::http::openapi::DisconnectedDoc),
              (status = 403, description = "Not permitted (`alerts.manage`)", body = crate::http::openapi::ErrorDoc),
              (status = 422, description = "Invalid content", body = crate::http::openapi::ErrorDoc))
)]
pub(crate) async fn ws_disconnect(
    State(s): State<AppState>,
    Authed(p): Authed,
    body: Result<Json<DisconnectBody>, JsonRejection>,
) -> ApiResult<Json<Value>> {
    p.require(Permission::AlertsManage)?;
    let Json(b) = body?;
    if b.user_id.is_empty() || b.user_id.chars().count() > 256 {
        return Err(Error::invalid("`user_id` must be 1 to 256 characters").into());
    }
    if b.retry_after_secs > MAX_HOLD_SECS {
        return Err(Error::invalid(format!(
            "`retry_after_secs` must be at most {MAX_HOLD_SECS}, got {}",
            b.retry_after_secs
        ))
        .into());
    }
    let closed = s.hub.disconnect_user(
        &b.user_id,
        std::time::Duration::from_secs(b.retry_after_secs),
    );
    Ok(Json(json!({ "closed": closed })))
}

/// Body of `POST /api/ws/push/broadcast`.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
pub(crate) struct BroadcastBody {
    /// The text (1 to 4096 characters, not blank).
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
    responses((status = 202, description = "Sent to every open connection on every instance"), (status = 400, description = "Malformed request", body = crate::http::openapi::ErrorDoc), (status = 403, description = "Not permitted", body = crate::http::openapi::ErrorDoc), (status = 413, description = "Body over 64 KiB", body = crate::http::openapi::ErrorDoc), (status = 422, description = "Invalid content", body = crate::http::openapi::ErrorDoc))
)]
pub(crate) async fn push_broadcast(
    State(s): State<AppState>,
    Authed(p): Authed,
    body: Result<Json<BroadcastBody>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let Json(b) = body?;
    p.require(Permission::AlertsBroadcast)?;
    // A burst of broadcasts is slowed here, at its source, while the hub
    // is behind (bounded by `WsConfig::publish_wait`).
    s.hub.publish_room().await;
    s.kit
        .broadcast(&p, &b.message, b.level.as_deref(), b.data)
        .await?;
    Ok((StatusCode::ACCEPTED, Json(json!({"sent": true}))))
}
