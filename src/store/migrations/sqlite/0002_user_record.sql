-- 0002_user_record: the complete user record (profile, organisation, system
-- fields, custom fields), status transitions, settings, custom field
-- definitions, per-status counts for the licence limit, and a trigram index
-- for search.
-- Optional text columns hold '' for "none" (the store maps it to NULL), so
-- sorting and keyset paging need no NULL handling and '' sorts first.
ALTER TABLE users ADD COLUMN phone TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN employee_id TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN employee_id_key TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN department TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN position TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN location TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN role TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN manager_id INTEGER REFERENCES users (id);
ALTER TABLE users ADD COLUMN status_reason TEXT;
ALTER TABLE users ADD COLUMN status_note TEXT;
ALTER TABLE users ADD COLUMN status_changed_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN custom_json TEXT;
ALTER TABLE users ADD COLUMN last_login_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN erased_at INTEGER NOT NULL DEFAULT 0;
UPDATE users SET status_changed_at = created_at;

CREATE UNIQUE INDEX users_employee_id_key ON users (employee_id_key) WHERE employee_id_key <> '';
CREATE INDEX users_department_last_name ON users (department, last_name, id);
CREATE INDEX users_location ON users (location, id);
CREATE INDEX users_status ON users (status, id);
CREATE INDEX users_role ON users (role, id);
CREATE INDEX users_manager ON users (manager_id) WHERE manager_id IS NOT NULL;
CREATE INDEX users_last_login_at ON users (last_login_at, id);

-- How many users have each status and type: the licence limit and the
-- last-administrator rule read these instead of counting a million rows.
CREATE TABLE user_counts (
    status TEXT    NOT NULL,
    type   TEXT    NOT NULL,
    n      INTEGER NOT NULL,
    PRIMARY KEY (status, type)
);
INSERT INTO user_counts (status, type, n)
    SELECT s.status, t.type, 0
    FROM (SELECT 'active' AS status UNION ALL SELECT 'inactive' UNION ALL SELECT 'locked'
          UNION ALL SELECT 'pending') s,
         (SELECT 'standard' AS type UNION ALL SELECT 'admin' UNION ALL SELECT 'api'
          UNION ALL SELECT 'guest') t;
UPDATE user_counts SET n = (SELECT count(*) FROM users u
                            WHERE u.status = user_counts.status AND u.type = user_counts.type);
CREATE TRIGGER users_count_insert AFTER INSERT ON users BEGIN
    UPDATE user_counts SET n = n + 1 WHERE status = NEW.status AND type = NEW.type;
END;
CREATE TRIGGER users_count_update AFTER UPDATE OF status, type ON users
    WHEN OLD.status <> NEW.status OR OLD.type <> NEW.type BEGIN
    UPDATE user_counts SET n = n - 1 WHERE status = OLD.status AND type = OLD.type;
    UPDATE user_counts SET n = n + 1 WHERE status = NEW.status AND type = NEW.type;
END;
CREATE TRIGGER users_count_delete AFTER DELETE ON users BEGIN
    UPDATE user_counts SET n = n - 1 WHERE status = OLD.status AND type = OLD.type;
END;

-- Free-text search: a trigram index over the folded search key.
CREATE VIRTUAL TABLE users_fts USING fts5 (search_key, content = 'users', content_rowid = 'id',
                                           tokenize = 'trigram');
INSERT INTO users_fts (users_fts) VALUES ('rebuild');
CREATE TRIGGER users_fts_insert AFTER INSERT ON users BEGIN
    INSERT INTO users_fts (rowid, search_key) VALUES (NEW.id, NEW.search_key);
END;
CREATE TRIGGER users_fts_delete AFTER DELETE ON users BEGIN
    INSERT INTO users_fts (users_fts, rowid, search_key) VALUES ('delete', OLD.id, OLD.search_key);
END;
CREATE TRIGGER users_fts_update AFTER UPDATE OF search_key ON users BEGIN
    INSERT INTO users_fts (users_fts, rowid, search_key) VALUES ('delete', OLD.id, OLD.search_key);
    INSERT INTO users_fts (rowid, search_key) VALUES (NEW.id, NEW.search_key);
END;

-- Settings documents (JSON), one per area ("users").
CREATE TABLE settings (
    key        TEXT    PRIMARY KEY,
    value      TEXT    NOT NULL,
    version    INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE custom_fields (
    id           INTEGER PRIMARY KEY,
    key          TEXT    NOT NULL UNIQUE,
    label        TEXT    NOT NULL,
    type         TEXT    NOT NULL CHECK (type IN ('text', 'number', 'date', 'boolean', 'choice')),
    required     INTEGER NOT NULL DEFAULT 0,
    default_json TEXT,
    options_json TEXT,
    pattern      TEXT,
    min          REAL,
    max          REAL,
    active       INTEGER NOT NULL DEFAULT 1,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    version      INTEGER NOT NULL DEFAULT 1
);
