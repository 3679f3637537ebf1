//! MongoDB errors → alertkit error kinds.

use alertkit_core::Error;
use mongodb::error::{ErrorKind, WriteFailure};

const BACKEND: &str = "mongodb";

/// Duplicate key.
pub(super) const DUPLICATE_KEY: i32 = 11000;
/// Write conflict inside a transaction.
const WRITE_CONFLICT: i32 = 112;

/// The server error code, when there is one.
pub(super) fn code(e: &mongodb::error::Error) -> Option<i32> {
    match e.kind.as_ref() {
        ErrorKind::Write(WriteFailure::WriteError(w)) => Some(w.code),
        ErrorKind::Command(c) => Some(c.code),
        ErrorKind::InsertMany(m) => m
            .write_errors
            .as_ref()
            .and_then(|w| w.first())
            .map(|w| w.code),
        _ => None,
    }
}

/// Whether the operation may succeed if the whole transaction is retried.
pub(super) fn is_transient(e: &mongodb::error::Error) -> bool {
    e.contains_label("TransientTransactionError")
        || matches!(code(e), Some(DUPLICATE_KEY | WRITE_CONFLICT))
}

/// Whether a failed `commitTransaction` may be run again from the start:
/// a transient error, or `InternalError` (code 1), which SecantusDB answers
/// for a write conflict found at commit (it rolled the transaction back;
/// MongoDB reports such conflicts as transient `WriteConflict`s). A retry
/// of a commit that did apply would hit the unique ids it wrote, so it
/// fails rather than writing twice.
pub(super) fn commit_may_retry(e: &mongodb::error::Error) -> bool {
    is_transient(e) || code(e) == Some(1)
}

/// Maps a driver error to the kind a caller can act on.
pub(super) fn map_err(e: mongodb::error::Error) -> Error {
    if code(&e) == Some(DUPLICATE_KEY) {
        return Error::Conflict(format!("mongodb: duplicate key: {e}"));
    }
    if e.contains_label("TransientTransactionError") || code(&e) == Some(WRITE_CONFLICT) {
        return Error::Unavailable(format!("mongodb: {e}"));
    }
    match e.kind.as_ref() {
        ErrorKind::Io(_)
        | ErrorKind::ServerSelection { .. }
        | ErrorKind::ConnectionPoolCleared { .. }
        | ErrorKind::DnsResolve { .. } => Error::Unavailable(format!("mongodb: {e}")),
        ErrorKind::InvalidArgument { .. } => Error::invalid(format!("mongodb: {e}")),
        _ => Error::backend(BACKEND, e),
    }
}

/// The `?`-friendly form of [`map_err`].
pub(super) trait MongoResultExt<T> {
    /// Maps the error.
    fn mongo(self) -> alertkit_core::Result<T>;
}

impl<T> MongoResultExt<T> for Result<T, mongodb::error::Error> {
    fn mongo(self) -> alertkit_core::Result<T> {
        self.map_err(map_err)
    }
}
