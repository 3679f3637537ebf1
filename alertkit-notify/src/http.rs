//! What an HTTP answer means for a delivery (shared by the Slack and
//! webhook notifiers).

use std::time::Duration;

use alertkit_core::Error;

/// The longest `Retry-After` honoured; a provider asking for more is
/// retried after this (the retry schedule bounds the rest).
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// Reads a `Retry-After` header given in seconds.
pub fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(|s| Duration::from_secs(s).min(MAX_RETRY_AFTER))
}

/// The error class of a non-2xx status: 429 is rate limited (with its
/// `Retry-After`), 408 and 5xx are retryable, every other 4xx is permanent.
pub fn status_error(
    what: &str,
    status: reqwest::StatusCode,
    retry: Option<Duration>,
    body: &str,
) -> Error {
    let body: String = body.chars().take(200).collect();
    if status == reqwest::StatusCode::TOO_MANY_REQUESTS {
        Error::RateLimited { retry_after: retry }
    } else if status.is_server_error() || status == reqwest::StatusCode::REQUEST_TIMEOUT {
        Error::Unavailable(format!("{what} answered {status}: {body}"))
    } else {
        Error::invalid(format!("{what} refused the message ({status}): {body}"))
    }
}

/// The error class of a request that got no answer: retryable.
pub fn send_error(what: &str, e: &reqwest::Error) -> Error {
    if e.is_timeout() {
        Error::Timeout(format!("{what}: {e}"))
    } else if e.is_builder() {
        Error::invalid(format!("{what}: {e}"))
    } else {
        Error::Unavailable(format!("{what}: {e}"))
    }
}

/// Only `http` and `https` URLs are sent to.
pub fn check_url(what: &str, url: &str) -> Result<reqwest::Url, Error> {
    let parsed = reqwest::Url::parse(url)
        .map_err(|e| Error::invalid(format!("{what} URL is not valid: {e}")))?;
    match parsed.scheme() {
        "http" | "https" => Ok(parsed),
        s => Err(Error::invalid(format!(
            "{what} URL scheme `{s}` is not http(s)"
        ))),
    }
}

/// A client with bounded timeouts.
pub fn client(timeout: Duration) -> Result<reqwest::Client, Error> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(5)))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| Error::backend("http", e))
}
