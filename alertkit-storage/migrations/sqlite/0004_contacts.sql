-- Each user's own contact details (see the PostgreSQL migration).
CREATE TABLE contacts (
    user_id     TEXT PRIMARY KEY,
    email       TEXT,
    slack_id    TEXT,
    webhook_url TEXT
);
