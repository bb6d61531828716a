/* auth.c: authenticating API keys and checking the actor's access. A key
 * is read from the store once and then answered from keycache.c until a
 * change that could affect it; its secret is still checked every time. */
#include <sodium.h>

#include "internal.h"
#include "session_internal.h"

/* How stale a key's last-used time may get before a request writes it: one
 * write a minute per key instead of one per request. */
#define TOUCH_INTERVAL_MS 60000

static int refuse(struct rs_error *err, const char *why)
{
    rs_error_log(err, "%s", why);
    return rs_error_set(err, RS_EUNAUTHENTICATED, "missing or invalid API key");
}

/* The key as the store has it now, cached for the next requests under
 * stamp, which the caller took before this read: a revocation (or owner
 * change) committed after it leaves the entry stale even if the read missed
 * it. (Authentication is a call's first read, so no older snapshot is held.) */
static int load_key(struct rs_ctx *ctx, const char *key_id, const int64_t stamp[2], int64_t now,
                    struct rs_cached_key *ret, struct rs_error *err)
{
    struct rs_conn *c = rs_ctx_read_conn(ctx, err);
    if (!c)
        return -RS_EUNAVAILABLE;
    struct rs_apikey k;
    struct rs_error lookup_err;
    rs_error_init(&lookup_err);
    int r = ctx->store->ops->apikey_find(c, key_id, &k, &lookup_err);
    if (r == -RS_ENOTFOUND)
        return r; /* not cached: keys are created without a version bump */
    if (r < 0) {
        *err = lookup_err;
        return r;
    }
    memset(ret, 0, sizeof(*ret));
    ret->id = k.id;
    memcpy(ret->key_id, k.key_id, sizeof(ret->key_id));
    memcpy(ret->secret_hash, k.secret_hash, sizeof(ret->secret_hash));
    ret->user_id = k.user_id;
    rs_strlcpy(ret->username, k.username ? k.username : "", sizeof(ret->username));
    ret->owner_type = k.owner_type;
    ret->owner_status = k.owner_status;
    ret->expires_at = k.expires_at;
    ret->revoked_at = k.revoked_at;
    ret->last_used_at = k.last_used_at;
    rs_apikey_release(&k);
    rs_keycache_put(ret, stamp, now);
    return 0;
}

int rs_svc_authenticate(struct rs_ctx *ctx, const char *token, size_t len, bool *ret_touch,
                        struct rs_error *err)
{
    char key_id[RS_APIKEY_ID_LEN + 1];
    unsigned char presented[RS_APIKEY_HASH_BYTES];
    if (!token || len == 0)
        return refuse(err, "no credentials");
    if (rs_apikey_parse(token, len, key_id, presented) < 0)
        return refuse(err, "malformed api key");

    int64_t now = rs_ctx_now(ctx);
    int64_t stamp[2];
    rs_access_stamp(stamp);
    struct rs_cached_key k;
    if (!rs_keycache_get(key_id, stamp, now, &k)) {
        int r = load_key(ctx, key_id, stamp, now, &k, err);
        if (r == -RS_ENOTFOUND) {
            /* Spend the same comparison as a found key so timing does not
             * tell. (A cached key skips the store read: timing can tell a
             * recently used key id, 64 random bits, never its secret.) */
            unsigned char dummy[RS_APIKEY_HASH_BYTES] = {0};
            volatile int sink = sodium_memcmp(dummy, presented, sizeof(dummy));
            (void)sink;
            return refuse(err, "unknown api key id");
        }
        if (r < 0)
            return r;
    }
    /* Every request compares its own secret with the stored hash (constant
     * time) and checks revocation and expiry at its own time. */
    struct rs_apikey view = {.revoked_at = k.revoked_at, .expires_at = k.expires_at};
    memcpy(view.secret_hash, k.secret_hash, sizeof(view.secret_hash));
    if (!rs_apikey_accepts(&view, presented, now))
        return refuse(err, k.revoked_at                            ? "revoked api key"
                           : (k.expires_at && now >= k.expires_at) ? "expired api key"
                                                                   : "wrong api key secret");
    if (k.owner_status != RS_STATUS_ACTIVE)
        return refuse(err, "api key owner is not active");
    /* Address ranges (the owner's, their type's, their roles'), cached. */
    if (ctx->client_ip[0]) {
        bool allowed = true;
        int r = rs_svc_ip_allowed(ctx, k.user_id, ctx->client_ip, &allowed, err);
        if (r < 0)
            return r;
        if (!allowed)
            return refuse(err, "client address outside the allowed ranges");
    }
    ctx->actor.user_id = k.user_id;
    rs_strlcpy(ctx->actor.username, k.username, sizeof(ctx->actor.username));
    ctx->actor.type = (enum rs_user_type)k.owner_type;
    ctx->actor.apikey_id = k.id;
    *ret_touch = now - k.last_used_at >= TOUCH_INTERVAL_MS;
    /* One scheduled write a minute per key in this process, not one per
     * request until the write lands. */
    if (*ret_touch)
        rs_keycache_touched(k.key_id, k.id, now);
    return 0;
}

int rs_svc_apikey_touch(struct rs_ctx *ctx, struct rs_error *err)
{
    if (!ctx->actor.apikey_id)
        return 0;
    struct rs_tx tx;
    int r = rs_tx_begin(ctx, &tx, err);
    if (r < 0)
        return r;
    r = ctx->store->ops->apikey_touch(tx.conn, ctx->actor.apikey_id, rs_ctx_now(ctx), err);
    if (r < 0) {
        rs_tx_abort(&tx);
        return r;
    }
    return rs_tx_commit(&tx, err);
}

int rs_svc_health(struct rs_ctx *ctx, struct rs_error *err)
{
    struct rs_conn *c = rs_ctx_read_conn(ctx, err);
    if (!c)
        return -RS_EUNAVAILABLE;
    return ctx->store->ops->ping(c, err);
}
