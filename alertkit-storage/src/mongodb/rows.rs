//! Rows and documents ↔ model values.

use super::*;

// ---- encoding -------------------------------------------------------------

pub(super) fn id_bson(u: Uuid) -> Bson {
    Bson::Binary(Binary {
        subtype: BinarySubtype::Uuid,
        bytes: u.as_bytes().to_vec(),
    })
}

pub(super) fn ids_bson(ids: impl IntoIterator<Item = Uuid>) -> Bson {
    Bson::Array(ids.into_iter().map(id_bson).collect())
}

pub(super) fn time_bson(t: DateTime<Utc>) -> Bson {
    Bson::DateTime(mongodb::bson::DateTime::from_millis(t.timestamp_millis()))
}

pub(super) fn get_uuid(d: &Document, key: &str) -> Result<Uuid> {
    match d.get(key) {
        Some(Bson::Binary(b)) => Uuid::from_slice(&b.bytes).map_err(|e| corrupt(BACKEND, e)),
        other => Err(corrupt(BACKEND, format!("{key}: {other:?}"))),
    }
}

pub(super) fn get_time(d: &Document, key: &str) -> Result<DateTime<Utc>> {
    get_opt_time(d, key)?.ok_or_else(|| corrupt(BACKEND, format!("{key} missing")))
}

pub(super) fn get_opt_time(d: &Document, key: &str) -> Result<Option<DateTime<Utc>>> {
    match d.get(key) {
        None | Some(Bson::Null) => Ok(None),
        Some(Bson::DateTime(t)) => DateTime::from_timestamp_millis(t.timestamp_millis())
            .map(Some)
            .ok_or_else(|| corrupt(BACKEND, format!("{key} out of range"))),
        other => Err(corrupt(BACKEND, format!("{key}: {other:?}"))),
    }
}

pub(super) fn get_str(d: &Document, key: &str) -> Result<String> {
    d.get_str(key)
        .map(str::to_owned)
        .map_err(|e| corrupt(BACKEND, format!("{key}: {e}")))
}

pub(super) fn get_opt_str(d: &Document, key: &str) -> Result<Option<String>> {
    match d.get(key) {
        None | Some(Bson::Null) => Ok(None),
        Some(Bson::String(s)) => Ok(Some(s.clone())),
        other => Err(corrupt(BACKEND, format!("{key}: {other:?}"))),
    }
}

pub(super) fn get_int(d: &Document, key: &str) -> Result<i64> {
    match d.get(key) {
        Some(Bson::Int32(n)) => Ok(i64::from(*n)),
        Some(Bson::Int64(n)) => Ok(*n),
        other => Err(corrupt(BACKEND, format!("{key}: {other:?}"))),
    }
}

pub(super) fn get_u32(d: &Document, key: &str) -> Result<u32> {
    u32::try_from(get_int(d, key)?).map_err(|e| corrupt(BACKEND, e))
}

pub(super) fn get_severity(d: &Document, key: &str) -> Result<Severity> {
    let n = get_int(d, key)?;
    let rank = i16::try_from(n).map_err(|_| corrupt(BACKEND, format!("{key}: {n}")))?;
    severity_from(BACKEND, rank)
}

pub(super) fn get_strings(d: &Document, key: &str) -> Result<Vec<String>> {
    d.get_array(key)
        .map_err(|e| corrupt(BACKEND, format!("{key}: {e}")))?
        .iter()
        .map(|b| match b {
            Bson::String(s) => Ok(s.clone()),
            other => Err(corrupt(BACKEND, format!("{key} item: {other:?}"))),
        })
        .collect()
}

pub(super) fn get_json<T: serde::de::DeserializeOwned>(d: &Document, key: &str) -> Result<T> {
    serde_json::from_str(&get_str(d, key)?).map_err(|e| corrupt(BACKEND, e))
}

pub(super) fn set_opt(d: &mut Document, key: &str, v: Option<Bson>) {
    if let Some(v) = v {
        d.insert(key, v);
    }
}

pub(super) fn alert_doc(a: &Alert) -> Document {
    let mut d = doc! {
        "_id": id_bson(a.id.as_uuid()),
        "alert_type": &a.alert_type,
        "severity": i32::from(a.severity.rank()),
        "title": &a.title,
        "message": &a.message,
        "tags": &a.tags,
        "audience": audience_strings(&a.audience),
        "metadata": a.metadata.to_string(),
        "status": a.status.as_str(),
        "occurrences": i64::from(a.occurrences),
        "created_at": time_bson(a.created_at),
        "updated_at": time_bson(a.updated_at),
        "last_seen_at": time_bson(a.last_seen_at),
        "seq": i64::try_from(a.seq).unwrap_or(i64::MAX),
    };
    if let Some(r) = &a.resource {
        d.insert("resource_type", &r.kind);
        d.insert("resource_id", &r.id);
    }
    set_opt(&mut d, "dedup_key", a.dedup_key.clone().map(Bson::String));
    set_opt(&mut d, "dedup_scope", a.dedup_scope().map(Bson::String));
    set_opt(&mut d, "created_by", a.created_by.clone().map(Bson::String));
    set_opt(&mut d, "expires_at", a.expires_at.map(time_bson));
    d
}

pub(super) fn alert_from(d: &Document) -> Result<Alert> {
    let resource = match (
        get_opt_str(d, "resource_type")?,
        get_opt_str(d, "resource_id")?,
    ) {
        (Some(kind), Some(id)) => Some(Resource { kind, id }),
        _ => None,
    };
    Ok(Alert {
        id: AlertId::from_uuid(get_uuid(d, "_id")?),
        alert_type: get_str(d, "alert_type")?,
        severity: get_severity(d, "severity")?,
        title: get_str(d, "title")?,
        message: get_str(d, "message")?,
        tags: get_strings(d, "tags")?,
        resource,
        audience: audience_from(BACKEND, get_strings(d, "audience")?)?,
        metadata: get_json(d, "metadata")?,
        dedup_key: get_opt_str(d, "dedup_key")?,
        status: parse(BACKEND, &get_str(d, "status")?)?,
        occurrences: get_u32(d, "occurrences")?,
        created_at: get_time(d, "created_at")?,
        updated_at: get_time(d, "updated_at")?,
        last_seen_at: get_time(d, "last_seen_at")?,
        expires_at: get_opt_time(d, "expires_at")?,
        seq: match d.get("seq") {
            None => 0,
            Some(_) => u64::try_from(get_int(d, "seq")?).unwrap_or(0),
        },
        created_by: get_opt_str(d, "created_by")?,
    })
}

pub(super) fn receipt_from(d: &Document) -> Result<Receipt> {
    Ok(Receipt {
        read_at: get_opt_time(d, "read_at")?,
        dismissed_at: get_opt_time(d, "dismissed_at")?,
    })
}

pub(super) fn delivery_doc(d: &Delivery) -> Document {
    let mut doc = doc! {
        "_id": id_bson(d.id),
        "alert_id": id_bson(d.alert_id.as_uuid()),
        "user_id": &d.user_id,
        "channel": d.channel.as_str(),
        "severity": i32::from(d.severity.rank()),
        "status": d.status.as_str(),
        "attempts": i64::from(d.attempts),
        "next_attempt_at": time_bson(d.next_attempt_at),
        "created_at": time_bson(d.created_at),
        "updated_at": time_bson(d.updated_at),
    };
    set_opt(&mut doc, "lease_until", d.lease_until.map(time_bson));
    set_opt(
        &mut doc,
        "digest",
        d.digest.map(|p| Bson::String(p.as_str().to_owned())),
    );
    set_opt(
        &mut doc,
        "last_error",
        d.last_error.clone().map(Bson::String),
    );
    doc
}

pub(super) fn delivery_from(d: &Document) -> Result<Delivery> {
    Ok(Delivery {
        id: get_uuid(d, "_id")?,
        alert_id: AlertId::from_uuid(get_uuid(d, "alert_id")?),
        user_id: get_str(d, "user_id")?,
        channel: parse(BACKEND, &get_str(d, "channel")?)?,
        severity: get_severity(d, "severity")?,
        digest: get_opt_str(d, "digest")?
            .map(|p| parse(BACKEND, &p))
            .transpose()?,
        status: parse(BACKEND, &get_str(d, "status")?)?,
        attempts: get_u32(d, "attempts")?,
        next_attempt_at: get_time(d, "next_attempt_at")?,
        lease_until: get_opt_time(d, "lease_until")?,
        last_error: get_opt_str(d, "last_error")?,
        created_at: get_time(d, "created_at")?,
        updated_at: get_time(d, "updated_at")?,
    })
}

pub(super) fn run_doc(r: &JobRun) -> Document {
    let mut d = doc! {
        "_id": id_bson(r.id),
        "job_id": &r.job_id,
        "scheduled_at": time_bson(r.scheduled_at),
        "status": r.status.as_str(),
        "attempt": i64::from(r.attempt),
    };
    set_opt(&mut d, "started_at", r.started_at.map(time_bson));
    set_opt(&mut d, "finished_at", r.finished_at.map(time_bson));
    set_opt(&mut d, "error", r.error.clone().map(Bson::String));
    set_opt(&mut d, "lease_until", r.lease_until.map(time_bson));
    d
}

pub(super) fn run_from(d: &Document) -> Result<JobRun> {
    Ok(JobRun {
        id: get_uuid(d, "_id")?,
        job_id: get_str(d, "job_id")?,
        scheduled_at: get_time(d, "scheduled_at")?,
        started_at: get_opt_time(d, "started_at")?,
        finished_at: get_opt_time(d, "finished_at")?,
        status: parse(BACKEND, &get_str(d, "status")?)?,
        error: get_opt_str(d, "error")?,
        // Runs stored before attempts were recorded were first attempts.
        attempt: match d.get("attempt") {
            Some(_) => get_u32(d, "attempt")?,
            None => 1,
        },
        lease_until: get_opt_time(d, "lease_until")?,
    })
}

pub(super) fn rule_doc(r: &AlertRule) -> Result<Document> {
    let template = serde_json::to_string(&r.template).map_err(|e| Error::invalid(e.to_string()))?;
    Ok(doc! {
        "_id": id_bson(r.id),
        "name": &r.name,
        "kind": r.kind.as_str(),
        "enabled": r.enabled,
        "conditions": r.conditions.to_string(),
        "template": template,
        "for_secs": i64::try_from(r.for_secs).unwrap_or(i64::MAX),
        "cooldown_secs": i64::try_from(r.cooldown_secs).unwrap_or(i64::MAX),
        "created_at": time_bson(r.created_at),
        "updated_at": time_bson(r.updated_at),
    })
}

pub(super) fn rule_from(d: &Document) -> Result<AlertRule> {
    Ok(AlertRule {
        id: get_uuid(d, "_id")?,
        name: get_str(d, "name")?,
        kind: parse(BACKEND, &get_str(d, "kind")?)?,
        enabled: d.get_bool("enabled").map_err(|e| corrupt(BACKEND, e))?,
        conditions: get_json(d, "conditions")?,
        template: get_json(d, "template")?,
        for_secs: u64::try_from(get_int(d, "for_secs")?).map_err(|e| corrupt(BACKEND, e))?,
        cooldown_secs: u64::try_from(get_int(d, "cooldown_secs")?)
            .map_err(|e| corrupt(BACKEND, e))?,
        created_at: get_time(d, "created_at")?,
        updated_at: get_time(d, "updated_at")?,
    })
}

pub(super) fn sub_doc(s: &Subscription) -> Document {
    let channels: Vec<&str> = s.channels.iter().map(|c| c.as_str()).collect();
    let mut d = doc! {
        "user_id": &s.user_id,
        "alert_type": &s.alert_type,
        "enabled": s.enabled,
        "channels": channels,
        "min_severity": i32::from(s.min_severity.rank()),
    };
    set_opt(
        &mut d,
        "digest",
        s.digest.map(|x| Bson::String(x.as_str().into())),
    );
    d
}

pub(super) fn sub_from(d: &Document) -> Result<Subscription> {
    Ok(Subscription {
        user_id: get_str(d, "user_id")?,
        alert_type: get_str(d, "alert_type")?,
        enabled: d.get_bool("enabled").map_err(|e| corrupt(BACKEND, e))?,
        channels: get_strings(d, "channels")?
            .iter()
            .map(|c| parse(BACKEND, c))
            .collect::<Result<_>>()?,
        min_severity: get_severity(d, "min_severity")?,
        digest: get_opt_str(d, "digest")?
            .map(|x| parse(BACKEND, &x))
            .transpose()?,
    })
}
