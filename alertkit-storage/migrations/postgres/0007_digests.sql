-- Digests: a delivery may be an item of an hourly or daily digest (due when
-- its period ends in the user's time zone), and contacts carry that zone.
ALTER TABLE deliveries ADD COLUMN digest text;
ALTER TABLE contacts ADD COLUMN time_zone text;
