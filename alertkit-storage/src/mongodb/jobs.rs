//! [`JobStore`]: job runs.

use super::*;
use mongodb::error::ErrorKind;

#[async_trait]
impl JobStore for MongoAlertStore {
    async fn claim_job_run(&self, run: &JobRun) -> Result<bool> {
        match self.runs().insert_one(run_doc(run)).await {
            Ok(_) => Ok(true),
            Err(e) if code(&e) == Some(DUPLICATE_KEY) => Ok(false),
            Err(e) => Err(error::map_err(e)),
        }
    }

    async fn claim_job_runs(&self, runs: &[JobRun]) -> Result<Vec<bool>> {
        if runs.is_empty() {
            return Ok(Vec::new());
        }
        // One unordered insert: every tick is tried; the ones refused for a
        // duplicate (job, tick) key were taken by another instance.
        match self
            .runs()
            .insert_many(runs.iter().map(run_doc))
            .ordered(false)
            .await
        {
            Ok(_) => Ok(vec![true; runs.len()]),
            Err(e) => {
                let ErrorKind::InsertMany(m) = e.kind.as_ref() else {
                    return Err(error::map_err(e));
                };
                let mut won = vec![true; runs.len()];
                for w in m.write_errors.iter().flatten() {
                    if w.code != DUPLICATE_KEY {
                        return Err(error::map_err(e));
                    }
                    if let Some(slot) = won.get_mut(w.index) {
                        *slot = false;
                    }
                }
                if m.write_concern_error.is_some() {
                    return Err(error::map_err(e));
                }
                Ok(won)
            }
        }
    }

    async fn update_job_run(&self, run: &JobRun) -> Result<()> {
        // Fenced by attempt: a run taken over by another instance is not
        // overwritten by the one that lost it.
        let res = self
            .runs()
            .replace_one(
                doc! { "_id": id_bson(run.id), "attempt": { "$lte": i64::from(run.attempt) } },
                run_doc(run),
            )
            .await
            .mongo()?;
        if res.matched_count == 0 {
            let exists = self
                .runs()
                .find_one(doc! { "_id": id_bson(run.id) })
                .await
                .mongo()?;
            return Err(match exists {
                Some(_) => Error::Conflict(format!(
                    "job run {} was taken over by another instance",
                    run.id
                )),
                None => Error::not_found(format!("job run {}", run.id)),
            });
        }
        Ok(())
    }

    async fn job_runs(&self, job_id: &str, limit: u32) -> Result<Vec<JobRun>> {
        collect(
            self.runs()
                .find(doc! { "job_id": job_id })
                .sort(doc! { "scheduled_at": -1 })
                .limit(i64::from(limit))
                .await
                .mongo()?,
        )
        .await?
        .iter()
        .map(run_from)
        .collect()
    }

    async fn claim_stale_job_runs(
        &self,
        job_ids: &[String],
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<JobRun>> {
        let stale = doc! {
            "status": { "$in": ["pending", "running"] },
            "lease_until": { "$lte": time_bson(now) },
            "job_id": { "$in": job_ids },
        };
        let take = doc! {
            "$set": { "status": "pending", "lease_until": time_bson(lease_until) },
            "$inc": { "attempt": 1_i64 },
        };
        let mut out = Vec::new();
        // One atomic find-and-modify per run: two instances never take the same one.
        for _ in 0..limit {
            let taken = self
                .runs()
                .find_one_and_update(stale.clone(), take.clone())
                .sort(doc! { "scheduled_at": 1 })
                .return_document(ReturnDocument::After)
                .await
                .mongo()?;
            match taken {
                Some(d) => out.push(run_from(&d)?),
                None => break,
            }
        }
        Ok(out)
    }

    async fn set_job_paused(&self, job_id: &str, paused: bool, now: DateTime<Utc>) -> Result<()> {
        self.scheduler_jobs_coll()
            .replace_one(
                doc! { "_id": job_id },
                doc! { "_id": job_id, "paused": paused, "updated_at": time_bson(now) },
            )
            .upsert(true)
            .await
            .mongo()?;
        Ok(())
    }

    async fn paused_jobs(&self) -> Result<Vec<String>> {
        collect(
            self.scheduler_jobs_coll()
                .find(doc! { "paused": true })
                .sort(doc! { "_id": 1 })
                .await
                .mongo()?,
        )
        .await?
        .iter()
        .map(|d| get_str(d, "_id"))
        .collect()
    }
}
