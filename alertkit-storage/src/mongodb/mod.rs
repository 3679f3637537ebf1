//! The MongoDB store (feature `mongodb`).
//!
//! Collections: `alerts`, `alert_receipts`, `alert_rules`,
//! `alert_subscriptions`, `deliveries`, `job_runs`, and the forecast series
//! `series`, `series_points`, `series_predictions`, with compound indexes
//! created by [`MongoAlertStore::init`].
//!
//! - Dedup is atomic: a unique partial index keeps one active alert per key;
//!   a raise is a transaction that find-and-modifies the active alert or
//!   inserts, and retries when a concurrent raise of the key won.
//! - Deliveries are written in the raise's transaction and claimed one by
//!   one with find-and-modify, so dispatchers never share one.
//! - Metadata, rule conditions and templates are stored as JSON text, so
//!   user keys such as `$where` are data, never operators or field paths.
//!
//! Transactions need a replica set (a one-node one is enough), as MongoDB
//! requires for multi-document transactions.

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
    audience_from, audience_strings, corrupt, in_input_order, pair_with_alerts, parse,
    severity_from, viewer_targets,
};
use alertkit_core::query::COUNT_CAP;
use alertkit_core::{
    Alert, AlertFilter, AlertId, AlertQuery, AlertRule, AlertStore, AlertView, ClaimedDelivery,
    Delivery, DeliveryOutcome, DeliveryStatus, DeliveryTarget, Error, JobRun, JobStore, Outbox,
    Page, Raised, Receipt, Resource, Result, RuleStore, Severity, Stats, Subscription, Viewer,
};
use alertkit_core::{Recipient, Route};
use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
pub use config::MongoBuilder;
use error::{DUPLICATE_KEY, MongoResultExt, code};
use futures::TryStreamExt;
use mongodb::bson::spec::BinarySubtype;
use mongodb::bson::{Binary, Bson, Document, doc};
use mongodb::options::{IndexOptions, ReturnDocument};
use mongodb::{ClientSession, Collection, IndexModel};
use std::collections::{HashMap, HashSet};
use std::time::Duration as StdDuration;
use uuid::Uuid;

use alerts::*;
use {raise::*, rows::*};

const BACKEND: &str = "mongodb";

/// An [`AlertStore`] on MongoDB. Cheap to clone (a client handle).
#[derive(Clone)]
pub struct MongoAlertStore {
    client: mongodb::Client,
    db: mongodb::Database,
}

impl std::fmt::Debug for MongoAlertStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MongoAlertStore")
            .field("database", &self.db.name())
            .finish()
    }
}

fn index(keys: Document) -> IndexModel {
    IndexModel::builder().keys(keys).build()
}

fn unique(keys: Document, partial: Option<Document>) -> IndexModel {
    let options = IndexOptions::builder()
        .unique(true)
        .partial_filter_expression(partial)
        .build();
    IndexModel::builder().keys(keys).options(options).build()
}

impl MongoAlertStore {
    /// Starts building a store for the deployment at `url`.
    pub fn builder(url: impl Into<String>) -> MongoBuilder {
        MongoBuilder::new(url)
    }

    /// The database name.
    pub fn database(&self) -> &str {
        self.db.name()
    }

    /// Creates the indexes. Idempotent.
    pub async fn init(&self) -> Result<()> {
        // Before alertkit scoped dedup by creator and audience, the key
        // alone was unique among active alerts; that index must go.
        if let Ok(names) = self.alerts().list_index_names().await
            && names.iter().any(|n| n == "dedup_key_1")
        {
            let _ = self.alerts().drop_index("dedup_key_1").await;
        }
        self.alerts()
            .create_indexes([
                index(doc! { "created_at": -1, "_id": -1 }),
                index(doc! { "audience": 1, "created_at": -1, "_id": -1 }),
                index(doc! { "alert_type": 1, "severity": 1, "created_at": -1 }),
                index(doc! { "tags": 1 }),
                index(doc! { "expires_at": 1 }),
                index(doc! { "updated_at": 1 }),
                index(doc! { "seq": 1 }),
                unique(
                    doc! { "dedup_scope": 1 },
                    Some(doc! { "status": "active", "dedup_scope": { "$type": "string" } }),
                ),
                index(doc! { "dedup_key": 1, "status": 1 }),
            ])
            .await
            .mongo()?;
        self.receipts_coll()
            .create_indexes([
                unique(doc! { "user_id": 1, "alert_id": 1 }, None),
                index(doc! { "alert_id": 1 }),
            ])
            .await
            .mongo()?;
        self.rules()
            .create_index(unique(doc! { "name": 1 }, None))
            .await
            .mongo()?;
        self.subs()
            .create_indexes([
                unique(doc! { "user_id": 1, "alert_type": 1 }, None),
                index(doc! { "alert_type": 1 }),
            ])
            .await
            .mongo()?;
        self.deliveries_coll()
            .create_indexes([
                unique(
                    doc! { "alert_id": 1, "user_id": 1, "channel": 1, "severity": 1 },
                    None,
                ),
                index(doc! { "status": 1, "next_attempt_at": 1 }),
                index(doc! { "status": 1, "updated_at": -1, "_id": -1 }),
            ])
            .await
            .mongo()?;
        self.attempts_coll()
            .create_indexes([
                index(doc! { "delivery_id": 1, "at": 1 }),
                index(doc! { "alert_id": 1 }),
            ])
            .await
            .mongo()?;
        self.runs()
            .create_index(unique(doc! { "job_id": 1, "scheduled_at": 1 }, None))
            .await
            .mongo()?;
        self.reports_coll()
            .create_indexes([
                index(doc! { "status": 1, "due_at": 1 }),
                index(doc! { "status": 1, "updated_at": 1 }),
            ])
            .await
            .mongo()?;
        for coll in [self.points_coll(), self.predictions_coll()] {
            coll.create_indexes([
                unique(doc! { "series": 1, "at": 1 }, None),
                index(doc! { "at": 1 }),
            ])
            .await
            .mongo()?;
        }
        Ok(())
    }

    /// Drops the database. For tests and tenant removal.
    pub async fn drop_database(&self) -> Result<()> {
        self.db.drop().await.mongo()
    }
}

/// The collections, one accessor each.
impl MongoAlertStore {
    pub(super) fn alerts(&self) -> Collection<Document> {
        self.db.collection("alerts")
    }

    pub(super) fn receipts_coll(&self) -> Collection<Document> {
        self.db.collection("alert_receipts")
    }

    pub(super) fn rules(&self) -> Collection<Document> {
        self.db.collection("alert_rules")
    }

    pub(super) fn subs(&self) -> Collection<Document> {
        self.db.collection("alert_subscriptions")
    }

    pub(super) fn seq_coll(&self) -> Collection<Document> {
        self.db.collection("alert_seq")
    }

    pub(super) fn deliveries_coll(&self) -> Collection<Document> {
        self.db.collection("deliveries")
    }

    pub(super) fn series_coll(&self) -> Collection<Document> {
        self.db.collection("series")
    }

    pub(super) fn points_coll(&self) -> Collection<Document> {
        self.db.collection("series_points")
    }

    pub(super) fn predictions_coll(&self) -> Collection<Document> {
        self.db.collection("series_predictions")
    }

    pub(super) fn runs(&self) -> Collection<Document> {
        self.db.collection("job_runs")
    }

    pub(super) fn contacts_coll(&self) -> Collection<Document> {
        self.db.collection("contacts")
    }

    pub(super) fn routes_coll(&self) -> Collection<Document> {
        self.db.collection("notify_routes")
    }

    pub(super) fn attempts_coll(&self) -> Collection<Document> {
        self.db.collection("delivery_attempts")
    }

    pub(super) fn scheduler_jobs_coll(&self) -> Collection<Document> {
        self.db.collection("scheduler_jobs")
    }
}
