//! Reports on the manual clock: who may request and read them, what the
//! files hold, the retries and the `report_failed` alert, lease take-over,
//! two workers sharing one store, and retention.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::sync::Arc;

use alertkit_core::{
    AlertFilter, AlertKit, AlertQuery, Audience, Channel, DeliveryTarget, Error, ManualClock,
    NewAlert, Permission, Principal, ReportFilter, ReportKind, ReportRequest, ReportStatus,
    ReportStore, Severity,
};
use alertkit_scheduler::Reports;
use alertkit_scheduler::reports::{FileFormat, file_name};
use alertkit_storage::MemoryAlertStore;
use alertkit_transport::LocalBroadcaster;
use chrono::{DateTime, Duration, Utc};

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

struct Setup {
    store: Arc<MemoryAlertStore>,
    clock: Arc<ManualClock>,
    kit: AlertKit,
    reports: Reports,
    dir: PathBuf,
}

impl Drop for Setup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
        let _ = std::fs::remove_file(&self.dir);
    }
}

fn setup() -> Setup {
    let store = Arc::new(MemoryAlertStore::new());
    let clock = Arc::new(ManualClock::new(utc("2026-03-02T12:00:00Z")));
    let kit = AlertKit::builder()
        .store(store.clone())
        .clock(clock.clone())
        .broadcaster(Arc::new(LocalBroadcaster::new()))
        .build()
        .unwrap();
    let dir = std::env::temp_dir().join(format!("alertkit-reports-{}", uuid::Uuid::now_v7()));
    let reports = Reports::new(store.clone(), kit.clone(), &dir);
    Setup {
        store,
        clock,
        kit,
        reports,
        dir,
    }
}

fn planner() -> Principal {
    Principal::user("pam")
        .with_groups(["planners"])
        .with_permissions([Permission::ReportsCreate])
}

fn alerts_request(filter: ReportFilter) -> ReportRequest {
    ReportRequest {
        kind: ReportKind::Alerts,
        from: utc("2026-03-02T00:00:00Z"),
        to: utc("2026-03-02T12:00:00Z"),
        filter,
    }
}

impl Setup {
    /// Raises `n` alerts an hour apart from 00:30, for the planners, with
    /// one tag each, and one for another group.
    async fn raise(&self, n: i64) {
        for i in 0..n {
            self.clock
                .set(utc("2026-03-02T00:30:00Z") + Duration::hours(i % 6));
            let tag = if i < 6 { "db" } else { "web" };
            self.kit
                .raise(
                    &Principal::system(),
                    NewAlert::new("disk_full", Severity::High, "disk")
                        .tags([tag])
                        .audience(Audience::group("planners")),
                )
                .await
                .unwrap();
        }
        self.kit
            .raise(
                &Principal::system(),
                NewAlert::new("secret", Severity::Critical, "hidden")
                    .audience(Audience::group("finance")),
            )
            .await
            .unwrap();
        self.clock.set(utc("2026-03-02T12:00:00Z"));
    }

    fn read(&self, id: uuid::Uuid, format: FileFormat) -> String {
        std::fs::read_to_string(self.dir.join(file_name(id, format))).unwrap()
    }
}

#[tokio::test]
async fn requests_need_their_permissions_and_a_sane_window() {
    let s = setup();
    let plain = Principal::user("u");
    assert!(matches!(
        s.reports
            .trigger(&plain, alerts_request(ReportFilter::default()))
            .await,
        Err(Error::Forbidden(_))
    ));
    let deliveries = ReportRequest {
        kind: ReportKind::Deliveries,
        ..alerts_request(ReportFilter::default())
    };
    assert!(
        matches!(s.reports.trigger(&planner(), deliveries.clone()).await, Err(Error::Forbidden(m)) if m.contains("alerts.manage"))
    );
    let backwards = ReportRequest {
        from: utc("2026-03-03T00:00:00Z"),
        ..alerts_request(ReportFilter::default())
    };
    assert!(matches!(
        s.reports.trigger(&planner(), backwards).await,
        Err(Error::Invalid(_))
    ));
    let r = s
        .reports
        .trigger(&Principal::admin("root"), deliveries)
        .await
        .unwrap();
    assert_eq!(r.status, ReportStatus::Pending);
}

#[tokio::test]
async fn an_alerts_report_counts_what_its_requester_sees() {
    let s = setup();
    s.raise(12).await;
    let r = s
        .reports
        .trigger(&planner(), alerts_request(ReportFilter::default()))
        .await
        .unwrap();
    assert!(matches!(
        s.reports.file(&planner(), &file_name(r.id, FileFormat::Csv)).await,
        Err(Error::NotFound(m)) if m.contains("PENDING")
    ));
    let pass = s.reports.run_due().await.unwrap();
    assert_eq!((pass.completed, pass.retried, pass.failed), (1, 0, 0));
    let done = s.reports.status(&planner(), r.id).await.unwrap();
    assert_eq!(done.status, ReportStatus::Completed);

    let csv = s.read(r.id, FileFormat::Csv);
    let mut rd = csv::Reader::from_reader(csv.as_bytes());
    assert_eq!(
        rd.headers().unwrap(),
        vec![
            "hour",
            "alert_type",
            "severity",
            "tag",
            "alerts",
            "occurrences"
        ]
    );
    let rows: Vec<csv::StringRecord> = rd.records().map(Result::unwrap).collect();
    // 6 hours × 2 tags; the finance alert is not the planner's.
    assert_eq!(rows.len(), 12);
    assert_eq!(done.rows, Some(12));
    let total: u64 = rows.iter().map(|r| r[4].parse::<u64>().unwrap()).sum();
    assert_eq!(total, 12);
    assert_eq!(&rows[0][0], "2026-03-02T00:00:00Z");
    assert!(rows.iter().all(|r| &r[1] == "disk_full" && &r[2] == "high"));

    let json: serde_json::Value = serde_json::from_str(&s.read(r.id, FileFormat::Json)).unwrap();
    assert_eq!(json["totals"]["alerts"], 12);
    assert_eq!(json["rows"].as_array().unwrap().len(), 12);
    assert_eq!(json["requested_by"], "pam");

    // Someone else with the same permission cannot see it; an admin can.
    let other = Principal::user("olga").with_permissions([Permission::ReportsCreate]);
    assert!(matches!(
        s.reports.status(&other, r.id).await,
        Err(Error::NotFound(_))
    ));
    assert!(matches!(
        s.reports
            .file(&other, &file_name(r.id, FileFormat::Csv))
            .await,
        Err(Error::NotFound(_))
    ));
    let (path, _, format) = s
        .reports
        .file(
            &Principal::admin("root"),
            &file_name(r.id, FileFormat::Json),
        )
        .await
        .unwrap();
    assert_eq!(
        (path, format),
        (
            s.dir.join(file_name(r.id, FileFormat::Json)),
            FileFormat::Json
        )
    );
    for bad in ["../../etc/passwd", "/etc/passwd", "x.csv", "..%2fpasswd"] {
        assert!(
            matches!(
                s.reports.file(&planner(), bad).await,
                Err(Error::Invalid(_))
            ),
            "{bad}"
        );
    }

    // A filtered report.
    let only_db = s
        .reports
        .trigger(
            &planner(),
            alerts_request(ReportFilter {
                tags: vec!["db".into()],
                ..Default::default()
            }),
        )
        .await
        .unwrap();
    s.reports.run_due().await.unwrap();
    let json: serde_json::Value =
        serde_json::from_str(&s.read(only_db.id, FileFormat::Json)).unwrap();
    assert_eq!(json["totals"]["alerts"], 6);
}

#[tokio::test]
async fn a_deliveries_report_counts_by_channel_and_status() {
    let s = setup();
    for (i, user) in ["a", "b", "c"].iter().enumerate() {
        s.clock
            .set(utc("2026-03-02T01:00:00Z") + Duration::minutes(i as i64));
        let alert = alertkit_testkit::fixtures::alert(
            NewAlert::new("x", Severity::High, "x").audience(Audience::everyone()),
            s.kit.now(),
        );
        let targets = [
            DeliveryTarget::new(*user, Channel::Email),
            DeliveryTarget::new(*user, Channel::Slack),
        ];
        alertkit_core::AlertStore::insert_or_dedup(&*s.store, alert, &targets, s.kit.now())
            .await
            .unwrap();
    }
    s.clock.set(utc("2026-03-02T12:00:00Z"));
    let r = s
        .reports
        .trigger(
            &Principal::admin("root"),
            ReportRequest {
                kind: ReportKind::Deliveries,
                ..alerts_request(ReportFilter::default())
            },
        )
        .await
        .unwrap();
    s.reports.run_due().await.unwrap();
    let csv = s.read(r.id, FileFormat::Csv);
    assert_eq!(
        csv,
        "channel,status,deliveries,attempts\nemail,pending,3,0\nslack,pending,3,0\n"
    );
}

#[tokio::test]
async fn failures_retry_then_fail_with_one_alert_for_the_requester() {
    let s = setup();
    // The directory path is a file: every attempt fails to write.
    std::fs::write(&s.dir, b"not a directory").unwrap();
    let r = s
        .reports
        .trigger(&planner(), alerts_request(ReportFilter::default()))
        .await
        .unwrap();
    let pass = s.reports.run_due().await.unwrap();
    assert_eq!((pass.retried, pass.failed), (1, 0));
    let after_one = s.store.report(r.id).await.unwrap();
    assert_eq!(after_one.status, ReportStatus::Pending);
    assert!(
        after_one
            .error
            .as_deref()
            .unwrap()
            .contains("report directory")
    );
    assert_eq!(after_one.due_at, s.kit.now() + Duration::seconds(30));

    s.clock.advance(Duration::seconds(29));
    assert_eq!(
        s.reports.run_due().await.unwrap().retried,
        0,
        "not before its back-off"
    );
    s.clock.advance(Duration::seconds(1));
    assert_eq!(s.reports.run_due().await.unwrap().retried, 1);
    s.clock.advance(Duration::seconds(120));
    let pass = s.reports.run_due().await.unwrap();
    assert_eq!((pass.retried, pass.failed), (0, 1));
    let failed = s.reports.status(&planner(), r.id).await.unwrap();
    assert_eq!((failed.status, failed.attempts), (ReportStatus::Failed, 3));
    assert!(s.reports.run_due().await.unwrap() == Default::default());

    let alerts = s
        .kit
        .list(
            &planner().with_permissions([Permission::AlertsRead]),
            &AlertQuery::filtered(AlertFilter {
                alert_types: vec!["report_failed".into()],
                ..Default::default()
            }),
        )
        .await
        .unwrap();
    assert_eq!(alerts.alerts.len(), 1);
    assert!(alerts.alerts[0].alert.title.contains("after 3 attempts"));
}

#[tokio::test]
async fn a_report_whose_worker_died_is_taken_over_and_gives_up_after_three() {
    let s = setup();
    let r = s
        .reports
        .trigger(&planner(), alerts_request(ReportFilter::default()))
        .await
        .unwrap();
    // A worker claims it and dies: the lease lapses.
    let now = s.kit.now();
    s.store
        .claim_reports(now, now + Duration::minutes(10), 1)
        .await
        .unwrap();
    assert_eq!(s.reports.run_due().await.unwrap().completed, 0, "leased");
    s.clock.advance(Duration::minutes(10));
    assert_eq!(
        s.reports.run_due().await.unwrap().completed,
        1,
        "taken over"
    );
    assert_eq!(s.store.report(r.id).await.unwrap().attempts, 2);

    // Three workers die in turn: the fourth claim gives up.
    let r = s
        .reports
        .trigger(&planner(), alerts_request(ReportFilter::default()))
        .await
        .unwrap();
    for _ in 0..3 {
        let now = s.kit.now();
        s.store.claim_reports(now, now, 1).await.unwrap();
    }
    let pass = s.reports.run_due().await.unwrap();
    assert_eq!(pass.failed, 1);
    let failed = s.store.report(r.id).await.unwrap();
    assert_eq!(failed.status, ReportStatus::Failed);
    assert!(failed.error.unwrap().contains("stopped"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_produce_each_report_once() {
    let s = setup();
    s.raise(6).await;
    let mut ids = Vec::new();
    for _ in 0..20 {
        ids.push(
            s.reports
                .trigger(&planner(), alerts_request(ReportFilter::default()))
                .await
                .unwrap()
                .id,
        );
    }
    let other = Reports::new(s.store.clone(), s.kit.clone(), &s.dir);
    let (a, b) = tokio::join!(s.reports.run_due(), other.run_due());
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.completed + b.completed, 20);
    for id in ids {
        let r = s.store.report(id).await.unwrap();
        assert_eq!((r.status, r.attempts), (ReportStatus::Completed, 1));
    }
}

#[tokio::test]
async fn retention_deletes_old_reports_their_files_and_strays() {
    let s = setup();
    let old = s
        .reports
        .trigger(&planner(), alerts_request(ReportFilter::default()))
        .await
        .unwrap();
    s.reports.run_due().await.unwrap();
    std::fs::write(s.dir.join("notes.txt"), b"not a report").unwrap();
    let stray = s.dir.join(file_name(uuid::Uuid::now_v7(), FileFormat::Csv));
    std::fs::write(&stray, b"orphan").unwrap();
    let month_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(30 * 86_400);
    for p in [&stray, &s.dir.join("notes.txt")] {
        std::fs::File::options()
            .write(true)
            .open(p)
            .unwrap()
            .set_modified(month_ago)
            .unwrap();
    }
    s.clock.advance(Duration::days(8));
    let new = s
        .reports
        .trigger(&planner(), alerts_request(ReportFilter::default()))
        .await
        .unwrap();
    s.reports.run_due().await.unwrap();

    // Reports age by the engine's clock, stray files by their wall-clock
    // modification time.
    assert_eq!(s.reports.purge(Duration::days(7)).await.unwrap(), 1);
    assert!(matches!(
        s.store.report(old.id).await,
        Err(Error::NotFound(_))
    ));
    assert!(!s.dir.join(file_name(old.id, FileFormat::Csv)).exists());
    assert!(!s.dir.join(file_name(old.id, FileFormat::Json)).exists());
    assert!(s.dir.join(file_name(new.id, FileFormat::Csv)).exists());
    assert!(s.dir.join("notes.txt").exists(), "files not ours stay");
    assert!(!stray.exists(), "a report file without a report goes");
}
