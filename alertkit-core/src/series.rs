//! Time series: the actuals a forecast learns from, each series' settings
//! (capacity and unit), and the predictions a forecast stores. The
//! [`SeriesStore`] role keeps them in the alert store's own database, so a
//! forecast needs no second one.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Longest series name, in bytes.
pub const MAX_SERIES_NAME: usize = 128;

/// Checks a series name: 1 to [`MAX_SERIES_NAME`] bytes of ASCII letters,
/// digits and `_ . : -`. `Invalid` names the problem.
pub fn validate_series_name(name: &str) -> Result<()> {
    if name.is_empty() || name.len() > MAX_SERIES_NAME {
        return Err(Error::invalid(format!(
            "a series name has 1 to {MAX_SERIES_NAME} characters, not {}",
            name.len()
        )));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-')))
    {
        return Err(Error::invalid(format!(
            "series name {name:?}: {c:?} is not allowed (letters, digits, _ . : -)"
        )));
    }
    Ok(())
}

/// One observed value of a series.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Point {
    /// The series it belongs to.
    pub series: String,
    /// When it was observed.
    pub at: DateTime<Utc>,
    /// The value (finite).
    pub value: f64,
}

impl Point {
    /// Checks the name and that the value is finite.
    pub fn validate(&self) -> Result<()> {
        validate_series_name(&self.series)?;
        if !self.value.is_finite() {
            return Err(Error::invalid(format!(
                "series {}: the value at {} is not a finite number",
                self.series, self.at
            )));
        }
        Ok(())
    }
}

/// One predicted value of a series, with its interval.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    /// The series it belongs to.
    pub series: String,
    /// The instant predicted.
    pub at: DateTime<Utc>,
    /// The point forecast.
    pub value: f64,
    /// Lower bound of the prediction interval.
    pub lower: f64,
    /// Upper bound of the prediction interval.
    pub upper: f64,
    /// When the forecast that made it ran.
    pub made_at: DateTime<Utc>,
}

/// A series as listed: its settings and what is stored of it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeriesInfo {
    /// The name.
    pub name: String,
    /// The capacity a forecast is compared with (none: no capacity alerts).
    pub capacity: Option<f64>,
    /// The unit of its values, for display (`"req/s"`, `"GB"`).
    pub unit: Option<String>,
    /// The newest stored point, if any.
    pub last_at: Option<DateTime<Utc>>,
}

/// The settings of a series, as `PUT` sets them.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SeriesSettings {
    /// The capacity a forecast is compared with (finite, above zero).
    pub capacity: Option<f64>,
    /// The unit of its values (at most 32 characters).
    pub unit: Option<String>,
}

impl SeriesSettings {
    /// Checks the capacity (finite, above zero) and the unit's length.
    pub fn validate(&self) -> Result<()> {
        if let Some(c) = self.capacity
            && !(c.is_finite() && c > 0.0)
        {
            return Err(Error::invalid(format!(
                "capacity must be a finite number above zero, not {c}"
            )));
        }
        if let Some(u) = &self.unit
            && u.chars().count() > 32
        {
            return Err(Error::invalid("a unit has at most 32 characters"));
        }
        Ok(())
    }
}

/// Stored series: points (unique per series and instant, the later write
/// wins), settings, and predictions (unique per series and instant, a newer
/// forecast replaces an older one over the instants both cover).
#[async_trait]
pub trait SeriesStore: Send + Sync + 'static {
    /// Writes points, replacing any stored at the same (series, instant);
    /// returns how many were written. Callers validate ([`Point::validate`]).
    async fn put_points(&self, points: &[Point]) -> Result<u64>;

    /// The points of a series in `[from, to)`, oldest first, at most `limit`.
    async fn points(
        &self,
        series: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Point>>;

    /// Sets a series' settings (the series need not have points yet).
    async fn put_series(&self, name: &str, settings: &SeriesSettings) -> Result<SeriesInfo>;

    /// Every series with settings or points, by name.
    async fn series(&self) -> Result<Vec<SeriesInfo>>;

    /// Stores predictions, replacing any at the same (series, instant).
    async fn put_predictions(&self, predictions: &[Prediction]) -> Result<u64>;

    /// The predictions of a series in `[from, to)`, oldest first, at most
    /// `limit`.
    async fn predictions(
        &self,
        series: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Prediction>>;

    /// Deletes up to `batch` points and predictions older than `before`
    /// (retention); returns how many went. Call until it returns 0.
    async fn purge_series(&self, before: DateTime<Utc>, batch: u32) -> Result<u64>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_values_are_checked() {
        assert!(validate_series_name("cpu.web-1:p95_x").is_ok());
        for bad in ["", "a b", "../etc", "ñ", &"x".repeat(129)] {
            assert!(validate_series_name(bad).is_err(), "{bad:?}");
        }
        let p = Point {
            series: "cpu".into(),
            at: DateTime::<Utc>::UNIX_EPOCH,
            value: f64::NAN,
        };
        assert!(p.validate().unwrap_err().to_string().contains("finite"));
        assert!(
            SeriesSettings {
                capacity: Some(0.0),
                unit: None
            }
            .validate()
            .is_err()
        );
        assert!(
            SeriesSettings {
                capacity: Some(100.0),
                unit: Some("req/s".into())
            }
            .validate()
            .is_ok()
        );
    }
}
