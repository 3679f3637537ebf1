//! Configuration and connection of the MongoDB store.

use std::fmt;

use alertkit_core::{Error, Result};
use mongodb::Client;
use mongodb::options::ClientOptions;

use super::MongoAlertStore;
use super::error::MongoResultExt;

/// Builds a [`MongoAlertStore`].
///
/// ```no_run
/// # async fn demo() -> alertkit_core::Result<()> {
/// use alertkit_storage::MongoAlertStore;
///
/// let store = MongoAlertStore::builder("mongodb://127.0.0.1:27017")
///     .database("alerts")
///     .connect()
///     .await?;
/// store.init().await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct MongoBuilder {
    url: String,
    database: String,
    max_pool_size: u32,
}

impl fmt::Debug for MongoBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MongoBuilder")
            .field("url", &"<redacted>")
            .field("database", &self.database)
            .field("max_pool_size", &self.max_pool_size)
            .finish()
    }
}

impl MongoBuilder {
    /// A builder for the deployment at `url` (`mongodb://host:port`).
    pub fn new(url: impl Into<String>) -> Self {
        MongoBuilder {
            url: url.into(),
            database: "alertkit".into(),
            max_pool_size: 10,
        }
    }

    /// A builder for `MONGODB_URL`; [`Error::Invalid`] when it is unset.
    pub fn from_env() -> Result<Self> {
        std::env::var("MONGODB_URL")
            .map(Self::new)
            .map_err(|_| Error::invalid("MONGODB_URL is not set"))
    }

    /// The database holding alertkit's collections (default `alertkit`).
    pub fn database(mut self, name: impl Into<String>) -> Self {
        self.database = name.into();
        self
    }

    /// Largest connection pool (default 10).
    pub fn max_pool_size(mut self, n: u32) -> Self {
        self.max_pool_size = n;
        self
    }

    /// Connects (lazily). Call [`MongoAlertStore::init`] once before use.
    pub async fn connect(self) -> Result<MongoAlertStore> {
        let name = &self.database;
        if name.is_empty()
            || name.len() > 63
            || name
                .chars()
                .any(|c| matches!(c, '/' | '\\' | '.' | ' ' | '"' | '$' | '\0'))
        {
            return Err(Error::invalid(
                "database name must be 1 to 63 characters without / \\ . space \" $ or NUL",
            ));
        }
        let mut options = ClientOptions::parse(&self.url)
            .await
            .map_err(|e| Error::invalid(format!("MONGODB_URL: {e}")))?;
        options.max_pool_size = Some(self.max_pool_size);
        options.app_name = Some("alertkit".into());
        let client = Client::with_options(options).mongo()?;
        let db = client.database(&self.database);
        Ok(MongoAlertStore { client, db })
    }
}
