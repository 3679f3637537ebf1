//! Configuration and opening of the SQLite store.

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use alertkit_core::{Error, Result};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use super::SqliteAlertStore;
use super::error::map_err;

/// Builds a [`SqliteAlertStore`]: one database file, WAL mode.
///
/// ```no_run
/// # async fn demo() -> alertkit_core::Result<()> {
/// use alertkit_storage::SqliteAlertStore;
///
/// let store = SqliteAlertStore::builder("alertkit.db").connect().await?;
/// store.migrate().await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct SqliteBuilder {
    target: Target,
    max_connections: u32,
    busy_timeout: Duration,
}

#[derive(Debug, Clone)]
enum Target {
    Path(PathBuf),
    Url(String),
}

impl SqliteBuilder {
    /// A builder for the database file at `path` (created when missing).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        SqliteBuilder {
            target: Target::Path(path.into()),
            max_connections: 4,
            busy_timeout: Duration::from_secs(5),
        }
    }

    /// A builder for a `sqlite:` URL (`sqlite://alertkit.db?mode=rwc`).
    pub fn from_url(url: impl Into<String>) -> Self {
        SqliteBuilder {
            target: Target::Url(url.into()),
            ..Self::new("")
        }
    }

    /// Largest pool size (default 4; WAL lets readers run beside the one writer).
    pub fn max_connections(mut self, n: u32) -> Self {
        self.max_connections = n;
        self
    }

    /// How long a statement waits for the write lock before failing with
    /// [`Error::Unavailable`] (default 5 s).
    pub fn busy_timeout(mut self, timeout: Duration) -> Self {
        self.busy_timeout = timeout;
        self
    }

    /// Opens the database. Call [`SqliteAlertStore::migrate`] once before use.
    pub async fn connect(self) -> Result<SqliteAlertStore> {
        if self.max_connections == 0 {
            return Err(Error::invalid("max_connections must be at least 1"));
        }
        let options = match &self.target {
            Target::Path(p) => SqliteConnectOptions::new().filename(p),
            Target::Url(u) => SqliteConnectOptions::from_str(u)
                .map_err(|_| Error::invalid("not a valid sqlite: URL"))?,
        }
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .foreign_keys(true)
        .busy_timeout(self.busy_timeout);
        let pool = SqlitePoolOptions::new()
            .max_connections(self.max_connections)
            .acquire_timeout(self.busy_timeout)
            .connect_with(options)
            .await
            .map_err(map_err)?;
        Ok(SqliteAlertStore { pool })
    }
}
