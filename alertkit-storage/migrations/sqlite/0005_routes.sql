-- Team routes (see the PostgreSQL migration).
CREATE TABLE notify_routes (
    id         BLOB    PRIMARY KEY,
    body       TEXT    NOT NULL,
    created_at INTEGER NOT NULL
);
