//! [`ReportStore`]: report records, and the aggregates reports are made of,
//! grouped in SQL.

use super::*;
use alertkit_core::{AlertCount, Channel, DeliveryCount, Report, ReportStatus, ReportStore};
use alerts::push_from_where;

const HOUR_MS: i64 = 3_600_000;

/// A report from its row: the body, with the columns' values over it.
fn report_from_row(row: &SqliteRow) -> Result<Report> {
    let mut r: Report = from_json(row.try_get("body").lite()?)?;
    r.status = parse::<ReportStatus>(BACKEND, row.try_get("status").lite()?)?;
    r.attempts = count_from(BACKEND, row.try_get("attempts").lite()?)?;
    r.due_at = time(row.try_get("due_at").lite()?)?;
    r.updated_at = time(row.try_get("updated_at").lite()?)?;
    Ok(r)
}

fn body(report: &Report) -> Result<String> {
    serde_json::to_string(report).map_err(|e| Error::backend(BACKEND, e))
}

#[async_trait]
impl ReportStore for SqliteAlertStore {
    async fn create_report(&self, report: &Report) -> Result<()> {
        let res = sqlx::query(
            "INSERT INTO reports (id, status, attempts, due_at, updated_at, body) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (id) DO NOTHING",
        )
        .bind(report.id)
        .bind(report.status.as_str())
        .bind(to_i32(report.attempts))
        .bind(ms(report.due_at))
        .bind(ms(report.updated_at))
        .bind(body(report)?)
        .execute(&self.pool)
        .await
        .lite()?;
        if res.rows_affected() == 0 {
            return Err(Error::Conflict(format!("report {} exists", report.id)));
        }
        Ok(())
    }

    async fn report(&self, id: Uuid) -> Result<Report> {
        let row = sqlx::query("SELECT * FROM reports WHERE id = ?1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .lite()?
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
            "UPDATE reports SET status = 'RUNNING', attempts = attempts + 1, due_at = ?2, \
             updated_at = ?1 WHERE id IN (SELECT id FROM reports \
             WHERE status IN ('PENDING', 'RUNNING') AND due_at <= ?1 ORDER BY due_at LIMIT ?3) \
             RETURNING *",
        )
        .bind(ms(now))
        .bind(ms(lease_until))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .lite()?;
        let mut out = rows
            .iter()
            .map(report_from_row)
            .collect::<Result<Vec<_>>>()?;
        out.sort_by_key(|r| (r.created_at, r.id));
        Ok(out)
    }

    async fn update_report(&self, report: &Report) -> Result<()> {
        let res = sqlx::query(
            "UPDATE reports SET status = ?2, due_at = ?3, updated_at = ?4, body = ?5 \
             WHERE id = ?1 AND status = 'RUNNING' AND attempts = ?6",
        )
        .bind(report.id)
        .bind(report.status.as_str())
        .bind(ms(report.due_at))
        .bind(ms(report.updated_at))
        .bind(body(report)?)
        .bind(to_i32(report.attempts))
        .execute(&self.pool)
        .await
        .lite()?;
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
             WHERE status IN ('COMPLETED', 'FAILED') AND updated_at < ?1 LIMIT ?2) RETURNING id",
        )
        .bind(ms(before))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .lite()?;
        rows.iter()
            .map(|r| r.try_get::<Uuid, _>("id").lite())
            .collect()
    }

    async fn alert_counts(
        &self,
        viewer: &Viewer,
        filter: &AlertFilter,
        now: DateTime<Utc>,
    ) -> Result<Vec<AlertCount>> {
        // Floor division, also for instants before 1970.
        let mut qb = QueryBuilder::new(format!(
            "SELECT x.h, x.alert_type, x.severity, t.value AS tag, count(*) AS n, \
             sum(x.occurrences) AS occ FROM (SELECT \
             (CASE WHEN a.created_at >= 0 THEN a.created_at / {HOUR_MS} \
             ELSE -((-a.created_at + {HOUR_MS} - 1) / {HOUR_MS}) END) * {HOUR_MS} AS h, \
             a.alert_type, a.severity, a.tags, a.occurrences"
        ));
        push_from_where(&mut qb, viewer, filter, now);
        qb.push(
            ") x LEFT JOIN json_each(x.tags) t \
             GROUP BY x.h, x.alert_type, x.severity, t.value",
        );
        let mut out = Vec::new();
        for row in qb.build().fetch_all(&self.pool).await.lite()? {
            out.push(AlertCount {
                hour: time(row.try_get("h").lite()?)?,
                alert_type: row.try_get("alert_type").lite()?,
                severity: severity_from(BACKEND, row.try_get("severity").lite()?)?,
                tag: row.try_get("tag").lite()?,
                alerts: to_u64(row.try_get("n").lite()?),
                occurrences: to_u64(row.try_get("occ").lite()?),
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
            "SELECT channel, status, count(*) AS n, sum(attempts) AS tries FROM deliveries \
             WHERE created_at > ?1 AND created_at <= ?2 GROUP BY channel, status",
        )
        .bind(ms(from))
        .bind(ms(to))
        .fetch_all(&self.pool)
        .await
        .lite()?;
        let mut out = rows
            .iter()
            .map(|row| {
                Ok(DeliveryCount {
                    channel: parse::<Channel>(BACKEND, row.try_get("channel").lite()?)?,
                    status: parse::<DeliveryStatus>(BACKEND, row.try_get("status").lite()?)?,
                    deliveries: to_u64(row.try_get("n").lite()?),
                    attempts: to_u64(row.try_get("tries").lite()?),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        out.sort_by_key(|d| (d.channel, d.status.as_str()));
        Ok(out)
    }
}
