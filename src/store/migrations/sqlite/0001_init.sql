-- 0001_init: users (first slice), audit events, API keys.
-- Times are milliseconds since the Unix epoch (INTEGER). *_key columns hold
-- the NFKC case-folded form that uniqueness and search use.
CREATE TABLE users (
    id           INTEGER PRIMARY KEY,
    username     TEXT    NOT NULL,
    username_key TEXT    NOT NULL,
    email        TEXT    NOT NULL,
    email_key    TEXT    NOT NULL,
    first_name   TEXT    NOT NULL,
    last_name    TEXT    NOT NULL,
    search_key   TEXT    NOT NULL,
    type         TEXT    NOT NULL DEFAULT 'standard'
                 CHECK (type IN ('standard', 'admin', 'api', 'guest')),
    status       TEXT    NOT NULL DEFAULT 'active'
                 CHECK (status IN ('active', 'inactive', 'locked', 'pending')),
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    version      INTEGER NOT NULL DEFAULT 1
);
CREATE UNIQUE INDEX users_username_key ON users (username_key);
CREATE UNIQUE INDEX users_email_key ON users (email_key);
CREATE INDEX users_last_name ON users (last_name, id);
CREATE INDEX users_first_name ON users (first_name, id);
CREATE INDEX users_created_at ON users (created_at, id);
CREATE INDEX users_updated_at ON users (updated_at, id);

CREATE TABLE audit_events (
    id          INTEGER PRIMARY KEY,
    at          INTEGER NOT NULL,
    actor_id    INTEGER,
    actor_name  TEXT    NOT NULL,
    action      TEXT    NOT NULL,
    target_type TEXT    NOT NULL,
    target_id   INTEGER NOT NULL,
    request_id  TEXT,
    before_json TEXT,
    after_json  TEXT,
    reason      TEXT
);
CREATE INDEX audit_events_target ON audit_events (target_type, target_id, id);
CREATE INDEX audit_events_at ON audit_events (at);

CREATE TABLE api_keys (
    id           INTEGER PRIMARY KEY,
    key_id       TEXT    NOT NULL UNIQUE,
    secret_hash  BLOB    NOT NULL,
    user_id      INTEGER NOT NULL REFERENCES users (id),
    name         TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER,
    revoked_at   INTEGER,
    last_used_at INTEGER
);
CREATE INDEX api_keys_user ON api_keys (user_id, id);
