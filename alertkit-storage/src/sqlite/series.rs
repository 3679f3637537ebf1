//! [`SeriesStore`]: points, settings and predictions. Instants are kept in
//! milliseconds.

use super::*;
use alertkit_core::{Point, Prediction, SeriesInfo, SeriesSettings, SeriesStore};

/// Rows per statement (at most 6 parameters each, under SQLite's 32,766).
const CHUNK: usize = 5_000;

fn info_from_row(row: &SqliteRow) -> Result<SeriesInfo> {
    Ok(SeriesInfo {
        name: row.try_get("name").lite()?,
        capacity: row.try_get("capacity").lite()?,
        unit: row.try_get("unit").lite()?,
        last_at: opt_time(row.try_get("last_at").lite()?)?,
    })
}

fn prediction_from_row(r: &SqliteRow) -> Result<Prediction> {
    Ok(Prediction {
        series: r.try_get("series").lite()?,
        at: time(r.try_get("at").lite()?)?,
        value: r.try_get("value").lite()?,
        lower: r.try_get("lower").lite()?,
        upper: r.try_get("upper").lite()?,
        made_at: time(r.try_get("made_at").lite()?)?,
    })
}

#[async_trait]
impl SeriesStore for SqliteAlertStore {
    async fn put_points(&self, points: &[Point]) -> Result<u64> {
        if points.is_empty() {
            return Ok(0);
        }
        let mut newest: HashMap<&str, DateTime<Utc>> = HashMap::new();
        for p in points {
            let e = newest.entry(p.series.as_str()).or_insert(p.at);
            *e = (*e).max(p.at);
        }
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await.lite()?;
        let mut written = 0;
        for chunk in points.chunks(CHUNK) {
            let mut q =
                QueryBuilder::<Sqlite>::new("INSERT INTO series_points (series, at, value) ");
            q.push_values(chunk, |mut b, p| {
                b.push_bind(p.series.clone())
                    .push_bind(ms(p.at))
                    .push_bind(p.value);
            });
            q.push(" ON CONFLICT (series, at) DO UPDATE SET value = excluded.value");
            written += q.build().execute(&mut *tx).await.lite()?.rows_affected();
        }
        for (name, at) in newest {
            sqlx::query(
                "INSERT INTO series (name, last_at) VALUES (?1, ?2) ON CONFLICT (name) DO UPDATE \
                 SET last_at = CASE WHEN last_at IS NULL OR excluded.last_at > last_at \
                 THEN excluded.last_at ELSE last_at END",
            )
            .bind(name)
            .bind(ms(at))
            .execute(&mut *tx)
            .await
            .lite()?;
        }
        tx.commit().await.lite()?;
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
             WHERE series = ?1 AND at >= ?2 AND at < ?3 ORDER BY at LIMIT ?4",
        )
        .bind(series)
        .bind(ms(from))
        .bind(ms(to))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .lite()?;
        rows.iter()
            .map(|r| {
                Ok(Point {
                    series: r.try_get("series").lite()?,
                    at: time(r.try_get("at").lite()?)?,
                    value: r.try_get("value").lite()?,
                })
            })
            .collect()
    }

    async fn put_series(&self, name: &str, settings: &SeriesSettings) -> Result<SeriesInfo> {
        let row = sqlx::query(
            "INSERT INTO series (name, capacity, unit) VALUES (?1, ?2, ?3) \
             ON CONFLICT (name) DO UPDATE SET capacity = excluded.capacity, unit = excluded.unit \
             RETURNING name, capacity, unit, last_at",
        )
        .bind(name)
        .bind(settings.capacity)
        .bind(settings.unit.as_deref())
        .fetch_one(&self.pool)
        .await
        .lite()?;
        info_from_row(&row)
    }

    async fn series(&self) -> Result<Vec<SeriesInfo>> {
        let rows = sqlx::query("SELECT name, capacity, unit, last_at FROM series ORDER BY name")
            .fetch_all(&self.pool)
            .await
            .lite()?;
        rows.iter().map(info_from_row).collect()
    }

    async fn put_predictions(&self, predictions: &[Prediction]) -> Result<u64> {
        if predictions.is_empty() {
            return Ok(0);
        }
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await.lite()?;
        let mut written = 0;
        for chunk in predictions.chunks(CHUNK) {
            let mut q = QueryBuilder::<Sqlite>::new(
                "INSERT INTO series_predictions (series, at, value, lower, upper, made_at) ",
            );
            q.push_values(chunk, |mut b, p| {
                b.push_bind(p.series.clone())
                    .push_bind(ms(p.at))
                    .push_bind(p.value)
                    .push_bind(p.lower)
                    .push_bind(p.upper)
                    .push_bind(ms(p.made_at));
            });
            q.push(
                " ON CONFLICT (series, at) DO UPDATE SET value = excluded.value, \
                 lower = excluded.lower, upper = excluded.upper, made_at = excluded.made_at",
            );
            written += q.build().execute(&mut *tx).await.lite()?.rows_affected();
        }
        tx.commit().await.lite()?;
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
             WHERE series = ?1 AND at >= ?2 AND at < ?3 ORDER BY at LIMIT ?4",
        )
        .bind(series)
        .bind(ms(from))
        .bind(ms(to))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .lite()?;
        rows.iter().map(prediction_from_row).collect()
    }

    async fn purge_series(&self, before: DateTime<Utc>, batch: u32) -> Result<u64> {
        let mut gone = 0;
        for table in ["series_points", "series_predictions"] {
            let left = u64::from(batch).saturating_sub(gone);
            if left == 0 {
                break;
            }
            // Table names are constants; values are bound.
            gone += sqlx::query(sqlx::AssertSqlSafe(format!(
                "DELETE FROM {table} WHERE (series, at) IN \
                 (SELECT series, at FROM {table} WHERE at < ?1 LIMIT ?2)"
            )))
            .bind(ms(before))
            .bind(i64::try_from(left).unwrap_or(i64::MAX))
            .execute(&self.pool)
            .await
            .lite()?
            .rows_affected();
        }
        Ok(gone)
    }
}
