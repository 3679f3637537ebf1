//! Reports: aggregates over a time window (alerts by hour × type × severity ×
//! tag, deliveries by channel × status), requested now and produced later by
//! a worker that claims them under a lease, once across every instance
//! sharing the store.
//!
//! A [`Report`] goes `Pending → Running → Completed`, or back to `Pending`
//! after a failed attempt (due again after a back-off), and `Failed` after
//! [`MAX_REPORT_ATTEMPTS`]. The [`ReportStore`] role keeps the records and
//! answers the two aggregate queries in the database, so a report over
//! 100,000 alerts reads a few thousand groups, not the alerts.

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::alert::AlertStatus;
use crate::delivery::DeliveryStatus;
use crate::error::{Error, Result};
use crate::principal::Viewer;
use crate::query::AlertFilter;
use crate::rule::Channel;
use crate::severity::Severity;

/// How many attempts a report gets before it is `Failed`.
pub const MAX_REPORT_ATTEMPTS: u32 = 3;

/// The longest window a report may cover.
pub const MAX_REPORT_WINDOW_DAYS: i64 = 366;

/// What a report counts.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReportKind {
    /// Alerts created in the window, by hour × type × severity × tag, as the
    /// requester sees them.
    Alerts,
    /// Deliveries created in the window, by channel × status.
    Deliveries,
}

impl ReportKind {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            ReportKind::Alerts => "alerts",
            ReportKind::Deliveries => "deliveries",
        }
    }
}

/// Where a report is.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ReportStatus {
    /// Waiting for a worker (first time, or again after a failed attempt).
    Pending,
    /// Claimed by a worker until its lease ends.
    Running,
    /// Its files are written.
    Completed,
    /// Given up on after [`MAX_REPORT_ATTEMPTS`] attempts.
    Failed,
}

impl ReportStatus {
    /// The stored name (`PENDING`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            ReportStatus::Pending => "PENDING",
            ReportStatus::Running => "RUNNING",
            ReportStatus::Completed => "COMPLETED",
            ReportStatus::Failed => "FAILED",
        }
    }

    /// Whether the report is done, one way or the other.
    pub fn is_final(self) -> bool {
        matches!(self, ReportStatus::Completed | ReportStatus::Failed)
    }
}

impl std::str::FromStr for ReportStatus {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        [
            ReportStatus::Pending,
            ReportStatus::Running,
            ReportStatus::Completed,
            ReportStatus::Failed,
        ]
        .into_iter()
        .find(|r| r.as_str() == s)
        .ok_or_else(|| Error::invalid(format!("unknown report status {s:?}")))
    }
}

/// Which alerts an `alerts` report counts (every condition given must hold;
/// list-valued ones match when any value does).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReportFilter {
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
}

impl ReportFilter {
    /// The alert filter for a window: created after `from`, at or before
    /// `to`, dismissed or not.
    pub fn to_alert_filter(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> AlertFilter {
        AlertFilter {
            since: Some(from),
            until: Some(to),
            severities: self.severities.clone(),
            min_severity: self.min_severity,
            alert_types: self.alert_types.clone(),
            tags: self.tags.clone(),
            status: self.status,
            unread_only: false,
            include_dismissed: true,
        }
    }
}

/// What `POST /api/reports/trigger` takes.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportRequest {
    /// What to count.
    pub kind: ReportKind,
    /// Start of the window (exclusive, as alert filters' `since`).
    pub from: DateTime<Utc>,
    /// End of the window (inclusive, as alert filters' `until`).
    pub to: DateTime<Utc>,
    /// Which alerts (`alerts` reports only).
    #[serde(default)]
    pub filter: ReportFilter,
}

impl ReportRequest {
    /// Checks the window (`from < to`, at most [`MAX_REPORT_WINDOW_DAYS`])
    /// and the filter's values.
    pub fn validate(&self) -> Result<()> {
        if self.from >= self.to {
            return Err(Error::invalid("`from` must be before `to`"));
        }
        if self.to - self.from > Duration::days(MAX_REPORT_WINDOW_DAYS) {
            return Err(Error::invalid(format!(
                "a report covers at most {MAX_REPORT_WINDOW_DAYS} days"
            )));
        }
        if self.kind == ReportKind::Deliveries && self.filter != ReportFilter::default() {
            return Err(Error::invalid("a `deliveries` report takes no `filter`"));
        }
        self.filter.to_alert_filter(self.from, self.to).validate()
    }
}

/// A requested report and where it is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Its id; its files are `<id>.csv` and `<id>.json`.
    pub id: Uuid,
    /// What was asked for.
    pub request: ReportRequest,
    /// Who asked, as the store sees them: an `alerts` report counts only
    /// what this viewer may see.
    pub requested_by: Viewer,
    /// Where it is.
    pub status: ReportStatus,
    /// Attempts claimed so far.
    pub attempts: u32,
    /// While pending, when a worker may take it; while running, when its
    /// lease ends (then another worker may take it over).
    pub due_at: DateTime<Utc>,
    /// The last attempt's error, if it failed.
    pub error: Option<String>,
    /// How many rows the files hold, once completed.
    pub rows: Option<u64>,
    /// When it was requested.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// When it completed or failed.
    pub finished_at: Option<DateTime<Utc>>,
}

impl Report {
    /// A pending report, due now.
    pub fn new(request: ReportRequest, requested_by: Viewer, now: DateTime<Utc>) -> Self {
        Report {
            id: Uuid::now_v7(),
            request,
            requested_by,
            status: ReportStatus::Pending,
            attempts: 0,
            due_at: now,
            error: None,
            rows: None,
            created_at: now,
            updated_at: now,
            finished_at: None,
        }
    }

    /// Records a completed attempt.
    pub fn complete(&mut self, rows: u64, now: DateTime<Utc>) {
        self.status = ReportStatus::Completed;
        self.rows = Some(rows);
        self.error = None;
        self.updated_at = now;
        self.finished_at = Some(now);
    }

    /// Records a failed attempt: pending again after a back-off (`base`
    /// after the first attempt, four times longer after each further one),
    /// or `Failed` once it had [`MAX_REPORT_ATTEMPTS`]. Returns whether it
    /// is now `Failed`.
    pub fn fail(&mut self, error: impl Into<String>, base: Duration, now: DateTime<Utc>) -> bool {
        self.error = Some(error.into());
        self.updated_at = now;
        if self.attempts >= MAX_REPORT_ATTEMPTS {
            self.status = ReportStatus::Failed;
            self.finished_at = Some(now);
            true
        } else {
            self.status = ReportStatus::Pending;
            let factor = 4_i32.pow(self.attempts.saturating_sub(1).min(8));
            self.due_at = now + base * factor;
            false
        }
    }
}

/// One group of an `alerts` report.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct AlertCount {
    /// The hour the alerts were created in (its start, UTC).
    pub hour: DateTime<Utc>,
    /// Their type.
    pub alert_type: String,
    /// Their severity.
    pub severity: Severity,
    /// One of their tags (an alert with several counts once under each);
    /// `None` for alerts without tags.
    pub tag: Option<String>,
    /// How many alerts.
    pub alerts: u64,
    /// Their occurrences summed (repeats merged by deduplication).
    pub occurrences: u64,
}

/// One group of a `deliveries` report.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryCount {
    /// The channel.
    pub channel: Channel,
    /// Where the deliveries are now.
    pub status: DeliveryStatus,
    /// How many deliveries.
    pub deliveries: u64,
    /// Their attempts summed.
    pub attempts: u64,
}

/// The start of the hour holding `t`.
pub fn hour_of(t: DateTime<Utc>) -> DateTime<Utc> {
    let secs = t.timestamp().div_euclid(3600) * 3600;
    DateTime::from_timestamp(secs, 0).unwrap_or(t)
}

/// Report records, and the two aggregate queries reports are made of.
#[async_trait]
pub trait ReportStore: Send + Sync + 'static {
    /// Stores a new report.
    async fn create_report(&self, report: &Report) -> Result<()>;

    /// One report; `NotFound` if absent.
    async fn report(&self, id: Uuid) -> Result<Report>;

    /// Claims up to `limit` reports due at `now` (pending with `due_at`
    /// passed, or running with their lease lapsed), oldest due first: each
    /// becomes running with one more attempt and `due_at = lease_until`. Of
    /// several instances, exactly one gets each report.
    async fn claim_reports(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Report>>;

    /// Saves a claimed report's outcome. [`Conflict`](Error::Conflict)
    /// unless it is still running on the same attempt (a worker whose lease
    /// lapsed and was taken over must not overwrite the newer attempt).
    async fn update_report(&self, report: &Report) -> Result<()>;

    /// Deletes up to `limit` completed or failed reports last changed
    /// before `before`; returns their ids (so their files can go too).
    async fn purge_reports(&self, before: DateTime<Utc>, limit: u32) -> Result<Vec<Uuid>>;

    /// Alerts matching `filter` that the viewer sees (unexpired at `now`),
    /// grouped by creation hour × type × severity × tag, in that order.
    async fn alert_counts(
        &self,
        viewer: &Viewer,
        filter: &AlertFilter,
        now: DateTime<Utc>,
    ) -> Result<Vec<AlertCount>>;

    /// Deliveries created after `from` and at or before `to`, grouped by
    /// channel × status.
    async fn delivery_counts(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<DeliveryCount>>;
}

/// Adds alerts to grouped counts, for backends that aggregate outside the
/// database: one call per alert, then [`CountAccumulator::finish`].
#[derive(Debug, Default)]
pub struct CountAccumulator {
    groups: std::collections::BTreeMap<GroupKey, (u64, u64)>,
}

/// hour × type × severity × tag.
type GroupKey = (DateTime<Utc>, String, Severity, Option<String>);

impl CountAccumulator {
    /// Counts one alert under each of its tags (or under `None`).
    pub fn add(
        &mut self,
        created_at: DateTime<Utc>,
        alert_type: &str,
        severity: Severity,
        tags: &[String],
        occurrences: u64,
    ) {
        let hour = hour_of(created_at);
        let mut bump = |tag: Option<String>| {
            let e = self
                .groups
                .entry((hour, alert_type.to_owned(), severity, tag))
                .or_default();
            e.0 += 1;
            e.1 += occurrences;
        };
        if tags.is_empty() {
            bump(None);
        }
        let mut seen = std::collections::HashSet::new();
        for t in tags {
            if seen.insert(t) {
                bump(Some(t.clone()));
            }
        }
    }

    /// The groups, in hour × type × severity × tag order.
    pub fn finish(self) -> Vec<AlertCount> {
        self.groups
            .into_iter()
            .map(
                |((hour, alert_type, severity, tag), (alerts, occurrences))| AlertCount {
                    hour,
                    alert_type,
                    severity,
                    tag,
                    alerts,
                    occurrences,
                },
            )
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn requests_are_checked() {
        let ok = ReportRequest {
            kind: ReportKind::Alerts,
            from: at("2026-01-01T00:00:00Z"),
            to: at("2026-01-02T00:00:00Z"),
            filter: ReportFilter::default(),
        };
        assert!(ok.validate().is_ok());
        let backwards = ReportRequest {
            from: ok.to,
            to: ok.from,
            ..ok.clone()
        };
        assert!(
            backwards
                .validate()
                .unwrap_err()
                .to_string()
                .contains("before")
        );
        let long = ReportRequest {
            to: ok.from + Duration::days(400),
            ..ok.clone()
        };
        assert!(long.validate().unwrap_err().to_string().contains("366"));
        let filtered_deliveries = ReportRequest {
            kind: ReportKind::Deliveries,
            filter: ReportFilter {
                tags: vec!["x".into()],
                ..Default::default()
            },
            ..ok.clone()
        };
        assert!(filtered_deliveries.validate().is_err());
        let bad_tag = ReportRequest {
            filter: ReportFilter {
                tags: vec!["a\u{0}".into()],
                ..Default::default()
            },
            ..ok
        };
        assert!(bad_tag.validate().is_err());
    }

    #[test]
    fn failures_back_off_then_fail_for_good() {
        let now = at("2026-01-01T00:00:00Z");
        let req = ReportRequest {
            kind: ReportKind::Deliveries,
            from: now - Duration::hours(1),
            to: now,
            filter: ReportFilter::default(),
        };
        let mut r = Report::new(req, Viewer::new("u", Vec::<String>::new()), now);
        r.attempts = 1;
        assert!(!r.fail("boom", Duration::seconds(30), now));
        assert_eq!(r.status, ReportStatus::Pending);
        assert_eq!(r.due_at, now + Duration::seconds(30));
        r.attempts = 2;
        assert!(!r.fail("boom", Duration::seconds(30), now));
        assert_eq!(r.due_at, now + Duration::seconds(120));
        r.attempts = 3;
        assert!(r.fail("boom", Duration::seconds(30), now));
        assert_eq!(r.status, ReportStatus::Failed);
        assert_eq!(r.finished_at, Some(now));
    }

    #[test]
    fn counts_group_by_hour_type_severity_and_each_tag() {
        let mut acc = CountAccumulator::default();
        let t = at("2026-01-01T10:59:59Z");
        acc.add(
            t,
            "cpu",
            Severity::High,
            &["a".into(), "b".into(), "a".into()],
            2,
        );
        acc.add(
            at("2026-01-01T10:00:00Z"),
            "cpu",
            Severity::High,
            &["a".into()],
            1,
        );
        acc.add(at("2026-01-01T11:00:00Z"), "cpu", Severity::High, &[], 1);
        let rows = acc.finish();
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0].hour, at("2026-01-01T10:00:00Z"));
        assert_eq!(
            (rows[0].tag.as_deref(), rows[0].alerts, rows[0].occurrences),
            (Some("a"), 2, 3)
        );
        assert_eq!((rows[1].tag.as_deref(), rows[1].alerts), (Some("b"), 1));
        assert_eq!(
            (rows[2].hour, rows[2].tag.clone()),
            (at("2026-01-01T11:00:00Z"), None)
        );
        assert_eq!(
            hour_of(at("1969-12-31T23:30:00Z")),
            at("1969-12-31T23:00:00Z")
        );
    }
}
