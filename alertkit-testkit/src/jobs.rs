//! Conformance cases for the store role of this name. Each takes a fresh,
//! empty store.

use alertkit_core::{Error, JobRun, JobStore, RunStatus};
use chrono::Duration;

use crate::fixtures::at;

fn run(job: &str, tick: i64) -> JobRun {
    JobRun {
        id: uuid::Uuid::now_v7(),
        job_id: job.into(),
        scheduled_at: at(tick),
        started_at: None,
        finished_at: None,
        status: RunStatus::Pending,
        error: None,
        attempt: 1,
        lease_until: Some(at(tick) + Duration::minutes(1)),
    }
}

/// Each (job, tick) is claimed once, also by concurrent claimers.
pub async fn job_run_claimed_once_per_tick(store: &dyn JobStore) {
    assert!(store.claim_job_run(&run("forecast", 120)).await.unwrap());
    assert!(
        !store.claim_job_run(&run("forecast", 120)).await.unwrap(),
        "same tick twice"
    );
    assert!(store.claim_job_run(&run("forecast", 240)).await.unwrap());
    assert!(
        store.claim_job_run(&run("retention", 120)).await.unwrap(),
        "other job, same tick"
    );
    let claims: Vec<JobRun> = (0..8).map(|_| run("rules", 1)).collect();
    let results = futures::future::join_all(claims.iter().map(|r| store.claim_job_run(r))).await;
    let won = results.into_iter().filter(|r| *r.as_ref().unwrap()).count();
    assert_eq!(won, 1, "exactly one of eight instances runs the tick");
}

/// Runs are updated through their life and listed newest tick first.
pub async fn job_runs_update_and_list(store: &dyn JobStore) {
    let mut runs = Vec::new();
    for tick in [0, 120, 240] {
        let r = run("forecast", tick);
        assert!(store.claim_job_run(&r).await.unwrap());
        runs.push(r);
    }
    let mut r = runs[2].clone();
    r.status = RunStatus::Running;
    r.started_at = Some(at(240) + Duration::milliseconds(5));
    store.update_job_run(&r).await.unwrap();
    r.status = RunStatus::Failed;
    r.attempt = 3;
    r.finished_at = Some(at(241));
    r.error = Some("model did not converge: 'nan'".into());
    store.update_job_run(&r).await.unwrap();

    let listed = store.job_runs("forecast", 10).await.unwrap();
    assert_eq!(listed.len(), 3);
    assert_eq!(listed[0], r, "every field round-trips");
    let ticks: Vec<_> = listed.iter().map(|r| r.scheduled_at).collect();
    assert_eq!(ticks, vec![at(240), at(120), at(0)]);
    assert_eq!(store.job_runs("forecast", 2).await.unwrap().len(), 2);
    assert!(store.job_runs("other", 10).await.unwrap().is_empty());
    assert!(matches!(
        store.update_job_run(&run("ghost", 5)).await,
        Err(Error::NotFound(_))
    ));
}

/// A run whose instance stopped renewing its lease is taken over once, with
/// one more attempt; the instance that lost it can no longer save it.
pub async fn job_runs_taken_over_when_the_lease_lapses(store: &dyn JobStore) {
    let jobs = vec!["forecast".to_string(), "sla".to_string()];
    let mut held = run("forecast", 0);
    assert!(store.claim_job_run(&held).await.unwrap());
    held.status = RunStatus::Running;
    held.started_at = Some(at(0));
    store.update_job_run(&held).await.unwrap();
    let other = run("unknown_here", 0);
    assert!(store.claim_job_run(&other).await.unwrap());
    // The lease holds until minute 1.
    assert!(
        store
            .claim_stale_job_runs(&jobs, at(0), at(2), 10)
            .await
            .unwrap()
            .is_empty()
    );
    // Renewed to minute 3: still held at minute 2.
    held.lease_until = Some(at(3));
    store.update_job_run(&held).await.unwrap();
    assert!(
        store
            .claim_stale_job_runs(&jobs, at(2), at(4), 10)
            .await
            .unwrap()
            .is_empty(),
        "a renewed lease holds"
    );
    // Its instance died: at minute 3 exactly one of eight instances takes it.
    let tries = futures::future::join_all(
        (0..8).map(|_| store.claim_stale_job_runs(&jobs, at(3), at(5), 10)),
    )
    .await;
    let taken: Vec<JobRun> = tries.into_iter().flat_map(|r| r.unwrap()).collect();
    assert_eq!(taken.len(), 1, "taken over once: {taken:?}");
    let t = &taken[0];
    assert_eq!(
        (t.id, t.status, t.attempt),
        (held.id, RunStatus::Pending, 2)
    );
    assert_eq!(t.lease_until, Some(at(5)));
    // Runs of jobs the caller does not know are left alone.
    assert_eq!(
        store.job_runs("unknown_here", 1).await.unwrap()[0].attempt,
        1
    );
    // The old holder comes back and tries to save its attempt: refused.
    held.status = RunStatus::Succeeded;
    assert!(matches!(
        store.update_job_run(&held).await,
        Err(Error::Conflict(_))
    ));
    // Finished runs are never taken over.
    let mut done = t.clone();
    done.status = RunStatus::Succeeded;
    store.update_job_run(&done).await.unwrap();
    assert!(
        store
            .claim_stale_job_runs(&jobs, at(60), at(61), 10)
            .await
            .unwrap()
            .is_empty()
    );
}

/// Pause is stored: every instance sees it, and resume clears it.
pub async fn job_pause_is_stored(store: &dyn JobStore) {
    assert!(store.paused_jobs().await.unwrap().is_empty());
    store.set_job_paused("forecast", true, at(0)).await.unwrap();
    store.set_job_paused("sla", true, at(0)).await.unwrap();
    store.set_job_paused("sla", true, at(1)).await.unwrap();
    assert_eq!(store.paused_jobs().await.unwrap(), ["forecast", "sla"]);
    store
        .set_job_paused("forecast", false, at(2))
        .await
        .unwrap();
    store
        .set_job_paused("never-paused", false, at(2))
        .await
        .unwrap();
    assert_eq!(store.paused_jobs().await.unwrap(), ["sla"]);
}

/// A batch claim answers for each tick as single claims would, keeps what
/// it stores, and splits the ticks of concurrent batches exactly once.
pub async fn job_runs_claimed_in_batches(store: &dyn JobStore) {
    assert!(store.claim_job_runs(&[]).await.unwrap().is_empty());
    assert!(store.claim_job_run(&run("forecast", 120)).await.unwrap());
    let mut started = run("sla", 120);
    started.status = RunStatus::Running;
    started.started_at = Some(at(120) + Duration::milliseconds(3));
    let batch = [run("forecast", 120), started.clone(), run("forecast", 240)];
    assert_eq!(
        store.claim_job_runs(&batch).await.unwrap(),
        [false, true, true],
        "a tick already claimed is refused; the others are won"
    );
    let listed = store.job_runs("sla", 10).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, started.id);
    assert_eq!(listed[0].status, RunStatus::Running);
    assert_eq!(listed[0].started_at, started.started_at);
    assert_eq!(listed[0].lease_until, started.lease_until);
    assert!(
        !store.claim_job_run(&run("sla", 120)).await.unwrap(),
        "a batch-claimed tick is refused to single claims too"
    );

    // Four instances claim the same 250 ticks (more than one statement's
    // worth on some backends) at once: each tick is won exactly once.
    let batches: Vec<Vec<JobRun>> = (0..4)
        .map(|_| (0..250).map(|i| run(&format!("job{i}"), 600)).collect())
        .collect();
    let results = futures::future::join_all(batches.iter().map(|b| store.claim_job_runs(b))).await;
    let mut winners = vec![0; 250];
    for r in results {
        let r = r.unwrap();
        assert_eq!(r.len(), 250);
        for (i, won) in r.into_iter().enumerate() {
            winners[i] += usize::from(won);
        }
    }
    assert!(
        winners.iter().all(|w| *w == 1),
        "every tick won once: {winners:?}"
    );
}
