//! The scheduler's table of registered jobs: each job's state, and the
//! index of next ticks that lets the loop touch only due jobs.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use alertkit_core::{Job, JobRun, JobSpec, Overlap};
use chrono::{DateTime, Utc};

use crate::schedule::Compiled;

pub(crate) struct Entry {
    pub(crate) spec: Arc<JobSpec>,
    pub(crate) job: Arc<dyn Job>,
    /// Shared, so the loop computes next ticks outside the table's lock.
    pub(crate) compiled: Arc<Compiled>,
    pub(crate) paused: bool,
    /// Ticks up to here were handled (run, claimed elsewhere, or skipped).
    pub(crate) checked: DateTime<Utc>,
    /// The first tick after `checked` (kept so a loop over many jobs
    /// compares instants instead of computing schedules).
    pub(crate) next: Option<DateTime<Utc>>,
    /// Runs of this job in progress in this instance.
    pub(crate) running: usize,
    /// Ticks waiting for the running one ([`Overlap::Queue`]).
    pub(crate) queued: VecDeque<DateTime<Utc>>,
    /// A failed run waiting for its retry, and when.
    pub(crate) retry: Option<(JobRun, DateTime<Utc>)>,
}

/// The registered jobs, with an index of their next ticks so the loop
/// touches only the jobs that are due, however many are registered.
#[derive(Default)]
pub(crate) struct Jobs {
    pub(crate) map: HashMap<String, Entry>,
    /// (next tick, job id) of every job with a next tick.
    pub(crate) timeline: std::collections::BTreeSet<(DateTime<Utc>, String)>,
    /// Jobs with a retry waiting.
    pub(crate) retrying: std::collections::BTreeSet<String>,
    /// The paused set last read from the store.
    pub(crate) paused: Vec<String>,
}

impl std::ops::Deref for Jobs {
    type Target = HashMap<String, Entry>;
    fn deref(&self) -> &Self::Target {
        &self.map
    }
}

impl std::ops::DerefMut for Jobs {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.map
    }
}

impl Jobs {
    /// Sets a job's next tick, keeping the index in step.
    pub(crate) fn set_next(&mut self, id: &str, next: Option<DateTime<Utc>>) {
        let Some(e) = self.map.get_mut(id) else {
            return;
        };
        if let Some(old) = e.next.take() {
            self.timeline.remove(&(old, id.to_owned()));
        }
        e.next = next;
        if let Some(n) = next {
            self.timeline.insert((n, id.to_owned()));
        }
    }

    /// Marks ticks up to `t` handled; the next tick follows the schedule.
    pub(crate) fn set_checked(&mut self, id: &str, t: DateTime<Utc>) {
        let next = match self.map.get_mut(id) {
            Some(e) => {
                e.checked = t;
                e.compiled.next_after(t)
            }
            None => return,
        };
        self.set_next(id, next);
    }

    /// Takes the jobs with a tick or a retry due at `now` out of the
    /// index: each with its first due tick (`None` for a retry only). Their
    /// next tick is then unset; the caller sets it again.
    pub(crate) fn take_due(&mut self, now: DateTime<Utc>) -> Vec<(String, Option<DateTime<Utc>>)> {
        let mut due = Vec::new();
        while self.timeline.first().is_some_and(|(t, _)| *t <= now) {
            let Some((t, id)) = self.timeline.pop_first() else {
                break;
            };
            if let Some(e) = self.map.get_mut(&id) {
                e.next = None;
            }
            due.push((id, Some(t)));
        }
        for id in &self.retrying {
            let retry_due = self
                .map
                .get(id)
                .and_then(|e| e.retry.as_ref())
                .is_some_and(|(_, at)| *at <= now);
            if retry_due && !due.iter().any(|(d, _)| d == id) {
                due.push((id.clone(), None));
            }
        }
        due
    }

    /// The soonest tick or retry.
    pub(crate) fn soonest(&self) -> Option<DateTime<Utc>> {
        let tick = self.timeline.iter().next().map(|(t, _)| *t);
        let retry = self
            .retrying
            .iter()
            .filter_map(|id| self.map.get(id)?.retry.as_ref().map(|(_, at)| *at))
            .min();
        tick.into_iter().chain(retry).min()
    }

    /// Removes a job and its index entries.
    pub(crate) fn remove_job(&mut self, id: &str) {
        self.set_next(id, None);
        self.retrying.remove(id);
        self.map.remove(id);
    }
}

impl Entry {
    /// Starts `tick` unless a run is in progress, in which case the overlap
    /// policy skips or queues it.
    pub(crate) fn offer(&mut self, id: &str, tick: DateTime<Utc>, starts: &mut Vec<Start>) {
        if self.running > 0 || self.retry.is_some() {
            self.offer_later(id, tick);
        } else {
            self.running += 1;
            starts.push(Start::Tick(id.to_owned(), tick));
        }
    }

    /// A tick that comes while a run is in progress (or about to start).
    pub(crate) fn offer_later(&mut self, id: &str, tick: DateTime<Utc>) {
        match self.spec.overlap {
            Overlap::Skip => {
                tracing::info!(job = %id, %tick, "tick skipped: the job is still running");
            }
            Overlap::Queue => self.queued.push_back(tick),
        }
    }
}

/// A run this instance holds; saves of it go through its lock, so a
/// renewal never overwrites a newer state. `None` once let go.
pub(crate) type Held = Arc<tokio::sync::Mutex<Option<JobRun>>>;

/// What the loop decided to start, worked out under the lock.
pub(crate) enum Start {
    Tick(String, DateTime<Utc>),
    Retry(String, JobRun),
}
