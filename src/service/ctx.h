/* ctx.h: the context every service call runs in: who is acting, in which
 * request, and the clock, randomness and store it may use. Front ends (http,
 * cli) build one per request or command; tests can fix the clock. */
#ifndef RS_CTX_H
#define RS_CTX_H

#include "../core/user.h"
#include "../store/store.h"

#define RS_REQUEST_ID_MAX 33

struct rs_actor {
    int64_t user_id;          /* 0: the system */
    char username[RS_USERNAME_MAX * 4 + 1];
    enum rs_user_type type;
    int64_t apikey_id;        /* 0 unless authenticated by API key */
};

struct rs_clock {
    int64_t (*now_ms)(void *arg);
    void *arg;
};

struct rs_ctx {
    struct rs_store *store;
    struct rs_actor actor;
    char request_id[RS_REQUEST_ID_MAX];
    struct rs_clock clock;
    /* Fills buf with n cryptographically random bytes. */
    void (*random)(void *buf, size_t n);
    /* The client's address as the front end established it (trusted proxies
     * resolved), "" for the CLI; and whether the request came over TLS. */
    char client_ip[46];
    bool secure;
    /* Set by the front end: the call runs on an event loop, which may read
     * but never takes the writer. */
    bool on_loop;
    /* Set by rs_svc_authenticate_session: the session the caller uses (0:
     * none), its flags and CSRF token, and the privilege epoch they were
     * decided at. */
    int64_t session_id;
    unsigned session_flags;
    char session_csrf[65];
    int64_t session_epoch;
    /* Also set by it when it replaced the session (privileges changed): the
     * new token, for the front end's Set-Cookie (which then wipes it); or,
     * on a loop, retry_on_pool: run the call again on the pool to rotate. */
    char session_token_new[48];
    bool retry_on_pool;
    /* Connections held for this call; released by rs_ctx_release(). */
    struct rs_conn *rconn;
};

/* A context acting as the system (first run, migrations, CLI bootstrap). */
void rs_ctx_init(struct rs_ctx *ctx, struct rs_store *store);
/* Releases any connection the context still holds. */
void rs_ctx_release(struct rs_ctx *ctx);

int64_t rs_ctx_now(const struct rs_ctx *ctx);
/* A read connection, acquired on first use and kept until rs_ctx_release. */
struct rs_conn *rs_ctx_read_conn(struct rs_ctx *ctx, struct rs_error *err);

/* A write transaction: release any read connection the context holds,
 * acquire the writer and BEGIN. Every change goes through
 * rs_tx_begin -> changes + rs_tx_audit -> rs_tx_commit (or rs_tx_abort), so a
 * change and its audit event commit together or not at all. */
struct rs_tx {
    struct rs_ctx *ctx;
    struct rs_conn *conn;
    bool access_changed; /* see rs_tx_access_changed (internal.h) */
};
int rs_tx_begin(struct rs_ctx *ctx, struct rs_tx *ret, struct rs_error *err) RS_WUR;
int rs_tx_commit(struct rs_tx *tx, struct rs_error *err) RS_WUR;
void rs_tx_abort(struct rs_tx *tx);
/* Tells this process's permission cache that a committed change altered
 * someone's access (called by rs_tx_commit). */
void rs_access_changed_here(void);
/* A transaction that bumped the access version rolled back: drop what was
 * cached under a version number that will be reused (access.c). */
void rs_access_tx_aborted(void);

/* Writes an audit event with the context's actor, time and request id. */
int rs_tx_audit(struct rs_tx *tx, const char *action, const char *target_type, int64_t target_id,
                const char *before_json, const char *after_json, const char *reason,
                struct rs_error *err) RS_WUR;

#endif
