//! Alert routes: lists, counts, one alert, raise, receipts, delete.

use alertkit_core::{Error, NewAlert, Principal};
use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::*;

#[utoipa::path(
    get, path = "/api/alerts", tag = "alerts", params(crate::http::openapi::ListParams),
    responses((status = 200, description = "A page, newest first (ETag)", body = crate::http::openapi::AlertPageDoc),
              (status = 304, description = "Unchanged since If-None-Match"), (status = 400, description = "Malformed request", body = crate::http::openapi::ErrorDoc))
)]
pub(crate) async fn list(
    State(s): State<AppState>,
    Authed(p): Authed,
    headers: HeaderMap,
    Query(params): Query<Vec<(String, String)>>,
) -> ApiResult<Response> {
    let q = query_from(&params)?;
    with_etag(&headers, &s.kit.list(&p, &q).await.map_err(query_error)?)
}

#[utoipa::path(
    get, path = "/api/alerts/unread", tag = "alerts", params(crate::http::openapi::ListParams),
    responses((status = 200, description = "A page of unread alerts (ETag)", body = crate::http::openapi::AlertPageDoc),
              (status = 304, description = "Unchanged since If-None-Match"), (status = 400, description = "Malformed request", body = crate::http::openapi::ErrorDoc))
)]
pub(crate) async fn list_unread(
    State(s): State<AppState>,
    Authed(p): Authed,
    headers: HeaderMap,
    Query(params): Query<Vec<(String, String)>>,
) -> ApiResult<Response> {
    let mut q = query_from(&params)?;
    q.filter.unread_only = true;
    with_etag(&headers, &s.kit.list(&p, &q).await.map_err(query_error)?)
}

#[utoipa::path(
    get, path = "/api/alerts/unread/count", tag = "alerts",
    responses((status = 200, description = "The badge (ETag)", body = crate::http::openapi::UnreadDoc),
              (status = 304, description = "Unchanged since If-None-Match"))
)]
pub(crate) async fn unread_count(
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
    get, path = "/api/alerts/stats", tag = "alerts", params(crate::http::openapi::FilterParams),
    responses((status = 200, description = "Counts by severity and type", body = alertkit_core::Stats), (status = 400, description = "Malformed request", body = crate::http::openapi::ErrorDoc))
)]
pub(crate) async fn stats(
    State(s): State<AppState>,
    Authed(p): Authed,
    Query(params): Query<Vec<(String, String)>>,
) -> ApiResult<Response> {
    let f = filter_from(&params)?;
    Ok(Json(s.kit.stats(&p, &f).await.map_err(query_error)?).into_response())
}

#[utoipa::path(
    get, path = "/api/alerts/{id}", tag = "alerts", params(("id" = String, Path, description = "Alert id")),
    responses((status = 200, description = "The alert with the caller's receipt", body = crate::http::openapi::AlertViewDoc), (status = 404, description = "No such alert (or not visible)", body = crate::http::openapi::ErrorDoc))
)]
pub(crate) async fn get_one(
    State(s): State<AppState>,
    Authed(p): Authed,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    Ok(Json(s.kit.get(&p, alert_id(&id)?).await?).into_response())
}

#[utoipa::path(
    post, path = "/api/alerts", tag = "alerts", request_body = alertkit_core::NewAlert,
    responses((status = 201, description = "Stored (or merged: `deduplicated`). When the caller is not in the audience it may not see the alert, and the body is only `{id, visible: false}`", body = crate::http::openapi::CreatedDoc),
              (status = 400, description = "Malformed request", body = crate::http::openapi::ErrorDoc), (status = 403, description = "Not permitted", body = crate::http::openapi::ErrorDoc), (status = 413, description = "Body over 64 KiB", body = crate::http::openapi::ErrorDoc), (status = 422, description = "Invalid content", body = crate::http::openapi::ErrorDoc))
)]
pub(crate) async fn create(
    State(s): State<AppState>,
    Authed(p): Authed,
    body: Result<Json<NewAlert>, JsonRejection>,
) -> ApiResult<Response> {
    let Json(new) = body?;
    let raised = s.kit.raise(&p, new).await?;
    // The caller may raise for an audience it is not part of (a service
    // alerting a user): then it learns the id and no more.
    if !s.kit.can_see(&p, &raised.alert) {
        return Ok((
            StatusCode::CREATED,
            Json(json!({ "id": raised.alert.id, "visible": false })),
        )
            .into_response());
    }
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
pub(crate) struct ReceiptBody {
    user_id: Option<String>,
}

/// The optional body of mark-read and dismiss: empty, or `{user_id}`
/// naming the caller.
pub(crate) fn check_self(p: &Principal, body: &[u8]) -> ApiResult<()> {
    if body.is_empty() {
        return Ok(());
    }
    let b: Option<ReceiptBody> =
        serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("body: {e}")))?;
    match b.and_then(|b| b.user_id) {
        Some(u) if u != p.user_id => {
            Err(Error::forbidden("user_id must be the token's subject").into())
        }
        _ => Ok(()),
    }
}

/// Which receipt a route writes.
#[derive(Clone, Copy)]
pub(crate) enum ReceiptKind {
    Read,
    Dismissed,
}

pub(crate) async fn write_receipt(
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
    request_body(content = Option<crate::http::openapi::ReceiptBodyDoc>, description = "Optional; a `user_id` must be the caller (seed clients send it)"),
    responses((status = 200, description = "The caller's receipt", body = crate::http::openapi::ReceiptDoc), (status = 403, description = "Not permitted", body = crate::http::openapi::ErrorDoc), (status = 404, description = "No such alert (or not visible)", body = crate::http::openapi::ErrorDoc))
)]
pub(crate) async fn mark_read(
    State(s): State<AppState>,
    Authed(p): Authed,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<Json<Value>> {
    write_receipt(&s, &p, &id, &body, ReceiptKind::Read).await
}

#[utoipa::path(
    post, path = "/api/alerts/{id}/dismiss", tag = "alerts", params(("id" = String, Path, description = "Alert id")),
    request_body(content = Option<crate::http::openapi::ReceiptBodyDoc>, description = "Optional; a `user_id` must be the caller (seed clients send it)"),
    responses((status = 200, description = "The caller's receipt", body = crate::http::openapi::ReceiptDoc), (status = 403, description = "Not permitted", body = crate::http::openapi::ErrorDoc), (status = 404, description = "No such alert (or not visible)", body = crate::http::openapi::ErrorDoc))
)]
pub(crate) async fn dismiss(
    State(s): State<AppState>,
    Authed(p): Authed,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<Json<Value>> {
    write_receipt(&s, &p, &id, &body, ReceiptKind::Dismissed).await
}

#[utoipa::path(
    post, path = "/api/alerts/mark-all-read", tag = "alerts", params(crate::http::openapi::FilterParams),
    responses((status = 200, description = "How many were marked", body = crate::http::openapi::MarkedDoc), (status = 400, description = "Malformed request", body = crate::http::openapi::ErrorDoc))
)]
pub(crate) async fn mark_all_read(
    State(s): State<AppState>,
    Authed(p): Authed,
    Query(params): Query<Vec<(String, String)>>,
) -> ApiResult<Json<Value>> {
    let f = filter_from(&params)?;
    Ok(Json(
        json!({ "marked": s.kit.mark_all_read(&p, &f).await.map_err(query_error)? }),
    ))
}

#[utoipa::path(
    delete, path = "/api/alerts/{id}", tag = "alerts", params(("id" = String, Path, description = "Alert id")),
    responses((status = 204, description = "Deleted"), (status = 403, description = "Not permitted", body = crate::http::openapi::ErrorDoc), (status = 404, description = "No such alert (or not visible)", body = crate::http::openapi::ErrorDoc))
)]
pub(crate) async fn delete_one(
    State(s): State<AppState>,
    Authed(p): Authed,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    s.kit.delete(&p, alert_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}
