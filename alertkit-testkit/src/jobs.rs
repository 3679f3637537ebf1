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
