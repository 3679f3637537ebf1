//! Filters, cursors, pages and statistics for listing alerts.

use std::collections::BTreeMap;
use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::alert::{Alert, AlertStatus, AlertView, Receipt};
use crate::error::{Error, Result};
use crate::id::AlertId;
use crate::severity::Severity;

/// Page size used when a query gives none.
pub const DEFAULT_LIMIT: u32 = 50;
/// Largest page size a query may ask for.
pub const MAX_LIMIT: u32 = 200;
/// How many matches a list page counts at most.
///
/// A page's `total` is `min(matches, COUNT_CAP)` and its `unread_count` the
/// unread alerts among the newest `COUNT_CAP` matches: exact for any inbox
/// up to that size, and bounded work per request however much is stored
/// (an exact count over a million alerts costs ~200 ms on PostgreSQL; this
/// costs ~2 ms). A client shows `500+` when `total == COUNT_CAP`. Exact
/// figures come from [`AlertStore::count`](crate::AlertStore::count) and
/// [`AlertStore::stats`](crate::AlertStore::stats).
pub const COUNT_CAP: u64 = 500;

/// The earliest time a filter or cursor may name (0001-01-01T00:00:00Z).
pub const MIN_TIME_MICROS: i64 = -62_135_596_800_000_000;
/// The latest time a filter or cursor may name (9999-12-31T23:59:59.999999Z).
/// Every backend stores the whole range; beyond it some cannot.
pub const MAX_TIME_MICROS: i64 = 253_402_300_799_999_999;

fn in_time_range(t: DateTime<Utc>) -> bool {
    (MIN_TIME_MICROS..=MAX_TIME_MICROS).contains(&t.timestamp_micros())
}

/// Which alerts to consider. Every condition given must hold; list-valued
/// conditions match when any of their values does. Visibility and expiry are
/// applied on top by the store.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AlertFilter {
    /// Only alerts created strictly after this time.
    pub since: Option<DateTime<Utc>>,
    /// Only alerts created at or before this time.
    pub until: Option<DateTime<Utc>>,
    /// Only these severities (empty: any).
    pub severities: Vec<Severity>,
    /// Only this severity or higher.
    pub min_severity: Option<Severity>,
    /// Only these types (empty: any).
    pub alert_types: Vec<String>,
    /// Only alerts carrying at least one of these tags (empty: any).
    pub tags: Vec<String>,
    /// Only alerts in this status.
    pub status: Option<AlertStatus>,
    /// Only alerts the viewer has not read.
    pub unread_only: bool,
    /// Also alerts the viewer has dismissed (left out by default).
    pub include_dismissed: bool,
}

impl AlertFilter {
    /// Whether an alert, with the viewer's receipt, passes this filter.
    /// Does not check visibility or expiry.
    pub fn matches(&self, alert: &Alert, receipt: &Receipt) -> bool {
        self.since.is_none_or(|s| alert.created_at > s)
            && self.until.is_none_or(|u| alert.created_at <= u)
            && (self.severities.is_empty() || self.severities.contains(&alert.severity))
            && self.min_severity.is_none_or(|m| alert.severity >= m)
            && (self.alert_types.is_empty() || self.alert_types.contains(&alert.alert_type))
            && (self.tags.is_empty() || self.tags.iter().any(|t| alert.tags.contains(t)))
            && self.status.is_none_or(|s| alert.status == s)
            && (!self.unread_only || !receipt.is_read())
            && (self.include_dismissed || !receipt.is_dismissed())
    }

    /// Rejects filters whose values could never be stored (so backends need
    /// not worry about NUL bytes or megabyte strings in a query).
    pub fn validate(&self) -> Result<()> {
        for (field, t) in [("since", self.since), ("until", self.until)] {
            if t.is_some_and(|t| !in_time_range(t)) {
                return Err(Error::invalid(format!(
                    "`{field}` must be between years 1 and 9999"
                )));
            }
        }
        for (field, values) in [("alert_type", &self.alert_types), ("tag", &self.tags)] {
            if values.len() > 100 {
                return Err(Error::invalid(format!("at most 100 `{field}` values")));
            }
            for v in values {
                if v.is_empty() || v.chars().count() > 256 || v.chars().any(char::is_control) {
                    return Err(Error::invalid(format!(
                        "`{field}` values must be 1 to 256 characters without control characters"
                    )));
                }
            }
        }
        Ok(())
    }
}

/// A filter plus paging: what `list` takes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AlertQuery {
    /// Which alerts.
    #[serde(flatten)]
    pub filter: AlertFilter,
    /// Page size, 1 to [`MAX_LIMIT`]; [`DEFAULT_LIMIT`] when absent.
    pub limit: Option<u32>,
    /// Where the previous page ended.
    pub cursor: Option<Cursor>,
}

impl AlertQuery {
    /// A query with this filter and default paging.
    pub fn filtered(filter: AlertFilter) -> Self {
        AlertQuery {
            filter,
            ..Default::default()
        }
    }

    /// Sets the page size.
    pub fn limit(mut self, limit: u32) -> Self {
        self.limit = Some(limit);
        self
    }

    /// Sets the cursor.
    pub fn after(mut self, cursor: Option<Cursor>) -> Self {
        self.cursor = cursor;
        self
    }

    /// Checks the limit range, the filter and the cursor.
    pub fn validate(&self) -> Result<()> {
        if let Some(l) = self.limit
            && !(1..=MAX_LIMIT).contains(&l)
        {
            return Err(Error::invalid(format!(
                "limit must be between 1 and {MAX_LIMIT}, got {l}"
            )));
        }
        if let Some(c) = &self.cursor {
            c.position()?;
        }
        self.filter.validate()
    }

    /// The page size to use: the requested one clamped to 1..=[`MAX_LIMIT`].
    pub fn effective_limit(&self) -> u32 {
        self.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT)
    }
}

/// Where a page ended, as an opaque string for clients.
///
/// Lists are ordered newest first by (`created_at`, `id`); a cursor holds the
/// last pair seen, and the next page starts strictly after it. New alerts
/// sort before the first page, so paging stays exact while inserts continue.
///
/// A cursor also carries the first page's `total` and `unread_count`: the
/// counts describe the paging session as it started, and later pages cost
/// one keyset query instead of a count over everything that matches.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Cursor(String);

/// The decoded position a [`Cursor`] stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct CursorPosition {
    /// `created_at` of the last alert of the previous page.
    pub created_at: DateTime<Utc>,
    /// Its id.
    pub id: AlertId,
    /// `(total, unread_count)` of the paging session's first page.
    pub totals: Option<(u64, u64)>,
}

impl CursorPosition {
    /// The position of an alert.
    pub fn of(alert: &Alert) -> Self {
        CursorPosition {
            created_at: alert.created_at,
            id: alert.id,
            totals: None,
        }
    }

    /// Whether an alert sorts after this position in newest-first order.
    pub fn precedes(&self, alert: &Alert) -> bool {
        (alert.created_at, alert.id) < (self.created_at, self.id)
    }
}

impl Cursor {
    /// The cursor for a position.
    pub fn new(pos: CursorPosition) -> Self {
        let mut raw = format!("{}.{}", pos.created_at.timestamp_micros(), pos.id);
        if let Some((total, unread)) = pos.totals {
            raw.push_str(&format!(".{total}.{unread}"));
        }
        Cursor(URL_SAFE_NO_PAD.encode(raw))
    }

    /// Wraps a string received from a client (checked when decoded).
    pub fn from_raw(s: impl Into<String>) -> Self {
        Cursor(s.into())
    }

    /// The string to hand to clients.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Decodes the position; [`Error::Invalid`] if the cursor was not made here.
    pub fn position(&self) -> Result<CursorPosition> {
        let bad = || Error::invalid("cursor is malformed");
        if self.0.len() > 128 {
            return Err(bad());
        }
        let bytes = URL_SAFE_NO_PAD.decode(&self.0).map_err(|_| bad())?;
        let raw = String::from_utf8(bytes).map_err(|_| bad())?;
        let mut parts = raw.split('.');
        let micros: i64 = parts.next().ok_or_else(bad)?.parse().map_err(|_| bad())?;
        if !(MIN_TIME_MICROS..=MAX_TIME_MICROS).contains(&micros) {
            return Err(bad());
        }
        let created_at = DateTime::from_timestamp_micros(micros).ok_or_else(bad)?;
        let id = parts.next().ok_or_else(bad)?.parse().map_err(|_| bad())?;
        let totals = match (parts.next(), parts.next(), parts.next()) {
            (None, _, _) => None,
            (Some(t), Some(u), None) => {
                Some((t.parse().map_err(|_| bad())?, u.parse().map_err(|_| bad())?))
            }
            _ => return Err(bad()),
        };
        Ok(CursorPosition {
            created_at,
            id,
            totals,
        })
    }
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One page of a list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Page {
    /// The alerts of this page, newest first.
    pub alerts: Vec<AlertView>,
    /// How many alerts match the filter across all pages, up to [`COUNT_CAP`].
    pub total: u64,
    /// How many of the newest [`COUNT_CAP`] matches the viewer has not read.
    pub unread_count: u64,
    /// Whether another page follows.
    pub has_more: bool,
    /// The cursor for the next page, when there is one.
    pub next_cursor: Option<Cursor>,
}

impl Page {
    /// Builds a page from up to `limit + 1` matching views fetched in order:
    /// the extra one, if present, only tells that more follow.
    pub fn from_fetched(
        mut views: Vec<AlertView>,
        limit: u32,
        total: u64,
        unread_count: u64,
    ) -> Self {
        let limit = limit as usize;
        let has_more = views.len() > limit;
        views.truncate(limit);
        // The next cursor carries the totals on to later pages.
        let next_cursor = if has_more {
            views.last().map(|v| {
                Cursor::new(CursorPosition {
                    totals: Some((total, unread_count)),
                    ..CursorPosition::of(&v.alert)
                })
            })
        } else {
            None
        };
        Page {
            alerts: views,
            total,
            unread_count,
            has_more,
            next_cursor,
        }
    }
}

/// Counts over the alerts a viewer sees.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// Alerts matching.
    pub total: u64,
    /// Of those, not read by the viewer.
    pub total_unread: u64,
    /// Alerts per severity (severities with none are left out).
    pub by_severity: BTreeMap<Severity, u64>,
    /// Alerts per type.
    pub by_type: BTreeMap<String, u64>,
}

impl Stats {
    /// Counts one alert.
    pub fn add(&mut self, alert: &Alert, receipt: &Receipt) {
        let unread = u64::from(!receipt.is_read());
        self.add_group(alert.severity, &alert.alert_type, 1, unread);
    }

    /// Counts `n` alerts of one severity and type, `unread` of them unread
    /// (a backend's `GROUP BY` row).
    pub fn add_group(&mut self, severity: Severity, alert_type: &str, n: u64, unread: u64) {
        self.total += n;
        self.total_unread += unread;
        *self.by_severity.entry(severity).or_default() += n;
        *self.by_type.entry(alert_type.to_owned()).or_default() += n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trips_and_rejects_garbage() {
        let pos = CursorPosition {
            created_at: DateTime::from_timestamp_millis(1_767_225_600_123).unwrap(),
            id: AlertId::new(),
            totals: None,
        };
        let c = Cursor::new(pos);
        assert_eq!(c.position().unwrap(), pos);
        let with = CursorPosition {
            totals: Some((120, 7)),
            ..pos
        };
        assert_eq!(Cursor::new(with).position().unwrap(), with);
        // Extreme times no backend can compare with are refused here.
        let extreme = URL_SAFE_NO_PAD.encode(format!("{}.{}", i64::MAX, AlertId::new()));
        let negative = URL_SAFE_NO_PAD.encode(format!("{}.{}", i64::MIN, AlertId::new()));
        for bad in ["", "!!", "bm9wZQ", &"A".repeat(500), &extreme, &negative] {
            assert!(matches!(
                Cursor::from_raw(bad).position(),
                Err(Error::Invalid(_))
            ));
        }
    }

    #[test]
    fn limit_validation() {
        assert!(AlertQuery::default().limit(0).validate().is_err());
        assert!(AlertQuery::default().limit(201).validate().is_err());
        assert!(AlertQuery::default().limit(200).validate().is_ok());
        assert_eq!(AlertQuery::default().effective_limit(), DEFAULT_LIMIT);
        assert_eq!(
            AlertQuery::default().limit(999).effective_limit(),
            MAX_LIMIT
        );
        let f = AlertFilter {
            tags: vec!["a\0".into()],
            ..Default::default()
        };
        assert!(AlertQuery::filtered(f).validate().is_err());
    }

    #[test]
    fn stats_serialize_severity_keys_as_strings() {
        let mut s = Stats::default();
        s.by_severity.insert(Severity::High, 2);
        let j = serde_json::to_value(&s).unwrap();
        assert_eq!(j["by_severity"]["high"], 2);
    }
}
