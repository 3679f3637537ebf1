//! [`JobStore`]: job runs.

use super::*;

#[async_trait]
impl JobStore for PostgresAlertStore {
    async fn claim_job_run(&self, run: &JobRun) -> Result<bool> {
        let res = sqlx::query(
            "INSERT INTO job_runs (id, job_id, scheduled_at, started_at, finished_at, status, error, \
             attempt) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (job_id, scheduled_at) DO NOTHING",
        )
        .bind(run.id)
        .bind(&run.job_id)
        .bind(run.scheduled_at)
        .bind(run.started_at)
        .bind(run.finished_at)
        .bind(run.status.as_str())
        .bind(run.error.as_deref())
        .bind(to_i32(run.attempt))
        .execute(&self.pool)
        .await
        .pg()?;
        Ok(res.rows_affected() == 1)
    }

    async fn update_job_run(&self, run: &JobRun) -> Result<()> {
        let res = sqlx::query(
            "UPDATE job_runs SET started_at = $2, finished_at = $3, status = $4, error = $5, \
             attempt = $6 WHERE id = $1",
        )
        .bind(run.id)
        .bind(run.started_at)
        .bind(run.finished_at)
        .bind(run.status.as_str())
        .bind(run.error.as_deref())
        .bind(to_i32(run.attempt))
        .execute(&self.pool)
        .await
        .pg()?;
        if res.rows_affected() == 0 {
            return Err(Error::not_found(format!("job run {}", run.id)));
        }
        Ok(())
    }

    async fn job_runs(&self, job_id: &str, limit: u32) -> Result<Vec<JobRun>> {
        let sql = format!(
            "SELECT {RUN_COLS} FROM job_runs WHERE job_id = $1 ORDER BY scheduled_at DESC LIMIT $2"
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(job_id)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .pg()?
            .iter()
            .map(run_from_row)
            .collect()
    }
}
