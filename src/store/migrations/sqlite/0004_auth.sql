-- 0004_auth: sign-in and credentials (docs/design/auth-contract.md):
-- passwords and lockout state, password history, 2FA recovery codes,
-- sessions, single-use tokens (reset, invite), rate-limit windows, the mail
-- outbox and the leases background jobs run under.
-- Times are milliseconds since the Unix epoch; 0 means "never" or "none".
-- Hashes are lowercase hex of BLAKE2b-256. Ids that the API shows or that a
-- caller keeps between calls (sessions, tokens, mail) are AUTOINCREMENT so a
-- deleted row's id is never handed out again, as with PostgreSQL's BIGSERIAL.
-- users.last_login_at (0002) is set on sign-in; neither the user_counts
-- trigger (UPDATE OF status, type) nor the FTS one (UPDATE OF search_key)
-- fires for it, so no trigger changes here.

-- One row per user who has ever had a credential; a user without one reads
-- as the all-empty credential (rs_credential_init).
CREATE TABLE credentials (
    user_id             INTEGER PRIMARY KEY REFERENCES users (id),
    password_hash       TEXT    NOT NULL DEFAULT '',
    password_changed_at INTEGER NOT NULL DEFAULT 0,
    must_change         INTEGER NOT NULL DEFAULT 0,
    failed_count        INTEGER NOT NULL DEFAULT 0,
    failed_first_at     INTEGER NOT NULL DEFAULT 0,
    locked_until        INTEGER NOT NULL DEFAULT 0, -- -1: until an administrator unlocks
    totp_secret         TEXT    NOT NULL DEFAULT '',
    totp_pending        TEXT    NOT NULL DEFAULT '',
    totp_last_step      INTEGER NOT NULL DEFAULT 0,
    ip_ranges           TEXT    NOT NULL DEFAULT '[]',
    expiry_notice_at    INTEGER NOT NULL DEFAULT 0
);
-- The background jobs poll these every pass; partial indexes hold only the
-- rows that can be due, so a pass costs what is due, not every user.
CREATE INDEX credentials_expiry ON credentials (password_changed_at)
    WHERE password_hash <> '' AND expiry_notice_at < password_changed_at;
CREATE INDEX credentials_locked_until ON credentials (locked_until) WHERE locked_until > 0;

CREATE TABLE password_history (
    id         INTEGER PRIMARY KEY,
    user_id    INTEGER NOT NULL REFERENCES users (id),
    hash       TEXT    NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX password_history_user ON password_history (user_id, id);

CREATE TABLE recovery_codes (
    id        INTEGER PRIMARY KEY,
    user_id   INTEGER NOT NULL REFERENCES users (id),
    code_hash TEXT    NOT NULL UNIQUE,
    used_at   INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX recovery_codes_user ON recovery_codes (user_id);

CREATE TABLE sessions (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    token_hash   TEXT    NOT NULL UNIQUE,
    user_id      INTEGER NOT NULL REFERENCES users (id),
    created_at   INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL, -- absolute limit; the idle limit is last_seen_at's
    ip           TEXT    NOT NULL DEFAULT '',
    user_agent   TEXT    NOT NULL DEFAULT '',
    flags        INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX sessions_user ON sessions (user_id);
CREATE INDEX sessions_expires_at ON sessions (expires_at);
-- The purge deletes by either limit; with both columns indexed it reads only
-- the rows it deletes.
CREATE INDEX sessions_last_seen_at ON sessions (last_seen_at);

CREATE TABLE auth_tokens (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    token_hash    TEXT    NOT NULL UNIQUE,
    kind          TEXT    NOT NULL CHECK (kind IN ('reset', 'invite')),
    user_id       INTEGER NOT NULL REFERENCES users (id),
    created_at    INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,
    used_at       INTEGER NOT NULL DEFAULT 0,
    pw_changed_at INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX auth_tokens_user ON auth_tokens (user_id);

-- Fixed-window counters for throttling, by key ("ip:...", "forgot:...").
CREATE TABLE rate_limits (
    key          TEXT    PRIMARY KEY,
    window_start INTEGER NOT NULL,
    count        INTEGER NOT NULL
);

-- Mail queued inside the transaction that causes it, sent by the mail job.
-- user_id is 0 for mail to no user (the SMTP test), so it has no foreign key.
CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at      INTEGER NOT NULL,
    kind            TEXT    NOT NULL,
    user_id         INTEGER NOT NULL DEFAULT 0,
    to_addr         TEXT    NOT NULL,
    subject         TEXT    NOT NULL,
    message         TEXT    NOT NULL,
    status          TEXT    NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'sent', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    sent_at         INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX outbox_status_next ON outbox (status, next_attempt_at);
-- GET /outbox?user_id= lists one user's mail newest first.
CREATE INDEX outbox_user ON outbox (user_id, id);

-- Background jobs run under a lease per job so one process runs each.
CREATE TABLE leases (
    name  TEXT    PRIMARY KEY,
    owner TEXT    NOT NULL,
    until INTEGER NOT NULL
);
