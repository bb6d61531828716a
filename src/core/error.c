/* error.c: building struct rs_error values (see error.h). */
#include <stdio.h>

#include "error.h"

static const struct {
    const char *name;
    const char *title;
} code_info[RS_CODE_COUNT] = {
    [RS_OK] = {"ok", "OK"},
    [RS_EBADREQUEST] = {"bad_request", "Bad Request"},
    [RS_EVALIDATION] = {"validation", "Validation Failed"},
    [RS_EUNAUTHENTICATED] = {"unauthenticated", "Unauthorized"},
    [RS_EFORBIDDEN] = {"forbidden", "Forbidden"},
    [RS_ENOTFOUND] = {"not_found", "Not Found"},
    [RS_EMETHOD] = {"method_not_allowed", "Method Not Allowed"},
    [RS_ECONFLICT] = {"conflict", "Conflict"},
    [RS_EPRECONDITION] = {"precondition_failed", "Precondition Failed"},
    [RS_ETOOLARGE] = {"too_large", "Content Too Large"},
    [RS_EMEDIATYPE] = {"unsupported_media_type", "Unsupported Media Type"},
    [RS_EUNAVAILABLE] = {"unavailable", "Service Unavailable"},
    [RS_EINTERNAL] = {"internal", "Internal Server Error"},
    [RS_ETHROTTLED] = {"throttled", "Too Many Requests"},
    [RS_EUPSTREAM] = {"upstream", "Bad Gateway"},
};

void rs_error_init(struct rs_error *e)
{
    /* Only what marks the error empty: this runs several times per request,
     * and the field array is large. A NULL error is allowed everywhere an
     * error is (rs_error_set ignores it too). */
    if (!e)
        return;
    e->code = RS_OK;
    e->message[0] = '\0';
    e->log_detail[0] = '\0';
    e->nfields = 0;
}

/* The first code wins, except that a malformed request (400) outranks a
 * rule failure (422) found in the same request: the status must not depend
 * on the order of the fields. */
static void set_code(struct rs_error *e, int code)
{
    if (e->code == RS_OK || (e->code == RS_EVALIDATION && code == RS_EBADREQUEST))
        e->code = code;
}

int rs_error_set(struct rs_error *e, int code, const char *fmt, ...)
{
    if (!e)
        return -code;
    set_code(e, code);
    if (e->message[0] == '\0') {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e->message, sizeof(e->message), fmt, ap);
        va_end(ap);
        rs_utf8_sanitize(e->message);
    }
    return -e->code;
}

int rs_error_field(struct rs_error *e, int code, const char *field, const char *rule,
                   const char *fmt, ...)
{
    if (!e)
        return -code;
    set_code(e, code);
    if (e->nfields < RS_MAX_FIELD_ERRORS) {
        struct rs_field_error *f = &e->fields[e->nfields++];
        rs_strlcpy(f->field, field, sizeof(f->field));
        rs_strlcpy(f->rule, rule, sizeof(f->rule));
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(f->message, sizeof(f->message), fmt, ap);
        va_end(ap);
        /* Field names and messages may quote client input, cut to size: keep
         * them valid UTF-8 so they survive into JSON problem bodies. */
        rs_utf8_sanitize(f->field);
        rs_utf8_sanitize(f->message);
        if (e->message[0] == '\0')
            rs_strlcpy(e->message, f->message, sizeof(e->message));
    }
    return -e->code;
}

void rs_error_log(struct rs_error *e, const char *fmt, ...)
{
    if (!e)
        return;
    size_t used = strlen(e->log_detail);
    if (used + 3 >= sizeof(e->log_detail))
        return;
    if (used) {
        e->log_detail[used++] = ';';
        e->log_detail[used++] = ' ';
        e->log_detail[used] = '\0';
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->log_detail + used, sizeof(e->log_detail) - used, fmt, ap);
    va_end(ap);
}

const char *rs_code_name(int code)
{
    if (code < 0)
        code = -code;
    return code < RS_CODE_COUNT ? code_info[code].name : "internal";
}

const char *rs_code_title(int code)
{
    if (code < 0)
        code = -code;
    return code < RS_CODE_COUNT ? code_info[code].title : "Internal Server Error";
}
