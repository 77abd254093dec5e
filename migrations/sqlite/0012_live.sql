-- Live updates: what changed, for open portal pages. Triggers write a row for every
-- change to a ticket (new mail and replies touch the ticket too), a task or a delivery,
-- whoever made it (this process, `maildesk ingest` piped from the MTA, the CLI); each
-- `serve` reads the rows after its cursor a few times a second and prunes old ones.
-- Pruning always keeps the newest row, so a rowid is never handed out twice and a
-- reader's cursor never skips a row (without the cost of AUTOINCREMENT on every write).
CREATE TABLE live_events (
    id        INTEGER PRIMARY KEY,
    kind      TEXT NOT NULL,
    ticket_id INTEGER,
    task_id   INTEGER,
    at        INTEGER NOT NULL
);

CREATE TRIGGER tickets_live_insert AFTER INSERT ON tickets BEGIN
    INSERT INTO live_events (kind, ticket_id, at)
    VALUES ('ticket', new.id, CAST(strftime('%s', 'now') AS INTEGER));
END;
CREATE TRIGGER tickets_live_update AFTER UPDATE ON tickets BEGIN
    INSERT INTO live_events (kind, ticket_id, at)
    VALUES ('ticket', new.id, CAST(strftime('%s', 'now') AS INTEGER));
END;
CREATE TRIGGER tasks_live_insert AFTER INSERT ON tasks BEGIN
    INSERT INTO live_events (kind, ticket_id, task_id, at)
    VALUES ('task', new.ticket_id, new.id, CAST(strftime('%s', 'now') AS INTEGER));
END;
CREATE TRIGGER tasks_live_update AFTER UPDATE ON tasks BEGIN
    INSERT INTO live_events (kind, ticket_id, task_id, at)
    VALUES ('task', new.ticket_id, new.id, CAST(strftime('%s', 'now') AS INTEGER));
END;
CREATE TRIGGER tasks_live_delete AFTER DELETE ON tasks BEGIN
    INSERT INTO live_events (kind, ticket_id, task_id, at)
    VALUES ('task', old.ticket_id, old.id, CAST(strftime('%s', 'now') AS INTEGER));
END;
CREATE TRIGGER outbox_live_status AFTER UPDATE OF status ON outbox
WHEN new.ticket_id IS NOT NULL BEGIN
    INSERT INTO live_events (kind, ticket_id, at)
    VALUES ('delivery', new.ticket_id, CAST(strftime('%s', 'now') AS INTEGER));
END;
