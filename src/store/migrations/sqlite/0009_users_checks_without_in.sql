-- 0009_users_checks_without_in: the CHECK constraints on users.type and
-- users.status as comparisons instead of IN lists; the same values pass.
--
-- SQLite evaluates `x IN (<more than two constants>)` through an ephemeral
-- b-tree that it builds from the list every time the statement runs, so
-- every INSERT into users opened, filled and closed two temporary b-trees
-- (68k of the 498k instructions on a create's request path, callgrind over
-- 1,000 single-client creates on the 100k bench set). `x = 'a' OR x = 'b'`
-- is a few comparisons.
--
-- SQLite cannot ALTER a CHECK. A rebuild of users would copy every user
-- and rebuild thirteen indexes while the server starts; instead this edits
-- the stored CREATE TABLE text, SQLite's documented way to change a table's
-- constraints in place (lang_altertable.html, "Making Other Kinds Of Table
-- Schema Changes"), safe here because every stored row passes the new
-- constraint (it is the same constraint). `writable_schema = RESET` makes
-- this connection read the schema again; the throwaway table bumps the
-- schema cookie, so every other connection, in this process or another,
-- reads it again before its next statement. The last statements refuse to
-- commit if the text was not found (an IN list still in the table).
PRAGMA writable_schema = ON;
UPDATE sqlite_master
   SET sql = replace(replace(sql,
           'CHECK (type IN (''standard'', ''admin'', ''api'', ''guest''))',
           'CHECK (type = ''standard'' OR type = ''admin'' OR type = ''api'' OR type = ''guest'')'),
           'CHECK (status IN (''active'', ''inactive'', ''locked'', ''pending''))',
           'CHECK (status = ''active'' OR status = ''inactive'' OR status = ''locked'' OR status = ''pending'')')
 WHERE type = 'table' AND name = 'users';
PRAGMA writable_schema = RESET;
CREATE TABLE users_checks_schema_bump (x INTEGER);
DROP TABLE users_checks_schema_bump;
CREATE TEMP TABLE users_checks_done (ok INTEGER NOT NULL CHECK (ok));
INSERT INTO users_checks_done
    SELECT instr(sql, ' IN (') = 0 FROM sqlite_master WHERE type = 'table' AND name = 'users';
DROP TABLE users_checks_done;
