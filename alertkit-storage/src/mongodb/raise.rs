//! The raise transaction: dedup, outbox enqueue, change number.

use super::*;

/// How often a raise transaction is retried after losing a race.
pub(super) const RAISE_ATTEMPTS: u32 = 30;

/// Pause before retry `attempt` of a conflicting transaction: exponential
/// from 2 ms, capped at 250 ms, with jitter (half to all of it) so that
/// writers contending for the change counter fall out of step.
pub(super) fn retry_pause(attempt: u32) -> StdDuration {
    let cap = 2u64.saturating_mul(1 << attempt.min(7)).min(250);
    // UUIDv7's low bits are random.
    let r = (Uuid::now_v7().as_u128() & 0xffff) as u64;
    StdDuration::from_millis(cap / 2 + r % (cap / 2 + 1))
}

impl MongoAlertStore {
    /// Takes `n` change sequence numbers inside `s`'s transaction; returns
    /// the last. Two transactions taking numbers write the same counter
    /// document, so the second conflicts and retries once the first has
    /// committed: numbers follow commit order.
    pub(super) async fn next_seq(&self, s: &mut ClientSession, n: u64) -> Result<u64> {
        let inc = i64::try_from(n).unwrap_or(i64::MAX);
        let d = self
            .seq_coll()
            .find_one_and_update(doc! { "_id": "alerts" }, doc! { "$inc": { "value": inc } })
            .upsert(true)
            .return_document(ReturnDocument::After)
            .session(&mut *s)
            .await
            .mongo()?
            .ok_or_else(|| corrupt(BACKEND, "alert_seq counter missing after upsert"))?;
        Ok(u64::try_from(get_int(&d, "value")?).unwrap_or(0))
    }

    /// One attempt at a raise inside `s`'s transaction. `None`: a concurrent
    /// raise of the same key won; retry.
    pub(super) async fn raise_in(
        &self,
        s: &mut ClientSession,
        alert: &Alert,
        targets: &[DeliveryTarget],
        now: DateTime<Utc>,
    ) -> Result<Option<Raised>> {
        let seq = self.next_seq(s, 1).await?;
        if let Some(scope) = alert.dedup_scope() {
            let mut set = doc! {
                "seq": i64::try_from(seq).unwrap_or(i64::MAX),
                "title": &alert.title,
                "message": &alert.message,
                "metadata": alert.metadata.to_string(),
                "last_seen_at": time_bson(now),
                "updated_at": time_bson(now),
            };
            let mut update = doc! {
                "$inc": { "occurrences": 1_i64 },
                "$max": { "severity": i32::from(alert.severity.rank()) },
            };
            match alert.expires_at {
                Some(e) => {
                    set.insert("expires_at", time_bson(e));
                }
                None => {
                    update.insert("$unset", doc! { "expires_at": "" });
                }
            }
            update.insert("$set", set);
            let before = self
                .alerts()
                .find_one_and_update(doc! { "dedup_scope": &scope, "status": "active" }, update)
                .return_document(ReturnDocument::Before)
                .session(&mut *s)
                .await
                .mongo()?;
            if let Some(before) = before {
                let mut existing = alert_from(&before)?;
                let escalated = existing.merge_repeat(alert, now);
                existing.seq = seq;
                // The update set the repeat's expiry; a merge never
                // shortens one, so put back the longer one when it differs.
                if existing.expires_at != alert.expires_at {
                    let fix = match existing.expires_at {
                        Some(e) => doc! { "$set": { "expires_at": time_bson(e) } },
                        None => doc! { "$unset": { "expires_at": "" } },
                    };
                    self.alerts()
                        .update_one(doc! { "_id": id_bson(existing.id.as_uuid()) }, fix)
                        .session(&mut *s)
                        .await
                        .mongo()?;
                }
                if escalated {
                    self.enqueue(s, &existing, targets, now).await?;
                }
                return Ok(Some(Raised {
                    alert: existing,
                    deduplicated: true,
                    escalated,
                }));
            }
        }
        let alert = &Alert {
            seq,
            ..alert.clone()
        };
        match self
            .alerts()
            .insert_one(alert_doc(alert))
            .session(&mut *s)
            .await
        {
            Ok(_) => {}
            Err(e) if code(&e) == Some(DUPLICATE_KEY) && alert.dedup_key.is_some() => {
                return Ok(None);
            }
            Err(e) => return Err(error::map_err(e)),
        }
        self.enqueue(s, alert, targets, now).await?;
        Ok(Some(Raised {
            alert: alert.clone(),
            deduplicated: false,
            escalated: false,
        }))
    }

    pub(super) async fn enqueue(
        &self,
        s: &mut ClientSession,
        alert: &Alert,
        targets: &[DeliveryTarget],
        now: DateTime<Utc>,
    ) -> Result<()> {
        if targets.is_empty() {
            return Ok(());
        }
        // A duplicate-key error would abort the transaction: skip receivers
        // that already have a delivery at this severity instead.
        let mut cursor = self
            .deliveries_coll()
            .find(doc! { "alert_id": id_bson(alert.id.as_uuid()), "severity": i32::from(alert.severity.rank()) })
            .session(&mut *s)
            .await
            .mongo()?;
        let existing: HashSet<(String, String)> = collect_in(&mut cursor, s)
            .await?
            .iter()
            .map(|d| Ok((get_str(d, "user_id")?, get_str(d, "channel")?)))
            .collect::<Result<_>>()?;
        let mut seen = HashSet::new();
        let docs: Vec<Document> = targets
            .iter()
            .filter(|t| {
                let k = (t.user_id.clone(), t.channel.as_str().to_owned());
                !existing.contains(&k) && seen.insert(k)
            })
            .map(|t| delivery_doc(&Delivery::new(alert, t, now)))
            .collect();
        if !docs.is_empty() {
            self.deliveries_coll()
                .insert_many(docs)
                .session(&mut *s)
                .await
                .mongo()?;
        }
        Ok(())
    }

    /// Runs `raise_in` in a transaction, retrying lost races and transient
    /// transaction errors with a short, growing pause.
    pub(super) async fn raise_tx(
        &self,
        alert: &Alert,
        targets: &[DeliveryTarget],
        now: DateTime<Utc>,
    ) -> Result<Raised> {
        for attempt in 0..RAISE_ATTEMPTS {
            let mut s = self.client.start_session().await.mongo()?;
            s.start_transaction().await.mongo()?;
            let outcome = self.raise_in(&mut s, alert, targets, now).await;
            match outcome {
                Ok(Some(raised)) => match s.commit_transaction().await {
                    Ok(()) => return Ok(raised),
                    Err(e) if error::commit_may_retry(&e) => {}
                    Err(e) => return Err(error::map_err(e)),
                },
                Ok(None) | Err(Error::Unavailable(_)) | Err(Error::Conflict(_)) => {
                    let _ = s.abort_transaction().await;
                }
                Err(e) => {
                    let _ = s.abort_transaction().await;
                    return Err(e);
                }
            }
            tokio::time::sleep(retry_pause(attempt)).await;
        }
        Err(Error::Unavailable(
            "mongodb: raise kept conflicting; try again".into(),
        ))
    }
}
