//! The engine: [`AlertKit`] ties a store, a broadcaster and a clock together
//! and enforces permissions and visibility.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};

use crate::alert::{Alert, AlertView, NewAlert, Receipt};
use crate::audience::{Audience, Target};
use crate::broadcast::Broadcaster;
use crate::clock::{Clock, SystemClock, truncate_to_millis};
use crate::delivery::{DeliveryTarget, DigestSlot};
use crate::error::{Error, Result};
use crate::event::AlertEvent;
use crate::hooks::Directory;
use crate::id::AlertId;
use crate::principal::{Permission, Principal};
use crate::query::{AlertFilter, AlertQuery, Page, Stats};
use crate::route::Route;
use crate::rule::Channel;
use crate::rule::Subscription;
use crate::store::{JobStore, Outbox, Raised, RuleStore, Store};

mod commit;
mod cursor;
mod live;
mod notify;
mod rules;

pub use live::{BACKLOG_DEGRADED_AFTER, Change, Health};
pub use notify::MAX_DELIVERIES;

/// How long alerts are kept after their last update, by default.
pub const DEFAULT_RETENTION_DAYS: i64 = 30;
/// How many alerts one purge batch deletes, by default.
pub const DEFAULT_PURGE_BATCH: u32 = 1_000;

/// The alerting engine. Cheap to clone; clones share everything.
///
/// Every operation takes the acting [`Principal`] and enforces:
/// - reading and keeping read/dismiss state needs `alerts.read`, and only
///   alerts whose audience includes the principal are seen (all, with
///   `alerts.manage`);
/// - raising needs `alerts.create`; raising for a group or everyone also
///   needs `alerts.broadcast`; a repeat merges only into the caller's own
///   alert for the same audience (see [`Alert::dedup_scope`]);
/// - resolving needs `alerts.manage`, or `alerts.create` and being the
///   alert's creator;
/// - deleting, purging, listing and changing rules need `alerts.manage`.
///
/// List cursors are signed with the engine's cursor key
/// ([`AlertKitBuilder::cursor_key`]): a cursor that was not made by an
/// engine holding the same key is [`Error::Invalid`].
///
/// Writes go to the store first; the event is published only once the store
/// has accepted them. A failed publish is logged, not returned: the change is
/// durable and live clients recover it by resuming from the store.
#[derive(Clone)]
pub struct AlertKit {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Store>,
    bus: Arc<dyn Broadcaster>,
    directory: Option<Arc<dyn Directory>>,
    clock: Arc<dyn Clock>,
    retention: Duration,
    purge_batch: u32,
    cursor_key: cursor::CursorKey,
    committer: commit::Committer,
}

impl std::fmt::Debug for AlertKit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlertKit")
            .field("store", &self.inner.store.backend())
            .field("clock", &self.inner.clock)
            .field("retention", &self.inner.retention)
            .finish_non_exhaustive()
    }
}

/// Builds an [`AlertKit`].
#[derive(Default)]
pub struct AlertKitBuilder {
    store: Option<Arc<dyn Store>>,
    bus: Option<Arc<dyn Broadcaster>>,
    directory: Option<Arc<dyn Directory>>,
    clock: Option<Arc<dyn Clock>>,
    retention: Option<Duration>,
    purge_batch: Option<u32>,
    cursor_key: Option<Vec<u8>>,
}

impl AlertKitBuilder {
    /// The store (required): anything implementing the four store roles.
    pub fn store(mut self, store: Arc<dyn Store>) -> Self {
        self.store = Some(store);
        self
    }

    /// The broadcaster (required).
    pub fn broadcaster(mut self, bus: Arc<dyn Broadcaster>) -> Self {
        self.bus = Some(bus);
        self
    }

    /// The directory that resolves group membership when deliveries are
    /// planned; without one, alerts for groups are delivered (off-app) only
    /// to subscribers also targeted by user or `everyone`.
    pub fn directory(mut self, directory: Arc<dyn Directory>) -> Self {
        self.directory = Some(directory);
        self
    }

    /// The clock; the system clock by default.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// How long alerts are kept after their last update; 30 days by default.
    pub fn retention(mut self, retention: Duration) -> Self {
        self.retention = Some(retention);
        self
    }

    /// How many alerts one purge batch deletes; 1000 by default.
    pub fn purge_batch(mut self, batch: u32) -> Self {
        self.purge_batch = Some(batch);
        self
    }

    /// The secret list cursors are signed with (at least 16 bytes). Every
    /// instance serving one API must share it, or a cursor from one is
    /// refused by another; a random key is made when none is given, which
    /// suits a single instance.
    pub fn cursor_key(mut self, key: impl Into<Vec<u8>>) -> Self {
        self.cursor_key = Some(key.into());
        self
    }

    /// Builds the engine; [`Error::Invalid`] if the store or broadcaster is
    /// missing or the settings are out of range.
    pub fn build(self) -> Result<AlertKit> {
        let store = self
            .store
            .ok_or_else(|| Error::invalid("AlertKit needs a store"))?;
        let bus = self
            .bus
            .ok_or_else(|| Error::invalid("AlertKit needs a broadcaster"))?;
        let retention = self
            .retention
            .unwrap_or_else(|| Duration::days(DEFAULT_RETENTION_DAYS));
        if retention <= Duration::zero() {
            return Err(Error::invalid("retention must be positive"));
        }
        let purge_batch = self.purge_batch.unwrap_or(DEFAULT_PURGE_BATCH);
        if purge_batch == 0 {
            return Err(Error::invalid("purge batch must be at least 1"));
        }
        let cursor_key = match self.cursor_key {
            Some(k) => cursor::CursorKey::new(&k)?,
            None => cursor::CursorKey::random(),
        };
        Ok(AlertKit {
            inner: Arc::new(Inner {
                store,
                bus,
                directory: self.directory,
                clock: self.clock.unwrap_or_else(|| Arc::new(SystemClock)),
                retention,
                purge_batch,
                cursor_key,
                committer: Default::default(),
            }),
        })
    }
}

impl AlertKit {
    /// Starts building an engine.
    pub fn builder() -> AlertKitBuilder {
        AlertKitBuilder::default()
    }

    /// The store, with every role. For embedders and tests; the transport
    /// layer goes through the engine's own methods.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    /// The store as an [`Outbox`], for a notification dispatcher.
    pub fn outbox(&self) -> Arc<dyn Outbox> {
        self.inner.store.clone()
    }

    /// The store as a [`JobStore`], for a scheduler.
    pub fn job_store(&self) -> Arc<dyn JobStore> {
        self.inner.store.clone()
    }

    /// The store as a [`RuleStore`], for rule evaluation.
    pub fn rule_store(&self) -> Arc<dyn RuleStore> {
        self.inner.store.clone()
    }

    /// The broadcaster.
    pub fn broadcaster(&self) -> &Arc<dyn Broadcaster> {
        &self.inner.bus
    }

    /// The clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.inner.clock
    }

    /// The current time, at the millisecond precision alerts are stored with.
    pub fn now(&self) -> DateTime<Utc> {
        truncate_to_millis(self.inner.clock.now())
    }

    async fn publish(&self, event: AlertEvent) {
        let name = event.name();
        if let Err(e) = self.inner.bus.publish(event).await {
            metrics::counter!(crate::telemetry::EVENTS_UNPUBLISHED, "event" => name).increment(1);
            // The bus says once that it is down; one line per raise
            // during an outage would flood the log.
            if matches!(e, Error::Unavailable(_)) {
                tracing::debug!(error = %e, event = name, "alert event not published; clients recover from the store");
            } else {
                tracing::warn!(error = %e, event = name, "publishing alert event failed; clients recover by resuming");
            }
        }
    }

    /// Raises an alert: validates it, stores it (or merges it into the active
    /// alert with the same `dedup_key`) together with the deliveries its
    /// subscribers ask for, and publishes `created` or `updated`.
    /// An empty audience means the raising principal.
    pub async fn raise(&self, by: &Principal, new: NewAlert) -> Result<Raised> {
        by.require(Permission::AlertsCreate)?;
        if new.audience.is_broadcast() {
            by.require(Permission::AlertsBroadcast)?;
        }
        let now = self.now();
        let mut alert =
            new.into_alert(AlertId::new(), now, || Audience::user(by.user_id.clone()))?;
        alert.created_by = Some(by.user_id.clone());
        // Concurrent raises share one transaction (see `commit`).
        let raised = self.commit_one(alert).await?;
        count_raised(&raised);
        self.publish_raised(&raised).await;
        Ok(raised)
    }

    /// Raises many alerts in one batched store write (all or nothing), then
    /// publishes an event for each. Faster than [`raise`](Self::raise) in a
    /// loop for rule evaluations, imports and backfills.
    pub async fn raise_many(&self, by: &Principal, batch: Vec<NewAlert>) -> Result<Vec<Raised>> {
        by.require(Permission::AlertsCreate)?;
        if batch.iter().any(|n| n.audience.is_broadcast()) {
            by.require(Permission::AlertsBroadcast)?;
        }
        let now = self.now();
        // One read of the routes for the whole batch.
        let routes = self.inner.store.routes().await?;
        let mut memo = commit::SubscriberMemo::new();
        let mut items = Vec::with_capacity(batch.len());
        for new in batch {
            let mut alert =
                new.into_alert(AlertId::new(), now, || Audience::user(by.user_id.clone()))?;
            alert.created_by = Some(by.user_id.clone());
            let targets = self.plan_deliveries(&alert, &routes, &mut memo).await?;
            items.push((alert, targets));
        }
        let started = std::time::Instant::now();
        let raised = self.inner.store.insert_many(items, now).await?;
        crate::telemetry::store_query("raise_many", started);
        for r in &raised {
            count_raised(r);
            self.publish_raised(r).await;
        }
        Ok(raised)
    }

    async fn publish_raised(&self, raised: &Raised) {
        let event = if raised.deduplicated {
            AlertEvent::Updated {
                alert: raised.alert.clone(),
                escalated: raised.escalated,
            }
        } else {
            AlertEvent::Created {
                alert: raised.alert.clone(),
            }
        };
        self.publish(event).await;
    }

    /// Who gets this alert off-app: every enabled team route matching it,
    /// and every enabled subscription wanting its
    /// type and severity, whose user is in the audience, on each channel
    /// other than in-app (the inbox itself). A digest subscription's
    /// delivery is due when the current period ends in the user's time zone.
    async fn plan_deliveries(
        &self,
        alert: &Alert,
        routes: &[Route],
        memo: &mut commit::SubscriberMemo,
    ) -> Result<Vec<DeliveryTarget>> {
        // Team routes: one delivery per (alert, matching route).
        let mut out = BTreeSet::new();
        for route in routes {
            if route.matches(alert) {
                out.insert(DeliveryTarget::new(
                    route.target_user(),
                    route.spec.destination.channel(),
                ));
            }
        }
        let key = (alert.alert_type.clone(), alert.severity);
        if !memo.contains_key(&key) {
            let subs = self
                .inner
                .store
                .subscribers(&alert.alert_type, alert.severity)
                .await?;
            memo.insert(key.clone(), subs);
        }
        let subs: &[Subscription] = memo.get(&key).map_or(&[], Vec::as_slice);
        if subs.is_empty() {
            return Ok(out.into_iter().collect());
        }
        let targets = alert.audience.targets();
        let everyone = targets.contains(&Target::Everyone);
        let mut members: HashMap<&str, Vec<String>> = HashMap::new();
        if let Some(dir) = &self.inner.directory {
            for t in targets {
                if let Target::Group(g) = t {
                    members.insert(g, dir.members(g).await?);
                }
            }
        }
        let now = self.now();
        let mut digests = Vec::new();
        for sub in subs {
            let in_audience = everyone
                || targets.iter().any(|t| match t {
                    Target::User(u) => *u == sub.user_id,
                    Target::Group(g) => members
                        .get(g.as_str())
                        .is_some_and(|m| m.contains(&sub.user_id)),
                    Target::Everyone => true,
                });
            if !in_audience {
                continue;
            }
            for ch in sub.channels.iter().filter(|c| **c != Channel::InApp) {
                match sub.digest {
                    None => {
                        out.insert(DeliveryTarget::new(sub.user_id.clone(), *ch));
                    }
                    Some(period) => digests.push((sub.user_id.as_str(), *ch, period)),
                }
            }
        }
        // Digest items, unless the same user already gets the alert at once
        // on that channel; the period ends in the user's own time zone.
        let mut zones: HashMap<&str, chrono_tz::Tz> = HashMap::new();
        for (user, ch, period) in digests {
            if out.contains(&DeliveryTarget::new(user, ch)) {
                continue;
            }
            let tz = match zones.get(user) {
                Some(tz) => *tz,
                None => {
                    let tz = self
                        .inner
                        .store
                        .contact(user)
                        .await?
                        .map_or(chrono_tz::Tz::UTC, |c| c.tz());
                    *zones.entry(user).or_insert(tz)
                }
            };
            let slot = DigestSlot {
                period,
                ends_at: period.period_end(now, tz),
            };
            out.insert(DeliveryTarget::digest(user, ch, slot));
        }
        Ok(out.into_iter().collect())
    }

    /// One alert as the principal sees it.
    pub async fn get(&self, by: &Principal, id: AlertId) -> Result<AlertView> {
        by.require(Permission::AlertsRead)?;
        crate::telemetry::timed("get", self.inner.store.get(&by.viewer(), id, self.now())).await
    }

    /// Whether the principal may see an alert (its audience includes the
    /// principal, or it holds `alerts.manage`).
    pub fn can_see(&self, by: &Principal, alert: &Alert) -> bool {
        let viewer = by.viewer();
        viewer.sees_all || alert.audience.is_visible_to(&viewer)
    }

    /// One page of the alerts the principal sees. The query's cursor must
    /// be one this engine (or one sharing its cursor key) handed out.
    pub async fn list(&self, by: &Principal, query: &AlertQuery) -> Result<Page> {
        by.require(Permission::AlertsRead)?;
        // The store sees its own cursor, unsealed (a copy only when there is one).
        let opened;
        let query = match &query.cursor {
            Some(c) => {
                opened = AlertQuery {
                    cursor: Some(self.inner.cursor_key.open(c)?),
                    ..query.clone()
                };
                &opened
            }
            None => query,
        };
        query.validate()?;
        let started = std::time::Instant::now();
        let mut page = self
            .inner
            .store
            .list(&by.viewer(), query, self.now())
            .await?;
        crate::telemetry::store_query("list", started);
        page.next_cursor = page.next_cursor.map(|c| self.inner.cursor_key.seal(&c));
        Ok(page)
    }

    /// Counts by severity and type over the alerts the principal sees.
    pub async fn stats(&self, by: &Principal, filter: &AlertFilter) -> Result<Stats> {
        by.require(Permission::AlertsRead)?;
        filter.validate()?;
        crate::telemetry::timed(
            "stats",
            self.inner.store.stats(&by.viewer(), filter, self.now()),
        )
        .await
    }

    /// How many alerts the principal has not read (dismissed ones left out).
    pub async fn unread_count(&self, by: &Principal) -> Result<u64> {
        by.require(Permission::AlertsRead)?;
        let filter = AlertFilter {
            unread_only: true,
            ..Default::default()
        };
        crate::telemetry::timed(
            "count",
            self.inner.store.count(&by.viewer(), &filter, self.now()),
        )
        .await
    }

    /// Marks an alert read for the principal and tells its other sessions.
    pub async fn mark_read(&self, by: &Principal, id: AlertId) -> Result<Receipt> {
        by.require(Permission::AlertsRead)?;
        let receipt = crate::telemetry::timed(
            "mark_read",
            self.inner.store.mark_read(&by.viewer(), id, self.now()),
        )
        .await?;
        if let Some(at) = receipt.read_at {
            self.publish(AlertEvent::Read {
                user_id: by.user_id.clone(),
                alert_ids: vec![id],
                at,
            })
            .await;
        }
        Ok(receipt)
    }

    /// Marks every unread alert matching the filter read; returns how many.
    pub async fn mark_all_read(&self, by: &Principal, filter: &AlertFilter) -> Result<u64> {
        by.require(Permission::AlertsRead)?;
        filter.validate()?;
        let now = self.now();
        let ids = crate::telemetry::timed(
            "mark_all_read",
            self.inner.store.mark_all_read(&by.viewer(), filter, now),
        )
        .await?;
        let n = ids.len() as u64;
        if !ids.is_empty() {
            self.publish(AlertEvent::Read {
                user_id: by.user_id.clone(),
                alert_ids: ids,
                at: now,
            })
            .await;
        }
        Ok(n)
    }

    /// Dismisses an alert for the principal and tells its other sessions.
    pub async fn dismiss(&self, by: &Principal, id: AlertId) -> Result<Receipt> {
        by.require(Permission::AlertsRead)?;
        let receipt = crate::telemetry::timed(
            "dismiss",
            self.inner.store.dismiss(&by.viewer(), id, self.now()),
        )
        .await?;
        if let Some(at) = receipt.dismissed_at {
            self.publish(AlertEvent::Dismissed {
                user_id: by.user_id.clone(),
                alert_id: id,
                at,
            })
            .await;
        }
        Ok(receipt)
    }

    /// Resolves an alert; publishes `resolved` if it was active. Needs
    /// `alerts.manage`, or `alerts.create` and being the alert's creator
    /// (an alert the caller may not see is `NotFound`; one it sees but did
    /// not raise is `Forbidden`).
    pub async fn resolve(&self, by: &Principal, id: AlertId) -> Result<Alert> {
        if !by.can(Permission::AlertsManage) {
            by.require(Permission::AlertsCreate)?;
            let now = self.now();
            let view = self
                .inner
                .store
                .get(&crate::principal::Viewer::all(by.user_id.clone()), id, now)
                .await?;
            if view.alert.created_by.as_deref() != Some(by.user_id.as_str()) {
                return Err(if self.can_see(by, &view.alert) {
                    Error::forbidden("only the alert's creator or alerts.manage may resolve it")
                } else {
                    Error::not_found(format!("alert {id}"))
                });
            }
        }
        let (alert, changed) = self.inner.store.resolve(id, self.now()).await?;
        if changed {
            self.publish(AlertEvent::Resolved {
                alert: alert.clone(),
            })
            .await;
        }
        Ok(alert)
    }

    /// Resolves the active alerts holding `dedup_key` that the principal
    /// raised (every one holding it, with `alerts.manage`); returns those
    /// it resolved.
    pub async fn resolve_key(&self, by: &Principal, dedup_key: &str) -> Result<Vec<Alert>> {
        let creator = if by.can(Permission::AlertsManage) {
            None
        } else {
            by.require(Permission::AlertsCreate)?;
            Some(by.user_id.clone())
        };
        let active = self
            .inner
            .store
            .find_active(dedup_key, creator, self.now())
            .await?;
        let mut out = Vec::with_capacity(active.len());
        for a in active {
            match self.resolve(by, a.id).await {
                Ok(a) => out.push(a),
                // Deleted meanwhile: nothing left to resolve.
                Err(Error::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// Deletes an alert (needs `alerts.manage`).
    pub async fn delete(&self, by: &Principal, id: AlertId) -> Result<()> {
        by.require(Permission::AlertsManage)?;
        let alert = self.inner.store.delete(id).await?;
        self.publish(AlertEvent::Deleted {
            alert_id: alert.id,
            audience: alert.audience,
        })
        .await;
        Ok(())
    }

    /// Deletes expired alerts and those past retention, batch by batch;
    /// returns how many (needs `alerts.manage`).
    pub async fn purge_expired(&self, by: &Principal) -> Result<u64> {
        by.require(Permission::AlertsManage)?;
        let now = self.now();
        let batch = self.inner.purge_batch;
        let mut total = 0;
        loop {
            let n = self
                .inner
                .store
                .purge_expired(now, self.inner.retention, batch)
                .await?;
            total += n;
            if n < u64::from(batch) {
                return Ok(total);
            }
        }
    }
}

/// Counts a raise in `alertkit_alerts_raised_total`, logs it, and puts its
/// id on the current span (a request's or a job run's, when they declare
/// an `alert_id` field).
fn count_raised(r: &Raised) {
    tracing::Span::current().record("alert_id", tracing::field::display(&r.alert.id));
    tracing::info!(
        alert_id = %r.alert.id,
        alert_type = %r.alert.alert_type,
        severity = r.alert.severity.as_str(),
        deduplicated = r.deduplicated,
        occurrences = r.alert.occurrences,
        "alert raised"
    );
    metrics::counter!(
        crate::telemetry::ALERTS_RAISED,
        "type" => r.alert.alert_type.clone(),
        "severity" => r.alert.severity.as_str(),
        "deduplicated" => if r.deduplicated { "true" } else { "false" },
    )
    .increment(1);
}
