//! [`JobStore`]: job runs.

use super::*;

#[async_trait]
impl JobStore for SqliteAlertStore {
    async fn claim_job_run(&self, run: &JobRun) -> Result<bool> {
        let res = sqlx::query(
            "INSERT INTO job_runs (id, job_id, scheduled_at, started_at, finished_at, status, error, \
             attempt, lease_until) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (job_id, scheduled_at) DO NOTHING",
        )
        .bind(run.id)
        .bind(&run.job_id)
        .bind(ms(run.scheduled_at))
        .bind(opt_ms(run.started_at))
        .bind(opt_ms(run.finished_at))
        .bind(run.status.as_str())
        .bind(run.error.as_deref())
        .bind(i64::from(run.attempt))
        .bind(opt_ms(run.lease_until))
        .execute(&self.pool)
        .await
        .lite()?;
        Ok(res.rows_affected() == 1)
    }

    async fn claim_job_runs(&self, runs: &[JobRun]) -> Result<Vec<bool>> {
        let mut won = std::collections::HashSet::new();
        // One statement per 100 ticks (9 parameters each, well under
        // SQLite's limit): the rows inserted are the ticks won.
        for chunk in runs.chunks(100) {
            let mut q = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
                "INSERT INTO job_runs (id, job_id, scheduled_at, started_at, finished_at, status, \
                 error, attempt, lease_until) ",
            );
            q.push_values(chunk, |mut b, run| {
                b.push_bind(run.id)
                    .push_bind(run.job_id.clone())
                    .push_bind(ms(run.scheduled_at))
                    .push_bind(opt_ms(run.started_at))
                    .push_bind(opt_ms(run.finished_at))
                    .push_bind(run.status.as_str())
                    .push_bind(run.error.clone())
                    .push_bind(i64::from(run.attempt))
                    .push_bind(opt_ms(run.lease_until));
            });
            q.push(" ON CONFLICT (job_id, scheduled_at) DO NOTHING RETURNING id");
            let ids: Vec<Uuid> = q.build_query_scalar().fetch_all(&self.pool).await.lite()?;
            won.extend(ids);
        }
        Ok(runs.iter().map(|r| won.contains(&r.id)).collect())
    }

    async fn update_job_run(&self, run: &JobRun) -> Result<()> {
        let res = sqlx::query(
            "UPDATE job_runs SET started_at = ?1, finished_at = ?2, status = ?3, error = ?4, \
             attempt = ?5, lease_until = ?6 WHERE id = ?7 AND attempt <= ?5",
        )
        .bind(opt_ms(run.started_at))
        .bind(opt_ms(run.finished_at))
        .bind(run.status.as_str())
        .bind(run.error.as_deref())
        .bind(i64::from(run.attempt))
        .bind(opt_ms(run.lease_until))
        .bind(run.id)
        .execute(&self.pool)
        .await
        .lite()?;
        if res.rows_affected() == 0 {
            let exists: Option<i64> = sqlx::query_scalar("SELECT 1 FROM job_runs WHERE id = ?")
                .bind(run.id)
                .fetch_optional(&self.pool)
                .await
                .lite()?;
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
        sqlx::query(
            "SELECT id, job_id, scheduled_at, started_at, finished_at, status, error, attempt, \
             lease_until FROM job_runs \
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

    async fn claim_stale_job_runs(
        &self,
        job_ids: &[String],
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<JobRun>> {
        if job_ids.is_empty() {
            return Ok(Vec::new());
        }
        let ids = serde_json::to_string(job_ids).map_err(|e| Error::invalid(e.to_string()))?;
        // One writer at a time (BEGIN IMMEDIATE): a run is taken over once.
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await.lite()?;
        let rows = sqlx::query(
            "UPDATE job_runs SET status = 'pending', attempt = attempt + 1, lease_until = ?1 \
             WHERE id IN (SELECT id FROM job_runs WHERE status IN ('pending', 'running') \
                 AND lease_until <= ?2 AND job_id IN (SELECT value FROM json_each(?3)) \
                 ORDER BY scheduled_at LIMIT ?4) \
             RETURNING id, job_id, scheduled_at, started_at, finished_at, status, error, attempt, \
             lease_until",
        )
        .bind(ms(lease_until))
        .bind(ms(now))
        .bind(ids)
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await
        .lite()?;
        tx.commit().await.lite()?;
        rows.iter().map(run_from_row).collect()
    }

    async fn set_job_paused(&self, job_id: &str, paused: bool, now: DateTime<Utc>) -> Result<()> {
        sqlx::query(
            "INSERT INTO scheduler_jobs (job_id, paused, updated_at) VALUES (?1, ?2, ?3) \
             ON CONFLICT (job_id) DO UPDATE SET paused = ?2, updated_at = ?3",
        )
        .bind(job_id)
        .bind(paused)
        .bind(ms(now))
        .execute(&self.pool)
        .await
        .lite()?;
        Ok(())
    }

    async fn paused_jobs(&self) -> Result<Vec<String>> {
        sqlx::query_scalar("SELECT job_id FROM scheduler_jobs WHERE paused ORDER BY job_id")
            .fetch_all(&self.pool)
            .await
            .lite()
    }
}
