//! The scheduler on the manual clock: ticks, pause/resume, trigger-now,
//! overlap, timeout, retries with their backoff, each misfire policy and the
//! failure alert, deterministically.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use alertkit_core::{
    AlertFilter, AlertKit, AlertQuery, AlertStatus, AlertView, Audience, Error, ErrorKind, Job,
    JobContext, JobSpec, JobStore, ManualClock, MisfirePolicy, Overlap, Principal, Result,
    RunStatus, Schedule, Scheduler,
};
use alertkit_scheduler::{CronScheduler, SchedulerConfig};
use alertkit_storage::MemoryAlertStore;
use alertkit_transport::LocalBroadcaster;
use chrono::{DateTime, Utc};
use tokio::sync::Semaphore;

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// Records the ticks it ran for; fails while `failures` is positive; waits
/// for a permit when `gate` is set; sleeps `sleep` of real time.
#[derive(Default)]
struct Probe {
    ticks: Mutex<Vec<DateTime<Utc>>>,
    failures: Mutex<u32>,
    gate: Option<Arc<Semaphore>>,
    sleep: Duration,
}

impl Probe {
    fn ticks(&self) -> Vec<DateTime<Utc>> {
        self.ticks.lock().unwrap().clone()
    }
}

#[async_trait::async_trait]
impl Job for Probe {
    async fn run(&self, ctx: JobContext) -> Result<()> {
        self.ticks.lock().unwrap().push(ctx.scheduled_at);
        if let Some(g) = &self.gate {
            g.acquire().await.unwrap().forget();
        }
        if !self.sleep.is_zero() {
            tokio::time::sleep(self.sleep).await;
        }
        let mut f = self.failures.lock().unwrap();
        if *f > 0 {
            *f -= 1;
            return Err(Error::Unavailable("the model server is down".into()));
        }
        Ok(())
    }
}

struct Setup {
    store: Arc<MemoryAlertStore>,
    clock: Arc<ManualClock>,
    kit: AlertKit,
    sched: CronScheduler,
}

fn setup(start: &str) -> Setup {
    let store = Arc::new(MemoryAlertStore::new());
    let clock = Arc::new(ManualClock::new(utc(start)));
    let kit = AlertKit::builder()
        .store(store.clone())
        .clock(clock.clone())
        .broadcaster(Arc::new(LocalBroadcaster::new()))
        .build()
        .unwrap();
    let sched = CronScheduler::builder(store.clone())
        .clock(clock.clone())
        .config(SchedulerConfig::default())
        .failure_alerts(kit.clone(), Audience::group("admins"))
        .build();
    Setup {
        store,
        clock,
        kit,
        sched,
    }
}

impl Setup {
    /// Sets the clock, starts what is due and waits for it to finish.
    async fn at(&self, t: &str) {
        self.clock.set(utc(t));
        self.sched.run_due().await;
        self.sched.idle().await;
    }

    async fn statuses(&self, job: &str) -> Vec<(RunStatus, u32)> {
        let mut runs = self.store.job_runs(job, 100).await.unwrap();
        runs.reverse();
        runs.iter().map(|r| (r.status, r.attempt)).collect()
    }

    async fn job_failed_alerts(&self) -> Vec<AlertView> {
        let query = AlertQuery {
            filter: AlertFilter {
                alert_types: vec!["job_failed".into()],
                ..Default::default()
            },
            ..Default::default()
        };
        self.kit
            .list(&Principal::admin("admin"), &query)
            .await
            .unwrap()
            .alerts
    }
}

fn every_minute(id: &str) -> JobSpec {
    JobSpec::new(
        id,
        "test job",
        Schedule::Cron {
            expr: "0 * * * * *".into(),
            timezone: None,
        },
    )
}

#[tokio::test]
async fn ticks_run_once_each_and_pause_resume_skip_the_paused_ones() {
    let s = setup("2026-05-01T10:00:30Z");
    let probe = Arc::new(Probe::default());
    s.sched
        .register(every_minute("minutely"), probe.clone())
        .await
        .unwrap();
    s.at("2026-05-01T10:00:59Z").await;
    assert!(probe.ticks().is_empty(), "no tick yet");
    s.at("2026-05-01T10:01:00Z").await;
    s.at("2026-05-01T10:01:30Z").await;
    assert_eq!(
        probe.ticks(),
        [utc("2026-05-01T10:01:00Z")],
        "once per tick"
    );
    let info = s.sched.get("minutely").await.unwrap();
    assert_eq!(info.next_run, Some(utc("2026-05-01T10:02:00Z")));
    assert_eq!(info.last_run.unwrap().status, RunStatus::Succeeded);

    s.sched.pause("minutely").await.unwrap();
    assert!(s.sched.get("minutely").await.unwrap().next_run.is_none());
    s.at("2026-05-01T10:03:00Z").await;
    assert_eq!(probe.ticks().len(), 1, "paused");
    s.sched.resume("minutely").await.unwrap();
    s.at("2026-05-01T10:03:30Z").await;
    assert_eq!(
        probe.ticks().len(),
        1,
        "ticks that fell while paused are not run"
    );
    s.at("2026-05-01T10:04:00Z").await;
    assert_eq!(probe.ticks().len(), 2);
    assert_eq!(
        s.statuses("minutely").await,
        [(RunStatus::Succeeded, 1), (RunStatus::Succeeded, 1)]
    );
}

#[tokio::test]
async fn trigger_now_runs_off_schedule_and_unknown_or_protected_jobs_are_refused() {
    let s = setup("2026-05-01T10:00:30Z");
    let probe = Arc::new(Probe::default());
    let mut spec = every_minute("retention");
    spec.protected = true;
    s.sched.register(spec, probe.clone()).await.unwrap();
    let run = s.sched.trigger("retention").await.unwrap();
    assert_eq!(run.scheduled_at, utc("2026-05-01T10:00:30Z"));
    s.sched.idle().await;
    assert_eq!(probe.ticks(), [utc("2026-05-01T10:00:30Z")]);
    assert_eq!(s.statuses("retention").await, [(RunStatus::Succeeded, 1)]);
    for e in [
        s.sched.pause("retention").await.unwrap_err(),
        s.sched.remove("retention").await.unwrap_err(),
    ] {
        assert_eq!(e.kind(), ErrorKind::Forbidden);
    }
    for e in [
        s.sched.trigger("ghost").await.unwrap_err(),
        s.sched.pause("ghost").await.unwrap_err(),
        s.sched.get("ghost").await.unwrap_err(),
        s.sched.runs("ghost", 10).await.unwrap_err(),
    ] {
        assert_eq!(e.kind(), ErrorKind::NotFound);
    }
    // A job added at runtime can be removed.
    s.sched
        .register(every_minute("extra"), Arc::new(Probe::default()))
        .await
        .unwrap();
    assert_eq!(s.sched.list().await.unwrap().len(), 2);
    s.sched.remove("extra").await.unwrap();
    assert_eq!(s.sched.list().await.unwrap().len(), 1);
}

#[tokio::test]
async fn overlapping_ticks_are_skipped_or_queued() {
    for overlap in [Overlap::Skip, Overlap::Queue] {
        let s = setup("2026-05-01T10:00:30Z");
        let gate = Arc::new(Semaphore::new(0));
        let probe = Arc::new(Probe {
            gate: Some(gate.clone()),
            ..Default::default()
        });
        let mut spec = every_minute("slow");
        spec.overlap = overlap;
        s.sched.register(spec, probe.clone()).await.unwrap();
        s.clock.set(utc("2026-05-01T10:01:00Z"));
        s.sched.run_due().await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(s.sched.get("slow").await.unwrap().running);
        // The next tick comes while the first run still holds.
        s.clock.set(utc("2026-05-01T10:02:00Z"));
        s.sched.run_due().await;
        if overlap == Overlap::Skip {
            let e = s.sched.trigger("slow").await.unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Conflict, "already running");
        }
        gate.add_permits(10);
        s.sched.idle().await;
        let ticks = probe.ticks();
        match overlap {
            Overlap::Skip => assert_eq!(ticks, [utc("2026-05-01T10:01:00Z")], "skipped"),
            Overlap::Queue => assert_eq!(
                ticks,
                [utc("2026-05-01T10:01:00Z"), utc("2026-05-01T10:02:00Z")],
                "queued and run after"
            ),
        }
    }
}

#[tokio::test]
async fn a_run_past_its_timeout_fails() {
    let s = setup("2026-05-01T10:00:30Z");
    let probe = Arc::new(Probe {
        sleep: Duration::from_secs(30),
        ..Default::default()
    });
    let mut spec = every_minute("stuck");
    spec.timeout_secs = Some(1);
    spec.retry_delays_secs = vec![];
    s.sched.register(spec, probe).await.unwrap();
    let started = std::time::Instant::now();
    s.at("2026-05-01T10:01:00Z").await;
    assert!(started.elapsed() < Duration::from_secs(10), "cut off");
    let runs = s.store.job_runs("stuck", 10).await.unwrap();
    assert_eq!(runs[0].status, RunStatus::Failed);
    assert!(runs[0].error.as_deref().unwrap().contains("timed out"));
}

#[tokio::test]
async fn failed_runs_retry_on_their_backoff_and_three_failures_raise_one_alert() {
    let s = setup("2026-05-01T10:00:30Z");
    // Each run fails its first attempt and its three retries; three runs fail.
    let probe = Arc::new(Probe {
        failures: Mutex::new(12),
        ..Default::default()
    });
    let mut spec = JobSpec::new(
        "forecast",
        "the forecast",
        Schedule::Interval { every_secs: 3600 },
    );
    spec.misfire = MisfirePolicy::Skip;
    s.sched.register(spec, probe.clone()).await.unwrap();
    s.at("2026-05-01T11:00:00Z").await;
    assert_eq!(s.statuses("forecast").await, [(RunStatus::Pending, 1)]);
    // The retries come 1, 5 and 15 minutes after each failure, not before.
    s.at("2026-05-01T11:00:59Z").await;
    assert_eq!(probe.ticks().len(), 1);
    s.at("2026-05-01T11:01:00Z").await;
    assert_eq!(s.statuses("forecast").await, [(RunStatus::Pending, 2)]);
    s.at("2026-05-01T11:05:59Z").await;
    assert_eq!(probe.ticks().len(), 2);
    s.at("2026-05-01T11:06:00Z").await;
    s.at("2026-05-01T11:20:59Z").await;
    assert_eq!(probe.ticks().len(), 3);
    s.at("2026-05-01T11:21:00Z").await;
    assert_eq!(s.statuses("forecast").await, [(RunStatus::Failed, 4)]);
    assert_eq!(probe.ticks().len(), 4, "one run, four attempts");
    assert!(
        s.job_failed_alerts().await.is_empty(),
        "one failed run raises nothing"
    );
    for hour in ["12", "13"] {
        for t in ["00:00", "01:00", "06:00", "21:00"] {
            s.at(&format!("2026-05-01T{hour}:{t}Z")).await;
        }
    }
    let alerts = s.job_failed_alerts().await;
    assert_eq!(alerts.len(), 1, "three failed runs in a row: one alert");
    let a = &alerts[0].alert;
    assert_eq!(a.title, "Job forecast failed 3 times in a row");
    assert!(a.message.contains("the model server is down"));
    assert_eq!(a.status, AlertStatus::Active);
    // The next run succeeds and resolves it.
    s.at("2026-05-01T14:00:00Z").await;
    let alerts = s.job_failed_alerts().await;
    assert_eq!(alerts[0].alert.status, AlertStatus::Resolved);
    let last = s.store.job_runs("forecast", 1).await.unwrap().remove(0);
    assert_eq!((last.status, last.attempt), (RunStatus::Succeeded, 1));
    assert!(last.duration().is_some());
}

#[tokio::test]
async fn after_downtime_each_misfire_policy_does_what_it_says() {
    for (policy, want) in [
        (MisfirePolicy::Skip, vec![]),
        (MisfirePolicy::RunOnce, vec!["2026-05-01T15:00:00Z"]),
        (
            MisfirePolicy::CatchUp,
            vec![
                "2026-05-01T12:00:00Z",
                "2026-05-01T13:00:00Z",
                "2026-05-01T14:00:00Z",
                "2026-05-01T15:00:00Z",
            ],
        ),
    ] {
        let s = setup("2026-05-01T10:30:00Z");
        let hourly = || {
            let mut spec = JobSpec::new("hourly", "h", Schedule::Interval { every_secs: 3600 });
            spec.misfire = policy;
            spec
        };
        let probe = Arc::new(Probe::default());
        s.sched.register(hourly(), probe.clone()).await.unwrap();
        s.at("2026-05-01T11:00:00Z").await;
        assert_eq!(probe.ticks().len(), 1);
        // The process stops; a new one starts at 15:20 on the same store.
        s.clock.set(utc("2026-05-01T15:20:00Z"));
        let again = CronScheduler::builder(s.store.clone())
            .clock(s.clock.clone())
            .build();
        let after = Arc::new(Probe::default());
        again.register(hourly(), after.clone()).await.unwrap();
        again.run_due().await;
        again.idle().await;
        let want: Vec<DateTime<Utc>> = want.iter().map(|t| utc(t)).collect();
        assert_eq!(after.ticks(), want, "{policy:?}");
        // Then the schedule goes on as usual.
        s.clock.set(utc("2026-05-01T16:00:00Z"));
        again.run_due().await;
        again.idle().await;
        assert_eq!(after.ticks().last(), Some(&utc("2026-05-01T16:00:00Z")));
    }
}

#[tokio::test]
async fn bad_specs_are_invalid_and_name_the_problem() {
    let s = setup("2026-05-01T10:00:00Z");
    let bad = [
        JobSpec::new(
            "x",
            "",
            Schedule::Cron {
                expr: "0 0 25 * * *".into(),
                timezone: None,
            },
        ),
        JobSpec::new(
            "x",
            "",
            Schedule::Cron {
                expr: "0 0 1 * * *".into(),
                timezone: Some("Mars/Olympus".into()),
            },
        ),
        JobSpec::new("bad id!", "", Schedule::Interval { every_secs: 60 }),
    ];
    for (spec, needle) in bad
        .into_iter()
        .zip(["0 0 25 * * *", "Mars/Olympus", "bad id!"])
    {
        let e = s
            .sched
            .register(spec, Arc::new(Probe::default()))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Invalid);
        assert!(e.to_string().contains(needle), "{e}");
    }
}

/// Records when (Tokio time) it started.
struct Stamp(Arc<Mutex<Vec<tokio::time::Instant>>>);

#[async_trait::async_trait]
impl Job for Stamp {
    async fn run(&self, _: JobContext) -> Result<()> {
        self.0.lock().unwrap().push(tokio::time::Instant::now());
        Ok(())
    }
}

// Paused Tokio time: the jitter's sleeps end at exact virtual instants, so
// a thread starved by a loaded machine cannot bunch the starts together.
#[tokio::test(start_paused = true)]
async fn jitter_spreads_the_start_within_its_bound() {
    let s = setup("2026-05-01T10:00:30Z");
    let stamps = Arc::new(Mutex::new(Vec::new()));
    for i in 0..8 {
        let mut spec = every_minute(&format!("j{i}"));
        spec.jitter_secs = 1;
        s.sched
            .register(spec, Arc::new(Stamp(stamps.clone())))
            .await
            .unwrap();
    }
    let started = tokio::time::Instant::now();
    s.at("2026-05-01T10:01:00Z").await;
    let took = started.elapsed();
    assert!(
        took <= Duration::from_millis(1500),
        "bounded by the jitter: {took:?}"
    );
    let stamps = stamps.lock().unwrap().clone();
    assert_eq!(stamps.len(), 8, "each ran once");
    let (first, last) = (stamps.iter().min().unwrap(), stamps.iter().max().unwrap());
    // Eight uniform starts over 1 s all within 100 ms: about 1 in a million.
    assert!(
        *last - *first > Duration::from_millis(100),
        "spread: {:?}",
        *last - *first
    );
    let mut spec = every_minute("bad");
    spec.jitter_secs = 7200;
    assert_eq!(
        s.sched
            .register(spec, Arc::new(Probe::default()))
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::Invalid
    );
}

/// Panics on its first run, succeeds after.
#[derive(Default)]
struct PanicsOnce(Mutex<u32>);

#[async_trait::async_trait]
impl Job for PanicsOnce {
    async fn run(&self, _: JobContext) -> Result<()> {
        let first = {
            let mut n = self.0.lock().unwrap();
            *n += 1;
            *n == 1
        };
        if first {
            panic!("the job's own bug");
        }
        Ok(())
    }
}

#[tokio::test]
async fn a_panicking_job_is_a_failed_run_and_the_scheduler_goes_on() {
    let s = setup("2026-05-01T10:00:30Z");
    let mut spec = every_minute("buggy");
    spec.retry_delays_secs = vec![];
    let job = Arc::new(PanicsOnce::default());
    s.sched.register(spec, job.clone()).await.unwrap();
    s.at("2026-05-01T10:01:00Z").await;
    let runs = s.store.job_runs("buggy", 10).await.unwrap();
    assert_eq!(runs[0].status, RunStatus::Failed);
    assert!(
        runs[0]
            .error
            .as_deref()
            .unwrap()
            .ends_with("the job panicked"),
        "{:?}",
        runs[0].error
    );
    s.at("2026-05-01T10:02:00Z").await;
    assert_eq!(
        s.statuses("buggy").await,
        [(RunStatus::Failed, 1), (RunStatus::Succeeded, 1)]
    );
    assert_eq!(*job.0.lock().unwrap(), 2);
}

#[tokio::test]
async fn a_tick_is_claimed_as_running_with_its_lease_while_the_job_works() {
    let s = setup("2026-05-01T10:00:30Z");
    let gate = Arc::new(Semaphore::new(0));
    let probe = Arc::new(Probe {
        gate: Some(gate.clone()),
        ..Default::default()
    });
    s.sched
        .register(every_minute("gated"), probe.clone())
        .await
        .unwrap();
    s.clock.set(utc("2026-05-01T10:01:00.250Z"));
    s.sched.run_due().await;
    for _ in 0..100 {
        if !probe.ticks().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let runs = s.store.job_runs("gated", 10).await.unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].status, RunStatus::Running);
    assert_eq!(runs[0].scheduled_at, utc("2026-05-01T10:01:00Z"));
    assert_eq!(runs[0].started_at, Some(utc("2026-05-01T10:01:00.250Z")));
    assert_eq!(
        runs[0].lease_until,
        Some(utc("2026-05-01T10:01:30.250Z")),
        "held for the default 30 s lease"
    );
    assert!(s.sched.get("gated").await.unwrap().running);
    gate.add_permits(1);
    s.sched.idle().await;
    assert_eq!(s.statuses("gated").await, [(RunStatus::Succeeded, 1)]);
}
