-- IMAP fetching: per-mailbox position and health, and every (mailbox, UIDVALIDITY, UID)
-- taken in, written in the same transaction as the message it became.

CREATE TABLE imap_state (
    mailbox         TEXT PRIMARY KEY,
    uidvalidity     BIGINT,
    last_uid        BIGINT NOT NULL DEFAULT 0,
    last_success_at BIGINT,
    last_error      TEXT,
    last_error_at   BIGINT,
    updated_at      BIGINT NOT NULL
);

CREATE TABLE imap_seen (
    mailbox          TEXT NOT NULL,
    uidvalidity      BIGINT NOT NULL,
    uid              BIGINT NOT NULL,
    outcome          TEXT NOT NULL,
    quarantined      BIGINT NOT NULL DEFAULT 0,
    post_action_done BIGINT NOT NULL DEFAULT 0,
    stored_at        BIGINT NOT NULL,
    PRIMARY KEY (mailbox, uidvalidity, uid)
);
CREATE INDEX imap_seen_pending ON imap_seen (mailbox, uidvalidity, post_action_done);
