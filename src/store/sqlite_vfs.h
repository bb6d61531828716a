/* sqlite_vfs.h: the VFS the SQLite backend opens its files with (see
 * sqlite_vfs.c). */
#ifndef RS_STORE_SQLITE_VFS_H
#define RS_STORE_SQLITE_VFS_H

#include <stdbool.h>

/* Registers the "roster" VFS on first use; its name, or NULL (then SQLite's
 * default VFS serves). Only for connections with synchronous=FULL. */
const char *rs_sqlite_vfs(void);

/* Whether WAL writes made on this thread are gathered (the default). A
 * thread about to commit without a sync (synchronous=NORMAL) turns it off
 * for that transaction: gathering is safe only when the commit syncs. */
void rs_sqlite_vfs_gather(bool on);

#endif
