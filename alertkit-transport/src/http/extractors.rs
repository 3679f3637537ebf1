//! Request extractors: the authenticated caller, query parameters, ETags.

use alertkit_core::{
    AlertFilter, AlertId, AlertQuery, AlertStatus, Cursor, Error, Principal, Severity,
};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use std::hash::{DefaultHasher, Hash, Hasher};

use super::*;

// ---- authentication -------------------------------------------------------------

/// The authenticated caller.
pub(crate) struct Authed(pub(crate) Principal);

/// The caller, if the request carries a token (WebSocket upgrades may
/// authenticate with their first message instead).
pub(crate) struct MaybeAuthed(pub(crate) Option<Principal>);

/// The bearer token of the `Authorization` header.
fn header_token(parts: &Parts) -> Option<String> {
    parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::to_owned)
}

/// The `?token=` of the URL (percent-decoded).
fn query_token(parts: &Parts) -> Option<String> {
    let axum::extract::Query(params) =
        axum::extract::Query::<Vec<(String, String)>>::try_from_uri(&parts.uri).ok()?;
    params
        .into_iter()
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v)
}

/// Authenticates `token` and counts the request against the caller's limit.
async fn authenticate(state: &AppState, token: &str) -> ApiResult<Principal> {
    let principal = state.auth.authenticate(token).await?;
    if let Some(limiter) = &state.limiter {
        limiter.check(&principal.user_id)?;
    }
    Ok(principal)
}

impl FromRequestParts<AppState> for MaybeAuthed {
    type Rejection = ApiError;

    /// WebSocket upgrades: a header token, or `?token=` (browsers cannot set
    /// headers on a WebSocket), or none (first-message auth).
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> ApiResult<Self> {
        match header_token(parts).or_else(|| query_token(parts)) {
            None => Ok(MaybeAuthed(None)),
            Some(token) => authenticate(state, &token)
                .await
                .map(|p| MaybeAuthed(Some(p))),
        }
    }
}

impl FromRequestParts<AppState> for Authed {
    type Rejection = ApiError;

    /// REST: the `Authorization` header only. A token in the URL would end
    /// up in proxy and access logs and browser history, so it is refused.
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> ApiResult<Self> {
        if query_token(parts).is_some() {
            return Err(Error::Unauthenticated(
                "tokens in the URL are accepted only on WebSocket upgrades; \
                 send `Authorization: Bearer <token>`"
                    .into(),
            )
            .into());
        }
        let token = header_token(parts)
            .ok_or_else(|| Error::Unauthenticated("a bearer token is required".into()))?;
        authenticate(state, &token).await.map(Authed)
    }
}

// ---- query parsing ------------------------------------------------------------------

pub(crate) fn values<'a>(params: &'a [(String, String)], names: &[&str]) -> Vec<&'a str> {
    params
        .iter()
        .filter(|(k, _)| names.contains(&k.as_str()))
        .flat_map(|(_, v)| v.split(','))
        .filter(|v| !v.is_empty())
        .collect()
}

pub(crate) fn one<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .rev()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

pub(crate) fn time_param(
    params: &[(String, String)],
    name: &str,
) -> ApiResult<Option<DateTime<Utc>>> {
    one(params, name)
        .map(|v| {
            DateTime::parse_from_rfc3339(v)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| ApiError::bad_request(format!("`{name}` must be an RFC 3339 time")))
        })
        .transpose()
}

pub(crate) fn bool_param(params: &[(String, String)], name: &str) -> ApiResult<bool> {
    match one(params, name) {
        None => Ok(false),
        Some("true" | "1" | "") => Ok(true),
        Some("false" | "0") => Ok(false),
        Some(_) => Err(ApiError::bad_request(format!(
            "`{name}` must be true or false"
        ))),
    }
}

pub(crate) fn filter_from(params: &[(String, String)]) -> ApiResult<AlertFilter> {
    let f = parse_filter(params)?;
    f.validate()
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    Ok(f)
}

fn parse_filter(params: &[(String, String)]) -> ApiResult<AlertFilter> {
    let severities = values(params, &["severity"])
        .into_iter()
        .filter(|s| !s.trim().is_empty())
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

pub(crate) fn query_from(params: &[(String, String)]) -> ApiResult<AlertQuery> {
    let limit = one(params, "limit")
        .map(|l| {
            l.parse::<u32>()
                .map_err(|_| ApiError::bad_request("`limit` must be a number"))
        })
        .transpose()?;
    let q = AlertQuery {
        filter: filter_from(params)?,
        limit,
        cursor: one(params, "cursor")
            .filter(|c| !c.is_empty())
            .map(Cursor::from_raw),
    };
    // The cursor is the engine's to open (it checks its signature).
    AlertQuery {
        cursor: None,
        ..q.clone()
    }
    .validate()
    .map_err(|e| ApiError::bad_request(e.to_string()))?;
    Ok(q)
}

pub(crate) fn alert_id(raw: &str) -> ApiResult<AlertId> {
    raw.parse()
        .map_err(|_| Error::not_found(format!("alert {raw}")).into())
}

// ---- caching ------------------------------------------------------------------------------

/// A JSON response with a weak ETag of its body; `304 Not Modified` when the
/// request's `If-None-Match` already names it (polling clients save the body).
pub(crate) fn with_etag(headers: &HeaderMap, value: &impl serde::Serialize) -> ApiResult<Response> {
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

pub(crate) fn rule_id(raw: &str) -> ApiResult<uuid::Uuid> {
    uuid::Uuid::parse_str(raw).map_err(|_| Error::not_found(format!("rule {raw}")).into())
}
