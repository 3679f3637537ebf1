//! SQLite errors → alertkit error kinds.

use alertkit_core::Error;

const BACKEND: &str = "sqlite";

/// Maps an sqlx error to the kind a caller can act on.
pub(super) fn map_err(e: sqlx::Error) -> Error {
    match &e {
        sqlx::Error::RowNotFound => Error::not_found("row"),
        sqlx::Error::PoolTimedOut => {
            Error::Unavailable("sqlite: no connection available in time".into())
        }
        sqlx::Error::PoolClosed => Error::Unavailable("sqlite: the pool is closed".into()),
        sqlx::Error::Io(io) => Error::Unavailable(format!("sqlite: {io}")),
        sqlx::Error::Database(db) => match db.code().as_deref() {
            // SQLITE_CONSTRAINT_UNIQUE, SQLITE_CONSTRAINT_PRIMARYKEY
            Some("2067" | "1555") => Error::Conflict(db.message().to_owned()),
            // SQLITE_BUSY, SQLITE_LOCKED (and their extended codes)
            Some("5" | "6" | "261" | "262" | "517") => {
                Error::Unavailable(format!("sqlite: {}", db.message()))
            }
            // SQLITE_TOOBIG
            Some("18") => Error::invalid(db.message().to_owned()),
            _ => Error::backend(BACKEND, e),
        },
        _ => Error::backend(BACKEND, e),
    }
}

/// The `?`-friendly form of [`map_err`].
pub(super) trait LiteResultExt<T> {
    /// Maps the error.
    fn lite(self) -> alertkit_core::Result<T>;
}

impl<T> LiteResultExt<T> for Result<T, sqlx::Error> {
    fn lite(self) -> alertkit_core::Result<T> {
        self.map_err(map_err)
    }
}
