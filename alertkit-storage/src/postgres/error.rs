//! PostgreSQL errors → alertkit error kinds.

use alertkit_core::Error;

const BACKEND: &str = "postgres";

/// Maps an sqlx error to the kind a caller can act on.
pub(super) fn map_err(e: sqlx::Error) -> Error {
    match &e {
        sqlx::Error::RowNotFound => Error::not_found("row"),
        sqlx::Error::PoolTimedOut => {
            Error::Unavailable("postgres: no connection available in time".into())
        }
        sqlx::Error::PoolClosed => Error::Unavailable("postgres: the pool is closed".into()),
        sqlx::Error::Io(io) => Error::Unavailable(format!("postgres: {io}")),
        sqlx::Error::Tls(t) => Error::Unavailable(format!("postgres: TLS: {t}")),
        // The link broke mid-conversation (a server or proxy closing
        // connections as it restarts answers a connect with nothing):
        // retryable, like an I/O error.
        sqlx::Error::Protocol(p) => Error::Unavailable(format!("postgres: {p}")),
        sqlx::Error::WorkerCrashed => {
            Error::Unavailable("postgres: the connection's worker stopped".into())
        }
        sqlx::Error::Database(db) => match db.code().as_deref() {
            // unique_violation
            Some("23505") => Error::Conflict(db.message().to_owned()),
            // bad text encoding (NUL), invalid text representation,
            // value too long, index row too large
            Some("22021" | "22P02" | "22001" | "54000") => Error::invalid(db.message().to_owned()),
            // serialization failure, deadlock, too many connections, shutting down, cannot connect now
            Some("40001" | "40P01" | "53300" | "57P01" | "57P02" | "57P03") => {
                Error::Unavailable(format!("postgres: {}", db.message()))
            }
            _ => Error::backend(BACKEND, e),
        },
        _ => Error::backend(BACKEND, e),
    }
}

/// The `?`-friendly form of [`map_err`].
pub(super) trait PgResultExt<T> {
    /// Maps the error.
    fn pg(self) -> alertkit_core::Result<T>;
}

impl<T> PgResultExt<T> for Result<T, sqlx::Error> {
    fn pg(self) -> alertkit_core::Result<T> {
        self.map_err(map_err)
    }
}
