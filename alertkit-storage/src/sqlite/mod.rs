//! The SQLite store (feature `sqlite`): the reference server's zero-config
//! default. One file, WAL mode, bundled SQLite (no system library).
//!
//! Same tables and behaviour as the PostgreSQL store. Differences of form:
//! times are Unix milliseconds, ids UUID blobs, string lists JSON arrays
//! (matched with `json_each`). Writes that read before they write (dedup,
//! outbox claims) run in `BEGIN IMMEDIATE` transactions, so SQLite's single
//! writer serialises them and concurrent raises of one key make one alert.

mod config;
mod error;

use std::collections::HashMap;

use alertkit_core::query::COUNT_CAP;
use alertkit_core::{
    Alert, AlertFilter, AlertId, AlertQuery, AlertRule, AlertStore, AlertView, ClaimedDelivery,
    Delivery, DeliveryOutcome, DeliveryStatus, DeliveryTarget, Error, JobRun, NewAlert, Page,
    Raised, Receipt, Resource, Result, Severity, Stats, Subscription, Viewer,
};
use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use sqlx::sqlite::{SqlitePool, SqliteRow};
use sqlx::{QueryBuilder, Row, Sqlite, SqliteConnection};
use uuid::Uuid;

pub use config::SqliteBuilder;
use error::LiteResultExt;

use crate::common::{
    audience_from, audience_strings, corrupt, count_from, pair_with_alerts, parse, set_seqs,
    severity_from, to_i32, to_u64, touched, viewer_targets,
};

const BACKEND: &str = "sqlite";

const ALERT_COLS: &str = "a.id, a.alert_type, a.severity, a.title, a.message, a.tags, \
    a.resource_type, a.resource_id, a.audience, a.metadata, a.dedup_key, a.status, \
    a.occurrences, a.created_at, a.updated_at, a.last_seen_at, a.expires_at, a.seq";

const DELIVERY_COLS: &str = "id, alert_id, user_id, channel, severity, status, attempts, \
    next_attempt_at, lease_until, last_error, created_at, updated_at";

/// An [`AlertStore`] in one SQLite file. Cheap to clone (a pool handle).
#[derive(Debug, Clone)]
pub struct SqliteAlertStore {
    pool: SqlitePool,
}

impl SqliteAlertStore {
    /// Starts building a store for the file at `path`.
    pub fn builder(path: impl Into<std::path::PathBuf>) -> SqliteBuilder {
        SqliteBuilder::new(path)
    }

    /// Applies pending migrations. Idempotent.
    pub async fn migrate(&self) -> Result<()> {
        sqlx::migrate!("./migrations/sqlite")
            .run(&self.pool)
            .await
            .map_err(|e| Error::backend(BACKEND, e))
    }

    /// Closes the pool.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn opt_ms(t: Option<DateTime<Utc>>) -> Option<i64> {
    t.map(ms)
}

fn time(v: i64) -> Result<DateTime<Utc>> {
    DateTime::from_timestamp_millis(v).ok_or_else(|| corrupt(BACKEND, format!("time {v}")))
}

fn opt_time(v: Option<i64>) -> Result<Option<DateTime<Utc>>> {
    v.map(time).transpose()
}

fn json_list(v: &[String]) -> String {
    serde_json::Value::from(v.to_vec()).to_string()
}

fn from_json<T: serde::de::DeserializeOwned>(s: &str) -> Result<T> {
    serde_json::from_str(s).map_err(|e| corrupt(BACKEND, e))
}

fn alert_from_row(row: &SqliteRow) -> Result<Alert> {
    let resource = match (
        row.try_get::<Option<String>, _>("resource_type").lite()?,
        row.try_get::<Option<String>, _>("resource_id").lite()?,
    ) {
        (Some(kind), Some(id)) => Some(Resource { kind, id }),
        _ => None,
    };
    Ok(Alert {
        id: AlertId::from_uuid(row.try_get("id").lite()?),
        alert_type: row.try_get("alert_type").lite()?,
        severity: severity_from(BACKEND, row.try_get("severity").lite()?)?,
        title: row.try_get("title").lite()?,
        message: row.try_get("message").lite()?,
        tags: from_json(row.try_get("tags").lite()?)?,
        resource,
        audience: audience_from(BACKEND, from_json(row.try_get("audience").lite()?)?)?,
        metadata: from_json(row.try_get("metadata").lite()?)?,
        dedup_key: row.try_get("dedup_key").lite()?,
        status: parse(BACKEND, row.try_get::<&str, _>("status").lite()?)?,
        occurrences: count_from(BACKEND, row.try_get("occurrences").lite()?)?,
        created_at: time(row.try_get("created_at").lite()?)?,
        updated_at: time(row.try_get("updated_at").lite()?)?,
        last_seen_at: time(row.try_get("last_seen_at").lite()?)?,
        expires_at: opt_time(row.try_get("expires_at").lite()?)?,
        seq: to_u64(row.try_get::<i64, _>("seq").lite()?),
    })
}

fn receipt_from_row(row: &SqliteRow) -> Result<Receipt> {
    Ok(Receipt {
        read_at: opt_time(row.try_get("read_at").lite()?)?,
        dismissed_at: opt_time(row.try_get("dismissed_at").lite()?)?,
    })
}

fn delivery_from_row(row: &SqliteRow) -> Result<Delivery> {
    Ok(Delivery {
        id: row.try_get("id").lite()?,
        alert_id: AlertId::from_uuid(row.try_get("alert_id").lite()?),
        user_id: row.try_get("user_id").lite()?,
        channel: parse(BACKEND, row.try_get::<&str, _>("channel").lite()?)?,
        severity: severity_from(BACKEND, row.try_get("severity").lite()?)?,
        status: parse(BACKEND, row.try_get::<&str, _>("status").lite()?)?,
        attempts: count_from(BACKEND, row.try_get("attempts").lite()?)?,
        next_attempt_at: time(row.try_get("next_attempt_at").lite()?)?,
        lease_until: opt_time(row.try_get("lease_until").lite()?)?,
        last_error: row.try_get("last_error").lite()?,
        created_at: time(row.try_get("created_at").lite()?)?,
        updated_at: time(row.try_get("updated_at").lite()?)?,
    })
}

fn run_from_row(row: &SqliteRow) -> Result<JobRun> {
    Ok(JobRun {
        id: row.try_get("id").lite()?,
        job_id: row.try_get("job_id").lite()?,
        scheduled_at: time(row.try_get("scheduled_at").lite()?)?,
        started_at: opt_time(row.try_get("started_at").lite()?)?,
        finished_at: opt_time(row.try_get("finished_at").lite()?)?,
        status: parse(BACKEND, row.try_get::<&str, _>("status").lite()?)?,
        error: row.try_get("error").lite()?,
    })
}

fn rule_from_row(row: &SqliteRow) -> Result<AlertRule> {
    let template: NewAlert = from_json(row.try_get("template").lite()?)?;
    Ok(AlertRule {
        id: row.try_get("id").lite()?,
        name: row.try_get("name").lite()?,
        kind: parse(BACKEND, row.try_get::<&str, _>("kind").lite()?)?,
        enabled: row.try_get("enabled").lite()?,
        conditions: from_json(row.try_get("conditions").lite()?)?,
        template,
        for_secs: u64::try_from(row.try_get::<i64, _>("for_secs").lite()?)
            .map_err(|e| corrupt(BACKEND, e))?,
        cooldown_secs: u64::try_from(row.try_get::<i64, _>("cooldown_secs").lite()?)
            .map_err(|e| corrupt(BACKEND, e))?,
        created_at: time(row.try_get("created_at").lite()?)?,
        updated_at: time(row.try_get("updated_at").lite()?)?,
    })
}

fn subscription_from_row(row: &SqliteRow) -> Result<Subscription> {
    let channels: Vec<String> = from_json(row.try_get("channels").lite()?)?;
    Ok(Subscription {
        user_id: row.try_get("user_id").lite()?,
        alert_type: row.try_get("alert_type").lite()?,
        enabled: row.try_get("enabled").lite()?,
        channels: channels
            .iter()
            .map(|c| parse(BACKEND, c))
            .collect::<Result<_>>()?,
        min_severity: severity_from(BACKEND, row.try_get("min_severity").lite()?)?,
        digest: row
            .try_get::<Option<&str>, _>("digest")
            .lite()?
            .map(|d| parse(BACKEND, d))
            .transpose()?,
    })
}

/// ` IN (?, ?, …)` over `values`.
fn push_in<T>(qb: &mut QueryBuilder<Sqlite>, values: impl IntoIterator<Item = T>)
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
fn push_visible(qb: &mut QueryBuilder<Sqlite>, viewer: &Viewer, now: DateTime<Utc>) {
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
fn push_from_where(
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

async fn insert_alert(conn: &mut SqliteConnection, a: &Alert) -> Result<bool> {
    let res = sqlx::query(
        "INSERT INTO alerts (id, alert_type, severity, title, message, tags, resource_type, \
         resource_id, audience, metadata, dedup_key, status, occurrences, created_at, updated_at, \
         last_seen_at, expires_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
    )
    .bind(a.id.as_uuid())
    .bind(&a.alert_type)
    .bind(a.severity.rank())
    .bind(&a.title)
    .bind(&a.message)
    .bind(json_list(&a.tags))
    .bind(a.resource.as_ref().map(|r| r.kind.as_str()))
    .bind(a.resource.as_ref().map(|r| r.id.as_str()))
    .bind(json_list(&audience_strings(&a.audience)))
    .bind(a.metadata.to_string())
    .bind(a.dedup_key.as_deref())
    .bind(a.status.as_str())
    .bind(to_i32(a.occurrences))
    .bind(ms(a.created_at))
    .bind(ms(a.updated_at))
    .bind(ms(a.last_seen_at))
    .bind(opt_ms(a.expires_at))
    .execute(&mut *conn)
    .await
    .lite()?;
    Ok(res.rows_affected() == 1)
}

async fn enqueue(
    conn: &mut SqliteConnection,
    alert: &Alert,
    targets: &[DeliveryTarget],
    now: DateTime<Utc>,
) -> Result<()> {
    for t in targets {
        sqlx::query(
            "INSERT INTO deliveries (id, alert_id, user_id, channel, severity, status, attempts, \
             next_attempt_at, created_at, updated_at) VALUES (?, ?, ?, ?, ?, 'pending', 0, ?, ?, ?) \
             ON CONFLICT (alert_id, user_id, channel, severity) DO NOTHING",
        )
        .bind(Uuid::now_v7())
        .bind(alert.id.as_uuid())
        .bind(&t.user_id)
        .bind(t.channel.as_str())
        .bind(alert.severity.rank())
        .bind(ms(now))
        .bind(ms(now))
        .bind(ms(now))
        .execute(&mut *conn)
        .await
        .lite()?;
    }
    Ok(())
}

/// Gives the alert the next change sequence number. Only inside a
/// `BEGIN IMMEDIATE` transaction: those are serialized, so numbers follow
/// commit order.
async fn stamp(conn: &mut SqliteConnection, ids: &[Uuid]) -> Result<HashMap<Uuid, u64>> {
    let n = i64::try_from(ids.len()).unwrap_or(i64::MAX);
    let last: i64 = sqlx::query_scalar("UPDATE alert_seq SET value = value + ? RETURNING value")
        .bind(n)
        .fetch_one(&mut *conn)
        .await
        .lite()?;
    let mut seqs = HashMap::with_capacity(ids.len());
    for (seq, id) in (last - n + 1..).zip(ids) {
        sqlx::query("UPDATE alerts SET seq = ? WHERE id = ?")
            .bind(seq)
            .bind(id)
            .execute(&mut *conn)
            .await
            .lite()?;
        seqs.insert(*id, to_u64(seq));
    }
    Ok(seqs)
}

/// Stamps what a batch of raises touched and copies the numbers into them.
async fn stamp_raised(conn: &mut SqliteConnection, raised: &mut [Raised]) -> Result<()> {
    let seqs = stamp(conn, &touched(raised)).await?;
    set_seqs(raised, &seqs);
    Ok(())
}

async fn raise_in(
    conn: &mut SqliteConnection,
    alert: Alert,
    targets: &[DeliveryTarget],
    now: DateTime<Utc>,
) -> Result<Raised> {
    if let Some(key) = &alert.dedup_key {
        let sql = format!(
            "SELECT {ALERT_COLS} FROM alerts a WHERE a.dedup_key = ? AND a.status = 'active'"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(key)
            .fetch_optional(&mut *conn)
            .await
            .lite()?;
        if let Some(row) = row {
            let mut existing = alert_from_row(&row)?;
            let escalated = existing.merge_repeat(&alert, now);
            sqlx::query(
                "UPDATE alerts SET severity = ?, occurrences = ?, title = ?, message = ?, \
                 metadata = ?, expires_at = ?, last_seen_at = ?, updated_at = ? WHERE id = ?",
            )
            .bind(existing.severity.rank())
            .bind(to_i32(existing.occurrences))
            .bind(&existing.title)
            .bind(&existing.message)
            .bind(existing.metadata.to_string())
            .bind(opt_ms(existing.expires_at))
            .bind(ms(now))
            .bind(ms(now))
            .bind(existing.id.as_uuid())
            .execute(&mut *conn)
            .await
            .lite()?;
            if escalated {
                enqueue(conn, &existing, targets, now).await?;
            }
            return Ok(Raised {
                alert: existing,
                deduplicated: true,
                escalated,
            });
        }
    }
    if !insert_alert(conn, &alert).await? {
        return Err(Error::Conflict(format!(
            "alert {} already exists",
            alert.id
        )));
    }
    enqueue(conn, &alert, targets, now).await?;
    Ok(Raised {
        alert,
        deduplicated: false,
        escalated: false,
    })
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
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await.lite()?;
        let mut out = Vec::with_capacity(items.len());
        for (alert, targets) in items {
            out.push(raise_in(&mut tx, alert, &targets, now).await?);
        }
        stamp_raised(&mut tx, &mut out).await?;
        tx.commit().await.lite()?;
        Ok(out)
    }

    async fn find_active(&self, dedup_key: &str, _now: DateTime<Utc>) -> Result<Option<Alert>> {
        let sql = format!(
            "SELECT {ALERT_COLS} FROM alerts a WHERE a.dedup_key = ? AND a.status = 'active'"
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(dedup_key)
            .fetch_optional(&self.pool)
            .await
            .lite()?
            .as_ref()
            .map(alert_from_row)
            .transpose()
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

    async fn create_rule(&self, rule: AlertRule) -> Result<AlertRule> {
        self.write_rule(&rule, true).await?;
        Ok(rule)
    }

    async fn update_rule(&self, rule: AlertRule) -> Result<AlertRule> {
        self.write_rule(&rule, false).await?;
        Ok(rule)
    }

    async fn get_rule(&self, id: Uuid) -> Result<AlertRule> {
        match sqlx::query("SELECT * FROM alert_rules WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .lite()?
        {
            Some(row) => rule_from_row(&row),
            None => Err(Error::not_found(format!("rule {id}"))),
        }
    }

    async fn list_rules(&self) -> Result<Vec<AlertRule>> {
        sqlx::query("SELECT * FROM alert_rules ORDER BY name")
            .fetch_all(&self.pool)
            .await
            .lite()?
            .iter()
            .map(rule_from_row)
            .collect()
    }

    async fn delete_rule(&self, id: Uuid) -> Result<()> {
        let res = sqlx::query("DELETE FROM alert_rules WHERE id = ?")
            .bind(id)
            .execute(&self.pool)
            .await
            .lite()?;
        if res.rows_affected() == 0 {
            return Err(Error::not_found(format!("rule {id}")));
        }
        Ok(())
    }

    async fn subscriptions(&self, user_id: &str) -> Result<Vec<Subscription>> {
        sqlx::query("SELECT * FROM alert_subscriptions WHERE user_id = ? ORDER BY alert_type")
            .bind(user_id)
            .fetch_all(&self.pool)
            .await
            .lite()?
            .iter()
            .map(subscription_from_row)
            .collect()
    }

    async fn set_subscriptions(&self, user_id: &str, subs: Vec<Subscription>) -> Result<()> {
        if subs.iter().any(|s| s.user_id != user_id) {
            return Err(Error::invalid("every subscription must belong to the user"));
        }
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await.lite()?;
        sqlx::query("DELETE FROM alert_subscriptions WHERE user_id = ?")
            .bind(user_id)
            .execute(&mut *tx)
            .await
            .lite()?;
        for s in &subs {
            let channels: Vec<String> = s.channels.iter().map(|c| c.as_str().to_owned()).collect();
            sqlx::query(
                "INSERT INTO alert_subscriptions (user_id, alert_type, enabled, channels, min_severity, digest) \
                 VALUES (?, ?, ?, ?, ?, ?)",
            )
            .bind(user_id)
            .bind(&s.alert_type)
            .bind(s.enabled)
            .bind(json_list(&channels))
            .bind(s.min_severity.rank())
            .bind(s.digest.map(|d| d.as_str()))
            .execute(&mut *tx)
            .await
            .lite()?;
        }
        tx.commit().await.lite()?;
        Ok(())
    }

    async fn subscribers(&self, alert_type: &str, severity: Severity) -> Result<Vec<Subscription>> {
        sqlx::query(
            "SELECT * FROM alert_subscriptions WHERE enabled AND (alert_type = ? OR alert_type = '*') \
             AND min_severity <= ? ORDER BY user_id, alert_type",
        )
        .bind(alert_type)
        .bind(severity.rank())
        .fetch_all(&self.pool)
        .await
        .lite()?
        .iter()
        .map(subscription_from_row)
        .collect()
    }

    async fn claim_deliveries(
        &self,
        now: DateTime<Utc>,
        lease: Duration,
        limit: u32,
    ) -> Result<Vec<ClaimedDelivery>> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await.lite()?;
        let sql = format!(
            "UPDATE deliveries SET status = 'in_flight', lease_until = ?, attempts = attempts + 1, \
               updated_at = ? \
             WHERE id IN (SELECT id FROM deliveries \
                 WHERE (status = 'pending' AND next_attempt_at <= ?) \
                    OR (status = 'in_flight' AND lease_until <= ?) \
                 ORDER BY next_attempt_at, id LIMIT ?) \
             RETURNING {DELIVERY_COLS}"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(ms(now + lease))
            .bind(ms(now))
            .bind(ms(now))
            .bind(ms(now))
            .bind(i64::from(limit))
            .fetch_all(&mut *tx)
            .await
            .lite()?;
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

    async fn claim_job_run(&self, run: &JobRun) -> Result<bool> {
        let res = sqlx::query(
            "INSERT INTO job_runs (id, job_id, scheduled_at, started_at, finished_at, status, error) \
             VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (job_id, scheduled_at) DO NOTHING",
        )
        .bind(run.id)
        .bind(&run.job_id)
        .bind(ms(run.scheduled_at))
        .bind(opt_ms(run.started_at))
        .bind(opt_ms(run.finished_at))
        .bind(run.status.as_str())
        .bind(run.error.as_deref())
        .execute(&self.pool)
        .await
        .lite()?;
        Ok(res.rows_affected() == 1)
    }

    async fn update_job_run(&self, run: &JobRun) -> Result<()> {
        let res = sqlx::query(
            "UPDATE job_runs SET started_at = ?, finished_at = ?, status = ?, error = ? WHERE id = ?",
        )
        .bind(opt_ms(run.started_at))
        .bind(opt_ms(run.finished_at))
        .bind(run.status.as_str())
        .bind(run.error.as_deref())
        .bind(run.id)
        .execute(&self.pool)
        .await
        .lite()?;
        if res.rows_affected() == 0 {
            return Err(Error::not_found(format!("job run {}", run.id)));
        }
        Ok(())
    }

    async fn job_runs(&self, job_id: &str, limit: u32) -> Result<Vec<JobRun>> {
        sqlx::query(
            "SELECT id, job_id, scheduled_at, started_at, finished_at, status, error FROM job_runs \
             WHERE job_id = ? ORDER BY scheduled_at DESC LIMIT ?",
        )
        .bind(job_id)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .lite()?
        .iter()
        .map(run_from_row)
        .collect()
    }
}

impl SqliteAlertStore {
    async fn touch_receipt(
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

    async fn write_rule(&self, rule: &AlertRule, create: bool) -> Result<()> {
        let template =
            serde_json::to_string(&rule.template).map_err(|e| Error::invalid(e.to_string()))?;
        let sql = if create {
            "INSERT INTO alert_rules (name, kind, enabled, conditions, template, for_secs, \
             cooldown_secs, created_at, updated_at, id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        } else {
            "UPDATE alert_rules SET name = ?, kind = ?, enabled = ?, conditions = ?, template = ?, \
             for_secs = ?, cooldown_secs = ?, created_at = ?, updated_at = ? WHERE id = ?"
        };
        let res = sqlx::query(sql)
            .bind(&rule.name)
            .bind(rule.kind.as_str())
            .bind(rule.enabled)
            .bind(rule.conditions.to_string())
            .bind(template)
            .bind(i64::try_from(rule.for_secs).unwrap_or(i64::MAX))
            .bind(i64::try_from(rule.cooldown_secs).unwrap_or(i64::MAX))
            .bind(ms(rule.created_at))
            .bind(ms(rule.updated_at))
            .bind(rule.id)
            .execute(&self.pool)
            .await
            .lite()?;
        if !create && res.rows_affected() == 0 {
            return Err(Error::not_found(format!("rule {}", rule.id)));
        }
        Ok(())
    }
}
