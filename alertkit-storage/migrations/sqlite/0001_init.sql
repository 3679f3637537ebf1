-- alertkit schema for SQLite, version 1. Times are Unix milliseconds (UTC);
-- ids are 16-byte UUID blobs (byte order = UUIDv7 time order); lists of
-- strings are JSON arrays.

CREATE TABLE alerts (
    id            BLOB    PRIMARY KEY,
    alert_type    TEXT    NOT NULL,
    severity      INTEGER NOT NULL CHECK (severity BETWEEN 0 AND 4),
    title         TEXT    NOT NULL,
    message       TEXT    NOT NULL,
    tags          TEXT    NOT NULL DEFAULT '[]',
    resource_type TEXT,
    resource_id   TEXT,
    audience      TEXT    NOT NULL,
    metadata      TEXT    NOT NULL DEFAULT '{}',
    dedup_key     TEXT,
    status        TEXT    NOT NULL CHECK (status IN ('active', 'resolved')),
    occurrences   INTEGER NOT NULL CHECK (occurrences > 0),
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    last_seen_at  INTEGER NOT NULL,
    expires_at    INTEGER
);
CREATE INDEX alerts_list ON alerts (created_at DESC, id DESC);
CREATE INDEX alerts_type_severity ON alerts (alert_type, severity, created_at DESC, id DESC);
CREATE UNIQUE INDEX alerts_active_dedup ON alerts (dedup_key) WHERE status = 'active';
CREATE INDEX alerts_expires ON alerts (expires_at) WHERE expires_at IS NOT NULL;
CREATE INDEX alerts_updated ON alerts (updated_at);

CREATE TABLE alert_receipts (
    user_id      TEXT NOT NULL,
    alert_id     BLOB NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
    read_at      INTEGER,
    dismissed_at INTEGER,
    PRIMARY KEY (user_id, alert_id)
) WITHOUT ROWID;
CREATE INDEX alert_receipts_alert ON alert_receipts (alert_id);

CREATE TABLE alert_rules (
    id            BLOB    PRIMARY KEY,
    name          TEXT    NOT NULL UNIQUE,
    kind          TEXT    NOT NULL,
    enabled       INTEGER NOT NULL,
    conditions    TEXT    NOT NULL,
    template      TEXT    NOT NULL,
    for_secs      INTEGER NOT NULL,
    cooldown_secs INTEGER NOT NULL,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);

CREATE TABLE alert_subscriptions (
    user_id      TEXT    NOT NULL,
    alert_type   TEXT    NOT NULL,
    enabled      INTEGER NOT NULL,
    channels     TEXT    NOT NULL,
    min_severity INTEGER NOT NULL,
    digest       TEXT,
    PRIMARY KEY (user_id, alert_type)
) WITHOUT ROWID;
CREATE INDEX alert_subscriptions_type ON alert_subscriptions (alert_type) WHERE enabled;

CREATE TABLE deliveries (
    id              BLOB    PRIMARY KEY,
    alert_id        BLOB    NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
    user_id         TEXT    NOT NULL,
    channel         TEXT    NOT NULL,
    severity        INTEGER NOT NULL,
    status          TEXT    NOT NULL,
    attempts        INTEGER NOT NULL,
    next_attempt_at INTEGER NOT NULL,
    lease_until     INTEGER,
    last_error      TEXT,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    UNIQUE (alert_id, user_id, channel, severity)
);
CREATE INDEX deliveries_due ON deliveries (next_attempt_at, id) WHERE status = 'pending';
CREATE INDEX deliveries_leased ON deliveries (lease_until) WHERE status = 'in_flight';

CREATE TABLE job_runs (
    id           BLOB    PRIMARY KEY,
    job_id       TEXT    NOT NULL,
    scheduled_at INTEGER NOT NULL,
    started_at   INTEGER,
    finished_at  INTEGER,
    status       TEXT    NOT NULL,
    error        TEXT,
    UNIQUE (job_id, scheduled_at)
);
