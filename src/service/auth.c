/* auth.c: authenticating API keys and checking the actor's access. */
#include <sodium.h>

#include "internal.h"

/* How stale a key's last-used time may get before a request writes it: one
 * write a minute per key instead of one per request. */
#define TOUCH_INTERVAL_MS 60000

static int refuse(struct rs_error *err, const char *why)
{
    rs_error_log(err, "%s", why);
    return rs_error_set(err, RS_EUNAUTHENTICATED, "missing or invalid API key");
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

    struct rs_conn *c = rs_ctx_read_conn(ctx, err);
    if (!c)
        return -RS_EUNAVAILABLE;
    struct rs_apikey k;
    struct rs_error lookup_err;
    rs_error_init(&lookup_err);
    int r = ctx->store->ops->apikey_find(c, key_id, &k, &lookup_err);
    if (r == -RS_ENOTFOUND) {
        /* Spend the same comparison as a found key so timing does not tell. */
        unsigned char dummy[RS_APIKEY_HASH_BYTES] = {0};
        volatile int sink = sodium_memcmp(dummy, presented, sizeof(dummy));
        (void)sink;
        return refuse(err, "unknown api key id");
    }
    if (r < 0) {
        *err = lookup_err;
        return r;
    }
    int64_t now = rs_ctx_now(ctx);
    bool ok = rs_apikey_accepts(&k, presented, now);
    if (!ok) {
        const char *why = k.revoked_at ? "revoked api key"
                          : (k.expires_at && now >= k.expires_at) ? "expired api key"
                                                                  : "wrong api key secret";
        rs_apikey_release(&k);
        return refuse(err, why);
    }
    if (k.owner_status != RS_STATUS_ACTIVE) {
        rs_apikey_release(&k);
        return refuse(err, "api key owner is not active");
    }
    /* Address ranges (the owner's, their type's, their roles'), cached. */
    if (ctx->client_ip[0]) {
        bool allowed = true;
        r = rs_svc_ip_allowed(ctx, k.user_id, ctx->client_ip, &allowed, err);
        if (r < 0 || !allowed) {
            rs_apikey_release(&k);
            return r < 0 ? r : refuse(err, "client address outside the allowed ranges");
        }
    }
    ctx->actor.user_id = k.user_id;
    rs_strlcpy(ctx->actor.username, k.username ? k.username : "", sizeof(ctx->actor.username));
    ctx->actor.type = (enum rs_user_type)k.owner_type;
    ctx->actor.apikey_id = k.id;
    *ret_touch = now - k.last_used_at >= TOUCH_INTERVAL_MS;
    rs_apikey_release(&k);
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
