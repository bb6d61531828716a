/* audit.h: an audit event: who did what to which record, from what to what,
 * when, in which request, and why. The service layer writes one in the same
 * transaction as every change. */
#ifndef RS_AUDIT_H
#define RS_AUDIT_H

#include "../util/util.h"

struct rs_audit_event {
    int64_t id;               /* set by the store */
    int64_t at;               /* ms since the epoch */
    int64_t actor_id;         /* 0: the system (first run, the CLI without a user) */
    const char *actor_name;   /* username at the time, or "system" */
    const char *action;       /* "user.create", "user.update", "apikey.create", ... */
    const char *target_type;  /* "user", "apikey" */
    int64_t target_id;
    const char *request_id;   /* NULL outside a request */
    const char *before_json;  /* the changed fields before; NULL on create */
    const char *after_json;   /* the changed fields after; NULL on delete */
    const char *reason;       /* NULL unless the action takes one */
};

#endif
