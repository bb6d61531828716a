/* error.h: the one error type that travels up from core, store and service to
 * the front ends. http maps it to a status and an RFC 9457 problem body; the
 * CLI prints it. A message is for the user; log_detail goes only to the log
 * (PostgreSQL's errdetail_log) because it may be security-sensitive. */
#ifndef RS_ERROR_H
#define RS_ERROR_H

#include "../util/util.h"

/* Codes are small positive numbers; fallible functions return 0 or -code. */
enum rs_code {
    RS_OK = 0,
    RS_EBADREQUEST,      /* malformed syntax, unknown or mistyped field: 400 */
    RS_EVALIDATION,      /* well-formed but breaks a rule (required, format): 422 */
    RS_EUNAUTHENTICATED, /* missing or bad credentials: 401 */
    RS_EFORBIDDEN,       /* authenticated but not allowed: 403 */
    RS_ENOTFOUND,        /* 404 */
    RS_EMETHOD,          /* 405 */
    RS_ECONFLICT,        /* uniqueness or state conflict: 409 */
    RS_EPRECONDITION,    /* stale If-Match: 412 */
    RS_ETOOLARGE,        /* 413 */
    RS_EMEDIATYPE,       /* 415 */
    RS_EUNAVAILABLE,     /* database unreachable, shutting down: 503 */
    RS_EINTERNAL,        /* a bug or an unexpected failure: 500 */
    RS_ETHROTTLED,       /* too many attempts: 429 (with Retry-After) */
    RS_EUPSTREAM,        /* a server we depend on (SMTP) refused or is down: 502 */
    RS_CODE_COUNT
};

#define RS_MAX_FIELD_ERRORS 16

struct rs_field_error {
    char field[64];   /* JSON name of the field ("email"), truncated if longer */
    char rule[32];    /* machine-readable rule ("required", "unique", "max_length") */
    char message[1024];
};

struct rs_error {
    int code;          /* enum rs_code, RS_OK when unset */
    char message[1024]; /* for the user; says what and why */
    char log_detail[256];
    int nfields;
    struct rs_field_error fields[RS_MAX_FIELD_ERRORS];
};

void rs_error_init(struct rs_error *e);

/* Sets the code and, if none is set yet, the message; returns -(the error's
 * code), so a caller can write `return rs_error_set(err, RS_ENOTFOUND, ...);`.
 * The first code wins, except that RS_EBADREQUEST replaces RS_EVALIDATION (a
 * malformed request outranks a rule failure, whatever the field order).
 * err may be NULL. */
int rs_error_set(struct rs_error *e, int code, const char *fmt, ...) RS_PRINTF(3, 4);

/* Adds a field error (dropped past RS_MAX_FIELD_ERRORS) and sets the code as
 * rs_error_set does; the first field error's message also becomes the
 * top-level message. Returns -(the error's code). */
int rs_error_field(struct rs_error *e, int code, const char *field, const char *rule,
                   const char *fmt, ...) RS_PRINTF(5, 6);

/* Appends log-only detail (never shown to a client). */
void rs_error_log(struct rs_error *e, const char *fmt, ...) RS_PRINTF(2, 3);

/* Stable lower-case name of a code ("not_found"), used in problem type URIs. */
const char *rs_code_name(int code);
/* Human title of a code ("Not Found"). */
const char *rs_code_title(int code);

#endif
