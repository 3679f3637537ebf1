//! The in-memory store: the reference semantics of [`AlertStore`].

mod alerts;
mod jobs;
mod outbox;
mod raise;
mod reports;
mod rows;
mod rules;
mod series;

use alertkit_core::query::{COUNT_CAP, CursorPosition};
use alertkit_core::{
    Alert, AlertFilter, AlertId, AlertQuery, AlertRule, AlertStatus, AlertStore, AlertView,
    Channel, ClaimedDelivery, Delivery, DeliveryOutcome, DeliveryStatus, DeliveryTarget, Error,
    JobRun, JobStore, Outbox, Page, Raised, Receipt, Result, RuleStore, Severity, Stats,
    Subscription, Viewer,
};
use alertkit_core::{Recipient, Route};
use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use uuid::Uuid;

use rows::State;

/// An [`AlertStore`] held in process memory.
///
/// It defines the behaviour every other backend must match (the conformance
/// suite runs against it first). Nothing survives a restart; use it for
/// tests, benchmarks and demos.
#[derive(Debug, Default)]
pub struct MemoryAlertStore {
    state: RwLock<State>,
}

impl MemoryAlertStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}
