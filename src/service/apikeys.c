/* apikeys.c: issuing, listing and revoking API keys, and the first-run
 * administrator. A token is shown once; only its hash is stored. */
#include "../core/user_json.h"
#include "internal.h"

/* Keys for another user need admin access to API keys; one's own need none. */
static int require_for(struct rs_ctx *ctx, int64_t owner_id, enum rs_level level,
                       struct rs_error *err)
{
    if (ctx->actor.user_id != 0 && owner_id == ctx->actor.user_id)
        return 0;
    return rs_svc_require(ctx, RS_RES_APIKEYS, level, err);
}

static int resolve_owner(struct rs_ctx *ctx, const char *username, struct rs_user *ret,
                         struct rs_error *err)
{
    struct rs_conn *c = rs_ctx_read_conn(ctx, err);
    if (!c)
        return -RS_EUNAVAILABLE;
    if (!username) {
        if (ctx->actor.user_id == 0)
            return rs_error_field(err, RS_EVALIDATION, "username", "required",
                                  "username is required to say whose key this is");
        return ctx->store->ops->user_get(c, ctx->actor.user_id, ret, err);
    }
    _cleanup_free_ char *key = rs_fold_key(username);
    if (!key)
        return rs_error_field(err, RS_EVALIDATION, "username", "encoding",
                              "username is not valid UTF-8");
    int r = ctx->store->ops->user_get_by_username(c, key, ret, err);
    if (r == -RS_ENOTFOUND)
        return rs_error_field(err, RS_EVALIDATION, "username", "exists",
                              "no user named \"%s\"", username);
    return r;
}

/* Inserts a key for owner inside tx, with its audit event. */
static int issue_key(struct rs_tx *tx, const struct rs_user *owner, const char *name,
                     int64_t expires_at, struct rs_apikey *k, char token_out[RS_APIKEY_TOKEN_MAX],
                     struct rs_error *err)
{
    struct rs_ctx *ctx = tx->ctx;
    unsigned char id_bytes[8], secret[RS_APIKEY_SECRET_BYTES];
    ctx->random(id_bytes, sizeof(id_bytes));
    ctx->random(secret, sizeof(secret));
    rs_apikey_init(k);
    rs_apikey_make(id_bytes, secret, k, token_out);
    k->user_id = owner->id;
    k->username = rs_xstrdup(owner->username);
    k->name = rs_xstrdup(name);
    k->created_at = rs_ctx_now(ctx);
    k->expires_at = expires_at;
    int r = ctx->store->ops->apikey_insert(tx->conn, k, err);
    if (r < 0)
        return r;
    char *after = rs_json_text(rs_apikey_to_json(k));
    r = rs_tx_audit(tx, "apikey.create", "apikey", k->id, NULL, after, NULL, err);
    free(after);
    return r;
}

int rs_svc_apikey_create(struct rs_ctx *ctx, const char *username, const char *name,
                         const int64_t *expires_at, struct rs_apikey *ret,
                         char token_out[RS_APIKEY_TOKEN_MAX], struct rs_error *err)
{
    if (!name || !*name)
        name = "default";
    long nlen = rs_utf8_length(name, strlen(name));
    if (nlen < 0 || nlen > RS_APIKEY_NAME_MAX)
        return rs_error_field(err, RS_EVALIDATION, "name", "max_length",
                              "name must be valid UTF-8 of at most %d characters",
                              RS_APIKEY_NAME_MAX);
    if (expires_at && *expires_at <= rs_ctx_now(ctx))
        return rs_error_field(err, RS_EVALIDATION, "expires_at", "future",
                              "expires_at must be in the future");
    struct rs_user owner;
    int r = resolve_owner(ctx, username, &owner, err);
    if (r < 0)
        return r;
    r = require_for(ctx, owner.id, RS_LEVEL_WRITE, err);
    if (r < 0)
        goto out;
    if (owner.status != RS_STATUS_ACTIVE) {
        r = rs_error_field(err, RS_EVALIDATION, "username", "active",
                           "user \"%s\" is %s; keys can be issued only to active users",
                           owner.username, rs_user_status_name(owner.status));
        goto out;
    }
    struct rs_tx tx;
    r = rs_tx_begin(ctx, &tx, err);
    if (r < 0)
        goto out;
    struct rs_apikey k;
    r = issue_key(&tx, &owner, name, expires_at ? *expires_at : 0, &k, token_out, err);
    if (r == 0)
        r = rs_tx_commit(&tx, err);
    else
        rs_tx_abort(&tx);
    if (r == 0)
        *ret = k;
    else
        rs_apikey_release(&k);
out:
    rs_user_release(&owner);
    return r;
}

int rs_svc_apikey_list(struct rs_ctx *ctx, const char *username, struct rs_apikey **ret_items,
                       size_t *ret_count, struct rs_error *err)
{
    int64_t owner_id = 0;
    int r;
    if (username) {
        struct rs_user owner;
        r = resolve_owner(ctx, username, &owner, err);
        if (r < 0)
            return r;
        owner_id = owner.id;
        rs_user_release(&owner);
        r = require_for(ctx, owner_id, RS_LEVEL_READ, err);
    } else {
        r = rs_svc_require(ctx, RS_RES_APIKEYS, RS_LEVEL_READ, err);
        if (r == -RS_EFORBIDDEN) {
            rs_error_init(err);
            owner_id = ctx->actor.user_id; /* without rights over all keys: one's own */
            r = 0;
        }
    }
    if (r < 0)
        return r;
    struct rs_conn *c = rs_ctx_read_conn(ctx, err);
    if (!c)
        return -RS_EUNAVAILABLE;
    return ctx->store->ops->apikey_list(c, owner_id, ret_items, ret_count, err);
}

int rs_svc_apikey_revoke(struct rs_ctx *ctx, int64_t id, struct rs_apikey *ret,
                         struct rs_error *err)
{
    struct rs_tx tx;
    struct rs_apikey k;
    int r = rs_tx_begin(ctx, &tx, err);
    if (r < 0)
        return r;
    r = ctx->store->ops->apikey_get(tx.conn, id, &k, err);
    if (r == -RS_ENOTFOUND)
        r = rs_error_set(err, RS_ENOTFOUND, "no api key with id %lld", (long long)id);
    if (r < 0) {
        rs_tx_abort(&tx);
        return r;
    }
    r = require_for(ctx, k.user_id, RS_LEVEL_WRITE, err);
    int64_t now = rs_ctx_now(ctx);
    if (r == 0)
        r = ctx->store->ops->apikey_revoke(tx.conn, id, now, err);
    /* Authentication caches keys under the access stamp: the bump makes this
     * process drop the key at commit and every other within 50 ms. */
    if (r == 0)
        r = rs_tx_access_changed(&tx, err);
    if (r == 0) {
        char *before = rs_json_text(rs_apikey_to_json(&k));
        k.revoked_at = now;
        char *after = rs_json_text(rs_apikey_to_json(&k));
        r = rs_tx_audit(&tx, "apikey.revoke", "apikey", id, before, after, NULL, err);
        free(before);
        free(after);
    }
    if (r == 0)
        r = rs_tx_commit(&tx, err);
    else
        rs_tx_abort(&tx);
    if (r == 0)
        *ret = k;
    else
        rs_apikey_release(&k);
    return r;
}

int rs_svc_bootstrap(struct rs_ctx *ctx, bool *ret_created, char token_out[RS_APIKEY_TOKEN_MAX],
                     struct rs_error *err)
{
    struct rs_tx tx;
    bool any = false;
    int r = rs_tx_begin(ctx, &tx, err);
    if (r < 0)
        return r;
    r = ctx->store->ops->users_exist(tx.conn, &any, err);
    if (r < 0 || any) {
        rs_tx_abort(&tx);
        if (r == 0)
            *ret_created = false;
        return r;
    }
    struct rs_user admin;
    rs_user_init(&admin);
    admin.username = rs_xstrdup("admin");
    admin.email = rs_xstrdup("admin@localhost.localdomain");
    admin.first_name = rs_xstrdup("Roster");
    admin.last_name = rs_xstrdup("Administrator");
    admin.type = RS_USER_ADMIN;
    admin.status = RS_STATUS_ACTIVE;
    admin.created_at = admin.updated_at = rs_ctx_now(ctx);
    admin.version = 1;
    char *after = NULL;
    struct rs_apikey k;
    rs_apikey_init(&k);
    r = ctx->store->ops->user_insert(tx.conn, &admin, err);
    if (r == 0) {
        after = rs_json_text(rs_user_fields_to_json(&admin, RS_UF_REQUIRED_ON_CREATE | RS_UF_TYPE));
        r = rs_tx_audit(&tx, "user.create", "user", admin.id, NULL, after, "first run", err);
    }
    if (r == 0)
        r = issue_key(&tx, &admin, "first-run admin key", 0, &k, token_out, err);
    if (r == 0)
        r = rs_tx_commit(&tx, err);
    else
        rs_tx_abort(&tx);
    if (r == 0)
        *ret_created = true;
    free(after);
    rs_apikey_release(&k);
    rs_user_release(&admin);
    return r;
}
