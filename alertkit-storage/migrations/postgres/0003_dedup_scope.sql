-- Who raised each alert, and dedup scoped to it.
--
-- A repeat merges only into an active alert with the same dedup scope: the
-- same dedup key, raised by the same principal, for the same audience
-- (`Alert::dedup_scope`, a SHA-256 digest computed by alertkit-core). So a
-- principal can never rewrite, through a dedup key, an alert it could not
-- have created. Alerts stored before this migration have no scope and are
-- never merged into; their next repeat starts a new alert.
ALTER TABLE alerts ADD COLUMN created_by text;
ALTER TABLE alerts ADD COLUMN dedup_scope text;
DROP INDEX alerts_active_dedup;
CREATE UNIQUE INDEX alerts_active_dedup ON alerts (dedup_scope) WHERE status = 'active';
-- resolve_key: the active alerts holding a key.
CREATE INDEX alerts_active_key ON alerts (dedup_key) WHERE status = 'active';
-- Dead letters (Outbox::deliveries_in), newest first.
CREATE INDEX deliveries_status ON deliveries (status, updated_at DESC, id DESC);
