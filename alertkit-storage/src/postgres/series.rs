//! [`SeriesStore`]: points, settings and predictions.

use super::*;
use alertkit_core::{Point, Prediction, SeriesInfo, SeriesSettings, SeriesStore};

/// Rows per statement: 5 arrays of this length each.
const CHUNK: usize = 10_000;

fn info_from_row(row: &PgRow) -> Result<SeriesInfo> {
    Ok(SeriesInfo {
        name: row.try_get("name").pg()?,
        capacity: row.try_get("capacity").pg()?,
        unit: row.try_get("unit").pg()?,
        last_at: row.try_get("last_at").pg()?,
    })
}

#[async_trait]
impl SeriesStore for PostgresAlertStore {
    async fn put_points(&self, points: &[Point]) -> Result<u64> {
        let mut written = 0;
        for chunk in points.chunks(CHUNK) {
            // One row per (series, instant) in a statement: ON CONFLICT
            // cannot touch a row twice, so the last of duplicates wins here;
            // sorted, so concurrent writers lock rows in one order.
            let mut latest: std::collections::BTreeMap<(&str, DateTime<Utc>), f64> =
                std::collections::BTreeMap::new();
            for p in chunk {
                latest.insert((p.series.as_str(), p.at), p.value);
            }
            let (mut names, mut ats, mut values) = (Vec::new(), Vec::new(), Vec::new());
            for ((s, at), v) in &latest {
                names.push(s.to_string());
                ats.push(*at);
                values.push(*v);
            }
            let mut tx = self.pool.begin().await.pg()?;
            let res = sqlx::query(
                "INSERT INTO series_points (series, at, value) \
                 SELECT * FROM UNNEST($1::text[], $2::timestamptz[], $3::float8[]) \
                 ON CONFLICT (series, at) DO UPDATE SET value = EXCLUDED.value",
            )
            .bind(&names)
            .bind(&ats)
            .bind(&values)
            .execute(&mut *tx)
            .await
            .pg()?;
            sqlx::query(
                "INSERT INTO series (name, last_at) \
                 SELECT series, max(at) FROM UNNEST($1::text[], $2::timestamptz[]) AS t(series, at) \
                 GROUP BY series ORDER BY series \
                 ON CONFLICT (name) DO UPDATE SET last_at = \
                 GREATEST(series.last_at, EXCLUDED.last_at)",
            )
            .bind(&names)
            .bind(&ats)
            .execute(&mut *tx)
            .await
            .pg()?;
            tx.commit().await.pg()?;
            written += res.rows_affected();
        }
        Ok(written)
    }

    async fn points(
        &self,
        series: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Point>> {
        let rows = sqlx::query(
            "SELECT series, at, value FROM series_points \
             WHERE series = $1 AND at >= $2 AND at < $3 ORDER BY at LIMIT $4",
        )
        .bind(series)
        .bind(from)
        .bind(to)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .pg()?;
        rows.iter()
            .map(|r| {
                Ok(Point {
                    series: r.try_get("series").pg()?,
                    at: r.try_get("at").pg()?,
                    value: r.try_get("value").pg()?,
                })
            })
            .collect()
    }

    async fn put_series(&self, name: &str, settings: &SeriesSettings) -> Result<SeriesInfo> {
        let row = sqlx::query(
            "INSERT INTO series (name, capacity, unit) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET capacity = EXCLUDED.capacity, unit = EXCLUDED.unit \
             RETURNING name, capacity, unit, last_at",
        )
        .bind(name)
        .bind(settings.capacity)
        .bind(settings.unit.as_deref())
        .fetch_one(&self.pool)
        .await
        .pg()?;
        info_from_row(&row)
    }

    async fn series(&self) -> Result<Vec<SeriesInfo>> {
        let rows = sqlx::query("SELECT name, capacity, unit, last_at FROM series ORDER BY name")
            .fetch_all(&self.pool)
            .await
            .pg()?;
        rows.iter().map(info_from_row).collect()
    }

    async fn put_predictions(&self, predictions: &[Prediction]) -> Result<u64> {
        let mut written = 0;
        for chunk in predictions.chunks(CHUNK) {
            let mut latest: std::collections::BTreeMap<(&str, DateTime<Utc>), &Prediction> =
                std::collections::BTreeMap::new();
            for p in chunk {
                latest.insert((p.series.as_str(), p.at), p);
            }
            let rows: Vec<&Prediction> = latest.into_values().collect();
            let res = sqlx::query(
                "INSERT INTO series_predictions (series, at, value, lower, upper, made_at) \
                 SELECT * FROM UNNEST($1::text[], $2::timestamptz[], $3::float8[], $4::float8[], \
                 $5::float8[], $6::timestamptz[]) \
                 ON CONFLICT (series, at) DO UPDATE SET value = EXCLUDED.value, \
                 lower = EXCLUDED.lower, upper = EXCLUDED.upper, made_at = EXCLUDED.made_at",
            )
            .bind(rows.iter().map(|p| p.series.clone()).collect::<Vec<_>>())
            .bind(rows.iter().map(|p| p.at).collect::<Vec<_>>())
            .bind(rows.iter().map(|p| p.value).collect::<Vec<_>>())
            .bind(rows.iter().map(|p| p.lower).collect::<Vec<_>>())
            .bind(rows.iter().map(|p| p.upper).collect::<Vec<_>>())
            .bind(rows.iter().map(|p| p.made_at).collect::<Vec<_>>())
            .execute(&self.pool)
            .await
            .pg()?;
            written += res.rows_affected();
        }
        Ok(written)
    }

    async fn predictions(
        &self,
        series: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Prediction>> {
        let rows = sqlx::query(
            "SELECT series, at, value, lower, upper, made_at FROM series_predictions \
             WHERE series = $1 AND at >= $2 AND at < $3 ORDER BY at LIMIT $4",
        )
        .bind(series)
        .bind(from)
        .bind(to)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .pg()?;
        rows.iter()
            .map(|r| {
                Ok(Prediction {
                    series: r.try_get("series").pg()?,
                    at: r.try_get("at").pg()?,
                    value: r.try_get("value").pg()?,
                    lower: r.try_get("lower").pg()?,
                    upper: r.try_get("upper").pg()?,
                    made_at: r.try_get("made_at").pg()?,
                })
            })
            .collect()
    }

    async fn purge_series(&self, before: DateTime<Utc>, batch: u32) -> Result<u64> {
        let points = sqlx::query(
            "DELETE FROM series_points WHERE ctid IN \
             (SELECT ctid FROM series_points WHERE at < $1 LIMIT $2)",
        )
        .bind(before)
        .bind(i64::from(batch))
        .execute(&self.pool)
        .await
        .pg()?
        .rows_affected();
        let left = u64::from(batch).saturating_sub(points);
        if left == 0 {
            return Ok(points);
        }
        let predictions = sqlx::query(
            "DELETE FROM series_predictions WHERE ctid IN \
             (SELECT ctid FROM series_predictions WHERE at < $1 LIMIT $2)",
        )
        .bind(before)
        .bind(i64::try_from(left).unwrap_or(i64::MAX))
        .execute(&self.pool)
        .await
        .pg()?
        .rows_affected();
        Ok(points + predictions)
    }
}
