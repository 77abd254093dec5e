-- A user's credentials version: raised by every password change and every disable.
-- An OAuth access token carries the version its user had when it was issued, and is
-- refused once they differ, so a client acting as the user must fetch a new token
-- (a counter, not a time: a token issued in the same second as the change is still
-- told apart). Tokens issued before this migration carry none and count as 0.
ALTER TABLE users ADD COLUMN credentials_version INTEGER NOT NULL DEFAULT 0;
