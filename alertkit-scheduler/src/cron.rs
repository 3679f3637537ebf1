//! [`CronScheduler`]: the [`Scheduler`] of alertkit, on Tokio.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use alertkit_core::{
    AlertKit, Audience, Clock, Error, JobContext, JobInfo, JobRun, JobStore, MisfirePolicy,
    NewAlert, Principal, Result, RunStatus, Severity, SystemClock,
};
use chrono::{DateTime, Utc};
use futures::FutureExt;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

use crate::table::{Entry, Held, Jobs, Start};

/// The scheduler's settings.
#[derive(Debug, Clone)]
pub struct SchedulerConfig {
    /// Longest sleep of the loop between checks (default 1 s); it wakes
    /// earlier for the next tick.
    pub poll: Duration,
    /// With [`MisfirePolicy::Skip`], a tick this late still runs (default
    /// 60 s); older ones are skipped.
    pub misfire_grace: Duration,
    /// With [`MisfirePolicy::CatchUp`], most missed ticks run per job
    /// (default 100).
    pub max_catch_up: usize,
    /// Consecutive failed runs of a job that raise a `job_failed` alert
    /// (default 3; 0 turns it off). The next success resolves it.
    pub failure_alert_after: u32,
    /// How long a claimed run is held (default 30 s). The loop of the
    /// instance running it renews the lease once a third of it has passed;
    /// if the instance dies, another takes the run over once the lease lapses
    /// (checked every half lease). Keep it well above `poll`.
    pub lease: Duration,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        SchedulerConfig {
            poll: Duration::from_secs(1),
            misfire_grace: Duration::from_secs(60),
            max_catch_up: 100,
            failure_alert_after: 3,
            lease: Duration::from_secs(30),
        }
    }
}

/// How early the loop wakes before a tick, to yield its way to it.
const APPROACH: Duration = Duration::from_micros(1500);

/// Runs registered jobs on their schedules, each tick once across every
/// instance sharing the [`JobStore`]: see the [crate docs](crate).
#[derive(Clone)]
pub struct CronScheduler {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) store: Arc<dyn JobStore>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) config: SchedulerConfig,
    pub(crate) jobs: Mutex<Jobs>,
    pub(crate) alerts: Option<(AlertKit, Audience)>,
    pub(crate) tasks: Mutex<Vec<JoinHandle<()>>>,
    pub(crate) wake: Notify,
    /// When the loop last looked for runs whose instance died.
    pub(crate) stale_checked: Mutex<Option<DateTime<Utc>>>,
    /// The runs this instance holds (running, or waiting for a retry), by
    /// id; their leases are renewed by the loop. Saves of held runs go
    /// through this lock, so a renewal never overwrites a newer state.
    pub(crate) held: Mutex<std::collections::HashMap<uuid::Uuid, Held>>,
    /// When the spawned loop last made a pass, and the store's last error
    /// with when it happened: what [`CronScheduler::health`] reports.
    pub(crate) pulse: Mutex<Pulse>,
}

#[derive(Default)]
pub(crate) struct Pulse {
    last_pass: Option<std::time::Instant>,
    store_error: Option<(std::time::Instant, String)>,
}

impl std::fmt::Debug for CronScheduler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut jobs: Vec<String> = self.jobs().keys().cloned().collect();
        jobs.sort_unstable();
        f.debug_struct("CronScheduler")
            .field("jobs", &jobs)
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

/// Builds a [`CronScheduler`].
pub struct CronSchedulerBuilder {
    store: Arc<dyn JobStore>,
    clock: Arc<dyn Clock>,
    config: SchedulerConfig,
    alerts: Option<(AlertKit, Audience)>,
}

impl CronSchedulerBuilder {
    /// The clock (the system clock by default).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The settings.
    pub fn config(mut self, config: SchedulerConfig) -> Self {
        self.config = config;
        self
    }

    /// Raises a `job_failed` alert through `kit` for `audience` when a job
    /// fails [`failure_alert_after`](SchedulerConfig::failure_alert_after)
    /// times in a row, and resolves it on its next success.
    pub fn failure_alerts(mut self, kit: AlertKit, audience: Audience) -> Self {
        self.alerts = Some((kit, audience));
        self
    }

    /// Builds it.
    pub fn build(self) -> CronScheduler {
        CronScheduler {
            inner: Arc::new(Inner {
                store: self.store,
                clock: self.clock,
                config: self.config,
                jobs: Mutex::new(Jobs::default()),
                alerts: self.alerts,
                tasks: Mutex::new(Vec::new()),
                wake: Notify::new(),
                stale_checked: Mutex::new(None),
                held: Mutex::new(std::collections::HashMap::new()),
                pulse: Mutex::new(Pulse::default()),
            }),
        }
    }
}

/// A running scheduler loop (from [`CronScheduler::spawn`]).
#[derive(Debug)]
pub struct SchedulerHandle {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
    scheduler: CronScheduler,
}

impl SchedulerHandle {
    /// Stops starting runs and waits for the runs in progress to finish.
    pub async fn shutdown(self) {
        self.stop.send_replace(true);
        let _ = self.task.await;
        self.scheduler.idle().await;
    }

    /// Stops at once, as a crash would: runs in progress are cut off.
    pub fn abort(self) {
        self.task.abort();
        for t in self.scheduler.take_tasks() {
            t.abort();
        }
    }
}

impl CronScheduler {
    /// A scheduler claiming ticks in `store`.
    pub fn builder(store: Arc<dyn JobStore>) -> CronSchedulerBuilder {
        CronSchedulerBuilder {
            store,
            clock: Arc::new(SystemClock),
            config: SchedulerConfig::default(),
            alerts: None,
        }
    }

    pub(crate) fn jobs(&self) -> MutexGuard<'_, Jobs> {
        self.inner.jobs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Keeps a task's handle for [`idle`](Self::idle) and shutdown,
    /// dropping the handles of tasks already done so the list stays short.
    fn track(&self, handle: JoinHandle<()>) {
        let mut tasks = self.inner.tasks.lock().unwrap_or_else(|p| p.into_inner());
        if tasks.len() >= 64 && tasks.len().is_power_of_two() {
            tasks.retain(|t| !t.is_finished());
        }
        tasks.push(handle);
    }

    fn take_tasks(&self) -> Vec<JoinHandle<()>> {
        std::mem::take(&mut *self.inner.tasks.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Waits until no run started by this instance is in progress.
    pub async fn idle(&self) {
        loop {
            let tasks = self.take_tasks();
            if tasks.is_empty() {
                return;
            }
            for t in tasks {
                let _ = t.await;
            }
        }
    }

    /// Starts the runs due at the clock's now (ticks, queued ticks and
    /// retries) and returns how many it started; it does not wait for them
    /// ([`idle`](Self::idle) does). The loop of [`spawn`](Self::spawn) calls
    /// this; tests on a manual clock call it directly.
    pub async fn run_due(&self) -> usize {
        let now = self.inner.clock.now();
        let grace = chrono::Duration::from_std(self.inner.config.misfire_grace)
            .unwrap_or(chrono::Duration::MAX);
        let max = self.inner.config.max_catch_up.max(1);
        // On-time ticks (the common case) start before any schedule is
        // computed: the loop only compares cached instants here, and walks
        // the schedules once the claims are on their way.
        let mut on_time_jobs = Vec::new();
        let starts = {
            let mut guard = self.jobs();
            let jobs = &mut *guard;
            let mut starts = Vec::new();
            for (id, first) in jobs.take_due(now) {
                let Some(e) = jobs.map.get_mut(&id) else {
                    continue;
                };
                if let Some((run, at)) = &e.retry
                    && *at <= now
                    && !e.paused
                {
                    starts.push(Start::Retry(id.clone(), run.clone()));
                    e.retry = None;
                    e.running += 1;
                    jobs.retrying.remove(&id);
                }
                let (Some(first), Some(e)) = (first, jobs.map.get_mut(&id)) else {
                    continue;
                };
                if !e.paused && now - first <= grace {
                    e.checked = first;
                    e.offer(&id, first, &mut starts);
                    on_time_jobs.push(id);
                    continue;
                }
                let id = &id;
                // Late (or paused): walk every due tick, then apply the
                // misfire policy. Ticks late by more than the grace were
                // missed; the others run whatever the policy.
                let mut due = vec![first];
                let mut next = e.compiled.next_after(first);
                while let Some(n) = next.filter(|n| *n <= now) {
                    if due.len() >= max {
                        // Far behind: stop walking; the rest is skipped.
                        next = e.compiled.next_after(now);
                        break;
                    }
                    due.push(n);
                    next = e.compiled.next_after(n);
                }
                let last = due[due.len() - 1];
                e.checked = last;
                let paused = e.paused;
                jobs.set_next(id, next);
                let Some(e) = jobs.map.get_mut(id) else {
                    continue;
                };
                if paused {
                    continue;
                }
                let (late, on_time): (Vec<_>, Vec<_>) =
                    due.into_iter().partition(|t| now - *t > grace);
                let ticks: Vec<DateTime<Utc>> = match e.spec.misfire {
                    MisfirePolicy::Skip => on_time,
                    MisfirePolicy::RunOnce if on_time.is_empty() => vec![last],
                    MisfirePolicy::RunOnce => on_time,
                    MisfirePolicy::CatchUp => late.into_iter().chain(on_time).collect(),
                };
                for (i, t) in ticks.into_iter().enumerate() {
                    // Missed ticks being caught up run one after another.
                    if i > 0 {
                        e.queued.push_back(t);
                    } else {
                        e.offer(id, t, &mut starts);
                    }
                }
            }
            starts
        };
        let n = starts.len();
        // The due ticks are claimed in one store call before anything else
        // (a second with a thousand due ticks should not start its last job
        // a thousand round trips late); retries were claimed already.
        let mut ticks = Vec::with_capacity(starts.len());
        for s in starts {
            match s {
                Start::Tick(id, tick) => ticks.push((id, tick)),
                Start::Retry(id, run) => self.spawn_run(id, run),
            }
        }
        self.start_ticks(ticks, false).await;
        // The runs just spawned go first; the schedules below are for later
        // ticks.
        tokio::task::yield_now().await;
        // The schedules of the jobs started on time: later ticks that are
        // also due already (a loop that fell a little behind) are queued;
        // then the next future tick. Computed outside the lock, which the
        // runs just claimed need too.
        let walks: Vec<_> = {
            let jobs = self.jobs();
            on_time_jobs
                .into_iter()
                .filter_map(|id| {
                    let e = jobs.map.get(&id)?;
                    Some((id, e.compiled.clone(), e.checked))
                })
                .collect()
        };
        let walked: Vec<_> = walks
            .into_iter()
            .map(|(id, compiled, checked)| {
                let mut due = Vec::new();
                let mut next = compiled.next_after(checked);
                while let Some(t) = next.filter(|t| *t <= now) {
                    if due.len() >= max {
                        next = compiled.next_after(now);
                        break;
                    }
                    due.push(t);
                    next = compiled.next_after(t);
                }
                (id, compiled, checked, due, next)
            })
            .collect();
        {
            let mut jobs = self.jobs();
            for (id, compiled, checked, due, next) in walked {
                let Some(e) = jobs.map.get_mut(&id) else {
                    continue;
                };
                if !Arc::ptr_eq(&e.compiled, &compiled) || e.checked != checked {
                    // Registered again meanwhile: its own schedule stands.
                    continue;
                }
                if let Some(last) = due.last() {
                    e.checked = *last;
                }
                // Due but not missed: they run, one after another.
                e.queued.extend(due);
                jobs.set_next(&id, next);
            }
        }
        // Bookkeeping that talks to the store comes after the due ticks
        // are on their way: pause flags set elsewhere, lease renewals, and
        // runs of dead instances.
        self.sync_paused(now).await;
        self.renew_held(now).await;
        n + self.take_over_stale(now).await
    }

    /// Follows the stored pause flags (another instance may have changed
    /// them). Ticks that fell while a job was paused are not run.
    async fn sync_paused(&self, now: DateTime<Utc>) {
        let paused = match self.inner.store.paused_jobs().await {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(error = %e, "reading paused jobs failed");
                self.store_failed(&e);
                return;
            }
        };
        let mut jobs = self.jobs();
        if jobs.paused == paused {
            return;
        }
        let ids: Vec<String> = jobs.map.keys().cloned().collect();
        for id in ids {
            let now_paused = paused.contains(&id);
            let Some(e) = jobs.map.get_mut(&id) else {
                continue;
            };
            let resumed = e.paused && !now_paused;
            e.paused = now_paused;
            if resumed {
                let t = e.checked.max(now);
                jobs.set_checked(&id, t);
            }
        }
        jobs.paused = paused;
    }

    /// Every half lease, takes over the runs of registered jobs whose
    /// instance stopped renewing them, and runs them here.
    async fn take_over_stale(&self, now: DateTime<Utc>) -> usize {
        let lease = self.lease();
        {
            let mut last = self
                .inner
                .stale_checked
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if last.is_some_and(|t| now - t < lease / 2) {
                return 0;
            }
            *last = Some(now);
        }
        let ids: Vec<String> = self.jobs().keys().cloned().collect();
        if ids.is_empty() {
            return 0;
        }
        let taken = match self
            .inner
            .store
            .claim_stale_job_runs(&ids, now, now + lease, 100)
            .await
        {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(error = %e, "looking for abandoned job runs failed");
                self.store_failed(&e);
                return 0;
            }
        };
        let n = taken.len();
        for run in taken {
            tracing::warn!(job = %run.job_id, tick = %run.scheduled_at, attempt = run.attempt, "taking over a job run whose instance stopped");
            if let Some(e) = self.jobs().get_mut(&run.job_id) {
                e.running += 1;
            }
            self.spawn_run(run.job_id.clone(), run);
        }
        n
    }

    pub(crate) fn lease(&self) -> chrono::Duration {
        chrono::Duration::from_std(self.inner.config.lease).unwrap_or(chrono::Duration::seconds(30))
    }

    /// Claims `tick` of a job (its `running` count already taken) and runs
    /// it if this instance got it; releases the count otherwise.
    pub(crate) async fn start_tick(
        &self,
        id: String,
        tick: DateTime<Utc>,
        manual: bool,
    ) -> Option<JobRun> {
        self.start_ticks(vec![(id, tick)], manual)
            .await
            .into_iter()
            .next()
            .flatten()
    }

    /// Claims ticks in one store call and starts the runs won; for each
    /// tick, its run, or `None` if another instance has it. A job without
    /// jitter is claimed straight as `running`, so its body starts after a
    /// single round trip to the store.
    pub(crate) async fn start_ticks(
        &self,
        ticks: Vec<(String, DateTime<Utc>)>,
        manual: bool,
    ) -> Vec<Option<JobRun>> {
        let now = self.inner.clock.now();
        let lease_until = Some(now + self.lease());
        let runs: Vec<JobRun> = {
            let jobs = self.jobs();
            ticks
                .into_iter()
                .map(|(id, tick)| {
                    let at_once = jobs.get(&id).is_some_and(|e| e.spec.jitter_secs == 0);
                    JobRun {
                        id: uuid::Uuid::now_v7(),
                        job_id: id,
                        scheduled_at: tick,
                        started_at: at_once.then_some(now),
                        finished_at: None,
                        status: if at_once {
                            RunStatus::Running
                        } else {
                            RunStatus::Pending
                        },
                        error: None,
                        attempt: 1,
                        lease_until,
                    }
                })
                .collect()
        };
        let claimed = match runs.as_slice() {
            [] => return Vec::new(),
            [one] => self.inner.store.claim_job_run(one).await.map(|c| vec![c]),
            many => self.inner.store.claim_job_runs(many).await,
        };
        let claimed = claimed.unwrap_or_else(|e| {
            tracing::warn!(ticks = runs.len(), error = %e, "claiming job ticks failed");
            self.store_failed(&e);
            vec![false; runs.len()]
        });
        runs.into_iter()
            .zip(claimed.into_iter().chain(std::iter::repeat(false)))
            .map(|(run, won)| {
                if !won {
                    if !manual {
                        tracing::debug!(job = %run.job_id, tick = %run.scheduled_at, "tick taken by another instance");
                    }
                    self.finished(&run.job_id);
                    return None;
                }
                self.spawn_run(run.job_id.clone(), run.clone());
                Some(run)
            })
            .collect()
    }

    pub(crate) fn spawn_run(&self, id: String, run: JobRun) {
        let me = self.clone();
        let handle = tokio::spawn(async move { me.execute(id, run).await });
        self.track(handle);
    }

    /// One attempt of a claimed run: running, then succeeded, failed, or
    /// pending again for its retry.
    async fn execute(&self, id: String, mut run: JobRun) {
        let Some((job, spec)) = self
            .jobs()
            .get(&id)
            .map(|e| (e.job.clone(), e.spec.clone()))
        else {
            return;
        };
        if spec.jitter_secs > 0 && run.attempt == 1 {
            // Spread the start. The tick is already ours; held, its lease is
            // renewed while it waits.
            if !self.save_held(&run, true).await {
                self.finished(&id);
                return;
            }
            let spread =
                Duration::from_secs(spec.jitter_secs).mul_f64(alertkit_core::id::unit_random());
            tokio::time::sleep(spread).await;
        }
        if run.status == RunStatus::Running {
            // Claimed straight as running: nothing to save yet, but its
            // lease is renewed from now on.
            self.hold(&run);
        } else {
            run.status = RunStatus::Running;
            run.started_at = Some(self.inner.clock.now());
            run.finished_at = None;
            run.lease_until = Some(self.inner.clock.now() + self.lease());
            if !self.save_held(&run, true).await {
                // Taken over by another instance meanwhile: its run counts.
                self.finished(&id);
                return;
            }
        }
        let ctx = JobContext {
            job_id: id.clone(),
            scheduled_at: run.scheduled_at,
        };
        // A panicking job is a failed run, not a dead scheduler; a job that
        // times out is dropped where it waits.
        let started = std::time::Instant::now();
        // Everything the job logs (the alerts it raises among it) carries
        // the job, the run and the attempt.
        let span = tracing::info_span!(
            "job_run",
            job = %id,
            run_id = %run.id,
            attempt = run.attempt,
            alert_id = tracing::field::Empty,
        );
        let work = std::panic::AssertUnwindSafe(tracing::Instrument::instrument(
            job.run(ctx),
            span.clone(),
        ))
        .catch_unwind();
        let result = match spec.timeout_secs {
            Some(secs) => match tokio::time::timeout(Duration::from_secs(secs), work).await {
                Ok(caught) => caught_result(caught),
                Err(_) => Err(Error::Unavailable(format!("timed out after {secs} s"))),
            },
            None => caught_result(work.await),
        };
        let now = self.inner.clock.now();
        run.finished_at = Some(now);
        run.lease_until = None;
        metrics::histogram!(alertkit_core::telemetry::JOB_RUN_SECONDS, "job" => id.clone())
            .record(started.elapsed().as_secs_f64());
        let outcome = match (
            &result,
            spec.retry_delays_secs.len() >= run.attempt as usize,
        ) {
            (Ok(()), _) => "succeeded",
            (Err(_), true) => "retrying",
            (Err(_), false) => "failed",
        };
        metrics::counter!(alertkit_core::telemetry::JOB_RUNS, "job" => id.clone(), "status" => outcome)
            .increment(1);
        match &result {
            Ok(()) => {
                tracing::debug!(parent: &span, took_ms = started.elapsed().as_millis() as u64, "job run succeeded")
            }
            Err(e) => {
                tracing::warn!(parent: &span, took_ms = started.elapsed().as_millis() as u64, error = %e, outcome, "job run failed")
            }
        }
        match result {
            Ok(()) => {
                run.status = RunStatus::Succeeded;
                run.error = None;
                self.save_held(&run, false).await;
                self.clear_failure_alert(&id).await;
            }
            Err(e) => {
                run.error = Some(e.to_string());
                let delay = spec
                    .retry_delays_secs
                    .get(run.attempt.saturating_sub(1) as usize)
                    .copied();
                match delay {
                    Some(secs) => {
                        let at = now
                            + chrono::Duration::seconds(i64::try_from(secs).unwrap_or(i64::MAX));
                        run.status = RunStatus::Pending;
                        // Still held (and renewed) until the retry, so a dead
                        // instance's retry is taken over, not lost.
                        run.lease_until = Some(now + self.lease());
                        self.save_held(&run, true).await;
                        tracing::info!(job = %id, attempt = run.attempt, error = %e, "job run failed; will retry");
                        let mut next = run.clone();
                        next.attempt += 1;
                        let mut jobs = self.jobs();
                        if let Some(entry) = jobs.map.get_mut(&id) {
                            entry.retry = Some((next, at));
                            jobs.retrying.insert(id.clone());
                        }
                        drop(jobs);
                        // The loop may be asleep past the retry's time.
                        self.inner.wake.notify_one();
                    }
                    None => {
                        run.status = RunStatus::Failed;
                        self.save_held(&run, false).await;
                        tracing::warn!(job = %id, attempt = run.attempt, error = %e, "job run failed");
                        self.check_failure_streak(&id, &run).await;
                    }
                }
            }
        }
        self.finished(&id);
    }

    /// A run of `id` ended (or was not ours): the next queued tick, if any, starts.
    pub(crate) fn finished(&self, id: &str) {
        let next = {
            let mut jobs = self.jobs();
            let Some(e) = jobs.get_mut(id) else {
                return;
            };
            e.running = e.running.saturating_sub(1);
            if e.running == 0 && e.retry.is_none() && !e.paused {
                e.queued.pop_front().inspect(|_| e.running += 1)
            } else {
                None
            }
        };
        if let Some(tick) = next {
            let me = self.clone();
            let id = id.to_owned();
            let handle = tokio::spawn(async move {
                me.start_tick(id, tick, false).await;
            });
            self.track(handle);
        }
    }

    /// Saves a run's state; `false` if another instance took it over.
    async fn save(&self, run: &JobRun) -> bool {
        match self.inner.store.update_job_run(run).await {
            Ok(()) => true,
            Err(Error::Conflict(_)) => {
                tracing::warn!(job = %run.job_id, "job run taken over by another instance");
                false
            }
            Err(e) => {
                tracing::warn!(job = %run.job_id, error = %e, "saving a job run failed");
                self.store_failed(&e);
                true
            }
        }
    }

    fn held(&self) -> MutexGuard<'_, std::collections::HashMap<uuid::Uuid, Held>> {
        self.inner.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Holds a run already saved as it is: the loop renews its lease.
    fn hold(&self, run: &JobRun) {
        self.held()
            .insert(run.id, Arc::new(tokio::sync::Mutex::new(Some(run.clone()))));
    }

    /// Saves a run this instance holds; keeps it held (its lease renewed
    /// by the loop) or lets it go. `false` if another instance took it over.
    async fn save_held(&self, run: &JobRun, keep: bool) -> bool {
        let slot = self
            .held()
            .entry(run.id)
            .or_insert_with(|| Arc::new(tokio::sync::Mutex::new(None)))
            .clone();
        let mut current = slot.lock().await;
        let ok = self.save(run).await;
        if ok && keep {
            *current = Some(run.clone());
        } else {
            // Let go: a renewal that still holds this slot sees `None`.
            *current = None;
            self.held().remove(&run.id);
        }
        ok
    }

    /// Renews the leases of the runs this instance holds once a third of
    /// the lease has passed; a run taken over meanwhile is let go.
    async fn renew_held(&self, now: DateTime<Utc>) {
        let lease = self.lease();
        let slots: Vec<Held> = self.held().values().cloned().collect();
        for slot in slots {
            let mut current = slot.lock().await;
            let Some(run) = current.as_mut() else {
                continue;
            };
            if run.lease_until.is_some_and(|l| l > now + lease * 2 / 3) {
                continue;
            }
            run.lease_until = Some(now + lease);
            let run = run.clone();
            if !self.save(&run).await {
                *current = None;
                self.held().remove(&run.id);
            }
        }
    }

    fn failure_key(id: &str) -> String {
        format!("job_failed:{id}")
    }

    async fn check_failure_streak(&self, id: &str, run: &JobRun) {
        let n = self.inner.config.failure_alert_after;
        let Some((kit, audience)) = &self.inner.alerts else {
            return;
        };
        if n == 0 {
            return;
        }
        let Ok(latest) = self.inner.store.job_runs(id, n).await else {
            return;
        };
        if latest.len() < n as usize || latest.iter().any(|r| r.status != RunStatus::Failed) {
            return;
        }
        let alert = NewAlert::new(
            "job_failed",
            Severity::High,
            format!("Job {id} failed {n} times in a row"),
        )
        .message(run.error.clone().unwrap_or_default())
        .tags([id.to_owned()])
        .audience(audience.clone())
        .dedup_key(Self::failure_key(id));
        if let Err(e) = kit.raise(&principal(), alert).await {
            tracing::warn!(job = %id, error = %e, "raising the job_failed alert failed");
        }
    }

    async fn clear_failure_alert(&self, id: &str) {
        if let Some((kit, _)) = &self.inner.alerts
            && let Err(e) = kit.resolve_key(&principal(), &Self::failure_key(id)).await
        {
            tracing::warn!(job = %id, error = %e, "resolving the job_failed alert failed");
        }
    }

    fn pulse(&self) -> MutexGuard<'_, Pulse> {
        self.inner.pulse.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn store_failed(&self, e: &Error) {
        self.pulse().store_error = Some((std::time::Instant::now(), e.to_string()));
    }

    /// This instance's scheduler as `/health` reports it. There is no
    /// leader: every instance claims ticks through the store, and holds a
    /// lease on each run it executes. Degraded when the loop has not made a
    /// pass lately (not spawned, or stuck), or when the store failed it
    /// within the last lease (ticks may be missed, leases may lapse).
    /// Details: `loop` (`running` / `stopped`), `last_pass_seconds`,
    /// `held_runs` (leases this instance holds), `lease_secs`, `jobs`.
    pub fn health(&self) -> alertkit_core::ComponentHealth {
        let config = &self.inner.config;
        let (last_pass, store_error) = {
            let p = self.pulse();
            (p.last_pass, p.store_error.clone())
        };
        let ago = last_pass.map(|t| t.elapsed());
        let alive = ago.is_some_and(|a| a <= (config.poll * 3).max(Duration::from_secs(5)));
        let mut details = serde_json::Map::new();
        details.insert(
            "loop".into(),
            (if alive { "running" } else { "stopped" }).into(),
        );
        details.insert(
            "last_pass_seconds".into(),
            ago.map_or(serde_json::Value::Null, |a| a.as_secs_f64().into()),
        );
        details.insert("held_runs".into(), self.held().len().into());
        details.insert("lease_secs".into(), config.lease.as_secs().into());
        details.insert("jobs".into(), self.jobs().map.len().into());
        if !alive {
            return alertkit_core::ComponentHealth::degraded(
                "the scheduler loop has not run lately",
                details,
            );
        }
        match store_error {
            Some((at, e)) if at.elapsed() < config.lease => {
                alertkit_core::ComponentHealth::degraded(format!("job store: {e}"), details)
            }
            _ => alertkit_core::ComponentHealth::ok(details),
        }
    }

    /// Runs the loop on the Tokio runtime until [`SchedulerHandle::shutdown`].
    pub fn spawn(&self) -> SchedulerHandle {
        let (stop, mut stopped) = watch::channel(false);
        let me = self.clone();
        let task = tokio::spawn(async move {
            loop {
                if *stopped.borrow() {
                    return;
                }
                me.run_due().await;
                me.pulse().last_pass = Some(std::time::Instant::now());
                let wait = me.until_next();
                // The timer is coarse (1 ms steps, rounded up, then the
                // thread's wake-up): sleep until just before the tick, and
                // yield the last stretch.
                tokio::select! {
                    _ = tokio::time::sleep(wait.saturating_sub(APPROACH)) => {
                        me.approach(wait).await;
                    }
                    _ = me.inner.wake.notified() => {}
                    _ = stopped.changed() => return,
                }
            }
        });
        SchedulerHandle {
            stop,
            task,
            scheduler: self.clone(),
        }
    }

    /// The last stretch before a tick, after a sleep of `wait` less
    /// [`APPROACH`]: yields to other tasks until the tick is due. Bounded in
    /// real time, so a clock that does not move (tests) cannot hold it.
    async fn approach(&self, wait: Duration) {
        if wait >= self.inner.config.poll {
            // Woken for the poll, not for a tick.
            return;
        }
        let started = std::time::Instant::now();
        while started.elapsed() < APPROACH * 2
            && self
                .jobs()
                .soonest()
                .is_some_and(|t| t > self.inner.clock.now())
        {
            tokio::task::yield_now().await;
        }
    }

    /// How long the loop may sleep: until the next tick or retry, at most `poll`.
    fn until_next(&self) -> Duration {
        let now = self.inner.clock.now();
        let soonest = self.jobs().soonest();
        let poll = self.inner.config.poll;
        match soonest {
            Some(t) => (t - now).to_std().unwrap_or(Duration::ZERO).min(poll),
            None => poll,
        }
    }

    pub(crate) fn info(&self, e: &Entry, last_run: Option<JobRun>) -> JobInfo {
        JobInfo {
            spec: (*e.spec).clone(),
            paused: e.paused,
            next_run: if e.paused {
                None
            } else {
                e.compiled.next_after(e.checked.max(self.inner.clock.now()))
            },
            last_run,
            running: e.running > 0,
        }
    }
}

fn caught_result(r: std::thread::Result<Result<()>>) -> Result<()> {
    r.unwrap_or_else(|_| Err(Error::Unavailable("the job panicked".into())))
}

/// Who raises and resolves the scheduler's own alerts.
fn principal() -> Principal {
    Principal::admin("scheduler")
}

#[async_trait::async_trait]
impl alertkit_core::HealthCheck for CronScheduler {
    fn name(&self) -> &str {
        "scheduler"
    }

    async fn check(&self) -> alertkit_core::ComponentHealth {
        self.health()
    }
}
