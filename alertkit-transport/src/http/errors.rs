//! Error responses: every failure is `{"error":{"code","message"}}` JSON.

use alertkit_core::{Error, ErrorKind};
use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::*;

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
    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            code: "bad_request",
            message: message.into(),
            retry_after: None,
        }
    }

    /// 503 `unavailable` with `Retry-After` (whole seconds, at least 1).
    pub(crate) fn unavailable_for(message: impl Into<String>, wait: std::time::Duration) -> Self {
        ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            code: "unavailable",
            message: message.into(),
            retry_after: Some(wait.as_secs_f64().ceil().max(1.0) as u64),
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
            StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError {
                status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
                code: "unsupported_media_type",
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

pub(crate) type ApiResult<T> = Result<T, ApiError>;

/// Any route not served: a JSON 404.
pub(crate) async fn not_found() -> ApiError {
    ApiError {
        status: StatusCode::NOT_FOUND,
        code: "not_found",
        message: "no such route".into(),
        retry_after: None,
    }
}

/// The wire code of an error status.
fn code_for(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "bad_request",
        401 => "unauthenticated",
        403 => "forbidden",
        404 => "not_found",
        405 => "method_not_allowed",
        409 => "conflict",
        413 => "too_large",
        415 => "unsupported_media_type",
        422 => "invalid",
        429 => "rate_limited",
        503 => "unavailable",
        _ if status.is_server_error() => "internal",
        _ => "error",
    }
}

/// Gives every error response the JSON error body, also those axum writes
/// itself (rejected paths, queries and bodies, 405, 413 from the body
/// limit): `{"error":{"code","message"}}`. Other headers (`Allow`,
/// `Retry-After`) are kept.
pub(crate) async fn json_errors(res: Response) -> Response {
    let status = res.status();
    let is_json = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return res;
    }
    let (mut parts, body) = res.into_parts();
    let text = axum::body::to_bytes(body, 4096).await.unwrap_or_default();
    let mut message = String::from_utf8_lossy(&text).trim().to_owned();
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        message = format!("request body over {BODY_LIMIT} bytes");
    } else if status.is_server_error() {
        message = "internal error".into();
    } else if message.is_empty() {
        message = status.canonical_reason().unwrap_or("error").to_owned();
    }
    let body = json!({ "error": { "code": code_for(status), "message": message } }).to_string();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Response::from_parts(parts, axum::body::Body::from(body))
}

/// A query the engine refused ([`Error::Invalid`]) is a malformed request
/// (400), like the same mistake caught while parsing; other errors keep
/// their status.
pub(crate) fn query_error(e: Error) -> ApiError {
    if e.kind() == ErrorKind::Invalid {
        ApiError::bad_request(e.to_string())
    } else {
        e.into()
    }
}
