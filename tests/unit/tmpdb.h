/* tmpdb.h: a database file in a fresh directory under $TMPDIR (or /tmp), for
 * the unit tests that need files; removed, with its -wal and -shm, at the
 * end. One per test at a time. */
#ifndef RS_TEST_TMPDB_H
#define RS_TEST_TMPDB_H

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static char tmpdb_dir[256], tmpdb_path[300];

/* Makes the directory; tmpdb_path is then "<dir>/t.db" (not created). */
static inline int tmpdb_make(const char *prefix)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(tmpdb_dir, sizeof(tmpdb_dir), "%s/%s-XXXXXX", tmp && *tmp ? tmp : "/tmp", prefix);
    if (!mkdtemp(tmpdb_dir))
        return -1;
    snprintf(tmpdb_path, sizeof(tmpdb_path), "%s/t.db", tmpdb_dir);
    return 0;
}

static inline void tmpdb_remove(void)
{
    char p[320];
    const char *ext[] = {"", "-wal", "-shm"};
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof(p), "%s%s", tmpdb_path, ext[i]);
        unlink(p);
    }
    rmdir(tmpdb_dir);
}

/* A plain connection to tmpdb_path that knows the file is in WAL mode
 * (until it reads the header, a checkpoint through it silently does
 * nothing); NULL if it cannot be opened. */
static inline sqlite3 *tmpdb_open_wal(void)
{
    sqlite3 *db = NULL;
    if (sqlite3_open(tmpdb_path, &db) != SQLITE_OK ||
        sqlite3_exec(db, "PRAGMA journal_mode=WAL", NULL, NULL, NULL) != SQLITE_OK) {
        sqlite3_close(db);
        return NULL;
    }
    return db;
}

#endif
