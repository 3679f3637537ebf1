//! Notification routes: the caller's contact details, and deliveries (the
//! outbox) for managers.

use alertkit_core::{AlertId, DeliveryStatus, Error, Recipient};
use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};

use super::*;

#[utoipa::path(
    get, path = "/api/me/contacts", tag = "notify",
    responses((status = 200, description = "The caller's contact details", body = alertkit_core::Recipient))
)]
pub(crate) async fn get_contacts(
    State(s): State<AppState>,
    Authed(p): Authed,
) -> ApiResult<Response> {
    Ok(Json(s.kit.contacts(&p).await?).into_response())
}

#[utoipa::path(
    put, path = "/api/me/contacts", tag = "notify", request_body = alertkit_core::Recipient,
    responses((status = 200, description = "Replaced", body = alertkit_core::Recipient),
              (status = 400, description = "Malformed request", body = crate::http::openapi::ErrorDoc),
              (status = 403, description = "Another user's `user_id`", body = crate::http::openapi::ErrorDoc),
              (status = 422, description = "An invalid address", body = crate::http::openapi::ErrorDoc))
)]
pub(crate) async fn put_contacts(
    State(s): State<AppState>,
    Authed(p): Authed,
    body: Result<Json<Recipient>, JsonRejection>,
) -> ApiResult<Response> {
    let Json(c) = body?;
    Ok(Json(s.kit.set_contacts(&p, c).await?).into_response())
}

/// Filters of `GET /api/deliveries`.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct DeliveryParams {
    /// One alert's deliveries.
    alert_id: Option<String>,
    /// Only this status: `pending`, `in_flight`, `sent`, `dead` (dead letters).
    status: Option<String>,
    /// At most this many (default 100, at most 1000).
    limit: Option<u32>,
}

#[utoipa::path(
    get, path = "/api/deliveries", tag = "notify", params(DeliveryParams),
    responses((status = 200, description = "Deliveries: status, attempts, last error", body = Vec<alertkit_core::Delivery>),
              (status = 400, description = "Neither `alert_id` nor `status`, or a bad value", body = crate::http::openapi::ErrorDoc),
              (status = 403, description = "Needs `alerts.manage`", body = crate::http::openapi::ErrorDoc))
)]
pub(crate) async fn list_deliveries(
    State(s): State<AppState>,
    Authed(p): Authed,
    Query(q): Query<DeliveryParams>,
) -> ApiResult<Response> {
    let alert_id = q
        .alert_id
        .as_deref()
        .map(|a| {
            a.parse::<AlertId>()
                .map_err(|_| ApiError::bad_request("`alert_id` must be an alert id"))
        })
        .transpose()?;
    let status = q
        .status
        .as_deref()
        .map(|v| {
            v.parse::<DeliveryStatus>()
                .map_err(|e| ApiError::bad_request(e.to_string()))
        })
        .transpose()?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=alertkit_core::engine::MAX_DELIVERIES).contains(&limit) {
        return Err(ApiError::bad_request(format!(
            "limit must be between 1 and {}, got {limit}",
            alertkit_core::engine::MAX_DELIVERIES
        )));
    }
    let list = s
        .kit
        .deliveries(&p, alert_id, status, limit)
        .await
        .map_err(query_error)?;
    Ok(Json(list).into_response())
}

#[utoipa::path(
    post, path = "/api/deliveries/{id}/retry", tag = "notify", params(("id" = String, Path, description = "Delivery id")),
    responses((status = 200, description = "Pending again, due now", body = alertkit_core::Delivery),
              (status = 403, description = "Needs `alerts.manage`", body = crate::http::openapi::ErrorDoc),
              (status = 404, description = "No such delivery", body = crate::http::openapi::ErrorDoc),
              (status = 409, description = "Not a dead letter", body = crate::http::openapi::ErrorDoc))
)]
pub(crate) async fn retry_delivery(
    State(s): State<AppState>,
    Authed(p): Authed,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let id = uuid::Uuid::parse_str(&id).map_err(|_| Error::not_found(format!("delivery {id}")))?;
    Ok(Json(s.kit.retry_delivery(&p, id).await?).into_response())
}

#[utoipa::path(
    get, path = "/api/notify/routes", tag = "notify",
    responses((status = 200, description = "Every team route, oldest first", body = Vec<alertkit_core::Route>),
              (status = 403, description = "Needs `alerts.manage`", body = crate::http::openapi::ErrorDoc))
)]
pub(crate) async fn list_routes(
    State(s): State<AppState>,
    Authed(p): Authed,
) -> ApiResult<Response> {
    Ok(Json(s.kit.routes(&p).await?).into_response())
}

#[utoipa::path(
    post, path = "/api/notify/routes", tag = "notify", request_body = alertkit_core::NewRoute,
    responses((status = 201, description = "Created", body = alertkit_core::Route),
              (status = 400, description = "Malformed request", body = crate::http::openapi::ErrorDoc),
              (status = 403, description = "Needs `alerts.manage`", body = crate::http::openapi::ErrorDoc),
              (status = 422, description = "Invalid matchers or destination", body = crate::http::openapi::ErrorDoc))
)]
pub(crate) async fn create_route(
    State(s): State<AppState>,
    Authed(p): Authed,
    body: Result<Json<alertkit_core::NewRoute>, JsonRejection>,
) -> ApiResult<Response> {
    let Json(spec) = body?;
    let route = s.kit.create_route(&p, spec).await?;
    Ok((axum::http::StatusCode::CREATED, Json(route)).into_response())
}

fn route_id(raw: &str) -> ApiResult<uuid::Uuid> {
    uuid::Uuid::parse_str(raw).map_err(|_| Error::not_found(format!("route {raw}")).into())
}

#[utoipa::path(
    put, path = "/api/notify/routes/{id}", tag = "notify", params(("id" = String, Path, description = "Route id")),
    request_body = alertkit_core::NewRoute,
    responses((status = 200, description = "Replaced", body = alertkit_core::Route),
              (status = 403, description = "Needs `alerts.manage`", body = crate::http::openapi::ErrorDoc),
              (status = 404, description = "No such route", body = crate::http::openapi::ErrorDoc),
              (status = 422, description = "Invalid matchers or destination", body = crate::http::openapi::ErrorDoc))
)]
pub(crate) async fn update_route(
    State(s): State<AppState>,
    Authed(p): Authed,
    Path(id): Path<String>,
    body: Result<Json<alertkit_core::NewRoute>, JsonRejection>,
) -> ApiResult<Response> {
    let id = route_id(&id)?;
    let Json(spec) = body?;
    Ok(Json(s.kit.update_route(&p, id, spec).await?).into_response())
}

#[utoipa::path(
    delete, path = "/api/notify/routes/{id}", tag = "notify", params(("id" = String, Path, description = "Route id")),
    responses((status = 204, description = "Deleted"),
              (status = 403, description = "Needs `alerts.manage`", body = crate::http::openapi::ErrorDoc),
              (status = 404, description = "No such route", body = crate::http::openapi::ErrorDoc))
)]
pub(crate) async fn delete_route(
    State(s): State<AppState>,
    Authed(p): Authed,
    Path(id): Path<String>,
) -> ApiResult<axum::http::StatusCode> {
    s.kit.delete_route(&p, route_id(&id)?).await?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}

#[utoipa::path(
    get, path = "/api/deliveries/{id}/attempts", tag = "notify", params(("id" = String, Path, description = "Delivery id")),
    responses((status = 200, description = "Every recorded attempt: when, outcome, error", body = Vec<alertkit_core::DeliveryAttempt>),
              (status = 403, description = "Needs `alerts.manage`", body = crate::http::openapi::ErrorDoc))
)]
pub(crate) async fn delivery_attempts(
    State(s): State<AppState>,
    Authed(p): Authed,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let id = uuid::Uuid::parse_str(&id).map_err(|_| Error::not_found(format!("delivery {id}")))?;
    Ok(Json(s.kit.delivery_attempts(&p, id).await?).into_response())
}
