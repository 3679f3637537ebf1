//! Rows and documents ↔ model values.

use super::*;

pub(super) const ALERT_COLS: &str = "a.id, a.alert_type, a.severity, a.title, a.message, a.tags, \
    a.resource_type, a.resource_id, a.audience, a.metadata, a.dedup_key, a.status, \
    a.occurrences, a.created_at, a.updated_at, a.last_seen_at, a.expires_at, a.seq, a.created_by";

pub(super) const DELIVERY_COLS: &str = "id, alert_id, user_id, channel, severity, digest, status, attempts, \
    next_attempt_at, lease_until, last_error, created_at, updated_at";

pub(super) fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

pub(super) fn opt_ms(t: Option<DateTime<Utc>>) -> Option<i64> {
    t.map(ms)
}

pub(super) fn time(v: i64) -> Result<DateTime<Utc>> {
    DateTime::from_timestamp_millis(v).ok_or_else(|| corrupt(BACKEND, format!("time {v}")))
}

pub(super) fn opt_time(v: Option<i64>) -> Result<Option<DateTime<Utc>>> {
    v.map(time).transpose()
}

pub(super) fn json_list(v: &[String]) -> String {
    serde_json::Value::from(v.to_vec()).to_string()
}

pub(super) fn from_json<T: serde::de::DeserializeOwned>(s: &str) -> Result<T> {
    serde_json::from_str(s).map_err(|e| corrupt(BACKEND, e))
}

pub(super) fn alert_from_row(row: &SqliteRow) -> Result<Alert> {
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
        created_by: row.try_get("created_by").lite()?,
    })
}

pub(super) fn receipt_from_row(row: &SqliteRow) -> Result<Receipt> {
    Ok(Receipt {
        read_at: opt_time(row.try_get("read_at").lite()?)?,
        dismissed_at: opt_time(row.try_get("dismissed_at").lite()?)?,
    })
}

pub(super) fn delivery_from_row(row: &SqliteRow) -> Result<Delivery> {
    Ok(Delivery {
        id: row.try_get("id").lite()?,
        alert_id: AlertId::from_uuid(row.try_get("alert_id").lite()?),
        user_id: row.try_get("user_id").lite()?,
        channel: parse(BACKEND, row.try_get::<&str, _>("channel").lite()?)?,
        severity: severity_from(BACKEND, row.try_get("severity").lite()?)?,
        digest: row
            .try_get::<Option<&str>, _>("digest")
            .lite()?
            .map(|d| parse(BACKEND, d))
            .transpose()?,
        status: parse(BACKEND, row.try_get::<&str, _>("status").lite()?)?,
        attempts: count_from(BACKEND, row.try_get("attempts").lite()?)?,
        next_attempt_at: time(row.try_get("next_attempt_at").lite()?)?,
        lease_until: opt_time(row.try_get("lease_until").lite()?)?,
        last_error: row.try_get("last_error").lite()?,
        created_at: time(row.try_get("created_at").lite()?)?,
        updated_at: time(row.try_get("updated_at").lite()?)?,
    })
}

pub(super) fn run_from_row(row: &SqliteRow) -> Result<JobRun> {
    Ok(JobRun {
        id: row.try_get("id").lite()?,
        job_id: row.try_get("job_id").lite()?,
        scheduled_at: time(row.try_get("scheduled_at").lite()?)?,
        started_at: opt_time(row.try_get("started_at").lite()?)?,
        finished_at: opt_time(row.try_get("finished_at").lite()?)?,
        status: parse(BACKEND, row.try_get::<&str, _>("status").lite()?)?,
        error: row.try_get("error").lite()?,
        attempt: count_from(BACKEND, row.try_get("attempt").lite()?)?,
        lease_until: opt_time(row.try_get("lease_until").lite()?)?,
    })
}

pub(super) fn rule_from_row(row: &SqliteRow) -> Result<AlertRule> {
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

pub(super) fn subscription_from_row(row: &SqliteRow) -> Result<Subscription> {
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
