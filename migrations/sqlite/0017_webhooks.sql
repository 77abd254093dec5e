-- Webhooks: admins register URLs for events; every event becomes one delivery row per
-- subscribed active webhook, written by triggers in the same transaction as the change
-- (as the live updates of 0012: no code path can forget an event, whoever commits it:
-- `serve`, `maildesk ingest` piped from the MTA, the CLI). The webhook worker claims due
-- deliveries like the outbox worker claims mail.
--
-- `events` is the comma-separated list of subscribed event names (validated by the
-- application; the table holds a handful of rows, so looking a name up in it costs nothing).
-- `secret` is kept as is: it signs every delivery, so it cannot be hashed.
CREATE TABLE webhooks (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    url        TEXT NOT NULL,
    secret     TEXT NOT NULL,
    events     TEXT NOT NULL,
    active     INTEGER NOT NULL DEFAULT 1,
    created_by INTEGER REFERENCES users (id) ON DELETE SET NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

-- state: pending (due at next_attempt_at; in flight while claimed_until is in the
-- future), delivered, failed (given up). attempts counts claims, so a worker whose claim
-- ran out (and was taken over) notices that the delivery is no longer its own.
CREATE TABLE webhook_deliveries (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    webhook_id      INTEGER NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    event           TEXT NOT NULL,
    idempotency_key TEXT NOT NULL UNIQUE,
    payload         TEXT NOT NULL,
    state           TEXT NOT NULL DEFAULT 'pending'
                    CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    claimed_until   INTEGER,
    last_status     INTEGER,
    last_error      TEXT,
    created_at      INTEGER NOT NULL,
    delivered_at    INTEGER
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (state, next_attempt_at);
CREATE INDEX webhook_deliveries_webhook ON webhook_deliveries (webhook_id, id);

-- message.received: mail from outside (the customer's side: author_user_id is NULL); staff
-- answering or noting by mail (direction 'in' too, with their user) is not announced.
-- One trigger per event. The WHEN clause makes a trigger nearly free while no webhook is
-- active (ingest is a hot path): one lookup in a table of a few rows.
CREATE TRIGGER webhooks_ticket_created AFTER INSERT ON tickets
WHEN EXISTS (SELECT 1 FROM webhooks WHERE active = 1) BEGIN
    INSERT INTO webhook_deliveries (webhook_id, event, idempotency_key, payload, next_attempt_at, created_at)
    SELECT w.id, 'ticket.created', lower(hex(randomblob(16))),
           json_object('event', 'ticket.created', 'ticket', new.id,
                       'occurred_at', CAST(strftime('%s', 'now') AS INTEGER)),
           CAST(strftime('%s', 'now') AS INTEGER), CAST(strftime('%s', 'now') AS INTEGER)
    FROM webhooks w WHERE w.active = 1 AND instr(',' || w.events || ',', ',ticket.created,') > 0;
END;

CREATE TRIGGER webhooks_message_received AFTER INSERT ON messages
WHEN new.direction = 'in' AND new.author_user_id IS NULL AND EXISTS (SELECT 1 FROM webhooks WHERE active = 1) BEGIN
    INSERT INTO webhook_deliveries (webhook_id, event, idempotency_key, payload, next_attempt_at, created_at)
    SELECT w.id, 'message.received', lower(hex(randomblob(16))),
           json_object('event', 'message.received', 'ticket', new.ticket_id, 'message', new.id,
                       'kind', new.kind,
                       'occurred_at', CAST(strftime('%s', 'now') AS INTEGER)),
           CAST(strftime('%s', 'now') AS INTEGER), CAST(strftime('%s', 'now') AS INTEGER)
    FROM webhooks w WHERE w.active = 1 AND instr(',' || w.events || ',', ',message.received,') > 0;
END;

CREATE TRIGGER webhooks_ticket_status AFTER UPDATE OF status ON tickets
WHEN old.status IS NOT new.status AND EXISTS (SELECT 1 FROM webhooks WHERE active = 1) BEGIN
    INSERT INTO webhook_deliveries (webhook_id, event, idempotency_key, payload, next_attempt_at, created_at)
    SELECT w.id, 'ticket.status_changed', lower(hex(randomblob(16))),
           json_object('event', 'ticket.status_changed', 'ticket', new.id,
                       'old', old.status, 'new', new.status,
                       'occurred_at', CAST(strftime('%s', 'now') AS INTEGER)),
           CAST(strftime('%s', 'now') AS INTEGER), CAST(strftime('%s', 'now') AS INTEGER)
    FROM webhooks w WHERE w.active = 1 AND instr(',' || w.events || ',', ',ticket.status_changed,') > 0;
END;

CREATE TRIGGER webhooks_ticket_assigned AFTER UPDATE OF assignee_id ON tickets
WHEN old.assignee_id IS NOT new.assignee_id AND EXISTS (SELECT 1 FROM webhooks WHERE active = 1) BEGIN
    INSERT INTO webhook_deliveries (webhook_id, event, idempotency_key, payload, next_attempt_at, created_at)
    SELECT w.id, 'ticket.assigned', lower(hex(randomblob(16))),
           json_object('event', 'ticket.assigned', 'ticket', new.id,
                       'old', old.assignee_id, 'new', new.assignee_id,
                       'occurred_at', CAST(strftime('%s', 'now') AS INTEGER)),
           CAST(strftime('%s', 'now') AS INTEGER), CAST(strftime('%s', 'now') AS INTEGER)
    FROM webhooks w WHERE w.active = 1 AND instr(',' || w.events || ',', ',ticket.assigned,') > 0;
END;

CREATE TRIGGER webhooks_task_insert AFTER INSERT ON tasks
WHEN EXISTS (SELECT 1 FROM webhooks WHERE active = 1) BEGIN
    INSERT INTO webhook_deliveries (webhook_id, event, idempotency_key, payload, next_attempt_at, created_at)
    SELECT w.id, 'task.changed', lower(hex(randomblob(16))),
           json_object('event', 'task.changed', 'op', 'created', 'task', new.id, 'ticket', new.ticket_id,
                       'status', new.status,
                       'occurred_at', CAST(strftime('%s', 'now') AS INTEGER)),
           CAST(strftime('%s', 'now') AS INTEGER), CAST(strftime('%s', 'now') AS INTEGER)
    FROM webhooks w WHERE w.active = 1 AND instr(',' || w.events || ',', ',task.changed,') > 0;
END;

CREATE TRIGGER webhooks_task_update AFTER UPDATE ON tasks
WHEN EXISTS (SELECT 1 FROM webhooks WHERE active = 1) BEGIN
    INSERT INTO webhook_deliveries (webhook_id, event, idempotency_key, payload, next_attempt_at, created_at)
    SELECT w.id, 'task.changed', lower(hex(randomblob(16))),
           json_object('event', 'task.changed', 'op', 'updated', 'task', new.id, 'ticket', new.ticket_id,
                       'status', new.status,
                       'occurred_at', CAST(strftime('%s', 'now') AS INTEGER)),
           CAST(strftime('%s', 'now') AS INTEGER), CAST(strftime('%s', 'now') AS INTEGER)
    FROM webhooks w WHERE w.active = 1 AND instr(',' || w.events || ',', ',task.changed,') > 0;
END;

CREATE TRIGGER webhooks_task_delete AFTER DELETE ON tasks
WHEN EXISTS (SELECT 1 FROM webhooks WHERE active = 1) BEGIN
    INSERT INTO webhook_deliveries (webhook_id, event, idempotency_key, payload, next_attempt_at, created_at)
    SELECT w.id, 'task.changed', lower(hex(randomblob(16))),
           json_object('event', 'task.changed', 'op', 'deleted', 'task', old.id, 'ticket', old.ticket_id,
                       'status', old.status,
                       'occurred_at', CAST(strftime('%s', 'now') AS INTEGER)),
           CAST(strftime('%s', 'now') AS INTEGER), CAST(strftime('%s', 'now') AS INTEGER)
    FROM webhooks w WHERE w.active = 1 AND instr(',' || w.events || ',', ',task.changed,') > 0;
END;
