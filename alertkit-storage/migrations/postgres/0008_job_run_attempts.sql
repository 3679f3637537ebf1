-- Job runs record which attempt of their tick they are (retries).
ALTER TABLE job_runs ADD COLUMN attempt integer NOT NULL DEFAULT 1;
