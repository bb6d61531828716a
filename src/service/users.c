/* users.c: creating, reading, listing and changing users; each change with
 * its audit event in one transaction. */
#include "../core/user_json.h"
#include "internal.h"

#define HISTORY_LIMIT 200

int rs_svc_user_create(struct rs_ctx *ctx, struct rs_user *in, unsigned in_mask,
                       struct rs_user *ret, struct rs_error *err)
{
    int r = rs_svc_require(ctx, RS_RES_USERS, RS_LEVEL_WRITE, err);
    if (r < 0)
        return r;
    r = rs_user_normalize(in, in_mask, err);
    if (r < 0)
        return r;
    r = rs_user_validate(in, in_mask, RS_UF_REQUIRED_ON_CREATE, err);
    if (r < 0)
        return r;

    struct rs_user u;
    rs_user_init(&u);
    rs_user_apply(&u, in, in_mask);
    if (!(in_mask & RS_UF_TYPE))
        u.type = RS_USER_STANDARD;
    u.status = RS_STATUS_ACTIVE;
    u.created_at = u.updated_at = rs_ctx_now(ctx);
    u.version = 1;

    struct rs_tx tx;
    char *after = NULL;
    r = rs_tx_begin(ctx, &tx, err);
    if (r < 0)
        goto out;
    r = ctx->store->ops->user_insert(tx.conn, &u, err);
    if (r < 0)
        goto abort;
    after = rs_json_text(rs_user_fields_to_json(&u, RS_UF_REQUIRED_ON_CREATE | RS_UF_TYPE));
    r = rs_tx_audit(&tx, "user.create", "user", u.id, NULL, after, NULL, err);
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
    free(after);
    rs_user_release(&u);
    return r;
}

int rs_svc_user_get(struct rs_ctx *ctx, int64_t id, struct rs_user *ret, struct rs_error *err)
{
    int r = rs_svc_require(ctx, RS_RES_USERS, RS_LEVEL_READ, err);
    if (r < 0)
        return r;
    struct rs_conn *c = rs_ctx_read_conn(ctx, err);
    if (!c)
        return -RS_EUNAVAILABLE;
    r = ctx->store->ops->user_get(c, id, ret, err);
    if (r == -RS_ENOTFOUND)
        return rs_error_set(err, RS_ENOTFOUND, "no user with id %lld", (long long)id);
    return r;
}

int rs_svc_user_get_by_username(struct rs_ctx *ctx, const char *username, struct rs_user *ret,
                                struct rs_error *err)
{
    int r = rs_svc_require(ctx, RS_RES_USERS, RS_LEVEL_READ, err);
    if (r < 0)
        return r;
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

int rs_svc_user_list(struct rs_ctx *ctx, const struct rs_user_query *q, struct rs_user_page *ret,
                     struct rs_error *err)
{
    int r = rs_svc_require(ctx, RS_RES_USERS, RS_LEVEL_READ, err);
    if (r < 0)
        return r;
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
    return ctx->store->ops->user_list(c, &folded, ret, err);
}

int rs_svc_user_update(struct rs_ctx *ctx, int64_t id, struct rs_user *patch, unsigned mask,
                       int64_t expected_version, struct rs_user *ret, struct rs_error *err)
{
    int r = rs_svc_require(ctx, RS_RES_USERS, RS_LEVEL_WRITE, err);
    if (r < 0)
        return r;
    r = rs_user_normalize(patch, mask, err);
    if (r < 0)
        return r;
    r = rs_user_validate(patch, mask, 0, err);
    if (r < 0)
        return r;

    struct rs_user before, after;
    struct rs_tx tx;
    char *before_json = NULL, *after_json = NULL;
    rs_user_init(&before);
    rs_user_init(&after);
    r = rs_tx_begin(ctx, &tx, err);
    if (r < 0)
        return r;
    r = ctx->store->ops->user_get_for_update(tx.conn, id, &before, err);
    if (r == -RS_ENOTFOUND)
        r = rs_error_set(err, RS_ENOTFOUND, "no user with id %lld", (long long)id);
    if (r < 0)
        goto abort;
    if (expected_version >= 0 && before.version != expected_version) {
        r = rs_error_set(err, RS_EPRECONDITION,
                         "user %lld has changed (version %lld, If-Match names %lld); fetch it "
                         "again and retry",
                         (long long)id, (long long)before.version, (long long)expected_version);
        goto abort;
    }
    rs_user_copy(&after, &before);
    rs_user_apply(&after, patch, mask);
    unsigned changed = rs_user_diff(&before, &after);
    if (changed == 0) {
        /* Nothing to change: no write, no version bump, no audit event. */
        rs_tx_abort(&tx);
        *ret = before;
        rs_user_release(&after);
        return 0;
    }
    after.updated_at = rs_ctx_now(ctx);
    after.version = before.version + 1;
    r = ctx->store->ops->user_update(tx.conn, &after, before.version, err);
    if (r < 0)
        goto abort;
    before_json = rs_json_text(rs_user_fields_to_json(&before, changed));
    after_json = rs_json_text(rs_user_fields_to_json(&after, changed));
    r = rs_tx_audit(&tx, "user.update", "user", id, before_json, after_json, NULL, err);
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
    free(before_json);
    free(after_json);
    rs_user_release(&before);
    rs_user_release(&after);
    return r;
}

int rs_svc_user_history(struct rs_ctx *ctx, int64_t id, char **ret_json, struct rs_error *err)
{
    int r = rs_svc_require(ctx, RS_RES_AUDIT, RS_LEVEL_READ, err);
    if (r < 0)
        return r;
    struct rs_user u;
    r = rs_svc_user_get(ctx, id, &u, err);
    if (r < 0)
        return r;
    rs_user_release(&u);
    return ctx->store->ops->audit_list_target(ctx->rconn, "user", id, HISTORY_LIMIT, ret_json,
                                              err);
}
