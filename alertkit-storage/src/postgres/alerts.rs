//! [`AlertStore`]: reads, receipts, the change feed, resolve, delete, purge.

use super::*;

/// `FROM alerts a LEFT JOIN <viewer's receipts> WHERE <visible, unexpired, filter>`.
pub(super) fn push_from_where(
    qb: &mut QueryBuilder<Postgres>,
    viewer: &Viewer,
    filter: &AlertFilter,
    now: DateTime<Utc>,
) {
    qb.push(" FROM alerts a LEFT JOIN alert_receipts r ON r.alert_id = a.id AND r.user_id = ")
        .push_bind(viewer.user_id.clone())
        .push(" WHERE (a.expires_at IS NULL OR a.expires_at > ")
        .push_bind(now)
        .push(")");
    if !viewer.sees_all {
        qb.push(" AND a.audience && ")
            .push_bind(viewer_targets(viewer))
            .push("::text[]");
    }
    if let Some(since) = filter.since {
        qb.push(" AND a.created_at > ").push_bind(since);
    }
    if let Some(until) = filter.until {
        qb.push(" AND a.created_at <= ").push_bind(until);
    }
    if !filter.severities.is_empty() {
        let ranks: Vec<i16> = filter.severities.iter().map(|s| s.rank()).collect();
        qb.push(" AND a.severity = ANY(")
            .push_bind(ranks)
            .push("::int2[])");
    }
    if let Some(min) = filter.min_severity {
        qb.push(" AND a.severity >= ").push_bind(min.rank());
    }
    if !filter.alert_types.is_empty() {
        qb.push(" AND a.alert_type = ANY(")
            .push_bind(filter.alert_types.clone())
            .push("::text[])");
    }
    if !filter.tags.is_empty() {
        qb.push(" AND a.tags && ")
            .push_bind(filter.tags.clone())
            .push("::text[]");
    }
    if let Some(status) = filter.status {
        qb.push(" AND a.status = ").push_bind(status.as_str());
    }
    if filter.unread_only {
        qb.push(" AND r.read_at IS NULL");
    }
    if !filter.include_dismissed {
        qb.push(" AND r.dismissed_at IS NULL");
    }
}

/// `AND <alert a is visible to viewer and unexpired>`, for single-alert statements.
pub(super) fn push_visible(qb: &mut QueryBuilder<Postgres>, viewer: &Viewer, now: DateTime<Utc>) {
    qb.push(" AND (a.expires_at IS NULL OR a.expires_at > ")
        .push_bind(now)
        .push(")");
    if !viewer.sees_all {
        qb.push(" AND a.audience && ")
            .push_bind(viewer_targets(viewer))
            .push("::text[]");
    }
}

#[async_trait]
impl AlertStore for PostgresAlertStore {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await.pg()?;
        Ok(())
    }

    async fn insert_or_dedup(
        &self,
        alert: Alert,
        deliveries: &[DeliveryTarget],
        now: DateTime<Utc>,
    ) -> Result<Raised> {
        let mut tx = self.pool.begin().await.pg()?;
        let mut raised = [raise_in(&mut tx, alert, deliveries, now).await?];
        stamp_raised(&mut tx, &mut raised).await?;
        tx.commit().await.pg()?;
        let [raised] = raised;
        Ok(raised)
    }

    /// Inserts many alerts in one transaction: those without a dedup key in
    /// one multi-row statement, keyed ones one by one through dedup, and all
    /// their deliveries. Returns what each raise did, in input order.
    async fn insert_many(
        &self,
        items: Vec<(Alert, Vec<DeliveryTarget>)>,
        now: DateTime<Utc>,
    ) -> Result<Vec<Raised>> {
        let mut tx = self.pool.begin().await.pg()?;
        let mut out = Vec::with_capacity(items.len());
        let mut plain = Vec::new();
        for (alert, targets) in items {
            if alert.dedup_key.is_some() {
                out.push(Some(raise_in(&mut tx, alert, &targets, now).await?));
            } else {
                out.push(None);
                plain.push((alert, targets));
            }
        }
        insert_plain_batch(&mut tx, &plain, now).await?;
        let mut raised = in_input_order(out, plain);
        stamp_raised(&mut tx, &mut raised).await?;
        tx.commit().await.pg()?;
        Ok(raised)
    }

    async fn find_active(
        &self,
        dedup_key: &str,
        created_by: Option<String>,
        _now: DateTime<Utc>,
    ) -> Result<Vec<Alert>> {
        let sql = format!(
            "SELECT {ALERT_COLS} FROM alerts a WHERE a.dedup_key = $1 AND a.status = 'active' \
             AND ($2::text IS NULL OR a.created_by = $2) ORDER BY a.created_at, a.id"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(dedup_key)
            .bind(created_by)
            .fetch_all(&self.pool)
            .await
            .pg()?;
        rows.iter().map(alert_from_row).collect()
    }

    async fn get(&self, viewer: &Viewer, id: AlertId, now: DateTime<Utc>) -> Result<AlertView> {
        let mut qb = QueryBuilder::new(format!(
            "SELECT {ALERT_COLS}, r.read_at, r.dismissed_at FROM alerts a \
             LEFT JOIN alert_receipts r ON r.alert_id = a.id AND r.user_id = "
        ));
        qb.push_bind(viewer.user_id.clone())
            .push(" WHERE a.id = ")
            .push_bind(id.as_uuid());
        push_visible(&mut qb, viewer, now);
        match qb.build().fetch_optional(&self.pool).await.pg()? {
            Some(row) => view_from_row(&row),
            None => Err(Error::not_found(format!("alert {id}"))),
        }
    }

    async fn list(&self, viewer: &Viewer, query: &AlertQuery, now: DateTime<Utc>) -> Result<Page> {
        let before = query.cursor.as_ref().map(|c| c.position()).transpose()?;
        let limit = query.effective_limit();
        let mut qb = QueryBuilder::new(format!("SELECT {ALERT_COLS}, r.read_at, r.dismissed_at"));
        push_from_where(&mut qb, viewer, &query.filter, now);
        if let Some(p) = before {
            qb.push(" AND (a.created_at, a.id) < (")
                .push_bind(p.created_at)
                .push(", ")
                .push_bind(p.id.as_uuid())
                .push(")");
        }
        qb.push(" ORDER BY a.created_at DESC, a.id DESC LIMIT ")
            .push_bind(i64::from(limit) + 1);
        let rows = qb.build().fetch_all(&self.pool).await.pg()?;
        let views = rows.iter().map(view_from_row).collect::<Result<Vec<_>>>()?;

        let (total, unread) = match before.and_then(|p| p.totals) {
            Some(carried) => carried,
            None => {
                // Counted over the newest COUNT_CAP matches, walking the list
                // index like the page itself: bounded work at any size.
                let mut qb = QueryBuilder::new(
                    "SELECT count(*) AS total, count(*) FILTER (WHERE unread) AS unread \
                     FROM (SELECT r.read_at IS NULL AS unread",
                );
                push_from_where(&mut qb, viewer, &query.filter, now);
                qb.push(" ORDER BY a.created_at DESC, a.id DESC LIMIT ")
                    .push_bind(i64::try_from(COUNT_CAP).unwrap_or(i64::MAX))
                    .push(") newest");
                let row = qb.build().fetch_one(&self.pool).await.pg()?;
                (
                    to_u64(row.try_get("total").pg()?),
                    to_u64(row.try_get("unread").pg()?),
                )
            }
        };
        Ok(Page::from_fetched(views, limit, total, unread))
    }

    async fn count(
        &self,
        viewer: &Viewer,
        filter: &AlertFilter,
        now: DateTime<Utc>,
    ) -> Result<u64> {
        let mut qb = QueryBuilder::new("SELECT count(*)");
        push_from_where(&mut qb, viewer, filter, now);
        let n: i64 = qb
            .build()
            .fetch_one(&self.pool)
            .await
            .pg()?
            .try_get(0)
            .pg()?;
        Ok(to_u64(n))
    }

    async fn stats(
        &self,
        viewer: &Viewer,
        filter: &AlertFilter,
        now: DateTime<Utc>,
    ) -> Result<Stats> {
        let mut qb = QueryBuilder::new(
            "SELECT a.severity, a.alert_type, count(*) AS n, \
             count(*) FILTER (WHERE r.read_at IS NULL) AS unread",
        );
        push_from_where(&mut qb, viewer, filter, now);
        qb.push(" GROUP BY a.severity, a.alert_type");
        let mut stats = Stats::default();
        for row in qb.build().fetch_all(&self.pool).await.pg()? {
            let sev = severity_from(BACKEND, row.try_get("severity").pg()?)?;
            let ty: String = row.try_get("alert_type").pg()?;
            let n = to_u64(row.try_get("n").pg()?);
            let unread = to_u64(row.try_get("unread").pg()?);
            stats.add_group(sev, &ty, n, unread);
        }
        Ok(stats)
    }

    async fn mark_read(&self, viewer: &Viewer, id: AlertId, now: DateTime<Utc>) -> Result<Receipt> {
        self.touch_receipt(viewer, id, now, "read_at").await
    }

    async fn mark_all_read(
        &self,
        viewer: &Viewer,
        filter: &AlertFilter,
        now: DateTime<Utc>,
    ) -> Result<Vec<AlertId>> {
        let mut qb =
            QueryBuilder::new("INSERT INTO alert_receipts (user_id, alert_id, read_at) SELECT ");
        qb.push_bind(viewer.user_id.clone())
            .push(", a.id, ")
            .push_bind(now);
        push_from_where(&mut qb, viewer, filter, now);
        qb.push(
            " AND r.read_at IS NULL ON CONFLICT (user_id, alert_id) DO UPDATE \
             SET read_at = COALESCE(alert_receipts.read_at, EXCLUDED.read_at) RETURNING alert_id",
        );
        qb.build()
            .fetch_all(&self.pool)
            .await
            .pg()?
            .iter()
            .map(|r| Ok(AlertId::from_uuid(r.try_get(0).pg()?)))
            .collect()
    }

    async fn dismiss(&self, viewer: &Viewer, id: AlertId, now: DateTime<Utc>) -> Result<Receipt> {
        self.touch_receipt(viewer, id, now, "dismissed_at").await
    }

    async fn resolve(&self, id: AlertId, now: DateTime<Utc>) -> Result<(Alert, bool)> {
        let sql = format!(
            "UPDATE alerts a SET status = 'resolved', updated_at = $2 \
             WHERE a.id = $1 AND a.status = 'active' RETURNING {ALERT_COLS}"
        );
        let mut tx = self.pool.begin().await.pg()?;
        let changed = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id.as_uuid())
            .bind(now)
            .fetch_optional(&mut *tx)
            .await
            .pg()?;
        if let Some(row) = changed {
            let mut alert = alert_from_row(&row)?;
            let seqs = stamp(&mut tx, &[id.as_uuid()]).await?;
            alert.seq = seqs.get(&id.as_uuid()).copied().unwrap_or_default();
            tx.commit().await.pg()?;
            return Ok((alert, true));
        }
        drop(tx);
        let sql = format!("SELECT {ALERT_COLS} FROM alerts a WHERE a.id = $1");
        match sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id.as_uuid())
            .fetch_optional(&self.pool)
            .await
            .pg()?
        {
            Some(row) => Ok((alert_from_row(&row)?, false)),
            None => Err(Error::not_found(format!("alert {id}"))),
        }
    }

    async fn receipts(&self, id: AlertId) -> Result<HashMap<String, Receipt>> {
        let rows = sqlx::query(
            "SELECT user_id, read_at, dismissed_at FROM alert_receipts WHERE alert_id = $1",
        )
        .bind(id.as_uuid())
        .fetch_all(&self.pool)
        .await
        .pg()?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("user_id").pg()?,
                    Receipt {
                        read_at: r.try_get("read_at").pg()?,
                        dismissed_at: r.try_get("dismissed_at").pg()?,
                    },
                ))
            })
            .collect()
    }

    async fn changes_since(
        &self,
        after: u64,
        limit: u32,
        now: DateTime<Utc>,
    ) -> Result<Vec<Alert>> {
        let sql = format!(
            "SELECT {ALERT_COLS} FROM alerts a WHERE a.seq > $1 \
             AND (a.expires_at IS NULL OR a.expires_at > $2) ORDER BY a.seq LIMIT $3"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(i64::try_from(after).unwrap_or(i64::MAX))
            .bind(now)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .pg()?;
        rows.iter().map(alert_from_row).collect()
    }

    async fn changes_for(
        &self,
        viewer: &Viewer,
        after: u64,
        upto: u64,
        limit: u32,
        now: DateTime<Utc>,
    ) -> Result<Vec<AlertView>> {
        let mut qb = QueryBuilder::<Postgres>::new(format!(
            "SELECT {ALERT_COLS}, r.read_at, r.dismissed_at"
        ));
        qb.push(" FROM alerts a LEFT JOIN alert_receipts r ON r.alert_id = a.id AND r.user_id = ")
            .push_bind(viewer.user_id.clone())
            .push(" WHERE a.seq > ")
            .push_bind(i64::try_from(after).unwrap_or(i64::MAX))
            .push(" AND a.seq <= ")
            .push_bind(i64::try_from(upto).unwrap_or(i64::MAX));
        push_visible(&mut qb, viewer, now);
        qb.push(" ORDER BY a.seq LIMIT ")
            .push_bind(i64::from(limit));
        let rows = qb.build().fetch_all(&self.pool).await.pg()?;
        rows.iter().map(view_from_row).collect()
    }

    async fn receipts_many(
        &self,
        ids: &[AlertId],
    ) -> Result<HashMap<AlertId, HashMap<String, Receipt>>> {
        let uuids: Vec<Uuid> = ids.iter().map(|i| i.as_uuid()).collect();
        let rows = sqlx::query(
            "SELECT alert_id, user_id, read_at, dismissed_at FROM alert_receipts \
             WHERE alert_id = ANY($1::uuid[])",
        )
        .bind(uuids)
        .fetch_all(&self.pool)
        .await
        .pg()?;
        let mut out: HashMap<AlertId, HashMap<String, Receipt>> = HashMap::new();
        for r in &rows {
            out.entry(AlertId::from_uuid(r.try_get("alert_id").pg()?))
                .or_default()
                .insert(
                    r.try_get("user_id").pg()?,
                    Receipt {
                        read_at: r.try_get("read_at").pg()?,
                        dismissed_at: r.try_get("dismissed_at").pg()?,
                    },
                );
        }
        Ok(out)
    }

    async fn latest_seq(&self) -> Result<u64> {
        let v: i64 = sqlx::query_scalar("SELECT value FROM alert_seq")
            .fetch_one(&self.pool)
            .await
            .pg()?;
        Ok(to_u64(v))
    }

    async fn delete(&self, id: AlertId) -> Result<Alert> {
        let sql = format!("DELETE FROM alerts a WHERE a.id = $1 RETURNING {ALERT_COLS}");
        match sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id.as_uuid())
            .fetch_optional(&self.pool)
            .await
            .pg()?
        {
            Some(row) => alert_from_row(&row),
            None => Err(Error::not_found(format!("alert {id}"))),
        }
    }

    async fn purge_expired(
        &self,
        now: DateTime<Utc>,
        retention: Duration,
        batch: u32,
    ) -> Result<u64> {
        // One bounded batch per call; SKIP LOCKED keeps concurrent purgers and
        // writers out of each other's way.
        let res = sqlx::query(
            "DELETE FROM alerts WHERE id IN ( \
               SELECT id FROM alerts WHERE expires_at <= $1 OR updated_at < $2 \
               LIMIT $3 FOR UPDATE SKIP LOCKED)",
        )
        .bind(now)
        .bind(now - retention)
        .bind(i64::from(batch))
        .execute(&self.pool)
        .await
        .pg()?;
        Ok(res.rows_affected())
    }
}

impl PostgresAlertStore {
    pub(super) async fn touch_receipt(
        &self,
        viewer: &Viewer,
        id: AlertId,
        now: DateTime<Utc>,
        column: &'static str,
    ) -> Result<Receipt> {
        let mut qb = QueryBuilder::new(format!(
            "INSERT INTO alert_receipts (user_id, alert_id, {column}) SELECT "
        ));
        qb.push_bind(viewer.user_id.clone())
            .push(", a.id, ")
            .push_bind(now)
            .push(" FROM alerts a WHERE a.id = ")
            .push_bind(id.as_uuid());
        push_visible(&mut qb, viewer, now);
        qb.push(format!(
            " ON CONFLICT (user_id, alert_id) DO UPDATE \
             SET {column} = COALESCE(alert_receipts.{column}, EXCLUDED.{column}) \
             RETURNING read_at, dismissed_at"
        ));
        match qb.build().fetch_optional(&self.pool).await.pg()? {
            Some(row) => Ok(Receipt {
                read_at: row.try_get("read_at").pg()?,
                dismissed_at: row.try_get("dismissed_at").pg()?,
            }),
            None => Err(Error::not_found(format!("alert {id}"))),
        }
    }
}
