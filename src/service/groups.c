/* groups.c: groups and their members, and the four uses the spec names:
 * email distribution (recipients), access control (group roles), workflow
 * assignment (assignees) and reporting (the users list filters by group).
 * Changes to roles or membership bump the access version. */
#include <stdio.h>

#include "internal.h"

static int not_found(struct rs_error *err, int64_t id)
{
    return rs_error_set(err, RS_ENOTFOUND, "no group with id %lld", (long long)id);
}

/* Each role a group carries must be active and grantable by the actor. */
static int check_group_roles(struct rs_ctx *ctx, struct rs_tx *tx, const json_t *keys,
                             const char *field, struct rs_error *err)
{
    struct rs_role *roles = NULL;
    size_t n = 0;
    int r = ctx->store->ops->role_list(tx->conn, &roles, &n, err);
    size_t i;
    json_t *k;
    json_array_foreach(keys, i, k)
    {
        if (r < 0)
            break;
        const struct rs_role *role = NULL;
        for (size_t j = 0; j < n; j++) {
            if (strcmp(roles[j].key, json_string_value(k)) == 0)
                role = &roles[j];
        }
        if (!role || !role->active)
            r = rs_error_field(err, RS_EVALIDATION, "roles", "exists",
                               "roles: \"%s\" names no active role", json_string_value(k));
        else
            r = rs_svc_check_grant(ctx, tx, role, field, err);
    }
    for (size_t j = 0; j < n; j++)
        rs_role_release(&roles[j]);
    free(roles);
    return r;
}

/* Taking a group's roles away from its members (removing a role from the
 * group, a member from it, or the group itself) is bound like giving them:
 * the actor must hold every level each role in keys but not in keep grants. */
static int check_roles_revocable(struct rs_ctx *ctx, struct rs_tx *tx, const json_t *keys,
                                 const json_t *keep, const char *field, struct rs_error *err)
{
    size_t i, j;
    json_t *k, *kk;
    json_array_foreach(keys, i, k)
    {
        bool kept = false;
        json_array_foreach(keep, j, kk)
        {
            if (json_equal(k, kk))
                kept = true;
        }
        if (kept)
            continue;
        int r = rs_svc_check_revoke(ctx, tx, json_string_value(k), field, err);
        if (r < 0)
            return r;
    }
    return 0;
}

int rs_svc_groups_list(struct rs_ctx *ctx, struct rs_group **ret, size_t *ret_n,
                       struct rs_error *err)
{
    int r = rs_svc_require(ctx, RS_RES_GROUPS, RS_LEVEL_READ, err);
    if (r < 0)
        return r;
    struct rs_conn *c = rs_ctx_read_conn(ctx, err);
    if (!c)
        return -RS_EUNAVAILABLE;
    return ctx->store->ops->group_list(c, ret, ret_n, err);
}

int rs_svc_group_get(struct rs_ctx *ctx, int64_t id, struct rs_group *ret, struct rs_error *err)
{
    int r = rs_svc_require(ctx, RS_RES_GROUPS, RS_LEVEL_READ, err);
    if (r < 0)
        return r;
    struct rs_conn *c = rs_ctx_read_conn(ctx, err);
    if (!c)
        return -RS_EUNAVAILABLE;
    r = ctx->store->ops->group_get(c, id, ret, err);
    return r == -RS_ENOTFOUND ? not_found(err, id) : r;
}

/* Creates (id 0) or changes a group, with its audit event. */
static int save_group(struct rs_ctx *ctx, int64_t id, json_t *body, int64_t expected_version,
                      struct rs_group *ret, struct rs_error *err)
{
    int r = rs_svc_require(ctx, RS_RES_GROUPS, RS_LEVEL_WRITE, err);
    if (r < 0)
        return r;
    struct rs_tx tx;
    struct rs_group old, g;
    bool have_old = false, have_g = false;
    r = rs_tx_begin(ctx, &tx, err);
    if (r < 0)
        return r;
    if (id) {
        r = ctx->store->ops->group_get(tx.conn, id, &old, err);
        if (r == -RS_ENOTFOUND)
            r = not_found(err, id);
        have_old = r == 0;
        if (r == 0 && expected_version >= 0 && old.version != expected_version)
            r = rs_error_set(err, RS_EPRECONDITION,
                             "the group has changed (version %lld); fetch it again and retry",
                             (long long)old.version);
    }
    if (r == 0) {
        r = rs_group_decode(body, have_old ? &old : NULL, &g, err);
        have_g = r == 0;
    }
    bool roles_changed = have_g && (!have_old || !json_equal(old.roles, g.roles));
    if (r == 0 && roles_changed)
        r = check_group_roles(ctx, &tx, g.roles, "roles", err);
    if (r == 0 && roles_changed && have_old)
        r = check_roles_revocable(ctx, &tx, old.roles, g.roles, "roles", err);
    if (r == 0) {
        g.updated_at = rs_ctx_now(ctx);
        if (have_old) {
            g.version = old.version + 1;
            r = ctx->store->ops->group_update(tx.conn, &g, old.version, err);
            if (r == -RS_EPRECONDITION)
                r = rs_error_set(err, RS_EPRECONDITION, "the group changed meanwhile; retry");
        } else {
            g.created_at = g.updated_at;
            g.version = 1;
            r = ctx->store->ops->group_insert(tx.conn, &g, err);
        }
    }
    if (r == 0) {
        char *before = have_old ? rs_json_text(rs_group_to_json(&old)) : NULL;
        char *after = rs_json_text(rs_group_to_json(&g));
        r = rs_tx_audit(&tx, have_old ? "group.update" : "group.create", "group", g.id, before,
                        after, NULL, err);
        free(before);
        free(after);
    }
    if (r == 0 && roles_changed && have_old)
        r = rs_tx_access_changed(&tx, err);
    if (r == 0 && roles_changed && have_old)
        r = rs_cred_privilege_changed_group(&tx, g.id, err);
    if (r == 0 && roles_changed && have_old)
        r = rs_svc_check_admin_remains(ctx, &tx, g.name, err);
    if (r == 0)
        r = rs_tx_commit(&tx, err);
    else
        rs_tx_abort(&tx);
    if (have_old)
        rs_group_release(&old);
    if (r == 0)
        *ret = g;
    else if (have_g)
        rs_group_release(&g);
    return r;
}

int rs_svc_group_create(struct rs_ctx *ctx, json_t *body, struct rs_group *ret,
                        struct rs_error *err)
{
    return save_group(ctx, 0, body, -1, ret, err);
}

int rs_svc_group_update(struct rs_ctx *ctx, int64_t id, json_t *body, int64_t expected_version,
                        struct rs_group *ret, struct rs_error *err)
{
    return save_group(ctx, id, body, expected_version, ret, err);
}

int rs_svc_group_delete(struct rs_ctx *ctx, int64_t id, struct rs_error *err)
{
    int r = rs_svc_require(ctx, RS_RES_GROUPS, RS_LEVEL_WRITE, err);
    if (r < 0)
        return r;
    struct rs_tx tx;
    struct rs_group old;
    r = rs_tx_begin(ctx, &tx, err);
    if (r < 0)
        return r;
    r = ctx->store->ops->group_get(tx.conn, id, &old, err);
    if (r == -RS_ENOTFOUND)
        r = not_found(err, id);
    if (r == 0) {
        r = check_roles_revocable(ctx, &tx, old.roles, NULL, "roles", err);
        if (r == 0)
            r = rs_cred_privilege_changed_group(&tx, id, err); /* before the members go */
        if (r == 0)
            r = ctx->store->ops->group_delete(tx.conn, id, err);
        if (r == 0) {
            char *before = rs_json_text(rs_group_to_json(&old));
            r = rs_tx_audit(&tx, "group.delete", "group", id, before, NULL, NULL, err);
            free(before);
        }
        if (r == 0)
            r = rs_tx_access_changed(&tx, err);
        if (r == 0)
            r = rs_svc_check_admin_remains(ctx, &tx, old.name, err);
        rs_group_release(&old);
    }
    if (r == 0)
        return rs_tx_commit(&tx, err);
    rs_tx_abort(&tx);
    return r;
}

int rs_svc_group_members_add(struct rs_ctx *ctx, int64_t id, const int64_t *user_ids, size_t n,
                             struct rs_error *err)
{
    int r = rs_svc_require(ctx, RS_RES_GROUPS, RS_LEVEL_WRITE, err);
    if (r < 0)
        return r;
    if (n == 0 || n > 1000)
        return rs_error_field(err, RS_EVALIDATION, "user_ids", "range",
                              "user_ids must list 1 to 1000 users");
    struct rs_tx tx;
    struct rs_group g;
    r = rs_tx_begin(ctx, &tx, err);
    if (r < 0)
        return r;
    r = ctx->store->ops->group_get(tx.conn, id, &g, err);
    if (r == -RS_ENOTFOUND)
        r = not_found(err, id);
    bool have_g = r == 0;
    /* Adding members hands them the group's roles: the actor must hold them. */
    if (r == 0)
        r = check_group_roles(ctx, &tx, g.roles, "user_ids", err);
    if (r == 0)
        r = ctx->store->ops->group_members_add(tx.conn, id, user_ids, n, rs_ctx_now(ctx), err);
    if (r == 0) {
        json_t *ids = json_array();
        for (size_t i = 0; i < n; i++)
            json_array_append_new(ids, json_integer(user_ids[i]));
        char *after = rs_json_text(json_pack("{s:o}", "added", ids));
        r = rs_tx_audit(&tx, "group.members.add", "group", id, NULL, after, NULL, err);
        free(after);
    }
    if (r == 0)
        r = rs_tx_access_changed(&tx, err);
    if (r == 0)
        r = rs_cred_privilege_changed_users(&tx, user_ids, n, err);
    if (have_g)
        rs_group_release(&g);
    if (r == 0)
        return rs_tx_commit(&tx, err);
    rs_tx_abort(&tx);
    return r;
}

int rs_svc_group_member_remove(struct rs_ctx *ctx, int64_t id, int64_t user_id,
                               struct rs_error *err)
{
    int r = rs_svc_require(ctx, RS_RES_GROUPS, RS_LEVEL_WRITE, err);
    if (r < 0)
        return r;
    struct rs_tx tx;
    struct rs_group g;
    r = rs_tx_begin(ctx, &tx, err);
    if (r < 0)
        return r;
    r = ctx->store->ops->group_get(tx.conn, id, &g, err);
    if (r == -RS_ENOTFOUND)
        r = not_found(err, id);
    else if (r == 0) {
        r = check_roles_revocable(ctx, &tx, g.roles, NULL, "user_id", err);
        rs_group_release(&g);
    }
    if (r == 0) {
        r = ctx->store->ops->group_member_remove(tx.conn, id, user_id, err);
        if (r == -RS_ENOTFOUND)
            r = rs_error_set(err, RS_ENOTFOUND, "user %lld is not a member of group %lld",
                             (long long)user_id, (long long)id);
    }
    if (r == 0) {
        char *before = rs_json_text(json_pack("{s:[I]}", "removed", (json_int_t)user_id));
        r = rs_tx_audit(&tx, "group.members.remove", "group", id, before, NULL, NULL, err);
        free(before);
    }
    if (r == 0)
        r = rs_tx_access_changed(&tx, err);
    if (r == 0)
        r = rs_cred_privilege_changed(&tx, user_id, err);
    if (r == 0) {
        char who[64];
        snprintf(who, sizeof(who), "user %lld", (long long)user_id);
        r = rs_svc_check_admin_remains(ctx, &tx, who, err);
    }
    if (r == 0)
        return rs_tx_commit(&tx, err);
    rs_tx_abort(&tx);
    return r;
}

int rs_svc_group_member_list(struct rs_ctx *ctx, int64_t id, const struct rs_user_query *q,
                             struct rs_user_page *ret, struct rs_error *err)
{
    struct rs_group g;
    int r = rs_svc_group_get(ctx, id, &g, err);
    if (r < 0)
        return r;
    rs_group_release(&g);
    struct rs_user_query mq = *q;
    mq.group_id = id;
    return rs_user_list_in(ctx, &mq, ret, err);
}

/* Keeps every user but API users (who neither read mail nor take work). */
static int keep_person(void *arg, const struct rs_user *u, struct rs_error *err)
{
    (void)err;
    struct rs_user_page *p = arg;
    if (u->type == RS_USER_API)
        return 0;
    if ((p->count & (p->count - 1)) == 0) /* 0, 1, 2, 4, ...: grow */
        p->items = rs_xrealloc(p->items, (p->count ? p->count * 2 : 1) * sizeof(*p->items));
    rs_user_copy(&p->items[p->count++], u);
    return 0;
}

/* Every active member who is a person, in id order. */
int rs_svc_group_active_members(struct rs_ctx *ctx, int64_t id, struct rs_user_page *ret,
                                struct rs_error *err)
{
    struct rs_group g;
    int r = rs_svc_group_get(ctx, id, &g, err);
    if (r < 0)
        return r;
    rs_group_release(&g);
    struct rs_user_query q;
    rs_user_query_init(&q);
    q.group_id = id;
    q.has_status = 1;
    q.status = RS_STATUS_ACTIVE;
    memset(ret, 0, sizeof(*ret));
    r = rs_user_each(ctx, &q, keep_person, ret, err);
    rs_user_query_release(&q);
    if (r < 0) {
        rs_user_page_release(ret);
        return r;
    }
    ret->total = (int64_t)ret->count;
    return 0;
}
