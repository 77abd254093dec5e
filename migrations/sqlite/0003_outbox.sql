-- Outbound mail: every mail goes through this durable outbox, written in the same
-- transaction as the change that causes it, one row per recipient.

CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    ticket_id       INTEGER REFERENCES tickets (id),
    message_id      INTEGER REFERENCES messages (id),
    kind            TEXT NOT NULL,
    recipient       TEXT NOT NULL,
    envelope_from   TEXT NOT NULL,
    message_id_header TEXT NOT NULL,
    raw             BLOB NOT NULL,
    status          TEXT NOT NULL DEFAULT 'queued'
                    CHECK (status IN ('queued', 'sending', 'sent', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    locked_until    INTEGER,
    last_error      TEXT,
    created_at      INTEGER NOT NULL,
    sent_at         INTEGER
);
CREATE INDEX outbox_due ON outbox (status, next_attempt_at);
CREATE INDEX outbox_recipient ON outbox (recipient, created_at);
CREATE INDEX outbox_ticket ON outbox (ticket_id);
