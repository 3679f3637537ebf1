-- Each user's own contact details (RuleStore::contact), set through
-- PUT /api/me/contacts and read by the notification dispatcher.
CREATE TABLE contacts (
    user_id     text PRIMARY KEY,
    email       text,
    slack_id    text,
    webhook_url text
);
