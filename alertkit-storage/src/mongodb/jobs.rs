//! [`JobStore`]: job runs.

use super::*;

#[async_trait]
impl JobStore for MongoAlertStore {
    async fn claim_job_run(&self, run: &JobRun) -> Result<bool> {
        match self.runs().insert_one(run_doc(run)).await {
            Ok(_) => Ok(true),
            Err(e) if code(&e) == Some(DUPLICATE_KEY) => Ok(false),
            Err(e) => Err(error::map_err(e)),
        }
    }

    async fn update_job_run(&self, run: &JobRun) -> Result<()> {
        let res = self
            .runs()
            .replace_one(doc! { "_id": id_bson(run.id) }, run_doc(run))
            .await
            .mongo()?;
        if res.matched_count == 0 {
            return Err(Error::not_found(format!("job run {}", run.id)));
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
}
