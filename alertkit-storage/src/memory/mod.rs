//! The in-memory store: the reference semantics of [`AlertStore`].

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use alertkit_core::query::{COUNT_CAP, CursorPosition};
use alertkit_core::{
    Alert, AlertFilter, AlertId, AlertQuery, AlertRule, AlertStatus, AlertStore, AlertView,
    Channel, ClaimedDelivery, Delivery, DeliveryOutcome, DeliveryStatus, DeliveryTarget, Error,
    JobRun, Page, Raised, Receipt, Result, Severity, Stats, Subscription, Viewer,
};
use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

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
    /// dedup_key → the active alert holding it.
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

impl State {
    fn receipt(&self, id: AlertId, user: &str) -> Receipt {
        self.receipts
            .get(&id)
            .and_then(|m| m.get(user))
            .copied()
            .unwrap_or_default()
    }

    /// The alert if the viewer may see it at `now`.
    fn visible(&self, viewer: &Viewer, id: AlertId, now: DateTime<Utc>) -> Result<&Alert> {
        self.alerts
            .get(&id)
            .filter(|a| !a.is_expired(now) && a.audience.is_visible_to(viewer))
            .ok_or_else(|| Error::not_found(format!("alert {id}")))
    }

    /// Visible, unexpired alerts matching the filter, newest first.
    fn matching<'a>(
        &'a self,
        viewer: &'a Viewer,
        filter: &'a AlertFilter,
        now: DateTime<Utc>,
        before: Option<CursorPosition>,
    ) -> impl Iterator<Item = (&'a Alert, Receipt)> + 'a {
        let range = match before {
            Some(p) => self.order.range(..(p.created_at, p.id)),
            None => self.order.range(..),
        };
        range.rev().filter_map(move |(_, id)| {
            let alert = self.alerts.get(id)?;
            if alert.is_expired(now) || !alert.audience.is_visible_to(viewer) {
                return None;
            }
            let receipt = self.receipt(alert.id, &viewer.user_id);
            filter.matches(alert, &receipt).then_some((alert, receipt))
        })
    }

    fn enqueue(&mut self, alert: &Alert, targets: &[DeliveryTarget], now: DateTime<Utc>) {
        for t in targets {
            let key = (alert.id, t.user_id.clone(), t.channel, alert.severity);
            if self.delivery_keys.insert(key) {
                let d = Delivery::new(alert, t, now);
                self.deliveries.insert(d.id, d);
            }
        }
    }

    /// Gives the alert the next change sequence number. Changes happen under
    /// the write lock, so numbers follow commit order.
    fn stamp(&mut self, id: AlertId) -> Result<Alert> {
        let alert = self
            .alerts
            .get_mut(&id)
            .ok_or_else(|| Error::not_found(format!("alert {id}")))?;
        self.seq += 1;
        let seq = self.seq;
        self.by_seq.remove(&alert.seq);
        alert.seq = seq;
        self.by_seq.insert(seq, id);
        Ok(alert.clone())
    }

    fn remove(&mut self, id: AlertId) -> Option<Alert> {
        let alert = self.alerts.remove(&id)?;
        self.by_seq.remove(&alert.seq);
        self.order.remove(&(alert.created_at, id));
        self.receipts.remove(&id);
        self.deliveries.retain(|_, d| d.alert_id != id);
        self.delivery_keys.retain(|k| k.0 != id);
        if let Some(key) = &alert.dedup_key
            && self.active_keys.get(key) == Some(&id)
        {
            self.active_keys.remove(key);
        }
        Some(alert)
    }

    fn touch_receipt(
        &mut self,
        viewer: &Viewer,
        id: AlertId,
        now: DateTime<Utc>,
        set: impl FnOnce(&mut Receipt),
    ) -> Result<Receipt> {
        self.visible(viewer, id, now)?;
        let r = self
            .receipts
            .entry(id)
            .or_default()
            .entry(viewer.user_id.clone())
            .or_default();
        set(r);
        Ok(*r)
    }
}

impl MemoryAlertStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    // A panic while holding the lock cannot leave State half-updated in a way
    // that breaks later calls (every method checks before it writes), so a
    // poisoned lock is recovered rather than propagated.
    fn read(&self) -> RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl AlertStore for MemoryAlertStore {
    fn backend(&self) -> &'static str {
        "memory"
    }

    async fn ping(&self) -> Result<()> {
        Ok(())
    }

    async fn insert_or_dedup(
        &self,
        alert: Alert,
        deliveries: &[DeliveryTarget],
        now: DateTime<Utc>,
    ) -> Result<Raised> {
        let mut s = self.write();
        if let Some(key) = &alert.dedup_key
            && let Some(existing_id) = s.active_keys.get(key).copied()
            && let Some(existing) = s.alerts.get_mut(&existing_id)
        {
            let escalated = existing.merge_repeat(&alert, now);
            let merged = s.stamp(existing_id)?;
            if escalated {
                s.enqueue(&merged, deliveries, now);
            }
            return Ok(Raised {
                alert: merged,
                deduplicated: true,
                escalated,
            });
        }
        if s.alerts.contains_key(&alert.id) {
            return Err(Error::Conflict(format!(
                "alert {} already exists",
                alert.id
            )));
        }
        if let Some(key) = &alert.dedup_key
            && alert.status == AlertStatus::Active
        {
            s.active_keys.insert(key.clone(), alert.id);
        }
        s.order.insert((alert.created_at, alert.id));
        let id = alert.id;
        s.alerts.insert(id, alert.clone());
        let alert = s.stamp(id)?;
        s.enqueue(&alert, deliveries, now);
        Ok(Raised {
            alert,
            deduplicated: false,
            escalated: false,
        })
    }

    async fn find_active(&self, dedup_key: &str, _now: DateTime<Utc>) -> Result<Option<Alert>> {
        let s = self.read();
        Ok(s.active_keys
            .get(dedup_key)
            .and_then(|id| s.alerts.get(id))
            .cloned())
    }

    async fn get(&self, viewer: &Viewer, id: AlertId, now: DateTime<Utc>) -> Result<AlertView> {
        let s = self.read();
        let alert = s.visible(viewer, id, now)?.clone();
        let receipt = s.receipt(id, &viewer.user_id);
        Ok(AlertView::new(alert, receipt))
    }

    async fn list(&self, viewer: &Viewer, query: &AlertQuery, now: DateTime<Utc>) -> Result<Page> {
        let before = query.cursor.as_ref().map(|c| c.position()).transpose()?;
        let limit = query.effective_limit();
        let s = self.read();
        let views = s
            .matching(viewer, &query.filter, now, before)
            .take(limit as usize + 1)
            .map(|(a, r)| AlertView::new(a.clone(), r))
            .collect();
        let (total, unread) = match before.and_then(|p| p.totals) {
            Some(carried) => carried,
            None => s
                .matching(viewer, &query.filter, now, None)
                .take(COUNT_CAP as usize)
                .fold((0, 0), |(t, u), (_, r)| {
                    (t + 1, u + u64::from(!r.is_read()))
                }),
        };
        Ok(Page::from_fetched(views, limit, total, unread))
    }

    async fn count(
        &self,
        viewer: &Viewer,
        filter: &AlertFilter,
        now: DateTime<Utc>,
    ) -> Result<u64> {
        Ok(self.read().matching(viewer, filter, now, None).count() as u64)
    }

    async fn stats(
        &self,
        viewer: &Viewer,
        filter: &AlertFilter,
        now: DateTime<Utc>,
    ) -> Result<Stats> {
        let mut stats = Stats::default();
        for (a, r) in self.read().matching(viewer, filter, now, None) {
            stats.add(a, &r);
        }
        Ok(stats)
    }

    async fn mark_read(&self, viewer: &Viewer, id: AlertId, now: DateTime<Utc>) -> Result<Receipt> {
        self.write().touch_receipt(viewer, id, now, |r| {
            r.read_at.get_or_insert(now);
        })
    }

    async fn mark_all_read(
        &self,
        viewer: &Viewer,
        filter: &AlertFilter,
        now: DateTime<Utc>,
    ) -> Result<Vec<AlertId>> {
        let mut s = self.write();
        let ids: Vec<AlertId> = s
            .matching(viewer, filter, now, None)
            .filter(|(_, r)| !r.is_read())
            .map(|(a, _)| a.id)
            .collect();
        for id in &ids {
            s.receipts
                .entry(*id)
                .or_default()
                .entry(viewer.user_id.clone())
                .or_default()
                .read_at = Some(now);
        }
        Ok(ids)
    }

    async fn dismiss(&self, viewer: &Viewer, id: AlertId, now: DateTime<Utc>) -> Result<Receipt> {
        self.write().touch_receipt(viewer, id, now, |r| {
            r.dismissed_at.get_or_insert(now);
        })
    }

    async fn resolve(&self, id: AlertId, now: DateTime<Utc>) -> Result<(Alert, bool)> {
        let mut s = self.write();
        let alert = s
            .alerts
            .get_mut(&id)
            .ok_or_else(|| Error::not_found(format!("alert {id}")))?;
        if alert.status == AlertStatus::Resolved {
            return Ok((alert.clone(), false));
        }
        alert.status = AlertStatus::Resolved;
        alert.updated_at = now;
        let alert = s.stamp(id)?;
        if let Some(key) = &alert.dedup_key
            && s.active_keys.get(key) == Some(&id)
        {
            s.active_keys.remove(key);
        }
        Ok((alert, true))
    }

    async fn receipts(&self, id: AlertId) -> Result<HashMap<String, Receipt>> {
        Ok(self.read().receipts.get(&id).cloned().unwrap_or_default())
    }

    async fn changes_since(
        &self,
        after: u64,
        limit: u32,
        now: DateTime<Utc>,
    ) -> Result<Vec<Alert>> {
        let s = self.read();
        Ok(s.by_seq
            .range(after.saturating_add(1)..)
            .filter_map(|(_, id)| s.alerts.get(id))
            .filter(|a| !a.is_expired(now))
            .take(limit as usize)
            .cloned()
            .collect())
    }

    async fn latest_seq(&self) -> Result<u64> {
        Ok(self.read().seq)
    }

    async fn delete(&self, id: AlertId) -> Result<Alert> {
        self.write()
            .remove(id)
            .ok_or_else(|| Error::not_found(format!("alert {id}")))
    }

    async fn purge_expired(
        &self,
        now: DateTime<Utc>,
        retention: Duration,
        batch: u32,
    ) -> Result<u64> {
        let cutoff = now - retention;
        let mut s = self.write();
        let doomed: Vec<AlertId> = s
            .order
            .iter()
            .filter_map(|(_, id)| s.alerts.get(id))
            .filter(|a| a.is_expired(now) || a.updated_at < cutoff)
            .take(batch as usize)
            .map(|a| a.id)
            .collect();
        for id in &doomed {
            s.remove(*id);
        }
        Ok(doomed.len() as u64)
    }

    async fn create_rule(&self, rule: AlertRule) -> Result<AlertRule> {
        let mut s = self.write();
        if s.rules.contains_key(&rule.id) {
            return Err(Error::Conflict(format!("rule {} already exists", rule.id)));
        }
        if s.rules.values().any(|r| r.name == rule.name) {
            return Err(Error::Conflict(format!(
                "a rule named `{}` exists",
                rule.name
            )));
        }
        s.rules.insert(rule.id, rule.clone());
        Ok(rule)
    }

    async fn update_rule(&self, rule: AlertRule) -> Result<AlertRule> {
        let mut s = self.write();
        if !s.rules.contains_key(&rule.id) {
            return Err(Error::not_found(format!("rule {}", rule.id)));
        }
        if s.rules
            .values()
            .any(|r| r.name == rule.name && r.id != rule.id)
        {
            return Err(Error::Conflict(format!(
                "a rule named `{}` exists",
                rule.name
            )));
        }
        s.rules.insert(rule.id, rule.clone());
        Ok(rule)
    }

    async fn get_rule(&self, id: Uuid) -> Result<AlertRule> {
        self.read()
            .rules
            .get(&id)
            .cloned()
            .ok_or_else(|| Error::not_found(format!("rule {id}")))
    }

    async fn list_rules(&self) -> Result<Vec<AlertRule>> {
        let mut rules: Vec<AlertRule> = self.read().rules.values().cloned().collect();
        rules.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(rules)
    }

    async fn delete_rule(&self, id: Uuid) -> Result<()> {
        self.write()
            .rules
            .remove(&id)
            .map(|_| ())
            .ok_or_else(|| Error::not_found(format!("rule {id}")))
    }

    async fn subscriptions(&self, user_id: &str) -> Result<Vec<Subscription>> {
        let mut subs = self
            .read()
            .subscriptions
            .get(user_id)
            .cloned()
            .unwrap_or_default();
        subs.sort_by(|a, b| a.alert_type.cmp(&b.alert_type));
        Ok(subs)
    }

    async fn set_subscriptions(&self, user_id: &str, subs: Vec<Subscription>) -> Result<()> {
        if subs.iter().any(|s| s.user_id != user_id) {
            return Err(Error::invalid("every subscription must belong to the user"));
        }
        let mut s = self.write();
        if subs.is_empty() {
            s.subscriptions.remove(user_id);
        } else {
            s.subscriptions.insert(user_id.to_owned(), subs);
        }
        Ok(())
    }

    async fn subscribers(&self, alert_type: &str, severity: Severity) -> Result<Vec<Subscription>> {
        Ok(self
            .read()
            .subscriptions
            .values()
            .flatten()
            .filter(|s| s.wants(alert_type, severity))
            .cloned()
            .collect())
    }

    async fn claim_deliveries(
        &self,
        now: DateTime<Utc>,
        lease: Duration,
        limit: u32,
    ) -> Result<Vec<ClaimedDelivery>> {
        let mut s = self.write();
        let mut due: Vec<(DateTime<Utc>, Uuid)> = s
            .deliveries
            .values()
            .filter(|d| d.is_claimable(now))
            .map(|d| (d.next_attempt_at, d.id))
            .collect();
        due.sort();
        due.truncate(limit as usize);
        let mut out = Vec::with_capacity(due.len());
        for (_, id) in due {
            let Some(d) = s.deliveries.get_mut(&id) else {
                continue;
            };
            d.claim(now, now + lease);
            let delivery = d.clone();
            if let Some(alert) = s.alerts.get(&delivery.alert_id) {
                out.push(ClaimedDelivery {
                    delivery,
                    alert: alert.clone(),
                });
            }
        }
        Ok(out)
    }

    async fn complete_delivery(
        &self,
        id: Uuid,
        attempt: u32,
        outcome: DeliveryOutcome,
        now: DateTime<Utc>,
    ) -> Result<Delivery> {
        let mut s = self.write();
        let d = s
            .deliveries
            .get_mut(&id)
            .ok_or_else(|| Error::not_found(format!("delivery {id}")))?;
        if d.status != DeliveryStatus::InFlight || d.attempts != attempt {
            return Err(Error::Conflict(format!(
                "delivery {id} is not in flight on attempt {attempt}"
            )));
        }
        d.complete(&outcome, now);
        Ok(d.clone())
    }

    async fn deliveries(&self, alert_id: AlertId) -> Result<Vec<Delivery>> {
        let mut out: Vec<Delivery> = self
            .read()
            .deliveries
            .values()
            .filter(|d| d.alert_id == alert_id)
            .cloned()
            .collect();
        out.sort_by_key(|d| (d.created_at, d.id));
        Ok(out)
    }

    async fn claim_job_run(&self, run: &JobRun) -> Result<bool> {
        let mut s = self.write();
        let key = (run.job_id.clone(), run.scheduled_at);
        if s.job_runs.contains_key(&key) {
            return Ok(false);
        }
        s.job_runs.insert(key, run.clone());
        Ok(true)
    }

    async fn update_job_run(&self, run: &JobRun) -> Result<()> {
        let mut s = self.write();
        match s.job_runs.get_mut(&(run.job_id.clone(), run.scheduled_at)) {
            Some(stored) if stored.id == run.id => {
                *stored = run.clone();
                Ok(())
            }
            _ => Err(Error::not_found(format!("job run {}", run.id))),
        }
    }

    async fn job_runs(&self, job_id: &str, limit: u32) -> Result<Vec<JobRun>> {
        Ok(self
            .read()
            .job_runs
            .values()
            .rev()
            .filter(|r| r.job_id == job_id)
            .take(limit as usize)
            .cloned()
            .collect())
    }
}
