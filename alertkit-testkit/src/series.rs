//! Conformance cases for the [`SeriesStore`] role. Each takes a fresh,
//! empty store. Instants are whole milliseconds (the finest every backend
//! keeps).

use alertkit_core::{Point, Prediction, SeriesSettings, SeriesStore};
use chrono::{DateTime, Duration, Utc};

use crate::fixtures::at;

fn point(series: &str, minute: i64, value: f64) -> Point {
    Point {
        series: series.into(),
        at: at(minute),
        value,
    }
}

fn prediction(series: &str, minute: i64, value: f64, made: i64) -> Prediction {
    Prediction {
        series: series.into(),
        at: at(minute),
        value,
        lower: value - 1.0,
        upper: value + 1.0,
        made_at: at(made),
    }
}

fn values(points: &[Point]) -> Vec<(DateTime<Utc>, f64)> {
    points.iter().map(|p| (p.at, p.value)).collect()
}

/// Points are unique per (series, instant), the later write winning, and
/// read back by half-open range, oldest first, within the limit.
pub async fn series_points_upsert_and_range(store: &dyn SeriesStore) {
    let written = store
        .put_points(&[
            point("cpu", 0, 1.0),
            point("cpu", 5, 2.0),
            point("cpu", 10, 3.0),
            point("cpu", 5, 2.5),
            point("mem", 5, 70.0),
        ])
        .await
        .unwrap();
    assert!(written >= 4, "written: {written}");
    store.put_points(&[point("cpu", 10, 3.5)]).await.unwrap();
    assert_eq!(
        values(&store.points("cpu", at(0), at(60), 100).await.unwrap()),
        [(at(0), 1.0), (at(5), 2.5), (at(10), 3.5)],
        "the later write of an instant wins, in one call or across calls"
    );
    assert_eq!(
        values(&store.points("cpu", at(5), at(10), 100).await.unwrap()),
        [(at(5), 2.5)],
        "from is inclusive, to exclusive"
    );
    assert_eq!(
        store.points("cpu", at(0), at(60), 2).await.unwrap().len(),
        2
    );
    assert!(
        store
            .points("cpu", at(60), at(0), 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .points("disk", at(0), at(60), 10)
            .await
            .unwrap()
            .is_empty()
    );
    let listed = store.series().await.unwrap();
    let names: Vec<&str> = listed.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["cpu", "mem"]);
    assert_eq!(listed[0].last_at, Some(at(10)));
    assert_eq!(listed[1].last_at, Some(at(5)));
    store.put_points(&[point("cpu", 1, 9.0)]).await.unwrap();
    assert_eq!(
        store.series().await.unwrap()[0].last_at,
        Some(at(10)),
        "an older point leaves last_at"
    );
}

/// Settings are set before or after points arrive, and points leave them.
pub async fn series_settings_are_kept(store: &dyn SeriesStore) {
    let set = SeriesSettings {
        capacity: Some(100.0),
        unit: Some("req/s".into()),
    };
    let info = store.put_series("api.requests", &set).await.unwrap();
    assert_eq!(info.capacity, Some(100.0));
    assert_eq!(info.unit.as_deref(), Some("req/s"));
    assert_eq!(info.last_at, None, "no points yet");
    store
        .put_points(&[point("api.requests", 3, 42.0)])
        .await
        .unwrap();
    let listed = store.series().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].capacity, Some(100.0), "points keep the settings");
    assert_eq!(listed[0].last_at, Some(at(3)));
    let cleared = store
        .put_series("api.requests", &SeriesSettings::default())
        .await
        .unwrap();
    assert_eq!((cleared.capacity, cleared.unit), (None, None));
    assert_eq!(cleared.last_at, Some(at(3)), "settings leave last_at");
}

/// A newer forecast replaces an older one over the instants both cover;
/// the rest of the older one stays.
pub async fn series_predictions_replace_by_instant(store: &dyn SeriesStore) {
    let first: Vec<Prediction> = (0..6).map(|i| prediction("cpu", i * 5, 10.0, 0)).collect();
    store.put_predictions(&first).await.unwrap();
    let second: Vec<Prediction> = (3..9).map(|i| prediction("cpu", i * 5, 20.0, 15)).collect();
    store.put_predictions(&second).await.unwrap();
    store
        .put_predictions(&[prediction("mem", 0, 1.0, 0)])
        .await
        .unwrap();
    let got = store.predictions("cpu", at(0), at(60), 100).await.unwrap();
    let seen: Vec<(i64, f64, DateTime<Utc>)> = got
        .iter()
        .map(|p| ((p.at - at(0)).num_minutes(), p.value, p.made_at))
        .collect();
    let mut expected: Vec<(i64, f64, DateTime<Utc>)> =
        (0..3).map(|i| (i * 5, 10.0, at(0))).collect();
    expected.extend((3..9).map(|i| (i * 5, 20.0, at(15))));
    assert_eq!(seen, expected);
    assert_eq!(got[4].lower, 19.0);
    assert_eq!(got[4].upper, 21.0);
    assert_eq!(
        store
            .predictions("cpu", at(10), at(20), 1)
            .await
            .unwrap()
            .len(),
        1
    );
}

/// Retention removes old points and predictions in bounded batches.
pub async fn series_purge_in_batches(store: &dyn SeriesStore) {
    let points: Vec<Point> = (0..10).map(|i| point("cpu", i, i as f64)).collect();
    store.put_points(&points).await.unwrap();
    let predictions: Vec<Prediction> = (0..10).map(|i| prediction("cpu", i, 1.0, 0)).collect();
    store.put_predictions(&predictions).await.unwrap();
    let mut rounds = Vec::new();
    loop {
        let n = store.purge_series(at(6), 4).await.unwrap();
        assert!(n <= 4, "bounded by the batch: {n}");
        if n == 0 {
            break;
        }
        rounds.push(n);
        assert!(rounds.len() < 10, "purge does not end");
    }
    assert_eq!(rounds.iter().sum::<u64>(), 12, "6 points and 6 predictions");
    assert_eq!(
        store.points("cpu", at(0), at(60), 100).await.unwrap().len(),
        4
    );
    assert_eq!(
        store
            .predictions("cpu", at(0), at(60), 100)
            .await
            .unwrap()
            .len(),
        4
    );
}

/// Large and concurrent writes: 12,000 points in one call (more than one
/// statement or batch on every backend), and two overlapping uploads at once.
pub async fn series_large_and_concurrent_writes(store: &dyn SeriesStore) {
    let start = at(0);
    let many: Vec<Point> = (0..12_000)
        .map(|i| Point {
            series: format!("s{}", i % 5),
            at: start + Duration::seconds(i / 5 * 60),
            value: i as f64,
        })
        .collect();
    store.put_points(&many).await.unwrap();
    for s in 0..5 {
        let got = store
            .points(&format!("s{s}"), start, start + Duration::days(30), 10_000)
            .await
            .unwrap();
        assert_eq!(got.len(), 2_400, "series s{s}");
    }
    let a: Vec<Point> = (0..500).map(|i| point("shared", i, 1.0)).collect();
    let b: Vec<Point> = (0..500).rev().map(|i| point("shared", i, 2.0)).collect();
    let (ra, rb) = futures::join!(store.put_points(&a), store.put_points(&b));
    ra.unwrap();
    rb.unwrap();
    let got = store
        .points("shared", at(0), at(10_000), 10_000)
        .await
        .unwrap();
    assert_eq!(got.len(), 500, "one point per instant");
    assert!(got.iter().all(|p| p.value == 1.0 || p.value == 2.0));
}
