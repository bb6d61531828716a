/* test_store_sqlite_schema.c: schema changes of the SQLite store that must
 * reach every connection, checked by applying the embedded migrations on
 * plain connections. Migration users_checks_without_in edits the users
 * table's CHECK constraints in place (sqlite_master); both the connection
 * that migrates and one that had read the schema before must then insert
 * without an ephemeral table and still refuse values outside the lists.
 * Needs files (tmpdb.h). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <sqlite3.h>

#include "tmpdb.h"

#include "src/store/store.h"

static const char insert_user[] =
    "INSERT INTO users (username, username_key, email, email_key, first_name, last_name, "
    "search_key, type, status, created_at, updated_at) VALUES ('u', ?1, 'e', ?1, 'f', 'l', 's', "
    "?2, ?3, 1, 1)";

static sqlite3 *open_wal(void)
{
    sqlite3 *db = tmpdb_open_wal();
    assert_non_null(db);
    return db;
}

static void apply(sqlite3 *db, const struct rs_migration *m)
{
    char *msg = NULL;
    assert_int_equal(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    if (sqlite3_exec(db, m->sql, NULL, NULL, &msg) != SQLITE_OK)
        fail_msg("migration %04d_%s: %s", m->version, m->name, msg);
    assert_int_equal(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
}

/* Whether db's program for an insert into users opens an ephemeral table. */
static bool insert_uses_ephemeral(sqlite3 *db)
{
    char *sql = sqlite3_mprintf("EXPLAIN %s", insert_user);
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    sqlite3_free(sql);
    bool found = false;
    while (sqlite3_step(st) == SQLITE_ROW)
        if (strcmp((const char *)sqlite3_column_text(st, 1), "OpenEphemeral") == 0)
            found = true;
    sqlite3_finalize(st);
    return found;
}

static int insert(sqlite3 *db, const char *key, const char *type, const char *status)
{
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, insert_user, -1, &st, NULL), SQLITE_OK);
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, type, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, status, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc;
}

/* Inserts first: a statement that runs checks the schema cookie and
 * re-reads a changed schema (EXPLAIN alone does not). */
static void check_connection(sqlite3 *db, const char *who)
{
    static const char *const types[] = {"standard", "admin", "api", "guest"};
    static const char *const statuses[] = {"active", "inactive", "locked", "pending"};
    char key[64];
    for (int t = 0; t < 4; t++) {
        for (int s = 0; s < 4; s++) {
            snprintf(key, sizeof(key), "%s-%d-%d", who, t, s);
            assert_int_equal(insert(db, key, types[t], statuses[s]), SQLITE_DONE);
        }
    }
    snprintf(key, sizeof(key), "%s-bad", who);
    assert_int_equal(insert(db, key, "Standard", "active"), SQLITE_CONSTRAINT);
    assert_int_equal(insert(db, key, "standard", "deleted"), SQLITE_CONSTRAINT);
    assert_int_equal(insert(db, key, "", "active"), SQLITE_CONSTRAINT);
    if (insert_uses_ephemeral(db))
        fail_msg("%s: an insert into users still builds an ephemeral table", who);
}

static void checks_without_in_reach_every_connection(void **state)
{
    assert_int_equal(tmpdb_make("roster-schema"), 0);
    size_t n = 0, at = 0;
    const struct rs_migration *m = rs_migrations("sqlite", &n);
    while (at < n && strcmp(m[at].name, "users_checks_without_in") != 0)
        at++;
    assert_true(at < n);
    sqlite3 *mig = open_wal();
    for (size_t i = 0; i < at; i++)
        apply(mig, &m[i]);
    /* Reads the schema as it was: IN lists, so an ephemeral table. */
    sqlite3 *other = open_wal();
    assert_true(insert_uses_ephemeral(other));
    assert_true(insert_uses_ephemeral(mig));
    apply(mig, &m[at]);
    check_connection(mig, "migrating");
    check_connection(other, "other");
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(mig, "PRAGMA integrity_check", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "ok");
    sqlite3_finalize(st);
    /* The later migrations apply on top. */
    for (size_t i = at + 1; i < n; i++)
        apply(mig, &m[i]);
    sqlite3_close(other);
    sqlite3_close(mig);
    tmpdb_remove();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(checks_without_in_reach_every_connection),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
