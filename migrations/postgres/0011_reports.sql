-- Reports: the first staff response is kept on the ticket (maintained by every message
-- insert, in the same transaction), so response times over a period need no scan of
-- messages; indexes for the period scans (resolved, closed, reopened) and the backlog.
ALTER TABLE tickets ADD COLUMN first_response_at BIGINT;
ALTER TABLE tickets ADD COLUMN first_responder_id BIGINT REFERENCES users (id);

-- A staff response is a public message written by a staff member (a portal reply, or
-- staff mail relayed to the customer), the earliest one per ticket.
UPDATE tickets SET first_response_at = (
    SELECT MIN(m.created_at) FROM messages m
    WHERE m.ticket_id = tickets.id AND m.kind = 'public' AND m.author_user_id IS NOT NULL
);
UPDATE tickets SET first_responder_id = (
    SELECT m.author_user_id FROM messages m
    WHERE m.ticket_id = tickets.id AND m.kind = 'public' AND m.author_user_id IS NOT NULL
    ORDER BY m.created_at, m.id LIMIT 1
) WHERE first_response_at IS NOT NULL;

CREATE INDEX tickets_resolved ON tickets (resolved_at);
CREATE INDEX tickets_closed ON tickets (closed_at);
-- Work still to do, by age and group: read from this index alone.
CREATE INDEX tickets_backlog ON tickets (status, category, mailbox, assignee_id, created_at, merged_into_id);
-- Status changes in a period (reopens).
CREATE INDEX ticket_events_field ON ticket_events (field, created_at);
