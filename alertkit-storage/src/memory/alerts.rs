//! [`AlertStore`]: reads, receipts, the change feed, resolve, delete, purge.

use super::*;

impl State {
    pub(super) fn receipt(&self, id: AlertId, user: &str) -> Receipt {
        self.receipts
            .get(&id)
            .and_then(|m| m.get(user))
            .copied()
            .unwrap_or_default()
    }

    /// The alert if the viewer may see it at `now`.
    pub(super) fn visible(
        &self,
        viewer: &Viewer,
        id: AlertId,
        now: DateTime<Utc>,
    ) -> Result<&Alert> {
        self.alerts
            .get(&id)
            .filter(|a| !a.is_expired(now) && a.audience.is_visible_to(viewer))
            .ok_or_else(|| Error::not_found(format!("alert {id}")))
    }

    /// Visible, unexpired alerts matching the filter, newest first.
    pub(super) fn matching<'a>(
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

    pub(super) fn remove(&mut self, id: AlertId) -> Option<Alert> {
        let alert = self.alerts.remove(&id)?;
        self.by_seq.remove(&alert.seq);
        self.order.remove(&(alert.created_at, id));
        self.receipts.remove(&id);
        let gone: Vec<Uuid> = self
            .deliveries
            .values()
            .filter(|d| d.alert_id == id)
            .map(|d| d.id)
            .collect();
        for d in gone {
            self.attempts.remove(&d);
        }
        self.deliveries.retain(|_, d| d.alert_id != id);
        self.delivery_keys.retain(|k| k.0 != id);
        if let Some(scope) = alert.dedup_scope()
            && self.active_keys.get(&scope) == Some(&id)
        {
            self.active_keys.remove(&scope);
        }
        Some(alert)
    }

    pub(super) fn touch_receipt(
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
    pub(super) fn read(&self) -> RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn write(&self) -> RwLockWriteGuard<'_, State> {
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
        let scope = alert.dedup_scope();
        if let Some(scope) = &scope
            && let Some(existing_id) = s.active_keys.get(scope).copied()
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
        if let Some(scope) = scope
            && alert.status == AlertStatus::Active
        {
            s.active_keys.insert(scope, alert.id);
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

    async fn find_active(
        &self,
        dedup_key: &str,
        created_by: Option<String>,
        _now: DateTime<Utc>,
    ) -> Result<Vec<Alert>> {
        let s = self.read();
        let mut out: Vec<Alert> = s
            .active_keys
            .values()
            .filter_map(|id| s.alerts.get(id))
            .filter(|a| a.dedup_key.as_deref() == Some(dedup_key))
            .filter(|a| created_by.is_none() || a.created_by == created_by)
            .cloned()
            .collect();
        out.sort_by_key(|a| (a.created_at, a.id));
        Ok(out)
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
        if let Some(scope) = alert.dedup_scope()
            && s.active_keys.get(&scope) == Some(&id)
        {
            s.active_keys.remove(&scope);
        }
        Ok((alert, true))
    }

    async fn receipts(&self, id: AlertId) -> Result<HashMap<String, Receipt>> {
        Ok(self.read().receipts.get(&id).cloned().unwrap_or_default())
    }

    async fn receipts_many(
        &self,
        ids: &[AlertId],
    ) -> Result<HashMap<AlertId, HashMap<String, Receipt>>> {
        let s = self.read();
        Ok(ids
            .iter()
            .filter_map(|id| s.receipts.get(id).map(|r| (*id, r.clone())))
            .collect())
    }

    async fn changes_for(
        &self,
        viewer: &Viewer,
        after: u64,
        upto: u64,
        limit: u32,
        now: DateTime<Utc>,
    ) -> Result<Vec<AlertView>> {
        if after >= upto {
            return Ok(Vec::new());
        }
        let s = self.read();
        Ok(s.by_seq
            .range(after + 1..=upto)
            .filter_map(|(_, id)| s.alerts.get(id))
            .filter(|a| !a.is_expired(now))
            .filter(|a| viewer.sees_all || a.audience.is_visible_to(viewer))
            .take(limit as usize)
            .map(|a| AlertView::new(a.clone(), s.receipt(a.id, &viewer.user_id)))
            .collect())
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
}
