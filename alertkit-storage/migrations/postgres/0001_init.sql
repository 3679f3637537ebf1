-- alertkit schema, version 1. Runs inside the store's schema (search_path).

CREATE TABLE alerts (
    id            uuid PRIMARY KEY,
    alert_type    text        NOT NULL,
    severity      smallint    NOT NULL CHECK (severity BETWEEN 0 AND 4),
    title         text        NOT NULL,
    message       text        NOT NULL,
    tags          text[]      NOT NULL DEFAULT '{}',
    resource_type text,
    resource_id   text,
    audience      text[]      NOT NULL,
    metadata      jsonb       NOT NULL DEFAULT '{}',
    dedup_key     text,
    status        text        NOT NULL CHECK (status IN ('active', 'resolved')),
    occurrences   integer     NOT NULL CHECK (occurrences > 0),
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL,
    last_seen_at  timestamptz NOT NULL,
    expires_at    timestamptz
);

-- Lists: newest first, keyset on (created_at, id).
CREATE INDEX alerts_list ON alerts (created_at DESC, id DESC);
-- Visibility: audience && {everyone, user:<id>, group:<g>…}.
CREATE INDEX alerts_audience ON alerts USING gin (audience);
-- Type + severity + time.
CREATE INDEX alerts_type_severity ON alerts (alert_type, severity, created_at DESC, id DESC);
-- Tag (product code) filters.
CREATE INDEX alerts_tags ON alerts USING gin (tags);
-- One active alert per dedup key: concurrent raises of a key make one alert.
CREATE UNIQUE INDEX alerts_active_dedup ON alerts (dedup_key) WHERE status = 'active';
-- Retention.
CREATE INDEX alerts_expires ON alerts (expires_at) WHERE expires_at IS NOT NULL;
CREATE INDEX alerts_updated ON alerts (updated_at);

CREATE TABLE alert_receipts (
    user_id      text NOT NULL,
    alert_id     uuid NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
    read_at      timestamptz,
    dismissed_at timestamptz,
    PRIMARY KEY (user_id, alert_id)
);
CREATE INDEX alert_receipts_alert ON alert_receipts (alert_id);

CREATE TABLE alert_rules (
    id            uuid PRIMARY KEY,
    name          text        NOT NULL UNIQUE,
    kind          text        NOT NULL,
    enabled       boolean     NOT NULL,
    conditions    jsonb       NOT NULL,
    template      jsonb       NOT NULL,
    for_secs      bigint      NOT NULL,
    cooldown_secs bigint      NOT NULL,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL
);

CREATE TABLE alert_subscriptions (
    user_id      text     NOT NULL,
    alert_type   text     NOT NULL,
    enabled      boolean  NOT NULL,
    channels     text[]   NOT NULL,
    min_severity smallint NOT NULL,
    digest       text,
    PRIMARY KEY (user_id, alert_type)
);
CREATE INDEX alert_subscriptions_type ON alert_subscriptions (alert_type) WHERE enabled;

-- The delivery outbox.
CREATE TABLE deliveries (
    id              uuid PRIMARY KEY,
    alert_id        uuid        NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
    user_id         text        NOT NULL,
    channel         text        NOT NULL,
    severity        smallint    NOT NULL,
    status          text        NOT NULL,
    attempts        integer     NOT NULL,
    next_attempt_at timestamptz NOT NULL,
    lease_until     timestamptz,
    last_error      text,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    UNIQUE (alert_id, user_id, channel, severity)
);
CREATE INDEX deliveries_due ON deliveries (next_attempt_at, id) WHERE status = 'pending';
CREATE INDEX deliveries_leased ON deliveries (lease_until) WHERE status = 'in_flight';

CREATE TABLE job_runs (
    id           uuid PRIMARY KEY,
    job_id       text        NOT NULL,
    scheduled_at timestamptz NOT NULL,
    started_at   timestamptz,
    finished_at  timestamptz,
    status       text        NOT NULL,
    error        text,
    UNIQUE (job_id, scheduled_at)
);
