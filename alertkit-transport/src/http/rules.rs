//! Rule and subscription routes.

use alertkit_core::{NewRule, Subscription};
use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::*;

#[utoipa::path(
    get, path = "/api/alerts/rules", tag = "rules",
    responses((status = 200, description = "Every rule, by name", body = Vec<alertkit_core::AlertRule>), (status = 403, description = "Not permitted", body = crate::http::openapi::ErrorDoc))
)]
pub(crate) async fn rules(State(s): State<AppState>, Authed(p): Authed) -> ApiResult<Response> {
    Ok(Json(s.kit.rules(&p).await?).into_response())
}

#[utoipa::path(
    post, path = "/api/alerts/rules", tag = "rules", request_body = alertkit_core::NewRule,
    responses((status = 201, description = "Created", body = alertkit_core::AlertRule), (status = 400, description = "Malformed request", body = crate::http::openapi::ErrorDoc), (status = 403, description = "Not permitted", body = crate::http::openapi::ErrorDoc), (status = 409, description = "Conflict", body = crate::http::openapi::ErrorDoc), (status = 413, description = "Body over 64 KiB", body = crate::http::openapi::ErrorDoc), (status = 422, description = "Invalid content", body = crate::http::openapi::ErrorDoc))
)]
pub(crate) async fn create_rule(
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

#[utoipa::path(
    put, path = "/api/alerts/rules/{id}", tag = "rules", params(("id" = String, Path, description = "Rule id")),
    request_body = alertkit_core::NewRule,
    responses((status = 200, description = "Replaced", body = alertkit_core::AlertRule), (status = 400, description = "Malformed request", body = crate::http::openapi::ErrorDoc), (status = 403, description = "Not permitted", body = crate::http::openapi::ErrorDoc), (status = 404, description = "No such rule", body = crate::http::openapi::ErrorDoc), (status = 409, description = "Conflict", body = crate::http::openapi::ErrorDoc), (status = 413, description = "Body over 64 KiB", body = crate::http::openapi::ErrorDoc), (status = 422, description = "Invalid content", body = crate::http::openapi::ErrorDoc))
)]
pub(crate) async fn update_rule(
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
    responses((status = 204, description = "Deleted"), (status = 403, description = "Not permitted", body = crate::http::openapi::ErrorDoc), (status = 404, description = "No such rule", body = crate::http::openapi::ErrorDoc))
)]
pub(crate) async fn delete_rule(
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
pub(crate) async fn subscriptions(
    State(s): State<AppState>,
    Authed(p): Authed,
) -> ApiResult<Response> {
    Ok(Json(s.kit.subscriptions(&p).await?).into_response())
}

#[utoipa::path(
    put, path = "/api/alerts/subscriptions", tag = "subscriptions", request_body = Vec<alertkit_core::Subscription>,
    responses((status = 200, description = "Replaced", body = Vec<alertkit_core::Subscription>), (status = 400, description = "Malformed request", body = crate::http::openapi::ErrorDoc), (status = 413, description = "Body over 64 KiB", body = crate::http::openapi::ErrorDoc), (status = 422, description = "Invalid content", body = crate::http::openapi::ErrorDoc))
)]
pub(crate) async fn set_subscriptions(
    State(s): State<AppState>,
    Authed(p): Authed,
    body: Result<Json<Vec<Subscription>>, JsonRejection>,
) -> ApiResult<Response> {
    let Json(subs) = body?;
    Ok(Json(s.kit.set_subscriptions(&p, subs).await?).into_response())
}
