-- Staff registration by invitation: an admin invites an address with a role; the link
-- carries a random token of which only the SHA-256 is stored here. One use, until
-- expires_at, unless revoked. users.last_login_at is shown on the users page.
CREATE TABLE invitations (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    token_hash  TEXT NOT NULL UNIQUE,
    email       TEXT NOT NULL,
    role        TEXT NOT NULL CHECK (role IN ('admin', 'staff')),
    invited_by  INTEGER REFERENCES users (id),
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    used_at     INTEGER,
    revoked_at  INTEGER
);
CREATE INDEX invitations_email ON invitations (email);

ALTER TABLE users ADD COLUMN last_login_at INTEGER;
