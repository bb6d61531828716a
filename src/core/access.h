/* access.h: who may do what. First slice: the access level follows the user
 * type (Admin: everything; Standard, API and Guest: read users), and anyone
 * may manage their own API keys. Roles and groups replace this table (issue 4)
 * without changing its callers. Pure. */
#ifndef RS_ACCESS_H
#define RS_ACCESS_H

#include <stdbool.h>

#include "user.h"

enum rs_resource {
    RS_RES_USERS,
    RS_RES_APIKEYS,
    RS_RES_AUDIT,
    RS_RES_SYSTEM,
    RS_RES_SETTINGS,
    RS_RES_COUNT
};
enum rs_level { RS_LEVEL_NONE, RS_LEVEL_READ, RS_LEVEL_WRITE, RS_LEVEL_ADMIN };

const char *rs_resource_name(enum rs_resource r);
const char *rs_level_name(enum rs_level l);

/* The level a user of this type and status holds on a resource. */
enum rs_level rs_access_level(enum rs_user_type type, enum rs_user_status status,
                              enum rs_resource res);

static inline bool rs_access_allows(enum rs_user_type type, enum rs_user_status status,
                                    enum rs_resource res, enum rs_level need)
{
    return rs_access_level(type, status, res) >= need;
}

#endif
