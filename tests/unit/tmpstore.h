/* tmpstore.h: a roster store on the tmpdb.h file, migrated (cmocka fails
 * the test when it cannot be opened). Include after cmocka.h and tmpdb.h. */
#ifndef RS_TEST_TMPSTORE_H
#define RS_TEST_TMPSTORE_H

#include "src/store/store.h"

static inline struct rs_store *tmpstore_open(void)
{
    char url[sizeof(tmpdb_path) + 8];
    snprintf(url, sizeof(url), "sqlite:%s", tmpdb_path);
    struct rs_store_config cfg = {.url = url, .pool_size = 1, .busy_timeout_ms = 5000};
    struct rs_store *s = NULL;
    struct rs_error err;
    rs_error_init(&err);
    if (rs_store_open(&cfg, &s, &err) < 0)
        fail_msg("open: %s (%s)", err.message, err.log_detail);
    int applied = 0;
    if (s->ops->migrate(s, &applied, &err) < 0)
        fail_msg("migrate: %s (%s)", err.message, err.log_detail);
    return s;
}

#endif
