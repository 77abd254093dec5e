-- OAuth2 machine clients (client-credentials grant): registered by an admin, each acts as
-- one staff user (acts_as: that user's role still limits it, its scope caps it) and its
-- secret is shown once. The secret is 32 random bytes, so its SHA-256 is kept (a slow
-- password hash guards guessable secrets; these are not guessable, and every token
-- request checks one).
CREATE TABLE oauth_clients (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    client_id     TEXT NOT NULL UNIQUE,
    name          TEXT NOT NULL,
    secret_hash   TEXT NOT NULL,
    scope         TEXT NOT NULL CHECK (scope IN ('read', 'write', 'admin')),
    acts_as       INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_by    INTEGER REFERENCES users (id) ON DELETE SET NULL,
    created_at    INTEGER NOT NULL,
    last_used_at  INTEGER,
    revoked_at    INTEGER
);
CREATE INDEX oauth_clients_acts_as ON oauth_clients (acts_as);
CREATE INDEX oauth_clients_created_by ON oauth_clients (created_by);

-- The keys that sign the clients' access tokens (HS256, named by kid in the token's
-- header). The newest key not retired signs; a retired key still verifies until the
-- tokens it signed have expired, so a rotation never cuts off a live token. The secret
-- is 32 random bytes, hex.
CREATE TABLE oauth_keys (
    kid         TEXT PRIMARY KEY,
    secret      TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    retired_at  INTEGER
);
