//! The SQLite store (feature `sqlite`): the reference server's zero-config
//! default. One file, WAL mode, bundled SQLite (no system library).
//!
//! Same tables and behaviour as the PostgreSQL store. Differences of form:
//! times are Unix milliseconds, ids UUID blobs, string lists JSON arrays
//! (matched with `json_each`). Writes that read before they write (dedup,
//! outbox claims) run in `BEGIN IMMEDIATE` transactions, so SQLite's single
//! writer serialises them and concurrent raises of one key make one alert.

mod alerts;
mod config;
mod error;
mod jobs;
mod outbox;
mod raise;
mod reports;
mod rows;
mod rules;
mod series;

use crate::common::{
    audience_from, audience_strings, corrupt, count_from, pair_with_alerts, parse, set_seqs,
    severity_from, to_i32, to_u64, touched, viewer_targets,
};
use alertkit_core::query::COUNT_CAP;
use alertkit_core::{
    Alert, AlertFilter, AlertId, AlertQuery, AlertRule, AlertStore, AlertView, ClaimedDelivery,
    Delivery, DeliveryOutcome, DeliveryStatus, DeliveryTarget, Error, JobRun, JobStore, NewAlert,
    Outbox, Page, Raised, Receipt, Resource, Result, RuleStore, Severity, Stats, Subscription,
    Viewer,
};
use alertkit_core::{Recipient, Route};
use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
pub use config::SqliteBuilder;
use error::LiteResultExt;
use sqlx::sqlite::{SqlitePool, SqliteRow};
use sqlx::{QueryBuilder, Row, Sqlite, SqliteConnection};
use std::collections::HashMap;
use uuid::Uuid;

use {raise::*, rows::*};

const BACKEND: &str = "sqlite";

/// An [`AlertStore`] in one SQLite file. Cheap to clone (a pool handle).
#[derive(Debug, Clone)]
pub struct SqliteAlertStore {
    pool: SqlitePool,
}

impl SqliteAlertStore {
    /// Starts building a store for the file at `path`.
    pub fn builder(path: impl Into<std::path::PathBuf>) -> SqliteBuilder {
        SqliteBuilder::new(path)
    }

    /// Applies pending migrations. Idempotent.
    pub async fn migrate(&self) -> Result<()> {
        sqlx::migrate!("./migrations/sqlite")
            .run(&self.pool)
            .await
            .map_err(|e| Error::backend(BACKEND, e))
    }

    /// Closes the pool.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}
