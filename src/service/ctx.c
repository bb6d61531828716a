/* ctx.c: service contexts and write transactions (see ctx.h). */
#include <sodium.h>

#include "ctx.h"

static int64_t wall_clock(void *arg)
{
    (void)arg;
    return rs_now_ms();
}

void rs_ctx_init(struct rs_ctx *ctx, struct rs_store *store)
{
    memset(ctx, 0, sizeof(*ctx));
    ctx->store = store;
    rs_strlcpy(ctx->actor.username, "system", sizeof(ctx->actor.username));
    ctx->actor.type = RS_USER_ADMIN;
    ctx->clock.now_ms = wall_clock;
    ctx->random = randombytes_buf;
}

void rs_ctx_release(struct rs_ctx *ctx)
{
    if (ctx->rconn) {
        ctx->store->ops->release(ctx->rconn);
        ctx->rconn = NULL;
    }
}

int64_t rs_ctx_now(const struct rs_ctx *ctx)
{
    return ctx->clock.now_ms(ctx->clock.arg);
}

struct rs_conn *rs_ctx_read_conn(struct rs_ctx *ctx, struct rs_error *err)
{
    if (!ctx->rconn)
        ctx->rconn = ctx->store->ops->acquire(ctx->store, RS_CONN_READ, err);
    return ctx->rconn;
}

int rs_tx_begin(struct rs_ctx *ctx, struct rs_tx *ret, struct rs_error *err)
{
    const struct rs_store_ops *ops = ctx->store->ops;
    /* A call holds at most one connection at a time: waiting for the writer
     * while holding a pooled reader would let a full pool deadlock. */
    rs_ctx_release(ctx);
    struct rs_conn *c = ops->acquire(ctx->store, RS_CONN_WRITE, err);
    if (!c)
        return -RS_EUNAVAILABLE;
    int r = ops->begin(c, err);
    if (r < 0) {
        ops->release(c);
        return r;
    }
    ret->ctx = ctx;
    ret->conn = c;
    ret->access_changed = false;
    return 0;
}

int rs_tx_commit(struct rs_tx *tx, struct rs_error *err)
{
    const struct rs_store_ops *ops = tx->ctx->store->ops;
    int r = ops->commit(tx->conn, err);
    if (r < 0) {
        ops->rollback(tx->conn);
        if (tx->access_changed)
            rs_access_tx_aborted();
    } else if (tx->access_changed) {
        rs_access_changed_here();
    }
    ops->release(tx->conn);
    tx->conn = NULL;
    return r;
}

void rs_tx_abort(struct rs_tx *tx)
{
    if (!tx->conn)
        return;
    const struct rs_store_ops *ops = tx->ctx->store->ops;
    ops->rollback(tx->conn);
    ops->release(tx->conn);
    tx->conn = NULL;
    if (tx->access_changed)
        rs_access_tx_aborted();
}

int rs_tx_audit(struct rs_tx *tx, const char *action, const char *target_type, int64_t target_id,
                const char *before_json, const char *after_json, const char *reason,
                struct rs_error *err)
{
    struct rs_ctx *ctx = tx->ctx;
    struct rs_audit_event ev = {
        .at = rs_ctx_now(ctx),
        .actor_id = ctx->actor.user_id,
        .actor_name = ctx->actor.username,
        .action = action,
        .target_type = target_type,
        .target_id = target_id,
        .request_id = ctx->request_id[0] ? ctx->request_id : NULL,
        .before_json = before_json,
        .after_json = after_json,
        .reason = reason,
    };
    return ctx->store->ops->audit_insert(tx->conn, &ev, err);
}
