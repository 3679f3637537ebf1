-- Job runs are held under a lease their instance renews; a lapsed lease
-- lets another instance take the run over. Pause is stored, so it holds
-- for every instance.
ALTER TABLE job_runs ADD COLUMN lease_until integer;
CREATE INDEX job_runs_leased ON job_runs (lease_until) WHERE status IN ('pending', 'running');
CREATE TABLE scheduler_jobs (
    job_id     text PRIMARY KEY,
    paused     integer NOT NULL,
    updated_at integer NOT NULL
);
