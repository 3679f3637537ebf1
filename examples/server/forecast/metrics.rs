//! The uploaded series as a [`MetricSource`] for threshold rules: the
//! metric `series` has one sample per series (label `series`), and a metric
//! named after a series has that series' sample. The value is its newest
//! point.

use std::sync::Arc;

use alertkit::{MetricSource, Result, Sample, SeriesInfo, SeriesStore};
use chrono::Duration;

/// Threshold rules over the stored series.
pub struct SeriesMetrics(pub Arc<dyn SeriesStore>);

impl SeriesMetrics {
    async fn latest(&self, info: &SeriesInfo) -> Result<Option<Sample>> {
        let Some(at) = info.last_at else {
            return Ok(None);
        };
        let points = self
            .0
            .points(&info.name, at, at + Duration::milliseconds(1), 1)
            .await?;
        Ok(points
            .first()
            .map(|p| Sample::new([("series", info.name.as_str())], p.value)))
    }
}

#[async_trait::async_trait]
impl MetricSource for SeriesMetrics {
    async fn samples(&self, metric: &str) -> Result<Vec<Sample>> {
        let all = self.0.series().await?;
        let mut out = Vec::new();
        for info in all
            .iter()
            .filter(|s| metric == "series" || s.name == metric)
        {
            out.extend(self.latest(info).await?);
        }
        Ok(out)
    }
}
