//! [`AlertStore`]: reads, receipts, the change feed, resolve, delete, purge.

use super::*;

/// ` IN (?, ?, …)` over `values`.
pub(super) fn push_in<T>(qb: &mut QueryBuilder<Sqlite>, values: impl IntoIterator<Item = T>)
where
    T: for<'q> sqlx::Encode<'q, Sqlite> + sqlx::Type<Sqlite> + 'static,
{
    qb.push(" IN (");
    let mut sep = qb.separated(", ");
    for v in values {
        sep.push_bind(v);
    }
    qb.push(")");
}

/// `AND <alert a is visible to viewer and unexpired>`.
pub(super) fn push_visible(qb: &mut QueryBuilder<Sqlite>, viewer: &Viewer, now: DateTime<Utc>) {
    qb.push(" AND (a.expires_at IS NULL OR a.expires_at > ")
        .push_bind(ms(now))
        .push(")");
    if !viewer.sees_all {
        qb.push(" AND EXISTS (SELECT 1 FROM json_each(a.audience) WHERE json_each.value");
        push_in(qb, viewer_targets(viewer));
        qb.push(")");
    }
}

/// `FROM alerts a LEFT JOIN <viewer's receipts> WHERE <visible, unexpired, filter>`.
pub(super) fn push_from_where(
    qb: &mut QueryBuilder<Sqlite>,
    viewer: &Viewer,
    filter: &AlertFilter,
    now: DateTime<Utc>,
) {
    qb.push(" FROM alerts a LEFT JOIN alert_receipts r ON r.alert_id = a.id AND r.user_id = ")
        .push_bind(viewer.user_id.clone())
        .push(" WHERE 1 = 1");
    push_visible(qb, viewer, now);
    if let Some(since) = filter.since {
        qb.push(" AND a.created_at > ").push_bind(ms(since));
    }
    if let Some(until) = filter.until {
        qb.push(" AND a.created_at <= ").push_bind(ms(until));
    }
    if !filter.severities.is_empty() {
        qb.push(" AND a.severity");
        push_in(qb, filter.severities.iter().map(|s| s.rank()));
    }
    if let Some(min) = filter.min_severity {
        qb.push(" AND a.severity >= ").push_bind(min.rank());
    }
    if !filter.alert_types.is_empty() {
        qb.push(" AND a.alert_type");
        push_in(qb, filter.alert_types.clone());
    }
    if !filter.tags.is_empty() {
        qb.push(" AND EXISTS (SELECT 1 FROM json_each(a.tags) WHERE json_each.value");
        push_in(qb, filter.tags.clone());
        qb.push(")");
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

#[async_trait]
impl AlertStore for SqliteAlertStore {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await.lite()?;
        Ok(())
    }

    async fn insert_or_dedup(
        &self,
        alert: Alert,
        deliveries: &[DeliveryTarget],
        now: DateTime<Utc>,
    ) -> Result<Raised> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await.lite()?;
        let mut raised = [raise_in(&mut tx, alert, deliveries, now).await?];
        stamp_raised(&mut tx, &mut raised).await?;
        tx.commit().await.lite()?;
        let [raised] = raised;
        Ok(raised)
    }

    /// One write transaction for the whole batch (SQLite's cost is the commit).
    async fn insert_many(
        &self,
        items: Vec<(Alert, Vec<DeliveryTarget>)>,
        now: DateTime<Utc>,
    ) -> Result<Vec<Raised>> {
        // Keyed raises go through dedup one by one; the rest are inserted
        // with multi-row statements already carrying their change numbers
        // (BEGIN IMMEDIATE serializes writers, so numbers taken anywhere in
        // the transaction follow commit order).
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await.lite()?;
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
        let keyed: std::collections::HashSet<uuid::Uuid> =
            out.iter().flatten().map(|r| r.alert.id.as_uuid()).collect();
        // Every alert touched, once, in input order.
        let mut next_plain = plain.iter();
        let mut seen = std::collections::HashSet::with_capacity(out.len());
        let ids: Vec<uuid::Uuid> = out
            .iter()
            .filter_map(|r| match r {
                Some(r) => Some(r.alert.id.as_uuid()),
                None => next_plain.next().map(|(a, _)| a.id.as_uuid()),
            })
            .filter(|id| seen.insert(*id))
            .collect();
        let seqs = reserve_seqs(&mut tx, &ids).await?;
        for id in ids.iter().filter(|id| keyed.contains(id)) {
            sqlx::query("UPDATE alerts SET seq = ? WHERE id = ?")
                .bind(i64::try_from(seqs.get(id).copied().unwrap_or_default()).unwrap_or(i64::MAX))
                .bind(id)
                .execute(&mut *tx)
                .await
                .lite()?;
        }
        insert_plain_batch(&mut tx, &plain, &seqs, now).await?;
        let mut raised = crate::common::in_input_order(out, plain);
        set_seqs(&mut raised, &seqs);
        tx.commit().await.lite()?;
        Ok(raised)
    }

    async fn find_active(
        &self,
        dedup_key: &str,
        created_by: Option<String>,
        _now: DateTime<Utc>,
    ) -> Result<Vec<Alert>> {
        let sql = format!(
            "SELECT {ALERT_COLS} FROM alerts a WHERE a.dedup_key = ?1 AND a.status = 'active' \
             AND (?2 IS NULL OR a.created_by = ?2) ORDER BY a.created_at, a.id"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(dedup_key)
            .bind(created_by)
            .fetch_all(&self.pool)
            .await
            .lite()?;
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
        match qb.build().fetch_optional(&self.pool).await.lite()? {
            Some(row) => Ok(AlertView::new(
                alert_from_row(&row)?,
                receipt_from_row(&row)?,
            )),
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
                .push_bind(ms(p.created_at))
                .push(", ")
                .push_bind(p.id.as_uuid())
                .push(")");
        }
        qb.push(" ORDER BY a.created_at DESC, a.id DESC LIMIT ")
            .push_bind(i64::from(limit) + 1);
        let views = qb
            .build()
            .fetch_all(&self.pool)
            .await
            .lite()?
            .iter()
            .map(|row| Ok(AlertView::new(alert_from_row(row)?, receipt_from_row(row)?)))
            .collect::<Result<Vec<_>>>()?;

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
                let row = qb.build().fetch_one(&self.pool).await.lite()?;
                (
                    to_u64(row.try_get("total").lite()?),
                    to_u64(row.try_get("unread").lite()?),
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
            .lite()?
            .try_get(0)
            .lite()?;
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
        for row in qb.build().fetch_all(&self.pool).await.lite()? {
            let sev = severity_from(BACKEND, row.try_get("severity").lite()?)?;
            let ty: String = row.try_get("alert_type").lite()?;
            let n = to_u64(row.try_get("n").lite()?);
            let unread = to_u64(row.try_get("unread").lite()?);
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
            .push_bind(ms(now));
        push_from_where(&mut qb, viewer, filter, now);
        qb.push(
            " AND r.read_at IS NULL ON CONFLICT (user_id, alert_id) DO UPDATE \
             SET read_at = COALESCE(alert_receipts.read_at, excluded.read_at) RETURNING alert_id",
        );
        qb.build()
            .fetch_all(&self.pool)
            .await
            .lite()?
            .iter()
            .map(|r| Ok(AlertId::from_uuid(r.try_get(0).lite()?)))
            .collect()
    }

    async fn dismiss(&self, viewer: &Viewer, id: AlertId, now: DateTime<Utc>) -> Result<Receipt> {
        self.touch_receipt(viewer, id, now, "dismissed_at").await
    }

    async fn resolve(&self, id: AlertId, now: DateTime<Utc>) -> Result<(Alert, bool)> {
        let sql = format!(
            "UPDATE alerts AS a SET status = 'resolved', updated_at = ? \
             WHERE a.id = ? AND a.status = 'active' RETURNING {}",
            ALERT_COLS.replace("a.", "")
        );
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await.lite()?;
        let changed = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(ms(now))
            .bind(id.as_uuid())
            .fetch_optional(&mut *tx)
            .await
            .lite()?;
        if let Some(row) = changed {
            let mut alert = alert_from_row(&row)?;
            let seqs = stamp(&mut tx, &[id.as_uuid()]).await?;
            alert.seq = seqs.get(&id.as_uuid()).copied().unwrap_or_default();
            tx.commit().await.lite()?;
            return Ok((alert, true));
        }
        drop(tx);
        let sql = format!("SELECT {ALERT_COLS} FROM alerts a WHERE a.id = ?");
        match sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id.as_uuid())
            .fetch_optional(&self.pool)
            .await
            .lite()?
        {
            Some(row) => Ok((alert_from_row(&row)?, false)),
            None => Err(Error::not_found(format!("alert {id}"))),
        }
    }

    async fn receipts(&self, id: AlertId) -> Result<HashMap<String, Receipt>> {
        let rows = sqlx::query(
            "SELECT user_id, read_at, dismissed_at FROM alert_receipts WHERE alert_id = ?",
        )
        .bind(id.as_uuid())
        .fetch_all(&self.pool)
        .await
        .lite()?;
        rows.iter()
            .map(|r| Ok((r.try_get("user_id").lite()?, receipt_from_row(r)?)))
            .collect()
    }

    async fn changes_since(
        &self,
        after: u64,
        limit: u32,
        now: DateTime<Utc>,
    ) -> Result<Vec<Alert>> {
        let sql = format!(
            "SELECT {ALERT_COLS} FROM alerts a WHERE a.seq > ? \
             AND (a.expires_at IS NULL OR a.expires_at > ?) ORDER BY a.seq LIMIT ?"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(i64::try_from(after).unwrap_or(i64::MAX))
            .bind(ms(now))
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .lite()?;
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
        let mut qb = QueryBuilder::new(format!(
            "SELECT {ALERT_COLS}, r.read_at, r.dismissed_at FROM alerts a \
             LEFT JOIN alert_receipts r ON r.alert_id = a.id AND r.user_id = "
        ));
        qb.push_bind(viewer.user_id.clone())
            .push(" WHERE a.seq > ")
            .push_bind(i64::try_from(after).unwrap_or(i64::MAX))
            .push(" AND a.seq <= ")
            .push_bind(i64::try_from(upto).unwrap_or(i64::MAX));
        push_visible(&mut qb, viewer, now);
        qb.push(" ORDER BY a.seq LIMIT ")
            .push_bind(i64::from(limit));
        let rows = qb.build().fetch_all(&self.pool).await.lite()?;
        rows.iter()
            .map(|row| Ok(AlertView::new(alert_from_row(row)?, receipt_from_row(row)?)))
            .collect()
    }

    async fn receipts_many(
        &self,
        ids: &[AlertId],
    ) -> Result<HashMap<AlertId, HashMap<String, Receipt>>> {
        let mut out: HashMap<AlertId, HashMap<String, Receipt>> = HashMap::new();
        // SQLite binds at most 32766 parameters per statement.
        for chunk in ids.chunks(1000) {
            let mut qb = QueryBuilder::new(
                "SELECT alert_id, user_id, read_at, dismissed_at FROM alert_receipts WHERE alert_id",
            );
            push_in(&mut qb, chunk.iter().map(|i| i.as_uuid()));
            for r in qb.build().fetch_all(&self.pool).await.lite()? {
                let id: Uuid = r.try_get("alert_id").lite()?;
                out.entry(AlertId::from_uuid(id))
                    .or_default()
                    .insert(r.try_get("user_id").lite()?, receipt_from_row(&r)?);
            }
        }
        Ok(out)
    }

    async fn latest_seq(&self) -> Result<u64> {
        let v: i64 = sqlx::query_scalar("SELECT value FROM alert_seq")
            .fetch_one(&self.pool)
            .await
            .lite()?;
        Ok(to_u64(v))
    }

    async fn delete(&self, id: AlertId) -> Result<Alert> {
        let sql = format!(
            "DELETE FROM alerts WHERE id = ? RETURNING {}",
            ALERT_COLS.replace("a.", "")
        );
        match sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id.as_uuid())
            .fetch_optional(&self.pool)
            .await
            .lite()?
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
        let res = sqlx::query(
            "DELETE FROM alerts WHERE id IN ( \
               SELECT id FROM alerts WHERE expires_at <= ? OR updated_at < ? LIMIT ?)",
        )
        .bind(ms(now))
        .bind(ms(now - retention))
        .bind(i64::from(batch))
        .execute(&self.pool)
        .await
        .lite()?;
        Ok(res.rows_affected())
    }
}

impl SqliteAlertStore {
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
            .push_bind(ms(now))
            .push(" FROM alerts a WHERE a.id = ")
            .push_bind(id.as_uuid());
        push_visible(&mut qb, viewer, now);
        qb.push(format!(
            " ON CONFLICT (user_id, alert_id) DO UPDATE \
             SET {column} = COALESCE(alert_receipts.{column}, excluded.{column}) \
             RETURNING read_at, dismissed_at"
        ));
        match qb.build().fetch_optional(&self.pool).await.lite()? {
            Some(row) => receipt_from_row(&row),
            None => Err(Error::not_found(format!("alert {id}"))),
        }
    }
}
