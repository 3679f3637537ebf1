//! [`Outbox`]: the delivery outbox.

use super::*;
use alertkit_core::Channel;

#[async_trait]
impl Outbox for MongoAlertStore {
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
        let (status, next, error) = match &outcome {
            DeliveryOutcome::Sent => ("sent", None, None),
            DeliveryOutcome::Retry { at, error } => ("pending", Some(*at), Some(error.clone())),
            DeliveryOutcome::Dead { error } => ("dead", None, Some(error.clone())),
        };
        let mut set = doc! { "status": status, "updated_at": time_bson(now) };
        let mut unset = doc! { "lease_until": "" };
        if let Some(next) = next {
            set.insert("next_attempt_at", time_bson(next));
        }
        match error {
            Some(e) => {
                set.insert("last_error", e);
            }
            None => {
                unset.insert("last_error", "");
            }
        }
        let updated = self
            .deliveries_coll()
            .find_one_and_update(
                doc! { "_id": id_bson(id), "status": "in_flight", "attempts": i64::from(attempt) },
                doc! { "$set": set, "$unset": unset },
            )
            .return_document(ReturnDocument::After)
            .await
            .mongo()?;
        match updated {
            Some(d) => {
                let d = delivery_from(&d)?;
                let a = alertkit_core::DeliveryAttempt::of(id, attempt, &outcome, now);
                let mut doc = doc! {
                    "_id": id_bson(Uuid::now_v7()),
                    "delivery_id": id_bson(id),
                    "alert_id": id_bson(d.alert_id.as_uuid()),
                    "attempt": i64::from(attempt),
                    "at": time_bson(now),
                    "outcome": &a.outcome,
                };
                set_opt(&mut doc, "error", a.error.map(Bson::String));
                self.attempts_coll().insert_one(doc).await.mongo()?;
                Ok(d)
            }
            None => match self
                .deliveries_coll()
                .find_one(doc! { "_id": id_bson(id) })
                .await
                .mongo()?
            {
                Some(_) => Err(Error::Conflict(format!(
                    "delivery {id} is not in flight on attempt {attempt}"
                ))),
                None => Err(Error::not_found(format!("delivery {id}"))),
            },
        }
    }

    async fn deliveries(&self, alert_id: AlertId) -> Result<Vec<Delivery>> {
        collect(
            self.deliveries_coll()
                .find(doc! { "alert_id": id_bson(alert_id.as_uuid()) })
                .sort(doc! { "created_at": 1, "_id": 1 })
                .await
                .mongo()?,
        )
        .await?
        .iter()
        .map(delivery_from)
        .collect()
    }

    async fn deliveries_in(&self, status: DeliveryStatus, limit: u32) -> Result<Vec<Delivery>> {
        collect(
            self.deliveries_coll()
                .find(doc! { "status": status.as_str() })
                .sort(doc! { "updated_at": -1, "_id": -1 })
                .limit(i64::from(limit))
                .await
                .mongo()?,
        )
        .await?
        .iter()
        .map(delivery_from)
        .collect()
    }

    async fn retry_delivery(&self, id: Uuid, now: DateTime<Utc>) -> Result<Delivery> {
        let updated = self
            .deliveries_coll()
            .find_one_and_update(
                doc! { "_id": id_bson(id), "status": "dead" },
                doc! {
                    "$set": {
                        "status": "pending",
                        "attempts": 0_i64,
                        "next_attempt_at": time_bson(now),
                        "updated_at": time_bson(now),
                    },
                    "$unset": { "lease_until": "" },
                },
            )
            .return_document(ReturnDocument::After)
            .await
            .mongo()?;
        match updated {
            Some(d) => delivery_from(&d),
            None => match self
                .deliveries_coll()
                .find_one(doc! { "_id": id_bson(id) })
                .await
                .mongo()?
            {
                Some(_) => Err(Error::Conflict(format!(
                    "delivery {id} is not a dead letter"
                ))),
                None => Err(Error::not_found(format!("delivery {id}"))),
            },
        }
    }

    async fn attempts(&self, delivery_id: Uuid) -> Result<Vec<alertkit_core::DeliveryAttempt>> {
        collect(
            self.attempts_coll()
                .find(doc! { "delivery_id": id_bson(delivery_id) })
                .sort(doc! { "at": 1, "_id": 1 })
                .await
                .mongo()?,
        )
        .await?
        .iter()
        .map(|d| {
            Ok(alertkit_core::DeliveryAttempt {
                delivery_id,
                attempt: get_u32(d, "attempt")?,
                at: get_time(d, "at")?,
                outcome: get_str(d, "outcome")?,
                error: get_opt_str(d, "error")?,
            })
        })
        .collect()
    }

    async fn backlog(&self, now: DateTime<Utc>) -> Result<alertkit_core::Backlog> {
        let unfinished = self
            .deliveries_coll()
            .count_documents(doc! { "status": { "$in": ["pending", "in_flight"] } })
            .await
            .mongo()?;
        let oldest = self
            .deliveries_coll()
            .find_one(doc! { "status": "pending", "next_attempt_at": { "$lte": time_bson(now) } })
            .sort(doc! { "next_attempt_at": 1 })
            .await
            .mongo()?;
        Ok(alertkit_core::Backlog {
            unfinished,
            oldest_due: oldest
                .map(|d| get_time(&d, "next_attempt_at"))
                .transpose()?,
        })
    }
}

impl MongoAlertStore {
    /// Claims due deliveries; only the digest items of one (user, channel)
    /// when `digest_of` is given.
    async fn claim(
        &self,
        now: DateTime<Utc>,
        lease: Duration,
        limit: u32,
        digest_of: Option<(&str, Channel)>,
    ) -> Result<Vec<ClaimedDelivery>> {
        let mut due = doc! { "$or": [
            { "status": "pending", "next_attempt_at": { "$lte": time_bson(now) } },
            { "status": "in_flight", "lease_until": { "$lte": time_bson(now) } },
        ] };
        if let Some((user, channel)) = digest_of {
            due.insert("user_id", user);
            due.insert("channel", channel.as_str());
            due.insert("digest", doc! { "$in": ["hourly", "daily"] });
        }
        let claim = doc! {
            "$set": { "status": "in_flight", "lease_until": time_bson(now + lease), "updated_at": time_bson(now) },
            "$inc": { "attempts": 1_i64 },
        };
        let mut deliveries = Vec::new();
        // One atomic find-and-modify per delivery: two dispatchers can never
        // both match the same pending document.
        for _ in 0..limit {
            let claimed = self
                .deliveries_coll()
                .find_one_and_update(due.clone(), claim.clone())
                .sort(doc! { "next_attempt_at": 1, "_id": 1 })
                .return_document(ReturnDocument::After)
                .await
                .mongo()?;
            match claimed {
                Some(d) => deliveries.push(delivery_from(&d)?),
                None => break,
            }
        }
        let ids: HashSet<Uuid> = deliveries.iter().map(|d| d.alert_id.as_uuid()).collect();
        let alerts: HashMap<AlertId, Alert> = collect(
            self.alerts()
                .find(doc! { "_id": { "$in": ids_bson(ids) } })
                .await
                .mongo()?,
        )
        .await?
        .iter()
        .map(|d| alert_from(d).map(|a| (a.id, a)))
        .collect::<Result<_>>()?;
        Ok(pair_with_alerts(deliveries, &alerts))
    }
}
