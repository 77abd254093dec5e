-- Addresses that hard-bounced: nothing is sent to them until the suppression ends.
CREATE TABLE suppressions (
    address    TEXT PRIMARY KEY,
    reason     TEXT NOT NULL,
    until      INTEGER NOT NULL,
    created_at INTEGER NOT NULL
);
