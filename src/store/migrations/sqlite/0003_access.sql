-- 0003_access: resources, roles (with the built-in ones), secondary roles,
-- groups with members and roles, and the access version that invalidates
-- every process's permission cache.
CREATE TABLE resources (
    key        TEXT    PRIMARY KEY,
    label      TEXT    NOT NULL,
    module     TEXT    NOT NULL DEFAULT '',
    built_in   INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL
);
INSERT INTO resources (key, label, module, built_in, created_at) VALUES
    ('users', 'Users', 'roster', 1, 0), ('roles', 'Roles', 'roster', 1, 0),
    ('groups', 'Groups', 'roster', 1, 0), ('settings', 'Settings', 'roster', 1, 0),
    ('audit', 'Audit trail', 'roster', 1, 0), ('reports', 'Reports', 'roster', 1, 0),
    ('import', 'Import', 'roster', 1, 0), ('export', 'Export', 'roster', 1, 0),
    ('api_keys', 'API keys', 'roster', 1, 0);

-- permissions: JSON object resource key -> level; "*" (every resource, including
-- those modules register later) is used only by the built-in administrator.
CREATE TABLE roles (
    id          INTEGER PRIMARY KEY,
    key         TEXT    NOT NULL UNIQUE,
    name        TEXT    NOT NULL,
    description TEXT    NOT NULL DEFAULT '',
    permissions TEXT    NOT NULL,
    built_in    INTEGER NOT NULL DEFAULT 0,
    active      INTEGER NOT NULL DEFAULT 1,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    version     INTEGER NOT NULL DEFAULT 1
);
INSERT INTO roles (key, name, description, permissions, built_in, created_at, updated_at) VALUES
    ('administrator', 'Administrator', 'Everything, on every resource', '{"*":"admin"}', 1, 0, 0),
    ('user_manager', 'User Manager', 'Manages users and groups',
     '{"users":"write","groups":"write","roles":"read","import":"write","export":"write","reports":"read","audit":"read","api_keys":"read","settings":"read"}',
     1, 0, 0),
    ('auditor', 'Auditor', 'Reads every built-in resource, changes nothing',
     '{"users":"read","roles":"read","groups":"read","settings":"read","audit":"read","reports":"read","import":"read","export":"read","api_keys":"read"}',
     1, 0, 0),
    ('standard_user', 'Standard User', 'Looks up colleagues and groups',
     '{"users":"read","groups":"read"}', 1, 0, 0),
    ('guest', 'Guest', 'Looks up colleagues', '{"users":"read"}', 1, 0, 0);

UPDATE users SET role = 'administrator' WHERE type = 'admin' AND role = '';
UPDATE users SET role = 'standard_user' WHERE role = '';

CREATE TABLE user_roles (
    user_id  INTEGER NOT NULL REFERENCES users (id),
    role_key TEXT    NOT NULL,
    PRIMARY KEY (user_id, role_key)
);

CREATE TABLE groups (
    id          INTEGER PRIMARY KEY,
    name        TEXT    NOT NULL,
    name_key    TEXT    NOT NULL UNIQUE,
    description TEXT    NOT NULL DEFAULT '',
    email       TEXT,
    roles       TEXT    NOT NULL DEFAULT '[]',
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    version     INTEGER NOT NULL DEFAULT 1
);
CREATE TABLE group_members (
    group_id INTEGER NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    user_id  INTEGER NOT NULL REFERENCES users (id),
    added_at INTEGER NOT NULL,
    PRIMARY KEY (group_id, user_id)
);
CREATE INDEX group_members_user ON group_members (user_id, group_id);

-- One row: bumped in the same transaction as any change that can change
-- someone's access; every process polls it to drop stale cache entries.
CREATE TABLE access_version (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    version INTEGER NOT NULL
);
INSERT INTO access_version (id, version) VALUES (1, 1);
