//! [`JobStore`]: job runs.

use super::*;

#[async_trait]
impl JobStore for SqliteAlertStore {
    async fn claim_job_run(&self, run: &JobRun) -> Result<bool> {
        let res = sqlx::query(
            "INSERT INTO job_runs (id, job_id, scheduled_at, started_at, finished_at, status, error, \
             attempt) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (job_id, scheduled_at) DO NOTHING",
        )
        .bind(run.id)
        .bind(&run.job_id)
        .bind(ms(run.scheduled_at))
        .bind(opt_ms(run.started_at))
        .bind(opt_ms(run.finished_at))
        .bind(run.status.as_str())
        .bind(run.error.as_deref())
        .bind(i64::from(run.attempt))
        .execute(&self.pool)
        .await
        .lite()?;
        Ok(res.rows_affected() == 1)
    }

    async fn update_job_run(&self, run: &JobRun) -> Result<()> {
        let res = sqlx::query(
            "UPDATE job_runs SET started_at = ?, finished_at = ?, status = ?, error = ?, attempt = ? \
             WHERE id = ?",
        )
        .bind(opt_ms(run.started_at))
        .bind(opt_ms(run.finished_at))
        .bind(run.status.as_str())
        .bind(run.error.as_deref())
        .bind(i64::from(run.attempt))
        .bind(run.id)
        .execute(&self.pool)
        .await
        .lite()?;
        if res.rows_affected() == 0 {
            return Err(Error::not_found(format!("job run {}", run.id)));
        }
        Ok(())
    }

    async fn job_runs(&self, job_id: &str, limit: u32) -> Result<Vec<JobRun>> {
        sqlx::query(
            "SELECT id, job_id, scheduled_at, started_at, finished_at, status, error, attempt \
             FROM job_runs \
             WHERE job_id = ? ORDER BY scheduled_at DESC LIMIT ?",
        )
        .bind(job_id)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .lite()?
        .iter()
        .map(run_from_row)
        .collect()
    }
}
