/* sqlite_vfs.c: "roster", a thin VFS over SQLite's default one that writes a
 * commit's WAL frames with one system call.
 *
 * SQLite writes each WAL frame as two writes (its 24-byte header, then the
 * page), so a create's ~19 frames cost ~38 pwrite calls, each locking the
 * inode and touching two page-cache pages (frames are 4120 bytes, not page
 * aligned). This layer gathers consecutive writes to a WAL file in a buffer
 * and hands them to the real file as one write before anything else touches
 * that file: a sync, a read, a size query, a truncate, a lock, a close.
 *
 * Why this is safe: other connections (readers, the checkpointer) learn of
 * new frames only from the WAL index, which SQLite updates after the commit's
 * sync, and the sync writes the buffer first. That holds because roster runs
 * every connection with synchronous=FULL (sqlite.c, conn_open), where SQLite
 * syncs the WAL at each commit; with synchronous=NORMAL it would not, so a
 * thread about to commit without a sync turns gathering off for itself first
 * (rs_sqlite_vfs_gather; the search indexer does). Database files pass
 * straight through. */
#include <pthread.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "sqlite_vfs.h"

/* Larger writes go through as they are. The unix VFS writes at most 128 KiB
 * - 1 per call (seekAndWrite masks the count with 0x1ffff, and a write of
 * exactly 128 KiB reports SQLITE_FULL), so stay below that; a create's
 * ~19 frames are 78 KiB. */
#define GATHER_MAX (120 * 1024)

struct gfile {
    sqlite3_file base;
    sqlite3_file *real; /* follows this struct in the same allocation */
    bool wal;
    char *buf;
    int len;
    sqlite3_int64 off;
    struct gfile *db;  /* a WAL file: its database file's wrapper */
    struct gfile *log; /* a database file: its open WAL file's wrapper, or NULL */
    const volatile unsigned char *shm0; /* a database file: its WAL index's first region */
};

static sqlite3_vfs *real_vfs;
static _Thread_local bool no_gather; /* rs_sqlite_vfs_gather(false) on this thread */

#define REAL(f) (((struct gfile *)(f))->real)

/* Writes the gathered bytes. On failure they stay gathered, so the commit's
 * sync retries and fails in turn: SQLite never takes a commit for done
 * whose frames were not written. */
static int flush(struct gfile *g)
{
    if (g->len == 0)
        return SQLITE_OK;
    int rc = g->real->pMethods->xWrite(g->real, g->buf, g->len, g->off);
    if (rc == SQLITE_OK)
        g->len = 0;
    return rc;
}

/* Called on the database file before SQLite takes or gives back a WAL
 * lock (slot 0 is the WAL write lock). Gathered bytes go out first. A
 * writer gives back the write lock after its commit (whose sync wrote
 * everything) or after a rollback: whatever is still gathered then belongs
 * to a transaction that is over (frames a large transaction spilled before
 * rolling back). It is written, as the real VFS already had, and dropped
 * even if that fails: once the lock is free, another connection may write
 * frames at those offsets, and late bytes would land on them. */
static int settle_log(struct gfile *db, int offset, int flags)
{
    struct gfile *log = db->log;
    if (!log || log->len == 0)
        return SQLITE_OK;
    int rc = flush(log);
    if ((flags & SQLITE_SHM_UNLOCK) && offset == 0) {
        log->len = 0;
        return SQLITE_OK;
    }
    return rc;
}

static int g_close(sqlite3_file *f)
{
    struct gfile *g = (struct gfile *)f;
    int rc = flush(g);
    g->len = 0;
    if (g->db && g->db->log == g)
        g->db->log = NULL;
    if (g->log)
        g->log->db = NULL;
    int rc2 = g->real->pMethods->xClose(g->real);
    free(g->buf);
    g->buf = NULL;
    return rc != SQLITE_OK ? rc : rc2;
}

static int g_read(sqlite3_file *f, void *p, int amt, sqlite3_int64 off)
{
    int rc = flush((struct gfile *)f);
    return rc != SQLITE_OK ? rc : REAL(f)->pMethods->xRead(REAL(f), p, amt, off);
}

static int g_write(sqlite3_file *f, const void *p, int amt, sqlite3_int64 off)
{
    struct gfile *g = (struct gfile *)f;
    if (!g->wal)
        return g->real->pMethods->xWrite(g->real, p, amt, off);
    if (no_gather) {
        int rc = flush(g);
        return rc != SQLITE_OK ? rc : g->real->pMethods->xWrite(g->real, p, amt, off);
    }
    if (g->len > 0 && (off != g->off + g->len || g->len + amt > GATHER_MAX)) {
        int rc = flush(g);
        if (rc != SQLITE_OK)
            return rc;
    }
    if (amt > GATHER_MAX)
        return g->real->pMethods->xWrite(g->real, p, amt, off);
    if (!g->buf) {
        g->buf = malloc(GATHER_MAX);
        if (!g->buf)
            return g->real->pMethods->xWrite(g->real, p, amt, off);
    }
    if (g->len == 0)
        g->off = off;
    memcpy(g->buf + g->len, p, (size_t)amt);
    g->len += amt;
    return SQLITE_OK;
}

static int g_truncate(sqlite3_file *f, sqlite3_int64 size)
{
    int rc = flush((struct gfile *)f);
    return rc != SQLITE_OK ? rc : REAL(f)->pMethods->xTruncate(REAL(f), size);
}

static int g_sync(sqlite3_file *f, int flags)
{
    int rc = flush((struct gfile *)f);
    return rc != SQLITE_OK ? rc : REAL(f)->pMethods->xSync(REAL(f), flags);
}

static int g_file_size(sqlite3_file *f, sqlite3_int64 *size)
{
    int rc = flush((struct gfile *)f);
    return rc != SQLITE_OK ? rc : REAL(f)->pMethods->xFileSize(REAL(f), size);
}

static int g_lock(sqlite3_file *f, int level)
{
    int rc = flush((struct gfile *)f);
    return rc != SQLITE_OK ? rc : REAL(f)->pMethods->xLock(REAL(f), level);
}

static int g_unlock(sqlite3_file *f, int level)
{
    int rc = flush((struct gfile *)f);
    return rc != SQLITE_OK ? rc : REAL(f)->pMethods->xUnlock(REAL(f), level);
}

static int g_check_reserved(sqlite3_file *f, int *out)
{
    return REAL(f)->pMethods->xCheckReservedLock(REAL(f), out);
}

static int g_file_control(sqlite3_file *f, int op, void *arg)
{
    int rc = flush((struct gfile *)f);
    return rc != SQLITE_OK ? rc : REAL(f)->pMethods->xFileControl(REAL(f), op, arg);
}

static int g_sector_size(sqlite3_file *f)
{
    return REAL(f)->pMethods->xSectorSize(REAL(f));
}

static int g_device_characteristics(sqlite3_file *f)
{
    return REAL(f)->pMethods->xDeviceCharacteristics(REAL(f));
}

static int g_shm_map(sqlite3_file *f, int pg, int pgsz, int extend, void volatile **pp)
{
    int rc = REAL(f)->pMethods->xShmMap(REAL(f), pg, pgsz, extend, pp);
    if (rc == SQLITE_OK && pg == 0 && *pp)
        ((struct gfile *)f)->shm0 = *pp;
    return rc;
}

static int g_shm_lock(sqlite3_file *f, int offset, int n, int flags)
{
    int rc = settle_log((struct gfile *)f, offset, flags);
    return rc != SQLITE_OK ? rc : REAL(f)->pMethods->xShmLock(REAL(f), offset, n, flags);
}

static void g_shm_barrier(sqlite3_file *f)
{
    REAL(f)->pMethods->xShmBarrier(REAL(f));
}

static int g_shm_unmap(sqlite3_file *f, int del)
{
    ((struct gfile *)f)->shm0 = NULL;
    return REAL(f)->pMethods->xShmUnmap(REAL(f), del);
}

static int g_fetch(sqlite3_file *f, sqlite3_int64 off, int amt, void **pp)
{
    int rc = flush((struct gfile *)f);
    return rc != SQLITE_OK ? rc : REAL(f)->pMethods->xFetch(REAL(f), off, amt, pp);
}

static int g_unfetch(sqlite3_file *f, sqlite3_int64 off, void *p)
{
    return REAL(f)->pMethods->xUnfetch(REAL(f), off, p);
}

static const sqlite3_io_methods g_methods = {
    .iVersion = 3,
    .xClose = g_close,
    .xRead = g_read,
    .xWrite = g_write,
    .xTruncate = g_truncate,
    .xSync = g_sync,
    .xFileSize = g_file_size,
    .xLock = g_lock,
    .xUnlock = g_unlock,
    .xCheckReservedLock = g_check_reserved,
    .xFileControl = g_file_control,
    .xSectorSize = g_sector_size,
    .xDeviceCharacteristics = g_device_characteristics,
    .xShmMap = g_shm_map,
    .xShmLock = g_shm_lock,
    .xShmBarrier = g_shm_barrier,
    .xShmUnmap = g_shm_unmap,
    .xFetch = g_fetch,
    .xUnfetch = g_unfetch,
};

static int g_open(sqlite3_vfs *vfs, sqlite3_filename name, sqlite3_file *f, int flags,
                  int *out_flags)
{
    struct gfile *g = (struct gfile *)f;
    memset(g, 0, sizeof(*g));
    g->real = (sqlite3_file *)(g + 1);
    g->wal = (flags & SQLITE_OPEN_WAL) != 0;
    int rc = real_vfs->xOpen(real_vfs, name, g->real, flags, out_flags);
    /* SQLite calls xClose only when pMethods is set, so set it only when the
     * real file is open. The unix VFS's files have version 3 methods, every
     * one of which is forwarded; anything older is refused. */
    if (g->real->pMethods && g->real->pMethods->iVersion < 3) {
        g->real->pMethods->xClose(g->real);
        return SQLITE_CANTOPEN;
    }
    if (g->real->pMethods)
        g->base.pMethods = &g_methods;
    /* Tie a WAL file to its database file (opened first, through this VFS
     * as well): the database file's WAL locks decide when gathered bytes
     * must be out (settle_log). */
    if (rc == SQLITE_OK && g->wal && name) {
        sqlite3_file *dbf = sqlite3_database_file_object(name);
        if (dbf && dbf->pMethods == &g_methods) {
            g->db = (struct gfile *)dbf;
            g->db->log = g;
        }
    }
    return rc;
}

static sqlite3_vfs g_vfs;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static bool g_ok;

static void g_register(void)
{
    real_vfs = sqlite3_vfs_find(NULL);
    if (!real_vfs)
        return;
    /* Every other method is the real VFS's own (they do not depend on which
     * vfs struct they are called through). */
    g_vfs = *real_vfs;
    g_vfs.pNext = NULL;
    g_vfs.zName = "roster";
    g_vfs.szOsFile = (int)sizeof(struct gfile) + real_vfs->szOsFile;
    g_vfs.xOpen = g_open;
    g_ok = sqlite3_vfs_register(&g_vfs, 0) == SQLITE_OK;
}

/* The WAL index header, as documented in SQLite's "WAL-mode File Formats":
 * two 48-byte copies at the start of the -shm file's first region. A writer
 * publishes a commit by rewriting them (the second copy first, then the
 * first), and iChange, in both, counts every write transaction; a
 * checkpoint that restarts the log rewrites them too (new salts). So while
 * the first copy reads the same, no transaction has committed since. When the
 * copies differ, a writer is between the two and the stamp is refused. */
#define WAL_HDR_SIZE 48

bool rs_sqlite_vfs_wal_stamp(sqlite3 *db, struct rs_wal_stamp *ret)
{
    sqlite3_file *f = NULL;
    if (sqlite3_file_control(db, "main", SQLITE_FCNTL_FILE_POINTER, &f) != SQLITE_OK || !f ||
        f->pMethods != &g_methods)
        return false;
    const volatile unsigned char *h = ((struct gfile *)f)->shm0;
    if (!h)
        return false;
    unsigned char second[WAL_HDR_SIZE];
    _Static_assert(sizeof(ret->hdr) == WAL_HDR_SIZE, "one header copy");
    for (int i = 0; i < WAL_HDR_SIZE; i++)
        ret->hdr[i] = h[i];
    __atomic_thread_fence(__ATOMIC_ACQUIRE);
    for (int i = 0; i < WAL_HDR_SIZE; i++)
        second[i] = h[WAL_HDR_SIZE + i];
    /* isInit (byte 12) is set once the index describes the log. */
    return ret->hdr[12] != 0 && memcmp(ret->hdr, second, WAL_HDR_SIZE) == 0;
}

void rs_sqlite_vfs_gather(bool on)
{
    no_gather = !on;
}

const char *rs_sqlite_vfs(void)
{
    pthread_once(&g_once, g_register);
    return g_ok ? "roster" : NULL;
}
