-- Every attempt of every delivery (see the PostgreSQL migration).
CREATE TABLE delivery_attempts (
    id          BLOB    PRIMARY KEY,
    delivery_id BLOB    NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
    attempt     INTEGER NOT NULL,
    at          INTEGER NOT NULL,
    outcome     TEXT    NOT NULL,
    error       TEXT
);
CREATE INDEX delivery_attempts_delivery ON delivery_attempts (delivery_id, at, id);
