//! [`SeriesStore`]: points, settings and predictions.

use super::*;
use alertkit_core::{Point, Prediction, SeriesInfo, SeriesSettings, SeriesStore};

fn blank(name: &str) -> SeriesInfo {
    SeriesInfo {
        name: name.to_owned(),
        capacity: None,
        unit: None,
        last_at: None,
    }
}

#[async_trait]
impl SeriesStore for MemoryAlertStore {
    async fn put_points(&self, points: &[Point]) -> Result<u64> {
        let mut s = self.write();
        for p in points {
            s.points.insert((p.series.clone(), p.at), p.value);
            let info = s
                .series
                .entry(p.series.clone())
                .or_insert_with(|| blank(&p.series));
            info.last_at = Some(info.last_at.map_or(p.at, |l| l.max(p.at)));
        }
        Ok(points.len() as u64)
    }

    async fn points(
        &self,
        series: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Point>> {
        if from >= to {
            return Ok(Vec::new());
        }
        let s = self.read();
        Ok(s.points
            .range((series.to_owned(), from)..(series.to_owned(), to))
            .take(limit as usize)
            .map(|((series, at), value)| Point {
                series: series.clone(),
                at: *at,
                value: *value,
            })
            .collect())
    }

    async fn put_series(&self, name: &str, settings: &SeriesSettings) -> Result<SeriesInfo> {
        let mut s = self.write();
        let info = s
            .series
            .entry(name.to_owned())
            .or_insert_with(|| blank(name));
        info.capacity = settings.capacity;
        info.unit = settings.unit.clone();
        Ok(info.clone())
    }

    async fn series(&self) -> Result<Vec<SeriesInfo>> {
        Ok(self.read().series.values().cloned().collect())
    }

    async fn put_predictions(&self, predictions: &[Prediction]) -> Result<u64> {
        let mut s = self.write();
        for p in predictions {
            s.predictions.insert((p.series.clone(), p.at), p.clone());
        }
        Ok(predictions.len() as u64)
    }

    async fn predictions(
        &self,
        series: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Prediction>> {
        if from >= to {
            return Ok(Vec::new());
        }
        let s = self.read();
        Ok(s.predictions
            .range((series.to_owned(), from)..(series.to_owned(), to))
            .take(limit as usize)
            .map(|(_, p)| p.clone())
            .collect())
    }

    async fn purge_series(&self, before: DateTime<Utc>, batch: u32) -> Result<u64> {
        let mut s = self.write();
        let mut left = batch as usize;
        let old: Vec<(String, DateTime<Utc>)> = s
            .points
            .keys()
            .filter(|(_, at)| *at < before)
            .take(left)
            .cloned()
            .collect();
        for k in &old {
            s.points.remove(k);
        }
        left -= old.len();
        let old_predictions: Vec<(String, DateTime<Utc>)> = s
            .predictions
            .keys()
            .filter(|(_, at)| *at < before)
            .take(left)
            .cloned()
            .collect();
        for k in &old_predictions {
            s.predictions.remove(k);
        }
        Ok((old.len() + old_predictions.len()) as u64)
    }
}
