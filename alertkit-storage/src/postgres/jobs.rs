//! [`JobStore`]: job runs.

use super::*;

#[async_trait]
impl JobStore for PostgresAlertStore {
    async fn claim_job_run(&self, run: &JobRun) -> Result<bool> {
        let res = sqlx::query(
            "INSERT INTO job_runs (id, job_id, scheduled_at, started_at, finished_at, status, error, \
             attempt, lease_until) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
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
        .bind(run.lease_until)
        .execute(&self.pool)
        .await
        .pg()?;
        Ok(res.rows_affected() == 1)
    }

    async fn claim_job_runs(&self, runs: &[JobRun]) -> Result<Vec<bool>> {
        if runs.is_empty() {
            return Ok(Vec::new());
        }
        // One statement for every tick: the rows inserted are the ticks won.
        let won: Vec<Uuid> = sqlx::query_scalar(
            "INSERT INTO job_runs (id, job_id, scheduled_at, started_at, finished_at, status, error, \
             attempt, lease_until) \
             SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::timestamptz[], $4::timestamptz[], \
             $5::timestamptz[], $6::text[], $7::text[], $8::int4[], $9::timestamptz[]) \
             ON CONFLICT (job_id, scheduled_at) DO NOTHING RETURNING id",
        )
        .bind(runs.iter().map(|r| r.id).collect::<Vec<_>>())
        .bind(runs.iter().map(|r| r.job_id.clone()).collect::<Vec<_>>())
        .bind(runs.iter().map(|r| r.scheduled_at).collect::<Vec<_>>())
        .bind(runs.iter().map(|r| r.started_at).collect::<Vec<_>>())
        .bind(runs.iter().map(|r| r.finished_at).collect::<Vec<_>>())
        .bind(runs.iter().map(|r| r.status.as_str()).collect::<Vec<_>>())
        .bind(runs.iter().map(|r| r.error.clone()).collect::<Vec<_>>())
        .bind(runs.iter().map(|r| to_i32(r.attempt)).collect::<Vec<_>>())
        .bind(runs.iter().map(|r| r.lease_until).collect::<Vec<_>>())
        .fetch_all(&self.pool)
        .await
        .pg()?;
        let won: std::collections::HashSet<Uuid> = won.into_iter().collect();
        Ok(runs.iter().map(|r| won.contains(&r.id)).collect())
    }

    async fn update_job_run(&self, run: &JobRun) -> Result<()> {
        let res = sqlx::query(
            "UPDATE job_runs SET started_at = $2, finished_at = $3, status = $4, error = $5, \
             attempt = $6, lease_until = $7 WHERE id = $1 AND attempt <= $6",
        )
        .bind(run.id)
        .bind(run.started_at)
        .bind(run.finished_at)
        .bind(run.status.as_str())
        .bind(run.error.as_deref())
        .bind(to_i32(run.attempt))
        .bind(run.lease_until)
        .execute(&self.pool)
        .await
        .pg()?;
        if res.rows_affected() == 0 {
            let exists: Option<i32> = sqlx::query_scalar("SELECT 1 FROM job_runs WHERE id = $1")
                .bind(run.id)
                .fetch_optional(&self.pool)
                .await
                .pg()?;
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

    async fn claim_stale_job_runs(
        &self,
        job_ids: &[String],
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<JobRun>> {
        let cols = RUN_COLS
            .split(", ")
            .map(|c| format!("r.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "UPDATE job_runs r SET status = 'pending', attempt = r.attempt + 1, lease_until = $3 \
             FROM (SELECT id FROM job_runs WHERE status IN ('pending', 'running') \
                   AND lease_until <= $2 AND job_id = ANY($1) \
                   ORDER BY scheduled_at LIMIT $4 FOR UPDATE SKIP LOCKED) stale \
             WHERE r.id = stale.id RETURNING {cols}"
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(job_ids)
            .bind(now)
            .bind(lease_until)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .pg()?
            .iter()
            .map(run_from_row)
            .collect()
    }

    async fn set_job_paused(&self, job_id: &str, paused: bool, now: DateTime<Utc>) -> Result<()> {
        sqlx::query(
            "INSERT INTO scheduler_jobs (job_id, paused, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (job_id) DO UPDATE SET paused = $2, updated_at = $3",
        )
        .bind(job_id)
        .bind(paused)
        .bind(now)
        .execute(&self.pool)
        .await
        .pg()?;
        Ok(())
    }

    async fn paused_jobs(&self) -> Result<Vec<String>> {
        sqlx::query_scalar("SELECT job_id FROM scheduler_jobs WHERE paused ORDER BY job_id")
            .fetch_all(&self.pool)
            .await
            .pg()
    }
}
