//! The storage roles every backend implements.
//!
//! A store plays four roles, each its own trait so that a consumer depends
//! only on the role it uses:
//!
//! | role | what it holds | who uses it |
//! |---|---|---|
//! | [`AlertStore`] | alerts, per-user receipts, the change feed, retention | the engine, the WebSocket hub (through the engine) |
//! | [`RuleStore`] | rules and subscriptions | the engine, rule evaluation |
//! | [`Outbox`] | deliveries: claim under a lease, complete, list, dead letters | the notification dispatcher |
//! | [`JobStore`] | job runs and the once-per-tick claim | the scheduler |
//!
//! [`Store`] bundles the four (a blanket impl: any type implementing all of
//! them is a `Store`); [`AlertKit`](crate::AlertKit) takes an
//! `Arc<dyn Store>` and hands out `Arc<dyn Outbox>` / `Arc<dyn JobStore>`
//! by trait upcasting. Delivery rows are *enqueued* by
//! [`AlertStore::insert_or_dedup`], in the raise's own transaction, and then
//! belong to the [`Outbox`].
//!
//! Two more roles live beside these and are not part of [`Store`]:
//! [`SeriesStore`](crate::SeriesStore) (forecast series) and
//! [`ReportStore`](crate::ReportStore) (report records and aggregates).
//!
//! Each role has a conformance macro in `alertkit-testkit`
//! (`alert_store_conformance!`, `rule_store_conformance!`,
//! `outbox_conformance!`, `job_store_conformance!`,
//! `series_store_conformance!`, `report_store_conformance!`), so a custom
//! backend can prove the roles it implements.

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use crate::alert::{Alert, AlertView, Receipt};
use crate::delivery::DeliveryStatus;
use crate::delivery::{
    ClaimedDelivery, Delivery, DeliveryAttempt, DeliveryOutcome, DeliveryTarget,
};
use crate::error::Result;
use crate::id::AlertId;
use crate::notify::Recipient;
use crate::principal::Viewer;
use crate::query::{AlertFilter, AlertQuery, Page, Stats};
use crate::route::Route;
use crate::rule::{AlertRule, Channel, Subscription};
use crate::scheduler::JobRun;
use crate::severity::Severity;

/// What raising an alert did.
#[derive(Debug, Clone, PartialEq)]
pub struct Raised {
    /// The alert as stored now: the new one, or the active one it merged into.
    pub alert: Alert,
    /// Whether it merged into an active alert with the same dedup key.
    pub deduplicated: bool,
    /// Whether the merge raised the severity.
    pub escalated: bool,
}

/// Durable alerts and per-user receipts, the change feed and retention.
///
/// Times are passed in by the caller (the engine reads its [`Clock`](crate::Clock)),
/// so a backend never reads the wall clock and tests are deterministic.
/// Expired alerts (`expires_at <= now`) are invisible to every read and
/// receipt operation. Methods taking a [`Viewer`] only ever see or touch
/// alerts visible to it; an invisible alert is [`NotFound`](crate::Error::NotFound).
///
/// The behaviour is pinned down by the conformance suite in `alertkit-testkit`;
/// [`MemoryAlertStore`](https://docs.rs/alertkit-storage) is the reference.
#[async_trait]
pub trait AlertStore: Send + Sync + 'static {
    /// The backend's name (`memory`, `sqlite`, `postgres`, `mongodb`).
    fn backend(&self) -> &'static str;

    /// Checks that the backend is reachable.
    async fn ping(&self) -> Result<()>;

    /// Inserts `alert`, unless it has a [dedup scope](Alert::dedup_scope)
    /// equal to that of an active alert (the same `dedup_key`, raised by
    /// the same principal for the same audience), in which case that alert
    /// absorbs it through [`Alert::merge_repeat`]. Atomic: concurrent raises
    /// of one scope yield one alert whose `occurrences` counts them all.
    ///
    /// In the same transaction, when the alert is new or escalated, enqueues
    /// one [`Delivery`] per target for the stored alert (its severity as
    /// stored); a target that already has a delivery at that severity gets
    /// no second one.
    async fn insert_or_dedup(
        &self,
        alert: Alert,
        deliveries: &[DeliveryTarget],
        now: DateTime<Utc>,
    ) -> Result<Raised>;

    /// [`insert_or_dedup`](Self::insert_or_dedup) for many alerts, in input
    /// order; backends override it with a batched write (one transaction,
    /// multi-row statements). Returns what each raise did, in input order.
    async fn insert_many(
        &self,
        items: Vec<(Alert, Vec<DeliveryTarget>)>,
        now: DateTime<Utc>,
    ) -> Result<Vec<Raised>> {
        let mut out = Vec::with_capacity(items.len());
        for (alert, targets) in items {
            out.push(self.insert_or_dedup(alert, &targets, now).await?);
        }
        Ok(out)
    }

    /// The active alerts holding `dedup_key` (regardless of viewer), oldest
    /// first; only those raised by `created_by` when it is given.
    async fn find_active(
        &self,
        dedup_key: &str,
        created_by: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<Vec<Alert>>;

    /// One alert with the viewer's receipt.
    async fn get(&self, viewer: &Viewer, id: AlertId, now: DateTime<Utc>) -> Result<AlertView>;

    /// One page of the alerts the viewer sees, newest first
    /// (by `created_at`, then `id`), after the query's cursor.
    async fn list(&self, viewer: &Viewer, query: &AlertQuery, now: DateTime<Utc>) -> Result<Page>;

    /// How many alerts the viewer sees that match the filter.
    async fn count(&self, viewer: &Viewer, filter: &AlertFilter, now: DateTime<Utc>)
    -> Result<u64>;

    /// Counts by severity and type over the alerts the viewer sees that match.
    async fn stats(
        &self,
        viewer: &Viewer,
        filter: &AlertFilter,
        now: DateTime<Utc>,
    ) -> Result<Stats>;

    /// Marks one alert read for the viewer. Idempotent: the first `read_at` stays.
    async fn mark_read(&self, viewer: &Viewer, id: AlertId, now: DateTime<Utc>) -> Result<Receipt>;

    /// Marks every unread alert matching the filter read for the viewer;
    /// returns the ids it marked.
    async fn mark_all_read(
        &self,
        viewer: &Viewer,
        filter: &AlertFilter,
        now: DateTime<Utc>,
    ) -> Result<Vec<AlertId>>;

    /// Dismisses one alert for the viewer. Idempotent: the first `dismissed_at` stays.
    async fn dismiss(&self, viewer: &Viewer, id: AlertId, now: DateTime<Utc>) -> Result<Receipt>;

    /// Resolves an alert. Returns it and whether it changed (resolving a
    /// resolved alert changes nothing).
    async fn resolve(&self, id: AlertId, now: DateTime<Utc>) -> Result<(Alert, bool)>;

    /// Every user's receipt on one alert (users without one are absent).
    async fn receipts(&self, id: AlertId) -> Result<HashMap<String, Receipt>>;

    /// Unexpired alerts whose last change (raise, merge, resolve) has a
    /// sequence number above `after`, lowest first, at most `limit`, each
    /// carrying its number in [`Alert::seq`].
    ///
    /// Numbers are handed out in **commit order**: once a reader sees number
    /// `n`, every change numbered below `n` is already visible. A reader that
    /// remembers the highest number it has seen and asks again from there
    /// therefore misses nothing and sees nothing twice, whatever other
    /// writers (in this or other processes) do meanwhile. Deletions are not
    /// changes here (a deleted alert simply stops appearing).
    async fn changes_since(&self, after: u64, limit: u32, now: DateTime<Utc>)
    -> Result<Vec<Alert>>;

    /// The highest change sequence number committed so far (0 when none).
    async fn latest_seq(&self) -> Result<u64>;

    /// [`changes_since`](Self::changes_since) as one viewer sees it: the
    /// changes numbered in `(after, upto]` of alerts **visible to the
    /// viewer**, lowest first, at most `limit`, each with the viewer's
    /// receipt. What a WebSocket `resume` replays.
    ///
    /// The default walks `changes_since` and reads each receipt; backends
    /// override it with one query that filters visibility and joins the
    /// viewer's receipts, so a replay costs a bounded number of queries
    /// whatever else the store holds.
    async fn changes_for(
        &self,
        viewer: &Viewer,
        after: u64,
        upto: u64,
        limit: u32,
        now: DateTime<Utc>,
    ) -> Result<Vec<AlertView>> {
        let mut out = Vec::new();
        let mut from = after;
        while from < upto && out.len() < limit as usize {
            let page = self.changes_since(from, 500, now).await?;
            let full = page.len() == 500;
            for alert in page {
                from = alert.seq;
                if alert.seq > upto || out.len() == limit as usize {
                    return Ok(out);
                }
                if viewer.sees_all || alert.audience.is_visible_to(viewer) {
                    let receipt = self
                        .receipts(alert.id)
                        .await?
                        .remove(&viewer.user_id)
                        .unwrap_or_default();
                    out.push(AlertView::new(alert, receipt));
                }
            }
            if !full {
                break;
            }
        }
        Ok(out)
    }

    /// Every user's receipt on each of `ids` (alerts without receipts are
    /// absent): [`receipts`](Self::receipts) for a batch, in one read where
    /// the backend can.
    async fn receipts_many(
        &self,
        ids: &[AlertId],
    ) -> Result<HashMap<AlertId, HashMap<String, Receipt>>> {
        let mut out = HashMap::new();
        for id in ids {
            let r = self.receipts(*id).await?;
            if !r.is_empty() {
                out.insert(*id, r);
            }
        }
        Ok(out)
    }

    /// Deletes an alert and its receipts; returns what was deleted.
    async fn delete(&self, id: AlertId) -> Result<Alert>;

    /// Deletes up to `batch` alerts (with their receipts) that expired at
    /// `now` or were last updated before `now - retention`. Returns how many
    /// it deleted; call again while it returns `batch`.
    async fn purge_expired(
        &self,
        now: DateTime<Utc>,
        retention: Duration,
        batch: u32,
    ) -> Result<u64>;
}

/// Rules and subscriptions.
#[async_trait]
pub trait RuleStore: Send + Sync + 'static {
    /// Stores a new rule; [`Conflict`](crate::Error::Conflict) if the name is taken.
    async fn create_rule(&self, rule: AlertRule) -> Result<AlertRule>;

    /// Replaces a rule; `NotFound` if absent, `Conflict` if renamed onto another's name.
    async fn update_rule(&self, rule: AlertRule) -> Result<AlertRule>;

    /// One rule.
    async fn get_rule(&self, id: Uuid) -> Result<AlertRule>;

    /// Every rule, by name.
    async fn list_rules(&self) -> Result<Vec<AlertRule>>;

    /// Deletes a rule.
    async fn delete_rule(&self, id: Uuid) -> Result<()>;

    /// A user's subscriptions, by alert type.
    async fn subscriptions(&self, user_id: &str) -> Result<Vec<Subscription>>;

    /// Replaces all of a user's subscriptions.
    async fn set_subscriptions(&self, user_id: &str, subs: Vec<Subscription>) -> Result<()>;

    /// The enabled subscriptions (of any user) that want an alert of this
    /// type and severity, by user.
    async fn subscribers(&self, alert_type: &str, severity: Severity) -> Result<Vec<Subscription>>;

    /// A user's own contact details (email, Slack id, webhook), if set.
    async fn contact(&self, user_id: &str) -> Result<Option<Recipient>>;

    /// Sets (replaces) a user's contact details, keyed by `contact.user_id`.
    async fn set_contact(&self, contact: Recipient) -> Result<()>;

    /// Every team route, oldest first.
    async fn routes(&self) -> Result<Vec<Route>>;

    /// Stores a team route (replacing the one with its id).
    async fn put_route(&self, route: Route) -> Result<()>;

    /// Deletes a team route; `NotFound` if absent.
    async fn delete_route(&self, id: Uuid) -> Result<()>;
}

/// The delivery outbox: rows enqueued by
/// [`AlertStore::insert_or_dedup`] in the raise's transaction, claimed under
/// a lease by dispatchers, completed with each attempt's outcome.
#[async_trait]
pub trait Outbox: Send + Sync + 'static {
    /// Atomically claims up to `limit` claimable deliveries (see
    /// [`Delivery::is_claimable`]), oldest due first: each becomes in flight
    /// until `now + lease` with one more attempt. Two dispatchers never claim
    /// the same delivery while its lease holds.
    async fn claim_deliveries(
        &self,
        now: DateTime<Utc>,
        lease: Duration,
        limit: u32,
    ) -> Result<Vec<ClaimedDelivery>>;

    /// Atomically claims up to `limit` claimable digest items
    /// ([`Delivery::digest`] set) of one user on one channel, oldest due
    /// first, as [`claim_deliveries`](Self::claim_deliveries) does. A
    /// dispatcher that claimed one item of a digest calls this to gather the
    /// rest and send them as one message.
    async fn claim_digest(
        &self,
        user_id: &str,
        channel: Channel,
        now: DateTime<Utc>,
        lease: Duration,
        limit: u32,
    ) -> Result<Vec<ClaimedDelivery>>;

    /// Records the outcome of attempt number `attempt` of a delivery, and
    /// keeps a [`DeliveryAttempt`] for it (see [`attempts`](Self::attempts)).
    /// [`Conflict`](crate::Error::Conflict) unless the delivery is in flight
    /// on that attempt (a dispatcher whose lease lapsed and was re-claimed
    /// must not overwrite the newer attempt).
    async fn complete_delivery(
        &self,
        id: Uuid,
        attempt: u32,
        outcome: DeliveryOutcome,
        now: DateTime<Utc>,
    ) -> Result<Delivery>;

    /// Every delivery of an alert, oldest first.
    async fn deliveries(&self, alert_id: AlertId) -> Result<Vec<Delivery>>;

    /// Deliveries in one status (dead letters: [`DeliveryStatus::Dead`]),
    /// most recently updated first, at most `limit`.
    async fn deliveries_in(&self, status: DeliveryStatus, limit: u32) -> Result<Vec<Delivery>>;

    /// Replays a dead letter: pending again, due at `now`, with a fresh
    /// retry schedule ([`Delivery::replay`]). `NotFound` if absent,
    /// [`Conflict`](crate::Error::Conflict) unless it is dead.
    async fn retry_delivery(&self, id: Uuid, now: DateTime<Utc>) -> Result<Delivery>;

    /// Every recorded attempt of a delivery, oldest first (empty for an
    /// unknown delivery). Deleted with the delivery's alert.
    async fn attempts(&self, delivery_id: Uuid) -> Result<Vec<DeliveryAttempt>>;

    /// How far behind delivery is at `now`: deliveries not finished
    /// (pending or in flight), and the earliest `next_attempt_at` of those
    /// pending and already due (`None` when none is waiting).
    async fn backlog(&self, now: DateTime<Utc>) -> Result<Backlog>;
}

/// What [`Outbox::backlog`] reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Backlog {
    /// Deliveries pending or in flight.
    pub unfinished: u64,
    /// The earliest due time among pending deliveries already due: how long
    /// the oldest one has waited is `now - oldest_due`.
    pub oldest_due: Option<DateTime<Utc>>,
}

/// Job runs: the scheduler's record, and its once-per-tick claim across
/// every instance sharing the store.
#[async_trait]
pub trait JobStore: Send + Sync + 'static {
    /// Records that `run.job_id` runs for the tick `run.scheduled_at`.
    /// Returns `false`, storing nothing, if a run for that tick exists:
    /// of several instances, exactly one gets `true`.
    async fn claim_job_run(&self, run: &JobRun) -> Result<bool>;

    /// Claims several ticks in one call, as [`claim_job_run`](Self::claim_job_run)
    /// does each: the answer holds, in the order of `runs`, whether this
    /// caller got that tick. The scheduler claims every tick falling due at
    /// one instant this way, so a backend that can do it in one round trip
    /// should (the default claims one after another).
    async fn claim_job_runs(&self, runs: &[JobRun]) -> Result<Vec<bool>> {
        let mut claimed = Vec::with_capacity(runs.len());
        for run in runs {
            claimed.push(self.claim_job_run(run).await?);
        }
        Ok(claimed)
    }

    /// Saves a claimed run's new state (status, times, error).
    async fn update_job_run(&self, run: &JobRun) -> Result<()>;

    /// The latest runs of a job, newest tick first.
    async fn job_runs(&self, job_id: &str, limit: u32) -> Result<Vec<JobRun>>;

    /// Takes over up to `limit` runs of the given jobs whose instance
    /// stopped renewing them: pending or running with `lease_until` at or
    /// before `now`. Each becomes pending with one more attempt and the new
    /// `lease_until`; of several instances, exactly one gets each run.
    async fn claim_stale_job_runs(
        &self,
        job_ids: &[String],
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<JobRun>>;

    /// Pauses or resumes a job for every instance sharing the store.
    async fn set_job_paused(&self, job_id: &str, paused: bool, now: DateTime<Utc>) -> Result<()>;

    /// The ids of the paused jobs.
    async fn paused_jobs(&self) -> Result<Vec<String>>;
}

/// Every store role at once: what [`AlertKit`](crate::AlertKit) takes.
///
/// Implemented for every type that implements the four roles; a backend
/// never implements it by hand.
pub trait Store: AlertStore + RuleStore + Outbox + JobStore {}

impl<T: AlertStore + RuleStore + Outbox + JobStore + ?Sized> Store for T {}

#[cfg(test)]
mockall::mock! {
    /// A store mock playing every role, for the engine's unit tests.
    pub Store {}
    #[async_trait]
    impl AlertStore for Store {
        fn backend(&self) -> &'static str;
        async fn ping(&self) -> Result<()>;
        async fn insert_or_dedup( &self, alert: Alert, deliveries: &[DeliveryTarget], now: DateTime<Utc>, ) -> Result<Raised>;
        async fn find_active(&self, dedup_key: &str, created_by: Option<String>, now: DateTime<Utc>) -> Result<Vec<Alert>>;
        async fn insert_many(&self, items: Vec<(Alert, Vec<DeliveryTarget>)>, now: DateTime<Utc>) -> Result<Vec<Raised>>;
        async fn get(&self, viewer: &Viewer, id: AlertId, now: DateTime<Utc>) -> Result<AlertView>;
        async fn list(&self, viewer: &Viewer, query: &AlertQuery, now: DateTime<Utc>) -> Result<Page>;
        async fn count(&self, viewer: &Viewer, filter: &AlertFilter, now: DateTime<Utc>) -> Result<u64>;
        async fn stats( &self, viewer: &Viewer, filter: &AlertFilter, now: DateTime<Utc>, ) -> Result<Stats>;
        async fn mark_read(&self, viewer: &Viewer, id: AlertId, now: DateTime<Utc>) -> Result<Receipt>;
        async fn mark_all_read( &self, viewer: &Viewer, filter: &AlertFilter, now: DateTime<Utc>, ) -> Result<Vec<AlertId>>;
        async fn dismiss(&self, viewer: &Viewer, id: AlertId, now: DateTime<Utc>) -> Result<Receipt>;
        async fn resolve(&self, id: AlertId, now: DateTime<Utc>) -> Result<(Alert, bool)>;
        async fn receipts(&self, id: AlertId) -> Result<HashMap<String, Receipt>>;
        async fn changes_since(&self, after: u64, limit: u32, now: DateTime<Utc>) -> Result<Vec<Alert>>;
        async fn latest_seq(&self) -> Result<u64>;
        async fn delete(&self, id: AlertId) -> Result<Alert>;
        async fn purge_expired( &self, now: DateTime<Utc>, retention: Duration, batch: u32, ) -> Result<u64>;
    }
    #[async_trait]
    impl RuleStore for Store {
        async fn create_rule(&self, rule: AlertRule) -> Result<AlertRule>;
        async fn update_rule(&self, rule: AlertRule) -> Result<AlertRule>;
        async fn get_rule(&self, id: Uuid) -> Result<AlertRule>;
        async fn list_rules(&self) -> Result<Vec<AlertRule>>;
        async fn delete_rule(&self, id: Uuid) -> Result<()>;
        async fn subscriptions(&self, user_id: &str) -> Result<Vec<Subscription>>;
        async fn set_subscriptions(&self, user_id: &str, subs: Vec<Subscription>) -> Result<()>;
        async fn subscribers(&self, alert_type: &str, severity: Severity) -> Result<Vec<Subscription>>;
        async fn contact(&self, user_id: &str) -> Result<Option<Recipient>>;
        async fn set_contact(&self, contact: Recipient) -> Result<()>;
        async fn routes(&self) -> Result<Vec<Route>>;
        async fn put_route(&self, route: Route) -> Result<()>;
        async fn delete_route(&self, id: Uuid) -> Result<()>;
    }
    #[async_trait]
    impl Outbox for Store {
        async fn claim_deliveries( &self, now: DateTime<Utc>, lease: Duration, limit: u32, ) -> Result<Vec<ClaimedDelivery>>;
        async fn claim_digest( &self, user_id: &str, channel: Channel, now: DateTime<Utc>, lease: Duration, limit: u32, ) -> Result<Vec<ClaimedDelivery>>;
        async fn complete_delivery( &self, id: Uuid, attempt: u32, outcome: DeliveryOutcome, now: DateTime<Utc>, ) -> Result<Delivery>;
        async fn deliveries(&self, alert_id: AlertId) -> Result<Vec<Delivery>>;
        async fn deliveries_in(&self, status: DeliveryStatus, limit: u32) -> Result<Vec<Delivery>>;
        async fn retry_delivery(&self, id: Uuid, now: DateTime<Utc>) -> Result<Delivery>;
        async fn attempts(&self, delivery_id: Uuid) -> Result<Vec<DeliveryAttempt>>;
        async fn backlog(&self, now: DateTime<Utc>) -> Result<Backlog>;
    }
    #[async_trait]
    impl JobStore for Store {
        async fn claim_job_run(&self, run: &JobRun) -> Result<bool>;
        async fn update_job_run(&self, run: &JobRun) -> Result<()>;
        async fn job_runs(&self, job_id: &str, limit: u32) -> Result<Vec<JobRun>>;
        async fn claim_stale_job_runs(&self, job_ids: &[String], now: DateTime<Utc>, lease_until: DateTime<Utc>, limit: u32) -> Result<Vec<JobRun>>;
        async fn set_job_paused(&self, job_id: &str, paused: bool, now: DateTime<Utc>) -> Result<()>;
        async fn paused_jobs(&self) -> Result<Vec<String>>;
    }
}
