/* store.c: picks the backend a --db URL names (see store.h). */
#include "store.h"

int rs_store_open(const struct rs_store_config *cfg, struct rs_store **ret, struct rs_error *err)
{
    const char *url = cfg->url;
    if (strncmp(url, "sqlite:", 7) == 0) {
        const char *path = url + 7;
        if (strncmp(path, "//", 2) == 0)
            path += 2;
        if (*path == '\0')
            return rs_error_field(err, RS_EVALIDATION, "db", "format",
                                  "--db sqlite: needs a file path, as in sqlite:var/roster.db");
        return rs_sqlite_open(cfg, path, ret, err);
    }
    if (strncmp(url, "postgres://", 11) == 0 || strncmp(url, "postgresql://", 13) == 0)
        return rs_postgres_open(cfg, ret, err);
    return rs_error_field(err, RS_EVALIDATION, "db", "format",
                          "--db must be sqlite:PATH or postgres://user@host:port/dbname");
}
