/* access.c: the first-slice access rule (see access.h). */
#include "access.h"

static const char *const resource_names[RS_RES_COUNT] = {"users", "api_keys", "audit", "system",
                                                         "settings"};
static const char *const level_names[] = {"none", "read", "write", "admin"};

const char *rs_resource_name(enum rs_resource r)
{
    return (unsigned)r < RS_RES_COUNT ? resource_names[r] : "unknown";
}

const char *rs_level_name(enum rs_level l)
{
    return (unsigned)l <= RS_LEVEL_ADMIN ? level_names[l] : "none";
}

enum rs_level rs_access_level(enum rs_user_type type, enum rs_user_status status,
                              enum rs_resource res)
{
    if (status != RS_STATUS_ACTIVE)
        return RS_LEVEL_NONE;
    switch (type) {
    case RS_USER_ADMIN:
        return RS_LEVEL_ADMIN;
    case RS_USER_STANDARD:
    case RS_USER_API:
    case RS_USER_GUEST: /* guests are capped at read */
        return res == RS_RES_USERS ? RS_LEVEL_READ : RS_LEVEL_NONE;
    default:
        return RS_LEVEL_NONE;
    }
}
