/* lifecycle.c: the status state machine and its reasons (see lifecycle.h). */
#include <stdio.h>

#include "lifecycle.h"

static const char *const action_names[RS_ACTION_COUNT] = {"activate", "deactivate",
                                                           "reactivate", "lock", "unlock"};
static const char *const reason_names[RS_REASON_COUNT] = {"left_company", "temporary_leave",
                                                           "security_concern", "other"};

/* from x action -> to; -1 where the action is not allowed. */
static const int table[RS_STATUS_COUNT][RS_ACTION_COUNT] = {
    [RS_STATUS_ACTIVE] = {-1, RS_STATUS_INACTIVE, -1, RS_STATUS_LOCKED, -1},
    [RS_STATUS_INACTIVE] = {-1, -1, RS_STATUS_ACTIVE, -1, -1},
    [RS_STATUS_LOCKED] = {-1, -1, -1, -1, RS_STATUS_ACTIVE},
    [RS_STATUS_PENDING] = {RS_STATUS_ACTIVE, -1, -1, -1, -1},
};

const char *rs_action_name(enum rs_user_action a)
{
    return (unsigned)a < RS_ACTION_COUNT ? action_names[a] : "?";
}

int rs_action_parse(const char *s, enum rs_user_action *ret)
{
    for (int i = 0; i < RS_ACTION_COUNT; i++) {
        if (strcmp(s, action_names[i]) == 0) {
            *ret = (enum rs_user_action)i;
            return 0;
        }
    }
    return -1;
}

const char *rs_reason_name(enum rs_deactivate_reason r)
{
    return (unsigned)r < RS_REASON_COUNT ? reason_names[r] : "other";
}

int rs_reason_parse(const char *s, enum rs_deactivate_reason *ret)
{
    for (int i = 0; i < RS_REASON_COUNT; i++) {
        if (strcmp(s, reason_names[i]) == 0) {
            *ret = (enum rs_deactivate_reason)i;
            return 0;
        }
    }
    return -1;
}

int rs_lifecycle_next(enum rs_user_status from, enum rs_user_action a,
                      enum rs_user_status *ret_to, struct rs_error *err)
{
    if ((unsigned)from >= RS_STATUS_COUNT || (unsigned)a >= RS_ACTION_COUNT)
        return rs_error_set(err, RS_EINTERNAL, "unknown status or action");
    int to = table[from][a];
    if (to >= 0) {
        *ret_to = (enum rs_user_status)to;
        return 0;
    }
    char allowed[96] = "";
    size_t used = 0;
    for (int i = 0; i < RS_ACTION_COUNT; i++) {
        if (table[from][i] < 0)
            continue;
        int n = snprintf(allowed + used, sizeof(allowed) - used, "%s%s", used ? ", " : "",
                         action_names[i]);
        used += n > 0 ? (size_t)n : 0;
    }
    return rs_error_field(err, RS_ECONFLICT, "status", "transition",
                          "cannot %s a user who is %s; from %s the allowed actions are: %s",
                          action_names[a], rs_user_status_name(from), rs_user_status_name(from),
                          used ? allowed : "none");
}

int rs_lifecycle_check_reason(enum rs_user_action a, const char *reason, const char *note,
                              struct rs_error *err)
{
    int before = err->nfields;
    if (note) {
        long n = rs_utf8_length(note, strlen(note));
        if (n < 0 || n > RS_NOTE_MAX)
            rs_error_field(err, RS_EVALIDATION, "note", "max_length",
                           "note must be valid UTF-8 of at most %d characters", RS_NOTE_MAX);
    }
    if (a == RS_ACTION_DEACTIVATE) {
        enum rs_deactivate_reason r;
        if (!reason)
            rs_error_field(err, RS_EVALIDATION, "reason", "required",
                           "reason is required: left_company, temporary_leave, "
                           "security_concern or other");
        else if (rs_reason_parse(reason, &r) < 0)
            rs_error_field(err, RS_EVALIDATION, "reason", "enum",
                           "reason must be one of left_company, temporary_leave, "
                           "security_concern, other");
        else if (r == RS_REASON_OTHER && (!note || !*note))
            rs_error_field(err, RS_EVALIDATION, "note", "required",
                           "note is required when the reason is other");
    } else if (reason) {
        rs_error_field(err, RS_EBADREQUEST, "reason", "unknown_field",
                       "only deactivate takes a reason; use note");
    }
    return err->nfields != before ? -err->code : 0;
}

int rs_manager_check(int64_t user_id, const char *username, int64_t manager_id,
                     const int64_t *chain_ids, char *const *chain_names, size_t n,
                     struct rs_error *err)
{
    if (manager_id == 0)
        return 0;
    if (user_id != 0 && manager_id == user_id)
        return rs_error_field(err, RS_EVALIDATION, "manager_id", "cycle",
                              "manager chain would loop: %s \xe2\x86\x92 %s (a user cannot be "
                              "their own manager)",
                              username ? username : "?", username ? username : "?");
    size_t loop_at = n;
    for (size_t i = 0; i < n; i++) {
        if (user_id != 0 && chain_ids[i] == user_id) {
            loop_at = i;
            break;
        }
    }
    if (loop_at == n)
        return 0;
    /* "jsmith -> mjones -> ... -> jsmith" */
    char msg[1000];
    size_t used = 0;
    int w = snprintf(msg, sizeof(msg), "%s", username ? username : "?");
    used = w > 0 ? (size_t)w : 0;
    for (size_t i = 0; i <= loop_at && used < sizeof(msg); i++) {
        w = snprintf(msg + used, sizeof(msg) - used, " \xe2\x86\x92 %s",
                     chain_names && chain_names[i] ? chain_names[i] : "?");
        used += w > 0 ? (size_t)w : 0;
    }
    return rs_error_field(err, RS_EVALIDATION, "manager_id", "cycle",
                          "manager chain would loop: %s", msg);
}
