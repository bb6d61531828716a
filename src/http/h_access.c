/* h_access.c: /api/v1/resources, /api/v1/roles, a user's roles and
 * permissions, /api/v1/access/check and the cache clear. */
#include <errno.h>
#include <stdio.h>

#include "codec.h"
#include "http.h"

static int answer_text_json(struct rs_call *call, int r, char *text)
{
    if (r < 0)
        return rs_call_fail(call, r);
    json_t *o = json_loads(text, 0, NULL);
    free(text);
    if (!o)
        return rs_call_fail(call, -RS_EINTERNAL);
    rs_call_json(call, 200, o);
    return 0;
}

int rs_h_resources_list(struct rs_call *call)
{
    struct rs_resource_def *items = NULL;
    size_t n = 0;
    int r = rs_svc_resources_list(&call->ctx, &items, &n, &call->err);
    if (r < 0)
        return rs_call_fail(call, r);
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        json_array_append_new(arr, rs_resource_def_to_json(&items[i]));
        rs_resource_def_release(&items[i]);
    }
    free(items);
    rs_call_json(call, 200, json_pack("{s:o}", "items", arr));
    return 0;
}

int rs_h_resources_register(struct rs_call *call)
{
    json_t *body = rs_call_body_object(call);
    if (!body)
        return rs_call_fail(call, -RS_EBADREQUEST);
    const char *key = NULL, *label = NULL, *module = NULL;
    const char *k;
    json_t *v;
    int r = 0;
    json_object_foreach(body, k, v)
    {
        const char **dst = strcmp(k, "key") == 0      ? &key
                           : strcmp(k, "label") == 0  ? &label
                           : strcmp(k, "module") == 0 ? &module
                                                      : NULL;
        if (!dst)
            r = rs_error_field(&call->err, RS_EBADREQUEST, k, "unknown_field",
                               "unknown field \"%.64s\"", k);
        else if (!json_is_string(v))
            r = rs_error_field(&call->err, RS_EBADREQUEST, k, "type", "%s must be a string", k);
        else
            *dst = json_string_value(v);
    }
    struct rs_resource_def def;
    if (r == 0)
        r = rs_svc_resource_register(&call->ctx, key, label, module, &def, &call->err);
    json_decref(body);
    if (r < 0)
        return rs_call_fail(call, r);
    rs_call_json(call, 201, rs_resource_def_to_json(&def));
    rs_resource_def_release(&def);
    return 0;
}

static void role_answer(struct rs_call *call, int status, const struct rs_role *role)
{
    snprintf(call->etag, sizeof(call->etag), "\"%lld\"", (long long)role->version);
    if (status == 201)
        snprintf(call->location, sizeof(call->location), "/api/v1/roles/%lld",
                 (long long)role->id);
    rs_call_json(call, status, rs_role_to_json(role));
}

int rs_h_roles_list(struct rs_call *call)
{
    struct rs_role *items = NULL;
    size_t n = 0;
    int r = rs_svc_roles_list(&call->ctx, &items, &n, &call->err);
    if (r < 0)
        return rs_call_fail(call, r);
    json_t *arr = json_array();
    bool found = call->id == 0;
    for (size_t i = 0; i < n; i++) {
        if (call->id && items[i].id == call->id) {
            role_answer(call, 200, &items[i]);
            found = true;
        } else if (!call->id) {
            json_array_append_new(arr, rs_role_to_json(&items[i]));
        }
        rs_role_release(&items[i]);
    }
    free(items);
    if (!found) {
        json_decref(arr);
        rs_error_set(&call->err, RS_ENOTFOUND, "no role with id %lld", (long long)call->id);
        return rs_call_fail(call, -RS_ENOTFOUND);
    }
    if (call->id)
        json_decref(arr);
    else
        rs_call_json(call, 200, json_pack("{s:o}", "items", arr));
    return 0;
}

int rs_h_roles_create(struct rs_call *call)
{
    json_t *body = rs_call_body_object(call);
    if (!body)
        return rs_call_fail(call, -RS_EBADREQUEST);
    struct rs_role role;
    int r = rs_svc_role_create(&call->ctx, body, &role, &call->err);
    json_decref(body);
    if (r < 0)
        return rs_call_fail(call, r);
    role_answer(call, 201, &role);
    rs_role_release(&role);
    return 0;
}

int rs_h_roles_update(struct rs_call *call)
{
    int64_t expected;
    if (rs_call_if_match(call, &expected) < 0)
        return -RS_EPRECONDITION;
    json_t *body = rs_call_body_object(call);
    if (!body)
        return rs_call_fail(call, -RS_EBADREQUEST);
    struct rs_role role;
    int r = rs_svc_role_update(&call->ctx, call->id, body, expected, &role, &call->err);
    json_decref(body);
    if (r < 0)
        return rs_call_fail(call, r);
    role_answer(call, 200, &role);
    rs_role_release(&role);
    return 0;
}

int rs_h_roles_retire(struct rs_call *call)
{
    int64_t expected;
    if (rs_call_if_match(call, &expected) < 0)
        return -RS_EPRECONDITION;
    struct rs_role role;
    int r = rs_svc_role_retire(&call->ctx, call->id, expected, &role, &call->err);
    if (r < 0)
        return rs_call_fail(call, r);
    role_answer(call, 200, &role);
    rs_role_release(&role);
    return 0;
}

int rs_h_user_roles_get(struct rs_call *call)
{
    char *text = NULL;
    int r = rs_svc_user_roles_get(&call->ctx, call->id, &text, &call->err);
    return answer_text_json(call, r, text);
}

int rs_h_user_roles_put(struct rs_call *call)
{
    json_t *body = rs_call_body_object(call);
    if (!body)
        return rs_call_fail(call, -RS_EBADREQUEST);
    const char *primary = NULL;
    char **secondary = NULL;
    size_t n = 0;
    int r = 0;
    bool has_primary = false;
    const char *k;
    json_t *v;
    json_object_foreach(body, k, v)
    {
        if (strcmp(k, "primary") == 0) {
            has_primary = true;
            if (json_is_string(v))
                primary = json_string_value(v);
            else if (!json_is_null(v))
                r = rs_error_field(&call->err, RS_EBADREQUEST, k, "type",
                                   "primary must be a role key or null");
        } else if (strcmp(k, "secondary") == 0) {
            if (!json_is_array(v) || json_array_size(v) > 50) {
                r = rs_error_field(&call->err, RS_EBADREQUEST, k, "type",
                                   "secondary must be an array of at most 50 role keys");
                continue;
            }
            secondary = rs_xcalloc(json_array_size(v) + 1, sizeof(char *));
            size_t i;
            json_t *e;
            json_array_foreach(v, i, e)
            {
                if (!json_is_string(e)) {
                    r = rs_error_field(&call->err, RS_EBADREQUEST, k, "type",
                                       "secondary must hold role keys");
                    break;
                }
                secondary[n++] = (char *)json_string_value(e);
            }
        } else {
            r = rs_error_field(&call->err, RS_EBADREQUEST, k, "unknown_field",
                               "unknown field \"%.64s\"", k);
        }
    }
    /* PUT replaces both: a body without the primary role would silently
     * clear it. null says "none" explicitly. */
    if (r == 0 && !has_primary)
        r = rs_error_field(&call->err, RS_EVALIDATION, "primary", "required",
                           "primary is required: a role key, or null for none");
    if (r == 0)
        r = rs_svc_user_roles_set(&call->ctx, call->id, primary, secondary, n, &call->err);
    free(secondary);
    json_decref(body);
    if (r < 0)
        return rs_call_fail(call, r);
    char *text = NULL;
    r = rs_svc_user_roles_get(&call->ctx, call->id, &text, &call->err);
    return answer_text_json(call, r, text);
}

int rs_h_user_permissions(struct rs_call *call)
{
    char *text = NULL;
    int r = rs_svc_user_permissions(&call->ctx, call->id, &text, &call->err);
    return answer_text_json(call, r, text);
}

int rs_h_access_check(struct rs_call *call)
{
    struct rs_query_params p;
    static const char *const allowed[] = {"user_id", "username", "resource", "level", NULL};
    int r = rs_query_parse(call->query, &p, &call->err);
    if (r < 0)
        return rs_call_fail(call, r);
    r = rs_query_check(&p, allowed, &call->err);
    const char *uid = rs_query_get(&p, "user_id"), *uname = rs_query_get(&p, "username");
    const char *resource = rs_query_get(&p, "resource"), *level = rs_query_get(&p, "level");
    int64_t user_id = 0;
    enum rs_level need = RS_LEVEL_READ;
    if (r == 0 && !resource)
        r = rs_error_field(&call->err, RS_EBADREQUEST, "resource", "required",
                           "resource is required");
    if (r == 0 && (!level || rs_level_parse(level, &need) < 0 || need == RS_LEVEL_NONE))
        r = rs_error_field(&call->err, RS_EBADREQUEST, "level", level ? "enum" : "required",
                           "level must be read, write or admin");
    if (r == 0 && uid) {
        char *end = NULL;
        long long n = strtoll(uid, &end, 10);
        if (!*uid || *end || n < 1)
            r = rs_error_field(&call->err, RS_EBADREQUEST, "user_id", "format",
                               "user_id must be a user id");
        user_id = n;
    } else if (r == 0 && uname) {
        r = rs_svc_access_user_id(&call->ctx, uname, &user_id, &call->err);
    } else if (r == 0) {
        r = rs_error_field(&call->err, RS_EBADREQUEST, "user_id", "required",
                           "give user_id or username");
    }
    json_t *o = NULL;
    if (r == 0)
        r = rs_svc_access_check(&call->ctx, user_id, resource, need, &o, &call->err);
    rs_query_release(&p);
    if (r < 0)
        return rs_call_fail(call, r);
    rs_call_json(call, 200, o);
    return 0;
}

int rs_h_access_cache_clear(struct rs_call *call)
{
    int r = rs_svc_access_cache_clear(&call->ctx, &call->err);
    if (r < 0)
        return rs_call_fail(call, r);
    rs_call_json(call, 200, json_pack("{s:b}", "cleared", 1));
    return 0;
}
