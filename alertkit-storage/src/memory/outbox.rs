//! [`Outbox`]: the delivery outbox.

use super::*;
use alertkit_core::Channel;

#[async_trait]
impl Outbox for MemoryAlertStore {
    async fn claim_deliveries(
        &self,
        now: DateTime<Utc>,
        lease: Duration,
        limit: u32,
    ) -> Result<Vec<ClaimedDelivery>> {
        Ok(self.claim(now, lease, limit, |_| true))
    }

    async fn claim_digest(
        &self,
        user_id: &str,
        channel: Channel,
        now: DateTime<Utc>,
        lease: Duration,
        limit: u32,
    ) -> Result<Vec<ClaimedDelivery>> {
        Ok(self.claim(now, lease, limit, |d| {
            d.digest.is_some() && d.user_id == user_id && d.channel == channel
        }))
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
        let out = d.clone();
        s.attempts
            .entry(id)
            .or_default()
            .push(alertkit_core::DeliveryAttempt::of(
                id, attempt, &outcome, now,
            ));
        Ok(out)
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

    async fn deliveries_in(&self, status: DeliveryStatus, limit: u32) -> Result<Vec<Delivery>> {
        let mut out: Vec<Delivery> = self
            .read()
            .deliveries
            .values()
            .filter(|d| d.status == status)
            .cloned()
            .collect();
        out.sort_by_key(|d| std::cmp::Reverse((d.updated_at, d.id)));
        out.truncate(limit as usize);
        Ok(out)
    }

    async fn retry_delivery(&self, id: Uuid, now: DateTime<Utc>) -> Result<Delivery> {
        let mut s = self.write();
        let d = s
            .deliveries
            .get_mut(&id)
            .ok_or_else(|| Error::not_found(format!("delivery {id}")))?;
        if d.status != DeliveryStatus::Dead {
            return Err(Error::Conflict(format!(
                "delivery {id} is not a dead letter"
            )));
        }
        d.replay(now);
        Ok(d.clone())
    }

    async fn attempts(&self, delivery_id: Uuid) -> Result<Vec<alertkit_core::DeliveryAttempt>> {
        Ok(self
            .read()
            .attempts
            .get(&delivery_id)
            .cloned()
            .unwrap_or_default())
    }

    async fn backlog(&self, now: DateTime<Utc>) -> Result<alertkit_core::Backlog> {
        let s = self.read();
        let mut b = alertkit_core::Backlog::default();
        for d in s.deliveries.values() {
            match d.status {
                DeliveryStatus::Pending | DeliveryStatus::InFlight => b.unfinished += 1,
                _ => continue,
            }
            if d.status == DeliveryStatus::Pending && d.next_attempt_at <= now {
                b.oldest_due = Some(
                    b.oldest_due
                        .map_or(d.next_attempt_at, |o| o.min(d.next_attempt_at)),
                );
            }
        }
        Ok(b)
    }
}

impl MemoryAlertStore {
    /// Claims the due deliveries that `only` accepts.
    fn claim(
        &self,
        now: DateTime<Utc>,
        lease: Duration,
        limit: u32,
        only: impl Fn(&Delivery) -> bool,
    ) -> Vec<ClaimedDelivery> {
        let mut s = self.write();
        let mut due: Vec<(DateTime<Utc>, Uuid)> = s
            .deliveries
            .values()
            .filter(|d| d.is_claimable(now) && only(d))
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
        out
    }
}
