//! [`JobStore`]: job runs.

use super::*;
use alertkit_core::RunStatus;

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

    async fn claim_job_runs(&self, runs: &[JobRun]) -> Result<Vec<bool>> {
        let mut s = self.write();
        Ok(runs
            .iter()
            .map(|run| {
                let key = (run.job_id.clone(), run.scheduled_at);
                if s.job_runs.contains_key(&key) {
                    return false;
                }
                s.job_runs.insert(key, run.clone());
                true
            })
            .collect())
    }

    async fn update_job_run(&self, run: &JobRun) -> Result<()> {
        let mut s = self.write();
        match s.job_runs.get_mut(&(run.job_id.clone(), run.scheduled_at)) {
            Some(stored) if stored.id == run.id && stored.attempt > run.attempt => {
                Err(Error::Conflict(format!(
                    "job run {} was taken over by another instance",
                    run.id
                )))
            }
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

    async fn claim_stale_job_runs(
        &self,
        job_ids: &[String],
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<JobRun>> {
        let ids: std::collections::HashSet<&str> = job_ids.iter().map(String::as_str).collect();
        let mut s = self.write();
        let mut out = Vec::new();
        for run in s.job_runs.values_mut() {
            if out.len() >= limit as usize {
                break;
            }
            let stale = matches!(run.status, RunStatus::Pending | RunStatus::Running)
                && run.lease_until.is_some_and(|l| l <= now)
                && ids.contains(run.job_id.as_str());
            if stale {
                run.status = RunStatus::Pending;
                run.attempt = run.attempt.saturating_add(1);
                run.lease_until = Some(lease_until);
                out.push(run.clone());
            }
        }
        Ok(out)
    }

    async fn set_job_paused(&self, job_id: &str, paused: bool, _now: DateTime<Utc>) -> Result<()> {
        let mut s = self.write();
        if paused {
            s.paused_jobs.insert(job_id.to_owned());
        } else {
            s.paused_jobs.remove(job_id);
        }
        Ok(())
    }

    async fn paused_jobs(&self) -> Result<Vec<String>> {
        Ok(self.read().paused_jobs.iter().cloned().collect())
    }
}
