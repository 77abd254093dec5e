-- Reports read every ticket created, resolved or closed in a period. Measured at 100,000
-- tickets, looking up each ticket's row from a narrow time index cost more than the
-- scans themselves; these indexes hold what the report reads, so the scans never touch
-- the table. The created index keeps (created_at, id) first: the queue sorts by it.
DROP INDEX tickets_created;
CREATE INDEX tickets_created ON tickets
    (created_at, id, merged_into_id, category, mailbox, assignee_id, first_response_at, first_responder_id);
DROP INDEX tickets_resolved;
CREATE INDEX tickets_resolved ON tickets
    (resolved_at, merged_into_id, created_at, category, mailbox, assignee_id);
DROP INDEX tickets_closed;
CREATE INDEX tickets_closed ON tickets
    (closed_at, resolved_at, merged_into_id, created_at, category, mailbox, assignee_id);
