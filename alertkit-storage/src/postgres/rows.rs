//! Rows and documents ↔ model values.

use super::*;

pub(super) const ALERT_COLS: &str = "a.id, a.alert_type, a.severity, a.title, a.message, a.tags, \
    a.resource_type, a.resource_id, a.audience, a.metadata, a.dedup_key, a.status, \
    a.occurrences, a.created_at, a.updated_at, a.last_seen_at, a.expires_at, a.seq, a.created_by";

pub(super) const DELIVERY_COLS: &str = "id, alert_id, user_id, channel, severity, digest, status, attempts, \
    next_attempt_at, lease_until, last_error, created_at, updated_at";

pub(super) const RUN_COLS: &str =
    "id, job_id, scheduled_at, started_at, finished_at, status, error, attempt, lease_until";

pub(super) fn alert_from_row(row: &PgRow) -> Result<Alert> {
    let resource = match (
        row.try_get::<Option<String>, _>("resource_type").pg()?,
        row.try_get::<Option<String>, _>("resource_id").pg()?,
    ) {
        (Some(kind), Some(id)) => Some(Resource { kind, id }),
        _ => None,
    };
    Ok(Alert {
        id: AlertId::from_uuid(row.try_get("id").pg()?),
        alert_type: row.try_get("alert_type").pg()?,
        severity: severity_from(BACKEND, row.try_get("severity").pg()?)?,
        title: row.try_get("title").pg()?,
        message: row.try_get("message").pg()?,
        tags: row.try_get("tags").pg()?,
        resource,
        audience: audience_from(BACKEND, row.try_get("audience").pg()?)?,
        metadata: row.try_get("metadata").pg()?,
        dedup_key: row.try_get("dedup_key").pg()?,
        status: parse(BACKEND, row.try_get::<&str, _>("status").pg()?)?,
        occurrences: count_from(BACKEND, row.try_get("occurrences").pg()?)?,
        created_at: row.try_get("created_at").pg()?,
        updated_at: row.try_get("updated_at").pg()?,
        last_seen_at: row.try_get("last_seen_at").pg()?,
        expires_at: row.try_get("expires_at").pg()?,
        seq: to_u64(row.try_get::<i64, _>("seq").pg()?),
        created_by: row.try_get("created_by").pg()?,
    })
}

pub(super) fn view_from_row(row: &PgRow) -> Result<AlertView> {
    Ok(AlertView::new(
        alert_from_row(row)?,
        Receipt {
            read_at: row.try_get("read_at").pg()?,
            dismissed_at: row.try_get("dismissed_at").pg()?,
        },
    ))
}

pub(super) fn delivery_from_row(row: &PgRow) -> Result<Delivery> {
    Ok(Delivery {
        id: row.try_get("id").pg()?,
        alert_id: AlertId::from_uuid(row.try_get("alert_id").pg()?),
        user_id: row.try_get("user_id").pg()?,
        channel: parse(BACKEND, row.try_get::<&str, _>("channel").pg()?)?,
        severity: severity_from(BACKEND, row.try_get("severity").pg()?)?,
        digest: row
            .try_get::<Option<&str>, _>("digest")
            .pg()?
            .map(|d| parse(BACKEND, d))
            .transpose()?,
        status: parse(BACKEND, row.try_get::<&str, _>("status").pg()?)?,
        attempts: count_from(BACKEND, row.try_get("attempts").pg()?)?,
        next_attempt_at: row.try_get("next_attempt_at").pg()?,
        lease_until: row.try_get("lease_until").pg()?,
        last_error: row.try_get("last_error").pg()?,
        created_at: row.try_get("created_at").pg()?,
        updated_at: row.try_get("updated_at").pg()?,
    })
}

pub(super) fn run_from_row(row: &PgRow) -> Result<JobRun> {
    Ok(JobRun {
        id: row.try_get("id").pg()?,
        job_id: row.try_get("job_id").pg()?,
        scheduled_at: row.try_get("scheduled_at").pg()?,
        started_at: row.try_get("started_at").pg()?,
        finished_at: row.try_get("finished_at").pg()?,
        status: parse(BACKEND, row.try_get::<&str, _>("status").pg()?)?,
        error: row.try_get("error").pg()?,
        attempt: count_from(BACKEND, row.try_get("attempt").pg()?)?,
        lease_until: row.try_get("lease_until").pg()?,
    })
}

pub(super) fn rule_from_row(row: &PgRow) -> Result<AlertRule> {
    let template: serde_json::Value = row.try_get("template").pg()?;
    let template: NewAlert = serde_json::from_value(template).map_err(|e| corrupt(BACKEND, e))?;
    Ok(AlertRule {
        id: row.try_get("id").pg()?,
        name: row.try_get("name").pg()?,
        kind: parse(BACKEND, row.try_get::<&str, _>("kind").pg()?)?,
        enabled: row.try_get("enabled").pg()?,
        conditions: row.try_get("conditions").pg()?,
        template,
        for_secs: u64::try_from(row.try_get::<i64, _>("for_secs").pg()?)
            .map_err(|e| corrupt(BACKEND, e))?,
        cooldown_secs: u64::try_from(row.try_get::<i64, _>("cooldown_secs").pg()?)
            .map_err(|e| corrupt(BACKEND, e))?,
        created_at: row.try_get("created_at").pg()?,
        updated_at: row.try_get("updated_at").pg()?,
    })
}

pub(super) fn subscription_from_row(row: &PgRow) -> Result<Subscription> {
    let channels: Vec<String> = row.try_get("channels").pg()?;
    Ok(Subscription {
        user_id: row.try_get("user_id").pg()?,
        alert_type: row.try_get("alert_type").pg()?,
        enabled: row.try_get("enabled").pg()?,
        channels: channels
            .iter()
            .map(|c| parse(BACKEND, c))
            .collect::<Result<_>>()?,
        min_severity: severity_from(BACKEND, row.try_get("min_severity").pg()?)?,
        digest: row
            .try_get::<Option<&str>, _>("digest")
            .pg()?
            .map(|d| parse(BACKEND, d))
            .transpose()?,
    })
}

pub(super) fn i64_secs(secs: u64) -> i64 {
    i64::try_from(secs).unwrap_or(i64::MAX)
}
