/* h_users.c: /api/v1/users handlers: decode, call one service function,
 * encode. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>

#include "../core/user_json.h"
#include "codec.h"
#include "http.h"

static void set_user_headers(struct rs_call *call, const struct rs_user *u, bool location)
{
    snprintf(call->etag, sizeof(call->etag), "\"%" PRId64 "\"", u->version);
    if (location)
        snprintf(call->location, sizeof(call->location), "/api/v1/users/%" PRId64, u->id);
}

/* Parses an If-Match value: "*" (any), or one quoted version ("3", W/"3").
 * Returns the version, -1 for any, or -2 for a value that matches nothing. */
static int64_t if_match_version(const char *v)
{
    if (!v)
        return -1;
    while (*v == ' ')
        v++;
    if (strcmp(v, "*") == 0)
        return -1;
    if (v[0] != '"')
        return -2;
    char *end = NULL;
    errno = 0;
    long long n = strtoll(v + 1, &end, 10);
    if (errno || end == v + 1 || *end != '"' || end[1] != '\0' || n < 0)
        return -2;
    return n;
}

int rs_h_users_create(struct rs_call *call)
{
    json_t *body = rs_call_body_object(call);
    if (!body)
        return rs_call_fail(call, -RS_EBADREQUEST);
    struct rs_user in, out;
    unsigned mask = 0;
    int r = rs_user_decode(body, &in, &mask, &call->err);
    json_decref(body);
    if (r < 0)
        return rs_call_fail(call, r);
    r = rs_svc_user_create(&call->ctx, &in, mask, &out, &call->err);
    rs_user_release(&in);
    if (r < 0)
        return rs_call_fail(call, r);
    set_user_headers(call, &out, true);
    rs_call_json(call, 201, rs_user_to_json(&out));
    rs_user_release(&out);
    return 0;
}

int rs_h_users_get(struct rs_call *call)
{
    struct rs_user u;
    int r = rs_svc_user_get(&call->ctx, call->id, &u, &call->err);
    if (r < 0)
        return rs_call_fail(call, r);
    set_user_headers(call, &u, false);
    rs_call_json(call, 200, rs_user_to_json(&u));
    rs_user_release(&u);
    return 0;
}

int rs_h_users_update(struct rs_call *call)
{
    int64_t expected = if_match_version(call->if_match);
    if (expected == -2) {
        rs_error_set(&call->err, RS_EPRECONDITION,
                     "If-Match must be \"*\" or the quoted version from the ETag");
        return rs_call_fail(call, -RS_EPRECONDITION);
    }
    json_t *body = rs_call_body_object(call);
    if (!body)
        return rs_call_fail(call, -RS_EBADREQUEST);
    struct rs_user patch, out;
    unsigned mask = 0;
    int r = rs_user_decode(body, &patch, &mask, &call->err);
    json_decref(body);
    if (r < 0)
        return rs_call_fail(call, r);
    r = rs_svc_user_update(&call->ctx, call->id, &patch, mask, expected, &out, &call->err);
    rs_user_release(&patch);
    if (r < 0)
        return rs_call_fail(call, r);
    set_user_headers(call, &out, false);
    rs_call_json(call, 200, rs_user_to_json(&out));
    rs_user_release(&out);
    return 0;
}

static const char *const list_params[] = {"q", "status", "type", "sort", "limit", "cursor", NULL};

/* Turns the query string into a core query, naming the parameter at fault. */
static int decode_list_query(struct rs_call *call, struct rs_user_query *q)
{
    struct rs_query_params p;
    int r = rs_query_parse(call->query, &p, &call->err);
    if (r < 0)
        return r;
    r = rs_query_check(&p, list_params, &call->err);
    const char *v;
    if (r == 0 && (v = rs_query_get(&p, "q")) && *v)
        q->q = rs_xstrdup(v);
    if (r == 0 && (v = rs_query_get(&p, "status"))) {
        if (rs_user_status_parse(v, &q->status) < 0)
            r = rs_error_field(&call->err, RS_EBADREQUEST, "status", "enum",
                               "status must be one of active, inactive, locked, pending");
        q->has_status = 1;
    }
    if (r == 0 && (v = rs_query_get(&p, "type"))) {
        if (rs_user_type_parse(v, &q->type) < 0)
            r = rs_error_field(&call->err, RS_EBADREQUEST, "type", "enum",
                               "type must be one of standard, admin, api, guest");
        q->has_type = 1;
    }
    if (r == 0 && (v = rs_query_get(&p, "sort")))
        r = rs_sort_parse(v, q, &call->err);
    if (r == 0 && (v = rs_query_get(&p, "limit"))) {
        char *end = NULL;
        errno = 0;
        long n = strtol(v, &end, 10);
        if (errno || !*v || *end || n < 1 || n > RS_LIST_LIMIT_MAX)
            r = rs_error_field(&call->err, RS_EBADREQUEST, "limit", "range",
                               "limit must be a whole number from 1 to %d", RS_LIST_LIMIT_MAX);
        else
            q->limit = (int)n;
    }
    if (r == 0 && (v = rs_query_get(&p, "cursor")) && *v)
        r = rs_cursor_decode(v, q, &call->err);
    rs_query_release(&p);
    return r;
}

int rs_h_users_list(struct rs_call *call)
{
    struct rs_user_query q;
    struct rs_user_page page = {0};
    rs_user_query_init(&q);
    int r = decode_list_query(call, &q);
    if (r == 0)
        r = rs_svc_user_list(&call->ctx, &q, &page, &call->err);
    if (r < 0) {
        rs_user_query_release(&q);
        return rs_call_fail(call, r);
    }
    json_t *items = json_array();
    for (size_t i = 0; i < page.count; i++)
        json_array_append_new(items, rs_user_to_json(&page.items[i]));
    json_t *o = json_object();
    json_object_set_new(o, "items", items);
    if (page.has_more && page.count > 0) {
        char *c = rs_cursor_encode(&q, &page.items[page.count - 1]);
        json_object_set_new(o, "next_cursor", json_string(c));
        free(c);
    } else {
        json_object_set_new(o, "next_cursor", json_null());
    }
    json_object_set_new(o, "total", json_integer(page.total));
    rs_call_json(call, 200, o);
    rs_user_page_release(&page);
    rs_user_query_release(&q);
    return 0;
}

int rs_h_users_history(struct rs_call *call)
{
    char *events = NULL;
    int r = rs_svc_user_history(&call->ctx, call->id, &events, &call->err);
    if (r < 0)
        return rs_call_fail(call, r);
    json_t *arr = json_loads(events, 0, NULL);
    free(events);
    if (!arr)
        return rs_call_fail(call, -RS_EINTERNAL);
    json_t *o = json_object();
    json_object_set_new(o, "items", arr);
    rs_call_json(call, 200, o);
    return 0;
}
