//! The MongoDB store (feature `mongodb`).
//!
//! Collections: `alerts`, `alert_receipts`, `alert_rules`,
//! `alert_subscriptions`, `deliveries`, `job_runs`, with compound indexes
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

mod config;
mod error;

use std::collections::{HashMap, HashSet};
use std::time::Duration as StdDuration;

use alertkit_core::query::COUNT_CAP;
use alertkit_core::{
    Alert, AlertFilter, AlertId, AlertQuery, AlertRule, AlertStore, AlertView, ClaimedDelivery,
    Delivery, DeliveryOutcome, DeliveryTarget, Error, JobRun, Page, Raised, Receipt, Resource,
    Result, Severity, Stats, Subscription, Viewer,
};
use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use futures::TryStreamExt;
use mongodb::bson::spec::BinarySubtype;
use mongodb::bson::{Binary, Bson, Document, doc};
use mongodb::options::{IndexOptions, ReturnDocument};
use mongodb::{ClientSession, Collection, IndexModel};
use uuid::Uuid;

pub use config::MongoBuilder;
use error::{DUPLICATE_KEY, MongoResultExt, code, is_transient};

use crate::common::{
    audience_from, audience_strings, corrupt, in_input_order, pair_with_alerts, parse,
    severity_from, viewer_targets,
};

const BACKEND: &str = "mongodb";
/// How often a raise transaction is retried after losing a race.
const RAISE_ATTEMPTS: u32 = 30;

/// Pause before retry `attempt` of a conflicting transaction: exponential
/// from 2 ms, capped at 250 ms, with jitter (half to all of it) so that
/// writers contending for the change counter fall out of step.
fn retry_pause(attempt: u32) -> StdDuration {
    let cap = 2u64.saturating_mul(1 << attempt.min(7)).min(250);
    // UUIDv7's low bits are random.
    let r = (Uuid::now_v7().as_u128() & 0xffff) as u64;
    StdDuration::from_millis(cap / 2 + r % (cap / 2 + 1))
}

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
                    doc! { "dedup_key": 1 },
                    Some(doc! { "status": "active", "dedup_key": { "$type": "string" } }),
                ),
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
            ])
            .await
            .mongo()?;
        self.runs()
            .create_index(unique(doc! { "job_id": 1, "scheduled_at": 1 }, None))
            .await
            .mongo()?;
        Ok(())
    }

    /// Drops the database. For tests and tenant removal.
    pub async fn drop_database(&self) -> Result<()> {
        self.db.drop().await.mongo()
    }

    fn alerts(&self) -> Collection<Document> {
        self.db.collection("alerts")
    }
    fn receipts_coll(&self) -> Collection<Document> {
        self.db.collection("alert_receipts")
    }
    fn rules(&self) -> Collection<Document> {
        self.db.collection("alert_rules")
    }
    fn subs(&self) -> Collection<Document> {
        self.db.collection("alert_subscriptions")
    }
    fn seq_coll(&self) -> Collection<Document> {
        self.db.collection("alert_seq")
    }
    fn deliveries_coll(&self) -> Collection<Document> {
        self.db.collection("deliveries")
    }
    fn runs(&self) -> Collection<Document> {
        self.db.collection("job_runs")
    }
}

// ---- encoding -------------------------------------------------------------

fn id_bson(u: Uuid) -> Bson {
    Bson::Binary(Binary {
        subtype: BinarySubtype::Uuid,
        bytes: u.as_bytes().to_vec(),
    })
}

fn ids_bson(ids: impl IntoIterator<Item = Uuid>) -> Bson {
    Bson::Array(ids.into_iter().map(id_bson).collect())
}

fn time_bson(t: DateTime<Utc>) -> Bson {
    Bson::DateTime(mongodb::bson::DateTime::from_millis(t.timestamp_millis()))
}

fn get_uuid(d: &Document, key: &str) -> Result<Uuid> {
    match d.get(key) {
        Some(Bson::Binary(b)) => Uuid::from_slice(&b.bytes).map_err(|e| corrupt(BACKEND, e)),
        other => Err(corrupt(BACKEND, format!("{key}: {other:?}"))),
    }
}

fn get_time(d: &Document, key: &str) -> Result<DateTime<Utc>> {
    get_opt_time(d, key)?.ok_or_else(|| corrupt(BACKEND, format!("{key} missing")))
}

fn get_opt_time(d: &Document, key: &str) -> Result<Option<DateTime<Utc>>> {
    match d.get(key) {
        None | Some(Bson::Null) => Ok(None),
        Some(Bson::DateTime(t)) => DateTime::from_timestamp_millis(t.timestamp_millis())
            .map(Some)
            .ok_or_else(|| corrupt(BACKEND, format!("{key} out of range"))),
        other => Err(corrupt(BACKEND, format!("{key}: {other:?}"))),
    }
}

fn get_str(d: &Document, key: &str) -> Result<String> {
    d.get_str(key)
        .map(str::to_owned)
        .map_err(|e| corrupt(BACKEND, format!("{key}: {e}")))
}

fn get_opt_str(d: &Document, key: &str) -> Result<Option<String>> {
    match d.get(key) {
        None | Some(Bson::Null) => Ok(None),
        Some(Bson::String(s)) => Ok(Some(s.clone())),
        other => Err(corrupt(BACKEND, format!("{key}: {other:?}"))),
    }
}

fn get_int(d: &Document, key: &str) -> Result<i64> {
    match d.get(key) {
        Some(Bson::Int32(n)) => Ok(i64::from(*n)),
        Some(Bson::Int64(n)) => Ok(*n),
        other => Err(corrupt(BACKEND, format!("{key}: {other:?}"))),
    }
}

fn get_u32(d: &Document, key: &str) -> Result<u32> {
    u32::try_from(get_int(d, key)?).map_err(|e| corrupt(BACKEND, e))
}

fn get_severity(d: &Document, key: &str) -> Result<Severity> {
    let n = get_int(d, key)?;
    let rank = i16::try_from(n).map_err(|_| corrupt(BACKEND, format!("{key}: {n}")))?;
    severity_from(BACKEND, rank)
}

fn get_strings(d: &Document, key: &str) -> Result<Vec<String>> {
    d.get_array(key)
        .map_err(|e| corrupt(BACKEND, format!("{key}: {e}")))?
        .iter()
        .map(|b| match b {
            Bson::String(s) => Ok(s.clone()),
            other => Err(corrupt(BACKEND, format!("{key} item: {other:?}"))),
        })
        .collect()
}

fn get_json<T: serde::de::DeserializeOwned>(d: &Document, key: &str) -> Result<T> {
    serde_json::from_str(&get_str(d, key)?).map_err(|e| corrupt(BACKEND, e))
}

fn set_opt(d: &mut Document, key: &str, v: Option<Bson>) {
    if let Some(v) = v {
        d.insert(key, v);
    }
}

fn alert_doc(a: &Alert) -> Document {
    let mut d = doc! {
        "_id": id_bson(a.id.as_uuid()),
        "alert_type": &a.alert_type,
        "severity": i32::from(a.severity.rank()),
        "title": &a.title,
        "message": &a.message,
        "tags": &a.tags,
        "audience": audience_strings(&a.audience),
        "metadata": a.metadata.to_string(),
        "status": a.status.as_str(),
        "occurrences": i64::from(a.occurrences),
        "created_at": time_bson(a.created_at),
        "updated_at": time_bson(a.updated_at),
        "last_seen_at": time_bson(a.last_seen_at),
        "seq": i64::try_from(a.seq).unwrap_or(i64::MAX),
    };
    if let Some(r) = &a.resource {
        d.insert("resource_type", &r.kind);
        d.insert("resource_id", &r.id);
    }
    set_opt(&mut d, "dedup_key", a.dedup_key.clone().map(Bson::String));
    set_opt(&mut d, "expires_at", a.expires_at.map(time_bson));
    d
}

fn alert_from(d: &Document) -> Result<Alert> {
    let resource = match (
        get_opt_str(d, "resource_type")?,
        get_opt_str(d, "resource_id")?,
    ) {
        (Some(kind), Some(id)) => Some(Resource { kind, id }),
        _ => None,
    };
    Ok(Alert {
        id: AlertId::from_uuid(get_uuid(d, "_id")?),
        alert_type: get_str(d, "alert_type")?,
        severity: get_severity(d, "severity")?,
        title: get_str(d, "title")?,
        message: get_str(d, "message")?,
        tags: get_strings(d, "tags")?,
        resource,
        audience: audience_from(BACKEND, get_strings(d, "audience")?)?,
        metadata: get_json(d, "metadata")?,
        dedup_key: get_opt_str(d, "dedup_key")?,
        status: parse(BACKEND, &get_str(d, "status")?)?,
        occurrences: get_u32(d, "occurrences")?,
        created_at: get_time(d, "created_at")?,
        updated_at: get_time(d, "updated_at")?,
        last_seen_at: get_time(d, "last_seen_at")?,
        expires_at: get_opt_time(d, "expires_at")?,
        seq: match d.get("seq") {
            None => 0,
            Some(_) => u64::try_from(get_int(d, "seq")?).unwrap_or(0),
        },
    })
}

fn receipt_from(d: &Document) -> Result<Receipt> {
    Ok(Receipt {
        read_at: get_opt_time(d, "read_at")?,
        dismissed_at: get_opt_time(d, "dismissed_at")?,
    })
}

fn delivery_doc(d: &Delivery) -> Document {
    let mut doc = doc! {
        "_id": id_bson(d.id),
        "alert_id": id_bson(d.alert_id.as_uuid()),
        "user_id": &d.user_id,
        "channel": d.channel.as_str(),
        "severity": i32::from(d.severity.rank()),
        "status": d.status.as_str(),
        "attempts": i64::from(d.attempts),
        "next_attempt_at": time_bson(d.next_attempt_at),
        "created_at": time_bson(d.created_at),
        "updated_at": time_bson(d.updated_at),
    };
    set_opt(&mut doc, "lease_until", d.lease_until.map(time_bson));
    set_opt(
        &mut doc,
        "last_error",
        d.last_error.clone().map(Bson::String),
    );
    doc
}

fn delivery_from(d: &Document) -> Result<Delivery> {
    Ok(Delivery {
        id: get_uuid(d, "_id")?,
        alert_id: AlertId::from_uuid(get_uuid(d, "alert_id")?),
        user_id: get_str(d, "user_id")?,
        channel: parse(BACKEND, &get_str(d, "channel")?)?,
        severity: get_severity(d, "severity")?,
        status: parse(BACKEND, &get_str(d, "status")?)?,
        attempts: get_u32(d, "attempts")?,
        next_attempt_at: get_time(d, "next_attempt_at")?,
        lease_until: get_opt_time(d, "lease_until")?,
        last_error: get_opt_str(d, "last_error")?,
        created_at: get_time(d, "created_at")?,
        updated_at: get_time(d, "updated_at")?,
    })
}

fn run_doc(r: &JobRun) -> Document {
    let mut d = doc! {
        "_id": id_bson(r.id),
        "job_id": &r.job_id,
        "scheduled_at": time_bson(r.scheduled_at),
        "status": r.status.as_str(),
    };
    set_opt(&mut d, "started_at", r.started_at.map(time_bson));
    set_opt(&mut d, "finished_at", r.finished_at.map(time_bson));
    set_opt(&mut d, "error", r.error.clone().map(Bson::String));
    d
}

fn run_from(d: &Document) -> Result<JobRun> {
    Ok(JobRun {
        id: get_uuid(d, "_id")?,
        job_id: get_str(d, "job_id")?,
        scheduled_at: get_time(d, "scheduled_at")?,
        started_at: get_opt_time(d, "started_at")?,
        finished_at: get_opt_time(d, "finished_at")?,
        status: parse(BACKEND, &get_str(d, "status")?)?,
        error: get_opt_str(d, "error")?,
    })
}

fn rule_doc(r: &AlertRule) -> Result<Document> {
    let template = serde_json::to_string(&r.template).map_err(|e| Error::invalid(e.to_string()))?;
    Ok(doc! {
        "_id": id_bson(r.id),
        "name": &r.name,
        "kind": r.kind.as_str(),
        "enabled": r.enabled,
        "conditions": r.conditions.to_string(),
        "template": template,
        "for_secs": i64::try_from(r.for_secs).unwrap_or(i64::MAX),
        "cooldown_secs": i64::try_from(r.cooldown_secs).unwrap_or(i64::MAX),
        "created_at": time_bson(r.created_at),
        "updated_at": time_bson(r.updated_at),
    })
}

fn rule_from(d: &Document) -> Result<AlertRule> {
    Ok(AlertRule {
        id: get_uuid(d, "_id")?,
        name: get_str(d, "name")?,
        kind: parse(BACKEND, &get_str(d, "kind")?)?,
        enabled: d.get_bool("enabled").map_err(|e| corrupt(BACKEND, e))?,
        conditions: get_json(d, "conditions")?,
        template: get_json(d, "template")?,
        for_secs: u64::try_from(get_int(d, "for_secs")?).map_err(|e| corrupt(BACKEND, e))?,
        cooldown_secs: u64::try_from(get_int(d, "cooldown_secs")?)
            .map_err(|e| corrupt(BACKEND, e))?,
        created_at: get_time(d, "created_at")?,
        updated_at: get_time(d, "updated_at")?,
    })
}

fn sub_doc(s: &Subscription) -> Document {
    let channels: Vec<&str> = s.channels.iter().map(|c| c.as_str()).collect();
    let mut d = doc! {
        "user_id": &s.user_id,
        "alert_type": &s.alert_type,
        "enabled": s.enabled,
        "channels": channels,
        "min_severity": i32::from(s.min_severity.rank()),
    };
    set_opt(
        &mut d,
        "digest",
        s.digest.map(|x| Bson::String(x.as_str().into())),
    );
    d
}

fn sub_from(d: &Document) -> Result<Subscription> {
    Ok(Subscription {
        user_id: get_str(d, "user_id")?,
        alert_type: get_str(d, "alert_type")?,
        enabled: d.get_bool("enabled").map_err(|e| corrupt(BACKEND, e))?,
        channels: get_strings(d, "channels")?
            .iter()
            .map(|c| parse(BACKEND, c))
            .collect::<Result<_>>()?,
        min_severity: get_severity(d, "min_severity")?,
        digest: get_opt_str(d, "digest")?
            .map(|x| parse(BACKEND, &x))
            .transpose()?,
    })
}

// ---- queries ----------------------------------------------------------------

/// One viewer's receipts, by alert.
type Receipts = HashMap<Uuid, Receipt>;

/// Conditions for alerts visible to the viewer, unexpired, matching the filter.
fn alert_conditions(
    viewer: &Viewer,
    filter: &AlertFilter,
    now: DateTime<Utc>,
    receipts: &Receipts,
) -> Vec<Document> {
    let mut and = vec![
        doc! { "$or": [ { "expires_at": Bson::Null }, { "expires_at": { "$gt": time_bson(now) } } ] },
    ];
    if !viewer.sees_all {
        and.push(doc! { "audience": { "$in": viewer_targets(viewer) } });
    }
    if let Some(since) = filter.since {
        and.push(doc! { "created_at": { "$gt": time_bson(since) } });
    }
    if let Some(until) = filter.until {
        and.push(doc! { "created_at": { "$lte": time_bson(until) } });
    }
    if !filter.severities.is_empty() {
        let ranks: Vec<i32> = filter
            .severities
            .iter()
            .map(|s| i32::from(s.rank()))
            .collect();
        and.push(doc! { "severity": { "$in": ranks } });
    }
    if let Some(min) = filter.min_severity {
        and.push(doc! { "severity": { "$gte": i32::from(min.rank()) } });
    }
    if !filter.alert_types.is_empty() {
        and.push(doc! { "alert_type": { "$in": filter.alert_types.clone() } });
    }
    if !filter.tags.is_empty() {
        and.push(doc! { "tags": { "$in": filter.tags.clone() } });
    }
    if let Some(status) = filter.status {
        and.push(doc! { "status": status.as_str() });
    }
    let excluded: Vec<Uuid> = receipts
        .iter()
        .filter(|(_, r)| {
            (filter.unread_only && r.is_read()) || (!filter.include_dismissed && r.is_dismissed())
        })
        .map(|(id, _)| *id)
        .collect();
    if !excluded.is_empty() {
        and.push(doc! { "_id": { "$nin": ids_bson(excluded) } });
    }
    and
}

fn all_of(conditions: Vec<Document>) -> Document {
    doc! { "$and": conditions }
}

fn visible_one(viewer: &Viewer, id: AlertId, now: DateTime<Utc>) -> Document {
    let mut c = alert_conditions(
        viewer,
        &AlertFilter {
            include_dismissed: true,
            ..Default::default()
        },
        now,
        &Receipts::new(),
    );
    c.push(doc! { "_id": id_bson(id.as_uuid()) });
    all_of(c)
}

async fn collect(cursor: mongodb::Cursor<Document>) -> Result<Vec<Document>> {
    cursor.try_collect().await.mongo()
}

async fn collect_in(
    cursor: &mut mongodb::SessionCursor<Document>,
    s: &mut ClientSession,
) -> Result<Vec<Document>> {
    cursor.stream(s).try_collect().await.mongo()
}

impl MongoAlertStore {
    async fn receipts_of(&self, user: &str) -> Result<Receipts> {
        let docs = collect(
            self.receipts_coll()
                .find(doc! { "user_id": user })
                .await
                .mongo()?,
        )
        .await?;
        docs.iter()
            .map(|d| Ok((get_uuid(d, "alert_id")?, receipt_from(d)?)))
            .collect()
    }

    async fn count_where(&self, filter: Document) -> Result<u64> {
        self.alerts().count_documents(filter).await.mongo()
    }

    async fn touch_receipt(
        &self,
        viewer: &Viewer,
        id: AlertId,
        now: DateTime<Utc>,
        field: &str,
    ) -> Result<Receipt> {
        if self
            .alerts()
            .find_one(visible_one(viewer, id, now))
            .await
            .mongo()?
            .is_none()
        {
            return Err(Error::not_found(format!("alert {id}")));
        }
        let key = doc! { "user_id": &viewer.user_id, "alert_id": id_bson(id.as_uuid()) };
        // $min keeps the first time; an absent field takes the new one.
        self.receipts_coll()
            .update_one(key.clone(), doc! { "$min": { field: time_bson(now) } })
            .upsert(true)
            .await
            .mongo()?;
        match self.receipts_coll().find_one(key).await.mongo()? {
            Some(d) => receipt_from(&d),
            None => Err(Error::not_found(format!("alert {id}"))),
        }
    }

    async fn drop_children(&self, ids: &[Uuid]) -> Result<()> {
        let filter = doc! { "alert_id": { "$in": ids_bson(ids.iter().copied()) } };
        self.receipts_coll()
            .delete_many(filter.clone())
            .await
            .mongo()?;
        self.deliveries_coll().delete_many(filter).await.mongo()?;
        Ok(())
    }

    /// Takes `n` change sequence numbers inside `s`'s transaction; returns
    /// the last. Two transactions taking numbers write the same counter
    /// document, so the second conflicts and retries once the first has
    /// committed: numbers follow commit order.
    async fn next_seq(&self, s: &mut ClientSession, n: u64) -> Result<u64> {
        let inc = i64::try_from(n).unwrap_or(i64::MAX);
        let d = self
            .seq_coll()
            .find_one_and_update(doc! { "_id": "alerts" }, doc! { "$inc": { "value": inc } })
            .upsert(true)
            .return_document(ReturnDocument::After)
            .session(&mut *s)
            .await
            .mongo()?
            .ok_or_else(|| corrupt(BACKEND, "alert_seq counter missing after upsert"))?;
        Ok(u64::try_from(get_int(&d, "value")?).unwrap_or(0))
    }

    /// One attempt at a raise inside `s`'s transaction. `None`: a concurrent
    /// raise of the same key won; retry.
    async fn raise_in(
        &self,
        s: &mut ClientSession,
        alert: &Alert,
        targets: &[DeliveryTarget],
        now: DateTime<Utc>,
    ) -> Result<Option<Raised>> {
        let seq = self.next_seq(s, 1).await?;
        if let Some(key) = &alert.dedup_key {
            let mut set = doc! {
                "seq": i64::try_from(seq).unwrap_or(i64::MAX),
                "title": &alert.title,
                "message": &alert.message,
                "metadata": alert.metadata.to_string(),
                "last_seen_at": time_bson(now),
                "updated_at": time_bson(now),
            };
            let mut update = doc! {
                "$inc": { "occurrences": 1_i64 },
                "$max": { "severity": i32::from(alert.severity.rank()) },
            };
            match alert.expires_at {
                Some(e) => {
                    set.insert("expires_at", time_bson(e));
                }
                None => {
                    update.insert("$unset", doc! { "expires_at": "" });
                }
            }
            update.insert("$set", set);
            let before = self
                .alerts()
                .find_one_and_update(doc! { "dedup_key": key, "status": "active" }, update)
                .return_document(ReturnDocument::Before)
                .session(&mut *s)
                .await
                .mongo()?;
            if let Some(before) = before {
                let mut existing = alert_from(&before)?;
                let escalated = existing.merge_repeat(alert, now);
                existing.seq = seq;
                if escalated {
                    self.enqueue(s, &existing, targets, now).await?;
                }
                return Ok(Some(Raised {
                    alert: existing,
                    deduplicated: true,
                    escalated,
                }));
            }
        }
        let alert = &Alert {
            seq,
            ..alert.clone()
        };
        match self
            .alerts()
            .insert_one(alert_doc(alert))
            .session(&mut *s)
            .await
        {
            Ok(_) => {}
            Err(e) if code(&e) == Some(DUPLICATE_KEY) && alert.dedup_key.is_some() => {
                return Ok(None);
            }
            Err(e) => return Err(error::map_err(e)),
        }
        self.enqueue(s, alert, targets, now).await?;
        Ok(Some(Raised {
            alert: alert.clone(),
            deduplicated: false,
            escalated: false,
        }))
    }

    async fn enqueue(
        &self,
        s: &mut ClientSession,
        alert: &Alert,
        targets: &[DeliveryTarget],
        now: DateTime<Utc>,
    ) -> Result<()> {
        if targets.is_empty() {
            return Ok(());
        }
        // A duplicate-key error would abort the transaction: skip receivers
        // that already have a delivery at this severity instead.
        let mut cursor = self
            .deliveries_coll()
            .find(doc! { "alert_id": id_bson(alert.id.as_uuid()), "severity": i32::from(alert.severity.rank()) })
            .session(&mut *s)
            .await
            .mongo()?;
        let existing: HashSet<(String, String)> = collect_in(&mut cursor, s)
            .await?
            .iter()
            .map(|d| Ok((get_str(d, "user_id")?, get_str(d, "channel")?)))
            .collect::<Result<_>>()?;
        let mut seen = HashSet::new();
        let docs: Vec<Document> = targets
            .iter()
            .filter(|t| {
                let k = (t.user_id.clone(), t.channel.as_str().to_owned());
                !existing.contains(&k) && seen.insert(k)
            })
            .map(|t| delivery_doc(&Delivery::new(alert, t, now)))
            .collect();
        if !docs.is_empty() {
            self.deliveries_coll()
                .insert_many(docs)
                .session(&mut *s)
                .await
                .mongo()?;
        }
        Ok(())
    }

    /// One attempt at resolving, in a transaction that takes a change number.
    async fn resolve_once(&self, id: AlertId, now: DateTime<Utc>) -> Result<(Alert, bool)> {
        let mut s = self.client.start_session().await.mongo()?;
        s.start_transaction().await.mongo()?;
        let seq = self.next_seq(&mut s, 1).await?;
        let changed = self
            .alerts()
            .find_one_and_update(
                doc! { "_id": id_bson(id.as_uuid()), "status": "active" },
                doc! { "$set": {
                    "status": "resolved",
                    "updated_at": time_bson(now),
                    "seq": i64::try_from(seq).unwrap_or(i64::MAX),
                } },
            )
            .return_document(ReturnDocument::After)
            .session(&mut s)
            .await
            .mongo()?;
        if let Some(d) = changed {
            s.commit_transaction().await.mongo()?;
            return Ok((alert_from(&d)?, true));
        }
        let _ = s.abort_transaction().await;
        match self
            .alerts()
            .find_one(doc! { "_id": id_bson(id.as_uuid()) })
            .await
            .mongo()?
        {
            Some(d) => Ok((alert_from(&d)?, false)),
            None => Err(Error::not_found(format!("alert {id}"))),
        }
    }

    /// Runs `raise_in` in a transaction, retrying lost races and transient
    /// transaction errors with a short, growing pause.
    async fn raise_tx(
        &self,
        alert: &Alert,
        targets: &[DeliveryTarget],
        now: DateTime<Utc>,
    ) -> Result<Raised> {
        for attempt in 0..RAISE_ATTEMPTS {
            let mut s = self.client.start_session().await.mongo()?;
            s.start_transaction().await.mongo()?;
            let outcome = self.raise_in(&mut s, alert, targets, now).await;
            match outcome {
                Ok(Some(raised)) => match s.commit_transaction().await {
                    Ok(()) => return Ok(raised),
                    Err(e) if is_transient(&e) => {}
                    Err(e) => return Err(error::map_err(e)),
                },
                Ok(None) | Err(Error::Unavailable(_)) | Err(Error::Conflict(_)) => {
                    let _ = s.abort_transaction().await;
                }
                Err(e) => {
                    let _ = s.abort_transaction().await;
                    return Err(e);
                }
            }
            tokio::time::sleep(retry_pause(attempt)).await;
        }
        Err(Error::Unavailable(
            "mongodb: raise kept conflicting; try again".into(),
        ))
    }
}

#[async_trait]
impl AlertStore for MongoAlertStore {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    async fn ping(&self) -> Result<()> {
        self.db.run_command(doc! { "ping": 1 }).await.mongo()?;
        Ok(())
    }

    async fn insert_or_dedup(
        &self,
        alert: Alert,
        deliveries: &[DeliveryTarget],
        now: DateTime<Utc>,
    ) -> Result<Raised> {
        self.raise_tx(&alert, deliveries, now).await
    }

    /// Keyed alerts go through the dedup transaction one by one; the rest
    /// are written with one multi-document insert, their deliveries with
    /// another, in one transaction.
    async fn insert_many(
        &self,
        items: Vec<(Alert, Vec<DeliveryTarget>)>,
        now: DateTime<Utc>,
    ) -> Result<Vec<Raised>> {
        let mut out = Vec::with_capacity(items.len());
        let mut plain = Vec::new();
        for (alert, targets) in items {
            if alert.dedup_key.is_some() {
                out.push(Some(self.raise_tx(&alert, &targets, now).await?));
            } else {
                out.push(None);
                plain.push((alert, targets));
            }
        }
        if !plain.is_empty() {
            let mut s = self.client.start_session().await.mongo()?;
            s.start_transaction().await.mongo()?;
            let last = self.next_seq(&mut s, plain.len() as u64).await?;
            let first = last + 1 - plain.len() as u64;
            for (i, (a, _)) in plain.iter_mut().enumerate() {
                a.seq = first + i as u64;
            }
            self.alerts()
                .insert_many(plain.iter().map(|(a, _)| alert_doc(a)))
                .session(&mut s)
                .await
                .mongo()?;
            let deliveries: Vec<Document> = plain
                .iter()
                .flat_map(|(a, targets)| {
                    let mut seen = HashSet::new();
                    targets
                        .iter()
                        .filter(move |t| seen.insert((t.user_id.clone(), t.channel)))
                        .map(move |t| delivery_doc(&Delivery::new(a, t, now)))
                })
                .collect();
            if !deliveries.is_empty() {
                self.deliveries_coll()
                    .insert_many(deliveries)
                    .session(&mut s)
                    .await
                    .mongo()?;
            }
            s.commit_transaction().await.mongo()?;
        }
        Ok(in_input_order(out, plain))
    }

    async fn find_active(&self, dedup_key: &str, _now: DateTime<Utc>) -> Result<Option<Alert>> {
        self.alerts()
            .find_one(doc! { "dedup_key": dedup_key, "status": "active" })
            .await
            .mongo()?
            .as_ref()
            .map(alert_from)
            .transpose()
    }

    async fn get(&self, viewer: &Viewer, id: AlertId, now: DateTime<Utc>) -> Result<AlertView> {
        let Some(d) = self
            .alerts()
            .find_one(visible_one(viewer, id, now))
            .await
            .mongo()?
        else {
            return Err(Error::not_found(format!("alert {id}")));
        };
        let receipt = match self
            .receipts_coll()
            .find_one(doc! { "user_id": &viewer.user_id, "alert_id": id_bson(id.as_uuid()) })
            .await
            .mongo()?
        {
            Some(r) => receipt_from(&r)?,
            None => Receipt::default(),
        };
        Ok(AlertView::new(alert_from(&d)?, receipt))
    }

    async fn list(&self, viewer: &Viewer, query: &AlertQuery, now: DateTime<Utc>) -> Result<Page> {
        let before = query.cursor.as_ref().map(|c| c.position()).transpose()?;
        let limit = query.effective_limit();
        let receipts = self.receipts_of(&viewer.user_id).await?;
        let base = alert_conditions(viewer, &query.filter, now, &receipts);
        let mut paged = base.clone();
        if let Some(p) = before {
            paged.push(doc! { "$or": [
                { "created_at": { "$lt": time_bson(p.created_at) } },
                { "created_at": time_bson(p.created_at), "_id": { "$lt": id_bson(p.id.as_uuid()) } },
            ] });
        }
        let docs = collect(
            self.alerts()
                .find(all_of(paged))
                .sort(doc! { "created_at": -1, "_id": -1 })
                .limit(i64::from(limit) + 1)
                .await
                .mongo()?,
        )
        .await?;
        let views = docs
            .iter()
            .map(|d| {
                let a = alert_from(d)?;
                let r = receipts.get(&a.id.as_uuid()).copied().unwrap_or_default();
                Ok(AlertView::new(a, r))
            })
            .collect::<Result<Vec<_>>>()?;
        let (total, unread) = match before.and_then(|p| p.totals) {
            Some(carried) => carried,
            // The newest COUNT_CAP matches' ids; their receipts are at hand.
            None => {
                let newest = collect(
                    self.alerts()
                        .find(all_of(base))
                        .projection(doc! { "_id": 1 })
                        .sort(doc! { "created_at": -1, "_id": -1 })
                        .limit(i64::try_from(COUNT_CAP).unwrap_or(i64::MAX))
                        .await
                        .mongo()?,
                )
                .await?;
                let mut unread = 0;
                for d in &newest {
                    let id = get_uuid(d, "_id")?;
                    unread += u64::from(!receipts.get(&id).is_some_and(Receipt::is_read));
                }
                (newest.len() as u64, unread)
            }
        };
        Ok(Page::from_fetched(views, limit, total, unread))
    }

    async fn count(
        &self,
        viewer: &Viewer,
        filter: &AlertFilter,
        now: DateTime<Utc>,
    ) -> Result<u64> {
        let receipts = self.receipts_of(&viewer.user_id).await?;
        self.count_where(all_of(alert_conditions(viewer, filter, now, &receipts)))
            .await
    }

    async fn stats(
        &self,
        viewer: &Viewer,
        filter: &AlertFilter,
        now: DateTime<Utc>,
    ) -> Result<Stats> {
        let receipts = self.receipts_of(&viewer.user_id).await?;
        let group = |f: &AlertFilter| {
            vec![
                doc! { "$match": all_of(alert_conditions(viewer, f, now, &receipts)) },
                doc! { "$group": { "_id": { "s": "$severity", "t": "$alert_type" }, "n": { "$sum": 1 } } },
            ]
        };
        let mut stats = Stats::default();
        for d in collect(self.alerts().aggregate(group(filter)).await.mongo()?).await? {
            let key = d.get_document("_id").map_err(|e| corrupt(BACKEND, e))?;
            let n = u64::try_from(get_int(&d, "n")?).unwrap_or(0);
            // Unread figures come from the second aggregate below.
            stats.add_group(get_severity(key, "s")?, &get_str(key, "t")?, n, 0);
        }
        let unread = AlertFilter {
            unread_only: true,
            ..filter.clone()
        };
        for d in collect(self.alerts().aggregate(group(&unread)).await.mongo()?).await? {
            stats.total_unread += u64::try_from(get_int(&d, "n")?).unwrap_or(0);
        }
        Ok(stats)
    }

    async fn mark_read(&self, viewer: &Viewer, id: AlertId, now: DateTime<Utc>) -> Result<Receipt> {
        self.touch_receipt(viewer, id, now, "read_at").await
    }

    async fn mark_all_read(
        &self,
        viewer: &Viewer,
        filter: &AlertFilter,
        now: DateTime<Utc>,
    ) -> Result<Vec<AlertId>> {
        let receipts = self.receipts_of(&viewer.user_id).await?;
        let unread = AlertFilter {
            unread_only: true,
            ..filter.clone()
        };
        let docs = collect(
            self.alerts()
                .find(all_of(alert_conditions(viewer, &unread, now, &receipts)))
                .projection(doc! { "_id": 1 })
                .sort(doc! { "created_at": -1, "_id": -1 })
                .await
                .mongo()?,
        )
        .await?;
        let ids = docs
            .iter()
            .map(|d| get_uuid(d, "_id"))
            .collect::<Result<Vec<_>>>()?;
        let (with_receipt, without): (Vec<Uuid>, Vec<Uuid>) =
            ids.iter().partition(|id| receipts.contains_key(id));
        if !with_receipt.is_empty() {
            self.receipts_coll()
                .update_many(
                    doc! { "user_id": &viewer.user_id, "alert_id": { "$in": ids_bson(with_receipt) } },
                    doc! { "$min": { "read_at": time_bson(now) } },
                )
                .await
                .mongo()?;
        }
        if !without.is_empty() {
            let new: Vec<Document> = without
                .iter()
                .map(|id| doc! { "user_id": &viewer.user_id, "alert_id": id_bson(*id), "read_at": time_bson(now) })
                .collect();
            match self.receipts_coll().insert_many(new).ordered(false).await {
                Ok(_) => {}
                // A receipt created meanwhile (a dismiss, say): mark it too.
                Err(e) if code(&e) == Some(DUPLICATE_KEY) => {
                    self.receipts_coll()
                        .update_many(
                            doc! { "user_id": &viewer.user_id, "alert_id": { "$in": ids_bson(without) } },
                            doc! { "$min": { "read_at": time_bson(now) } },
                        )
                        .await
                        .mongo()?;
                }
                Err(e) => return Err(error::map_err(e)),
            }
        }
        Ok(ids.into_iter().map(AlertId::from_uuid).collect())
    }

    async fn dismiss(&self, viewer: &Viewer, id: AlertId, now: DateTime<Utc>) -> Result<Receipt> {
        self.touch_receipt(viewer, id, now, "dismissed_at").await
    }

    async fn resolve(&self, id: AlertId, now: DateTime<Utc>) -> Result<(Alert, bool)> {
        // Taking a change number conflicts with concurrent writers: retry.
        for attempt in 0..RAISE_ATTEMPTS {
            match self.resolve_once(id, now).await {
                Err(Error::Unavailable(_)) if attempt + 1 < RAISE_ATTEMPTS => {
                    tokio::time::sleep(retry_pause(attempt)).await;
                }
                other => return other,
            }
        }
        Err(Error::Unavailable(
            "mongodb: resolve kept conflicting; try again".into(),
        ))
    }

    async fn receipts(&self, id: AlertId) -> Result<HashMap<String, Receipt>> {
        let docs: Vec<Document> = self
            .receipts_coll()
            .find(doc! { "alert_id": id_bson(id.as_uuid()) })
            .await
            .mongo()?
            .try_collect()
            .await
            .mongo()?;
        docs.iter()
            .map(|d| Ok((get_str(d, "user_id")?, receipt_from(d)?)))
            .collect()
    }

    async fn changes_since(
        &self,
        after: u64,
        limit: u32,
        now: DateTime<Utc>,
    ) -> Result<Vec<Alert>> {
        let docs: Vec<Document> = self
            .alerts()
            .find(doc! {
                "seq": { "$gt": i64::try_from(after).unwrap_or(i64::MAX) },
                "$or": [
                    { "expires_at": { "$exists": false } },
                    { "expires_at": { "$gt": time_bson(now) } },
                ],
            })
            .sort(doc! { "seq": 1 })
            .limit(i64::from(limit))
            .await
            .mongo()?
            .try_collect()
            .await
            .mongo()?;
        docs.iter().map(alert_from).collect()
    }

    async fn latest_seq(&self) -> Result<u64> {
        match self
            .seq_coll()
            .find_one(doc! { "_id": "alerts" })
            .await
            .mongo()?
        {
            Some(d) => Ok(u64::try_from(get_int(&d, "value")?).unwrap_or(0)),
            None => Ok(0),
        }
    }

    async fn delete(&self, id: AlertId) -> Result<Alert> {
        let Some(d) = self
            .alerts()
            .find_one_and_delete(doc! { "_id": id_bson(id.as_uuid()) })
            .await
            .mongo()?
        else {
            return Err(Error::not_found(format!("alert {id}")));
        };
        self.drop_children(&[id.as_uuid()]).await?;
        alert_from(&d)
    }

    async fn purge_expired(
        &self,
        now: DateTime<Utc>,
        retention: Duration,
        batch: u32,
    ) -> Result<u64> {
        let docs = collect(
            self.alerts()
                .find(doc! { "$or": [
                    { "expires_at": { "$lte": time_bson(now) } },
                    { "updated_at": { "$lt": time_bson(now - retention) } },
                ] })
                .projection(doc! { "_id": 1 })
                .limit(i64::from(batch))
                .await
                .mongo()?,
        )
        .await?;
        let ids = docs
            .iter()
            .map(|d| get_uuid(d, "_id"))
            .collect::<Result<Vec<_>>>()?;
        if ids.is_empty() {
            return Ok(0);
        }
        let res = self
            .alerts()
            .delete_many(doc! { "_id": { "$in": ids_bson(ids.iter().copied()) } })
            .await
            .mongo()?;
        self.drop_children(&ids).await?;
        Ok(res.deleted_count)
    }

    async fn create_rule(&self, rule: AlertRule) -> Result<AlertRule> {
        self.rules().insert_one(rule_doc(&rule)?).await.mongo()?;
        Ok(rule)
    }

    async fn update_rule(&self, rule: AlertRule) -> Result<AlertRule> {
        let res = self
            .rules()
            .replace_one(doc! { "_id": id_bson(rule.id) }, rule_doc(&rule)?)
            .await
            .mongo()?;
        if res.matched_count == 0 {
            return Err(Error::not_found(format!("rule {}", rule.id)));
        }
        Ok(rule)
    }

    async fn get_rule(&self, id: Uuid) -> Result<AlertRule> {
        match self
            .rules()
            .find_one(doc! { "_id": id_bson(id) })
            .await
            .mongo()?
        {
            Some(d) => rule_from(&d),
            None => Err(Error::not_found(format!("rule {id}"))),
        }
    }

    async fn list_rules(&self) -> Result<Vec<AlertRule>> {
        collect(
            self.rules()
                .find(doc! {})
                .sort(doc! { "name": 1 })
                .await
                .mongo()?,
        )
        .await?
        .iter()
        .map(rule_from)
        .collect()
    }

    async fn delete_rule(&self, id: Uuid) -> Result<()> {
        let res = self
            .rules()
            .delete_one(doc! { "_id": id_bson(id) })
            .await
            .mongo()?;
        if res.deleted_count == 0 {
            return Err(Error::not_found(format!("rule {id}")));
        }
        Ok(())
    }

    async fn subscriptions(&self, user_id: &str) -> Result<Vec<Subscription>> {
        collect(
            self.subs()
                .find(doc! { "user_id": user_id })
                .sort(doc! { "alert_type": 1 })
                .await
                .mongo()?,
        )
        .await?
        .iter()
        .map(sub_from)
        .collect()
    }

    async fn set_subscriptions(&self, user_id: &str, subs: Vec<Subscription>) -> Result<()> {
        if subs.iter().any(|s| s.user_id != user_id) {
            return Err(Error::invalid("every subscription must belong to the user"));
        }
        let mut s = self.client.start_session().await.mongo()?;
        s.start_transaction().await.mongo()?;
        self.subs()
            .delete_many(doc! { "user_id": user_id })
            .session(&mut s)
            .await
            .mongo()?;
        if !subs.is_empty() {
            self.subs()
                .insert_many(subs.iter().map(sub_doc))
                .session(&mut s)
                .await
                .mongo()?;
        }
        s.commit_transaction().await.mongo()
    }

    async fn subscribers(&self, alert_type: &str, severity: Severity) -> Result<Vec<Subscription>> {
        collect(
            self.subs()
                .find(doc! {
                    "enabled": true,
                    "alert_type": { "$in": [alert_type, alertkit_core::rule::ANY_ALERT_TYPE] },
                    "min_severity": { "$lte": i32::from(severity.rank()) },
                })
                .sort(doc! { "user_id": 1, "alert_type": 1 })
                .await
                .mongo()?,
        )
        .await?
        .iter()
        .map(sub_from)
        .collect()
    }

    async fn claim_deliveries(
        &self,
        now: DateTime<Utc>,
        lease: Duration,
        limit: u32,
    ) -> Result<Vec<ClaimedDelivery>> {
        let due = doc! { "$or": [
            { "status": "pending", "next_attempt_at": { "$lte": time_bson(now) } },
            { "status": "in_flight", "lease_until": { "$lte": time_bson(now) } },
        ] };
        let claim = doc! {
            "$set": { "status": "in_flight", "lease_until": time_bson(now + lease), "updated_at": time_bson(now) },
            "$inc": { "attempts": 1_i64 },
        };
        let mut deliveries = Vec::new();
        // One atomic find-and-modify per delivery: two dispatchers can never
        // both match the same pending document.
        for _ in 0..limit {
            let claimed = self
                .deliveries_coll()
                .find_one_and_update(due.clone(), claim.clone())
                .sort(doc! { "next_attempt_at": 1, "_id": 1 })
                .return_document(ReturnDocument::After)
                .await
                .mongo()?;
            match claimed {
                Some(d) => deliveries.push(delivery_from(&d)?),
                None => break,
            }
        }
        let ids: HashSet<Uuid> = deliveries.iter().map(|d| d.alert_id.as_uuid()).collect();
        let alerts: HashMap<AlertId, Alert> = collect(
            self.alerts()
                .find(doc! { "_id": { "$in": ids_bson(ids) } })
                .await
                .mongo()?,
        )
        .await?
        .iter()
        .map(|d| alert_from(d).map(|a| (a.id, a)))
        .collect::<Result<_>>()?;
        Ok(pair_with_alerts(deliveries, &alerts))
    }

    async fn complete_delivery(
        &self,
        id: Uuid,
        attempt: u32,
        outcome: DeliveryOutcome,
        now: DateTime<Utc>,
    ) -> Result<Delivery> {
        let (status, next, error) = match &outcome {
            DeliveryOutcome::Sent => ("sent", None, None),
            DeliveryOutcome::Retry { at, error } => ("pending", Some(*at), Some(error.clone())),
            DeliveryOutcome::Dead { error } => ("dead", None, Some(error.clone())),
        };
        let mut set = doc! { "status": status, "updated_at": time_bson(now) };
        let mut unset = doc! { "lease_until": "" };
        if let Some(next) = next {
            set.insert("next_attempt_at", time_bson(next));
        }
        match error {
            Some(e) => {
                set.insert("last_error", e);
            }
            None => {
                unset.insert("last_error", "");
            }
        }
        let updated = self
            .deliveries_coll()
            .find_one_and_update(
                doc! { "_id": id_bson(id), "status": "in_flight", "attempts": i64::from(attempt) },
                doc! { "$set": set, "$unset": unset },
            )
            .return_document(ReturnDocument::After)
            .await
            .mongo()?;
        match updated {
            Some(d) => delivery_from(&d),
            None => match self
                .deliveries_coll()
                .find_one(doc! { "_id": id_bson(id) })
                .await
                .mongo()?
            {
                Some(_) => Err(Error::Conflict(format!(
                    "delivery {id} is not in flight on attempt {attempt}"
                ))),
                None => Err(Error::not_found(format!("delivery {id}"))),
            },
        }
    }

    async fn deliveries(&self, alert_id: AlertId) -> Result<Vec<Delivery>> {
        collect(
            self.deliveries_coll()
                .find(doc! { "alert_id": id_bson(alert_id.as_uuid()) })
                .sort(doc! { "created_at": 1, "_id": 1 })
                .await
                .mongo()?,
        )
        .await?
        .iter()
        .map(delivery_from)
        .collect()
    }

    async fn claim_job_run(&self, run: &JobRun) -> Result<bool> {
        match self.runs().insert_one(run_doc(run)).await {
            Ok(_) => Ok(true),
            Err(e) if code(&e) == Some(DUPLICATE_KEY) => Ok(false),
            Err(e) => Err(error::map_err(e)),
        }
    }

    async fn update_job_run(&self, run: &JobRun) -> Result<()> {
        let res = self
            .runs()
            .replace_one(doc! { "_id": id_bson(run.id) }, run_doc(run))
            .await
            .mongo()?;
        if res.matched_count == 0 {
            return Err(Error::not_found(format!("job run {}", run.id)));
        }
        Ok(())
    }

    async fn job_runs(&self, job_id: &str, limit: u32) -> Result<Vec<JobRun>> {
        collect(
            self.runs()
                .find(doc! { "job_id": job_id })
                .sort(doc! { "scheduled_at": -1 })
                .limit(i64::from(limit))
                .await
                .mongo()?,
        )
        .await?
        .iter()
        .map(run_from)
        .collect()
    }
}
