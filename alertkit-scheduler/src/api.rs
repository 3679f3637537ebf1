//! [`Scheduler`] for [`CronScheduler`]: registration and management.

use std::collections::VecDeque;
use std::sync::Arc;

use alertkit_core::{Error, Job, JobInfo, JobRun, JobSpec, Overlap, Result, Scheduler};
use async_trait::async_trait;

use crate::cron::CronScheduler;
use crate::schedule::Compiled;
use crate::table::Entry;

#[async_trait]
impl Scheduler for CronScheduler {
    async fn register(&self, spec: JobSpec, job: Arc<dyn Job>) -> Result<()> {
        spec.validate()?;
        let compiled = Compiled::new(&spec.schedule)?;

        // Ticks after the last recorded run count as missed (misfire
        // policy); a job never run starts from now.
        let last = self.inner.store.job_runs(&spec.id, 1).await?;
        let stored_pause = self.inner.store.paused_jobs().await?.contains(&spec.id);
        let now = self.inner.clock.now();
        let checked = last.first().map_or(now, |r| r.scheduled_at.min(now));
        let mut jobs = self.jobs();
        let (paused, running) = jobs
            .get(&spec.id)
            .map_or((stored_pause, 0), |e| (e.paused, e.running));
        let id = spec.id.clone();
        // A job registered again: its old index entries go.
        jobs.set_next(&id, None);
        jobs.retrying.remove(&id);
        jobs.insert(
            spec.id.clone(),
            Entry {
                spec: Arc::new(spec),
                job,
                compiled: Arc::new(compiled),
                paused,
                next: None,
                checked,
                running,
                queued: VecDeque::new(),
                retry: None,
            },
        );
        jobs.set_checked(&id, checked);
        drop(jobs);
        self.inner.wake.notify_one();
        Ok(())
    }

    async fn list(&self) -> Result<Vec<JobInfo>> {
        let mut ids: Vec<String> = self.jobs().keys().cloned().collect();
        ids.sort_unstable();
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Ok(info) = self.get(&id).await {
                out.push(info);
            }
        }
        Ok(out)
    }

    async fn get(&self, id: &str) -> Result<JobInfo> {
        if !self.jobs().contains_key(id) {
            return Err(Error::not_found(format!("job {id}")));
        }
        let last = self.inner.store.job_runs(id, 1).await?.into_iter().next();
        self.jobs()
            .get(id)
            .map(|e| self.info(e, last))
            .ok_or_else(|| Error::not_found(format!("job {id}")))
    }

    async fn pause(&self, id: &str) -> Result<()> {
        {
            let mut jobs = self.jobs();
            let e = jobs
                .get_mut(id)
                .ok_or_else(|| Error::not_found(format!("job {id}")))?;
            if e.spec.protected {
                return Err(Error::forbidden(format!("job {id} is protected")));
            }
            e.paused = true;
        }
        self.inner
            .store
            .set_job_paused(id, true, self.inner.clock.now())
            .await
    }

    async fn resume(&self, id: &str) -> Result<()> {
        let now = self.inner.clock.now();
        {
            let mut jobs = self.jobs();
            let e = jobs
                .get_mut(id)
                .ok_or_else(|| Error::not_found(format!("job {id}")))?;
            if e.paused {
                e.paused = false;
                // Ticks that fell while paused are not run.
                let t = e.checked.max(now);
                jobs.set_checked(id, t);
            }
        }
        self.inner.store.set_job_paused(id, false, now).await?;
        self.inner.wake.notify_one();
        Ok(())
    }

    async fn trigger(&self, id: &str) -> Result<JobRun> {
        {
            let mut jobs = self.jobs();
            let e = jobs
                .get_mut(id)
                .ok_or_else(|| Error::not_found(format!("job {id}")))?;
            if (e.running > 0 || e.retry.is_some()) && e.spec.overlap == Overlap::Skip {
                return Err(Error::Conflict(format!("job {id} is already running")));
            }
            e.running += 1;
        }
        self.start_tick(id.to_owned(), self.inner.clock.now(), true)
            .await
            .ok_or_else(|| Error::Conflict(format!("job {id} was just run for this instant")))
    }

    async fn remove(&self, id: &str) -> Result<()> {
        let mut jobs = self.jobs();
        match jobs.get(id) {
            None => Err(Error::not_found(format!("job {id}"))),
            Some(e) if e.spec.protected => Err(Error::forbidden(format!("job {id} is protected"))),
            Some(_) => {
                jobs.remove_job(id);
                Ok(())
            }
        }
    }

    async fn runs(&self, id: &str, limit: u32) -> Result<Vec<JobRun>> {
        if !self.jobs().contains_key(id) {
            return Err(Error::not_found(format!("job {id}")));
        }
        self.inner.store.job_runs(id, limit.clamp(1, 1000)).await
    }
}
