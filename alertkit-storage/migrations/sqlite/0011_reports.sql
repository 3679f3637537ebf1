-- Report records. `body` is the report as JSON; the columns beside it are
-- what claims and purges select on, and win over the body's copies.
CREATE TABLE reports (
    id         BLOB    PRIMARY KEY,
    status     TEXT    NOT NULL CHECK (status IN ('PENDING', 'RUNNING', 'COMPLETED', 'FAILED')),
    attempts   INTEGER NOT NULL,
    due_at     INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    body       TEXT    NOT NULL
);
CREATE INDEX reports_due ON reports (due_at) WHERE status IN ('PENDING', 'RUNNING');
CREATE INDEX reports_finished ON reports (updated_at) WHERE status IN ('COMPLETED', 'FAILED');
