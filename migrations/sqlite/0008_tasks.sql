-- Internal tasks: a ticket page lists its own tasks (and a merge moves them); the task
-- list and the dashboard look for overdue tasks (not done, due before today).
CREATE INDEX tasks_ticket ON tasks (ticket_id);
CREATE INDEX tasks_due ON tasks (status, due_date);
