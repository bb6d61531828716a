/* lifecycle.h: the user status state machine. Pending -> Active (activate);
 * Active -> Inactive (deactivate) and back (reactivate); Active -> Locked
 * (lock) and back (unlock). Erase is a separate action on any status. Pure. */
#ifndef RS_LIFECYCLE_H
#define RS_LIFECYCLE_H

#include "user.h"

enum rs_user_action {
    RS_ACTION_ACTIVATE,
    RS_ACTION_DEACTIVATE,
    RS_ACTION_REACTIVATE,
    RS_ACTION_LOCK,
    RS_ACTION_UNLOCK,
    RS_ACTION_COUNT
};

/* Reasons a deactivation must give (the spec's list). */
enum rs_deactivate_reason {
    RS_REASON_LEFT_COMPANY,
    RS_REASON_TEMPORARY_LEAVE,
    RS_REASON_SECURITY_CONCERN,
    RS_REASON_OTHER,
    RS_REASON_COUNT
};

const char *rs_action_name(enum rs_user_action a);
int rs_action_parse(const char *s, enum rs_user_action *ret) RS_WUR;
const char *rs_reason_name(enum rs_deactivate_reason r);
int rs_reason_parse(const char *s, enum rs_deactivate_reason *ret) RS_WUR;

/* The status action a leads to from `from`, or -RS_ECONFLICT (field "status",
 * rule "transition") saying which actions `from` allows. */
int rs_lifecycle_next(enum rs_user_status from, enum rs_user_action a,
                      enum rs_user_status *ret_to, struct rs_error *err) RS_WUR;

/* Checks an action's reason and note: deactivate needs a known reason, and a
 * note when the reason is "other"; notes are at most RS_NOTE_MAX characters. */
int rs_lifecycle_check_reason(enum rs_user_action a, const char *reason, const char *note,
                              struct rs_error *err) RS_WUR;

/* Whether a manager chain loops. chain[0] is the proposed manager, each next
 * entry the manager of the one before, up to n entries (names for the
 * message). Returns -RS_EVALIDATION (field "manager_id", rule "cycle") naming
 * the loop when user_id appears in it or the manager is the user. */
int rs_manager_check(int64_t user_id, const char *username, int64_t manager_id,
                     const int64_t *chain_ids, char *const *chain_names, size_t n,
                     struct rs_error *err) RS_WUR;

#endif
