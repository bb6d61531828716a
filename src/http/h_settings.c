/* h_settings.c: /api/v1/settings/users and its custom fields. */
#include <errno.h>
#include <stdio.h>

#include "codec.h"
#include "http.h"

/* "*" or absent: any version (-1); "N": N; anything else: -2. */
static void settings_answer(struct rs_call *call, const struct rs_user_settings *s)
{
    snprintf(call->etag, sizeof(call->etag), "\"%lld\"", (long long)s->version);
    rs_call_json(call, 200, rs_user_settings_to_json(s));
}

int rs_h_settings_users_get(struct rs_call *call)
{
    struct rs_user_settings s;
    int r = rs_svc_settings_get(&call->ctx, &s, &call->err);
    if (r < 0)
        return rs_call_fail(call, r);
    settings_answer(call, &s);
    rs_user_settings_release(&s);
    return 0;
}

int rs_h_settings_users_patch(struct rs_call *call)
{
    int64_t expected;
    if (rs_call_if_match(call, &expected) < 0)
        return -RS_EPRECONDITION;
    json_t *body = rs_call_body_object(call);
    if (!body)
        return rs_call_fail(call, -RS_EBADREQUEST);
    struct rs_user_settings s;
    int r = rs_svc_settings_patch(&call->ctx, body, expected, &s, &call->err);
    json_decref(body);
    if (r < 0)
        return rs_call_fail(call, r);
    settings_answer(call, &s);
    rs_user_settings_release(&s);
    return 0;
}

static void field_answer(struct rs_call *call, int status, const struct rs_custom_field *f)
{
    snprintf(call->etag, sizeof(call->etag), "\"%lld\"", (long long)f->version);
    if (status == 201)
        snprintf(call->location, sizeof(call->location), "/api/v1/settings/users/fields/%lld",
                 (long long)f->id);
    rs_call_json(call, status, rs_custom_field_to_json(f));
}

int rs_h_fields_list(struct rs_call *call)
{
    struct rs_custom_field *items = NULL;
    size_t n = 0;
    int r = rs_svc_fields_list(&call->ctx, &items, &n, &call->err);
    if (r < 0)
        return rs_call_fail(call, r);
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        json_array_append_new(arr, rs_custom_field_to_json(&items[i]));
        rs_custom_field_release(&items[i]);
    }
    free(items);
    json_t *o = json_object();
    json_object_set_new(o, "items", arr);
    rs_call_json(call, 200, o);
    return 0;
}

int rs_h_fields_get(struct rs_call *call)
{
    struct rs_custom_field *items = NULL;
    size_t n = 0;
    int r = rs_svc_fields_list(&call->ctx, &items, &n, &call->err);
    if (r < 0)
        return rs_call_fail(call, r);
    bool found = false;
    for (size_t i = 0; i < n; i++) {
        if (items[i].id == call->id && !found) {
            field_answer(call, 200, &items[i]);
            found = true;
        }
        rs_custom_field_release(&items[i]);
    }
    free(items);
    if (!found) {
        rs_error_set(&call->err, RS_ENOTFOUND, "no custom field with id %lld",
                     (long long)call->id);
        return rs_call_fail(call, -RS_ENOTFOUND);
    }
    return 0;
}

int rs_h_fields_create(struct rs_call *call)
{
    json_t *body = rs_call_body_object(call);
    if (!body)
        return rs_call_fail(call, -RS_EBADREQUEST);
    struct rs_custom_field f;
    int r = rs_svc_field_create(&call->ctx, body, &f, &call->err);
    json_decref(body);
    if (r < 0)
        return rs_call_fail(call, r);
    field_answer(call, 201, &f);
    rs_custom_field_release(&f);
    return 0;
}

int rs_h_fields_update(struct rs_call *call)
{
    int64_t expected;
    if (rs_call_if_match(call, &expected) < 0)
        return -RS_EPRECONDITION;
    json_t *body = rs_call_body_object(call);
    if (!body)
        return rs_call_fail(call, -RS_EBADREQUEST);
    struct rs_custom_field f;
    int r = rs_svc_field_update(&call->ctx, call->id, body, expected, &f, &call->err);
    json_decref(body);
    if (r < 0)
        return rs_call_fail(call, r);
    field_answer(call, 200, &f);
    rs_custom_field_release(&f);
    return 0;
}
