-- Change sequence for WebSocket resume (AlertStore::changes_since).
--
-- Every change to an alert (raise, merge, resolve) takes the next number from
-- the one-row `alert_seq` counter as the last statement of its transaction.
-- The counter's row lock is held until commit, so numbers are handed out in
-- commit order: a reader that has seen number n can never later find a
-- smaller number committed (the classic gap of sequences/serials, which are
-- assigned at insert time and committed in any order).
CREATE TABLE alert_seq (
    id    boolean PRIMARY KEY DEFAULT true CHECK (id),
    value bigint  NOT NULL
);
INSERT INTO alert_seq (id, value) VALUES (true, 0);

ALTER TABLE alerts ADD COLUMN seq bigint NOT NULL DEFAULT 0;
CREATE INDEX alerts_seq ON alerts (seq);
