-- Throttles count attempts in one counter row per (kind, account or client address),
-- bumped by an upsert that returns the new count: concurrent attempts get distinct
-- counts, so a limit lets exactly that many through (throttle_events was counted, then
-- checked, and a burst pushed itself over or past the limit). Old events are dropped:
-- their windows are at most an hour long.
DROP TABLE throttle_events;
CREATE TABLE throttle_counters (
    kind         TEXT NOT NULL,
    dimension    TEXT NOT NULL CHECK (dimension IN ('account', 'client')),
    key          TEXT NOT NULL,
    window_start BIGINT NOT NULL,
    hits         BIGINT NOT NULL,
    PRIMARY KEY (kind, dimension, key)
);
CREATE INDEX throttle_counters_window ON throttle_counters (kind, window_start);
