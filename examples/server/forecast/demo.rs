//! `--demo`: loads the dataset of `examples/server/data/` (embedded in the
//! binary; see `generate.py` there), shifted so its last point is now, sets
//! the series' capacities and runs the forecast at once, so a capacity
//! warning for `vch20` appears within a minute.

use std::collections::BTreeMap;

use alertkit::{Point, Scheduler, SeriesSettings, SeriesStore};
use chrono::{DateTime, Utc};
use futures::StreamExt;

const DATA: &[u8] = include_bytes!("../data/demo.csv");
const SERIES: &str = include_str!("../data/series.json");

/// Loads the demo series and triggers the forecast; returns how many points.
pub async fn load(
    store: &dyn SeriesStore,
    scheduler: &dyn Scheduler,
) -> Result<usize, Box<dyn std::error::Error + Send + Sync>> {
    let mut reader = csv_async::AsyncReaderBuilder::new()
        .has_headers(true)
        .create_reader(DATA);
    let mut points = Vec::new();
    let mut records = reader.records();
    while let Some(r) = records.next().await {
        let r = r?;
        let at = r.get(0).unwrap_or_default().parse::<i64>()?;
        let at = DateTime::from_timestamp(at, 0).ok_or("demo timestamp out of range")?;
        points.push(Point {
            series: r.get(1).unwrap_or_default().to_owned(),
            at,
            value: r.get(2).unwrap_or_default().parse()?,
        });
    }
    // Shift so the newest point is the latest 5-minute mark.
    let last = points.iter().map(|p| p.at).max().ok_or("empty demo data")?;
    let now = Utc::now().timestamp() / 300 * 300;
    let shift = DateTime::from_timestamp(now, 0).ok_or("clock out of range")? - last;
    for p in &mut points {
        p.at += shift;
    }
    for chunk in points.chunks(5_000) {
        store.put_points(chunk).await?;
    }
    let settings: BTreeMap<String, SeriesSettings> = serde_json::from_str(SERIES)?;
    for (name, s) in &settings {
        store.put_series(name, s).await?;
    }
    scheduler.trigger("forecast").await?;
    Ok(points.len())
}
