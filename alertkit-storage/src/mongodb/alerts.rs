//! [`AlertStore`]: reads, receipts, the change feed, resolve, delete, purge.

use super::*;

// ---- queries ----------------------------------------------------------------

/// One viewer's receipts, by alert.
pub(super) type Receipts = HashMap<Uuid, Receipt>;

/// Conditions for alerts visible to the viewer, unexpired, matching the filter.
pub(super) fn alert_conditions(
    viewer: &Viewer,
    filter: &AlertFilter,
    now: DateTime<Utc>,
    receipts: &Receipts,
) -> Vec<Document> {
    let mut and = vec![
        doc! { "$or": [ { "expires_at": Bson::Null }, { "expires_at": { "$gt": time_bson(now) } } ] },
    ];
    if !viewer.sees_all {
        and.push(doc! { "audience": { "$in": viewer_targets(viewer) } });
    }
    if let Some(since) = filter.since {
        and.push(doc! { "created_at": { "$gt": time_bson(since) } });
    }
    if let Some(until) = filter.until {
        and.push(doc! { "created_at": { "$lte": time_bson(until) } });
    }
    if !filter.severities.is_empty() {
        let ranks: Vec<i32> = filter
            .severities
            .iter()
            .map(|s| i32::from(s.rank()))
            .collect();
        and.push(doc! { "severity": { "$in": ranks } });
    }
    if let Some(min) = filter.min_severity {
        and.push(doc! { "severity": { "$gte": i32::from(min.rank()) } });
    }
    if !filter.alert_types.is_empty() {
        and.push(doc! { "alert_type": { "$in": filter.alert_types.clone() } });
    }
    if !filter.tags.is_empty() {
        and.push(doc! { "tags": { "$in": filter.tags.clone() } });
    }
    if let Some(status) = filter.status {
        and.push(doc! { "status": status.as_str() });
    }
    let excluded: Vec<Uuid> = receipts
        .iter()
        .filter(|(_, r)| {
            (filter.unread_only && r.is_read()) || (!filter.include_dismissed && r.is_dismissed())
        })
        .map(|(id, _)| *id)
        .collect();
    if !excluded.is_empty() {
        and.push(doc! { "_id": { "$nin": ids_bson(excluded) } });
    }
    and
}

pub(super) fn all_of(conditions: Vec<Document>) -> Document {
    doc! { "$and": conditions }
}

pub(super) fn visible_one(viewer: &Viewer, id: AlertId, now: DateTime<Utc>) -> Document {
    let mut c = alert_conditions(
        viewer,
        &AlertFilter {
            include_dismissed: true,
            ..Default::default()
        },
        now,
        &Receipts::new(),
    );
    c.push(doc! { "_id": id_bson(id.as_uuid()) });
    all_of(c)
}

pub(super) async fn collect(cursor: mongodb::Cursor<Document>) -> Result<Vec<Document>> {
    cursor.try_collect().await.mongo()
}

pub(super) async fn collect_in(
    cursor: &mut mongodb::SessionCursor<Document>,
    s: &mut ClientSession,
) -> Result<Vec<Document>> {
    cursor.stream(s).try_collect().await.mongo()
}

impl MongoAlertStore {
    /// Writes alerts without a dedup key, and their deliveries, in one
    /// transaction, retrying conflicts on the change counter as a raise does.
    async fn insert_plain_tx(
        &self,
        plain: &mut [(Alert, Vec<DeliveryTarget>)],
        now: DateTime<Utc>,
    ) -> Result<()> {
        for attempt in 0..RAISE_ATTEMPTS {
            let mut s = self.client.start_session().await.mongo()?;
            s.start_transaction().await.mongo()?;
            match self.insert_plain_in(&mut s, plain, now).await {
                Ok(()) => match s.commit_transaction().await {
                    Ok(()) => return Ok(()),
                    Err(e) if error::commit_may_retry(&e) => {}
                    Err(e) => return Err(error::map_err(e)),
                },
                // Transient (a write conflict on the change counter).
                Err(Error::Unavailable(_)) => {
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
            "mongodb: the batch insert kept conflicting; try again".into(),
        ))
    }

    async fn insert_plain_in(
        &self,
        s: &mut ClientSession,
        plain: &mut [(Alert, Vec<DeliveryTarget>)],
        now: DateTime<Utc>,
    ) -> Result<()> {
        let last = self.next_seq(s, plain.len() as u64).await?;
        let first = last + 1 - plain.len() as u64;
        for (i, (a, _)) in plain.iter_mut().enumerate() {
            a.seq = first + i as u64;
        }
        self.alerts()
            .insert_many(plain.iter().map(|(a, _)| alert_doc(a)))
            .session(&mut *s)
            .await
            .mongo()?;
        let deliveries: Vec<Document> = plain
            .iter()
            .flat_map(|(a, targets)| {
                let mut seen = HashSet::new();
                targets
                    .iter()
                    .filter(move |t| seen.insert((t.user_id.clone(), t.channel)))
                    .map(move |t| delivery_doc(&Delivery::new(a, t, now)))
            })
            .collect();
        if !deliveries.is_empty() {
            self.deliveries_coll()
                .insert_many(deliveries)
                .session(&mut *s)
                .await
                .mongo()?;
        }
        Ok(())
    }

    pub(super) async fn receipts_of(&self, user: &str) -> Result<Receipts> {
        let docs = collect(
            self.receipts_coll()
                .find(doc! { "user_id": user })
                .await
                .mongo()?,
        )
        .await?;
        docs.iter()
            .map(|d| Ok((get_uuid(d, "alert_id")?, receipt_from(d)?)))
            .collect()
    }

    pub(super) async fn count_where(&self, filter: Document) -> Result<u64> {
        self.alerts().count_documents(filter).await.mongo()
    }

    pub(super) async fn touch_receipt(
        &self,
        viewer: &Viewer,
        id: AlertId,
        now: DateTime<Utc>,
        field: &str,
    ) -> Result<Receipt> {
        if self
            .alerts()
            .find_one(visible_one(viewer, id, now))
            .await
            .mongo()?
            .is_none()
        {
            return Err(Error::not_found(format!("alert {id}")));
        }
        let key = doc! { "user_id": &viewer.user_id, "alert_id": id_bson(id.as_uuid()) };
        // $min keeps the first time; an absent field takes the new one.
        self.receipts_coll()
            .update_one(key.clone(), doc! { "$min": { field: time_bson(now) } })
            .upsert(true)
            .await
            .mongo()?;
        match self.receipts_coll().find_one(key).await.mongo()? {
            Some(d) => receipt_from(&d),
            None => Err(Error::not_found(format!("alert {id}"))),
        }
    }

    pub(super) async fn drop_children(&self, ids: &[Uuid]) -> Result<()> {
        let filter = doc! { "alert_id": { "$in": ids_bson(ids.iter().copied()) } };
        self.receipts_coll()
            .delete_many(filter.clone())
            .await
            .mongo()?;
        self.attempts_coll()
            .delete_many(filter.clone())
            .await
            .mongo()?;
        self.deliveries_coll().delete_many(filter).await.mongo()?;
        Ok(())
    }

    /// One attempt at resolving, in a transaction that takes a change number.
    pub(super) async fn resolve_once(
        &self,
        id: AlertId,
        now: DateTime<Utc>,
    ) -> Result<(Alert, bool)> {
        let mut s = self.client.start_session().await.mongo()?;
        s.start_transaction().await.mongo()?;
        let seq = self.next_seq(&mut s, 1).await?;
        let changed = self
            .alerts()
            .find_one_and_update(
                doc! { "_id": id_bson(id.as_uuid()), "status": "active" },
                doc! { "$set": {
                    "status": "resolved",
                    "updated_at": time_bson(now),
                    "seq": i64::try_from(seq).unwrap_or(i64::MAX),
                } },
            )
            .return_document(ReturnDocument::After)
            .session(&mut s)
            .await
            .mongo()?;
        if let Some(d) = changed {
            s.commit_transaction().await.mongo()?;
            return Ok((alert_from(&d)?, true));
        }
        let _ = s.abort_transaction().await;
        match self
            .alerts()
            .find_one(doc! { "_id": id_bson(id.as_uuid()) })
            .await
            .mongo()?
        {
            Some(d) => Ok((alert_from(&d)?, false)),
            None => Err(Error::not_found(format!("alert {id}"))),
        }
    }
}

#[async_trait]
impl AlertStore for MongoAlertStore {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    async fn ping(&self) -> Result<()> {
        self.db.run_command(doc! { "ping": 1 }).await.mongo()?;
        Ok(())
    }

    async fn insert_or_dedup(
        &self,
        alert: Alert,
        deliveries: &[DeliveryTarget],
        now: DateTime<Utc>,
    ) -> Result<Raised> {
        self.raise_tx(&alert, deliveries, now).await
    }

    /// Keyed alerts go through the dedup transaction one by one; the rest
    /// are written with one multi-document insert, their deliveries with
    /// another, in one transaction.
    async fn insert_many(
        &self,
        items: Vec<(Alert, Vec<DeliveryTarget>)>,
        now: DateTime<Utc>,
    ) -> Result<Vec<Raised>> {
        let mut out = Vec::with_capacity(items.len());
        let mut plain = Vec::new();
        for (alert, targets) in items {
            if alert.dedup_key.is_some() {
                out.push(Some(self.raise_tx(&alert, &targets, now).await?));
            } else {
                out.push(None);
                plain.push((alert, targets));
            }
        }
        if !plain.is_empty() {
            self.insert_plain_tx(&mut plain, now).await?;
        }
        Ok(in_input_order(out, plain))
    }

    async fn find_active(
        &self,
        dedup_key: &str,
        created_by: Option<String>,
        _now: DateTime<Utc>,
    ) -> Result<Vec<Alert>> {
        let mut filter = doc! { "dedup_key": dedup_key, "status": "active" };
        if let Some(c) = created_by {
            filter.insert("created_by", c);
        }
        collect(
            self.alerts()
                .find(filter)
                .sort(doc! { "created_at": 1, "_id": 1 })
                .await
                .mongo()?,
        )
        .await?
        .iter()
        .map(alert_from)
        .collect()
    }

    async fn get(&self, viewer: &Viewer, id: AlertId, now: DateTime<Utc>) -> Result<AlertView> {
        let Some(d) = self
            .alerts()
            .find_one(visible_one(viewer, id, now))
            .await
            .mongo()?
        else {
            return Err(Error::not_found(format!("alert {id}")));
        };
        let receipt = match self
            .receipts_coll()
            .find_one(doc! { "user_id": &viewer.user_id, "alert_id": id_bson(id.as_uuid()) })
            .await
            .mongo()?
        {
            Some(r) => receipt_from(&r)?,
            None => Receipt::default(),
        };
        Ok(AlertView::new(alert_from(&d)?, receipt))
    }

    async fn list(&self, viewer: &Viewer, query: &AlertQuery, now: DateTime<Utc>) -> Result<Page> {
        let before = query.cursor.as_ref().map(|c| c.position()).transpose()?;
        let limit = query.effective_limit();
        let receipts = self.receipts_of(&viewer.user_id).await?;
        let base = alert_conditions(viewer, &query.filter, now, &receipts);
        let mut paged = base.clone();
        if let Some(p) = before {
            paged.push(doc! { "$or": [
                { "created_at": { "$lt": time_bson(p.created_at) } },
                { "created_at": time_bson(p.created_at), "_id": { "$lt": id_bson(p.id.as_uuid()) } },
            ] });
        }
        let docs = collect(
            self.alerts()
                .find(all_of(paged))
                .sort(doc! { "created_at": -1, "_id": -1 })
                .limit(i64::from(limit) + 1)
                .await
                .mongo()?,
        )
        .await?;
        let views = docs
            .iter()
            .map(|d| {
                let a = alert_from(d)?;
                let r = receipts.get(&a.id.as_uuid()).copied().unwrap_or_default();
                Ok(AlertView::new(a, r))
            })
            .collect::<Result<Vec<_>>>()?;
        let (total, unread) = match before.and_then(|p| p.totals) {
            Some(carried) => carried,
            // The newest COUNT_CAP matches' ids; their receipts are at hand.
            None => {
                let newest = collect(
                    self.alerts()
                        .find(all_of(base))
                        .projection(doc! { "_id": 1 })
                        .sort(doc! { "created_at": -1, "_id": -1 })
                        .limit(i64::try_from(COUNT_CAP).unwrap_or(i64::MAX))
                        .await
                        .mongo()?,
                )
                .await?;
                let mut unread = 0;
                for d in &newest {
                    let id = get_uuid(d, "_id")?;
                    unread += u64::from(!receipts.get(&id).is_some_and(Receipt::is_read));
                }
                (newest.len() as u64, unread)
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
        let receipts = self.receipts_of(&viewer.user_id).await?;
        self.count_where(all_of(alert_conditions(viewer, filter, now, &receipts)))
            .await
    }

    async fn stats(
        &self,
        viewer: &Viewer,
        filter: &AlertFilter,
        now: DateTime<Utc>,
    ) -> Result<Stats> {
        let receipts = self.receipts_of(&viewer.user_id).await?;
        let group = |f: &AlertFilter| {
            vec![
                doc! { "$match": all_of(alert_conditions(viewer, f, now, &receipts)) },
                doc! { "$group": { "_id": { "s": "$severity", "t": "$alert_type" }, "n": { "$sum": 1 } } },
            ]
        };
        let mut stats = Stats::default();
        for d in collect(self.alerts().aggregate(group(filter)).await.mongo()?).await? {
            let key = d.get_document("_id").map_err(|e| corrupt(BACKEND, e))?;
            let n = u64::try_from(get_int(&d, "n")?).unwrap_or(0);
            // Unread figures come from the second aggregate below.
            stats.add_group(get_severity(key, "s")?, &get_str(key, "t")?, n, 0);
        }
        let unread = AlertFilter {
            unread_only: true,
            ..filter.clone()
        };
        for d in collect(self.alerts().aggregate(group(&unread)).await.mongo()?).await? {
            stats.total_unread += u64::try_from(get_int(&d, "n")?).unwrap_or(0);
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
        let receipts = self.receipts_of(&viewer.user_id).await?;
        let unread = AlertFilter {
            unread_only: true,
            ..filter.clone()
        };
        let docs = collect(
            self.alerts()
                .find(all_of(alert_conditions(viewer, &unread, now, &receipts)))
                .projection(doc! { "_id": 1 })
                .sort(doc! { "created_at": -1, "_id": -1 })
                .await
                .mongo()?,
        )
        .await?;
        let ids = docs
            .iter()
            .map(|d| get_uuid(d, "_id"))
            .collect::<Result<Vec<_>>>()?;
        let (with_receipt, without): (Vec<Uuid>, Vec<Uuid>) =
            ids.iter().partition(|id| receipts.contains_key(id));
        if !with_receipt.is_empty() {
            self.receipts_coll()
                .update_many(
                    doc! { "user_id": &viewer.user_id, "alert_id": { "$in": ids_bson(with_receipt) } },
                    doc! { "$min": { "read_at": time_bson(now) } },
                )
                .await
                .mongo()?;
        }
        if !without.is_empty() {
            let new: Vec<Document> = without
                .iter()
                .map(|id| doc! { "user_id": &viewer.user_id, "alert_id": id_bson(*id), "read_at": time_bson(now) })
                .collect();
            match self.receipts_coll().insert_many(new).ordered(false).await {
                Ok(_) => {}
                // A receipt created meanwhile (a dismiss, say): mark it too.
                Err(e) if code(&e) == Some(DUPLICATE_KEY) => {
                    self.receipts_coll()
                        .update_many(
                            doc! { "user_id": &viewer.user_id, "alert_id": { "$in": ids_bson(without) } },
                            doc! { "$min": { "read_at": time_bson(now) } },
                        )
                        .await
                        .mongo()?;
                }
                Err(e) => return Err(error::map_err(e)),
            }
        }
        Ok(ids.into_iter().map(AlertId::from_uuid).collect())
    }

    async fn dismiss(&self, viewer: &Viewer, id: AlertId, now: DateTime<Utc>) -> Result<Receipt> {
        self.touch_receipt(viewer, id, now, "dismissed_at").await
    }

    async fn resolve(&self, id: AlertId, now: DateTime<Utc>) -> Result<(Alert, bool)> {
        // Taking a change number conflicts with concurrent writers: retry.
        for attempt in 0..RAISE_ATTEMPTS {
            match self.resolve_once(id, now).await {
                Err(Error::Unavailable(_)) if attempt + 1 < RAISE_ATTEMPTS => {
                    tokio::time::sleep(retry_pause(attempt)).await;
                }
                other => return other,
            }
        }
        Err(Error::Unavailable(
            "mongodb: resolve kept conflicting; try again".into(),
        ))
    }

    async fn receipts(&self, id: AlertId) -> Result<HashMap<String, Receipt>> {
        let docs: Vec<Document> = self
            .receipts_coll()
            .find(doc! { "alert_id": id_bson(id.as_uuid()) })
            .await
            .mongo()?
            .try_collect()
            .await
            .mongo()?;
        docs.iter()
            .map(|d| Ok((get_str(d, "user_id")?, receipt_from(d)?)))
            .collect()
    }

    async fn changes_since(
        &self,
        after: u64,
        limit: u32,
        now: DateTime<Utc>,
    ) -> Result<Vec<Alert>> {
        let docs: Vec<Document> = self
            .alerts()
            .find(doc! {
                "seq": { "$gt": i64::try_from(after).unwrap_or(i64::MAX) },
                "$or": [
                    { "expires_at": { "$exists": false } },
                    { "expires_at": { "$gt": time_bson(now) } },
                ],
            })
            .sort(doc! { "seq": 1 })
            .limit(i64::from(limit))
            .await
            .mongo()?
            .try_collect()
            .await
            .mongo()?;
        docs.iter().map(alert_from).collect()
    }

    async fn changes_for(
        &self,
        viewer: &Viewer,
        after: u64,
        upto: u64,
        limit: u32,
        now: DateTime<Utc>,
    ) -> Result<Vec<AlertView>> {
        let mut c = alert_conditions(
            viewer,
            &AlertFilter {
                include_dismissed: true,
                ..Default::default()
            },
            now,
            &Receipts::new(),
        );
        c.push(doc! { "seq": {
            "$gt": i64::try_from(after).unwrap_or(i64::MAX),
            "$lte": i64::try_from(upto).unwrap_or(i64::MAX),
        } });
        let alerts: Vec<Alert> = collect(
            self.alerts()
                .find(all_of(c))
                .sort(doc! { "seq": 1 })
                .limit(i64::from(limit))
                .await
                .mongo()?,
        )
        .await?
        .iter()
        .map(alert_from)
        .collect::<Result<_>>()?;
        if alerts.is_empty() {
            return Ok(Vec::new());
        }
        let ids = ids_bson(alerts.iter().map(|a| a.id.as_uuid()));
        let receipts: Receipts = collect(
            self.receipts_coll()
                .find(doc! { "user_id": &viewer.user_id, "alert_id": { "$in": ids } })
                .await
                .mongo()?,
        )
        .await?
        .iter()
        .map(|d| Ok((get_uuid(d, "alert_id")?, receipt_from(d)?)))
        .collect::<Result<_>>()?;
        Ok(alerts
            .into_iter()
            .map(|a| {
                let r = receipts.get(&a.id.as_uuid()).copied().unwrap_or_default();
                AlertView::new(a, r)
            })
            .collect())
    }

    async fn receipts_many(
        &self,
        ids: &[AlertId],
    ) -> Result<HashMap<AlertId, HashMap<String, Receipt>>> {
        let mut out: HashMap<AlertId, HashMap<String, Receipt>> = HashMap::new();
        let docs = collect(
            self.receipts_coll()
                .find(doc! { "alert_id": { "$in": ids_bson(ids.iter().map(|i| i.as_uuid())) } })
                .await
                .mongo()?,
        )
        .await?;
        for d in &docs {
            out.entry(AlertId::from_uuid(get_uuid(d, "alert_id")?))
                .or_default()
                .insert(get_str(d, "user_id")?, receipt_from(d)?);
        }
        Ok(out)
    }

    async fn latest_seq(&self) -> Result<u64> {
        match self
            .seq_coll()
            .find_one(doc! { "_id": "alerts" })
            .await
            .mongo()?
        {
            Some(d) => Ok(u64::try_from(get_int(&d, "value")?).unwrap_or(0)),
            None => Ok(0),
        }
    }

    async fn delete(&self, id: AlertId) -> Result<Alert> {
        let Some(d) = self
            .alerts()
            .find_one_and_delete(doc! { "_id": id_bson(id.as_uuid()) })
            .await
            .mongo()?
        else {
            return Err(Error::not_found(format!("alert {id}")));
        };
        self.drop_children(&[id.as_uuid()]).await?;
        alert_from(&d)
    }

    async fn purge_expired(
        &self,
        now: DateTime<Utc>,
        retention: Duration,
        batch: u32,
    ) -> Result<u64> {
        let docs = collect(
            self.alerts()
                .find(doc! { "$or": [
                    { "expires_at": { "$lte": time_bson(now) } },
                    { "updated_at": { "$lt": time_bson(now - retention) } },
                ] })
                .projection(doc! { "_id": 1 })
                .limit(i64::from(batch))
                .await
                .mongo()?,
        )
        .await?;
        let ids = docs
            .iter()
            .map(|d| get_uuid(d, "_id"))
            .collect::<Result<Vec<_>>>()?;
        if ids.is_empty() {
            return Ok(0);
        }
        let res = self
            .alerts()
            .delete_many(doc! { "_id": { "$in": ids_bson(ids.iter().copied()) } })
            .await
            .mongo()?;
        self.drop_children(&ids).await?;
        Ok(res.deleted_count)
    }
}
