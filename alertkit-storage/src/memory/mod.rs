//! The in-memory store: the reference semantics of [`AlertStore`].

mod alerts;
mod jobs;
mod outbox;
mod raise;
mod rows;
mod rules;

use alertkit_core::query::{COUNT_CAP, CursorPosition};
use alertkit_core::{
    Alert, AlertFilter, AlertId, AlertQuery, AlertRule, AlertStatus, AlertStore, AlertView,
    Channel, ClaimedDelivery, Delivery, DeliveryOutcome, DeliveryStatus, DeliveryTarget, Error,
    JobRun, JobStore, Outbox, Page, Raised, Receipt, Result, RuleStore, Severity, Stats,
    Subscription, Viewer,
};
use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use uuid::Uuid;

#[allow(unused_imports)]
use alerts::*;
#[allow(unused_imports)]
use {raise::*, rows::*};

/// An [`AlertStore`] held in process memory.
///
/// It defines the behaviour every other backend must match (the conformance
/// suite runs against it first). Nothing survives a restart; use it for
/// tests, benchmarks and demos.
#[derive(Debug, Default)]
pub struct MemoryAlertStore {
    state: RwLock<State>,
}

#[derive(Debug, Default)]
struct State {
    alerts: HashMap<AlertId, Alert>,
    /// Every alert by (created_at, id): the list order, newest last.
    order: BTreeSet<(DateTime<Utc>, AlertId)>,
    /// dedup scope ([`Alert::dedup_scope`]) → the active alert holding it.
    active_keys: HashMap<String, AlertId>,
    /// alert → user → receipt.
    receipts: HashMap<AlertId, HashMap<String, Receipt>>,
    rules: BTreeMap<Uuid, AlertRule>,
    subscriptions: BTreeMap<String, Vec<Subscription>>,
    deliveries: BTreeMap<Uuid, Delivery>,
    /// (alert, user, channel, severity) of every delivery: the outbox's unique key.
    delivery_keys: BTreeSet<(AlertId, String, Channel, Severity)>,
    /// (job, tick) → run.
    job_runs: BTreeMap<(String, DateTime<Utc>), JobRun>,
    /// The last change sequence number handed out.
    seq: u64,
    /// Change sequence number → alert (each alert under its latest number).
    by_seq: BTreeMap<u64, AlertId>,
}

impl MemoryAlertStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}
