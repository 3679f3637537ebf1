//! Configuration and connection of the PostgreSQL store.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use alertkit_core::{Error, Result};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use super::PostgresAlertStore;
use super::error::map_err;

/// Builds a [`PostgresAlertStore`].
///
/// ```no_run
/// # async fn demo() -> alertkit_core::Result<()> {
/// use alertkit_storage::PostgresAlertStore;
///
/// let store = PostgresAlertStore::builder("postgres://postgres@127.0.0.1/app")
///     .schema("alerts")
///     .max_connections(20)
///     .connect()
///     .await?;
/// store.migrate().await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct PostgresBuilder {
    url: String,
    schema: String,
    max_connections: u32,
    acquire_timeout: Duration,
}

impl fmt::Debug for PostgresBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresBuilder")
            .field("url", &"<redacted>")
            .field("schema", &self.schema)
            .field("max_connections", &self.max_connections)
            .field("acquire_timeout", &self.acquire_timeout)
            .finish()
    }
}

/// Longest schema name PostgreSQL accepts.
const MAX_SCHEMA_LEN: usize = 63;

impl PostgresBuilder {
    /// A builder for the database at `url` (`postgres://user@host:port/db`).
    pub fn new(url: impl Into<String>) -> Self {
        PostgresBuilder {
            url: url.into(),
            schema: "alertkit".into(),
            max_connections: 10,
            acquire_timeout: Duration::from_secs(5),
        }
    }

    /// A builder for `DATABASE_URL`; [`Error::Invalid`] when it is unset.
    pub fn from_env() -> Result<Self> {
        std::env::var("DATABASE_URL")
            .map(Self::new)
            .map_err(|_| Error::invalid("DATABASE_URL is not set"))
    }

    /// The schema holding alertkit's tables (default `alertkit`): lets tests
    /// and tenants share one database. Lowercase letters, digits and `_`,
    /// starting with a letter or `_`, at most 63 characters.
    pub fn schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = schema.into();
        self
    }

    /// Largest pool size (default 10).
    pub fn max_connections(mut self, n: u32) -> Self {
        self.max_connections = n;
        self
    }

    /// How long to wait for a pooled connection before failing with
    /// [`Error::Unavailable`] (default 5 s).
    pub fn acquire_timeout(mut self, timeout: Duration) -> Self {
        self.acquire_timeout = timeout;
        self
    }

    /// Opens the pool (connecting lazily) with `search_path` set to the schema.
    /// Call [`PostgresAlertStore::migrate`] once before use.
    pub async fn connect(self) -> Result<PostgresAlertStore> {
        validate_schema(&self.schema)?;
        if self.max_connections == 0 {
            return Err(Error::invalid("max_connections must be at least 1"));
        }
        let options = PgConnectOptions::from_str(&self.url)
            .map_err(|_| Error::invalid("DATABASE_URL is not a valid PostgreSQL URL"))?
            .options([("search_path", self.schema.as_str())]);
        let pool = PgPoolOptions::new()
            .max_connections(self.max_connections)
            .acquire_timeout(self.acquire_timeout)
            .connect_with(options)
            .await
            .map_err(map_err)?;
        Ok(PostgresAlertStore {
            pool,
            schema: self.schema,
        })
    }
}

pub(super) fn validate_schema(schema: &str) -> Result<()> {
    let ok = !schema.is_empty()
        && schema.len() <= MAX_SCHEMA_LEN
        && schema
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && schema
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "schema `{}` must be lowercase letters, digits and _, at most 63 characters",
            schema.chars().take(64).collect::<String>()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_names() {
        for ok in ["alertkit", "_t1", "tenant_42"] {
            assert!(validate_schema(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "1abc",
            "Upper",
            "a-b",
            "a;drop",
            "a\"b",
            &"x".repeat(64),
        ] {
            assert!(validate_schema(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn debug_hides_the_url() {
        let b = PostgresBuilder::new("postgres://user:secret@db/app");
        assert!(!format!("{b:?}").contains("secret"));
    }
}
