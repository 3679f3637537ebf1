//! What the server's own routes (forecast, reports) share: JSON errors in
//! the API's shape, and the permission check.

use alertkit::{Permission, Principal};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde_json::json;

/// `{"error": {"code", "message"}}` with `status`.
pub fn error(status: StatusCode, code: &str, message: impl std::fmt::Display) -> Response {
    (
        status,
        Json(json!({ "error": { "code": code, "message": message.to_string() } })),
    )
        .into_response()
}

/// A library error as the API answers it.
pub fn from_core(e: alertkit::Error) -> Response {
    alertkit::transport::http::ApiError::from(e).into_response()
}

fn unauthenticated() -> Response {
    from_core(alertkit::Error::Unauthenticated(
        "send a bearer token in the Authorization header".into(),
    ))
}

/// `None` when the caller holds `perm`; else the 401 or 403 to send.
pub fn denied(p: Option<Extension<Principal>>, perm: Permission) -> Option<Response> {
    match p {
        Some(Extension(p)) => p.require(perm).err().map(from_core),
        None => Some(unauthenticated()),
    }
}

/// The authenticated caller (put there by the authentication layer); a
/// request without one is answered 401.
pub struct Caller(pub Principal);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Caller {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Principal>()
            .cloned()
            .map(Caller)
            .ok_or_else(unauthenticated)
    }
}
