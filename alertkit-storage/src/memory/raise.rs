//! The raise transaction: dedup, outbox enqueue, change number.

use super::*;

impl State {
    pub(super) fn enqueue(
        &mut self,
        alert: &Alert,
        targets: &[DeliveryTarget],
        now: DateTime<Utc>,
    ) {
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
    pub(super) fn stamp(&mut self, id: AlertId) -> Result<Alert> {
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
}
