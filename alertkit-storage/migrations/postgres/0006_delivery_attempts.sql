-- Every attempt of every delivery (Outbox::attempts): when, how, why not.
CREATE TABLE delivery_attempts (
    id          uuid PRIMARY KEY,
    delivery_id uuid        NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
    attempt     integer     NOT NULL,
    at          timestamptz NOT NULL,
    outcome     text        NOT NULL,
    error       text
);
CREATE INDEX delivery_attempts_delivery ON delivery_attempts (delivery_id, at, id);
