//! [`Outbox`]: the delivery outbox.

use super::*;
use alertkit_core::Channel;

#[async_trait]
impl Outbox for PostgresAlertStore {
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
        let mut tx = self.pool.begin().await.pg()?;
        let sql = format!("SELECT {DELIVERY_COLS} FROM deliveries WHERE id = $1 FOR UPDATE");
        let Some(row) = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&mut *tx)
            .await
            .pg()?
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
            "UPDATE deliveries SET status = $2, next_attempt_at = $3, lease_until = $4, \
             last_error = $5, updated_at = $6 WHERE id = $1",
        )
        .bind(id)
        .bind(d.status.as_str())
        .bind(d.next_attempt_at)
        .bind(d.lease_until)
        .bind(d.last_error.as_deref())
        .bind(d.updated_at)
        .execute(&mut *tx)
        .await
        .pg()?;
        let a = alertkit_core::DeliveryAttempt::of(id, attempt, &outcome, now);
        sqlx::query(
            "INSERT INTO delivery_attempts (id, delivery_id, attempt, at, outcome, error) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(Uuid::now_v7())
        .bind(id)
        .bind(to_i32(attempt))
        .bind(now)
        .bind(&a.outcome)
        .bind(a.error.as_deref())
        .execute(&mut *tx)
        .await
        .pg()?;
        tx.commit().await.pg()?;
        Ok(d)
    }

    async fn deliveries(&self, alert_id: AlertId) -> Result<Vec<Delivery>> {
        let sql = format!(
            "SELECT {DELIVERY_COLS} FROM deliveries WHERE alert_id = $1 ORDER BY created_at, id"
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(alert_id.as_uuid())
            .fetch_all(&self.pool)
            .await
            .pg()?
            .iter()
            .map(delivery_from_row)
            .collect()
    }

    async fn deliveries_in(&self, status: DeliveryStatus, limit: u32) -> Result<Vec<Delivery>> {
        let sql = format!(
            "SELECT {DELIVERY_COLS} FROM deliveries WHERE status = $1 \
             ORDER BY updated_at DESC, id DESC LIMIT $2"
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(status.as_str())
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .pg()?
            .iter()
            .map(delivery_from_row)
            .collect()
    }

    async fn retry_delivery(&self, id: Uuid, now: DateTime<Utc>) -> Result<Delivery> {
        let mut tx = self.pool.begin().await.pg()?;
        let sql = format!("SELECT {DELIVERY_COLS} FROM deliveries WHERE id = $1 FOR UPDATE");
        let Some(row) = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&mut *tx)
            .await
            .pg()?
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
            "UPDATE deliveries SET status = $2, attempts = 0, next_attempt_at = $3, \
             lease_until = NULL, updated_at = $3 WHERE id = $1",
        )
        .bind(id)
        .bind(d.status.as_str())
        .bind(now)
        .execute(&mut *tx)
        .await
        .pg()?;
        tx.commit().await.pg()?;
        Ok(d)
    }

    async fn attempts(&self, delivery_id: Uuid) -> Result<Vec<alertkit_core::DeliveryAttempt>> {
        let rows = sqlx::query(
            "SELECT attempt, at, outcome, error FROM delivery_attempts \
             WHERE delivery_id = $1 ORDER BY at, id",
        )
        .bind(delivery_id)
        .fetch_all(&self.pool)
        .await
        .pg()?;
        rows.iter()
            .map(|r| {
                Ok(alertkit_core::DeliveryAttempt {
                    delivery_id,
                    attempt: count_from(BACKEND, r.try_get("attempt").pg()?)?,
                    at: r.try_get("at").pg()?,
                    outcome: r.try_get("outcome").pg()?,
                    error: r.try_get("error").pg()?,
                })
            })
            .collect()
    }

    async fn backlog(&self, now: DateTime<Utc>) -> Result<alertkit_core::Backlog> {
        let row = sqlx::query(
            "SELECT count(*) AS n, min(next_attempt_at) FILTER \
             (WHERE status = 'pending' AND next_attempt_at <= $1) AS oldest \
             FROM deliveries WHERE status IN ('pending', 'in_flight')",
        )
        .bind(now)
        .fetch_one(&self.pool)
        .await
        .pg()?;
        Ok(alertkit_core::Backlog {
            unfinished: to_u64(row.try_get("n").pg()?),
            oldest_due: row.try_get("oldest").pg()?,
        })
    }
}

impl PostgresAlertStore {
    /// Claims due deliveries; only the digest items of one (user, channel)
    /// when `digest_of` is given.
    async fn claim(
        &self,
        now: DateTime<Utc>,
        lease: Duration,
        limit: u32,
        digest_of: Option<(&str, Channel)>,
    ) -> Result<Vec<ClaimedDelivery>> {
        let mut tx = self.pool.begin().await.pg()?;
        let sql = format!(
            "UPDATE deliveries d SET status = 'in_flight', lease_until = $2, \
               attempts = d.attempts + 1, updated_at = $1 \
             FROM (SELECT id FROM deliveries \
                   WHERE ((status = 'pending' AND next_attempt_at <= $1) \
                      OR (status = 'in_flight' AND lease_until <= $1)) {} \
                   ORDER BY next_attempt_at, id LIMIT $3 FOR UPDATE SKIP LOCKED) due \
             WHERE d.id = due.id RETURNING {}",
            if digest_of.is_some() {
                "AND digest IS NOT NULL AND user_id = $4 AND channel = $5"
            } else {
                ""
            },
            DELIVERY_COLS
                .split(", ")
                .map(|c| format!("d.{c}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let (user, channel) = digest_of.map_or(("", ""), |(u, c)| (u, c.as_str()));
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(now)
            .bind(now + lease)
            .bind(i64::from(limit))
            .bind(user)
            .bind(channel)
            .fetch_all(&mut *tx)
            .await
            .pg()?;
        let mut deliveries = rows
            .iter()
            .map(delivery_from_row)
            .collect::<Result<Vec<_>>>()?;
        deliveries.sort_by_key(|d| (d.next_attempt_at, d.id));
        let ids: Vec<Uuid> = deliveries.iter().map(|d| d.alert_id.as_uuid()).collect();
        let sql = format!("SELECT {ALERT_COLS} FROM alerts a WHERE a.id = ANY($1)");
        let alerts: HashMap<AlertId, Alert> = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(ids)
            .fetch_all(&mut *tx)
            .await
            .pg()?
            .iter()
            .map(|r| alert_from_row(r).map(|a| (a.id, a)))
            .collect::<Result<_>>()?;
        tx.commit().await.pg()?;
        Ok(pair_with_alerts(deliveries, &alerts))
    }
}
