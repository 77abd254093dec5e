-- Live updates: what changed, for open portal pages. Triggers NOTIFY every change to a
-- ticket (new mail and replies touch the ticket too), a task or a delivery, whoever made
-- it; PostgreSQL delivers the notification at commit to every `serve` instance that
-- LISTENs on `maildesk_live`, so a change made by one instance (or by `maildesk ingest`
-- piped from the MTA) reaches browsers connected to another. Identical notifications in
-- one transaction are folded into one by PostgreSQL.
CREATE FUNCTION maildesk_live_notify() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    payload json;
BEGIN
    IF TG_TABLE_NAME = 'tickets' THEN
        payload := json_build_object('kind', 'ticket', 'ticket', NEW.id);
    ELSIF TG_TABLE_NAME = 'tasks' AND TG_OP = 'DELETE' THEN
        payload := json_build_object('kind', 'task', 'ticket', OLD.ticket_id, 'task', OLD.id);
    ELSIF TG_TABLE_NAME = 'tasks' THEN
        payload := json_build_object('kind', 'task', 'ticket', NEW.ticket_id, 'task', NEW.id);
    ELSE
        payload := json_build_object('kind', 'delivery', 'ticket', NEW.ticket_id);
    END IF;
    PERFORM pg_notify('maildesk_live', payload::text);
    RETURN NULL;
END
$$;

CREATE TRIGGER tickets_live AFTER INSERT OR UPDATE ON tickets
    FOR EACH ROW EXECUTE FUNCTION maildesk_live_notify();
CREATE TRIGGER tasks_live AFTER INSERT OR UPDATE OR DELETE ON tasks
    FOR EACH ROW EXECUTE FUNCTION maildesk_live_notify();
CREATE TRIGGER outbox_live_status AFTER UPDATE OF status ON outbox
    FOR EACH ROW WHEN (NEW.ticket_id IS NOT NULL) EXECUTE FUNCTION maildesk_live_notify();
