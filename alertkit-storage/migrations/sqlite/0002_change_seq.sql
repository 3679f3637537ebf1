-- Change sequence for WebSocket resume (AlertStore::changes_since). Writers
-- run in BEGIN IMMEDIATE transactions, which SQLite serializes, so numbers
-- taken from this counter inside them follow commit order.
CREATE TABLE alert_seq (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    value INTEGER NOT NULL
);
INSERT INTO alert_seq (id, value) VALUES (1, 0);

ALTER TABLE alerts ADD COLUMN seq INTEGER NOT NULL DEFAULT 0;
CREATE INDEX alerts_seq ON alerts (seq);
