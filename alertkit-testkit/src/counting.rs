//! [`CountingStore`]: a store wrapper that counts calls per method, for
//! tests that bound how many store round trips an operation costs.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use alertkit_core::{
    Alert, AlertFilter, AlertId, AlertQuery, AlertRule, AlertStore, AlertView, Channel,
    ClaimedDelivery, Delivery, DeliveryAttempt, DeliveryOutcome, DeliveryStatus, DeliveryTarget,
    JobRun, JobStore, Outbox, Page, Raised, Receipt, Recipient, Result, Route, RuleStore, Severity,
    Stats, Store, Subscription, Viewer,
};
use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

/// Wraps a store and counts every call of every role's methods.
///
/// ```
/// use alertkit_core::{AlertStore, Store};
/// use alertkit_testkit::counting::CountingStore;
///
/// async fn one_read<S: Store>(inner: S) {
///     let store = CountingStore::new(inner);
///     store.latest_seq().await.unwrap();
///     assert_eq!(store.calls("latest_seq"), 1);
///     assert_eq!(store.total(), 1);
/// }
/// ```
#[derive(Debug)]
pub struct CountingStore<S> {
    inner: S,
    calls: Mutex<HashMap<&'static str, u64>>,
}

impl<S: Store> CountingStore<S> {
    /// Wraps `inner`.
    pub fn new(inner: S) -> Self {
        CountingStore {
            inner,
            calls: Mutex::new(HashMap::new()),
        }
    }

    fn count(&self, name: &'static str) {
        *self
            .calls
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(name)
            .or_default() += 1;
    }

    /// How many times `method` was called.
    pub fn calls(&self, method: &str) -> u64 {
        self.snapshot().get(method).copied().unwrap_or(0)
    }

    /// Calls of every method so far.
    pub fn snapshot(&self) -> BTreeMap<&'static str, u64> {
        self.calls
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(k, v)| (*k, *v))
            .collect()
    }

    /// Every call so far.
    pub fn total(&self) -> u64 {
        self.snapshot().values().sum()
    }

    /// Forgets the counts.
    pub fn reset(&self) {
        self.calls.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }
}

#[async_trait]
impl<S: Store> AlertStore for CountingStore<S> {
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }
    async fn ping(&self) -> Result<()> {
        self.count("ping");
        self.inner.ping().await
    }
    async fn insert_or_dedup(
        &self,
        alert: Alert,
        deliveries: &[DeliveryTarget],
        now: DateTime<Utc>,
    ) -> Result<Raised> {
        self.count("insert_or_dedup");
        self.inner.insert_or_dedup(alert, deliveries, now).await
    }
    async fn insert_many(
        &self,
        items: Vec<(Alert, Vec<DeliveryTarget>)>,
        now: DateTime<Utc>,
    ) -> Result<Vec<Raised>> {
        self.count("insert_many");
        self.inner.insert_many(items, now).await
    }
    async fn find_active(
        &self,
        dedup_key: &str,
        created_by: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<Vec<Alert>> {
        self.count("find_active");
        self.inner.find_active(dedup_key, created_by, now).await
    }
    async fn get(&self, viewer: &Viewer, id: AlertId, now: DateTime<Utc>) -> Result<AlertView> {
        self.count("get");
        self.inner.get(viewer, id, now).await
    }
    async fn list(&self, viewer: &Viewer, query: &AlertQuery, now: DateTime<Utc>) -> Result<Page> {
        self.count("list");
        self.inner.list(viewer, query, now).await
    }
    async fn count(
        &self,
        viewer: &Viewer,
        filter: &AlertFilter,
        now: DateTime<Utc>,
    ) -> Result<u64> {
        CountingStore::count(self, "count");
        self.inner.count(viewer, filter, now).await
    }
    async fn stats(
        &self,
        viewer: &Viewer,
        filter: &AlertFilter,
        now: DateTime<Utc>,
    ) -> Result<Stats> {
        self.count("stats");
        self.inner.stats(viewer, filter, now).await
    }
    async fn mark_read(&self, viewer: &Viewer, id: AlertId, now: DateTime<Utc>) -> Result<Receipt> {
        self.count("mark_read");
        self.inner.mark_read(viewer, id, now).await
    }
    async fn mark_all_read(
        &self,
        viewer: &Viewer,
        filter: &AlertFilter,
        now: DateTime<Utc>,
    ) -> Result<Vec<AlertId>> {
        self.count("mark_all_read");
        self.inner.mark_all_read(viewer, filter, now).await
    }
    async fn dismiss(&self, viewer: &Viewer, id: AlertId, now: DateTime<Utc>) -> Result<Receipt> {
        self.count("dismiss");
        self.inner.dismiss(viewer, id, now).await
    }
    async fn resolve(&self, id: AlertId, now: DateTime<Utc>) -> Result<(Alert, bool)> {
        self.count("resolve");
        self.inner.resolve(id, now).await
    }
    async fn receipts(&self, id: AlertId) -> Result<HashMap<String, Receipt>> {
        self.count("receipts");
        self.inner.receipts(id).await
    }
    async fn changes_since(
        &self,
        after: u64,
        limit: u32,
        now: DateTime<Utc>,
    ) -> Result<Vec<Alert>> {
        self.count("changes_since");
        self.inner.changes_since(after, limit, now).await
    }
    async fn latest_seq(&self) -> Result<u64> {
        self.count("latest_seq");
        self.inner.latest_seq().await
    }
    async fn changes_for(
        &self,
        viewer: &Viewer,
        after: u64,
        upto: u64,
        limit: u32,
        now: DateTime<Utc>,
    ) -> Result<Vec<AlertView>> {
        self.count("changes_for");
        self.inner
            .changes_for(viewer, after, upto, limit, now)
            .await
    }
    async fn receipts_many(
        &self,
        ids: &[AlertId],
    ) -> Result<HashMap<AlertId, HashMap<String, Receipt>>> {
        self.count("receipts_many");
        self.inner.receipts_many(ids).await
    }
    async fn delete(&self, id: AlertId) -> Result<Alert> {
        self.count("delete");
        self.inner.delete(id).await
    }
    async fn purge_expired(
        &self,
        now: DateTime<Utc>,
        retention: Duration,
        batch: u32,
    ) -> Result<u64> {
        self.count("purge_expired");
        self.inner.purge_expired(now, retention, batch).await
    }
}

#[async_trait]
impl<S: Store> RuleStore for CountingStore<S> {
    async fn create_rule(&self, rule: AlertRule) -> Result<AlertRule> {
        self.count("create_rule");
        self.inner.create_rule(rule).await
    }
    async fn update_rule(&self, rule: AlertRule) -> Result<AlertRule> {
        self.count("update_rule");
        self.inner.update_rule(rule).await
    }
    async fn get_rule(&self, id: Uuid) -> Result<AlertRule> {
        self.count("get_rule");
        self.inner.get_rule(id).await
    }
    async fn list_rules(&self) -> Result<Vec<AlertRule>> {
        self.count("list_rules");
        self.inner.list_rules().await
    }
    async fn delete_rule(&self, id: Uuid) -> Result<()> {
        self.count("delete_rule");
        self.inner.delete_rule(id).await
    }
    async fn subscriptions(&self, user_id: &str) -> Result<Vec<Subscription>> {
        self.count("subscriptions");
        self.inner.subscriptions(user_id).await
    }
    async fn set_subscriptions(&self, user_id: &str, subs: Vec<Subscription>) -> Result<()> {
        self.count("set_subscriptions");
        self.inner.set_subscriptions(user_id, subs).await
    }
    async fn subscribers(&self, alert_type: &str, severity: Severity) -> Result<Vec<Subscription>> {
        self.count("subscribers");
        self.inner.subscribers(alert_type, severity).await
    }
    async fn contact(&self, user_id: &str) -> Result<Option<Recipient>> {
        self.count("contact");
        self.inner.contact(user_id).await
    }
    async fn set_contact(&self, contact: Recipient) -> Result<()> {
        self.count("set_contact");
        self.inner.set_contact(contact).await
    }
    async fn routes(&self) -> Result<Vec<Route>> {
        self.count("routes");
        self.inner.routes().await
    }
    async fn put_route(&self, route: Route) -> Result<()> {
        self.count("put_route");
        self.inner.put_route(route).await
    }
    async fn delete_route(&self, id: Uuid) -> Result<()> {
        self.count("delete_route");
        self.inner.delete_route(id).await
    }
}

#[async_trait]
impl<S: Store> Outbox for CountingStore<S> {
    async fn claim_deliveries(
        &self,
        now: DateTime<Utc>,
        lease: Duration,
        limit: u32,
    ) -> Result<Vec<ClaimedDelivery>> {
        self.count("claim_deliveries");
        self.inner.claim_deliveries(now, lease, limit).await
    }
    async fn claim_digest(
        &self,
        user_id: &str,
        channel: Channel,
        now: DateTime<Utc>,
        lease: Duration,
        limit: u32,
    ) -> Result<Vec<ClaimedDelivery>> {
        self.count("claim_digest");
        self.inner
            .claim_digest(user_id, channel, now, lease, limit)
            .await
    }
    async fn complete_delivery(
        &self,
        id: Uuid,
        attempt: u32,
        outcome: DeliveryOutcome,
        now: DateTime<Utc>,
    ) -> Result<Delivery> {
        self.count("complete_delivery");
        self.inner
            .complete_delivery(id, attempt, outcome, now)
            .await
    }
    async fn deliveries(&self, alert_id: AlertId) -> Result<Vec<Delivery>> {
        self.count("deliveries");
        self.inner.deliveries(alert_id).await
    }
    async fn deliveries_in(&self, status: DeliveryStatus, limit: u32) -> Result<Vec<Delivery>> {
        self.count("deliveries_in");
        self.inner.deliveries_in(status, limit).await
    }
    async fn retry_delivery(&self, id: Uuid, now: DateTime<Utc>) -> Result<Delivery> {
        self.count("retry_delivery");
        self.inner.retry_delivery(id, now).await
    }
    async fn attempts(&self, delivery_id: Uuid) -> Result<Vec<DeliveryAttempt>> {
        self.count("attempts");
        self.inner.attempts(delivery_id).await
    }

    async fn backlog(&self, now: DateTime<Utc>) -> Result<alertkit_core::Backlog> {
        self.count("backlog");
        self.inner.backlog(now).await
    }
}

#[async_trait]
impl<S: Store> JobStore for CountingStore<S> {
    async fn claim_job_run(&self, run: &JobRun) -> Result<bool> {
        self.count("claim_job_run");
        self.inner.claim_job_run(run).await
    }
    async fn claim_job_runs(&self, runs: &[JobRun]) -> Result<Vec<bool>> {
        self.count("claim_job_runs");
        self.inner.claim_job_runs(runs).await
    }
    async fn update_job_run(&self, run: &JobRun) -> Result<()> {
        self.count("update_job_run");
        self.inner.update_job_run(run).await
    }
    async fn job_runs(&self, job_id: &str, limit: u32) -> Result<Vec<JobRun>> {
        self.count("job_runs");
        self.inner.job_runs(job_id, limit).await
    }
    async fn claim_stale_job_runs(
        &self,
        job_ids: &[String],
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<JobRun>> {
        self.count("claim_stale_job_runs");
        self.inner
            .claim_stale_job_runs(job_ids, now, lease_until, limit)
            .await
    }
    async fn set_job_paused(&self, job_id: &str, paused: bool, now: DateTime<Utc>) -> Result<()> {
        self.count("set_job_paused");
        self.inner.set_job_paused(job_id, paused, now).await
    }
    async fn paused_jobs(&self) -> Result<Vec<String>> {
        self.count("paused_jobs");
        self.inner.paused_jobs().await
    }
}
