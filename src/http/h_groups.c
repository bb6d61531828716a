/* h_groups.c: /api/v1/groups, members, recipients and assignees. */
#include <errno.h>
#include <stdio.h>

#include "../core/user_json.h"
#include "codec.h"
#include "http.h"

static void group_answer(struct rs_call *call, int status, const struct rs_group *g)
{
    snprintf(call->etag, sizeof(call->etag), "\"%lld\"", (long long)g->version);
    if (status == 201)
        snprintf(call->location, sizeof(call->location), "/api/v1/groups/%lld",
                 (long long)g->id);
    rs_call_json(call, status, rs_group_to_json(g));
}

int rs_h_groups_list(struct rs_call *call)
{
    struct rs_group *items = NULL;
    size_t n = 0;
    int r = rs_svc_groups_list(&call->ctx, &items, &n, &call->err);
    if (r < 0)
        return rs_call_fail(call, r);
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        json_array_append_new(arr, rs_group_to_json(&items[i]));
        rs_group_release(&items[i]);
    }
    free(items);
    rs_call_json(call, 200, json_pack("{s:o,s:I}", "items", arr, "total", (json_int_t)n));
    return 0;
}

int rs_h_groups_get(struct rs_call *call)
{
    struct rs_group g;
    int r = rs_svc_group_get(&call->ctx, call->id, &g, &call->err);
    if (r < 0)
        return rs_call_fail(call, r);
    group_answer(call, 200, &g);
    rs_group_release(&g);
    return 0;
}

static int group_write(struct rs_call *call, bool create)
{
    int64_t expected = -1;
    if (!create && rs_call_if_match(call, &expected) < 0)
        return -RS_EPRECONDITION;
    json_t *body = rs_call_body_object(call);
    if (!body)
        return rs_call_fail(call, -RS_EBADREQUEST);
    struct rs_group g;
    int r = create ? rs_svc_group_create(&call->ctx, body, &g, &call->err)
                   : rs_svc_group_update(&call->ctx, call->id, body, expected, &g, &call->err);
    json_decref(body);
    if (r < 0)
        return rs_call_fail(call, r);
    group_answer(call, create ? 201 : 200, &g);
    rs_group_release(&g);
    return 0;
}

int rs_h_groups_create(struct rs_call *call)
{
    return group_write(call, true);
}

int rs_h_groups_update(struct rs_call *call)
{
    return group_write(call, false);
}

int rs_h_groups_delete(struct rs_call *call)
{
    int r = rs_svc_group_delete(&call->ctx, call->id, &call->err);
    if (r < 0)
        return rs_call_fail(call, r);
    call->status = 204;
    return 0;
}

int rs_h_group_members_add(struct rs_call *call)
{
    json_t *body = rs_call_body_object(call);
    if (!body)
        return rs_call_fail(call, -RS_EBADREQUEST);
    int r = 0;
    int64_t *ids = NULL;
    size_t n = 0;
    const char *k;
    json_t *v;
    json_object_foreach(body, k, v)
    {
        if (strcmp(k, "user_ids") != 0) {
            r = rs_error_field(&call->err, RS_EBADREQUEST, k, "unknown_field",
                               "unknown field \"%.64s\"", k);
            continue;
        }
        if (!json_is_array(v) || json_array_size(v) > 1000) {
            r = rs_error_field(&call->err, RS_EBADREQUEST, k, "type",
                               "user_ids must be an array of at most 1000 user ids");
            continue;
        }
        ids = rs_xcalloc(json_array_size(v) + 1, sizeof(int64_t));
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e)
        {
            if (!json_is_integer(e) || json_integer_value(e) < 1) {
                r = rs_error_field(&call->err, RS_EBADREQUEST, k, "type",
                                   "user_ids must hold user ids");
                break;
            }
            ids[n++] = json_integer_value(e);
        }
    }
    if (r == 0 && !ids)
        r = rs_error_field(&call->err, RS_EVALIDATION, "user_ids", "required",
                           "user_ids is required");
    if (r == 0)
        r = rs_svc_group_members_add(&call->ctx, call->id, ids, n, &call->err);
    free(ids);
    json_decref(body);
    if (r < 0)
        return rs_call_fail(call, r);
    struct rs_group g;
    r = rs_svc_group_get(&call->ctx, call->id, &g, &call->err);
    if (r < 0)
        return rs_call_fail(call, r);
    group_answer(call, 200, &g);
    rs_group_release(&g);
    return 0;
}

int rs_h_group_member_remove(struct rs_call *call)
{
    int r = rs_svc_group_member_remove(&call->ctx, call->id, call->id2, &call->err);
    if (r < 0)
        return rs_call_fail(call, r);
    call->status = 204;
    return 0;
}

/* Active members as recipients (with email) or assignees (with username). */
static int active_members(struct rs_call *call, bool recipients)
{
    struct rs_user_page page = {0};
    int r = rs_svc_group_active_members(&call->ctx, call->id, &page, &call->err);
    if (r < 0)
        return rs_call_fail(call, r);
    json_t *arr = json_array();
    for (size_t i = 0; i < page.count; i++) {
        const struct rs_user *u = &page.items[i];
        char *name = rs_user_display_name(u);
        json_array_append_new(arr, json_pack("{s:I,s:s,s:s}", "user_id", (json_int_t)u->id,
                                             recipients ? "email" : "username",
                                             recipients ? u->email : u->username, "name", name));
        free(name);
    }
    rs_call_json(call, 200,
                 json_pack("{s:o,s:I}", "items", arr, "total", (json_int_t)page.total));
    rs_user_page_release(&page);
    return 0;
}

int rs_h_group_recipients(struct rs_call *call)
{
    return active_members(call, true);
}

int rs_h_group_assignees(struct rs_call *call)
{
    return active_members(call, false);
}
