/* h_notify.c: /api/v1/settings/auth, /api/v1/settings/notifications (with
 * ETag / If-Match), the test message, and the outbox list. */
#include <errno.h>
#include <stdio.h>

#include "../service/notify.h"
#include "codec.h"
#include "http.h"

#define OUTBOX_LIMIT_DEFAULT 100
#define OUTBOX_LIMIT_MAX 500

static void set_etag(struct rs_call *call, int64_t version)
{
    snprintf(call->etag, sizeof(call->etag), "\"%lld\"", (long long)version);
}

int rs_h_settings_auth_get(struct rs_call *call)
{
    struct rs_auth_settings s;
    int r = rs_svc_auth_settings_get(&call->ctx, &s, &call->err);
    if (r < 0)
        return rs_call_fail(call, r);
    set_etag(call, s.version);
    rs_call_json(call, 200, rs_auth_settings_to_json(&s));
    rs_auth_settings_release(&s);
    return 0;
}

int rs_h_settings_auth_patch(struct rs_call *call)
{
    int64_t expected;
    if (rs_call_if_match(call, &expected) < 0)
        return -RS_EPRECONDITION;
    json_t *body = rs_call_body_object(call);
    if (!body)
        return rs_call_fail(call, -RS_EBADREQUEST);
    struct rs_auth_settings s;
    int r = rs_svc_auth_settings_patch(&call->ctx, body, expected, &s, &call->err);
    json_decref(body);
    if (r < 0)
        return rs_call_fail(call, r);
    set_etag(call, s.version);
    rs_call_json(call, 200, rs_auth_settings_to_json(&s));
    rs_auth_settings_release(&s);
    return 0;
}

int rs_h_settings_notify_get(struct rs_call *call)
{
    struct rs_notify_settings s;
    int r = rs_svc_notify_settings_get(&call->ctx, &s, &call->err);
    if (r < 0)
        return rs_call_fail(call, r);
    set_etag(call, s.version);
    rs_call_json(call, 200, rs_notify_settings_to_json(&s, false));
    rs_notify_settings_release(&s);
    return 0;
}

int rs_h_settings_notify_patch(struct rs_call *call)
{
    int64_t expected;
    if (rs_call_if_match(call, &expected) < 0)
        return -RS_EPRECONDITION;
    json_t *body = rs_call_body_object(call);
    if (!body)
        return rs_call_fail(call, -RS_EBADREQUEST);
    struct rs_notify_settings s;
    int r = rs_svc_notify_settings_patch(&call->ctx, body, expected, &s, &call->err);
    json_decref(body);
    if (r < 0)
        return rs_call_fail(call, r);
    set_etag(call, s.version);
    rs_call_json(call, 200, rs_notify_settings_to_json(&s, false));
    rs_notify_settings_release(&s);
    return 0;
}

int rs_h_settings_notify_test(struct rs_call *call)
{
    json_t *body = rs_call_body_object(call);
    if (!body)
        return rs_call_fail(call, -RS_EBADREQUEST);
    int r = 0;
    const char *key;
    json_t *v;
    json_object_foreach(body, key, v)
    {
        if (strcmp(key, "to") != 0)
            r = rs_error_field(&call->err, RS_EBADREQUEST, key, "unknown_field",
                               "unknown field \"%.64s\"; the body is {\"to\": address}", key);
    }
    json_t *to = json_object_get(body, "to");
    if (r == 0 && !to)
        r = rs_error_field(&call->err, RS_EVALIDATION, "to", "required",
                           "to is required: the address the test message goes to");
    if (r == 0 && !json_is_string(to))
        r = rs_error_field(&call->err, RS_EBADREQUEST, "to", "type", "to must be a string");
    if (r == 0)
        r = rs_svc_notify_test(&call->ctx, json_string_value(to), &call->err);
    json_decref(body);
    if (r < 0)
        return rs_call_fail(call, r);
    rs_call_json(call, 200, json_pack("{s:b}", "sent", 1));
    return 0;
}

static json_t *time_or_null(int64_t ms)
{
    if (ms <= 0)
        return json_null();
    char buf[RS_TIME_STR_MAX];
    rs_time_format(ms, buf);
    return json_string(buf);
}

static json_t *mail_to_json(const struct rs_mail *m)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", json_integer(m->id));
    json_object_set_new(o, "created_at", time_or_null(m->created_at));
    json_object_set_new(o, "kind", json_string(m->kind ? m->kind : ""));
    json_object_set_new(o, "user_id", m->user_id > 0 ? json_integer(m->user_id) : json_null());
    json_object_set_new(o, "to", json_string(m->to_addr ? m->to_addr : ""));
    json_object_set_new(o, "subject", json_string(m->subject ? m->subject : ""));
    json_object_set_new(o, "status", json_string(m->status ? m->status : ""));
    json_object_set_new(o, "attempts", json_integer(m->attempts));
    json_object_set_new(o, "next_attempt_at", time_or_null(m->next_attempt_at));
    json_object_set_new(o, "sent_at", time_or_null(m->sent_at));
    json_object_set_new(o, "last_error",
                        m->last_error && m->last_error[0] ? json_string(m->last_error)
                                                          : json_null());
    return o;
}

static int whole_number(struct rs_call *call, const char *name, const char *v, long long max,
                        long long *dst)
{
    char *end = NULL;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    if (errno || !*v || *end || n < 1 || n > max)
        return rs_error_field(&call->err, RS_EBADREQUEST, name, "range",
                              "%s must be a whole number from 1 to %lld", name, max);
    *dst = n;
    return 0;
}

int rs_h_outbox_list(struct rs_call *call)
{
    static const char *const allowed[] = {"status", "user_id", "limit", NULL};
    struct rs_query_params p;
    int r = rs_query_parse(call->query, &p, &call->err);
    if (r < 0)
        return rs_call_fail(call, r);
    r = rs_query_check(&p, allowed, &call->err);
    const char *status = NULL, *v;
    long long user_id = 0, limit = OUTBOX_LIMIT_DEFAULT;
    if (r == 0 && (v = rs_query_get(&p, "status"))) {
        if (strcmp(v, "pending") != 0 && strcmp(v, "sent") != 0 && strcmp(v, "failed") != 0)
            r = rs_error_field(&call->err, RS_EBADREQUEST, "status", "enum",
                               "status must be one of pending, sent, failed");
        status = v;
    }
    if (r == 0 && (v = rs_query_get(&p, "user_id")))
        r = whole_number(call, "user_id", v, INT64_MAX, &user_id);
    if (r == 0 && (v = rs_query_get(&p, "limit")))
        r = whole_number(call, "limit", v, OUTBOX_LIMIT_MAX, &limit);
    struct rs_mail *items = NULL;
    size_t n = 0;
    if (r == 0)
        r = rs_svc_outbox_list(&call->ctx, status, (int64_t)user_id, (int)limit, &items, &n,
                               &call->err);
    rs_query_release(&p);
    if (r < 0)
        return rs_call_fail(call, r);
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, mail_to_json(&items[i]));
    rs_mails_free(items, n);
    json_t *o = json_object();
    json_object_set_new(o, "items", arr);
    rs_call_json(call, 200, o);
    return 0;
}
