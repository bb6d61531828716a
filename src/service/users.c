/* users.c: creating, reading, listing and changing users, their lifecycle
 * and erasure; each change with its audit event in one transaction. The
 * rules are core's (user.h, lifecycle.h, custom_field.h, settings.h); this
 * file loads what they need from the store and applies them in order. */
#include <stdio.h>

#include "../core/user_json.h"
#include "internal.h"

#define HISTORY_LIMIT 200
#define MANAGER_CHAIN_MAX 256 /* deeper chains are refused */

/* What a write needs besides the user: settings and custom field defs, read
 * inside the write transaction so the checks see what the write will see. */
struct write_env {
    struct rs_user_settings settings;
    struct rs_custom_field *fields;
    size_t nfields;
};

static int env_load(struct rs_ctx *ctx, struct rs_tx *tx, struct write_env *env,
                    struct rs_error *err)
{
    memset(env, 0, sizeof(*env));
    int r = rs_settings_load(ctx, tx->conn, &env->settings, NULL, err);
    if (r < 0)
        return r;
    r = ctx->store->ops->cf_list(tx->conn, &env->fields, &env->nfields, err);
    if (r < 0)
        rs_user_settings_release(&env->settings);
    return r;
}

static void env_release(struct write_env *env)
{
    rs_user_settings_release(&env->settings);
    rs_fields_free(env->fields, env->nfields);
}

static int check_admin_remains(struct rs_ctx *ctx, struct rs_tx *tx, const struct rs_user *u,
                               struct rs_error *err);

static int not_found(struct rs_error *err, int64_t id)
{
    return rs_error_set(err, RS_ENOTFOUND, "no user with id %lld", (long long)id);
}

/* Making someone an admin-type user hands them everything: only those who
 * hold admin on every resource may. */
static int check_admin_type(struct rs_ctx *ctx, struct rs_tx *tx, struct rs_error *err)
{
    static const char everything[] = "{\"*\":\"admin\"}";
    struct rs_role all;
    rs_role_init(&all);
    all.key = rs_xstrdup("type admin");
    all.permissions = json_loads(everything, 0, NULL);
    int r = rs_svc_check_grant(ctx, tx, &all, "type", err);
    rs_role_release(&all);
    return r;
}

/* The licence limit, checked before a user becomes active. */
static int check_licence(struct rs_ctx *ctx, struct rs_tx *tx, const struct write_env *env,
                         struct rs_error *err)
{
    int64_t limit = env->settings.max_active_users;
    if (limit < 0)
        return 0;
    int64_t active = 0;
    int r = ctx->store->ops->user_count_status(tx->conn, RS_STATUS_ACTIVE, -1, &active, err);
    if (r < 0)
        return r;
    if (active >= limit)
        return rs_error_field(err, RS_ECONFLICT, "status", "licence_limit",
                              "licence limit reached: %lld of %lld active users",
                              (long long)active, (long long)limit);
    return 0;
}

/* The manager must exist, and (for an existing user) the chain above the new
 * manager may not lead back to the user. */
static int check_manager(struct rs_ctx *ctx, struct rs_tx *tx, const struct rs_user *u,
                         struct rs_error *err)
{
    if (u->manager_id == 0)
        return 0;
    struct rs_user m;
    int r = ctx->store->ops->user_get(tx->conn, u->manager_id, &m, err);
    if (r == -RS_ENOTFOUND)
        return rs_error_field(err, RS_EVALIDATION, "manager_id", "exists",
                              "manager_id %lld does not name a user", (long long)u->manager_id);
    if (r < 0)
        return r;
    int64_t ids[MANAGER_CHAIN_MAX + 1];
    char *names[MANAGER_CHAIN_MAX + 1];
    int n = 0;
    ids[0] = m.id;
    names[0] = RS_TAKE_PTR(m.username);
    rs_user_release(&m);
    r = ctx->store->ops->user_manager_chain(tx->conn, ids[0], MANAGER_CHAIN_MAX, ids + 1,
                                            names + 1, &n, err);
    if (r == 0)
        r = rs_manager_check(u->id, u->username, u->manager_id, ids, names, (size_t)n + 1, err);
    if (r == 0 && n == MANAGER_CHAIN_MAX)
        r = rs_error_field(err, RS_EVALIDATION, "manager_id", "depth",
                           "the chain of managers above manager_id is deeper than %d",
                           MANAGER_CHAIN_MAX);
    for (int i = 0; i <= n; i++)
        free(names[i]);
    return r;
}

/* Normalises, checks core rules with the settings, and checks the custom
 * field values; on success *in's custom holds what to store or merge. */
static int check_input(struct write_env *env, struct rs_user *in, unsigned mask,
                       unsigned required, const json_t *current_custom, bool creating,
                       struct rs_error *err)
{
    int r = rs_user_normalize(in, mask, err);
    if (r == 0)
        r = rs_user_check(in, mask, required, &env->settings.rules, err);
    if ((mask & RS_UF_CUSTOM) || creating) {
        json_t *values = NULL;
        int cr = rs_custom_values_check(env->fields, env->nfields, in->custom, current_custom,
                                        creating, &values, err);
        if (cr == 0) {
            json_decref(in->custom);
            in->custom = values;
        } else if (r == 0) {
            r = cr;
        }
    }
    return r < 0 ? -err->code : 0;
}

static void apply_defaults(const struct rs_user_settings *s, struct rs_user *in, unsigned *mask)
{
    if (!(*mask & RS_UF_TYPE)) {
        in->type = s->defaults.type;
        *mask |= RS_UF_TYPE;
    }
    if (!(*mask & RS_UF_STATUS)) {
        in->status = s->defaults.status;
        *mask |= RS_UF_STATUS;
    }
    if (!(*mask & RS_UF_DEPARTMENT) && s->defaults.department) {
        in->department = rs_xstrdup(s->defaults.department);
        *mask |= RS_UF_DEPARTMENT;
    }
    if (!(*mask & RS_UF_LOCATION) && s->defaults.location) {
        in->location = rs_xstrdup(s->defaults.location);
        *mask |= RS_UF_LOCATION;
    }
    if (!(*mask & RS_UF_ROLE) && s->defaults.role) {
        in->role = rs_xstrdup(s->defaults.role);
        *mask |= RS_UF_ROLE;
    }
}

int rs_svc_user_create(struct rs_ctx *ctx, struct rs_user *in, unsigned in_mask,
                       struct rs_user *ret, struct rs_error *err)
{
    struct rs_create_opts opts = {NULL, -1, -1};
    return rs_svc_user_create_with(ctx, in, in_mask, &opts, ret, err);
}

int rs_svc_user_create_with(struct rs_ctx *ctx, struct rs_user *in, unsigned in_mask,
                            const struct rs_create_opts *opts, struct rs_user *ret,
                            struct rs_error *err)
{
    int r = rs_svc_require(ctx, RS_RES_USERS, RS_LEVEL_WRITE, err);
    if (r < 0)
        return r;
    /* A password is checked and hashed before the transaction: hashing takes
     * tens of milliseconds and must not hold the writer. */
    struct rs_new_credential nc;
    r = rs_cred_prepare_create(ctx, in, in_mask, opts, &nc, err);
    if (r < 0)
        return r;
    struct rs_tx tx;
    struct write_env env;
    struct rs_user u;
    char *after = NULL;
    rs_user_init(&u);
    r = rs_tx_begin(ctx, &tx, err);
    if (r < 0) {
        rs_new_credential_release(&nc);
        return r;
    }
    r = env_load(ctx, &tx, &env, err);
    if (r < 0) {
        rs_tx_abort(&tx);
        rs_new_credential_release(&nc);
        return r;
    }
    /* Before the defaults: an invite makes the user pending unless a status
     * was asked for explicitly. */
    r = rs_cred_resolve_create(&nc, &env.settings.options, in, &in_mask, err);
    if (r < 0)
        goto abort;
    apply_defaults(&env.settings, in, &in_mask);
    r = check_input(&env, in, in_mask,
                    RS_UF_REQUIRED_ON_CREATE | rs_user_rules_required(&env.settings.rules), NULL,
                    true, err);
    if (r < 0)
        goto abort;
    rs_user_apply(&u, in, in_mask & ~RS_UF_CUSTOM);
    u.custom = in->custom && json_object_size(in->custom) ? json_incref(in->custom) : NULL;
    r = check_manager(ctx, &tx, &u, err);
    if (r == 0)
        r = rs_svc_check_role_assignable(ctx, &tx, u.role, "role", err);
    if (r == 0 && u.type == RS_USER_ADMIN)
        r = check_admin_type(ctx, &tx, err);
    if (r == 0 && u.status == RS_STATUS_ACTIVE)
        r = check_licence(ctx, &tx, &env, err);
    if (r < 0)
        goto abort;
    u.created_at = u.updated_at = u.status_changed_at = rs_ctx_now(ctx);
    u.version = 1;
    r = ctx->store->ops->user_insert(tx.conn, &u, err);
    if (r < 0)
        goto abort;
    after = rs_user_fields_to_json_text(&u, RS_UF_PROFILE | RS_UF_STATUS);
    r = rs_tx_audit(&tx, "user.create", "user", u.id, NULL, after, NULL, err);
    if (r == 0)
        r = rs_cred_created(ctx, &tx, &u, &nc, err);
    if (r < 0)
        goto abort;
    r = rs_tx_commit(&tx, err);
    if (r < 0)
        goto out;
    *ret = u;
    rs_user_init(&u);
    goto out;
abort:
    rs_tx_abort(&tx);
out:
    env_release(&env);
    free(after);
    rs_user_release(&u);
    rs_new_credential_release(&nc);
    return r;
}

int rs_svc_user_get(struct rs_ctx *ctx, int64_t id, struct rs_user *ret, struct rs_error *err)
{
    /* Everyone may read their own record. */
    int r = id == ctx->actor.user_id ? 0 : rs_svc_require(ctx, RS_RES_USERS, RS_LEVEL_READ, err);
    if (r < 0)
        return r;
    struct rs_conn *c = rs_ctx_read_conn(ctx, err);
    if (!c)
        return -RS_EUNAVAILABLE;
    r = ctx->store->ops->user_get(c, id, ret, err);
    return r == -RS_ENOTFOUND ? not_found(err, id) : r;
}

int rs_svc_user_get_by_username(struct rs_ctx *ctx, const char *username, struct rs_user *ret,
                                struct rs_error *err)
{
    int r = rs_svc_require(ctx, RS_RES_USERS, RS_LEVEL_READ, err);
    if (r < 0)
        return r;
    return rs_user_get_by_username_in(ctx, username, ret, err);
}

int rs_user_get_by_username_in(struct rs_ctx *ctx, const char *username, struct rs_user *ret,
                               struct rs_error *err)
{
    int r;
    _cleanup_free_ char *key = rs_fold_key(username);
    if (!key)
        return rs_error_field(err, RS_EVALIDATION, "username", "encoding",
                              "username is not valid UTF-8");
    struct rs_conn *c = rs_ctx_read_conn(ctx, err);
    if (!c)
        return -RS_EUNAVAILABLE;
    r = ctx->store->ops->user_get_by_username(c, key, ret, err);
    if (r == -RS_ENOTFOUND)
        return rs_error_set(err, RS_ENOTFOUND, "no user named \"%s\"", username);
    return r;
}

int rs_svc_user_profile(struct rs_ctx *ctx, int64_t id, struct rs_user *ret,
                        struct rs_user *ret_manager, struct rs_error *err)
{
    struct rs_user u, m;
    int r = rs_svc_user_get(ctx, id, &u, err);
    if (r < 0)
        return r;
    rs_user_init(&m);
    if (u.manager_id) {
        r = ctx->store->ops->user_get(ctx->rconn, u.manager_id, &m, err);
        if (r == -RS_ENOTFOUND) {
            rs_user_init(&m);
            r = 0;
        }
        if (r < 0) {
            rs_user_release(&u);
            return r;
        }
    }
    *ret = u;
    *ret_manager = m;
    return 0;
}

int rs_svc_user_list(struct rs_ctx *ctx, const struct rs_user_query *q, struct rs_user_page *ret,
                     struct rs_error *err)
{
    int r = rs_svc_require(ctx, RS_RES_USERS, RS_LEVEL_READ, err);
    if (r < 0)
        return r;
    return rs_user_list_in(ctx, q, ret, err);
}

int rs_user_list_in(struct rs_ctx *ctx, const struct rs_user_query *q, struct rs_user_page *ret,
                    struct rs_error *err)
{
    int r = 0;
    struct rs_user_query folded = *q;
    _cleanup_free_ char *text = NULL;
    if (q->q) {
        if (strlen(q->q) > RS_QUERY_TEXT_MAX)
            return rs_error_field(err, RS_EBADREQUEST, "q", "max_length",
                                  "q must be at most %d bytes", RS_QUERY_TEXT_MAX);
        text = rs_fold_key(q->q);
        if (!text)
            return rs_error_field(err, RS_EBADREQUEST, "q", "encoding", "q is not valid UTF-8");
        folded.q = text;
    }
    struct rs_conn *c = rs_ctx_read_conn(ctx, err);
    if (!c)
        return -RS_EUNAVAILABLE;
    if (q->ncf > 0) {
        /* A filter on a field that does not exist is a mistake, not "no rows". */
        struct rs_custom_field *defs = NULL;
        size_t n = 0;
        r = ctx->store->ops->cf_list(c, &defs, &n, err);
        for (int i = 0; r == 0 && i < q->ncf; i++) {
            bool known = false;
            for (size_t j = 0; j < n && !known; j++)
                known = strcmp(defs[j].key, q->cf_keys[i]) == 0;
            if (!known) {
                char param[64];
                snprintf(param, sizeof(param), "cf.%s", q->cf_keys[i]);
                r = rs_error_field(err, RS_EBADREQUEST, param, "unknown",
                                   "%s names no custom field", param);
            }
        }
        rs_fields_free(defs, n);
        if (r < 0)
            return r;
    }
    return ctx->store->ops->user_list(c, &folded, ret, err);
}

int rs_user_each(struct rs_ctx *ctx, const struct rs_user_query *q,
                 int (*fn)(void *arg, const struct rs_user *u, struct rs_error *err), void *arg,
                 struct rs_error *err)
{
    struct rs_user_query pq = *q;
    pq.limit = RS_LIST_LIMIT_MAX;
    pq.offset = 0;
    char *cursor = NULL;
    int r;
    for (;;) {
        struct rs_user_page page = {0};
        r = rs_user_list_in(ctx, &pq, &page, err);
        if (r < 0)
            break;
        for (size_t i = 0; r == 0 && i < page.count; i++)
            r = fn(arg, &page.items[i], err);
        bool more = r == 0 && page.has_more && page.count > 0;
        if (more) {
            free(cursor);
            cursor = rs_cursor_encode(&pq, &page.items[page.count - 1]);
            r = rs_cursor_decode(cursor, &pq, err);
        }
        rs_user_page_release(&page);
        if (r < 0 || !more)
            break;
    }
    free(cursor);
    return r;
}

/* Reads the user for a change inside tx: exists, not erased, version. */
static int load_for_change(struct rs_ctx *ctx, struct rs_tx *tx, int64_t id,
                           int64_t expected_version, struct rs_user *ret, struct rs_error *err)
{
    int r = ctx->store->ops->user_get_for_update(tx->conn, id, ret, err);
    if (r == -RS_ENOTFOUND)
        return not_found(err, id);
    if (r < 0)
        return r;
    if (ret->erased_at) {
        rs_user_release(ret);
        return rs_error_field(err, RS_ECONFLICT, "status", "erased",
                              "user %lld was erased and cannot be changed", (long long)id);
    }
    if (expected_version >= 0 && ret->version != expected_version) {
        int64_t v = ret->version;
        rs_user_release(ret);
        return rs_error_set(err, RS_EPRECONDITION,
                            "user %lld has changed (version %lld, If-Match names %lld); fetch "
                            "it again and retry",
                            (long long)id, (long long)v, (long long)expected_version);
    }
    return 0;
}

/* Writes after (version bumped) and its audit event with the changed fields. */
static int write_change(struct rs_ctx *ctx, struct rs_tx *tx, const struct rs_user *before,
                        struct rs_user *after, unsigned changed, const char *action,
                        const char *reason, struct rs_error *err)
{
    after->updated_at = rs_ctx_now(ctx);
    after->version = before->version + 1;
    int r = ctx->store->ops->user_update(tx->conn, after, before->version, err);
    if (r < 0)
        return r;
    json_t *b = rs_user_fields_to_json(before, changed);
    json_t *a = rs_user_fields_to_json(after, changed);
    if (changed & RS_UF_STATUS) {
        json_object_set_new(a, "status_reason",
                            after->status_reason ? json_string(after->status_reason)
                                                 : json_null());
        json_object_set_new(a, "status_note",
                            after->status_note ? json_string(after->status_note) : json_null());
    }
    char *bj = rs_json_text(b), *aj = rs_json_text(a);
    r = rs_tx_audit(tx, action, "user", after->id, bj, aj, reason, err);
    free(bj);
    free(aj);
    return r;
}

int rs_svc_user_update(struct rs_ctx *ctx, int64_t id, struct rs_user *patch, unsigned mask,
                       int64_t expected_version, struct rs_user *ret, struct rs_error *err)
{
    int r = rs_svc_require(ctx, RS_RES_USERS, RS_LEVEL_WRITE, err);
    if (r < 0)
        return r;
    mask &= RS_UF_PROFILE;
    struct rs_user before, after;
    struct rs_tx tx;
    struct write_env env;
    rs_user_init(&before);
    rs_user_init(&after);
    r = rs_tx_begin(ctx, &tx, err);
    if (r < 0)
        return r;
    r = env_load(ctx, &tx, &env, err);
    if (r < 0) {
        rs_tx_abort(&tx);
        return r;
    }
    r = load_for_change(ctx, &tx, id, expected_version, &before, err);
    if (r < 0)
        goto abort;
    /* A username given again unchanged is not checked again: an account may
     * keep a name the rules would now refuse (the first-run "admin"). */
    if ((mask & RS_UF_USERNAME) && patch->username) {
        char *a = rs_fold_key(patch->username), *b = rs_fold_key(before.username);
        if (a && b && strcmp(a, b) == 0 && strcmp(patch->username, before.username) == 0)
            mask &= ~RS_UF_USERNAME;
        free(a);
        free(b);
    }
    /* A change may not clear a field the settings require. */
    r = check_input(&env, patch, mask, mask & rs_user_rules_required(&env.settings.rules),
                    before.custom, false, err);
    if (r < 0)
        goto abort;
    if ((mask & RS_UF_USERNAME) && !env.settings.options.allow_username_change && patch->username) {
        char *a = rs_fold_key(patch->username), *b = rs_fold_key(before.username);
        bool same = a && b && strcmp(a, b) == 0;
        free(a);
        free(b);
        if (!same) {
            r = rs_error_field(err, RS_EVALIDATION, "username", "immutable",
                               "usernames cannot be changed (settings: "
                               "options.allow_username_change)");
            goto abort;
        }
    }
    rs_user_copy(&after, &before);
    rs_user_apply(&after, patch, mask);
    unsigned changed = rs_user_diff(&before, &after);
    if (changed == 0) {
        /* Nothing to change: no write, no version bump, no audit event. */
        rs_tx_abort(&tx);
        env_release(&env);
        *ret = before;
        rs_user_release(&after);
        return 0;
    }
    /* Who answers to the account (its username, its email: where reset
     * links go) is not for someone below its holder to change. */
    if (changed & (RS_UF_USERNAME | RS_UF_EMAIL))
        r = rs_svc_check_outranks(ctx, tx.conn, &before, "change the sign-in name or email of",
                                  err);
    /* Nor is what they may do: a role or type change that could lower a
     * superior's access (an administrator demoted by a user manager). */
    if (r == 0 && (changed & (RS_UF_ROLE | RS_UF_TYPE)))
        r = rs_svc_check_outranks(ctx, tx.conn, &before, "change the role or type of", err);
    if (r == 0 && (changed & RS_UF_MANAGER))
        r = check_manager(ctx, &tx, &after, err);
    if (r == 0 && (changed & RS_UF_ROLE))
        r = rs_svc_check_role_assignable(ctx, &tx, after.role, "role", err);
    if (r == 0 && (changed & RS_UF_TYPE) && after.type == RS_USER_ADMIN)
        r = check_admin_type(ctx, &tx, err);
    else if (r == 0 && (changed & RS_UF_TYPE))
        r = rs_svc_check_no_gain(ctx, &tx, &before, &after, err);
    /* Roles and type change access; a username lives in cached API keys. */
    if (r == 0 && (changed & (RS_UF_ROLE | RS_UF_TYPE | RS_UF_USERNAME)))
        r = rs_tx_access_changed(&tx, err);
    if (r == 0 && (changed & (RS_UF_ROLE | RS_UF_TYPE)))
        r = rs_cred_privilege_changed(&tx, id, err);
    if (r == 0)
        r = write_change(ctx, &tx, &before, &after, changed, "user.update", NULL, err);
    /* Links already sent went to the old address (or name): void them. */
    if (r == 0 && (changed & RS_UF_EMAIL))
        r = ctx->store->ops->token_void_user(tx.conn, id, NULL, rs_ctx_now(ctx), err);
    if (r == 0 && (changed & RS_UF_EMAIL))
        r = rs_cred_email_changed(ctx, &tx, &before, &after, err);
    if (r == 0 && (changed & (RS_UF_TYPE | RS_UF_ROLE)))
        r = check_admin_remains(ctx, &tx, &before, err);
    if (r < 0)
        goto abort;
    r = rs_tx_commit(&tx, err);
    if (r < 0)
        goto out;
    *ret = after;
    rs_user_init(&after);
    goto out;
abort:
    rs_tx_abort(&tx);
out:
    env_release(&env);
    rs_user_release(&before);
    rs_user_release(&after);
    return r;
}

/* The last-administrator rule as a post-condition, checked inside the
 * transaction after a change is written: some active user must still be an
 * administrator, by type or by the administrator role (primary, secondary or
 * through a group). u names the user whose change is refused. */
static int check_admin_remains(struct rs_ctx *ctx, struct rs_tx *tx, const struct rs_user *u,
                               struct rs_error *err)
{
    return rs_svc_check_admin_remains(ctx, tx, u->username, err);
}

int rs_svc_check_admin_remains(struct rs_ctx *ctx, struct rs_tx *tx, const char *who,
                               struct rs_error *err)
{
    int64_t admins = 0;
    int r = ctx->store->ops->user_count_status(tx->conn, RS_STATUS_ACTIVE, RS_USER_ADMIN, &admins,
                                               err);
    if (r < 0 || admins > 0)
        return r;
    bool held = false;
    r = ctx->store->ops->role_held(tx->conn, "administrator", &held, err);
    if (r < 0 || held)
        return r;
    return rs_error_field(err, RS_ECONFLICT, "status", "last_admin",
                          "%s is the last active administrator; make another user an "
                          "administrator first",
                          who);
}



/* A lifecycle transition inside tx (no access check: callers decide who may). */
int rs_user_act_tx(struct rs_ctx *ctx, struct rs_tx *tx, int64_t id, int action,
                   const char *reason, const char *note, int64_t expected_version,
                   struct rs_user *ret, struct rs_error *err)
{
    enum rs_user_action a = (enum rs_user_action)action;
    struct rs_user before, after;
    struct write_env env;
    enum rs_user_status to;
    rs_user_init(&before);
    rs_user_init(&after);
    int r = env_load(ctx, tx, &env, err);
    if (r < 0)
        return r;
    r = load_for_change(ctx, tx, id, expected_version, &before, err);
    if (r == 0)
        r = rs_lifecycle_next(before.status, a, &to, err);
    if (r == 0 && to == RS_STATUS_ACTIVE)
        r = check_licence(ctx, tx, &env, err);
    if (r < 0)
        goto out;
    rs_user_copy(&after, &before);
    after.status = to;
    free(after.status_reason);
    free(after.status_note);
    after.status_reason = reason ? rs_xstrdup(reason) : NULL;
    after.status_note = note && *note ? rs_xstrdup(note) : NULL;
    after.status_changed_at = rs_ctx_now(ctx);
    char action_name[32];
    snprintf(action_name, sizeof(action_name), "user.%s", rs_action_name(a));
    r = rs_tx_access_changed(tx, err);
    if (r == 0)
        r = write_change(ctx, tx, &before, &after, RS_UF_STATUS, action_name,
                         reason ? reason : note, err);
    if (r == 0 && to != RS_STATUS_ACTIVE)
        r = check_admin_remains(ctx, tx, &before, err);
    /* API keys stop at once (authentication checks the owner's status);
     * sessions end here, and an unlock clears the lockout counters. */
    if (r == 0)
        r = rs_cred_status_changed(ctx, tx, &before, &after, err);
    if (r < 0)
        goto out;
    if (ret) {
        *ret = after;
        rs_user_init(&after);
    }
out:
    env_release(&env);
    rs_user_release(&before);
    rs_user_release(&after);
    return r;
}

int rs_svc_user_act(struct rs_ctx *ctx, int64_t id, int action, const char *reason,
                    const char *note, int64_t expected_version, struct rs_user *ret,
                    struct rs_error *err)
{
    int r = rs_svc_require(ctx, RS_RES_USERS, RS_LEVEL_WRITE, err);
    if (r < 0)
        return r;
    _cleanup_free_ char *clean_note = rs_text_clean(note);
    note = clean_note;
    r = rs_lifecycle_check_reason((enum rs_user_action)action, reason, note, err);
    if (r < 0)
        return r;
    struct rs_tx tx;
    struct rs_user target;
    r = rs_tx_begin(ctx, &tx, err);
    if (r < 0)
        return r;
    r = ctx->store->ops->user_get(tx.conn, id, &target, err);
    if (r == 0) {
        char what[32];
        snprintf(what, sizeof(what), "%s", rs_action_name((enum rs_user_action)action));
        r = rs_svc_check_outranks(ctx, tx.conn, &target, what, err);
        rs_user_release(&target);
    } else if (r == -RS_ENOTFOUND) {
        rs_error_init(err);
        r = 0; /* rs_user_act_tx answers 404 */
    }
    if (r == 0)
        r = rs_user_act_tx(ctx, &tx, id, action, reason, note, expected_version, ret, err);
    if (r < 0) {
        rs_tx_abort(&tx);
        return r;
    }
    r = rs_tx_commit(&tx, err);
    if (r < 0 && ret)
        rs_user_release(ret);
    return r;
}

int rs_svc_user_erase(struct rs_ctx *ctx, int64_t id, const char *note, int64_t expected_version,
                      struct rs_user *ret, struct rs_error *err)
{
    int r = rs_svc_require(ctx, RS_RES_USERS, RS_LEVEL_ADMIN, err);
    if (r < 0)
        return r;
    _cleanup_free_ char *clean_note = rs_text_clean(note);
    note = clean_note;
    if (!note)
        return rs_error_field(err, RS_EVALIDATION, "note", "required",
                              "note is required: say which privacy request this answers");
    r = rs_lifecycle_check_reason(RS_ACTION_LOCK, NULL, note, err);
    if (r < 0)
        return r;
    struct rs_user before, after;
    struct rs_tx tx;
    rs_user_init(&before);
    rs_user_init(&after);
    r = rs_tx_begin(ctx, &tx, err);
    if (r < 0)
        return r;
    r = load_for_change(ctx, &tx, id, expected_version, &before, err);
    if (r == 0)
        r = rs_svc_check_outranks(ctx, tx.conn, &before, "erase", err);
    if (r < 0)
        goto abort;
    rs_user_copy(&after, &before);
    int64_t now = rs_ctx_now(ctx);
    struct rs_user anon;
    rs_user_init(&anon);
    anon.username = rs_xasprintf("erased-%lld", (long long)id);
    anon.email = rs_xasprintf("erased-%lld@erased.invalid", (long long)id);
    anon.first_name = rs_xstrdup("Erased");
    anon.last_name = rs_xstrdup("User");
    rs_user_apply(&after, &anon, RS_UF_USERNAME | RS_UF_EMAIL | RS_UF_FIRST_NAME |
                                     RS_UF_LAST_NAME | RS_UF_PHONE | RS_UF_EMPLOYEE_ID |
                                     RS_UF_POSITION);
    rs_user_release(&anon);
    json_decref(after.custom);
    after.custom = NULL;
    after.status = RS_STATUS_INACTIVE;
    free(after.status_reason);
    free(after.status_note);
    after.status_reason = rs_xstrdup("erased");
    after.status_note = rs_xstrdup(note);
    after.status_changed_at = now;
    after.erased_at = now;
    after.updated_at = now;
    after.version = before.version + 1;
    r = ctx->store->ops->user_update(tx.conn, &after, before.version, err);
    if (r == 0)
        r = ctx->store->ops->apikey_revoke_user(tx.conn, id, now, err);
    if (r == 0)
        r = rs_cred_erased(ctx, &tx, id, err);
    if (r == 0)
        r = rs_tx_access_changed(&tx, err);
    if (r == 0)
        r = check_admin_remains(ctx, &tx, &before, err);
    if (r == 0) {
        /* The event names what was erased, not the values. */
        json_t *fields = json_pack("{s:[s,s,s,s,s,s,s,s],s:s}", "erased", "username", "email",
                                   "first_name", "last_name", "phone", "employee_id", "position",
                                   "custom_fields", "status", "inactive");
        char *aj = rs_json_text(fields);
        r = rs_tx_audit(&tx, "user.erase", "user", id, NULL, aj, note, err);
        free(aj);
    }
    if (r < 0)
        goto abort;
    r = rs_tx_commit(&tx, err);
    if (r < 0)
        goto out;
    *ret = after;
    rs_user_init(&after);
    goto out;
abort:
    rs_tx_abort(&tx);
out:
    rs_user_release(&before);
    rs_user_release(&after);
    return r;
}

int rs_svc_user_history(struct rs_ctx *ctx, int64_t id, char **ret_json, struct rs_error *err)
{
    int r = rs_svc_require(ctx, RS_RES_AUDIT, RS_LEVEL_READ, err);
    if (r < 0)
        return r;
    /* A user's history is audit data: audit read is what it needs. */
    struct rs_conn *c = rs_ctx_read_conn(ctx, err);
    if (!c)
        return -RS_EUNAVAILABLE;
    struct rs_user u;
    r = ctx->store->ops->user_get(c, id, &u, err);
    if (r == -RS_ENOTFOUND)
        return not_found(err, id);
    if (r < 0)
        return r;
    rs_user_release(&u);
    return ctx->store->ops->audit_list_target(ctx->rconn, "user", id, HISTORY_LIMIT, ret_json,
                                              err);
}
