//! What an HTTP answer means for a delivery (shared by the Slack and
//! webhook notifiers).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
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

/// Whether an address is on the public internet: not loopback, private
/// (RFC 1918, unique-local), link-local (cloud metadata), shared (CGNAT),
/// unspecified, multicast or broadcast.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_multicast()
                || v4.is_broadcast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b)))
        }
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_public(IpAddr::V4(v4)),
            None => {
                !(v6.is_loopback()
                    || v6.is_unspecified()
                    || v6.is_multicast()
                    || v6.is_unique_local()
                    || v6.is_unicast_link_local())
            }
        },
    }
}

/// Refuses, as a permanent error, a URL whose host is (or resolves only
/// to) a non-public address: user-set webhook URLs must not reach the
/// server's own network. The client's resolver ([`client`]) enforces the
/// same at connect time, so a name that changes its answer (DNS rebinding)
/// gains nothing.
pub async fn check_public(what: &str, url: &reqwest::Url) -> Result<(), Error> {
    let host = url
        .host_str()
        .ok_or_else(|| Error::invalid(format!("{what} URL has no host")))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port = url.port_or_known_default().unwrap_or(443);
    let addrs: Vec<SocketAddr> = match host.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => tokio::net::lookup_host((host, port))
            .await
            .map_err(|e| Error::Unavailable(format!("{what}: resolving {host}: {e}")))?
            .collect(),
    };
    if addrs.iter().any(|a| is_public(a.ip())) {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "{what} URL points at a private or loopback address ({host}); not sent"
        )))
    }
}

/// A resolver that keeps only public addresses.
struct PublicOnly;

impl reqwest::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|a| is_public(a.ip()))
                .collect();
            if addrs.is_empty() {
                return Err(format!("{host} has no public address").into());
            }
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// A client with bounded timeouts and no redirects; unless
/// `allow_private`, it connects only to public addresses.
pub fn client(timeout: Duration, allow_private: bool) -> Result<reqwest::Client, Error> {
    let mut b = reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(5)))
        .redirect(reqwest::redirect::Policy::none());
    if !allow_private {
        b = b.dns_resolver(Arc::new(PublicOnly));
    }
    b.build().map_err(|e| Error::backend("http", e))
}
