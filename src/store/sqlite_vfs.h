/* sqlite_vfs.h: the VFS the SQLite backend opens its files with (see
 * sqlite_vfs.c). */
#ifndef RS_STORE_SQLITE_VFS_H
#define RS_STORE_SQLITE_VFS_H

/* Registers the "roster" VFS on first use; its name, or NULL (then SQLite's
 * default VFS serves). Only for connections with synchronous=FULL. */
const char *rs_sqlite_vfs(void);

#endif
