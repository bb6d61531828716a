/* test_store_sqlite_vfs.c: the WAL-gathering VFS (src/store/sqlite_vfs.c)
 * and its WAL index stamp. Needs files (tmpdb.h). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include <sqlite3.h>

#include "tmpdb.h"

#include "src/store/sqlite_vfs.h"

static void ex(sqlite3 *db, const char *sql)
{
    char *msg = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK)
        fail_msg("%s: %s", sql, msg ? msg : sqlite3_errstr(rc));
    sqlite3_free(msg);
}

static sqlite3 *open_conn(int flags, const char *vfs)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(tmpdb_path, &db, flags, vfs), SQLITE_OK);
    return db;
}

static char *one_text(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    char *v = strdup((const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    return v;
}

static int setup(void **state)
{
    return tmpdb_make("roster-vfs");
}

static int teardown(void **state)
{
    tmpdb_remove();
    return 0;
}

/* Commits through the VFS are all there, for this connection and others. */
static void commits_are_read_back(void **state)
{
    const char *vfs = rs_sqlite_vfs();
    assert_non_null(vfs);
    sqlite3 *w = open_conn(SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, vfs);
    ex(w, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; CREATE TABLE c(x INTEGER PRIMARY KEY, "
          "y TEXT); CREATE INDEX c_y ON c(y)");
    for (int i = 0; i < 300; i++)
        ex(w, "INSERT INTO c (y) VALUES (hex(randomblob(40)))");
    sqlite3 *r = open_conn(SQLITE_OPEN_READONLY, NULL);
    char *n = one_text(r, "SELECT count(*) FROM c");
    assert_string_equal(n, "300");
    free(n);
    char *ok = one_text(r, "PRAGMA integrity_check");
    assert_string_equal(ok, "ok");
    free(ok);
    sqlite3_close(r);
    sqlite3_close(w);
}

/* Regression (found in review): a transaction large enough to spill frames
 * to the WAL before committing, then rolled back, left them gathered; a
 * second connection then committed frames at the same offsets, and the
 * first connection's next write put the stale bytes over them. The
 * gathered bytes must be out before the WAL write lock is given back. */
static void rolled_back_spill_never_lands_on_later_commits(void **state)
{
    const char *vfs = rs_sqlite_vfs();
    sqlite3 *a = open_conn(SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, vfs);
    ex(a, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA cache_size=10; "
          "CREATE TABLE IF NOT EXISTS t(x INTEGER PRIMARY KEY, y BLOB); "
          "CREATE TABLE IF NOT EXISTS u(x INTEGER PRIMARY KEY, y BLOB)");
    sqlite3_wal_autocheckpoint(a, 0);
    sqlite3 *b = open_conn(SQLITE_OPEN_READWRITE, vfs);
    ex(b, "PRAGMA synchronous=FULL; PRAGMA journal_mode=WAL");
    sqlite3_wal_autocheckpoint(b, 0);
    ex(a, "PRAGMA wal_checkpoint(TRUNCATE)");
    ex(a, "BEGIN IMMEDIATE; WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n "
          "WHERE i < 200) INSERT INTO t SELECT i, randomblob(3000) FROM n; ROLLBACK");
    ex(b, "BEGIN IMMEDIATE; WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n "
          "WHERE i < 200) INSERT INTO u SELECT i, zeroblob(3000) FROM n; COMMIT");
    ex(a, "INSERT INTO t VALUES (100000, 'x')");
    sqlite3 *c = open_conn(SQLITE_OPEN_READONLY, NULL);
    char *ok = one_text(c, "PRAGMA integrity_check");
    assert_string_equal(ok, "ok");
    free(ok);
    char *n = one_text(c, "SELECT (SELECT count(*) FROM u) || '/' || (SELECT count(*) FROM t)");
    assert_string_equal(n, "200/1");
    free(n);
    sqlite3_close(c);
    sqlite3_close(b);
    sqlite3_close(a);
}

/* The WAL index stamp: the same while nothing commits, different after any
 * connection's commit; refused for a connection not opened through the VFS. */
static void wal_stamp_changes_with_every_commit(void **state)
{
    const char *vfs = rs_sqlite_vfs();
    sqlite3 *a = open_conn(SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, vfs);
    ex(a, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; CREATE TABLE s(x)");
    sqlite3 *b = open_conn(SQLITE_OPEN_READWRITE, vfs);
    ex(b, "PRAGMA synchronous=FULL; SELECT count(*) FROM s");
    struct rs_wal_stamp s1, s2, s3;
    assert_true(rs_sqlite_vfs_wal_stamp(b, &s1));
    assert_true(rs_sqlite_vfs_wal_stamp(b, &s2));
    assert_memory_equal(s1.hdr, s2.hdr, sizeof(s1.hdr));
    ex(a, "INSERT INTO s VALUES (1)");
    assert_true(rs_sqlite_vfs_wal_stamp(b, &s3));
    assert_memory_not_equal(s1.hdr, s3.hdr, sizeof(s1.hdr));
    ex(a, "PRAGMA wal_checkpoint(PASSIVE)"); /* copying back is not a commit */
    assert_true(rs_sqlite_vfs_wal_stamp(b, &s2));
    assert_memory_equal(s2.hdr, s3.hdr, sizeof(s2.hdr));
    sqlite3 *plain = open_conn(SQLITE_OPEN_READONLY, NULL);
    ex(plain, "SELECT count(*) FROM s");
    assert_false(rs_sqlite_vfs_wal_stamp(plain, &s2));
    sqlite3_close(plain);
    sqlite3_close(b);
    sqlite3_close(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(commits_are_read_back, setup, teardown),
        cmocka_unit_test_setup_teardown(rolled_back_spill_never_lands_on_later_commits, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(wal_stamp_changes_with_every_commit, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
