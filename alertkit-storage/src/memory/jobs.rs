//! [`JobStore`]: job runs.

use super::*;

#[async_trait]
impl JobStore for MemoryAlertStore {
    async fn claim_job_run(&self, run: &JobRun) -> Result<bool> {
        let mut s = self.write();
        let key = (run.job_id.clone(), run.scheduled_at);
        if s.job_runs.contains_key(&key) {
            return Ok(false);
        }
        s.job_runs.insert(key, run.clone());
        Ok(true)
    }

    async fn update_job_run(&self, run: &JobRun) -> Result<()> {
        let mut s = self.write();
        match s.job_runs.get_mut(&(run.job_id.clone(), run.scheduled_at)) {
            Some(stored) if stored.id == run.id => {
                *stored = run.clone();
                Ok(())
            }
            _ => Err(Error::not_found(format!("job run {}", run.id))),
        }
    }

    async fn job_runs(&self, job_id: &str, limit: u32) -> Result<Vec<JobRun>> {
        Ok(self
            .read()
            .job_runs
            .values()
            .rev()
            .filter(|r| r.job_id == job_id)
            .take(limit as usize)
            .cloned()
            .collect())
    }
}
