//! [`ReportStore`]: report records, and the aggregates reports are made of,
//! grouped in SQL.

use super::*;
use alertkit_core::{AlertCount, Channel, DeliveryCount, Report, ReportStatus, ReportStore};
use alerts::push_from_where;

/// A report from its row: the body, with the columns' values over it.
fn report_from_row(row: &PgRow) -> Result<Report> {
    let body: serde_json::Value = row.try_get("body").pg()?;
    let mut r: Report = serde_json::from_value(body).map_err(|e| corrupt(BACKEND, e))?;
    r.status = parse::<ReportStatus>(BACKEND, row.try_get("status").pg()?)?;
    r.attempts = count_from(BACKEND, row.try_get("attempts").pg()?)?;
    r.due_at = row.try_get("due_at").pg()?;
    r.updated_at = row.try_get("updated_at").pg()?;
    Ok(r)
}

fn body(report: &Report) -> Result<serde_json::Value> {
    serde_json::to_value(report).map_err(|e| Error::backend(BACKEND, e))
}

#[async_trait]
impl ReportStore for PostgresAlertStore {
    async fn create_report(&self, report: &Report) -> Result<()> {
        let res = sqlx::query(
            "INSERT INTO reports (id, status, attempts, due_at, updated_at, body) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING",
        )
        .bind(report.id)
        .bind(report.status.as_str())
        .bind(to_i32(report.attempts))
        .bind(report.due_at)
        .bind(report.updated_at)
        .bind(body(report)?)
        .execute(&self.pool)
        .await
        .pg()?;
        if res.rows_affected() == 0 {
            return Err(Error::Conflict(format!("report {} exists", report.id)));
        }
        Ok(())
    }

    async fn report(&self, id: Uuid) -> Result<Report> {
        let row = sqlx::query("SELECT * FROM reports WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .pg()?
            .ok_or_else(|| Error::not_found(format!("report {id}")))?;
        report_from_row(&row)
    }

    async fn claim_reports(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Report>> {
        let rows = sqlx::query(
            "UPDATE reports SET status = 'RUNNING', attempts = attempts + 1, due_at = $2, \
             updated_at = $1 WHERE id IN (SELECT id FROM reports \
             WHERE status IN ('PENDING', 'RUNNING') AND due_at <= $1 ORDER BY due_at LIMIT $3 \
             FOR UPDATE SKIP LOCKED) RETURNING *",
        )
        .bind(now)
        .bind(lease_until)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .pg()?;
        let mut out = rows
            .iter()
            .map(report_from_row)
            .collect::<Result<Vec<_>>>()?;
        out.sort_by_key(|r| (r.created_at, r.id));
        Ok(out)
    }

    async fn update_report(&self, report: &Report) -> Result<()> {
        let res = sqlx::query(
            "UPDATE reports SET status = $2, due_at = $3, updated_at = $4, body = $5 \
             WHERE id = $1 AND status = 'RUNNING' AND attempts = $6",
        )
        .bind(report.id)
        .bind(report.status.as_str())
        .bind(report.due_at)
        .bind(report.updated_at)
        .bind(body(report)?)
        .bind(to_i32(report.attempts))
        .execute(&self.pool)
        .await
        .pg()?;
        if res.rows_affected() == 0 {
            self.report(report.id).await?;
            return Err(Error::Conflict(format!(
                "report {} is no longer on attempt {}",
                report.id, report.attempts
            )));
        }
        Ok(())
    }

    async fn purge_reports(&self, before: DateTime<Utc>, limit: u32) -> Result<Vec<Uuid>> {
        let rows = sqlx::query(
            "DELETE FROM reports WHERE id IN (SELECT id FROM reports \
             WHERE status IN ('COMPLETED', 'FAILED') AND updated_at < $1 LIMIT $2 \
             FOR UPDATE SKIP LOCKED) RETURNING id",
        )
        .bind(before)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .pg()?;
        rows.iter()
            .map(|r| r.try_get::<Uuid, _>("id").pg())
            .collect()
    }

    async fn alert_counts(
        &self,
        viewer: &Viewer,
        filter: &AlertFilter,
        now: DateTime<Utc>,
    ) -> Result<Vec<AlertCount>> {
        let mut qb = QueryBuilder::new(
            "SELECT x.h, x.alert_type, x.severity, t.tag, count(*) AS n, \
             sum(x.occurrences)::int8 AS occ FROM (SELECT \
             to_timestamp(floor(extract(epoch FROM a.created_at) / 3600) * 3600) AS h, \
             a.alert_type, a.severity, a.tags, a.occurrences",
        );
        push_from_where(&mut qb, viewer, filter, now);
        qb.push(
            ") x LEFT JOIN LATERAL unnest(x.tags) AS t(tag) ON true \
             GROUP BY x.h, x.alert_type, x.severity, t.tag",
        );
        let mut out = Vec::new();
        for row in qb.build().fetch_all(&self.pool).await.pg()? {
            out.push(AlertCount {
                hour: row.try_get("h").pg()?,
                alert_type: row.try_get("alert_type").pg()?,
                severity: severity_from(BACKEND, row.try_get("severity").pg()?)?,
                tag: row.try_get("tag").pg()?,
                alerts: to_u64(row.try_get("n").pg()?),
                occurrences: to_u64(row.try_get("occ").pg()?),
            });
        }
        out.sort();
        Ok(out)
    }

    async fn delivery_counts(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<DeliveryCount>> {
        let rows = sqlx::query(
            "SELECT channel, status, count(*) AS n, sum(attempts)::int8 AS tries FROM deliveries \
             WHERE created_at > $1 AND created_at <= $2 GROUP BY channel, status",
        )
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await
        .pg()?;
        let mut out = rows
            .iter()
            .map(|row| {
                Ok(DeliveryCount {
                    channel: parse::<Channel>(BACKEND, row.try_get("channel").pg()?)?,
                    status: parse::<DeliveryStatus>(BACKEND, row.try_get("status").pg()?)?,
                    deliveries: to_u64(row.try_get("n").pg()?),
                    attempts: to_u64(row.try_get("tries").pg()?),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        out.sort_by_key(|d| (d.channel, d.status.as_str()));
        Ok(out)
    }
}
