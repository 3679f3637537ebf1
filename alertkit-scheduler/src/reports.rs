//! Reports: requested through [`Reports::trigger`], produced by the
//! [`ReportJob`] worker (claimed under a lease in the store, so of several
//! instances exactly one produces each report), written as CSV and JSON
//! files into one directory, and deleted by the [`ReportRetentionJob`].
//!
//! | kind | needs | counts |
//! |---|---|---|
//! | `alerts` | `reports.create` | alerts created in the window that the requester sees, by hour × type × severity × tag |
//! | `deliveries` | `reports.create` and `alerts.manage` | deliveries created in the window, by channel × status |
//!
//! **Access.** A report's status and files are for its requester, and for
//! holders of `alerts.manage`; the caller also needs the permissions the
//! report needed when it was requested. Anyone else is told `NotFound`, so
//! report ids cannot be probed.
//!
//! **Failures.** A failed attempt is retried after 30 s, then 2 min (the
//! base is [`Reports::retry_base`]); the third failure makes the report
//! `FAILED` and raises a `report_failed` alert for its requester. A worker
//! that dies mid-report loses its lease and another takes the report over;
//! that counts as an attempt.
//!
//! **Files** are `<report id>.csv` and `<report id>.json`, written to a
//! temporary name and renamed, so a reader never sees half a file.
//! [`Reports::file`] accepts only those names, so no request can reach
//! outside the directory.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use alertkit_core::report::MAX_REPORT_ATTEMPTS;
use alertkit_core::{
    AlertCount, AlertKit, Audience, DeliveryCount, Error, Job, JobContext, NewAlert, Permission,
    Principal, Report, ReportKind, ReportRequest, ReportStatus, ReportStore, Result, Severity,
};
use async_trait::async_trait;
use chrono::Duration;
use serde_json::json;
use uuid::Uuid;

/// A report file's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    /// `<id>.csv`: one row per group, with a header.
    Csv,
    /// `<id>.json`: the request, totals and the groups.
    Json,
}

impl FileFormat {
    /// The extension (`csv`, `json`).
    pub fn extension(self) -> &'static str {
        match self {
            FileFormat::Csv => "csv",
            FileFormat::Json => "json",
        }
    }

    /// The media type.
    pub fn content_type(self) -> &'static str {
        match self {
            FileFormat::Csv => "text/csv; charset=utf-8",
            FileFormat::Json => "application/json",
        }
    }
}

/// A report's file name in the given format.
pub fn file_name(id: Uuid, format: FileFormat) -> String {
    format!("{}.{}", id.hyphenated(), format.extension())
}

/// Reads a file name back: a hyphenated report id, a dot and `csv` or
/// `json`, nothing else (no separators, no `..`, no other names).
pub fn parse_file_name(name: &str) -> Option<(Uuid, FileFormat)> {
    let (stem, ext) = name.split_once('.')?;
    let format = match ext {
        "csv" => FileFormat::Csv,
        "json" => FileFormat::Json,
        _ => return None,
    };
    if stem.len() != 36 {
        return None;
    }
    let id = Uuid::try_parse(stem).ok()?;
    (id.hyphenated().to_string() == stem).then_some((id, format))
}

/// Requests, status, files and production of reports.
#[derive(Clone)]
pub struct Reports {
    store: Arc<dyn ReportStore>,
    kit: AlertKit,
    dir: PathBuf,
    lease: Duration,
    retry_base: Duration,
}

impl std::fmt::Debug for Reports {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reports")
            .field("dir", &self.dir)
            .field("lease", &self.lease)
            .finish_non_exhaustive()
    }
}

/// What one pass of the worker did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WorkerPass {
    /// Reports completed.
    pub completed: u32,
    /// Attempts that failed and will be retried.
    pub retried: u32,
    /// Reports that failed for good.
    pub failed: u32,
}

impl Reports {
    /// Reports kept in `store`, with files in `dir` (created when first
    /// needed); a 10-minute lease per attempt, retries 30 s then 2 min
    /// after a failure.
    pub fn new(store: Arc<dyn ReportStore>, kit: AlertKit, dir: impl Into<PathBuf>) -> Self {
        Reports {
            store,
            kit,
            dir: dir.into(),
            lease: Duration::minutes(10),
            retry_base: Duration::seconds(30),
        }
    }

    /// How long one attempt may take before another worker takes the
    /// report over (an attempt is also cut off then).
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// The wait after the first failed attempt; each further one waits
    /// four times longer.
    pub fn retry_base(mut self, base: Duration) -> Self {
        self.retry_base = base;
        self
    }

    /// Where the files are.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Stores a pending report for `by`. `Forbidden` without
    /// `reports.create` (and `alerts.manage` for `deliveries`); `Invalid`
    /// for a bad window or filter.
    pub async fn trigger(&self, by: &Principal, request: ReportRequest) -> Result<Report> {
        for p in needed(request.kind) {
            by.require(*p)?;
        }
        request.validate()?;
        let report = Report::new(request, by.viewer(), self.kit.now());
        self.store.create_report(&report).await?;
        tracing::info!(report = %report.id, kind = report.request.kind.as_str(), by = %by.user_id, "report requested");
        Ok(report)
    }

    /// A report as `by` may see it (see the module docs); `NotFound`
    /// otherwise.
    pub async fn status(&self, by: &Principal, id: Uuid) -> Result<Report> {
        by.require(Permission::ReportsCreate)?;
        let report = match self.store.report(id).await {
            Ok(r) => r,
            Err(Error::NotFound(_)) => return Err(hidden(id)),
            Err(e) => return Err(e),
        };
        let own = report.requested_by.user_id == by.user_id;
        let allowed = needed(report.request.kind).iter().all(|p| by.can(*p))
            && (own || by.can(Permission::AlertsManage));
        if allowed { Ok(report) } else { Err(hidden(id)) }
    }

    /// The path of a completed report's file named `name`, for `by`.
    /// `Invalid` for any name other than `<id>.csv` / `<id>.json`,
    /// `NotFound` for a report `by` may not see or whose files are not
    /// written (yet, or any more).
    pub async fn file(&self, by: &Principal, name: &str) -> Result<(PathBuf, Report, FileFormat)> {
        let (id, format) = parse_file_name(name).ok_or_else(|| {
            Error::invalid("a report file is named <report id>.csv or <report id>.json")
        })?;
        let report = self.status(by, id).await?;
        if report.status != ReportStatus::Completed {
            return Err(Error::not_found(format!(
                "report {id} is {}, it has no files",
                report.status.as_str()
            )));
        }
        let path = self.dir.join(file_name(id, format));
        if !tokio::fs::try_exists(&path).await.unwrap_or(false) {
            return Err(Error::not_found(format!(
                "the files of report {id} are gone"
            )));
        }
        Ok((path, report, format))
    }

    /// One pass of the worker: claims the due reports a few at a time and
    /// produces each, until none is due.
    pub async fn run_due(&self) -> Result<WorkerPass> {
        let mut pass = WorkerPass::default();
        loop {
            let now = self.kit.now();
            let claimed = self.store.claim_reports(now, now + self.lease, 4).await?;
            if claimed.is_empty() {
                return Ok(pass);
            }
            for report in claimed {
                self.attempt(report, &mut pass).await?;
            }
        }
    }

    async fn attempt(&self, mut report: Report, pass: &mut WorkerPass) -> Result<()> {
        let started = std::time::Instant::now();
        let outcome = if report.attempts > MAX_REPORT_ATTEMPTS {
            // Its last worker died with the lease: that was the last attempt.
            Err(Error::Unavailable(
                "the worker running the last attempt stopped".into(),
            ))
        } else {
            let limit = self.lease.to_std().unwrap_or_default() * 9 / 10;
            match tokio::time::timeout(limit, self.produce(&report)).await {
                Ok(r) => r,
                Err(_) => Err(Error::Timeout(format!(
                    "the report took longer than {} s",
                    limit.as_secs()
                ))),
            }
        };
        let now = self.kit.now();
        match outcome {
            Ok(rows) => {
                report.complete(rows, now);
                pass.completed += 1;
                tracing::info!(report = %report.id, rows, took_ms = started.elapsed().as_millis() as u64, "report completed");
            }
            Err(e) => {
                let failed = report.fail(e.to_string(), self.retry_base, now);
                tracing::warn!(report = %report.id, attempt = report.attempts, error = %e, failed, "report attempt failed");
                if failed {
                    pass.failed += 1;
                } else {
                    pass.retried += 1;
                }
            }
        }
        match self.store.update_report(&report).await {
            Ok(()) => {}
            Err(Error::Conflict(_)) => {
                // Our lease lapsed and another worker owns the report now.
                tracing::warn!(report = %report.id, "report taken over by another worker");
                return Ok(());
            }
            Err(e) => return Err(e),
        }
        if report.status == ReportStatus::Failed {
            self.raise_failure(&report).await;
        }
        Ok(())
    }

    async fn raise_failure(&self, report: &Report) {
        let kind = report.request.kind.as_str();
        let alert = NewAlert::new(
            "report_failed",
            Severity::Medium,
            format!(
                "Your {kind} report failed: given up after {} attempts",
                report.attempts
            ),
        )
        .message(report.error.clone().unwrap_or_default())
        .tags(["report".to_owned(), kind.to_owned()])
        .audience(Audience::user(report.requested_by.user_id.clone()))
        .metadata(json!({ "report_id": report.id }))
        .dedup_key(format!("report_failed:{}", report.id));
        if let Err(e) = self.kit.raise(&Principal::system(), alert).await {
            tracing::warn!(report = %report.id, error = %e, "raising the report_failed alert failed");
        }
    }

    /// Counts and writes the files; returns the number of rows.
    async fn produce(&self, report: &Report) -> Result<u64> {
        let r = &report.request;
        let now = self.kit.now();
        let (csv, rows, totals) = match r.kind {
            ReportKind::Alerts => {
                let filter = r.filter.to_alert_filter(r.from, r.to);
                let viewer = &report.requested_by;
                let counts = self.store.alert_counts(viewer, &filter, now).await?;
                let alerts = self.kit.store().count(viewer, &filter, now).await?;
                (
                    alerts_csv(&counts)?,
                    serde_json::to_value(&counts).map_err(internal)?,
                    json!({ "alerts": alerts, "groups": counts.len() }),
                )
            }
            ReportKind::Deliveries => {
                let counts = self.store.delivery_counts(r.from, r.to).await?;
                let deliveries: u64 = counts.iter().map(|c| c.deliveries).sum();
                let attempts: u64 = counts.iter().map(|c| c.attempts).sum();
                (
                    deliveries_csv(&counts)?,
                    serde_json::to_value(&counts).map_err(internal)?,
                    json!({ "deliveries": deliveries, "attempts": attempts, "groups": counts.len() }),
                )
            }
        };
        let n = rows.as_array().map_or(0, |a| a.len() as u64);
        let doc = json!({
            "report_id": report.id,
            "kind": r.kind,
            "from": r.from,
            "to": r.to,
            "filter": r.filter,
            "requested_by": report.requested_by.user_id,
            "generated_at": now,
            "totals": totals,
            "rows": rows,
        });
        let json = serde_json::to_vec_pretty(&doc).map_err(internal)?;
        tokio::fs::create_dir_all(&self.dir)
            .await
            .map_err(|e| io("creating the report directory", &self.dir, e))?;
        self.write(report.id, FileFormat::Csv, &csv).await?;
        self.write(report.id, FileFormat::Json, &json).await?;
        Ok(n)
    }

    async fn write(&self, id: Uuid, format: FileFormat, bytes: &[u8]) -> Result<()> {
        let path = self.dir.join(file_name(id, format));
        let tmp = self.dir.join(format!(".{}.tmp", file_name(id, format)));
        tokio::fs::write(&tmp, bytes)
            .await
            .map_err(|e| io("writing", &tmp, e))?;
        tokio::fs::rename(&tmp, &path)
            .await
            .map_err(|e| io("renaming", &path, e))
    }

    /// Deletes finished reports last changed more than `keep` ago, with
    /// their files, and stray files in the directory older than that (a
    /// crash between writing and recording). Returns how many reports went.
    pub async fn purge(&self, keep: Duration) -> Result<u64> {
        let before = self.kit.now() - keep;
        let mut total = 0;
        loop {
            let ids = self.store.purge_reports(before, 500).await?;
            if ids.is_empty() {
                break;
            }
            total += ids.len() as u64;
            for id in ids {
                for format in [FileFormat::Csv, FileFormat::Json] {
                    let _ = tokio::fs::remove_file(self.dir.join(file_name(id, format))).await;
                }
            }
        }
        let wall = std::time::SystemTime::now() - keep.to_std().unwrap_or_default();
        self.sweep(wall).await;
        Ok(total)
    }

    /// Removes report files and temporaries modified before `before` (wall
    /// clock, as file times are) whose report is gone.
    async fn sweep(&self, before: std::time::SystemTime) {
        let Ok(mut entries) = tokio::fs::read_dir(&self.dir).await else {
            return;
        };
        while let Ok(Some(entry)) = entries.next_entry().await {
            let name = entry.file_name().to_string_lossy().into_owned();
            let bare = name.trim_start_matches('.').trim_end_matches(".tmp");
            let Some((id, _)) = parse_file_name(bare) else {
                continue; // not ours: left alone
            };
            let old = entry
                .metadata()
                .await
                .and_then(|m| m.modified())
                .map(|m| m < before)
                .unwrap_or(false);
            if old && matches!(self.store.report(id).await, Err(Error::NotFound(_))) {
                let _ = tokio::fs::remove_file(entry.path()).await;
            }
        }
    }
}

fn needed(kind: ReportKind) -> &'static [Permission] {
    match kind {
        ReportKind::Alerts => &[Permission::ReportsCreate],
        ReportKind::Deliveries => &[Permission::ReportsCreate, Permission::AlertsManage],
    }
}

fn hidden(id: Uuid) -> Error {
    Error::not_found(format!("report {id}"))
}

fn internal(e: impl std::fmt::Display) -> Error {
    Error::backend("reports", e.to_string())
}

fn io(what: &str, path: &Path, e: std::io::Error) -> Error {
    Error::Unavailable(format!("{what} {}: {e}", path.display()))
}

fn alerts_csv(counts: &[AlertCount]) -> Result<Vec<u8>> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record([
        "hour",
        "alert_type",
        "severity",
        "tag",
        "alerts",
        "occurrences",
    ])
    .map_err(internal)?;
    for c in counts {
        w.write_record([
            c.hour.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            c.alert_type.clone(),
            c.severity.as_str().to_owned(),
            c.tag.clone().unwrap_or_default(),
            c.alerts.to_string(),
            c.occurrences.to_string(),
        ])
        .map_err(internal)?;
    }
    w.into_inner().map_err(internal)
}

fn deliveries_csv(counts: &[DeliveryCount]) -> Result<Vec<u8>> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(["channel", "status", "deliveries", "attempts"])
        .map_err(internal)?;
    for c in counts {
        w.write_record([
            c.channel.as_str(),
            c.status.as_str(),
            &c.deliveries.to_string(),
            &c.attempts.to_string(),
        ])
        .map_err(internal)?;
    }
    w.into_inner().map_err(internal)
}

/// `reports`: one pass of [`Reports::run_due`]. Register it on a short
/// interval (the reference server: every 10 s, and triggered at once when
/// a report is requested); the store's claim makes each report run once
/// whichever instance's pass takes it.
#[derive(Debug, Clone)]
pub struct ReportJob(pub Reports);

#[async_trait]
impl Job for ReportJob {
    async fn run(&self, ctx: JobContext) -> Result<()> {
        let pass = self.0.run_due().await?;
        if pass != WorkerPass::default() {
            tracing::info!(job = %ctx.job_id, completed = pass.completed, retried = pass.retried, failed = pass.failed, "reports produced");
        }
        Ok(())
    }
}

/// `report_retention`: [`Reports::purge`] with the reports kept `keep`.
#[derive(Debug, Clone)]
pub struct ReportRetentionJob {
    /// The reports.
    pub reports: Reports,
    /// How long finished reports and their files are kept.
    pub keep: Duration,
}

#[async_trait]
impl Job for ReportRetentionJob {
    async fn run(&self, ctx: JobContext) -> Result<()> {
        let n = self.reports.purge(self.keep).await?;
        tracing::info!(job = %ctx.job_id, deleted = n, "report retention");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_report_file_names_parse() {
        let id = Uuid::now_v7();
        assert_eq!(
            parse_file_name(&file_name(id, FileFormat::Csv)),
            Some((id, FileFormat::Csv))
        );
        assert_eq!(
            parse_file_name(&file_name(id, FileFormat::Json)),
            Some((id, FileFormat::Json))
        );
        let s = id.hyphenated().to_string();
        for bad in [
            "../etc/passwd".to_owned(),
            "/etc/passwd".to_owned(),
            format!("../{s}.csv"),
            format!("{s}.csv/.."),
            format!("{s}.txt"),
            format!("{s}.csv.tmp"),
            format!("{}.csv", s.to_uppercase()),
            format!("{}.csv", id.simple()),
            format!("{{{s}}}.csv"),
            "..%2f..%2fetc%2fpasswd".to_owned(),
            String::new(),
        ] {
            assert_eq!(parse_file_name(&bad), None, "{bad:?}");
        }
    }
}
