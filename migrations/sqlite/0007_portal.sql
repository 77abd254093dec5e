-- The staff portal: server-side sessions, sign-in throttling, ticket history, merges and
-- full-text search.

-- A session is found by the SHA-256 of its cookie value: the database holds no usable
-- session token. Deleting a user's rows ends their sessions at once.
CREATE TABLE sessions (
    id_hash      TEXT PRIMARY KEY,
    user_id      INTEGER NOT NULL REFERENCES users (id),
    csrf_token   TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    client_addr  TEXT NOT NULL DEFAULT '',
    user_agent   TEXT NOT NULL DEFAULT ''
);
CREATE INDEX sessions_user ON sessions (user_id);

-- Failed sign-ins, counted per account (as typed) and per client address in a window.
CREATE TABLE login_failures (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    account     TEXT NOT NULL,
    client_addr TEXT NOT NULL,
    failed_at   INTEGER NOT NULL
);
CREATE INDEX login_failures_account ON login_failures (account, failed_at);
CREATE INDEX login_failures_client ON login_failures (client_addr, failed_at);

-- Who changed what on a ticket, and when.
CREATE TABLE ticket_events (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    ticket_id  INTEGER NOT NULL REFERENCES tickets (id),
    user_id    INTEGER REFERENCES users (id),
    field      TEXT NOT NULL,
    old_value  TEXT,
    new_value  TEXT,
    created_at INTEGER NOT NULL
);
CREATE INDEX ticket_events_ticket ON ticket_events (ticket_id, id);

-- A merged ticket points to the ticket that took its messages.
ALTER TABLE tickets ADD COLUMN merged_into_id INTEGER REFERENCES tickets (id);
CREATE INDEX tickets_merged_into ON tickets (merged_into_id);

-- The queue pages by last activity (keyset: updated_at, id), overall and per assignee.
DROP INDEX tickets_status;
CREATE INDEX tickets_status ON tickets (status, updated_at, id);
CREATE INDEX tickets_activity ON tickets (updated_at, id);
CREATE INDEX tickets_assignee ON tickets (assignee_id, updated_at, id);
CREATE INDEX tickets_created ON tickets (created_at, id);

-- Full-text search over subjects, senders and bodies, kept in step with messages by
-- triggers (in the same transaction as ingest); existing messages are indexed here.
CREATE VIRTUAL TABLE messages_fts USING fts5(
    subject, from_email, from_name, text_body,
    content = 'messages', content_rowid = 'id',
    tokenize = 'unicode61 remove_diacritics 2'
);
CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN
    INSERT INTO messages_fts (rowid, subject, from_email, from_name, text_body)
    VALUES (new.id, new.subject, new.from_email, new.from_name, new.text_body);
END;
CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, subject, from_email, from_name, text_body)
    VALUES ('delete', old.id, old.subject, old.from_email, old.from_name, old.text_body);
END;
CREATE TRIGGER messages_fts_update AFTER UPDATE OF subject, from_email, from_name, text_body ON messages BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, subject, from_email, from_name, text_body)
    VALUES ('delete', old.id, old.subject, old.from_email, old.from_name, old.text_body);
    INSERT INTO messages_fts (rowid, subject, from_email, from_name, text_body)
    VALUES (new.id, new.subject, new.from_email, new.from_name, new.text_body);
END;
INSERT INTO messages_fts (messages_fts) VALUES ('rebuild');
-- Matches become tickets through this small index instead of the wide message rows.
CREATE INDEX messages_id_ticket ON messages (id, ticket_id);
