//! The raise transaction: dedup, outbox enqueue, change number.

use super::*;

pub(super) async fn insert_alert(tx: &mut Transaction<'_, Postgres>, a: &Alert) -> Result<bool> {
    let res = sqlx::query(
        "INSERT INTO alerts (id, alert_type, severity, title, message, tags, resource_type, \
         resource_id, audience, metadata, dedup_key, status, occurrences, created_at, updated_at, \
         last_seen_at, expires_at, created_by, dedup_scope) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19) \
         ON CONFLICT DO NOTHING",
    )
    .bind(a.id.as_uuid())
    .bind(&a.alert_type)
    .bind(a.severity.rank())
    .bind(&a.title)
    .bind(&a.message)
    .bind(&a.tags)
    .bind(a.resource.as_ref().map(|r| r.kind.as_str()))
    .bind(a.resource.as_ref().map(|r| r.id.as_str()))
    .bind(audience_strings(&a.audience))
    .bind(&a.metadata)
    .bind(a.dedup_key.as_deref())
    .bind(a.status.as_str())
    .bind(to_i32(a.occurrences))
    .bind(a.created_at)
    .bind(a.updated_at)
    .bind(a.last_seen_at)
    .bind(a.expires_at)
    .bind(a.created_by.as_deref())
    .bind(a.dedup_scope())
    .execute(&mut **tx)
    .await
    .pg()?;
    Ok(res.rows_affected() == 1)
}

pub(super) async fn insert_plain_batch(
    tx: &mut Transaction<'_, Postgres>,
    items: &[(Alert, Vec<DeliveryTarget>)],
    now: DateTime<Utc>,
) -> Result<()> {
    if items.is_empty() {
        return Ok(());
    }
    // Column arrays for UNNEST: one statement however many alerts. The
    // audience (a text[] per row) travels as one JSON array of arrays.
    let n = items.len();
    let mut ids = Vec::with_capacity(n);
    let mut types = Vec::with_capacity(n);
    let mut sevs = Vec::with_capacity(n);
    let mut titles = Vec::with_capacity(n);
    let mut messages = Vec::with_capacity(n);
    let mut tags = Vec::with_capacity(n);
    let mut rtypes = Vec::with_capacity(n);
    let mut rids = Vec::with_capacity(n);
    let mut audiences = Vec::with_capacity(n);
    let mut metas = Vec::with_capacity(n);
    let mut created = Vec::with_capacity(n);
    let mut expires = Vec::with_capacity(n);
    let mut creators = Vec::with_capacity(n);
    for (a, _) in items {
        ids.push(a.id.as_uuid());
        types.push(a.alert_type.clone());
        sevs.push(a.severity.rank());
        titles.push(a.title.clone());
        messages.push(a.message.clone());
        tags.push(serde_json::Value::from(a.tags.clone()));
        rtypes.push(a.resource.as_ref().map(|r| r.kind.clone()));
        rids.push(a.resource.as_ref().map(|r| r.id.clone()));
        audiences.push(serde_json::Value::from(audience_strings(&a.audience)));
        metas.push(a.metadata.clone());
        created.push(a.created_at);
        expires.push(a.expires_at);
        creators.push(a.created_by.clone());
    }
    let res = sqlx::query(
        "INSERT INTO alerts (id, alert_type, severity, title, message, tags, resource_type, \
         resource_id, audience, metadata, dedup_key, status, occurrences, created_at, updated_at, \
         last_seen_at, expires_at, created_by) \
         SELECT t.id, t.alert_type, t.severity, t.title, t.message, \
           ARRAY(SELECT jsonb_array_elements_text(t.tags)), t.resource_type, t.resource_id, \
           ARRAY(SELECT jsonb_array_elements_text(t.audience)), t.metadata, NULL, 'active', 1, \
           t.created_at, t.created_at, t.created_at, t.expires_at, t.created_by \
         FROM UNNEST($1::uuid[], $2::text[], $3::int2[], $4::text[], $5::text[], $6::jsonb[], \
           $7::text[], $8::text[], $9::jsonb[], $10::jsonb[], $11::timestamptz[], $12::timestamptz[], \
           $13::text[]) \
           AS t(id, alert_type, severity, title, message, tags, resource_type, resource_id, \
                audience, metadata, created_at, expires_at, created_by)",
    )
    .bind(ids)
    .bind(types)
    .bind(sevs)
    .bind(titles)
    .bind(messages)
    .bind(tags)
    .bind(rtypes)
    .bind(rids)
    .bind(audiences)
    .bind(metas)
    .bind(created)
    .bind(expires)
    .bind(creators)
    .execute(&mut **tx)
    .await
    .pg()?;
    if res.rows_affected() != n as u64 {
        return Err(Error::Conflict(
            "an alert id in the batch already exists".into(),
        ));
    }
    for (a, targets) in items {
        enqueue(tx, a, targets, now).await?;
    }
    Ok(())
}

pub(super) async fn enqueue(
    tx: &mut Transaction<'_, Postgres>,
    alert: &Alert,
    targets: &[DeliveryTarget],
    now: DateTime<Utc>,
) -> Result<()> {
    if targets.is_empty() {
        return Ok(());
    }
    let ids: Vec<Uuid> = targets.iter().map(|_| Uuid::now_v7()).collect();
    let users: Vec<&str> = targets.iter().map(|t| t.user_id.as_str()).collect();
    let channels: Vec<&str> = targets.iter().map(|t| t.channel.as_str()).collect();
    let digests: Vec<Option<&str>> = targets
        .iter()
        .map(|t| t.digest.map(|d| d.period.as_str()))
        .collect();
    let due: Vec<DateTime<Utc>> = targets
        .iter()
        .map(|t| t.digest.map_or(now, |d| d.ends_at))
        .collect();
    sqlx::query(
        "INSERT INTO deliveries (id, alert_id, user_id, channel, severity, digest, status, \
         attempts, next_attempt_at, created_at, updated_at) \
         SELECT t.id, $4, t.user_id, t.channel, $5, t.digest, 'pending', 0, t.due, $6, $6 \
         FROM UNNEST($1::uuid[], $2::text[], $3::text[], $7::text[], $8::timestamptz[]) \
           AS t(id, user_id, channel, digest, due) \
         ON CONFLICT (alert_id, user_id, channel, severity) DO NOTHING",
    )
    .bind(ids)
    .bind(users)
    .bind(channels)
    .bind(alert.id.as_uuid())
    .bind(alert.severity.rank())
    .bind(now)
    .bind(digests)
    .bind(due)
    .execute(&mut **tx)
    .await
    .pg()?;
    Ok(())
}

/// Gives the alerts (distinct ids) the next change sequence numbers, in
/// order; returns id → number. Must be the transaction's last statement
/// before commit: it locks the counter row until then, which is what makes
/// numbers follow commit order (and, taken after any alert row lock, keeps
/// the lock order one-way).
pub(super) async fn stamp(
    tx: &mut Transaction<'_, Postgres>,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, u64>> {
    let rows = sqlx::query(
        "WITH s AS (UPDATE alert_seq SET value = value + cardinality($1::uuid[]) RETURNING value) \
         UPDATE alerts a SET seq = s.value - cardinality($1::uuid[]) + t.ord \
         FROM s, UNNEST($1::uuid[]) WITH ORDINALITY AS t(id, ord) \
         WHERE a.id = t.id RETURNING a.id, a.seq",
    )
    .bind(ids)
    .fetch_all(&mut **tx)
    .await
    .pg()?;
    rows.iter()
        .map(|r| {
            Ok((
                r.try_get("id").pg()?,
                to_u64(r.try_get::<i64, _>("seq").pg()?),
            ))
        })
        .collect()
}

/// Stamps what a batch of raises touched and copies the numbers into them.
pub(super) async fn stamp_raised(
    tx: &mut Transaction<'_, Postgres>,
    raised: &mut [Raised],
) -> Result<()> {
    let seqs = stamp(tx, &touched(raised)).await?;
    set_seqs(raised, &seqs);
    Ok(())
}

/// Insert-or-dedup inside a transaction.
pub(super) async fn raise_in(
    tx: &mut Transaction<'_, Postgres>,
    alert: Alert,
    targets: &[DeliveryTarget],
    now: DateTime<Utc>,
) -> Result<Raised> {
    // Two rounds suffice: if our insert loses to a concurrent raise of the
    // same key, that raise has committed by the time ON CONFLICT returns,
    // and the second round finds and locks its alert.
    for _ in 0..3 {
        if let Some(scope) = alert.dedup_scope() {
            let sql = format!(
                "SELECT {ALERT_COLS} FROM alerts a WHERE a.dedup_scope = $1 AND a.status = 'active' FOR UPDATE"
            );
            let row = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(scope)
                .fetch_optional(&mut **tx)
                .await
                .pg()?;
            if let Some(row) = row {
                let mut existing = alert_from_row(&row)?;
                let escalated = existing.merge_repeat(&alert, now);
                sqlx::query(
                    "UPDATE alerts SET severity = $2, occurrences = $3, title = $4, message = $5, \
                     metadata = $6, expires_at = $7, last_seen_at = $8, updated_at = $8 WHERE id = $1",
                )
                .bind(existing.id.as_uuid())
                .bind(existing.severity.rank())
                .bind(to_i32(existing.occurrences))
                .bind(&existing.title)
                .bind(&existing.message)
                .bind(&existing.metadata)
                .bind(existing.expires_at)
                .bind(now)
                .execute(&mut **tx)
                .await
                .pg()?;
                if escalated {
                    enqueue(tx, &existing, targets, now).await?;
                }
                return Ok(Raised {
                    alert: existing,
                    deduplicated: true,
                    escalated,
                });
            }
        }
        if insert_alert(tx, &alert).await? {
            enqueue(tx, &alert, targets, now).await?;
            return Ok(Raised {
                alert,
                deduplicated: false,
                escalated: false,
            });
        }
        if alert.dedup_key.is_none() {
            return Err(Error::Conflict(format!(
                "alert {} already exists",
                alert.id
            )));
        }
    }
    Err(Error::Unavailable(
        "postgres: dedup kept racing; try again".into(),
    ))
}
