-- 0007_session_privilege: a session's id is renewed when its user's
-- privileges change (docs/design/auth-contract.md, "Session rotation").
--
-- credentials.privilege_epoch is bumped, in the transaction of the change,
-- by every change of a user's type, roles, groups or their groups' roles;
-- sessions.privilege_epoch is the epoch a session was made at. A session of
-- another epoch is replaced on its next request. Existing rows get 0 on both
-- sides, so sessions made before this migration go on working.
--
-- sessions.csrf_seed: the CSRF token derives from it (it used to derive from
-- the session token, which rotation changes). '' marks a session from before
-- this migration, whose CSRF token still derives from its token.
--
-- session_successors: for a short grace after a rotation, requests still
-- carrying the replaced token (sent in parallel) map to the new session.
ALTER TABLE credentials ADD COLUMN privilege_epoch INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN privilege_epoch INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN csrf_seed TEXT NOT NULL DEFAULT '';

CREATE TABLE session_successors (
    token_hash TEXT    PRIMARY KEY,
    session_id INTEGER NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    until      INTEGER NOT NULL
);
CREATE INDEX session_successors_session ON session_successors (session_id);
CREATE INDEX session_successors_until ON session_successors (until);
