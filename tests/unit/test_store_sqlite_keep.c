/* test_store_sqlite_keep.c: kept read snapshots in the SQLite store
 * (sqlite.c, "Kept read snapshots"). An event loop's reader may keep its
 * transaction between calls; a call must still see every commit made before
 * it, by this store's writer or by another process (here: a second store on
 * the same file, with connections of its own). Needs files (tmpdb.h). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <unistd.h>
#include <cmocka.h>
#include <sqlite3.h>

#include "tmpdb.h"
#include "tmpstore.h"

#include "src/store/store.h"

static int setup(void **state)
{
    if (tmpdb_make("roster-keep") < 0)
        return -1;
    return 0;
}

static int teardown(void **state)
{
    tmpdb_remove();
    return 0;
}

/* With a busy timeout, as the store's own connections have: the stores'
 * background checkpointer may be checkpointing when this one asks, and a
 * TRUNCATE checkpoint then waits for it rather than failing with BUSY. */
static sqlite3 *open_raw(void)
{
    sqlite3 *db = tmpdb_open_wal();
    assert_non_null(db);
    sqlite3_busy_timeout(db, 5000);
    return db;
}

static struct rs_store *open_store(void)
{
    return tmpstore_open();
}

/* Writes the settings document `key` = json in its own transaction, as
 * version `version`; 0 or -1 (no cmocka asserts: it also runs on threads of
 * its own). */
static int try_put_key(struct rs_store *s, const char *key, const char *json, int64_t version)
{
    struct rs_error err;
    rs_error_init(&err);
    struct rs_conn *c = s->ops->acquire(s, RS_CONN_WRITE, &err);
    if (!c)
        return -1;
    int r = s->ops->begin(c, &err);
    if (r == 0)
        r = s->ops->settings_put(c, key, json, version, version - 1, 0, &err);
    if (r == 0)
        r = s->ops->commit(c, &err);
    else
        s->ops->rollback(c);
    s->ops->release(c);
    return r < 0 ? -1 : 0;
}

static int try_put(struct rs_store *s, const char *json, int64_t version)
{
    return try_put_key(s, "keep.test", json, version);
}

static void put(struct rs_store *s, const char *json, int64_t version)
{
    assert_int_equal(try_put(s, json, version), 0);
}

/* A put on a thread of its own, as the server's writes run on pool threads
 * (a write on the reading thread would drop its kept snapshot first). */
struct put_args {
    struct rs_store *s;
    const char *json;
    int64_t version;
    int result;
    const char *key; /* NULL: keep.test */
};

static void *put_main(void *arg)
{
    struct put_args *a = arg;
    a->result = try_put_key(a->s, a->key ? a->key : "keep.test", a->json, a->version);
    return NULL;
}

static void put_elsewhere(struct rs_store *s, const char *json, int64_t version)
{
    struct put_args a = {s, json, version, -1, NULL};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, put_main, &a), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(a.result, 0);
}

/* The value as a read call sees it; "" when never written. */
static void get(struct rs_store *s, char *out, size_t size)
{
    struct rs_error err;
    rs_error_init(&err);
    struct rs_conn *c = s->ops->acquire(s, RS_CONN_READ, &err);
    assert_non_null(c);
    char *json = NULL;
    int64_t version = 0;
    int r = s->ops->settings_get(c, "keep.test", &json, &version, &err);
    s->ops->release(c);
    if (r == -RS_ENOTFOUND) {
        out[0] = '\0';
        return;
    }
    assert_int_equal(r, 0);
    snprintf(out, size, "%s", json);
    free(json);
}

/* A store whose reads on this thread keep their snapshot, with keep.test =
 * json (version 1) read once, so a snapshot is kept. */
static struct rs_store *open_keeping(const char *json)
{
    struct rs_store *s = open_store();
    char v[64];
    s->ops->read_keep(s, true);
    put(s, json, 1);
    get(s, v, sizeof(v));
    assert_string_equal(v, json);
    assert_true(s->ops->read_kept(s));
    return s;
}

static void kept_snapshot_sees_every_commit(void **state)
{
    struct rs_store *s = open_store();
    struct rs_store *other = open_store(); /* another process's connections */
    char v[64];
    assert_non_null(s->ops->read_keep);
    s->ops->read_keep(s, true);

    get(s, v, sizeof(v));
    assert_string_equal(v, "");
    assert_true(s->ops->read_kept(s)); /* the snapshot outlived the call */

    put_elsewhere(s, "\"one\"", 1); /* this store's writer, on another thread */
    get(s, v, sizeof(v));
    assert_string_equal(v, "\"one\"");

    get(s, v, sizeof(v)); /* nothing committed: the kept snapshot serves */
    assert_string_equal(v, "\"one\"");
    assert_true(s->ops->read_kept(s));

    put_elsewhere(other, "\"two\"", 2); /* someone else's writer */
    get(s, v, sizeof(v));
    assert_string_equal(v, "\"two\"");

    for (int i = 3; i < 40; i++) { /* alternating, and across log restarts */
        char want[32];
        snprintf(want, sizeof(want), "\"v%d\"", i);
        put_elsewhere(i % 2 ? other : s, want, i);
        if (i % 7 == 0) {
            sqlite3 *db = open_raw();
            s->ops->read_drop(s); /* what the loop's timer does */
            int log = -1;
            assert_int_equal(sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_TRUNCATE,
                                                       &log, NULL),
                             SQLITE_OK);
            assert_int_equal(log, 0); /* truncated: the next commit starts a new log */
            sqlite3_close(db);
        }
        get(s, v, sizeof(v));
        assert_string_equal(v, want);
    }

    s->ops->read_drop(s);
    assert_false(s->ops->read_kept(s));
    s->ops->read_keep(s, false);
    get(s, v, sizeof(v));
    assert_false(s->ops->read_kept(s)); /* not kept on a thread that did not ask */
    other->ops->close(other);
    s->ops->close(s);
}

/* While a snapshot is kept, a checkpoint that must restart the log waits for
 * it (why the loop drops it within milliseconds); once dropped, it goes. */
static void kept_snapshot_holds_back_restart_until_dropped(void **state)
{
    char v[64];
    struct rs_store *s = open_keeping("\"a\"");
    put_elsewhere(s, "\"b\"", 2); /* the kept snapshot is now one commit behind */

    sqlite3 *db = open_raw();
    sqlite3_busy_timeout(db, 300);
    assert_int_equal(sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_RESTART, NULL, NULL),
                     SQLITE_BUSY);
    s->ops->read_drop(s);
    int log = -1, done = -1;
    assert_int_equal(sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_RESTART, &log, &done),
                     SQLITE_OK);
    assert_true(log > 0); /* there was a log to restart */
    assert_int_equal(done, log);
    sqlite3_close(db);
    get(s, v, sizeof(v));
    assert_string_equal(v, "\"b\"");
    s->ops->read_keep(s, false);
    s->ops->read_drop(s);
    s->ops->close(s);
}

/* The store's own checkpointer, restarting the log after a large commit,
 * waits for readers while it holds the writer: a loop polling (read_kept,
 * before every poll) drops a snapshot that restart waits for, without a
 * further acquire. Without that, read_kept stays true here and the restart
 * waits out its busy timeout. */
static void checkpointer_restart_ends_a_kept_snapshot(void **state)
{
    char v[64];
    struct rs_store *s = open_keeping("\"small\"");

    /* ~5,000 log pages in one commit: past the checkpointer's 4,000. */
    size_t n = 20u * 1024 * 1024;
    char *big = malloc(n + 3);
    assert_non_null(big);
    big[0] = '"';
    memset(big + 1, 'x', n);
    big[n + 1] = '"';
    big[n + 2] = '\0';
    /* Another document: replacing it later would rewrite its pages (Debian
     * builds SQLite with secure_delete) and fill the log again. */
    struct put_args a = {s, big, 1, -1, "keep.big"};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, put_main, &a), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(a.result, 0);
    free(big);

    bool kept = true;
    for (int i = 0; i < 1000 && kept; i++) { /* up to ~5 s, as a loop polls */
        usleep(5000);
        kept = s->ops->read_kept(s);
    }
    assert_false(kept);
    s->ops->read_keep(s, false);
    /* The restart went through: once the checkpointer is done, the next
     * commit starts the log again from its beginning. */
    sqlite3 *db = open_raw();
    int log = -1, done = -2;
    for (int i = 0; i < 500 && !(log > 0 && log == done); i++) {
        int rc = sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_PASSIVE, &log, &done);
        assert_true(rc == SQLITE_OK || rc == SQLITE_BUSY); /* BUSY: the checkpointer's turn */
        usleep(10000);
    }
    assert_true(log > 4000);
    assert_int_equal(done, log);
    put_elsewhere(s, "\"after\"", 2);
    assert_int_equal(sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_PASSIVE, &log, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    assert_in_range(log, 1, 99);
    get(s, v, sizeof(v));
    assert_string_equal(v, "\"after\"");
    s->ops->close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(kept_snapshot_sees_every_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(kept_snapshot_holds_back_restart_until_dropped, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(checkpointer_restart_ends_a_kept_snapshot, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
