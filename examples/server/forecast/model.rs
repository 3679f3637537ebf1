//! The model: actuals resampled onto a regular grid, then MSTL (daily
//! seasonality, AutoETS trend) when there are two days or more of history,
//! AutoETS alone otherwise.

use augurs::ets::AutoETS;
use augurs::mstl::MSTLModel;
use augurs::{Fit, Predict};
use chrono::{DateTime, Duration, Utc};

/// Fewest grid points a series needs to be forecast.
pub const MIN_POINTS: usize = 24;

/// One predicted step.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// The instant.
    pub at: DateTime<Utc>,
    /// The point forecast.
    pub value: f64,
    /// Lower bound of the interval.
    pub lower: f64,
    /// Upper bound of the interval.
    pub upper: f64,
}

/// Actuals on a regular grid.
#[derive(Debug, Clone, PartialEq)]
pub struct Grid {
    /// The first slot.
    pub start: DateTime<Utc>,
    /// The slot width.
    pub step: Duration,
    /// One value per slot (gaps filled by linear interpolation).
    pub values: Vec<f64>,
}

/// Puts `points` (oldest first) onto a grid of their median spacing
/// (at least one second): values in one slot are averaged, empty slots
/// interpolated. `None` for fewer than two points.
pub fn resample(points: &[(DateTime<Utc>, f64)]) -> Option<Grid> {
    if points.len() < 2 {
        return None;
    }
    let mut gaps: Vec<i64> = points
        .windows(2)
        .map(|w| (w[1].0 - w[0].0).num_milliseconds())
        .filter(|g| *g > 0)
        .collect();
    gaps.sort_unstable();
    let step_ms = (*gaps.get(gaps.len() / 2)?).max(1000);
    let start = points[0].0;
    let last = points[points.len() - 1].0;
    let slots = usize::try_from((last - start).num_milliseconds() / step_ms).ok()? + 1;
    let mut sums = vec![(0.0, 0u32); slots];
    for (at, v) in points {
        let i = usize::try_from((*at - start).num_milliseconds() / step_ms).ok()?;
        if let Some(s) = sums.get_mut(i) {
            s.0 += v;
            s.1 += 1;
        }
    }
    let mut values: Vec<Option<f64>> = sums
        .iter()
        .map(|(s, n)| (*n > 0).then(|| s / f64::from(*n)))
        .collect();
    // Interpolate the gaps between known slots (the ends are known).
    let mut prev: Option<usize> = None;
    for i in 0..values.len() {
        if values[i].is_some() {
            if let Some(p) = prev
                && i > p + 1
            {
                let (a, b) = (values[p].unwrap_or(0.0), values[i].unwrap_or(0.0));
                for (k, v) in values.iter_mut().enumerate().take(i).skip(p + 1) {
                    let f = (k - p) as f64 / (i - p) as f64;
                    *v = Some(a + (b - a) * f);
                }
            }
            prev = Some(i);
        }
    }
    Some(Grid {
        start,
        step: Duration::milliseconds(step_ms),
        values: values.into_iter().map(|v| v.unwrap_or(0.0)).collect(),
    })
}

/// Forecasts `horizon` past the grid's end at the interval `level`
/// (0.95), with a daily season when the grid holds two days.
pub fn forecast(grid: &Grid, horizon: Duration, level: f64) -> Result<Vec<Step>, String> {
    if grid.values.len() < MIN_POINTS {
        return Err(format!(
            "too little history: {} points on a {} s grid, {MIN_POINTS} needed",
            grid.values.len(),
            grid.step.num_seconds()
        ));
    }
    let steps = usize::try_from(horizon.num_milliseconds() / grid.step.num_milliseconds().max(1))
        .map_err(|_| "bad horizon".to_owned())?
        .max(1);
    let season =
        usize::try_from(Duration::days(1).num_milliseconds() / grid.step.num_milliseconds().max(1))
            .unwrap_or(0);
    let forecast = if season >= 2 && grid.values.len() >= 2 * season {
        let model = MSTLModel::new(vec![season], AutoETS::non_seasonal().into_trend_model());
        model
            .fit(&grid.values)
            .map_err(|e| format!("fitting MSTL: {e}"))?
            .predict(steps, level)
            .map_err(|e| format!("predicting: {e}"))?
    } else {
        AutoETS::non_seasonal()
            .fit(&grid.values)
            .map_err(|e| format!("fitting AutoETS: {e}"))?
            .predict(steps, level)
            .map_err(|e| format!("predicting: {e}"))?
    };
    let end = grid.start + grid.step * i32::try_from(grid.values.len() - 1).unwrap_or(i32::MAX);
    let (lower, upper) = match &forecast.intervals {
        Some(i) => (i.lower.clone(), i.upper.clone()),
        None => (forecast.point.clone(), forecast.point.clone()),
    };
    let mut out = Vec::with_capacity(steps);
    for (k, value) in forecast.point.iter().enumerate() {
        if !value.is_finite() {
            return Err("the model produced a non-finite forecast".into());
        }
        let at = end + grid.step * i32::try_from(k + 1).unwrap_or(i32::MAX);
        out.push(Step {
            at,
            value: *value,
            lower: lower
                .get(k)
                .copied()
                .filter(|v| v.is_finite())
                .unwrap_or(*value),
            upper: upper
                .get(k)
                .copied()
                .filter(|v| v.is_finite())
                .unwrap_or(*value),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t0() -> DateTime<Utc> {
        DateTime::from_timestamp(1_790_000_000, 0).unwrap_or_default()
    }

    #[test]
    fn resampling_averages_and_fills_gaps() {
        let m = Duration::minutes(5);
        let pts = [
            (t0(), 1.0),
            (t0() + m, 2.0),
            (t0() + m + Duration::seconds(10), 4.0),
            (t0() + m * 4, 6.0),
            (t0() + m * 5, 7.0),
        ];
        let g = resample(&pts).unwrap();
        assert_eq!(g.step, m);
        assert_eq!(g.values, [1.0, 3.0, 4.0, 5.0, 6.0, 7.0]);
    }

    /// The generator without noise, at 5-minute step `i`: daily cycle and trend.
    fn truth(i: i64) -> f64 {
        let day = i as f64 / 288.0;
        50.0 + 20.0 * (2.0 * std::f64::consts::PI * day).sin() + 4.0 * day
    }

    /// [`truth`] plus fixed-seed noise, `days` long.
    fn synthetic(days: i64, seed: u64) -> Vec<(DateTime<Utc>, f64)> {
        let mut state = seed;
        let mut noise = move || {
            // Sum of 4 uniforms: roughly normal, σ ≈ 1.15.
            (0..4)
                .map(|_| {
                    state = state
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    (state >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
                })
                .sum::<f64>()
        };
        (0..days * 288)
            .map(|i| (t0() + Duration::minutes(5 * i), truth(i) + noise()))
            .collect()
    }

    #[test]
    fn a_seasonal_series_is_forecast_within_ten_percent_and_beats_seasonal_naive() {
        let pts = synthetic(7, 42);
        let n = pts.len() as i64;
        let grid = resample(&pts).unwrap();
        let steps = forecast(&grid, Duration::hours(24), 0.95).unwrap();
        assert_eq!(steps.len(), 288);
        assert_eq!(steps[0].at, pts[pts.len() - 1].0 + Duration::minutes(5));
        let mape = |pred: &dyn Fn(usize) -> f64| {
            (0..288)
                .map(|k| {
                    let actual = truth(n + k as i64);
                    ((pred(k) - actual) / actual).abs()
                })
                .sum::<f64>()
                / 288.0
        };
        let model = mape(&|k| steps[k].value);
        // Seasonal naive: the value one day earlier.
        let naive = mape(&|k| pts[pts.len() - 288 + k].1);
        assert!(model < 0.10, "MAPE {model:.4}");
        assert!(
            model < naive,
            "model {model:.4} vs seasonal naive {naive:.4}"
        );
        let inside = (0..288)
            .filter(|k| {
                let a = truth(n + *k as i64);
                steps[*k].lower <= a && a <= steps[*k].upper
            })
            .count();
        eprintln!("MAPE: model {model:.4}, seasonal naive {naive:.4}; interval holds {inside}/288");
        assert!(inside >= 250, "the 95 % interval holds {inside} of 288");
    }

    #[test]
    fn too_little_history_is_refused_with_a_reason() {
        let pts = synthetic(1, 1);
        let grid = resample(&pts[..10]).unwrap();
        assert!(
            forecast(&grid, Duration::hours(24), 0.95)
                .unwrap_err()
                .contains("too little history")
        );
    }
}
