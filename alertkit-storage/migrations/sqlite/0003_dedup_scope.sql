-- Who raised each alert, and dedup scoped to it (see the PostgreSQL
-- migration of the same name): a repeat merges only into an active alert
-- with the same key, creator and audience.
ALTER TABLE alerts ADD COLUMN created_by TEXT;
ALTER TABLE alerts ADD COLUMN dedup_scope TEXT;
DROP INDEX alerts_active_dedup;
CREATE UNIQUE INDEX alerts_active_dedup ON alerts (dedup_scope) WHERE status = 'active';
CREATE INDEX alerts_active_key ON alerts (dedup_key) WHERE status = 'active';
-- Dead letters (Outbox::deliveries_in), newest first.
CREATE INDEX deliveries_status ON deliveries (status, updated_at DESC, id DESC);
