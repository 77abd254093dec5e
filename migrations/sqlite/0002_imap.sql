-- IMAP fetching: per-mailbox position and health, and every (mailbox, UIDVALIDITY, UID)
-- taken in, written in the same transaction as the message it became.

CREATE TABLE imap_state (
    mailbox         TEXT PRIMARY KEY,
    uidvalidity     INTEGER,
    last_uid        INTEGER NOT NULL DEFAULT 0,
    last_success_at INTEGER,
    last_error      TEXT,
    last_error_at   INTEGER,
    updated_at      INTEGER NOT NULL
);

CREATE TABLE imap_seen (
    mailbox          TEXT NOT NULL,
    uidvalidity      INTEGER NOT NULL,
    uid              INTEGER NOT NULL,
    outcome          TEXT NOT NULL,
    quarantined      INTEGER NOT NULL DEFAULT 0,
    post_action_done INTEGER NOT NULL DEFAULT 0,
    stored_at        INTEGER NOT NULL,
    PRIMARY KEY (mailbox, uidvalidity, uid)
);
CREATE INDEX imap_seen_pending ON imap_seen (mailbox, uidvalidity, post_action_done);
