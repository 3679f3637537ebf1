//! [`Outbox`]: the delivery outbox.

use super::*;
use alertkit_core::Channel;

#[async_trait]
impl Outbox for SqliteAlertStore {
    async fn claim_deliveries(
        &self,
        now: DateTime<Utc>,
        lease: Duration,
        limit: u32,
    ) -> Result<Vec<ClaimedDelivery>> {
        self.claim(now, lease, limit, None).await
    }

    async fn claim_digest(
        &self,
        user_id: &str,
        channel: Channel,
        now: DateTime<Utc>,
        lease: Duration,
        limit: u32,
    ) -> Result<Vec<ClaimedDelivery>> {
        self.claim(now, lease, limit, Some((user_id, channel)))
            .await
    }

    async fn complete_delivery(
        &self,
        id: Uuid,
        attempt: u32,
        outcome: DeliveryOutcome,
        now: DateTime<Utc>,
    ) -> Result<Delivery> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await.lite()?;
        let sql = format!("SELECT {DELIVERY_COLS} FROM deliveries WHERE id = ?");
        let Some(row) = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&mut *tx)
            .await
            .lite()?
        else {
            return Err(Error::not_found(format!("delivery {id}")));
        };
        let mut d = delivery_from_row(&row)?;
        if d.status != DeliveryStatus::InFlight || d.attempts != attempt {
            return Err(Error::Conflict(format!(
                "delivery {id} is not in flight on attempt {attempt}"
            )));
        }
        d.complete(&outcome, now);
        sqlx::query(
            "UPDATE deliveries SET status = ?, next_attempt_at = ?, lease_until = ?, \
             last_error = ?, updated_at = ? WHERE id = ?",
        )
        .bind(d.status.as_str())
        .bind(ms(d.next_attempt_at))
        .bind(opt_ms(d.lease_until))
        .bind(d.last_error.as_deref())
        .bind(ms(d.updated_at))
        .bind(id)
        .execute(&mut *tx)
        .await
        .lite()?;
        let a = alertkit_core::DeliveryAttempt::of(id, attempt, &outcome, now);
        sqlx::query(
            "INSERT INTO delivery_attempts (id, delivery_id, attempt, at, outcome, error) \
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(Uuid::now_v7())
        .bind(id)
        .bind(to_i32(attempt))
        .bind(ms(now))
        .bind(&a.outcome)
        .bind(a.error.as_deref())
        .execute(&mut *tx)
        .await
        .lite()?;
        tx.commit().await.lite()?;
        Ok(d)
    }

    async fn deliveries(&self, alert_id: AlertId) -> Result<Vec<Delivery>> {
        let sql = format!(
            "SELECT {DELIVERY_COLS} FROM deliveries WHERE alert_id = ? ORDER BY created_at, id"
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(alert_id.as_uuid())
            .fetch_all(&self.pool)
            .await
            .lite()?
            .iter()
            .map(delivery_from_row)
            .collect()
    }

    async fn deliveries_in(&self, status: DeliveryStatus, limit: u32) -> Result<Vec<Delivery>> {
        let sql = format!(
            "SELECT {DELIVERY_COLS} FROM deliveries WHERE status = ? \
             ORDER BY updated_at DESC, id DESC LIMIT ?"
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(status.as_str())
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .lite()?
            .iter()
            .map(delivery_from_row)
            .collect()
    }

    async fn retry_delivery(&self, id: Uuid, now: DateTime<Utc>) -> Result<Delivery> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await.lite()?;
        let sql = format!("SELECT {DELIVERY_COLS} FROM deliveries WHERE id = ?");
        let Some(row) = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&mut *tx)
            .await
            .lite()?
        else {
            return Err(Error::not_found(format!("delivery {id}")));
        };
        let mut d = delivery_from_row(&row)?;
        if d.status != DeliveryStatus::Dead {
            return Err(Error::Conflict(format!(
                "delivery {id} is not a dead letter"
            )));
        }
        d.replay(now);
        sqlx::query(
            "UPDATE deliveries SET status = ?, attempts = 0, next_attempt_at = ?, \
             lease_until = NULL, updated_at = ? WHERE id = ?",
        )
        .bind(d.status.as_str())
        .bind(ms(now))
        .bind(ms(now))
        .bind(id)
        .execute(&mut *tx)
        .await
        .lite()?;
        tx.commit().await.lite()?;
        Ok(d)
    }

    async fn attempts(&self, delivery_id: Uuid) -> Result<Vec<alertkit_core::DeliveryAttempt>> {
        let rows = sqlx::query(
            "SELECT attempt, at, outcome, error FROM delivery_attempts \
             WHERE delivery_id = ? ORDER BY at, id",
        )
        .bind(delivery_id)
        .fetch_all(&self.pool)
        .await
        .lite()?;
        rows.iter()
            .map(|r| {
                Ok(alertkit_core::DeliveryAttempt {
                    delivery_id,
                    attempt: count_from(BACKEND, r.try_get("attempt").lite()?)?,
                    at: time(r.try_get("at").lite()?)?,
                    outcome: r.try_get("outcome").lite()?,
                    error: r.try_get("error").lite()?,
                })
            })
            .collect()
    }

    async fn backlog(&self, now: DateTime<Utc>) -> Result<alertkit_core::Backlog> {
        let row = sqlx::query(
            "SELECT count(*) AS n, min(next_attempt_at) FILTER \
             (WHERE status = 'pending' AND next_attempt_at <= ?1) AS oldest \
             FROM deliveries WHERE status IN ('pending', 'in_flight')",
        )
        .bind(ms(now))
        .fetch_one(&self.pool)
        .await
        .lite()?;
        Ok(alertkit_core::Backlog {
            unfinished: to_u64(row.try_get("n").lite()?),
            oldest_due: opt_time(row.try_get("oldest").lite()?)?,
        })
    }
}

impl SqliteAlertStore {
    /// Claims due deliveries; only the digest items of one (user, channel)
    /// when `digest_of` is given.
    async fn claim(
        &self,
        now: DateTime<Utc>,
        lease: Duration,
        limit: u32,
        digest_of: Option<(&str, Channel)>,
    ) -> Result<Vec<ClaimedDelivery>> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await.lite()?;
        let sql = format!(
            "UPDATE deliveries SET status = 'in_flight', lease_until = ?, attempts = attempts + 1, \
               updated_at = ? \
             WHERE id IN (SELECT id FROM deliveries \
                 WHERE ((status = 'pending' AND next_attempt_at <= ?) \
                    OR (status = 'in_flight' AND lease_until <= ?)) {only} \
                 ORDER BY next_attempt_at, id LIMIT ?) \
             RETURNING {DELIVERY_COLS}",
            only = if digest_of.is_some() {
                "AND digest IS NOT NULL AND user_id = ? AND channel = ?"
            } else {
                ""
            }
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(ms(now + lease))
            .bind(ms(now))
            .bind(ms(now))
            .bind(ms(now));
        if let Some((user, channel)) = digest_of {
            q = q.bind(user).bind(channel.as_str());
        }
        let rows = q.bind(i64::from(limit)).fetch_all(&mut *tx).await.lite()?;
        let mut deliveries = rows
            .iter()
            .map(delivery_from_row)
            .collect::<Result<Vec<_>>>()?;
        deliveries.sort_by_key(|d| (d.next_attempt_at, d.id));
        let mut alerts: HashMap<AlertId, Alert> = HashMap::new();
        for d in &deliveries {
            if alerts.contains_key(&d.alert_id) {
                continue;
            }
            let sql = format!("SELECT {ALERT_COLS} FROM alerts a WHERE a.id = ?");
            if let Some(row) = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(d.alert_id.as_uuid())
                .fetch_optional(&mut *tx)
                .await
                .lite()?
            {
                alerts.insert(d.alert_id, alert_from_row(&row)?);
            }
        }
        tx.commit().await.lite()?;
        Ok(pair_with_alerts(deliveries, &alerts))
    }
}
