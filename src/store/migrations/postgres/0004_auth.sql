-- 0004_auth: sign-in and credentials (docs/design/auth-contract.md):
-- passwords and lockout state, password history, recovery codes, sessions,
-- single-use tokens, rate-limit windows, the mail outbox and job leases.
-- Same semantics as the SQLite dialect. Times are ms since the Unix epoch;
-- optional text holds '' for "none". Hashes are lowercase hex and keys are
-- compared byte-wise (COLLATE "C"), as SQLite does. Users are never deleted
-- (erase blanks them), so the foreign keys need no ON DELETE.

-- One row per user who ever had a credential; a user without one reads as
-- all zero (rs_credential_init). must_change is BOOLEAN, as custom_fields
-- keeps its flags in this dialect.
CREATE TABLE credentials (
    user_id             BIGINT  PRIMARY KEY REFERENCES users (id),
    password_hash       TEXT    NOT NULL DEFAULT '',
    password_changed_at BIGINT  NOT NULL DEFAULT 0,
    must_change         BOOLEAN NOT NULL DEFAULT false,
    failed_count        INTEGER NOT NULL DEFAULT 0,
    failed_first_at     BIGINT  NOT NULL DEFAULT 0,
    locked_until        BIGINT  NOT NULL DEFAULT 0,
    totp_secret         TEXT    NOT NULL DEFAULT '',
    totp_pending        TEXT    NOT NULL DEFAULT '',
    totp_last_step      BIGINT  NOT NULL DEFAULT 0,
    ip_ranges           TEXT    NOT NULL DEFAULT '[]',
    expiry_notice_at    BIGINT  NOT NULL DEFAULT 0
);
-- The background jobs ask every pass (each second) for lockouts that ran out
-- and passwords due an expiry notice; these partial indexes hold only the
-- rows that can qualify, so a pass costs no scan of every user. Neither
-- covers failed_count, so counting failed sign-ins stays a HOT update.
CREATE INDEX credentials_locked_until ON credentials (locked_until) WHERE locked_until > 0;
CREATE INDEX credentials_expiry ON credentials (password_changed_at, user_id)
    WHERE password_hash <> '' AND expiry_notice_at < password_changed_at;

CREATE TABLE password_history (
    id         BIGSERIAL PRIMARY KEY,
    user_id    BIGINT    NOT NULL REFERENCES users (id),
    hash       TEXT      NOT NULL,
    created_at BIGINT    NOT NULL
);
CREATE INDEX password_history_user ON password_history (user_id, id);

CREATE TABLE recovery_codes (
    id        BIGSERIAL PRIMARY KEY,
    user_id   BIGINT    NOT NULL REFERENCES users (id),
    code_hash TEXT      COLLATE "C" NOT NULL CONSTRAINT recovery_codes_code_hash UNIQUE,
    used_at   BIGINT    NOT NULL DEFAULT 0
);
CREATE INDEX recovery_codes_user ON recovery_codes (user_id);

-- expires_at is the absolute end; idleness is judged from last_seen_at.
CREATE TABLE sessions (
    id           BIGSERIAL PRIMARY KEY,
    token_hash   TEXT      COLLATE "C" NOT NULL CONSTRAINT sessions_token_hash UNIQUE,
    user_id      BIGINT    NOT NULL REFERENCES users (id),
    created_at   BIGINT    NOT NULL,
    last_seen_at BIGINT    NOT NULL,
    expires_at   BIGINT    NOT NULL,
    ip           TEXT      NOT NULL DEFAULT '',
    user_agent   TEXT      NOT NULL DEFAULT '',
    flags        INTEGER   NOT NULL DEFAULT 0
);
CREATE INDEX sessions_user ON sessions (user_id);
CREATE INDEX sessions_expires_at ON sessions (expires_at);

-- Reset and invite tokens; pw_changed_at is the password_changed_at the
-- token was issued against (a later change voids it).
CREATE TABLE auth_tokens (
    id            BIGSERIAL PRIMARY KEY,
    token_hash    TEXT      COLLATE "C" NOT NULL CONSTRAINT auth_tokens_token_hash UNIQUE,
    kind          TEXT      COLLATE "C" NOT NULL CHECK (kind IN ('reset', 'invite')),
    user_id       BIGINT    NOT NULL REFERENCES users (id),
    created_at    BIGINT    NOT NULL,
    expires_at    BIGINT    NOT NULL,
    used_at       BIGINT    NOT NULL DEFAULT 0,
    pw_changed_at BIGINT    NOT NULL DEFAULT 0
);
CREATE INDEX auth_tokens_user ON auth_tokens (user_id);

-- Fixed-window counters (sign-in failures per address, reset requests).
CREATE TABLE rate_limits (
    key          TEXT   COLLATE "C" PRIMARY KEY,
    window_start BIGINT NOT NULL,
    count        BIGINT NOT NULL
);

-- Mail waiting to be sent, and what happened to it. user_id 0: no user (a
-- test message), hence no foreign key.
CREATE TABLE outbox (
    id              BIGSERIAL PRIMARY KEY,
    created_at      BIGINT    NOT NULL,
    kind            TEXT      COLLATE "C" NOT NULL,
    user_id         BIGINT    NOT NULL DEFAULT 0,
    to_addr         TEXT      NOT NULL,
    subject         TEXT      NOT NULL,
    message         TEXT      NOT NULL,
    status          TEXT      COLLATE "C" NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'sent', 'failed')),
    attempts        INTEGER   NOT NULL DEFAULT 0,
    next_attempt_at BIGINT    NOT NULL,
    sent_at         BIGINT    NOT NULL DEFAULT 0,
    last_error      TEXT      NOT NULL DEFAULT ''
);
CREATE INDEX outbox_status_next ON outbox (status, next_attempt_at);

-- One row per background job: which process runs it, until when.
CREATE TABLE leases (
    name  TEXT   COLLATE "C" PRIMARY KEY,
    owner TEXT   NOT NULL,
    until BIGINT NOT NULL
);
