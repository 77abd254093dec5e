-- maildesk core schema (SQLite). Times are Unix seconds (UTC); flags are 0/1 integers.

CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- Every message as received, content-addressed, so any message can be re-parsed.
CREATE TABLE raw_messages (
    sha256      TEXT PRIMARY KEY,
    size        INTEGER NOT NULL,
    data        BLOB NOT NULL,
    received_at INTEGER NOT NULL
);

-- Attachment contents, content-addressed: a logo in every signature is stored once.
CREATE TABLE blobs (
    sha256 TEXT PRIMARY KEY,
    size   INTEGER NOT NULL,
    data   BLOB NOT NULL
);

CREATE TABLE users (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    email         TEXT NOT NULL UNIQUE,
    name          TEXT NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('admin', 'staff')),
    password_hash TEXT NOT NULL,
    active        INTEGER NOT NULL DEFAULT 1,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);

CREATE TABLE tickets (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    subject          TEXT NOT NULL,
    status           TEXT NOT NULL DEFAULT 'open'
                     CHECK (status IN ('open', 'in_progress', 'waiting', 'resolved', 'closed')),
    priority         TEXT NOT NULL DEFAULT 'medium'
                     CHECK (priority IN ('low', 'medium', 'high', 'urgent')),
    category         TEXT NOT NULL,
    mailbox          TEXT,
    requester_email  TEXT NOT NULL,
    requester_name   TEXT,
    assignee_id      INTEGER REFERENCES users (id),
    linked_ticket_id INTEGER REFERENCES tickets (id),
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    resolved_at      INTEGER,
    closed_at        INTEGER
);
CREATE INDEX tickets_status ON tickets (status, updated_at);
CREATE INDEX tickets_requester ON tickets (requester_email);

CREATE TABLE participants (
    ticket_id  INTEGER NOT NULL REFERENCES tickets (id),
    email      TEXT NOT NULL,
    name       TEXT,
    role       TEXT NOT NULL CHECK (role IN ('requester', 'cc')),
    created_at INTEGER NOT NULL,
    PRIMARY KEY (ticket_id, email)
);
CREATE INDEX participants_email ON participants (email);

CREATE TABLE messages (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    ticket_id       INTEGER NOT NULL REFERENCES tickets (id),
    direction       TEXT NOT NULL CHECK (direction IN ('in', 'out')),
    kind            TEXT NOT NULL CHECK (kind IN ('public', 'note', 'automatic')),
    automatic_reason TEXT,
    from_email      TEXT NOT NULL,
    from_name       TEXT,
    to_addrs        TEXT NOT NULL DEFAULT '',
    cc_addrs        TEXT NOT NULL DEFAULT '',
    reply_to        TEXT NOT NULL DEFAULT '',
    subject         TEXT NOT NULL,
    message_id      TEXT NOT NULL,
    in_reply_to     TEXT NOT NULL DEFAULT '',
    references_ids  TEXT NOT NULL DEFAULT '',
    text_body       TEXT NOT NULL,
    html_body       TEXT,
    raw_sha256      TEXT REFERENCES raw_messages (sha256),
    content_sha256  TEXT NOT NULL,
    mailbox         TEXT,
    source          TEXT NOT NULL,
    author_user_id  INTEGER REFERENCES users (id),
    sent_at         INTEGER,
    created_at      INTEGER NOT NULL
);
-- The duplicate key: a reused Message-ID with different content is a different message.
CREATE UNIQUE INDEX messages_dedup ON messages (message_id, content_sha256);
CREATE INDEX messages_ticket ON messages (ticket_id, id);

CREATE TABLE attachments (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id   INTEGER NOT NULL REFERENCES messages (id),
    filename     TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size         INTEGER NOT NULL,
    sha256       TEXT NOT NULL REFERENCES blobs (sha256),
    content_id   TEXT,
    inline       INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX attachments_message ON attachments (message_id);

CREATE TABLE tasks (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    title       TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    priority    TEXT NOT NULL DEFAULT 'medium' CHECK (priority IN ('low', 'medium', 'high')),
    status      TEXT NOT NULL DEFAULT 'todo' CHECK (status IN ('todo', 'in_progress', 'done')),
    creator_id  INTEGER NOT NULL REFERENCES users (id),
    assignee_id INTEGER REFERENCES users (id),
    ticket_id   INTEGER REFERENCES tickets (id),
    due_date    TEXT,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);
CREATE INDEX tasks_assignee ON tasks (assignee_id, status);

CREATE TABLE quarantine (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    raw_sha256  TEXT NOT NULL REFERENCES raw_messages (sha256),
    size        INTEGER NOT NULL,
    reason      TEXT NOT NULL,
    source      TEXT NOT NULL,
    mailbox     TEXT,
    created_at  INTEGER NOT NULL,
    retried_at  INTEGER,
    resolved_at INTEGER,
    resolution  TEXT
);
-- One open entry per raw message: the same bad message fetched twice is not two problems.
CREATE UNIQUE INDEX quarantine_open ON quarantine (raw_sha256) WHERE resolved_at IS NULL;
