/* roles.c: the resource catalogue, roles, and users' secondary roles. Every
 * change is audited and bumps the access version in the same transaction;
 * nobody may grant a level they do not hold. */
#include "internal.h"

static void free_roles(struct rs_role *roles, size_t n)
{
    for (size_t i = 0; i < n; i++)
        rs_role_release(&roles[i]);
    free(roles);
}

static void free_resources(struct rs_resource_def *res, size_t n)
{
    for (size_t i = 0; i < n; i++)
        rs_resource_def_release(&res[i]);
    free(res);
}

int rs_svc_resources_list(struct rs_ctx *ctx, struct rs_resource_def **ret, size_t *ret_n,
                          struct rs_error *err)
{
    int r = rs_svc_require(ctx, RS_RES_ROLES, RS_LEVEL_READ, err);
    if (r < 0)
        return r;
    struct rs_conn *c = rs_ctx_read_conn(ctx, err);
    if (!c)
        return -RS_EUNAVAILABLE;
    return ctx->store->ops->resource_list(c, ret, ret_n, err);
}

int rs_svc_resource_register(struct rs_ctx *ctx, const char *key, const char *label,
                             const char *module, struct rs_resource_def *ret,
                             struct rs_error *err)
{
    int r = rs_svc_require(ctx, RS_RES_ROLES, RS_LEVEL_ADMIN, err);
    if (r < 0)
        return r;
    if (!key)
        r = rs_error_field(err, RS_EVALIDATION, "key", "required", "key is required");
    else if (!rs_access_key_ok(key))
        r = rs_error_field(err, RS_EVALIDATION, "key", "format",
                           "key must be a lower-case letter then up to 63 lower-case letters, "
                           "digits, '_', '.' or '-'");
    _cleanup_free_ char *clean_label = rs_text_clean(label);
    if (!clean_label)
        r = rs_error_field(err, RS_EVALIDATION, "label", "required", "label is required");
    else if (rs_utf8_length(clean_label, strlen(clean_label)) > 100)
        r = rs_error_field(err, RS_EVALIDATION, "label", "max_length",
                           "label must be at most 100 characters");
    if (r < 0)
        return -err->code;
    struct rs_resource_def def = {.key = rs_xstrdup(key), .label = rs_xstrdup(clean_label),
                                  .module = rs_xstrdup(module ? module : ""),
                                  .created_at = rs_ctx_now(ctx)};
    struct rs_tx tx;
    r = rs_tx_begin(ctx, &tx, err);
    if (r == 0) {
        r = ctx->store->ops->resource_insert(tx.conn, &def, err);
        if (r == 0) {
            char *after = rs_json_text(rs_resource_def_to_json(&def));
            r = rs_tx_audit(&tx, "resource.register", "resource", 0, NULL, after, NULL, err);
            free(after);
        }
        if (r == 0)
            r = rs_tx_access_changed(&tx, err);
        if (r == 0)
            r = rs_tx_commit(&tx, err);
        else
            rs_tx_abort(&tx);
    }
    if (r == 0)
        *ret = def;
    else
        rs_resource_def_release(&def);
    return r;
}

int rs_svc_roles_list(struct rs_ctx *ctx, struct rs_role **ret, size_t *ret_n,
                      struct rs_error *err)
{
    int r = rs_svc_require(ctx, RS_RES_ROLES, RS_LEVEL_READ, err);
    if (r < 0)
        return r;
    struct rs_conn *c = rs_ctx_read_conn(ctx, err);
    if (!c)
        return -RS_EUNAVAILABLE;
    return ctx->store->ops->role_list(c, ret, ret_n, err);
}

/* Writes a role (insert when existing is NULL) with its audit event. */
static int save_role(struct rs_ctx *ctx, json_t *body, int64_t id, int64_t expected_version,
                     int retire, struct rs_role *ret, struct rs_error *err)
{
    int r = rs_svc_require(ctx, RS_RES_ROLES, RS_LEVEL_ADMIN, err);
    if (r < 0)
        return r;
    struct rs_tx tx;
    struct rs_role *roles = NULL, role;
    struct rs_resource_def *res = NULL;
    size_t nroles = 0, nres = 0;
    bool have_role = false;
    r = rs_tx_begin(ctx, &tx, err);
    if (r < 0)
        return r;
    r = ctx->store->ops->role_list(tx.conn, &roles, &nroles, err);
    if (r == 0)
        r = ctx->store->ops->resource_list(tx.conn, &res, &nres, err);
    const struct rs_role *old = NULL;
    for (size_t i = 0; r == 0 && id && i < nroles; i++) {
        if (roles[i].id == id)
            old = &roles[i];
    }
    if (r == 0 && id && !old)
        r = rs_error_set(err, RS_ENOTFOUND, "no role with id %lld", (long long)id);
    if (r == 0 && old && old->built_in)
        r = rs_error_field(err, RS_ECONFLICT, "key", "built_in",
                           "%s is a built-in role and cannot be changed; create your own role",
                           old->key);
    if (r == 0 && old && expected_version >= 0 && old->version != expected_version)
        r = rs_error_set(err, RS_EPRECONDITION,
                         "the role has changed (version %lld); fetch it again and retry",
                         (long long)old->version);
    if (r == 0 && retire) {
        rs_role_copy(&role, old);
        role.active = false;
        have_role = true;
    } else if (r == 0) {
        char **keys = rs_xcalloc(nres ? nres : 1, sizeof(char *));
        for (size_t i = 0; i < nres; i++)
            keys[i] = res[i].key;
        r = rs_role_decode(body, old, keys, nres, &role, err);
        free(keys);
        have_role = r == 0;
    }
    if (r == 0 && !retire)
        r = rs_svc_check_grant(ctx, &tx, &role, "permissions", err);
    if (r == 0) {
        role.updated_at = rs_ctx_now(ctx);
        if (old) {
            role.version = old->version + 1;
            r = ctx->store->ops->role_update(tx.conn, &role, old->version, err);
            if (r == -RS_EPRECONDITION)
                r = rs_error_set(err, RS_EPRECONDITION, "the role changed meanwhile; retry");
        } else {
            role.created_at = role.updated_at;
            role.version = 1;
            r = ctx->store->ops->role_insert(tx.conn, &role, err);
        }
    }
    if (r == 0) {
        char *before = old ? rs_json_text(rs_role_to_json(old)) : NULL;
        char *after = rs_json_text(rs_role_to_json(&role));
        r = rs_tx_audit(&tx, old ? (retire ? "role.retire" : "role.update") : "role.create",
                        "role", role.id, before, after, NULL, err);
        free(before);
        free(after);
    }
    /* A new role changes no one's access yet, but it changes the role
     * catalogue, which is cached by the same version (access.c). */
    if (r == 0)
        r = rs_tx_access_changed(&tx, err);
    /* New permissions (or none, retired) for everyone holding the role:
     * their sessions rotate, the 2FA policy ("admins") judged again. */
    if (r == 0 && old &&
        (old->active != role.active || !json_equal(old->permissions, role.permissions)))
        r = rs_cred_privilege_changed_role(&tx, old->key, err);
    if (r == 0)
        r = rs_tx_commit(&tx, err);
    else
        rs_tx_abort(&tx);
    free_roles(roles, nroles);
    free_resources(res, nres);
    if (r == 0)
        *ret = role;
    else if (have_role)
        rs_role_release(&role);
    return r;
}

int rs_svc_role_create(struct rs_ctx *ctx, json_t *body, struct rs_role *ret,
                       struct rs_error *err)
{
    return save_role(ctx, body, 0, -1, 0, ret, err);
}

int rs_svc_role_update(struct rs_ctx *ctx, int64_t id, json_t *body, int64_t expected_version,
                       struct rs_role *ret, struct rs_error *err)
{
    return save_role(ctx, body, id, expected_version, 0, ret, err);
}

int rs_svc_role_retire(struct rs_ctx *ctx, int64_t id, int64_t expected_version,
                       struct rs_role *ret, struct rs_error *err)
{
    return save_role(ctx, NULL, id, expected_version, 1, ret, err);
}

int rs_svc_user_roles_get(struct rs_ctx *ctx, int64_t user_id, char **ret_json,
                          struct rs_error *err)
{
    if (user_id != ctx->actor.user_id) {
        int r = rs_svc_require(ctx, RS_RES_USERS, RS_LEVEL_READ, err);
        if (r < 0)
            return r;
    }
    struct rs_conn *c = rs_ctx_read_conn(ctx, err);
    if (!c)
        return -RS_EUNAVAILABLE;
    struct rs_user u;
    int r = ctx->store->ops->user_get(c, user_id, &u, err);
    if (r == -RS_ENOTFOUND)
        return rs_error_set(err, RS_ENOTFOUND, "no user with id %lld", (long long)user_id);
    if (r < 0)
        return r;
    char **keys = NULL;
    size_t n = 0;
    r = ctx->store->ops->user_roles_get(c, user_id, &keys, &n, err);
    if (r == 0) {
        json_t *sec = json_array();
        for (size_t i = 0; i < n; i++) {
            json_array_append_new(sec, json_string(keys[i]));
            free(keys[i]);
        }
        free(keys);
        json_t *o = json_object();
        json_object_set_new(o, "user_id", json_integer(user_id));
        json_object_set_new(o, "primary", u.role ? json_string(u.role) : json_null());
        json_object_set_new(o, "secondary", sec);
        *ret_json = rs_json_text(o);
    }
    rs_user_release(&u);
    return r;
}

int rs_svc_user_roles_set(struct rs_ctx *ctx, int64_t user_id, const char *primary,
                          char *const *secondary, size_t n, struct rs_error *err)
{
    int r = rs_svc_require(ctx, RS_RES_USERS, RS_LEVEL_WRITE, err);
    if (r < 0)
        return r;
    struct rs_tx tx;
    struct rs_role *roles = NULL;
    size_t nroles = 0;
    struct rs_user before, after;
    char **old_keys = NULL;
    size_t nold = 0;
    rs_user_init(&before);
    rs_user_init(&after);
    r = rs_tx_begin(ctx, &tx, err);
    if (r < 0)
        return r;
    r = ctx->store->ops->user_get_for_update(tx.conn, user_id, &before, err);
    if (r == -RS_ENOTFOUND)
        r = rs_error_set(err, RS_ENOTFOUND, "no user with id %lld", (long long)user_id);
    if (r == 0 && before.erased_at)
        r = rs_error_field(err, RS_ECONFLICT, "status", "erased", "the user was erased");
    if (r == 0)
        r = rs_svc_check_outranks(ctx, tx.conn, &before, "change the roles of", err);
    if (r == 0)
        r = ctx->store->ops->role_list(tx.conn, &roles, &nroles, err);
    if (r == 0)
        r = ctx->store->ops->user_roles_get(tx.conn, user_id, &old_keys, &nold, err);
    /* Every role named must exist and be active, and be grantable by the actor. */
    for (size_t k = 0; r == 0 && k <= n; k++) {
        const char *key = k == n ? primary : secondary[k];
        const char *field = k == n ? "primary" : "secondary";
        if (!key)
            continue;
        const struct rs_role *role = NULL;
        for (size_t i = 0; i < nroles; i++) {
            if (strcmp(roles[i].key, key) == 0)
                role = &roles[i];
        }
        if (!role || !role->active)
            r = rs_error_field(err, RS_EVALIDATION, field, "exists",
                               "%s: \"%s\" names no active role", field, key);
        else
            r = rs_svc_check_grant(ctx, &tx, role, field, err);
    }
    if (r == 0) {
        rs_user_copy(&after, &before);
        free(after.role);
        after.role = primary ? rs_xstrdup(primary) : NULL;
    }
    if (r == 0) {
        after.updated_at = rs_ctx_now(ctx);
        after.version = before.version + 1;
        r = ctx->store->ops->user_update(tx.conn, &after, before.version, err);
    }
    if (r == 0)
        r = ctx->store->ops->user_roles_set(tx.conn, user_id, secondary, n, err);
    if (r == 0)
        r = rs_svc_check_admin_remains(ctx, &tx, before.username, err);
    if (r == 0) {
        json_t *b = json_object(), *a = json_object(), *bs = json_array(), *as = json_array();
        for (size_t i = 0; i < nold; i++)
            json_array_append_new(bs, json_string(old_keys[i]));
        for (size_t i = 0; i < n; i++)
            json_array_append_new(as, json_string(secondary[i]));
        json_object_set_new(b, "primary", before.role ? json_string(before.role) : json_null());
        json_object_set_new(b, "secondary", bs);
        json_object_set_new(a, "primary", primary ? json_string(primary) : json_null());
        json_object_set_new(a, "secondary", as);
        char *bj = rs_json_text(b), *aj = rs_json_text(a);
        r = rs_tx_audit(&tx, "user.roles", "user", user_id, bj, aj, NULL, err);
        free(bj);
        free(aj);
    }
    if (r == 0)
        r = rs_tx_access_changed(&tx, err);
    if (r == 0)
        r = rs_cred_privilege_changed(&tx, user_id, err);
    if (r == 0)
        r = rs_tx_commit(&tx, err);
    else
        rs_tx_abort(&tx);
    free_roles(roles, nroles);
    for (size_t i = 0; i < nold; i++)
        free(old_keys[i]);
    free(old_keys);
    rs_user_release(&before);
    rs_user_release(&after);
    return r;
}
