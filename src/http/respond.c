/* respond.c: shaping handler results and RFC 9457 problem bodies. */
#include <errno.h>
#include <sodium.h>

#include "codec.h"
#include "http.h"

int rs_http_status(int code)
{
    static const int map[RS_CODE_COUNT] = {
        [RS_OK] = 200,
        [RS_EBADREQUEST] = 400,
        [RS_EVALIDATION] = 422,
        [RS_EUNAUTHENTICATED] = 401,
        [RS_EFORBIDDEN] = 403,
        [RS_ENOTFOUND] = 404,
        [RS_EMETHOD] = 405,
        [RS_ECONFLICT] = 409,
        [RS_EPRECONDITION] = 412,
        [RS_ETOOLARGE] = 413,
        [RS_EMEDIATYPE] = 415,
        [RS_EUNAVAILABLE] = 503,
        [RS_EINTERNAL] = 500,
        [RS_ETHROTTLED] = 429,
        [RS_EUPSTREAM] = 502,
    };
    if (code < 0)
        code = -code;
    return code > 0 && code < RS_CODE_COUNT ? map[code] : 500;
}

int rs_call_if_match(struct rs_call *call, int64_t *ret)
{
    const char *v = call->if_match;
    if (!v) {
        *ret = -1;
        return 0;
    }
    while (*v == ' ')
        v++;
    /* If-Match compares strongly (RFC 9110): a weak tag matches nothing. */
    if (strcmp(v, "*") == 0) {
        *ret = -1;
        return 0;
    }
    char *end = NULL;
    errno = 0;
    long long n = v[0] == '"' ? strtoll(v + 1, &end, 10) : -1;
    if (v[0] != '"' || errno || end == v + 1 || strcmp(end, "\"") != 0 || n < 0) {
        rs_error_set(&call->err, RS_EPRECONDITION,
                     "If-Match must be \"*\" or the quoted version from the ETag");
        return rs_call_fail(call, -RS_EPRECONDITION);
    }
    *ret = n;
    return 0;
}

int rs_call_fail(struct rs_call *call, int r)
{
    if (r >= 0)
        r = -RS_EINTERNAL;
    if (call->err.code == RS_OK)
        call->err.code = -r;
    call->status = rs_http_status(call->err.code);
    return r;
}

void rs_call_json(struct rs_call *call, int status, json_t *body)
{
    call->status = status;
    call->json = body;
}

void rs_call_json_text(struct rs_call *call, int status, char *text)
{
    call->status = status;
    call->text = text;
    call->content_type = "application/json";
}

json_t *rs_call_body_object(struct rs_call *call)
{
    if (!call->body) {
        rs_error_field(&call->err, RS_EBADREQUEST, "body", "required",
                       "a JSON object body is required");
        return NULL;
    }
    return rs_json_parse_object(call->body, call->body_len, &call->err);
}

char *rs_problem_encode(const struct rs_error *err, int status, const char *instance,
                        const char *request_id)
{
    json_t *o = json_object();
    char *type = rs_xasprintf("https://roster.dev/problems/%s", rs_code_name(err->code));
    json_object_set_new(o, "type", json_string(type));
    free(type);
    json_object_set_new(o, "title", json_string(rs_code_title(err->code)));
    json_object_set_new(o, "status", json_integer(status));
    if (status >= 500 && err->code != RS_EUNAVAILABLE && err->code != RS_EUPSTREAM) {
        /* (A 502 carries the upstream server's answer, which the admin needs.) */
        /* Nothing about the cause leaves the server: the id finds it in the log. */
        char *detail = rs_xasprintf("internal error; request id %s", request_id);
        json_object_set_new(o, "detail", json_string(detail));
        free(detail);
    } else {
        json_object_set_new(o, "detail",
                            json_string(err->message[0] ? err->message : rs_code_title(err->code)));
    }
    if (instance)
        json_object_set_new(o, "instance", json_string(instance));
    json_object_set_new(o, "request_id", json_string(request_id));
    if (err->nfields > 0 && status < 500) {
        json_t *arr = json_array();
        for (int i = 0; i < err->nfields; i++) {
            json_t *f = json_object();
            json_object_set_new(f, "field", json_string(err->fields[i].field));
            json_object_set_new(f, "rule", json_string(err->fields[i].rule));
            json_object_set_new(f, "message", json_string(err->fields[i].message));
            json_array_append_new(arr, f);
        }
        json_object_set_new(o, "errors", arr);
    }
    char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    return s;
}

char *rs_session_cookie(const char *token, bool secure, int max_age_s)
{
    /* __Host-: no Domain, Path=/; the browser refuses it without Secure, so
     * plain-HTTP development sees the same name without the attribute. */
    char buf[256];
    if (!token)
        snprintf(buf, sizeof(buf),
                 "__Host-roster_session=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict%s",
                 secure ? "; Secure" : "");
    else if (max_age_s > 0)
        snprintf(buf, sizeof(buf),
                 "__Host-roster_session=%s; Path=/; Max-Age=%d; HttpOnly; SameSite=Strict%s",
                 token, max_age_s, secure ? "; Secure" : "");
    else
        snprintf(buf, sizeof(buf), "__Host-roster_session=%s; Path=/; HttpOnly; SameSite=Strict%s",
                 token, secure ? "; Secure" : "");
    return rs_xstrdup(buf);
}

void rs_call_session_rotated(struct rs_call *call)
{
    if (!call->ctx.session_token_new[0])
        return;
    if (call->set_cookie) {
        sodium_memzero(call->set_cookie, strlen(call->set_cookie));
        free(call->set_cookie);
    }
    call->set_cookie = rs_session_cookie(call->ctx.session_token_new, call->ctx.secure, 0);
    sodium_memzero(call->ctx.session_token_new, sizeof(call->ctx.session_token_new));
}
