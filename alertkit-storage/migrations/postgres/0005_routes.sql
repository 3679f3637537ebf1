-- Team routes (RuleStore::routes): matchers and a destination, kept as one
-- JSON document per route (only the dispatcher and the admin API read them).
CREATE TABLE notify_routes (
    id         uuid PRIMARY KEY,
    body       jsonb       NOT NULL,
    created_at timestamptz NOT NULL
);
