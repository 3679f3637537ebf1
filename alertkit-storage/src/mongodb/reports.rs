//! [`ReportStore`]: report records in the collection `reports` (the report
//! as JSON in `body`, beside the fields claims select on), and the
//! aggregates reports are made of.

use super::*;
use alertkit_core::report::CountAccumulator;
use alertkit_core::{AlertCount, Channel, DeliveryCount, Report, ReportStatus, ReportStore};

fn report_doc(r: &Report) -> Result<Document> {
    let body = serde_json::to_string(r).map_err(|e| Error::backend(BACKEND, e))?;
    Ok(doc! {
        "_id": id_bson(r.id),
        "status": r.status.as_str(),
        "attempts": i64::from(r.attempts),
        "due_at": time_bson(r.due_at),
        "updated_at": time_bson(r.updated_at),
        "body": body,
    })
}

/// A report from its document: the body, with the fields' values over it.
fn report_from(d: &Document) -> Result<Report> {
    let mut r: Report =
        serde_json::from_str(&get_str(d, "body")?).map_err(|e| corrupt(BACKEND, e))?;
    r.status = parse::<ReportStatus>(BACKEND, &get_str(d, "status")?)?;
    r.attempts = u32::try_from(get_int(d, "attempts")?).map_err(|e| corrupt(BACKEND, e))?;
    r.due_at = get_time(d, "due_at")?;
    r.updated_at = get_time(d, "updated_at")?;
    Ok(r)
}

impl MongoAlertStore {
    pub(super) fn reports_coll(&self) -> Collection<Document> {
        self.db.collection("reports")
    }
}

#[async_trait]
impl ReportStore for MongoAlertStore {
    async fn create_report(&self, report: &Report) -> Result<()> {
        match self.reports_coll().insert_one(report_doc(report)?).await {
            Ok(_) => Ok(()),
            Err(e) if code(&e) == Some(DUPLICATE_KEY) => {
                Err(Error::Conflict(format!("report {} exists", report.id)))
            }
            Err(e) => Err(e).mongo(),
        }
    }

    async fn report(&self, id: Uuid) -> Result<Report> {
        let d = self
            .reports_coll()
            .find_one(doc! { "_id": id_bson(id) })
            .await
            .mongo()?
            .ok_or_else(|| Error::not_found(format!("report {id}")))?;
        report_from(&d)
    }

    async fn claim_reports(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Report>> {
        let due = doc! {
            "status": { "$in": ["PENDING", "RUNNING"] },
            "due_at": { "$lte": time_bson(now) },
        };
        let claim = doc! {
            "$set": { "status": "RUNNING", "due_at": time_bson(lease_until), "updated_at": time_bson(now) },
            "$inc": { "attempts": 1_i64 },
        };
        let mut out = Vec::new();
        // One atomic find-and-modify per report: two workers never both
        // match the same due document.
        for _ in 0..limit {
            let claimed = self
                .reports_coll()
                .find_one_and_update(due.clone(), claim.clone())
                .sort(doc! { "due_at": 1, "_id": 1 })
                .return_document(ReturnDocument::After)
                .await
                .mongo()?;
            match claimed {
                Some(d) => out.push(report_from(&d)?),
                None => break,
            }
        }
        out.sort_by_key(|r| (r.created_at, r.id));
        Ok(out)
    }

    async fn update_report(&self, report: &Report) -> Result<()> {
        let res = self
            .reports_coll()
            .replace_one(
                doc! {
                    "_id": id_bson(report.id),
                    "status": "RUNNING",
                    "attempts": i64::from(report.attempts),
                },
                report_doc(report)?,
            )
            .await
            .mongo()?;
        if res.matched_count == 0 {
            self.report(report.id).await?;
            return Err(Error::Conflict(format!(
                "report {} is no longer on attempt {}",
                report.id, report.attempts
            )));
        }
        Ok(())
    }

    async fn purge_reports(&self, before: DateTime<Utc>, limit: u32) -> Result<Vec<Uuid>> {
        let done = doc! {
            "status": { "$in": ["COMPLETED", "FAILED"] },
            "updated_at": { "$lt": time_bson(before) },
        };
        let ids = collect(
            self.reports_coll()
                .find(done.clone())
                .projection(doc! { "_id": 1 })
                .limit(i64::from(limit))
                .await
                .mongo()?,
        )
        .await?
        .iter()
        .map(|d| get_uuid(d, "_id"))
        .collect::<Result<Vec<_>>>()?;
        if !ids.is_empty() {
            let mut filter = done;
            filter.insert("_id", doc! { "$in": ids_bson(ids.clone()) });
            self.reports_coll().delete_many(filter).await.mongo()?;
        }
        Ok(ids)
    }

    async fn alert_counts(
        &self,
        viewer: &Viewer,
        filter: &AlertFilter,
        now: DateTime<Utc>,
    ) -> Result<Vec<AlertCount>> {
        let receipts = if filter.unread_only || !filter.include_dismissed {
            self.receipts_of(&viewer.user_id).await?
        } else {
            Receipts::new()
        };
        let pipeline = vec![
            doc! { "$match": all_of(alert_conditions(viewer, filter, now, &receipts)) },
            doc! { "$project": {
                "created_at": 1, "alert_type": 1, "severity": 1, "tags": 1, "occurrences": 1,
            } },
        ];
        let mut cursor = self.alerts().aggregate(pipeline).await.mongo()?;
        let mut acc = CountAccumulator::default();
        while let Some(d) = cursor.try_next().await.mongo()? {
            acc.add(
                get_time(&d, "created_at")?,
                &get_str(&d, "alert_type")?,
                get_severity(&d, "severity")?,
                &get_strings(&d, "tags")?,
                u64::try_from(get_int(&d, "occurrences")?).unwrap_or(0),
            );
        }
        Ok(acc.finish())
    }

    async fn delivery_counts(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<DeliveryCount>> {
        let pipeline = vec![
            doc! { "$match": { "created_at": { "$gt": time_bson(from), "$lte": time_bson(to) } } },
            doc! { "$group": {
                "_id": { "c": "$channel", "s": "$status" },
                "n": { "$sum": 1 },
                "t": { "$sum": "$attempts" },
            } },
        ];
        let mut out = Vec::new();
        for d in collect(self.deliveries_coll().aggregate(pipeline).await.mongo()?).await? {
            let key = d.get_document("_id").map_err(|e| corrupt(BACKEND, e))?;
            out.push(DeliveryCount {
                channel: parse::<Channel>(BACKEND, &get_str(key, "c")?)?,
                status: parse::<DeliveryStatus>(BACKEND, &get_str(key, "s")?)?,
                deliveries: u64::try_from(get_int(&d, "n")?).unwrap_or(0),
                attempts: u64::try_from(get_int(&d, "t")?).unwrap_or(0),
            });
        }
        out.sort_by_key(|d| (d.channel, d.status.as_str()));
        Ok(out)
    }
}
