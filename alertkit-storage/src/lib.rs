//! [`AlertStore`](alertkit_core::AlertStore) backends for alertkit.
//!
//! | backend | type | feature | status |
//! |---|---|---|---|
//! | in-memory | [`MemoryAlertStore`] | always | the reference semantics; tests, benches, demos |
//! | SQLite | — | `sqlite` | planned |
//! | PostgreSQL | — | `postgres` | planned |
//! | MongoDB | — | `mongodb` | planned |
//!
//! Every backend passes the conformance suite in `alertkit-testkit`.
//!
//! ```
//! use std::sync::Arc;
//! use alertkit_core::AlertStore;
//! use alertkit_storage::MemoryAlertStore;
//!
//! let store: Arc<dyn AlertStore> = Arc::new(MemoryAlertStore::new());
//! assert_eq!(store.backend(), "memory");
//! ```

#[cfg(any(feature = "postgres", feature = "sqlite", feature = "mongodb"))]
mod common;
pub mod memory;
#[cfg(feature = "mongodb")]
pub mod mongodb;
#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "sqlite")]
pub mod sqlite;

pub use memory::MemoryAlertStore;
#[cfg(feature = "mongodb")]
pub use mongodb::{MongoAlertStore, MongoBuilder};
#[cfg(feature = "postgres")]
pub use postgres::{PostgresAlertStore, PostgresBuilder};
#[cfg(feature = "sqlite")]
pub use sqlite::{SqliteAlertStore, SqliteBuilder};
