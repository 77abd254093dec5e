-- The public page and the customer's own view.

-- Bumped by "revoke customer links": every link signed before stops working.
ALTER TABLE tickets ADD COLUMN customer_link_epoch INTEGER NOT NULL DEFAULT 0;

-- A change a customer made on their own ticket page (history names them, not a user).
ALTER TABLE ticket_events ADD COLUMN customer_email TEXT;

-- Counted attempts of one kind (failed sign-ins, public form submissions, customer web
-- replies), per account and per client address in a window, in the database so the
-- limits hold across instances. Failed sign-ins move here from login_failures.
CREATE TABLE throttle_events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    kind        TEXT NOT NULL,
    account     TEXT NOT NULL,
    client_addr TEXT NOT NULL,
    at          INTEGER NOT NULL
);
CREATE INDEX throttle_events_account ON throttle_events (kind, account, at);
CREATE INDEX throttle_events_client ON throttle_events (kind, client_addr, at);
INSERT INTO throttle_events (kind, account, client_addr, at)
    SELECT 'login', account, client_addr, failed_at FROM login_failures;
DROP TABLE login_failures;
