/* sqlite_vfs.h: the VFS the SQLite backend opens its files with (see
 * sqlite_vfs.c). */
#ifndef RS_STORE_SQLITE_VFS_H
#define RS_STORE_SQLITE_VFS_H

#include <sqlite3.h>
#include <stdbool.h>

/* Registers the "roster" VFS on first use; its name, or NULL (then SQLite's
 * default VFS serves). Only for connections with synchronous=FULL. */
const char *rs_sqlite_vfs(void);

/* Whether WAL writes made on this thread are gathered (the default). A
 * thread about to commit without a sync (synchronous=NORMAL) turns it off
 * for that transaction: gathering is safe only when the commit syncs. */
void rs_sqlite_vfs_gather(bool on);

/* A WAL index header as one connection last saw it: equal stamps taken at
 * two moments mean no transaction committed in between, in any process. */
struct rs_wal_stamp {
    unsigned char hdr[48];
};

/* Reads db's WAL index header (db opened through this VFS, in WAL mode,
 * with its index mapped). False when it cannot tell (not mapped yet, a
 * writer halfway through publishing, another VFS): treat as changed. */
bool rs_sqlite_vfs_wal_stamp(sqlite3 *db, struct rs_wal_stamp *ret);

#endif
