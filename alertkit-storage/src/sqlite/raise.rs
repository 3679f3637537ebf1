//! The raise transaction: dedup, outbox enqueue, change number.

use super::*;

pub(super) async fn insert_alert(conn: &mut SqliteConnection, a: &Alert) -> Result<bool> {
    let res = sqlx::query(
        "INSERT INTO alerts (id, alert_type, severity, title, message, tags, resource_type, \
         resource_id, audience, metadata, dedup_key, status, occurrences, created_at, updated_at, \
         last_seen_at, expires_at, created_by, dedup_scope) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
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
    .bind(a.created_by.as_deref())
    .bind(a.dedup_scope())
    .execute(&mut *conn)
    .await
    .lite()?;
    Ok(res.rows_affected() == 1)
}

pub(super) async fn enqueue(
    conn: &mut SqliteConnection,
    alert: &Alert,
    targets: &[DeliveryTarget],
    now: DateTime<Utc>,
) -> Result<()> {
    for t in targets {
        sqlx::query(
            "INSERT INTO deliveries (id, alert_id, user_id, channel, severity, digest, status, \
             attempts, next_attempt_at, created_at, updated_at) \
             VALUES (?, ?, ?, ?, ?, ?, 'pending', 0, ?, ?, ?) \
             ON CONFLICT (alert_id, user_id, channel, severity) DO NOTHING",
        )
        .bind(Uuid::now_v7())
        .bind(alert.id.as_uuid())
        .bind(&t.user_id)
        .bind(t.channel.as_str())
        .bind(alert.severity.rank())
        .bind(t.digest.map(|d| d.period.as_str()))
        .bind(ms(t.digest.map_or(now, |d| d.ends_at)))
        .bind(ms(now))
        .bind(ms(now))
        .execute(&mut *conn)
        .await
        .lite()?;
    }
    Ok(())
}

/// Takes the next change numbers for `ids`, in order (one statement).
/// Only inside a `BEGIN IMMEDIATE` transaction.
pub(super) async fn reserve_seqs(
    conn: &mut SqliteConnection,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, u64>> {
    let n = i64::try_from(ids.len()).unwrap_or(i64::MAX);
    let last: i64 = sqlx::query_scalar("UPDATE alert_seq SET value = value + ? RETURNING value")
        .bind(n)
        .fetch_one(&mut *conn)
        .await
        .lite()?;
    Ok((last - n + 1..)
        .zip(ids)
        .map(|(seq, id)| (*id, to_u64(seq)))
        .collect())
}

/// Rows per multi-row `INSERT` (20 parameters each, under SQLite's limit).
const ROWS_PER_INSERT: usize = 400;

/// Inserts alerts without a dedup key, with their change numbers, many
/// rows per statement; then their deliveries.
pub(super) async fn insert_plain_batch(
    conn: &mut SqliteConnection,
    items: &[(Alert, Vec<DeliveryTarget>)],
    seqs: &HashMap<Uuid, u64>,
    now: DateTime<Utc>,
) -> Result<()> {
    for chunk in items.chunks(ROWS_PER_INSERT) {
        let mut qb = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
            "INSERT INTO alerts (id, alert_type, severity, title, message, tags, resource_type, \
             resource_id, audience, metadata, dedup_key, status, occurrences, created_at, \
             updated_at, last_seen_at, expires_at, created_by, dedup_scope, seq) ",
        );
        qb.push_values(chunk, |mut row, (a, _)| {
            let seq = seqs.get(&a.id.as_uuid()).copied().unwrap_or_default();
            row.push_bind(a.id.as_uuid())
                .push_bind(a.alert_type.clone())
                .push_bind(a.severity.rank())
                .push_bind(a.title.clone())
                .push_bind(a.message.clone())
                .push_bind(json_list(&a.tags))
                .push_bind(a.resource.as_ref().map(|r| r.kind.clone()))
                .push_bind(a.resource.as_ref().map(|r| r.id.clone()))
                .push_bind(json_list(&audience_strings(&a.audience)))
                .push_bind(a.metadata.to_string())
                .push_bind(a.dedup_key.clone())
                .push_bind(a.status.as_str())
                .push_bind(to_i32(a.occurrences))
                .push_bind(ms(a.created_at))
                .push_bind(ms(a.updated_at))
                .push_bind(ms(a.last_seen_at))
                .push_bind(opt_ms(a.expires_at))
                .push_bind(a.created_by.clone())
                .push_bind(a.dedup_scope())
                .push_bind(i64::try_from(seq).unwrap_or(i64::MAX));
        });
        let res = qb.build().execute(&mut *conn).await.lite()?;
        if res.rows_affected() != chunk.len() as u64 {
            return Err(Error::Conflict(
                "an alert id in the batch already exists".into(),
            ));
        }
    }
    for (a, targets) in items {
        enqueue(conn, a, targets, now).await?;
    }
    Ok(())
}

/// Gives the alert the next change sequence number. Only inside a
/// `BEGIN IMMEDIATE` transaction: those are serialized, so numbers follow
/// commit order.
pub(super) async fn stamp(conn: &mut SqliteConnection, ids: &[Uuid]) -> Result<HashMap<Uuid, u64>> {
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
pub(super) async fn stamp_raised(conn: &mut SqliteConnection, raised: &mut [Raised]) -> Result<()> {
    let seqs = stamp(conn, &touched(raised)).await?;
    set_seqs(raised, &seqs);
    Ok(())
}

pub(super) async fn raise_in(
    conn: &mut SqliteConnection,
    alert: Alert,
    targets: &[DeliveryTarget],
    now: DateTime<Utc>,
) -> Result<Raised> {
    if let Some(scope) = alert.dedup_scope() {
        let sql = format!(
            "SELECT {ALERT_COLS} FROM alerts a WHERE a.dedup_scope = ? AND a.status = 'active'"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(scope)
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
