/* session.c: signing in and out, server-side sessions and authenticating
 * requests by session cookie.
 *
 * Sign-in runs in three steps so that the argon2id hash (tens of
 * milliseconds) never holds the database writer: (1) read the settings, the
 * user and their credential and check the client's failure budget; (2)
 * verify the password, or spend the same time on a dummy hash when there is
 * no such user; (3) one write transaction records the outcome: the failure
 * (counters, lockout, audit) or the session (audit, last login). Every
 * refusal answers the same "invalid credentials"; the reason is audited. */
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>

#include "../util/log.h"
#include "../core/ipnet.h"
#include "../core/totp.h"
#include "crypto.h"
#include "internal.h"
#include "notify.h"
#include "session_internal.h"

#define TOUCH_INTERVAL_MS 60000
/* After a rotation, requests sent in parallel with the old token still
 * authenticate (as the new session, without a new cookie) this long. */
#define RS_SESSION_GRACE_MS 10000
#define FAILED "invalid credentials"

void rs_login_out_release(struct rs_login_out *o)
{
    rs_user_release(&o->user);
    rs_session_release(&o->session);
    sodium_memzero(o->token, sizeof(o->token));
}

/* The CSRF token of a session: a keyed hash of its random seed (so rotating
 * the session token keeps it); see RS_CSRF_SEED_MAX for the older forms. */
void rs_session_csrf(const char *seed, const char *token, char out[RS_HASH_HEX])
{
    if (seed[0] == '=')
        rs_strlcpy(out, seed + 1, RS_HASH_HEX);
    else if (seed[0])
        rs_keyed_hash("csrf", seed, strlen(seed), out);
    else
        rs_keyed_hash("csrf", token, strlen(token), out);
}

static void csrf_seed_new(struct rs_ctx *ctx, char out[RS_CSRF_SEED_MAX])
{
    unsigned char raw[32];
    ctx->random(raw, sizeof(raw));
    sodium_bin2hex(out, RS_CSRF_SEED_MAX, raw, sizeof(raw));
    sodium_memzero(raw, sizeof(raw));
}

static int64_t minutes(int m)
{
    return (int64_t)m * 60000;
}

/* Whether the password has outlived the policy's maximum age. */
bool rs_password_expired(const struct rs_auth_settings *s, const struct rs_credential *cr,
                         int64_t now)
{
    return s->password.max_age_days > 0 && cr->password_hash[0] &&
           cr->password_changed_at + (int64_t)s->password.max_age_days * 86400000 <= now;
}

static bool level_admin(const struct rs_access *a, const char *resource)
{
    const struct rs_access_entry *e = rs_access_find(a, resource);
    return e && e->level >= RS_LEVEL_ADMIN;
}

/* Whether the 2FA policy requires a second factor of u, read on c from the
 * store (no cache: a promotion counts at once, in every process). Fails
 * closed: when what u holds cannot be read, 2FA is required. */
bool rs_totp_required(struct rs_ctx *ctx, struct rs_conn *c, const struct rs_auth_settings *s,
                      const struct rs_user *u)
{
    struct rs_error e;
    rs_error_init(&e);
    switch (s->two_factor.require) {
    case RS_2FA_OFF:
        return false;
    case RS_2FA_EVERYONE:
        return u->type != RS_USER_API;
    case RS_2FA_ADMINS: {
        if (u->type == RS_USER_ADMIN)
            return true;
        /* Anyone holding admin on users or settings counts as an
         * administrator; what they hold when active (a lockout running out
         * gives it back at this very sign-in). */
        struct rs_user as_active = *u;
        as_active.status = RS_STATUS_ACTIVE;
        struct rs_access a;
        if (!c || rs_access_compute(ctx, c, &as_active, &a, &e) < 0)
            return true;
        bool admin = level_admin(&a, "settings") || level_admin(&a, "users");
        rs_access_release(&a);
        return admin;
    }
    case RS_2FA_ROLES: {
        char **held = NULL;
        size_t n = 0, i;
        json_t *v;
        bool hit = false;
        if (!c || rs_roles_held(ctx, c, u, &held, &n, &e) < 0)
            return true;
        json_array_foreach(s->two_factor.roles, i, v)
        {
            for (size_t j = 0; !hit && j < n; j++)
                hit = strcmp(held[j], json_string_value(v)) == 0;
        }
        rs_strv_free(held, n);
        return hit;
    }
    }
    return true;
}

/* Creates a session for u inside tx: enforces the per-user maximum (oldest
 * end first), stores the token's hash, returns the token and CSRF token. */
int rs_session_create(struct rs_ctx *ctx, struct rs_tx *tx, const struct rs_auth_settings *s,
                      const struct rs_user *u, unsigned flags, const char *user_agent,
                      int64_t expires_at, const char *csrf_seed, int64_t epoch,
                      struct rs_session *ret, char token[48], char csrf[RS_HASH_HEX],
                      struct rs_error *err)
{
    const struct rs_store_ops *ops = ctx->store->ops;
    int64_t now = rs_ctx_now(ctx);
    int r = 0;
    if (s->sessions.max_per_user > 0) {
        struct rs_session *list = NULL;
        size_t n = 0;
        r = ops->session_list_user(tx->conn, u->id, &list, &n, err);
        if (r < 0)
            return r;
        /* Newest first: keep max - 1 to make room for this one. */
        for (size_t i = (size_t)s->sessions.max_per_user - 1; r == 0 && i < n; i++) {
            r = ops->session_delete(tx->conn, list[i].id, err);
            if (r == 0) {
                char aj[96];
                snprintf(aj, sizeof(aj), "{\"session_id\":%lld}", (long long)list[i].id);
                r = rs_tx_audit(tx, "auth.session_ended", "user", u->id, NULL, aj,
                                "max_sessions", err);
            }
        }
        rs_sessions_free(list, n);
        if (r < 0)
            return r;
    }
    char tok[RS_TOKEN_CHARS];
    rs_token_new(tok);
    struct rs_session se = {0};
    rs_token_hash(tok, strlen(tok), se.token_hash);
    se.user_id = u->id;
    se.created_at = se.last_seen_at = now;
    se.expires_at = expires_at ? expires_at
                               : now + (int64_t)s->sessions.absolute_timeout_hours * 3600000;
    se.ip = rs_xstrdup(ctx->client_ip);
    se.user_agent = rs_xstrdup(user_agent ? user_agent : "");
    se.flags = flags;
    if (csrf_seed && csrf_seed[0])
        rs_strlcpy(se.csrf_seed, csrf_seed, sizeof(se.csrf_seed));
    else
        csrf_seed_new(ctx, se.csrf_seed);
    se.privilege_epoch = epoch;
    r = ops->session_insert(tx->conn, &se, err);
    if (r < 0) {
        rs_session_release(&se);
        sodium_memzero(tok, sizeof(tok));
        return r;
    }
    rs_strlcpy(token, tok, 48);
    rs_session_csrf(se.csrf_seed, tok, csrf);
    sodium_memzero(tok, sizeof(tok));
    *ret = se;
    return 0;
}

/* --- sign-in --- */

struct attempt {
    struct rs_auth_settings s;
    struct rs_user u;
    bool found;
    struct rs_credential cr;
    const char *reason;  /* why it fails, NULL while it may succeed */
    bool need_totp;      /* password right, 2FA enrolled, no code given */
    bool count_failure;  /* counts toward the lockout */
    bool auto_unlock;    /* locked by a lockout that has run out */
    int64_t totp_step;
    bool must_enroll;    /* the policy requires 2FA and none is enrolled */
    char recovery_hash[RS_HASH_HEX];
    char *rehash;        /* a new hash with the current parameters */
};

static void attempt_release(struct attempt *a)
{
    rs_auth_settings_release(&a->s);
    rs_user_release(&a->u);
    rs_credential_release(&a->cr);
    free(a->rehash);
}

/* The key of a client's failure budget: its address, or for IPv6 its /64
 * (one subscriber usually holds a whole /64). */
char *rs_throttle_key(const char *prefix, const char *ip)
{
    struct rs_ipaddr a;
    if (rs_ip_parse(ip, &a) == 0 && a.family == 6) {
        char text[64];
        memset(a.a + 8, 0, 8);
        rs_ip_format(&a, text, sizeof(text));
        return rs_xasprintf("%s:%s/64", prefix, text);
    }
    return rs_xasprintf("%s:%s", prefix, ip);
}

static char *ip_key(const char *ip)
{
    return rs_throttle_key("login-ip", ip);
}

/* Whether a throttled refusal from this key in this window was audited
 * already (per process: at most one event per address and window). */
static bool throttle_audited(const char *key, int64_t window_start)
{
    static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    static struct {
        uint64_t h;
        int64_t start;
    } seen[256];
    uint64_t h = 1469598103934665603ull;
    for (const char *p = key; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ull;
    pthread_mutex_lock(&lock);
    size_t i = h & 255;
    bool done = seen[i].h == h && seen[i].start == window_start;
    seen[i].h = h;
    seen[i].start = window_start;
    pthread_mutex_unlock(&lock);
    return done;
}

/* Step 1: what the attempt is about. */
static int attempt_load(struct rs_ctx *ctx, const struct rs_login_in *in, struct attempt *a,
                        int *ret_retry_after, struct rs_error *err)
{
    const struct rs_store_ops *ops = ctx->store->ops;
    struct rs_conn *c = rs_ctx_read_conn(ctx, err);
    if (!c)
        return -RS_EUNAVAILABLE;
    int r = rs_auth_settings_load(ctx, c, &a->s, err);
    if (r < 0)
        return r;
    _cleanup_free_ char *fold = rs_fold_key(in->username ? in->username : in->email);
    if (fold) {
        r = in->username ? ops->user_get_by_username(c, fold, &a->u, err)
                         : ops->user_get_by_email(c, fold, &a->u, err);
        if (r == 0)
            a->found = true;
        else if (r != -RS_ENOTFOUND)
            return r;
        rs_error_init(err);
    }
    if (a->found) {
        r = ops->cred_get(c, a->u.id, &a->cr, err);
        if (r == -RS_ENOTFOUND) {
            rs_error_init(err);
            rs_credential_init(&a->cr, a->u.id);
        } else if (r < 0) {
            return r;
        }
    } else {
        rs_credential_init(&a->cr, 0);
    }
    /* The client's failure budget, checked before any hashing. */
    int64_t now = rs_ctx_now(ctx), count = 0, start = 0;
    int64_t window = (int64_t)a->s.throttle.ip_window_seconds * 1000;
    _cleanup_free_ char *key = ip_key(ctx->client_ip);
    r = ops->rate_hit(c, key, now, window, 0, &count, &start, err);
    rs_ctx_release(ctx);
    if (r < 0)
        return r;
    if (count >= a->s.throttle.ip_max_failures) {
        int64_t left = start + window - now;
        *ret_retry_after = (int)(left / 1000 + 1);
        a->reason = throttle_audited(key, start) ? "throttled_again" : "throttled";
        rs_error_log(err, "client %s over its sign-in failure budget", ctx->client_ip);
        return rs_error_set(err, RS_ETHROTTLED,
                            "too many failed sign-ins from your address; try again later");
    }
    return 0;
}

/* Why the account's state refuses a sign-in with the right password, or
 * NULL: inactive, pending, locked (a time-limited lock that has run out
 * passes: the sign-in unlocks it), or the last administrator's pause. */
static const char *status_refusal(const struct rs_user *u, const struct rs_credential *cr,
                                  int64_t now)
{
    if (u->type == RS_USER_API)
        return "api_user";
    if (u->status == RS_STATUS_INACTIVE)
        return "inactive";
    if (u->status == RS_STATUS_PENDING)
        return "pending";
    if (u->status == RS_STATUS_LOCKED && !(cr->locked_until > 0 && cr->locked_until <= now))
        return "locked";
    if (u->status == RS_STATUS_ACTIVE && cr->locked_until > now)
        return "locked"; /* the last administrator's pause */
    return NULL;
}

/* Step 2: the password and everything else that decides, without the writer. */
static void attempt_judge(struct rs_ctx *ctx, const struct rs_login_in *in, struct attempt *a)
{
    int mem = a->s.hash_memory_kib, it = a->s.hash_iterations;
    _cleanup_free_ char *pw = NULL;
    struct rs_error e;
    rs_error_init(&e);
    if (rs_password_normalize(in->password, "password", &pw, &e) < 0)
        pw = rs_xstrdup(in->password); /* fails below like any wrong password */
    bool ok;
    if (a->found && a->cr.password_hash[0]) {
        ok = rs_pw_verify(a->cr.password_hash, pw);
    } else {
        rs_pw_dummy_verify(pw, mem, it);
        ok = false;
    }
    int64_t now = rs_ctx_now(ctx);
    if (!a->found) {
        a->reason = "unknown_user";
    } else if (a->u.type == RS_USER_API) {
        a->reason = "api_user";
    } else if (!a->cr.password_hash[0]) {
        a->reason = "no_password";
    } else if (!ok) {
        a->reason = "bad_password";
        a->count_failure = true;
    } else {
        a->reason = status_refusal(&a->u, &a->cr, now);
    }
    if (!a->reason && a->u.status == RS_STATUS_LOCKED)
        a->auto_unlock = true;
    if (!a->reason) {
        bool allowed = true;
        if (rs_svc_ip_allowed(ctx, a->u.id, ctx->client_ip, &allowed, &e) < 0 || !allowed)
            a->reason = "ip_refused";
    }
    if (!a->reason && a->cr.totp_secret[0]) {
        unsigned char secret[64];
        size_t n = 0;
        if (rs_secret_open(a->cr.totp_secret, secret, sizeof(secret), &n) < 0) {
            a->reason = "totp_secret_unreadable";
        } else if (in->totp) {
            if (rs_totp_verify(secret, n, in->totp, now, 1, a->cr.totp_last_step,
                               &a->totp_step) < 0) {
                a->reason = "bad_totp";
                a->count_failure = true;
            }
        } else if (in->recovery_code) {
            _cleanup_free_ char *code = rs_recovery_normalize(in->recovery_code);
            rs_keyed_hash("recovery", code, strlen(code), a->recovery_hash);
        } else {
            a->need_totp = true;
            a->reason = "totp_required";
        }
        sodium_memzero(secret, sizeof(secret));
    }
    if (!a->reason && !a->cr.totp_secret[0]) {
        struct rs_conn *c = rs_ctx_read_conn(ctx, &e);
        a->must_enroll = rs_totp_required(ctx, c, &a->s, &a->u);
    }
    rs_ctx_release(ctx); /* no snapshot held while hashing */
    if (!a->reason && rs_pw_needs_rehash(a->cr.password_hash, mem, it)) {
        if (rs_pw_hash(pw, mem, it, &a->rehash, &e) < 0)
            a->rehash = NULL;
    }
    sodium_memzero(pw, strlen(pw));
    rs_ctx_release(ctx);
}

static int audit_failure(struct rs_tx *tx, const struct attempt *a, const struct rs_login_in *in,
                         struct rs_error *err)
{
    json_t *o = json_pack("{s:s,s:s}", "identifier", in->username ? in->username : in->email,
                          "ip", tx->ctx->client_ip);
    char *aj = rs_json_text(o);
    int r = rs_tx_audit(tx, "auth.login_failed", "user", a->found ? a->u.id : 0, NULL, aj,
                        a->reason, err);
    free(aj);
    return r;
}

/* Step 3a: a failure. Returns the number of failures in the window. */
static int record_failure(struct rs_ctx *ctx, struct attempt *a, const struct rs_login_in *in,
                          int *ret_failures, struct rs_error *err)
{
    const struct rs_store_ops *ops = ctx->store->ops;
    struct rs_tx tx;
    int64_t now = rs_ctx_now(ctx), count = 0, start = 0;
    int r = rs_tx_begin(ctx, &tx, err);
    if (r < 0)
        return r;
    _cleanup_free_ char *key = ip_key(ctx->client_ip);
    if (!a->need_totp)
        r = ops->rate_hit(tx.conn, key, now, (int64_t)a->s.throttle.ip_window_seconds * 1000, 1,
                          &count, &start, err);
    *ret_failures = 0;
    if (r == 0 && a->found && a->count_failure) {
        struct rs_credential cr;
        r = ops->cred_get_for_update(tx.conn, a->u.id, &cr, err);
        if (r == -RS_ENOTFOUND) {
            rs_error_init(err);
            rs_credential_init(&cr, a->u.id);
            r = 0;
        }
        if (r == 0) {
            if (cr.failed_count == 0 ||
                cr.failed_first_at + minutes(a->s.lockout.window_minutes) <= now) {
                cr.failed_count = 0;
                cr.failed_first_at = now;
            }
            cr.failed_count++;
            *ret_failures = cr.failed_count;
            r = ops->cred_put(tx.conn, &cr, err);
            rs_credential_release(&cr);
        }
    }
    if (r == 0)
        r = audit_failure(&tx, a, in, err);
    if (r < 0) {
        rs_tx_abort(&tx);
        return r;
    }
    return rs_tx_commit(&tx, err);
}

/* Whether an account refusal of the lockout is the last-administrator rule
 * (and not another conflict, such as an account locked meanwhile). */
static bool last_admin_refusal(const struct rs_error *e)
{
    for (int i = 0; i < e->nfields; i++)
        if (strcmp(e->fields[i].rule, "last_admin") == 0)
            return true;
    return false;
}

/* Inside tx: whether the lockout still applies, decided on the stored user
 * and credential (locked until tx ends), not on what the attempt read: a
 * parallel failure may have locked or paused the account meanwhile, and
 * locking it again would move its deadline and mail the user once more. */
static int lock_still_due(struct rs_ctx *ctx, struct rs_tx *tx, int64_t user_id, bool *ret,
                          struct rs_error *err)
{
    const struct rs_store_ops *ops = ctx->store->ops;
    struct rs_user u;
    struct rs_credential cr;
    int r = ops->user_get_for_update(tx->conn, user_id, &u, err);
    if (r < 0)
        return r;
    bool active = u.status == RS_STATUS_ACTIVE;
    rs_user_release(&u);
    r = ops->cred_get_for_update(tx->conn, user_id, &cr, err);
    if (r == -RS_ENOTFOUND) {
        rs_error_init(err);
        rs_credential_init(&cr, user_id);
    } else if (r < 0) {
        return r;
    }
    *ret = active && !(cr.locked_until > rs_ctx_now(ctx));
    rs_credential_release(&cr);
    return 0;
}

/* Step 3a': the lockout, in its own transaction so that a refusal (the last
 * administrator) leaves the recorded failure in place. */
static void maybe_lock(struct rs_ctx *ctx, struct attempt *a, int failures)
{
    if (!a->s.lockout.enabled || failures < a->s.lockout.max_failures ||
        a->u.status != RS_STATUS_ACTIVE || a->cr.locked_until > rs_ctx_now(ctx))
        return;
    const struct rs_store_ops *ops = ctx->store->ops;
    struct rs_error e;
    rs_error_init(&e);
    struct rs_tx tx;
    bool due = false;
    if (rs_tx_begin(ctx, &tx, &e) < 0)
        goto fail;
    int64_t now = rs_ctx_now(ctx);
    int64_t until = a->s.lockout.duration_minutes > 0 ? now + minutes(a->s.lockout.duration_minutes)
                                                      : -1;
    struct rs_user after;
    struct rs_credential cr;
    bool paused = false;
    int r = lock_still_due(ctx, &tx, a->u.id, &due, &e);
    if (r < 0)
        goto abort;
    if (!due) {
        rs_tx_abort(&tx);
        return;
    }
    r = rs_user_act_tx(ctx, &tx, a->u.id, RS_ACTION_LOCK, "too_many_failed_sign_ins", NULL, -1,
                       &after, &e);
    if (r == -RS_ECONFLICT && last_admin_refusal(&e)) {
        /* The last active administrator keeps their status (someone must be
         * able to administer), but their sign-in pauses for a while, so
         * guessing gains nothing. */
        rs_tx_abort(&tx);
        rs_error_init(&e);
        if (rs_tx_begin(ctx, &tx, &e) < 0)
            goto fail;
        r = lock_still_due(ctx, &tx, a->u.id, &due, &e);
        if (r < 0)
            goto abort;
        if (!due) {
            rs_tx_abort(&tx);
            return;
        }
        int m = a->s.lockout.duration_minutes > 15 ? a->s.lockout.duration_minutes : 15;
        until = now + minutes(m);
        rs_user_copy(&after, &a->u);
        paused = true;
        r = 0;
    }
    if (r < 0)
        goto abort;
    r = ops->cred_get_for_update(tx.conn, a->u.id, &cr, &e);
    if (r == 0) {
        cr.locked_until = until;
        r = ops->cred_put(tx.conn, &cr, &e);
        rs_credential_release(&cr);
    }
    char aj[160];
    snprintf(aj, sizeof(aj), "{\"failed_attempts\":%d,\"locked_until\":%lld}", failures,
             (long long)until);
    if (r == 0)
        r = rs_tx_audit(&tx, "auth.locked", "user", a->u.id, NULL, aj,
                        paused ? "too_many_failed_sign_ins_last_admin_paused"
                               : "too_many_failed_sign_ins",
                        &e);
    if (r == 0 && a->s.lockout.notify_user) {
        char when[RS_TIME_STR_MAX + 32], fails[16];
        if (until > 0)
            rs_time_format(until, when);
        else
            rs_strlcpy(when, "an administrator unlocks it", sizeof(when));
        snprintf(fails, sizeof(fails), "%d", failures);
        const char *extra[] = {"locked_until", when, "failed_attempts", fails, NULL};
        r = rs_outbox_queue(&tx, RS_MAIL_ACCOUNT_LOCKED, &after, extra, &e);
    }
    rs_user_release(&after);
    if (r < 0)
        goto abort;
    if (rs_tx_commit(&tx, &e) < 0)
        goto fail;
    return;
abort:
    rs_tx_abort(&tx);
fail:
    rs_log(RS_LOG_WARN, "lockout not applied", "request_id", ctx->request_id, "detail",
           e.log_detail[0] ? e.log_detail : e.message, NULL);
}

/* Step 3b: success. */
static int record_success(struct rs_ctx *ctx, struct attempt *a, const struct rs_login_in *in,
                          struct rs_login_out *ret, struct rs_error *err)
{
    const struct rs_store_ops *ops = ctx->store->ops;
    int64_t now = rs_ctx_now(ctx);
    struct rs_tx tx;
    struct rs_credential cr;
    /* From here on the user acts: the audit trail names them. */
    ctx->actor.user_id = a->u.id;
    rs_strlcpy(ctx->actor.username, a->u.username, sizeof(ctx->actor.username));
    ctx->actor.type = a->u.type;
    struct rs_user cur;
    int r = rs_tx_begin(ctx, &tx, err);
    if (r < 0)
        return r;
    r = ops->user_get_for_update(tx.conn, a->u.id, &cur, err);
    if (r < 0)
        goto abort;
    r = ops->cred_get_for_update(tx.conn, a->u.id, &cr, err);
    if (r < 0) {
        rs_user_release(&cur);
        goto abort;
    }
    /* The account was locked (or deactivated) since the check, by parallel
     * failures perhaps: refuse without touching its counters, as any
     * sign-in to such an account. */
    const char *why = status_refusal(&cur, &cr, now);
    if (why) {
        rs_user_release(&cur);
        rs_credential_release(&cr);
        rs_tx_abort(&tx);
        a->reason = why;
        a->count_failure = false;
        return 1; /* a failure after all */
    }
    a->auto_unlock = cur.status == RS_STATUS_LOCKED;
    rs_user_release(&a->u);
    a->u = cur;
    /* The password or 2FA changed between the check and now: refuse. */
    if (strcmp(cr.password_hash, a->cr.password_hash) != 0 ||
        strcmp(cr.totp_secret, a->cr.totp_secret) != 0 ||
        (a->totp_step && a->totp_step <= cr.totp_last_step)) {
        rs_credential_release(&cr);
        rs_tx_abort(&tx);
        rs_error_log(err, "credentials changed during sign-in (or the code was just used)");
        return rs_error_set(err, RS_EUNAUTHENTICATED, FAILED);
    }
    if (a->recovery_hash[0]) {
        bool used = false;
        r = ops->recovery_use(tx.conn, a->u.id, a->recovery_hash, now, &used, err);
        if (r == 0 && !used) {
            rs_credential_release(&cr);
            rs_tx_abort(&tx);
            a->reason = "bad_recovery_code";
            a->count_failure = true;
            return 1; /* a failure after all */
        }
    }
    if (a->auto_unlock) {
        struct rs_user after;
        r = rs_user_act_tx(ctx, &tx, a->u.id, RS_ACTION_UNLOCK, "lockout_expired", NULL, -1,
                           &after, err);
        if (r == 0)
            rs_user_release(&after);
        /* rs_user_act_tx cleared the counters in the stored row. */
        if (r == 0) {
            rs_credential_release(&cr);
            r = ops->cred_get_for_update(tx.conn, a->u.id, &cr, err);
        }
        if (r < 0)
            goto abort;
    }
    cr.failed_count = 0;
    cr.failed_first_at = 0;
    cr.locked_until = 0;
    if (a->totp_step)
        cr.totp_last_step = a->totp_step;
    if (a->rehash) {
        free(cr.password_hash);
        cr.password_hash = RS_TAKE_PTR(a->rehash);
    }
    unsigned flags = 0;
    if (cr.must_change || rs_password_expired(&a->s, &cr, now))
        flags |= RS_SESSION_MUST_CHANGE;
    if (!cr.totp_secret[0] && a->must_enroll)
        flags |= RS_SESSION_MUST_ENROLL;
    r = ops->cred_put(tx.conn, &cr, err);
    rs_credential_release(&cr);
    if (r == 0)
        r = rs_session_create(ctx, &tx, &a->s, &a->u, flags, in->user_agent, 0, NULL,
                              a->cr.privilege_epoch, &ret->session, ret->token, ret->csrf, err);
    if (r == 0)
        r = ops->user_set_last_login(tx.conn, a->u.id, now, err);
    if (r == 0) {
        json_t *o = json_pack("{s:I,s:s,s:s}", "session_id", (json_int_t)ret->session.id, "ip",
                              ctx->client_ip, "method",
                              a->totp_step ? "password+totp"
                              : a->recovery_hash[0] ? "password+recovery_code"
                                                    : "password");
        char *aj = rs_json_text(o);
        r = rs_tx_audit(&tx, "auth.login", "user", a->u.id, NULL, aj, NULL, err);
        free(aj);
    }
    if (r < 0) {
        rs_session_release(&ret->session);
        goto abort;
    }
    r = rs_tx_commit(&tx, err);
    if (r < 0) {
        rs_session_release(&ret->session);
        return r;
    }
    a->u.last_login_at = now;
    ret->user = a->u;
    rs_user_init(&a->u);
    return 0;
abort:
    rs_tx_abort(&tx);
    return r;
}

int rs_svc_signin_prepare(struct rs_ctx *ctx, int *ret_memory_kib, int *ret_iterations,
                          struct rs_error *err)
{
    struct rs_auth_settings s;
    int r = rs_auth_settings_read(ctx, &s, err);
    if (r < 0)
        return r;
    int mem = s.hash_memory_kib, it = s.hash_iterations;
    rs_auth_settings_release(&s);
    r = rs_pw_dummy_prepare(mem, it, err);
    if (r < 0)
        return r;
    *ret_memory_kib = mem;
    *ret_iterations = it;
    return 0;
}

int rs_svc_login(struct rs_ctx *ctx, const struct rs_login_in *in, struct rs_login_out *ret,
                 int *ret_retry_after, struct rs_error *err)
{
    struct attempt a;
    memset(&a, 0, sizeof(a));
    rs_user_init(&a.u);
    memset(ret, 0, sizeof(*ret));
    rs_user_init(&ret->user);
    *ret_retry_after = 0;
    int r = attempt_load(ctx, in, &a, ret_retry_after, err);
    if (r == -RS_ETHROTTLED && strcmp(a.reason, "throttled_again") == 0) {
        /* Refused again in the same window: logged, not audited, so a flood
         * cannot fill the audit trail. */
        goto out;
    }
    if (r == -RS_ETHROTTLED) {
        /* Audited once per address and window; no hash is spent. */
        struct rs_tx tx;
        struct rs_error e2;
        rs_error_init(&e2);
        if (rs_tx_begin(ctx, &tx, &e2) == 0) {
            if (audit_failure(&tx, &a, in, &e2) < 0)
                rs_tx_abort(&tx);
            else if (rs_tx_commit(&tx, &e2) < 0)
                rs_log(RS_LOG_WARN, "could not audit a throttled sign-in", "request_id",
                       ctx->request_id, NULL);
        }
        goto out;
    }
    if (r < 0)
        goto out;
    attempt_judge(ctx, in, &a);
    if (!a.reason) {
        r = record_success(ctx, &a, in, ret, err);
        if (r <= 0)
            goto out;
    }
    /* A failure: record it, maybe lock, answer the one generic message. */
    int failures = 0;
    rs_error_init(err);
    r = record_failure(ctx, &a, in, &failures, err);
    if (r < 0)
        goto out;
    if (a.found && failures)
        maybe_lock(ctx, &a, failures);
    rs_error_log(err, "sign-in refused: %s", a.reason);
    if (a.need_totp)
        r = rs_error_field(err, RS_EUNAUTHENTICATED, "totp", "required",
                           "enter the code from your authenticator app (or a recovery code)");
    else
        r = rs_error_set(err, RS_EUNAUTHENTICATED, FAILED);
out:
    attempt_release(&a);
    return r;
}

/* --- authenticating requests by cookie --- */

static int refuse(struct rs_error *err, const char *why)
{
    rs_error_log(err, "%s", why);
    return rs_error_set(err, RS_EUNAUTHENTICATED, "sign in again: your session has ended");
}

/* Inside tx: replaces session se (its user's privileges changed since it
 * was made) by a new one: new id and token, same expiry, device and CSRF
 * seed, flags decided again under the current policy at the user's current
 * epoch. A request still carrying the old token maps to the new session
 * for RS_SESSION_GRACE_MS. -RS_ENOTFOUND (bare) when se is gone: a parallel
 * request rotated (or something ended) it first. */
static int privilege_rotate(struct rs_ctx *ctx, const struct rs_session *se, const char *token,
                            const struct rs_user *u, struct rs_error *err)
{
    const struct rs_store_ops *ops = ctx->store->ops;
    struct rs_auth_settings s;
    struct rs_credential cr;
    /* Decide the flags first, on a read connection (the writer must not wait
     * on a reader): the epoch is read before what it stands for, so a change
     * committed meanwhile leaves the new session stale and rotates it again. */
    struct rs_conn *c = rs_ctx_read_conn(ctx, err);
    if (!c)
        return -RS_EUNAVAILABLE;
    int r = rs_auth_settings_load(ctx, c, &s, err);
    if (r < 0)
        return r;
    r = ops->cred_get(c, u->id, &cr, err);
    if (r == -RS_ENOTFOUND) {
        rs_error_init(err);
        rs_credential_init(&cr, u->id);
        r = 0;
    }
    if (r < 0) {
        rs_auth_settings_release(&s);
        return r;
    }
    int64_t now = rs_ctx_now(ctx), epoch = cr.privilege_epoch;
    unsigned flags = 0;
    if (cr.must_change || rs_password_expired(&s, &cr, now))
        flags |= RS_SESSION_MUST_CHANGE;
    if (!cr.totp_secret[0] && rs_totp_required(ctx, c, &s, u))
        flags |= RS_SESSION_MUST_ENROLL;
    rs_credential_release(&cr);
    rs_ctx_release(ctx);

    /* A seed from before migration 0007 is the token itself: keep its CSRF
     * token instead, so pages holding it go on working. */
    char seed[RS_CSRF_SEED_MAX];
    if (se->csrf_seed[0]) {
        rs_strlcpy(seed, se->csrf_seed, sizeof(seed));
    } else {
        seed[0] = '=';
        rs_session_csrf("", token, seed + 1);
    }
    struct rs_tx tx;
    struct rs_session fresh;
    char tok[48], csrf[RS_HASH_HEX];
    bool made = false;
    r = rs_tx_begin(ctx, &tx, err);
    if (r < 0)
        goto out;
    /* Locks the old row (PostgreSQL) and tells whether it is still there. */
    r = ops->session_set_flags(tx.conn, se->id, se->flags, err);
    if (r == 0) {
        struct rs_auth_settings s2 = s;
        s2.sessions.max_per_user = 0; /* a replacement, not one more */
        r = rs_session_create(ctx, &tx, &s2, u, flags, se->user_agent, se->expires_at, seed,
                              epoch, &fresh, tok, csrf, err);
        made = r == 0;
    }
    if (r == 0)
        r = ops->session_successor_put(tx.conn, se->token_hash, se->id, fresh.id,
                                       now + RS_SESSION_GRACE_MS, err);
    if (r == 0)
        r = ops->session_delete(tx.conn, se->id, err);
    if (r == 0) {
        char aj[128];
        snprintf(aj, sizeof(aj), "{\"old_session_id\":%lld,\"session_id\":%lld}",
                 (long long)se->id, (long long)fresh.id);
        r = rs_tx_audit(&tx, "auth.session_rotated", "user", u->id, NULL, aj, "privilege_change",
                        err);
    }
    if (r < 0) {
        rs_tx_abort(&tx);
        goto out;
    }
    r = rs_tx_commit(&tx, err);
    if (r < 0)
        goto out;
    ctx->session_id = fresh.id;
    ctx->session_flags = flags;
    ctx->session_epoch = epoch;
    rs_strlcpy(ctx->session_csrf, csrf, sizeof(ctx->session_csrf));
    rs_strlcpy(ctx->session_token_new, tok, sizeof(ctx->session_token_new));
out:
    if (made)
        rs_session_release(&fresh);
    sodium_memzero(tok, sizeof(tok));
    sodium_memzero(seed, sizeof(seed));
    rs_auth_settings_release(&s);
    return r;
}

/* The session a token stands for: its own, or within the grace after a
 * rotation the one that replaced it (*ret_mapped). */
static int session_of_token(struct rs_ctx *ctx, struct rs_conn *c, const char *hash,
                            struct rs_session *ret, bool *ret_mapped, struct rs_error *err)
{
    const struct rs_store_ops *ops = ctx->store->ops;
    *ret_mapped = false;
    int r = ops->session_find(c, hash, ret, err);
    if (r != -RS_ENOTFOUND)
        return r;
    int64_t id = 0;
    r = ops->session_successor_find(c, hash, rs_ctx_now(ctx), &id, err);
    if (r == 0) {
        r = ops->session_get(c, id, ret, err);
        *ret_mapped = r == 0;
    }
    return r;
}

int rs_svc_authenticate_session(struct rs_ctx *ctx, const char *token, const char *csrf,
                                bool state_changing, bool *ret_touch, struct rs_error *err)
{
    size_t len = token ? strlen(token) : 0;
    if (len != RS_TOKEN_CHARS - 1)
        return refuse(err, "malformed session token");
    char hash[RS_HASH_HEX];
    rs_token_hash(token, len, hash);
    const struct rs_store_ops *ops = ctx->store->ops;
    ctx->session_token_new[0] = '\0';
    /* A second pass when a parallel request rotated the session first. */
    for (int pass = 0;; pass++) {
        struct rs_conn *c = rs_ctx_read_conn(ctx, err);
        if (!c)
            return -RS_EUNAVAILABLE;
        struct rs_session se;
        bool mapped = false;
        int r = session_of_token(ctx, c, hash, &se, &mapped, err);
        if (r == -RS_ENOTFOUND) {
            rs_error_init(err);
            return refuse(err, "unknown session");
        }
        if (r < 0)
            return r;
        int64_t now = rs_ctx_now(ctx);
        int idle = rs_session_idle_minutes(ctx, c);
        struct rs_user u;
        if (se.expires_at <= now || se.last_seen_at + minutes(idle) <= now) {
            rs_session_release(&se);
            return refuse(err, "session expired");
        }
        r = ops->user_get(c, se.user_id, &u, err);
        if (r < 0) {
            rs_session_release(&se);
            if (r == -RS_ENOTFOUND) {
                rs_error_init(err);
                return refuse(err, "session of a missing user");
            }
            return r;
        }
        if (u.status != RS_STATUS_ACTIVE || u.type == RS_USER_API) {
            rs_session_release(&se);
            rs_user_release(&u);
            return refuse(err, "session user is not active");
        }
        /* Address ranges hold for the whole session, not only at sign-in. */
        if (ctx->client_ip[0]) {
            bool allowed = true;
            r = rs_svc_ip_allowed(ctx, u.id, ctx->client_ip, &allowed, err);
            if (r < 0 || !allowed) {
                rs_session_release(&se);
                rs_user_release(&u);
                return r < 0 ? r : refuse(err, "client address outside the allowed ranges");
            }
        }
        char want[RS_HASH_HEX];
        rs_session_csrf(se.csrf_seed, token, want);
        if (state_changing && (!csrf || strlen(csrf) != RS_HASH_HEX - 1 ||
                               sodium_memcmp(want, csrf, RS_HASH_HEX - 1) != 0)) {
            rs_session_release(&se);
            rs_user_release(&u);
            rs_error_log(err, "missing or wrong CSRF token");
            return rs_error_field(err, RS_EFORBIDDEN, "X-CSRF-Token", "csrf",
                                  "this request needs the X-CSRF-Token header of your session");
        }
        ctx->actor.user_id = u.id;
        rs_strlcpy(ctx->actor.username, u.username, sizeof(ctx->actor.username));
        ctx->actor.type = u.type;
        ctx->actor.apikey_id = 0;
        ctx->session_id = se.id;
        ctx->session_flags = se.flags;
        ctx->session_epoch = se.privilege_epoch;
        rs_strlcpy(ctx->session_csrf, want, sizeof(ctx->session_csrf));
        *ret_touch = !mapped && now - se.last_seen_at >= TOUCH_INTERVAL_MS;
        if (se.privilege_epoch == se.user_epoch) {
            rs_session_release(&se);
            rs_user_release(&u);
            return 0;
        }
        /* The user's privileges changed since the session was made: a new
         * session id, and the sign-in policy (2FA) applied again. */
        if (ctx->on_loop) {
            rs_session_release(&se);
            rs_user_release(&u);
            ctx->actor.user_id = 0;
            ctx->session_id = 0;
            ctx->retry_on_pool = true;
            rs_error_log(err, "session to rotate: retried on the pool");
            return rs_error_set(err, RS_EUNAVAILABLE, "try again");
        }
        *ret_touch = false;
        r = privilege_rotate(ctx, &se, token, &u, err);
        rs_session_release(&se);
        rs_user_release(&u);
        if (r == -RS_ENOTFOUND && pass == 0) {
            rs_error_init(err);
            continue;
        }
        if (r == -RS_ENOTFOUND) {
            rs_error_init(err);
            return refuse(err, "session ended while it was rotated");
        }
        return r;
    }
}

int rs_svc_session_touch(struct rs_ctx *ctx, struct rs_error *err)
{
    if (!ctx->session_id)
        return 0;
    struct rs_conn *c = ctx->store->ops->acquire(ctx->store, RS_CONN_WRITE, err);
    if (!c)
        return -RS_EUNAVAILABLE;
    int r = ctx->store->ops->session_touch(c, ctx->session_id, rs_ctx_now(ctx), err);
    ctx->store->ops->release(c);
    return r;
}

int rs_svc_logout(struct rs_ctx *ctx, struct rs_error *err)
{
    if (!ctx->session_id)
        return 0;
    struct rs_tx tx;
    int r = rs_tx_begin(ctx, &tx, err);
    if (r < 0)
        return r;
    r = ctx->store->ops->session_delete(tx.conn, ctx->session_id, err);
    if (r == -RS_ENOTFOUND) {
        rs_error_init(err);
        r = 0;
    }
    if (r == 0) {
        char aj[64];
        snprintf(aj, sizeof(aj), "{\"session_id\":%lld}", (long long)ctx->session_id);
        r = rs_tx_audit(&tx, "auth.logout", "user", ctx->actor.user_id, NULL, aj, NULL, err);
    }
    if (r < 0) {
        rs_tx_abort(&tx);
        return r;
    }
    return rs_tx_commit(&tx, err);
}

/* --- listing and ending sessions --- */

static int session_scope(struct rs_ctx *ctx, int64_t *user_id, enum rs_level need,
                         struct rs_error *err)
{
    if (*user_id == 0) {
        if (!ctx->actor.user_id)
            return rs_error_set(err, RS_EUNAUTHENTICATED, "sign in first");
        *user_id = ctx->actor.user_id;
        return 0;
    }
    return rs_svc_require(ctx, RS_RES_USERS, need, err);
}

int rs_svc_sessions_list(struct rs_ctx *ctx, int64_t user_id, struct rs_session **ret,
                         size_t *ret_n, struct rs_error *err)
{
    int r = session_scope(ctx, &user_id, RS_LEVEL_WRITE, err);
    if (r < 0)
        return r;
    struct rs_conn *c = rs_ctx_read_conn(ctx, err);
    if (!c)
        return -RS_EUNAVAILABLE;
    struct rs_user u;
    r = ctx->store->ops->user_get(c, user_id, &u, err);
    if (r == -RS_ENOTFOUND)
        return rs_error_set(err, RS_ENOTFOUND, "no user with id %lld", (long long)user_id);
    if (r < 0)
        return r;
    rs_user_release(&u);
    struct rs_auth_settings s;
    r = rs_auth_settings_load(ctx, c, &s, err);
    if (r < 0)
        return r;
    struct rs_session *list = NULL;
    size_t n = 0, k = 0;
    r = ctx->store->ops->session_list_user(c, user_id, &list, &n, err);
    if (r == 0) {
        /* Only live sessions: expired ones wait for the purge job. */
        int64_t now = rs_ctx_now(ctx), idle = minutes(s.sessions.idle_timeout_minutes);
        for (size_t i = 0; i < n; i++) {
            if (list[i].expires_at > now && list[i].last_seen_at + idle > now)
                list[k++] = list[i];
            else
                rs_session_release(&list[i]);
        }
        *ret = list;
        *ret_n = k;
    }
    rs_auth_settings_release(&s);
    return r;
}

int rs_svc_session_end(struct rs_ctx *ctx, int64_t user_id, int64_t session_id,
                       struct rs_error *err)
{
    int r = session_scope(ctx, &user_id, RS_LEVEL_WRITE, err);
    if (r < 0)
        return r;
    struct rs_tx tx;
    struct rs_session se;
    r = rs_tx_begin(ctx, &tx, err);
    if (r < 0)
        return r;
    if (user_id != ctx->actor.user_id) {
        struct rs_user u;
        r = ctx->store->ops->user_get(tx.conn, user_id, &u, err);
        if (r == 0) {
            r = rs_svc_check_outranks(ctx, tx.conn, &u, "end the sessions of", err);
            rs_user_release(&u);
        }
        if (r < 0 && r != -RS_ENOTFOUND) {
            rs_tx_abort(&tx);
            return r;
        }
        rs_error_init(err);
        r = 0;
    }
    r = ctx->store->ops->session_get(tx.conn, session_id, &se, err);
    if (r == 0 && se.user_id != user_id) {
        rs_session_release(&se);
        r = -RS_ENOTFOUND;
    }
    if (r == -RS_ENOTFOUND) {
        rs_error_init(err);
        r = rs_error_set(err, RS_ENOTFOUND, "no session %lld of this user", (long long)session_id);
    }
    if (r == 0) {
        rs_session_release(&se);
        r = ctx->store->ops->session_delete(tx.conn, session_id, err);
    }
    if (r == 0) {
        char aj[64];
        snprintf(aj, sizeof(aj), "{\"session_id\":%lld}", (long long)session_id);
        r = rs_tx_audit(&tx, "auth.session_ended", "user", user_id, NULL, aj,
                        user_id == ctx->actor.user_id ? "ended_by_user" : "ended_by_admin",
                        err);
    }
    if (r < 0) {
        rs_tx_abort(&tx);
        return r;
    }
    return rs_tx_commit(&tx, err);
}

int rs_svc_sessions_end_all(struct rs_ctx *ctx, int64_t user_id, int *ret_n,
                            struct rs_error *err)
{
    int r = rs_svc_require(ctx, RS_RES_USERS, RS_LEVEL_WRITE, err);
    if (r < 0)
        return r;
    struct rs_tx tx;
    struct rs_user u;
    r = rs_tx_begin(ctx, &tx, err);
    if (r < 0)
        return r;
    r = ctx->store->ops->user_get(tx.conn, user_id, &u, err);
    if (r == -RS_ENOTFOUND) {
        rs_error_init(err);
        r = rs_error_set(err, RS_ENOTFOUND, "no user with id %lld", (long long)user_id);
    }
    if (r == 0) {
        r = rs_svc_check_outranks(ctx, tx.conn, &u, "end the sessions of", err);
        rs_user_release(&u);
    }
    if (r == 0)
        r = rs_sessions_end_user(ctx, &tx, user_id, 0, "ended_by_admin", ret_n, err);
    if (r < 0) {
        rs_tx_abort(&tx);
        return r;
    }
    return rs_tx_commit(&tx, err);
}

int rs_sessions_end_user(struct rs_ctx *ctx, struct rs_tx *tx, int64_t user_id,
                         int64_t except_id, const char *why, int *ret_n, struct rs_error *err)
{
    int n = 0;
    int r = ctx->store->ops->session_delete_user(tx->conn, user_id, except_id, &n, err);
    if (r == 0 && n > 0) {
        char aj[64];
        snprintf(aj, sizeof(aj), "{\"sessions_ended\":%d}", n);
        r = rs_tx_audit(tx, "auth.session_ended", "user", user_id, NULL, aj, why, err);
    }
    if (r == 0 && ret_n)
        *ret_n = n;
    return r;
}

/* --- re-authentication (change-password, 2FA changes) --- */

int rs_auth_budget_check(struct rs_ctx *ctx, struct rs_error *err)
{
    struct rs_conn *c = rs_ctx_read_conn(ctx, err);
    if (!c)
        return -RS_EUNAVAILABLE;
    struct rs_auth_settings s;
    int r = rs_auth_settings_load(ctx, c, &s, err);
    if (r < 0)
        return r;
    int64_t now = rs_ctx_now(ctx), count = 0, start = 0;
    _cleanup_free_ char *key = ip_key(ctx->client_ip);
    r = ctx->store->ops->rate_hit(c, key, now, (int64_t)s.throttle.ip_window_seconds * 1000, 0,
                                  &count, &start, err);
    if (r == 0 && count >= s.throttle.ip_max_failures)
        r = rs_error_set(err, RS_ETHROTTLED,
                         "too many failed attempts from your address; try again later");
    rs_auth_settings_release(&s);
    rs_ctx_release(ctx);
    return r;
}

void rs_reauth_failed(struct rs_ctx *ctx, const struct rs_user *u, const char *reason)
{
    struct attempt a;
    struct rs_error e;
    memset(&a, 0, sizeof(a));
    rs_user_init(&a.u);
    rs_error_init(&e);
    struct rs_conn *c = rs_ctx_read_conn(ctx, &e);
    if (!c || rs_auth_settings_load(ctx, c, &a.s, &e) < 0) {
        rs_ctx_release(ctx);
        rs_auth_settings_defaults(&a.s);
    }
    if (!c || ctx->store->ops->cred_get(c, u->id, &a.cr, &e) < 0)
        rs_credential_init(&a.cr, u->id);
    rs_ctx_release(ctx);
    rs_user_copy(&a.u, u);
    a.found = true;
    a.count_failure = true;
    a.reason = reason;
    struct rs_login_in in = {.username = u->username};
    int failures = 0;
    rs_error_init(&e);
    if (record_failure(ctx, &a, &in, &failures, &e) == 0 && failures)
        maybe_lock(ctx, &a, failures);
    else if (e.code != RS_OK)
        rs_log(RS_LOG_WARN, "could not record a failed re-authentication", "request_id",
               ctx->request_id, "detail", e.log_detail[0] ? e.log_detail : e.message, NULL);
    attempt_release(&a);
}
