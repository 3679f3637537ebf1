//! The forecast job (`0 0 */2 * * *`): fits each series, stores its
//! predictions, and raises, escalates or resolves one `capacity_warning`
//! per series.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use alertkit::{
    AlertKit, Audience, Job, JobContext, NewAlert, Prediction, Principal, Result, SeriesInfo,
    SeriesStore, Severity,
};
use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use super::model::{self, Step};

/// How the job runs.
#[derive(Debug, Clone)]
pub struct Settings {
    /// History fitted (default 14 days).
    pub window: Duration,
    /// How far ahead (default 24 h).
    pub horizon: Duration,
    /// Share of capacity that raises a warning (default 0.9).
    pub share: f64,
    /// Compare the interval's upper bound instead of the point forecast.
    pub use_upper: bool,
    /// Who gets the warnings (default `group:planners`).
    pub audience: Audience,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            window: Duration::days(14),
            horizon: Duration::hours(24),
            share: 0.9,
            use_upper: false,
            audience: Audience::group("planners"),
        }
    }
}

/// What the last run did with a series.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Outcome {
    /// When.
    pub at: DateTime<Utc>,
    /// `forecast`, `skipped` or `failed`.
    pub status: &'static str,
    /// Why it was skipped or failed.
    pub reason: Option<String>,
    /// Predictions stored.
    pub predictions: usize,
    /// When the forecast first crosses the warning level, if it does.
    pub crosses_at: Option<DateTime<Utc>>,
}

/// Last outcome per series, shared with the routes.
pub type Outcomes = Arc<Mutex<BTreeMap<String, Outcome>>>;

/// Where a forecast first reaches `share` of `capacity`.
#[derive(Debug, Clone, PartialEq)]
pub struct Crossing {
    /// The first step at or over the level.
    pub at: DateTime<Utc>,
    /// The highest compared value over the horizon.
    pub peak: f64,
}

/// The first step whose value (or upper bound) reaches `share × capacity`.
pub fn crossing(steps: &[Step], capacity: f64, share: f64, use_upper: bool) -> Option<Crossing> {
    let level = capacity * share;
    let v = |s: &Step| if use_upper { s.upper } else { s.value };
    let first = steps.iter().find(|s| v(s) >= level)?;
    let peak = steps.iter().map(v).fold(f64::MIN, f64::max);
    Some(Crossing { at: first.at, peak })
}

/// High while the crossing is more than 6 h away and stays under capacity;
/// critical once it is nearer, or the forecast goes over capacity.
pub fn severity(c: &Crossing, capacity: f64, now: DateTime<Utc>) -> Severity {
    if c.at - now <= Duration::hours(6) || c.peak >= capacity {
        Severity::Critical
    } else {
        Severity::High
    }
}

/// Predictions carried by one `forecast` frame, at most (a frame stays
/// under the 64 KiB a topic may carry).
const MAX_FRAME_POINTS: usize = 400;

/// Pushes a `forecast` frame to the WebSocket clients holding
/// `forecast.read`; a bus failure is logged, not fatal.
pub async fn publish(kit: &AlertKit, data: serde_json::Value) {
    let sent = kit
        .publish_topic(
            &principal(),
            "forecast",
            Some(alertkit::Permission::ForecastRead),
            data,
        )
        .await;
    if let Err(e) = sent {
        tracing::warn!(error = %e, "publishing a forecast frame failed");
    }
}

/// The dedup key of a series' warning.
pub fn warning_key(series: &str) -> String {
    format!("capacity_warning:{series}")
}

/// The job.
pub struct ForecastJob {
    pub kit: AlertKit,
    pub series: Arc<dyn SeriesStore>,
    pub settings: Settings,
    pub outcomes: Outcomes,
}

fn principal() -> Principal {
    Principal::admin("forecast")
}

impl ForecastJob {
    async fn one(&self, info: &SeriesInfo, now: DateTime<Utc>) -> Outcome {
        let mut outcome = Outcome {
            at: now,
            status: "forecast",
            reason: None,
            predictions: 0,
            crosses_at: None,
        };
        let points = match self
            .series
            .points(
                &info.name,
                now - self.settings.window,
                now + Duration::milliseconds(1),
                100_000,
            )
            .await
        {
            Ok(p) => p,
            Err(e) => return failed(outcome, format!("reading points: {e}")),
        };
        let pairs: Vec<(DateTime<Utc>, f64)> = points.iter().map(|p| (p.at, p.value)).collect();
        let Some(grid) = model::resample(&pairs) else {
            outcome.status = "skipped";
            outcome.reason = Some(format!("too little history: {} points", pairs.len()));
            return outcome;
        };
        if grid.values.len() < model::MIN_POINTS {
            outcome.status = "skipped";
            outcome.reason = Some(format!(
                "too little history: {} points, {} needed",
                grid.values.len(),
                model::MIN_POINTS
            ));
            return outcome;
        }
        let horizon = self.settings.horizon;
        let fitted =
            tokio::task::spawn_blocking(move || model::forecast(&grid, horizon, 0.95)).await;
        let steps = match fitted {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return failed(outcome, e),
            Err(e) => return failed(outcome, format!("the model panicked: {e}")),
        };
        let predictions: Vec<Prediction> = steps
            .iter()
            .map(|s| Prediction {
                series: info.name.clone(),
                at: s.at,
                value: s.value,
                lower: s.lower,
                upper: s.upper,
                made_at: now,
            })
            .collect();
        if let Err(e) = self.series.put_predictions(&predictions).await {
            return failed(outcome, format!("storing predictions: {e}"));
        }
        outcome.predictions = predictions.len();
        // Live: the new predictions, for clients allowed to see forecasts.
        let points: Vec<serde_json::Value> = predictions
            .iter()
            .take(MAX_FRAME_POINTS)
            .map(|p| serde_json::json!({"at": p.at, "value": p.value, "lower": p.lower, "upper": p.upper}))
            .collect();
        publish(
            &self.kit,
            serde_json::json!({"kind": "predictions", "series": info.name, "made_at": now, "points": points}),
        )
        .await;
        let crossed = info.capacity.and_then(|cap| {
            crossing(&steps, cap, self.settings.share, self.settings.use_upper).map(|c| (cap, c))
        });
        let result = match crossed {
            Some((cap, c)) => {
                outcome.crosses_at = Some(c.at);
                self.warn(info, cap, &c, now).await
            }
            None => self
                .kit
                .resolve_key(&principal(), &warning_key(&info.name))
                .await
                .map(|_| ()),
        };
        if let Err(e) = result {
            return failed(outcome, format!("raising or resolving the warning: {e}"));
        }
        outcome
    }

    async fn warn(
        &self,
        info: &SeriesInfo,
        cap: f64,
        c: &Crossing,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let unit = info.unit.as_deref().unwrap_or("");
        let pct = (c.peak / cap * 100.0).round();
        let mut alert = NewAlert::new(
            "capacity_warning",
            severity(c, cap, now),
            format!(
                "{}: forecast reaches {}% of capacity by {}",
                info.name,
                ((self.settings.share * 100.0).round()),
                c.at.format("%Y-%m-%d %H:%M UTC")
            ),
        );
        alert.audience = self.settings.audience.clone();
        alert.message = format!(
            "The {} h forecast of {} peaks at {:.1}{unit} ({pct}% of the {cap}{unit} capacity).",
            self.settings.horizon.num_hours(),
            info.name,
            c.peak,
        );
        alert.tags = vec![info.name.clone()];
        alert.dedup_key = Some(warning_key(&info.name));
        alert.metadata = serde_json::json!({
            "series": info.name, "capacity": cap, "unit": info.unit,
            "crosses_at": c.at, "peak": c.peak, "share": self.settings.share,
        });
        self.kit.raise(&principal(), alert).await.map(|_| ())
    }
}

fn failed(mut o: Outcome, reason: String) -> Outcome {
    o.status = "failed";
    o.reason = Some(reason);
    o
}

#[async_trait::async_trait]
impl Job for ForecastJob {
    async fn run(&self, _ctx: JobContext) -> Result<()> {
        let now = self.kit.now();
        let all = self.series.series().await?;
        let mut failures = Vec::new();
        for info in &all {
            let outcome = self.one(info, now).await;
            if outcome.status == "failed" {
                failures.push(format!(
                    "{}: {}",
                    info.name,
                    outcome.reason.clone().unwrap_or_default()
                ));
            } else if let Some(reason) = &outcome.reason {
                tracing::info!(series = %info.name, %reason, "series skipped");
            }
            self.outcomes
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(info.name.clone(), outcome);
        }
        if failures.is_empty() {
            Ok(())
        } else {
            // Recorded on the run; three failed runs raise `job_failed`.
            Err(alertkit::Error::Unavailable(failures.join("; ")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(h: i64, value: f64) -> Step {
        let at = DateTime::from_timestamp(1_790_000_000 + h * 3600, 0).unwrap_or_default();
        Step {
            at,
            value,
            lower: value - 5.0,
            upper: value + 5.0,
        }
    }

    #[test]
    fn crossing_and_severity() {
        let now = step(0, 0.0).at;
        let steps: Vec<Step> = (1..=24).map(|h| step(h, 50.0 + h as f64 * 2.0)).collect();
        // 90 % of 100 is first reached at hour 20 (90.0).
        let c = crossing(&steps, 100.0, 0.9, false).unwrap();
        assert_eq!(c.at, step(20, 0.0).at);
        assert_eq!(c.peak, 98.0);
        assert_eq!(
            severity(&c, 100.0, now),
            Severity::High,
            "far and under capacity"
        );
        assert_eq!(
            severity(&c, 100.0, c.at - Duration::hours(5)),
            Severity::Critical,
            "near"
        );
        let over = crossing(&steps, 95.0, 0.9, false).unwrap();
        assert_eq!(
            severity(&over, 95.0, now),
            Severity::Critical,
            "over capacity"
        );
        assert_eq!(crossing(&steps, 200.0, 0.9, false), None);
        // With the upper bound (value + 5), the level is reached 2 h sooner.
        assert_eq!(
            crossing(&steps, 100.0, 0.9, true).unwrap().at,
            step(18, 0.0).at
        );
    }
}
