//! Store backends for alertkit. Each implements the four store roles
//! ([`AlertStore`](alertkit_core::AlertStore), [`RuleStore`](alertkit_core::RuleStore),
//! [`Outbox`](alertkit_core::Outbox), [`JobStore`](alertkit_core::JobStore)), so
//! it is a [`Store`](alertkit_core::Store), and the forecast role
//! [`SeriesStore`](alertkit_core::SeriesStore) (points, series settings and
//! predictions, in the same database: no second one). Each is laid out by
//! concern with the same file names: `mod.rs`, `config.rs`, `error.rs`,
//! `rows.rs`, `raise.rs`, `alerts.rs`, `rules.rs`, `outbox.rs`, `jobs.rs`,
//! `series.rs`. Series instants are kept to the millisecond on SQLite and
//! MongoDB, to the microsecond on PostgreSQL.
//!
//! | backend | type | feature | notes |
//! |---|---|---|---|
//! | in-memory | [`MemoryAlertStore`] | always | the reference semantics; tests, benches, demos |
//! | SQLite | `SqliteAlertStore` | `sqlite` | one file, WAL, bundled SQLite; the zero-config default |
//! | PostgreSQL | `PostgresAlertStore` | `postgres` | schema per tenant, migrations, keyset lists, `SKIP LOCKED` outbox |
//! | MongoDB | `MongoAlertStore` | `mongodb` | needs a replica set (transactions); tested on SecantusDB |
//!
//! Every backend passes the same conformance suite (`alertkit-testkit`)
//! against a real server, each test in its own schema, file or database.
//!
//! ```
//! use std::sync::Arc;
//! use alertkit_core::Store;
//! use alertkit_storage::MemoryAlertStore;
//!
//! let store: Arc<dyn Store> = Arc::new(MemoryAlertStore::new());
//! assert_eq!(store.backend(), "memory");
//! ```
//!
//! # Behaviour shared by every backend
//!
//! - Lists are keyset-paginated on `(created_at, id)`, newest first, never
//!   OFFSET. The first page counts `total` and `unread_count`; the cursor
//!   carries them, so every later page is a single indexed query.
//! - Dedup is atomic across instances: one active alert per dedup scope
//!   (the key, the raising principal and the audience,
//!   [`Alert::dedup_scope`](alertkit_core::Alert::dedup_scope); a unique
//!   partial index), so concurrent raises of one scope make one alert whose
//!   `occurrences` counts them all, and nobody merges into someone else's.
//! - The delivery outbox is written in the raise's transaction; claims are
//!   leased and never handed to two dispatchers.
//! - Every value reaches the database as a bound parameter or a BSON value,
//!   never as SQL text or a query operator.
//! - `purge_expired` deletes in bounded batches with the alerts' receipts and
//!   deliveries.

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
