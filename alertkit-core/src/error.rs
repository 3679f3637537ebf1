//! The one error type of alertkit, with kinds a caller can act on.

use std::time::Duration;

/// The result type used throughout alertkit.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Every failure alertkit reports, grouped by what the caller can do about it.
///
/// Backends keep their own error types private and map them into these kinds,
/// so callers never see `sqlx`, `redis` or `reqwest` types.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The thing asked for does not exist, or the caller may not see it.
    #[error("not found: {0}")]
    NotFound(String),
    /// The request conflicts with the current state (a duplicate rule name, say).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The input is invalid; the message says which field and why.
    #[error("invalid input: {0}")]
    Invalid(String),
    /// The caller is known but lacks the permission needed.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// The caller could not be identified (missing, wrong or expired credentials).
    #[error("unauthenticated: {0}")]
    Unauthenticated(String),
    /// The caller, or alertkit towards a provider, is sending too fast.
    #[error("rate limited{}", retry_after.map(|d| format!(", retry after {d:?}")).unwrap_or_default())]
    RateLimited {
        /// How long to wait before trying again, when known.
        retry_after: Option<Duration>,
    },
    /// A dependency is down or overloaded; trying again later may succeed.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// An operation took too long; trying again may succeed.
    #[error("timed out: {0}")]
    Timeout(String),
    /// A backend failed in a way that has no better kind.
    #[error("{backend} backend error: {source}")]
    Backend {
        /// The backend's name (`memory`, `postgres`, `redis`, …).
        backend: &'static str,
        /// The underlying error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
}

/// The kind of an [`Error`], without its payload; handy for matching and for
/// wire error codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// See [`Error::NotFound`].
    NotFound,
    /// See [`Error::Conflict`].
    Conflict,
    /// See [`Error::Invalid`].
    Invalid,
    /// See [`Error::Forbidden`].
    Forbidden,
    /// See [`Error::Unauthenticated`].
    Unauthenticated,
    /// See [`Error::RateLimited`].
    RateLimited,
    /// See [`Error::Unavailable`].
    Unavailable,
    /// See [`Error::Timeout`].
    Timeout,
    /// See [`Error::Backend`].
    Backend,
}

impl ErrorKind {
    /// The stable, snake_case code used on the wire (`{"error":{"code":…}}`).
    pub fn code(self) -> &'static str {
        match self {
            ErrorKind::NotFound => "not_found",
            ErrorKind::Conflict => "conflict",
            ErrorKind::Invalid => "invalid",
            ErrorKind::Forbidden => "forbidden",
            ErrorKind::Unauthenticated => "unauthenticated",
            ErrorKind::RateLimited => "rate_limited",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Backend => "backend",
        }
    }
}

impl Error {
    /// Shorthand for [`Error::Invalid`].
    pub fn invalid(msg: impl Into<String>) -> Self {
        Error::Invalid(msg.into())
    }

    /// Shorthand for [`Error::NotFound`].
    pub fn not_found(what: impl Into<String>) -> Self {
        Error::NotFound(what.into())
    }

    /// Shorthand for [`Error::Forbidden`].
    pub fn forbidden(msg: impl Into<String>) -> Self {
        Error::Forbidden(msg.into())
    }

    /// Wraps a backend's own error.
    pub fn backend(
        backend: &'static str,
        source: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
    ) -> Self {
        Error::Backend {
            backend,
            source: source.into(),
        }
    }

    /// The kind of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::NotFound(_) => ErrorKind::NotFound,
            Error::Conflict(_) => ErrorKind::Conflict,
            Error::Invalid(_) => ErrorKind::Invalid,
            Error::Forbidden(_) => ErrorKind::Forbidden,
            Error::Unauthenticated(_) => ErrorKind::Unauthenticated,
            Error::RateLimited { .. } => ErrorKind::RateLimited,
            Error::Unavailable(_) => ErrorKind::Unavailable,
            Error::Timeout(_) => ErrorKind::Timeout,
            Error::Backend { .. } => ErrorKind::Backend,
        }
    }

    /// Whether the same operation may succeed if tried again later
    /// (rate limits, unavailable dependencies, timeouts).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Error::RateLimited { .. } | Error::Unavailable(_) | Error::Timeout(_)
        )
    }

    /// How long to wait before retrying, when the failure said so.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::RateLimited { retry_after } => *retry_after,
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retryable_kinds() {
        assert!(
            Error::RateLimited {
                retry_after: Some(Duration::from_secs(3))
            }
            .is_retryable()
        );
        assert!(Error::Unavailable("db".into()).is_retryable());
        assert!(Error::Timeout("smtp".into()).is_retryable());
        assert!(!Error::invalid("title").is_retryable());
        assert!(!Error::not_found("x").is_retryable());
        assert!(!Error::backend("memory", "boom").is_retryable());
    }

    #[test]
    fn retry_after_and_codes() {
        let e = Error::RateLimited {
            retry_after: Some(Duration::from_secs(7)),
        };
        assert_eq!(e.retry_after(), Some(Duration::from_secs(7)));
        assert_eq!(e.kind().code(), "rate_limited");
        assert_eq!(e.to_string(), "rate limited, retry after 7s");
        assert_eq!(Error::invalid("x").retry_after(), None);
        assert_eq!(Error::Conflict("x".into()).kind().code(), "conflict");
    }
}
