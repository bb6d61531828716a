/* credentials.c: passwords (policy, change, reset, invite and activation),
 * the second factor, per-user address ranges and the "User cannot log in"
 * diagnosis. Hashing always happens outside the write transaction; the
 * transaction re-reads the credential and refuses if it moved meanwhile. */
#include <stdio.h>

#include "../core/ipnet.h"
#include "../core/password.h"
#include "../core/totp.h"
#include "../ext/pwdict.h"
#include "crypto.h"
#include "notify.h"
#include "session_internal.h"
#include "../util/log.h"

#include <pthread.h>
#include <sodium.h>

#define RECOVERY_CODES 10
#define TEMP_PASSWORD_CHARS 20

static int64_t minutes(int m)
{
    return (int64_t)m * 60000;
}

static int not_found(struct rs_error *err, int64_t id)
{
    return rs_error_set(err, RS_ENOTFOUND, "no user with id %lld", (long long)id);
}

/* A user's credential, or the empty one when none is stored. */
static int cred_load(struct rs_ctx *ctx, struct rs_conn *c, int64_t user_id, bool for_update,
                     struct rs_credential *ret, struct rs_error *err)
{
    const struct rs_store_ops *ops = ctx->store->ops;
    int r = for_update ? ops->cred_get_for_update(c, user_id, ret, err)
                       : ops->cred_get(c, user_id, ret, err);
    if (r == -RS_ENOTFOUND) {
        rs_error_init(err);
        rs_credential_init(ret, user_id);
        return 0;
    }
    return r;
}

/* --- the idle timeout, cached --- */

static pthread_mutex_t idle_lock = PTHREAD_MUTEX_INITIALIZER;
static int64_t idle_stamp[2] = {-1, -1};
static int idle_cached = 30;

int rs_session_idle_minutes(struct rs_ctx *ctx, struct rs_conn *c)
{
    int64_t stamp[2];
    rs_access_stamp(stamp);
    pthread_mutex_lock(&idle_lock);
    if (stamp[0] == idle_stamp[0] && stamp[1] == idle_stamp[1]) {
        int v = idle_cached;
        pthread_mutex_unlock(&idle_lock);
        return v;
    }
    pthread_mutex_unlock(&idle_lock);
    struct rs_auth_settings s;
    struct rs_error e;
    rs_error_init(&e);
    if (rs_auth_settings_load(ctx, c, &s, &e) < 0)
        return idle_cached;
    int v = s.sessions.idle_timeout_minutes;
    rs_auth_settings_release(&s);
    pthread_mutex_lock(&idle_lock);
    idle_cached = v;
    idle_stamp[0] = stamp[0];
    idle_stamp[1] = stamp[1];
    pthread_mutex_unlock(&idle_lock);
    return v;
}

/* --- passwords --- */

/* Normalises, checks (policy, dictionary, history) and hashes a new password
 * for u. Reads history on a read connection; never inside a transaction. */
static int password_prepare(struct rs_ctx *ctx, const struct rs_auth_settings *s,
                            const struct rs_user *u, const char *field, const char *pw,
                            char **ret_hash, struct rs_error *err)
{
    if (!pw)
        return rs_error_field(err, RS_EVALIDATION, field, "required", "%s is required", field);
    _cleanup_free_ char *norm = NULL;
    int r = rs_password_normalize(pw, field, &norm, err);
    if (r < 0)
        return r;
    r = rs_password_check(&s->password, field, norm, u, err);
    if (r == 0 && s->password.blocklist && rs_pwdict_common(norm))
        r = rs_error_field(err, RS_EVALIDATION, field, "blocklist",
                           "is too common: it appears in lists of common or breached "
                           "passwords; choose a longer, less predictable one");
    if (r == 0 && s->password.history > 0 && u && u->id) {
        struct rs_conn *c = rs_ctx_read_conn(ctx, err);
        char **hashes = NULL;
        size_t n = 0;
        r = c ? ctx->store->ops->pwhist_list(c, u->id, s->password.history, &hashes, &n, err)
              : -RS_EUNAVAILABLE;
        rs_ctx_release(ctx);
        bool reused = false;
        for (size_t i = 0; i < n; i++) {
            if (!reused && rs_pw_verify(hashes[i], norm))
                reused = true;
            free(hashes[i]);
        }
        free(hashes);
        if (r == 0 && reused)
            r = rs_error_field(err, RS_EVALIDATION, field, "history",
                               "must differ from your last %d passwords", s->password.history);
    }
    if (r == 0)
        r = rs_pw_hash(norm, s->hash_memory_kib, s->hash_iterations, ret_hash, err);
    sodium_memzero(norm, strlen(norm));
    return r;
}

/* Verifies pw against the stored hash (or spends the time of one). */
static bool password_matches(const struct rs_credential *cr, const char *pw,
                             const struct rs_auth_settings *s)
{
    if (!pw)
        return false;
    _cleanup_free_ char *norm = NULL;
    struct rs_error e;
    rs_error_init(&e);
    if (rs_password_normalize(pw, "password", &norm, &e) < 0)
        return false;
    bool ok;
    if (cr->password_hash[0]) {
        ok = rs_pw_verify(cr->password_hash, norm);
    } else {
        rs_pw_dummy_verify(norm, s->hash_memory_kib, s->hash_iterations);
        ok = false;
    }
    sodium_memzero(norm, strlen(norm));
    return ok;
}

/* Inside tx: stores a new password hash for the user (cr already loaded for
 * update), keeps the history, voids outstanding tokens. */
static int password_store(struct rs_ctx *ctx, struct rs_tx *tx, const struct rs_auth_settings *s,
                          struct rs_credential *cr, const char *hash, bool must_change,
                          struct rs_error *err)
{
    const struct rs_store_ops *ops = ctx->store->ops;
    int64_t now = rs_ctx_now(ctx);
    free(cr->password_hash);
    cr->password_hash = rs_xstrdup(hash);
    cr->password_changed_at = now;
    cr->must_change = must_change;
    cr->expiry_notice_at = 0;
    cr->failed_count = 0;
    cr->failed_first_at = 0;
    int r = ops->cred_put(tx->conn, cr, err);
    if (r == 0)
        r = ops->pwhist_add(tx->conn, cr->user_id, hash, now, s->password.history, err);
    if (r == 0)
        r = ops->token_void_user(tx->conn, cr->user_id, NULL, now, err);
    return r;
}

/* --- tokens (reset, invite) --- */

static const char *base_url(void)
{
    const char *b = rs_outbox_base_url();
    return b && *b ? b : "http://127.0.0.1:8080";
}

/* Issues a token of kind for u, valid for valid_ms; *ret_link is the link
 * the mail carries, built from the configured base URL only. */
static int token_issue(struct rs_ctx *ctx, struct rs_tx *tx, const char *kind,
                       const struct rs_user *u, int64_t pw_changed_at, int64_t valid_ms,
                       const char *path, char **ret_link, struct rs_error *err)
{
    char tok[RS_TOKEN_CHARS];
    rs_token_new(tok);
    struct rs_auth_token t = {0};
    rs_token_hash(tok, strlen(tok), t.token_hash);
    rs_strlcpy(t.kind, kind, sizeof(t.kind));
    t.user_id = u->id;
    t.created_at = rs_ctx_now(ctx);
    t.expires_at = t.created_at + valid_ms;
    t.pw_changed_at = pw_changed_at;
    int r = ctx->store->ops->token_insert(tx->conn, &t, err);
    if (r == 0) {
        const char *b = base_url();
        size_t bl = strlen(b);
        while (bl && b[bl - 1] == '/')
            bl--;
        *ret_link = rs_xasprintf("%.*s%s?token=%s", (int)bl, b, path, tok);
    }
    sodium_memzero(tok, sizeof(tok));
    return r;
}

/* Finds a live token of kind: -RS_EBADREQUEST (field token, rule
 * invalid_token) for unknown, used, expired or voided ones alike. */
static int token_check(struct rs_ctx *ctx, struct rs_conn *c, const char *token, const char *kind,
                       struct rs_auth_token *ret, struct rs_error *err)
{
    const char *why = NULL;
    if (!token || strlen(token) != RS_TOKEN_CHARS - 1) {
        why = "malformed token";
    } else {
        char hash[RS_HASH_HEX];
        rs_token_hash(token, strlen(token), hash);
        int r = ctx->store->ops->token_find(c, hash, ret, err);
        if (r == -RS_ENOTFOUND) {
            rs_error_init(err);
            why = "unknown token";
        } else if (r < 0) {
            return r;
        } else if (strcmp(ret->kind, kind) != 0) {
            why = "token of another kind";
        } else if (ret->used_at) {
            why = "token already used or voided";
        } else if (ret->expires_at <= rs_ctx_now(ctx)) {
            why = "token expired";
        }
    }
    if (!why)
        return 0;
    rs_error_log(err, "%s", why);
    return rs_error_field(err, RS_EBADREQUEST, "token", "invalid_token",
                          "this link is invalid or has expired; ask for a new one");
}

static int queue_link_mail(struct rs_tx *tx, enum rs_mail_kind kind, const struct rs_user *u,
                           const char *link, const char *expiry_name, const char *expiry_value,
                           struct rs_error *err)
{
    const char *extra[] = {"link", link, expiry_name, expiry_value, NULL};
    return rs_outbox_queue(tx, kind, u, extra, err);
}

static int queue_password_changed(struct rs_ctx *ctx, struct rs_tx *tx, const struct rs_user *u,
                                  struct rs_error *err)
{
    char when[RS_TIME_STR_MAX];
    rs_time_format(rs_ctx_now(ctx), when);
    const char *extra[] = {"changed_at", when, "ip",
                           ctx->client_ip[0] ? ctx->client_ip : "an administrator's console",
                           NULL};
    return rs_outbox_queue(tx, RS_MAIL_PASSWORD_CHANGED, u, extra, err);
}

/* Security notice: the user's 2FA changed (change says how, in words). */
static int queue_two_factor_changed(struct rs_ctx *ctx, struct rs_tx *tx, const struct rs_user *u,
                                    const char *change, struct rs_error *err)
{
    char when[RS_TIME_STR_MAX];
    rs_time_format(rs_ctx_now(ctx), when);
    const char *extra[] = {"change", change, "changed_at", when, "ip",
                           ctx->client_ip[0] ? ctx->client_ip : "an administrator's console",
                           NULL};
    return rs_outbox_queue(tx, RS_MAIL_TWO_FACTOR_CHANGED, u, extra, err);
}

int rs_cred_email_changed(struct rs_ctx *ctx, struct rs_tx *tx, const struct rs_user *before,
                          const struct rs_user *after, struct rs_error *err)
{
    if (!before->email || !before->email[0])
        return 0;
    /* To the old address: whoever held it should know it no longer gets
     * the account's mail (reset links among them). */
    char when[RS_TIME_STR_MAX];
    rs_time_format(rs_ctx_now(ctx), when);
    const char *extra[] = {"old_email", before->email, "new_email",
                           after->email && after->email[0] ? after->email : "(none)",
                           "changed_at", when, NULL};
    return rs_outbox_queue(tx, RS_MAIL_EMAIL_CHANGED, before, extra, err);
}

/* --- creation options (users.c calls these) --- */

void rs_new_credential_release(struct rs_new_credential *nc)
{
    if (nc->hash) {
        sodium_memzero(nc->hash, strlen(nc->hash));
        free(nc->hash);
    }
    memset(nc, 0, sizeof(*nc));
}

int rs_cred_prepare_create(struct rs_ctx *ctx, const struct rs_user *in, unsigned in_mask,
                           const struct rs_create_opts *opts, struct rs_new_credential *ret,
                           struct rs_error *err)
{
    memset(ret, 0, sizeof(*ret));
    ret->send_invite = opts->send_invite;
    ret->require_reset = opts->require_reset;
    if (!opts->password)
        return 0;
    if (opts->send_invite == 1)
        return rs_error_field(err, RS_EVALIDATION, "password", "conflict",
                              "give either password (Set Password) or send_invite, not both");
    struct rs_auth_settings s;
    int r = rs_auth_settings_read(ctx, &s, err);
    if (r < 0)
        return r;
    /* The profile check looks at what the user is being created with. */
    struct rs_user probe = *in;
    if (!(in_mask & RS_UF_USERNAME))
        probe.username = NULL;
    probe.id = 0;
    r = password_prepare(ctx, &s, &probe, "password", opts->password, &ret->hash, err);
    rs_auth_settings_release(&s);
    return r;
}

int rs_cred_resolve_create(struct rs_new_credential *nc, const struct rs_user_options *o,
                           struct rs_user *in, unsigned *in_mask, struct rs_error *err)
{
    nc->invite = nc->send_invite == 1 || (nc->send_invite < 0 && !nc->hash &&
                                          o->send_invite_by_default);
    nc->must_change = nc->require_reset == 1 || (nc->require_reset < 0 && nc->hash &&
                                                 o->require_reset_by_default);
    if (nc->invite) {
        if ((*in_mask & RS_UF_STATUS) && in->status != RS_STATUS_PENDING)
            return rs_error_field(err, RS_EVALIDATION, "send_invite", "conflict",
                                  "an invited user is pending until they accept: leave status "
                                  "out or set it to pending");
        if (in->type == RS_USER_API)
            return rs_error_field(err, RS_EVALIDATION, "send_invite", "api_user",
                                  "API users sign in with API keys only and cannot be invited");
        in->status = RS_STATUS_PENDING;
        *in_mask |= RS_UF_STATUS;
    }
    if (nc->hash && (*in_mask & RS_UF_TYPE) && in->type == RS_USER_API)
        return rs_error_field(err, RS_EVALIDATION, "password", "api_user",
                              "API users sign in with API keys only and have no password");
    /* Require Reset forces a change of a password someone else knows: with
     * neither one nor an invite it would make an active account that has no
     * password and gets no mail. */
    if (nc->require_reset == 1 && !nc->hash && !nc->invite) {
        if ((*in_mask & RS_UF_TYPE) && in->type == RS_USER_API)
            return rs_error_field(err, RS_EVALIDATION, "require_reset", "api_user",
                                  "API users sign in with API keys only and have no password "
                                  "to change");
        return rs_error_field(err, RS_EVALIDATION, "password", "required",
                              "require_reset needs a temporary password for the user to change "
                              "at first sign-in: give password (Set Password), or send_invite "
                              "so they choose their own");
    }
    return 0;
}

int rs_cred_created(struct rs_ctx *ctx, struct rs_tx *tx, const struct rs_user *u,
                    const struct rs_new_credential *nc, struct rs_error *err)
{
    if (!nc->hash && !nc->invite && !nc->must_change)
        return 0;
    struct rs_auth_settings s;
    int r = rs_auth_settings_load(ctx, tx->conn, &s, err);
    if (r < 0)
        return r;
    struct rs_credential cr;
    rs_credential_init(&cr, u->id);
    if (nc->hash) {
        r = password_store(ctx, tx, &s, &cr, nc->hash, nc->must_change, err);
        if (r == 0 && u->status == RS_STATUS_ACTIVE)
            r = rs_outbox_queue(tx, RS_MAIL_WELCOME, u, (const char *[]){"sign_in_url",
                                                                        base_url(), NULL},
                                err);
    } else if (nc->must_change) {
        cr.must_change = true;
        r = ctx->store->ops->cred_put(tx->conn, &cr, err);
    }
    if (r == 0 && nc->invite) {
        _cleanup_free_ char *link = NULL;
        char when[RS_TIME_STR_MAX];
        int64_t valid = (int64_t)s.tokens.invite_hours * 3600000;
        rs_time_format(rs_ctx_now(ctx) + valid, when);
        r = token_issue(ctx, tx, "invite", u, 0, valid, "/activate", &link, err);
        if (r == 0)
            r = queue_link_mail(tx, RS_MAIL_INVITE, u, link, "expires_at", when, err);
        if (r == 0)
            r = rs_tx_audit(tx, "auth.invite_sent", "user", u->id, NULL, NULL, NULL, err);
    }
    rs_credential_release(&cr);
    rs_auth_settings_release(&s);
    return r;
}

int rs_cred_status_changed(struct rs_ctx *ctx, struct rs_tx *tx, const struct rs_user *before,
                           const struct rs_user *after, struct rs_error *err)
{
    if (after->status != RS_STATUS_ACTIVE)
        return rs_sessions_end_user(ctx, tx, after->id, 0, rs_user_status_name(after->status),
                                    NULL, err);
    if (before->status != RS_STATUS_LOCKED)
        return 0;
    /* Unlocked (by an administrator or because the lockout ran out). */
    struct rs_credential cr;
    int r = cred_load(ctx, tx->conn, after->id, true, &cr, err);
    if (r < 0)
        return r;
    if (cr.locked_until || cr.failed_count) {
        cr.locked_until = 0;
        cr.failed_count = 0;
        cr.failed_first_at = 0;
        r = ctx->store->ops->cred_put(tx->conn, &cr, err);
    }
    rs_credential_release(&cr);
    return r;
}

int rs_cred_privilege_changed(struct rs_tx *tx, int64_t user_id, struct rs_error *err)
{
    return tx->ctx->store->ops->cred_privilege_bump(tx->conn, &user_id, 1, err);
}

int rs_cred_privilege_changed_users(struct rs_tx *tx, const int64_t *user_ids, size_t n,
                                    struct rs_error *err)
{
    return tx->ctx->store->ops->cred_privilege_bump(tx->conn, user_ids, n, err);
}

int rs_cred_privilege_changed_group(struct rs_tx *tx, int64_t group_id, struct rs_error *err)
{
    return tx->ctx->store->ops->cred_privilege_bump_group(tx->conn, group_id, err);
}

int rs_cred_privilege_changed_role(struct rs_tx *tx, const char *role_key, struct rs_error *err)
{
    return tx->ctx->store->ops->cred_privilege_bump_role(tx->conn, role_key, err);
}

int rs_cred_privilege_changed_all(struct rs_tx *tx, struct rs_error *err)
{
    return tx->ctx->store->ops->cred_privilege_bump_all(tx->conn, err);
}

int rs_cred_erased(struct rs_ctx *ctx, struct rs_tx *tx, int64_t user_id, struct rs_error *err)
{
    const struct rs_store_ops *ops = ctx->store->ops;
    int64_t now = rs_ctx_now(ctx);
    struct rs_credential cr;
    rs_credential_init(&cr, user_id);
    int r = rs_sessions_end_user(ctx, tx, user_id, 0, "erased", NULL, err);
    if (r == 0)
        r = ops->token_void_user(tx->conn, user_id, NULL, now, err);
    if (r == 0)
        r = ops->recovery_set(tx->conn, user_id, NULL, 0, err);
    if (r == 0)
        r = ops->pwhist_add(tx->conn, user_id, "", now, 0, err);
    if (r == 0)
        r = ops->cred_put(tx->conn, &cr, err);
    rs_credential_release(&cr);
    return r;
}

/* --- address ranges --- */

int rs_roles_held(struct rs_ctx *ctx, struct rs_conn *c, const struct rs_user *u, char ***ret,
                  size_t *ret_n, struct rs_error *err)
{
    const struct rs_store_ops *ops = ctx->store->ops;
    char **sec = NULL;
    size_t nsec = 0, ng = 0, n = 0;
    struct rs_group *groups = NULL;
    int r = ops->user_roles_get(c, u->id, &sec, &nsec, err);
    if (r < 0)
        return r;
    r = ops->groups_of_user(c, u->id, &groups, &ng, err);
    if (r < 0) {
        rs_strv_free(sec, nsec);
        return r;
    }
    size_t cap = 1 + nsec;
    for (size_t i = 0; i < ng; i++)
        cap += json_array_size(groups[i].roles);
    char **held = rs_xcalloc(cap, sizeof(char *));
    if (u->role && u->role[0])
        held[n++] = rs_xstrdup(u->role);
    for (size_t i = 0; i < nsec; i++)
        held[n++] = RS_TAKE_PTR(sec[i]);
    for (size_t i = 0; i < ng; i++) {
        size_t j;
        json_t *v;
        json_array_foreach(groups[i].roles, j, v)
        {
            held[n++] = rs_xstrdup(json_string_value(v));
        }
        rs_group_release(&groups[i]);
    }
    free(sec);
    free(groups);
    *ret = held;
    *ret_n = n;
    return 0;
}

void rs_strv_free(char **v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        free(v[i]);
    free(v);
}

int rs_ip_lists_for(struct rs_ctx *ctx, struct rs_conn *c, const struct rs_user *u, json_t **ret,
                    struct rs_error *err)
{
    json_t *lists = json_array();
    struct rs_credential cr;
    struct rs_auth_settings s;
    int r = cred_load(ctx, c, u->id, false, &cr, err);
    if (r < 0)
        goto fail;
    json_t *own = json_loads(cr.ip_ranges, 0, NULL);
    rs_credential_release(&cr);
    if (json_array_size(own))
        json_array_append_new(lists, json_pack("{s:s,s:O}", "source", "user", "ranges", own));
    json_decref(own);
    r = rs_auth_settings_load(ctx, c, &s, err);
    if (r < 0)
        goto fail;
    json_t *t = json_object_get(s.ip_types, rs_user_type_name(u->type));
    if (json_array_size(t)) {
        char src[64];
        snprintf(src, sizeof(src), "type:%s", rs_user_type_name(u->type));
        json_array_append_new(lists, json_pack("{s:s,s:O}", "source", src, "ranges", t));
    }
    if (json_object_size(s.ip_roles)) {
        char **held = NULL;
        size_t n = 0;
        r = rs_roles_held(ctx, c, u, &held, &n, err);
        const char *key;
        json_t *list;
        json_object_foreach(s.ip_roles, key, list)
        {
            bool hit = false;
            for (size_t i = 0; !hit && i < n; i++)
                hit = strcmp(held[i], key) == 0;
            if (hit && json_array_size(list)) {
                char src[96];
                snprintf(src, sizeof(src), "role:%s", key);
                json_array_append_new(lists,
                                      json_pack("{s:s,s:O}", "source", src, "ranges", list));
            }
        }
        rs_strv_free(held, n);
    }
    rs_auth_settings_release(&s);
    if (r < 0)
        goto fail;
    *ret = lists;
    return 0;
fail:
    json_decref(lists);
    return r;
}

int rs_svc_ip_ranges_get(struct rs_ctx *ctx, int64_t user_id, json_t **ret, struct rs_error *err)
{
    int r = rs_svc_require(ctx, RS_RES_USERS, RS_LEVEL_WRITE, err);
    if (r < 0)
        return r;
    struct rs_conn *c = rs_ctx_read_conn(ctx, err);
    if (!c)
        return -RS_EUNAVAILABLE;
    struct rs_user u;
    r = ctx->store->ops->user_get(c, user_id, &u, err);
    if (r == -RS_ENOTFOUND)
        return not_found(err, user_id);
    if (r < 0)
        return r;
    rs_user_release(&u);
    struct rs_credential cr;
    r = cred_load(ctx, c, user_id, false, &cr, err);
    if (r < 0)
        return r;
    json_t *a = json_loads(cr.ip_ranges, 0, NULL);
    rs_credential_release(&cr);
    *ret = json_pack("{s:I,s:o}", "user_id", (json_int_t)user_id, "ranges",
                     a ? a : json_array());
    return 0;
}

int rs_svc_ip_ranges_put(struct rs_ctx *ctx, int64_t user_id, json_t *ranges,
                         struct rs_error *err)
{
    int r = rs_svc_require(ctx, RS_RES_USERS, RS_LEVEL_WRITE, err);
    if (r < 0)
        return r;
    r = rs_cidr_list_check(ranges, "ranges", err);
    if (r < 0)
        return r;
    struct rs_tx tx;
    struct rs_user u;
    struct rs_credential cr;
    r = rs_tx_begin(ctx, &tx, err);
    if (r < 0)
        return r;
    r = ctx->store->ops->user_get(tx.conn, user_id, &u, err);
    if (r == -RS_ENOTFOUND) {
        rs_error_init(err);
        r = not_found(err, user_id);
    }
    if (r < 0)
        goto abort;
    r = rs_svc_check_outranks(ctx, tx.conn, &u, "restrict the addresses of", err);
    rs_user_release(&u);
    if (r < 0)
        goto abort;
    r = cred_load(ctx, tx.conn, user_id, true, &cr, err);
    if (r < 0)
        goto abort;
    char *before = cr.ip_ranges;
    cr.ip_ranges = json_dumps(ranges, JSON_COMPACT);
    r = ctx->store->ops->cred_put(tx.conn, &cr, err);
    if (r == 0) {
        char *bj = rs_xasprintf("{\"ip_ranges\":%s}", before);
        char *aj = rs_xasprintf("{\"ip_ranges\":%s}", cr.ip_ranges);
        r = rs_tx_audit(&tx, "user.ip_ranges", "user", user_id, bj, aj, NULL, err);
        free(bj);
        free(aj);
    }
    free(before);
    rs_credential_release(&cr);
    /* API keys are checked against the ranges through the access cache. */
    if (r == 0)
        r = rs_tx_access_changed(&tx, err);
    if (r < 0)
        goto abort;
    return rs_tx_commit(&tx, err);
abort:
    rs_tx_abort(&tx);
    return r;
}

/* --- the caller --- */

/* The actor as a signed-in user (not the system, not unknown). */
static int actor_user(struct rs_ctx *ctx, struct rs_conn *c, struct rs_user *ret,
                      struct rs_error *err)
{
    if (!ctx->actor.user_id)
        return rs_error_set(err, RS_EUNAUTHENTICATED, "sign in first");
    int r = ctx->store->ops->user_get(c, ctx->actor.user_id, ret, err);
    if (r == -RS_ENOTFOUND) {
        rs_error_init(err);
        return rs_error_set(err, RS_EUNAUTHENTICATED, "sign in first");
    }
    return r;
}

int rs_svc_me(struct rs_ctx *ctx, json_t **ret, struct rs_error *err)
{
    struct rs_conn *c = rs_ctx_read_conn(ctx, err);
    if (!c)
        return -RS_EUNAVAILABLE;
    struct rs_user u;
    int r = actor_user(ctx, c, &u, err);
    if (r < 0)
        return r;
    struct rs_credential cr;
    r = cred_load(ctx, c, u.id, false, &cr, err);
    if (r < 0) {
        rs_user_release(&u);
        return r;
    }
    json_t *o = json_object();
    json_object_set_new(o, "user",
                        json_pack("{s:I,s:s,s:s,s:s,s:s,s:s,s:s}", "id", (json_int_t)u.id,
                                  "username", u.username, "email", u.email ? u.email : "",
                                  "first_name", u.first_name ? u.first_name : "", "last_name",
                                  u.last_name ? u.last_name : "", "type",
                                  rs_user_type_name(u.type), "status",
                                  rs_user_status_name(u.status)));
    json_object_set_new(o, "auth", json_string(ctx->session_id ? "session" : "api_key"));
    if (ctx->session_id) {
        struct rs_session se;
        if (ctx->store->ops->session_get(c, ctx->session_id, &se, err) == 0) {
            char t1[RS_TIME_STR_MAX], t2[RS_TIME_STR_MAX], t3[RS_TIME_STR_MAX];
            rs_time_format(se.created_at, t1);
            rs_time_format(se.last_seen_at, t2);
            rs_time_format(se.expires_at, t3);
            json_object_set_new(o, "session",
                                json_pack("{s:I,s:s,s:s,s:s}", "id", (json_int_t)se.id,
                                          "created_at", t1, "last_seen_at", t2, "expires_at",
                                          t3));
            rs_session_release(&se);
        }
        rs_error_init(err);
        json_object_set_new(o, "csrf_token", json_string(ctx->session_csrf));
    }
    json_object_set_new(o, "must_change_password",
                        json_boolean(ctx->session_flags & RS_SESSION_MUST_CHANGE));
    json_object_set_new(o, "must_enroll_totp",
                        json_boolean(ctx->session_flags & RS_SESSION_MUST_ENROLL));
    json_object_set_new(o, "totp_enabled", json_boolean(cr.totp_secret[0] != '\0'));
    rs_credential_release(&cr);
    rs_user_release(&u);
    *ret = o;
    return 0;
}

/* With a session: replaces it by a new one (new id) with flags, inside tx. */
static int session_rotate(struct rs_ctx *ctx, struct rs_tx *tx, const struct rs_auth_settings *s,
                          const struct rs_user *u, unsigned flags, char token[48],
                          char csrf[RS_HASH_HEX], struct rs_error *err)
{
    token[0] = '\0';
    csrf[0] = '\0';
    if (!ctx->session_id)
        return 0;
    struct rs_session old, fresh;
    int r = ctx->store->ops->session_get(tx->conn, ctx->session_id, &old, err);
    if (r < 0)
        return r;
    r = ctx->store->ops->session_delete(tx->conn, ctx->session_id, err);
    if (r == 0) {
        /* Keep the absolute deadline and the device of the session it replaces. */
        struct rs_auth_settings s2 = *s;
        s2.sessions.max_per_user = 0;
        r = rs_session_create(ctx, tx, &s2, u, flags, old.user_agent, old.expires_at, NULL,
                              ctx->session_epoch, &fresh, token, csrf, err);
    }
    if (r == 0) {
        char aj[96];
        snprintf(aj, sizeof(aj), "{\"old_session_id\":%lld,\"session_id\":%lld}",
                 (long long)old.id, (long long)fresh.id);
        r = rs_tx_audit(tx, "auth.session_rotated", "user", u->id, NULL, aj, NULL, err);
        ctx->session_id = fresh.id;
        rs_session_release(&fresh);
    }
    rs_session_release(&old);
    return r;
}

int rs_svc_change_password(struct rs_ctx *ctx, const char *current, const char *new_pw,
                           char ret_token[48], char ret_csrf[RS_HASH_HEX], struct rs_error *err)
{
    ret_token[0] = '\0';
    ret_csrf[0] = '\0';
    struct rs_conn *c = rs_ctx_read_conn(ctx, err);
    if (!c)
        return -RS_EUNAVAILABLE;
    struct rs_user u;
    struct rs_credential cr;
    struct rs_auth_settings s;
    _cleanup_free_ char *hash = NULL;
    int r = actor_user(ctx, c, &u, err);
    if (r < 0)
        return r;
    r = cred_load(ctx, c, u.id, false, &cr, err);
    if (r < 0) {
        rs_user_release(&u);
        return r;
    }
    r = rs_auth_settings_load(ctx, c, &s, err);
    rs_ctx_release(ctx);
    if (r < 0)
        goto out_cr;
    if (!current) {
        r = rs_error_field(err, RS_EVALIDATION, "current_password", "required",
                           "current_password is required");
    } else if ((r = rs_auth_budget_check(ctx, err)) < 0) {
    } else if (!password_matches(&cr, current, &s)) {
        rs_reauth_failed(ctx, &u, "bad_current_password");
        r = rs_error_field(err, RS_EVALIDATION, "current_password", "mismatch",
                           "current_password is not your current password");
    }
    if (r == 0)
        r = password_prepare(ctx, &s, &u, "new_password", new_pw, &hash, err);
    if (r < 0)
        goto out_s;
    struct rs_tx tx;
    struct rs_credential now_cr;
    memset(&now_cr, 0, sizeof(now_cr));
    r = rs_tx_begin(ctx, &tx, err);
    if (r < 0)
        goto out_s;
    r = cred_load(ctx, tx.conn, u.id, true, &now_cr, err);
    if (r == 0 && strcmp(now_cr.password_hash, cr.password_hash) != 0) {
        r = rs_error_field(err, RS_ECONFLICT, "current_password", "changed",
                           "your password was changed meanwhile; sign in again");
    }
    if (r == 0)
        r = password_store(ctx, &tx, &s, &now_cr, hash, false, err);
    if (r == 0)
        r = rs_sessions_end_user(ctx, &tx, u.id, ctx->session_id, "password_changed", NULL, err);
    if (r == 0)
        r = session_rotate(ctx, &tx, &s, &u, ctx->session_flags & ~RS_SESSION_MUST_CHANGE,
                           ret_token, ret_csrf, err);
    if (r == 0)
        r = queue_password_changed(ctx, &tx, &u, err);
    if (r == 0)
        r = rs_tx_audit(&tx, "auth.password_changed", "user", u.id, NULL, NULL, "by_user", err);
    rs_credential_release(&now_cr);
    if (r < 0) {
        rs_tx_abort(&tx);
        goto out_s;
    }
    r = rs_tx_commit(&tx, err);
out_s:
    rs_auth_settings_release(&s);
out_cr:
    rs_credential_release(&cr);
    rs_user_release(&u);
    return r;
}

/* --- forgotten passwords --- */

/* Whether a self-service reset may set u's password: an active user, or one
 * locked by a time-limited lockout (the reset ends it). A lock by an
 * administrator (locked_until 0) or a lockout until an administrator
 * unlocks (-1) is for an administrator to lift, not for whoever reads the
 * user's mail. */
static bool reset_applies(const struct rs_user *u, const struct rs_credential *cr)
{
    return u->type != RS_USER_API &&
           (u->status == RS_STATUS_ACTIVE ||
            (u->status == RS_STATUS_LOCKED && cr->locked_until > 0));
}

/* The request does the same work whatever the address: the two counters
 * and one row in the work queue, which the `resets` job picks up
 * (rs_svc_forgot_password_work). Looking the address up, issuing a token and
 * queuing mail cost time only when an account uses the address, so none of
 * that happens while the client waits. */
int rs_svc_forgot_password(struct rs_ctx *ctx, const char *email, int *ret_retry_after,
                           struct rs_error *err)
{
    const struct rs_store_ops *ops = ctx->store->ops;
    *ret_retry_after = 0;
    if (!email || !*email || strlen(email) > 320)
        return rs_error_field(err, RS_EVALIDATION, "email", "required",
                              "email is required: the address of your account");
    _cleanup_free_ char *fold = rs_fold_key(email);
    if (!fold)
        return rs_error_field(err, RS_EVALIDATION, "email", "format",
                              "email must be valid UTF-8 text");
    struct rs_tx tx;
    struct rs_auth_settings s;
    int64_t now = rs_ctx_now(ctx), count = 0, start = 0, hour = 3600000;
    int r = rs_tx_begin(ctx, &tx, err);
    if (r < 0)
        return r;
    r = rs_auth_settings_load(ctx, tx.conn, &s, err);
    if (r < 0) {
        rs_tx_abort(&tx);
        return r;
    }
    /* Per client address: over budget is 429 (it says nothing of accounts). */
    _cleanup_free_ char *ipk = rs_throttle_key("forgot-ip", ctx->client_ip);
    r = ops->rate_hit(tx.conn, ipk, now, hour, 1, &count, &start, err);
    if (r == 0 && count > s.throttle.forgot_per_ip_per_hour) {
        *ret_retry_after = (int)((start + hour - now) / 1000 + 1);
        rs_tx_abort(&tx);
        rs_auth_settings_release(&s);
        return rs_error_set(err, RS_ETHROTTLED,
                            "too many reset requests from your address; try again later");
    }
    /* Per address, known or not, so both cost the same writes. */
    char akey[RS_HASH_HEX + 16];
    char ah[RS_HASH_HEX];
    rs_keyed_hash("forgot", fold, strlen(fold), ah);
    snprintf(akey, sizeof(akey), "forgot-addr:%.32s", ah);
    if (r == 0)
        r = ops->rate_hit(tx.conn, akey, now, hour, 1, &count, &start, err);
    if (r == 0) {
        bool over = count > s.throttle.forgot_per_account_per_hour;
        json_t *o = json_pack("{s:s,s:s,s:s,s:b}", "email", fold, "ip", ctx->client_ip,
                              "request_id", ctx->request_id, "over_limit", over);
        _cleanup_free_ char *payload = rs_json_text(o);
        struct rs_work w = {.kind = (char *)RS_WORK_FORGOT_PASSWORD, .payload = payload,
                            .created_at = now};
        r = ops->work_insert(tx.conn, &w, err);
    }
    rs_auth_settings_release(&s);
    if (r < 0) {
        rs_tx_abort(&tx);
        return r;
    }
    r = rs_tx_commit(&tx, err);
    if (r == 0)
        rs_jobs_wake();
    return r;
}

/* The rest of a forgotten-password request, on the jobs thread: find the
 * account, and when a reset applies, issue the token and queue the mail; the
 * audit event says what happened. It runs in the transaction that takes the
 * queue row, so it happens once. */
int rs_svc_forgot_password_work(struct rs_ctx *ctx, const struct rs_work *w,
                                struct rs_error *err)
{
    const struct rs_store_ops *ops = ctx->store->ops;
    json_error_t je;
    json_t *p = json_loads(w->payload, 0, &je);
    const char *fold = NULL, *ip = NULL, *rid = NULL;
    int over = 0;
    if (!p || json_unpack(p, "{s:s,s:s,s:s,s:b}", "email", &fold, "ip", &ip, "request_id", &rid,
                          "over_limit", &over) < 0) {
        json_decref(p);
        return rs_error_set(err, RS_EINTERNAL, "queued forgot-password request %lld is unreadable",
                            (long long)w->id);
    }
    /* The audit event is the request's: its address, id and (no) actor. */
    rs_strlcpy(ctx->client_ip, ip, sizeof(ctx->client_ip));
    rs_strlcpy(ctx->request_id, rid, sizeof(ctx->request_id));
    ctx->actor.user_id = 0;
    ctx->actor.apikey_id = 0;
    rs_strlcpy(ctx->actor.username, "-", sizeof(ctx->actor.username));
    struct rs_tx tx;
    struct rs_auth_settings s;
    struct rs_user u;
    bool found = false;
    int r = rs_tx_begin(ctx, &tx, err);
    if (r < 0) {
        json_decref(p);
        return r;
    }
    r = ops->work_take(tx.conn, w->id, err);
    if (r == -RS_ENOTFOUND) { /* another process did it */
        rs_tx_abort(&tx);
        json_decref(p);
        rs_error_init(err);
        return 0;
    }
    if (r == 0)
        r = rs_auth_settings_load(ctx, tx.conn, &s, err);
    if (r < 0) {
        rs_tx_abort(&tx);
        json_decref(p);
        return r;
    }
    const char *outcome = "unknown_email";
    r = ops->user_get_by_email(tx.conn, fold, &u, err);
    if (r == 0)
        found = true;
    else if (r == -RS_ENOTFOUND) {
        rs_error_init(err);
        r = 0;
    }
    if (r == 0 && found) {
        struct rs_credential cr;
        memset(&cr, 0, sizeof(cr));
        r = cred_load(ctx, tx.conn, u.id, true, &cr, err);
        if (r < 0) {
        } else if (over) {
            outcome = "rate_limited";
        } else if (u.type == RS_USER_API) {
            outcome = "api_user";
        } else if (!reset_applies(&u, &cr)) {
            outcome = rs_user_status_name(u.status);
        } else {
            _cleanup_free_ char *link = NULL;
            char mins[16];
            snprintf(mins, sizeof(mins), "%d", s.tokens.reset_minutes);
            r = token_issue(ctx, &tx, "reset", &u, cr.password_changed_at,
                            minutes(s.tokens.reset_minutes), "/reset-password", &link, err);
            if (r == 0)
                r = queue_link_mail(&tx, RS_MAIL_RESET, &u, link, "expires_minutes", mins, err);
            outcome = "sent";
        }
        rs_credential_release(&cr);
    }
    if (r == 0) {
        json_t *o = json_pack("{s:s,s:s}", "ip", ctx->client_ip, "outcome", outcome);
        char *aj = rs_json_text(o);
        r = rs_tx_audit(&tx, "auth.password_reset_requested", "user", found ? u.id : 0, NULL, aj,
                        outcome, err);
        free(aj);
    }
    if (found)
        rs_user_release(&u);
    rs_auth_settings_release(&s);
    json_decref(p);
    if (r < 0) {
        rs_tx_abort(&tx);
        return r;
    }
    return rs_tx_commit(&tx, err);
}

/* Reset and activation share this: a token of kind, a new password. */
static int token_password(struct rs_ctx *ctx, const char *token, const char *password,
                          const char *kind, struct rs_error *err)
{
    bool invite = strcmp(kind, "invite") == 0;
    struct rs_conn *c = rs_ctx_read_conn(ctx, err);
    if (!c)
        return -RS_EUNAVAILABLE;
    struct rs_auth_token t;
    struct rs_user u;
    struct rs_credential cr;
    struct rs_auth_settings s;
    _cleanup_free_ char *hash = NULL;
    int r = token_check(ctx, c, token, kind, &t, err);
    if (r < 0)
        return r;
    r = ctx->store->ops->user_get(c, t.user_id, &u, err);
    if (r < 0) {
        if (r == -RS_ENOTFOUND) {
            rs_error_init(err);
            r = rs_error_field(err, RS_EBADREQUEST, "token", "invalid_token",
                               "this link is invalid or has expired; ask for a new one");
        }
        return r;
    }
    r = cred_load(ctx, c, u.id, false, &cr, err);
    if (r < 0) {
        rs_user_release(&u);
        return r;
    }
    r = rs_auth_settings_load(ctx, c, &s, err);
    rs_ctx_release(ctx);
    if (r < 0)
        goto out_cr;
    /* A later password change voids a reset link; an invite needs a pending user. */
    bool stale = invite ? u.status != RS_STATUS_PENDING
                        : (t.pw_changed_at != cr.password_changed_at || !reset_applies(&u, &cr));
    if (stale) {
        rs_error_log(err, "token no longer applies (status %s)", rs_user_status_name(u.status));
        r = rs_error_field(err, RS_EBADREQUEST, "token", "invalid_token",
                           "this link is invalid or has expired; ask for a new one");
        goto out_s;
    }
    r = password_prepare(ctx, &s, &u, "password", password, &hash, err);
    if (r < 0)
        goto out_s;
    struct rs_tx tx;
    struct rs_credential now_cr;
    r = rs_tx_begin(ctx, &tx, err);
    if (r < 0)
        goto out_s;
    r = ctx->store->ops->token_use(tx.conn, t.id, rs_ctx_now(ctx), err);
    if (r == -RS_ENOTFOUND) {
        rs_error_init(err);
        r = rs_error_field(err, RS_EBADREQUEST, "token", "invalid_token",
                           "this link is invalid or has expired; ask for a new one");
    }
    /* Decide again on the stored user and credential: an administrator may
     * have locked (or deactivated) the account since the check. */
    struct rs_user now_u;
    bool have_now_u = false;
    if (r == 0) {
        r = ctx->store->ops->user_get_for_update(tx.conn, u.id, &now_u, err);
        have_now_u = r == 0;
    }
    if (r == 0)
        r = cred_load(ctx, tx.conn, u.id, true, &now_cr, err);
    if (r == 0 && (invite ? now_u.status != RS_STATUS_PENDING
                          : (now_cr.password_changed_at != t.pw_changed_at ||
                             !reset_applies(&now_u, &now_cr)))) {
        rs_credential_release(&now_cr);
        rs_error_log(err, "token no longer applies (status %s)",
                     rs_user_status_name(now_u.status));
        r = rs_error_field(err, RS_EBADREQUEST, "token", "invalid_token",
                           "this link is invalid or has expired; ask for a new one");
    }
    bool unlock = have_now_u && !invite && now_u.status == RS_STATUS_LOCKED;
    if (have_now_u)
        rs_user_release(&now_u);
    if (r == 0) {
        now_cr.locked_until = 0; /* a reset ends a time-limited lockout */
        r = password_store(ctx, &tx, &s, &now_cr, hash, false, err);
        rs_credential_release(&now_cr);
    }
    if (r == 0 && invite)
        r = rs_user_act_tx(ctx, &tx, u.id, RS_ACTION_ACTIVATE, "invite_accepted", NULL, -1, NULL,
                           err);
    if (r == 0 && unlock)
        r = rs_user_act_tx(ctx, &tx, u.id, RS_ACTION_UNLOCK, "password_reset", NULL, -1, NULL,
                           err);
    if (r == 0)
        r = rs_sessions_end_user(ctx, &tx, u.id, 0, invite ? "activated" : "password_reset",
                                 NULL, err);
    if (r == 0 && !invite)
        r = queue_password_changed(ctx, &tx, &u, err);
    if (r == 0) {
        char aj[64];
        snprintf(aj, sizeof(aj), "{\"ip\":\"%s\"}", ctx->client_ip);
        r = rs_tx_audit(&tx, invite ? "auth.activated" : "auth.password_reset", "user", u.id,
                        NULL, aj, invite ? "invite" : "reset_link", err);
    }
    if (r < 0) {
        rs_tx_abort(&tx);
        goto out_s;
    }
    r = rs_tx_commit(&tx, err);
out_s:
    rs_auth_settings_release(&s);
out_cr:
    rs_credential_release(&cr);
    rs_user_release(&u);
    return r;
}

int rs_svc_reset_password(struct rs_ctx *ctx, const char *token, const char *password,
                          struct rs_error *err)
{
    return token_password(ctx, token, password, "reset", err);
}

int rs_svc_activate(struct rs_ctx *ctx, const char *token, const char *password,
                    struct rs_error *err)
{
    return token_password(ctx, token, password, "invite", err);
}

/* --- the second factor --- */

char *rs_recovery_normalize(const char *code)
{
    size_t n = strlen(code);
    char *out = rs_xmalloc(n + 1), *o = out;
    for (const char *p = code; *p; p++) {
        if (*p == '-' || *p == ' ')
            continue;
        *o++ = (char)(*p >= 'A' && *p <= 'Z' ? *p - 'A' + 'a' : *p);
    }
    *o = '\0';
    return out;
}

/* Ten new recovery codes: stored as keyed hashes, returned once. */
static int recovery_new(struct rs_ctx *ctx, struct rs_tx *tx, int64_t user_id, json_t **ret,
                        struct rs_error *err)
{
    static const char alphabet[] = "abcdefghjkmnpqrstuvwxyz23456789"; /* no 0/o, 1/l/i */
    char *hashes[RECOVERY_CODES];
    json_t *codes = json_array();
    for (int i = 0; i < RECOVERY_CODES; i++) {
        unsigned char raw[16];
        char code[20], *o = code;
        randombytes_buf(raw, sizeof(raw));
        for (int j = 0; j < 16; j++) {
            if (j && j % 4 == 0)
                *o++ = '-';
            *o++ = alphabet[raw[j] % (sizeof(alphabet) - 1)];
        }
        *o = '\0';
        json_array_append_new(codes, json_string(code));
        _cleanup_free_ char *norm = rs_recovery_normalize(code);
        hashes[i] = rs_xmalloc(RS_HASH_HEX);
        rs_keyed_hash("recovery", norm, strlen(norm), hashes[i]);
    }
    int r = ctx->store->ops->recovery_set(tx->conn, user_id, hashes, RECOVERY_CODES, err);
    for (int i = 0; i < RECOVERY_CODES; i++)
        free(hashes[i]);
    if (r < 0) {
        json_decref(codes);
        return r;
    }
    *ret = codes;
    return 0;
}

/* Loads the caller, their credential and the settings; checks password if given. */
struct me {
    struct rs_user u;
    struct rs_credential cr;
    struct rs_auth_settings s;
};

static void me_release(struct me *m)
{
    rs_user_release(&m->u);
    rs_credential_release(&m->cr);
    rs_auth_settings_release(&m->s);
}

static int me_load(struct rs_ctx *ctx, bool need_password, const char *password, struct me *m,
                   struct rs_error *err)
{
    memset(m, 0, sizeof(*m));
    rs_user_init(&m->u);
    rs_auth_settings_defaults(&m->s);
    rs_credential_init(&m->cr, 0);
    struct rs_conn *c = rs_ctx_read_conn(ctx, err);
    if (!c)
        return -RS_EUNAVAILABLE;
    rs_credential_release(&m->cr);
    rs_auth_settings_release(&m->s);
    int r = actor_user(ctx, c, &m->u, err);
    if (r < 0) {
        rs_credential_init(&m->cr, 0);
        rs_auth_settings_defaults(&m->s);
        return r;
    }
    r = cred_load(ctx, c, m->u.id, false, &m->cr, err);
    if (r < 0) {
        rs_credential_init(&m->cr, 0);
        rs_auth_settings_defaults(&m->s);
        return r;
    }
    r = rs_auth_settings_load(ctx, c, &m->s, err);
    if (r < 0) {
        rs_auth_settings_defaults(&m->s);
        return r;
    }
    rs_ctx_release(ctx);
    if (need_password) {
        if (!password)
            return rs_error_field(err, RS_EVALIDATION, "password", "required",
                                  "password is required: confirm it is you");
        r = rs_auth_budget_check(ctx, err);
        if (r < 0)
            return r;
        if (!password_matches(&m->cr, password, &m->s)) {
            rs_reauth_failed(ctx, &m->u, "bad_current_password");
            return rs_error_field(err, RS_EVALIDATION, "password", "mismatch",
                                  "password is not your current password");
        }
    }
    return 0;
}

int rs_svc_totp_status(struct rs_ctx *ctx, json_t **ret, struct rs_error *err)
{
    struct me m;
    int r = me_load(ctx, false, NULL, &m, err);
    if (r == 0) {
        struct rs_conn *c = rs_ctx_read_conn(ctx, err);
        int left = 0;
        r = c ? ctx->store->ops->recovery_count(c, m.u.id, &left, err) : -RS_EUNAVAILABLE;
        if (r == 0) {
            bool required = rs_totp_required(ctx, c, &m.s, &m.u);
            *ret = json_pack("{s:b,s:b,s:i,s:b}", "enabled", m.cr.totp_secret[0] != '\0',
                             "pending", m.cr.totp_pending[0] != '\0', "recovery_codes_left",
                             left, "required", required);
        }
    }
    me_release(&m);
    return r;
}

int rs_svc_totp_enroll(struct rs_ctx *ctx, const char *password, json_t **ret,
                       struct rs_error *err)
{
    struct me m;
    unsigned char secret[RS_TOTP_SECRET_BYTES];
    char b32[RS_TOTP_SECRET_BYTES * 2 + 1] = "";
    int r = me_load(ctx, true, password, &m, err);
    if (r < 0)
        goto out;
    if (m.cr.totp_secret[0]) {
        r = rs_error_field(err, RS_ECONFLICT, "totp", "enabled",
                           "two-factor sign-in is already on; disable it first to enrol a new "
                           "device");
        goto out;
    }
    randombytes_buf(secret, sizeof(secret));
    rs_totp_base32(secret, sizeof(secret), b32, sizeof(b32));
    char *sealed = rs_secret_seal(secret, sizeof(secret));
    sodium_memzero(secret, sizeof(secret));
    struct rs_tx tx;
    struct rs_credential cr;
    r = rs_tx_begin(ctx, &tx, err);
    if (r < 0) {
        free(sealed);
        goto out;
    }
    r = cred_load(ctx, tx.conn, m.u.id, true, &cr, err);
    if (r == 0) {
        free(cr.totp_pending);
        cr.totp_pending = sealed;
        sealed = NULL;
        r = ctx->store->ops->cred_put(tx.conn, &cr, err);
        rs_credential_release(&cr);
    }
    free(sealed);
    if (r == 0)
        r = rs_tx_audit(&tx, "auth.totp_enroll_started", "user", m.u.id, NULL, NULL, NULL, err);
    if (r < 0) {
        rs_tx_abort(&tx);
        goto out;
    }
    r = rs_tx_commit(&tx, err);
    if (r == 0) {
        char *uri = rs_totp_uri(m.s.two_factor.issuer, m.u.username, b32);
        char *svg = rs_qr_svg(uri);
        *ret = json_pack("{s:s,s:s,s:s}", "secret", b32, "otpauth_uri", uri, "qr_svg",
                         svg ? svg : "");
        free(uri);
        free(svg);
    }
out:
    sodium_memzero(b32, sizeof(b32));
    me_release(&m);
    return r;
}

/* Verifies a code against a sealed secret; the matched step in *ret_step. */
static bool code_ok(const char *sealed, const char *code, int64_t now, int64_t last_step,
                    int64_t *ret_step)
{
    unsigned char secret[64];
    size_t n = 0;
    if (!code || rs_secret_open(sealed, secret, sizeof(secret), &n) < 0)
        return false;
    bool ok = rs_totp_verify(secret, n, code, now, 1, last_step, ret_step) == 0;
    sodium_memzero(secret, sizeof(secret));
    return ok;
}

int rs_svc_totp_confirm(struct rs_ctx *ctx, const char *code, json_t **ret, char ret_token[48],
                        char ret_csrf[RS_HASH_HEX], struct rs_error *err)
{
    ret_token[0] = ret_csrf[0] = '\0';
    if (!code)
        return rs_error_field(err, RS_EVALIDATION, "code", "required",
                              "code is required: the 6 digits your app shows");
    struct me m;
    int r = me_load(ctx, false, NULL, &m, err);
    if (r < 0)
        goto out;
    struct rs_tx tx;
    struct rs_credential cr;
    json_t *codes = NULL;
    int64_t step = 0;
    r = rs_tx_begin(ctx, &tx, err);
    if (r < 0)
        goto out;
    r = cred_load(ctx, tx.conn, m.u.id, true, &cr, err);
    if (r < 0)
        goto abort;
    if (!cr.totp_pending[0])
        r = rs_error_field(err, RS_ECONFLICT, "code", "not_enrolling",
                           "start with POST /api/v1/auth/totp/enroll");
    else if (!code_ok(cr.totp_pending, code, rs_ctx_now(ctx), 0, &step))
        r = rs_error_field(err, RS_EVALIDATION, "code", "invalid",
                           "code does not match: check the time on your device and try the "
                           "next code");
    if (r == 0) {
        free(cr.totp_secret);
        cr.totp_secret = cr.totp_pending;
        cr.totp_pending = rs_xstrdup("");
        cr.totp_last_step = step;
        r = ctx->store->ops->cred_put(tx.conn, &cr, err);
    }
    rs_credential_release(&cr);
    if (r == 0)
        r = recovery_new(ctx, &tx, m.u.id, &codes, err);
    if (r == 0)
        r = session_rotate(ctx, &tx, &m.s, &m.u, ctx->session_flags & ~RS_SESSION_MUST_ENROLL,
                           ret_token, ret_csrf, err);
    if (r == 0)
        r = queue_two_factor_changed(ctx, &tx, &m.u, "two-factor sign-in was turned on", err);
    if (r == 0)
        r = rs_tx_audit(&tx, "auth.totp_enabled", "user", m.u.id, NULL, NULL, NULL, err);
    if (r < 0) {
        json_decref(codes);
        goto abort;
    }
    r = rs_tx_commit(&tx, err);
    if (r == 0)
        *ret = json_pack("{s:b,s:o}", "enabled", 1, "recovery_codes", codes);
    else
        json_decref(codes);
    goto out;
abort:
    rs_tx_abort(&tx);
out:
    me_release(&m);
    return r;
}

int rs_svc_totp_disable(struct rs_ctx *ctx, const char *password, const char *code,
                        struct rs_error *err)
{
    struct me m;
    int r = me_load(ctx, true, password, &m, err);
    if (r < 0)
        goto out;
    struct rs_conn *c = rs_ctx_read_conn(ctx, err);
    bool required = rs_totp_required(ctx, c, &m.s, &m.u);
    rs_ctx_release(ctx);
    int64_t step = 0;
    if (!m.cr.totp_secret[0])
        r = rs_error_field(err, RS_ECONFLICT, "totp", "not_enabled",
                           "two-factor sign-in is not on");
    else if (required)
        r = rs_error_field(err, RS_ECONFLICT, "totp", "required",
                           "the sign-in policy requires two-factor sign-in for you");
    else if (!code_ok(m.cr.totp_secret, code, rs_ctx_now(ctx), m.cr.totp_last_step, &step)) {
        rs_reauth_failed(ctx, &m.u, "bad_totp");
        r = rs_error_field(err, RS_EVALIDATION, "code", "invalid",
                           "code does not match the authenticator app");
    }
    if (r < 0)
        goto out;
    struct rs_tx tx;
    struct rs_credential cr;
    r = rs_tx_begin(ctx, &tx, err);
    if (r < 0)
        goto out;
    r = cred_load(ctx, tx.conn, m.u.id, true, &cr, err);
    if (r == 0) {
        cr.totp_secret[0] = '\0';
        cr.totp_pending[0] = '\0';
        cr.totp_last_step = 0;
        r = ctx->store->ops->cred_put(tx.conn, &cr, err);
        rs_credential_release(&cr);
    }
    if (r == 0)
        r = ctx->store->ops->recovery_set(tx.conn, m.u.id, NULL, 0, err);
    /* Another device signed in with the second factor need not keep it. */
    if (r == 0)
        r = rs_sessions_end_user(ctx, &tx, m.u.id, ctx->session_id, "totp_disabled", NULL, err);
    if (r == 0)
        r = queue_two_factor_changed(ctx, &tx, &m.u, "two-factor sign-in was turned off", err);
    if (r == 0)
        r = rs_tx_audit(&tx, "auth.totp_disabled", "user", m.u.id, NULL, NULL, "by_user", err);
    if (r < 0) {
        rs_tx_abort(&tx);
        goto out;
    }
    r = rs_tx_commit(&tx, err);
out:
    me_release(&m);
    return r;
}

int rs_svc_totp_recovery_codes(struct rs_ctx *ctx, const char *password, json_t **ret,
                               struct rs_error *err)
{
    struct me m;
    int r = me_load(ctx, true, password, &m, err);
    if (r == 0 && !m.cr.totp_secret[0])
        r = rs_error_field(err, RS_ECONFLICT, "totp", "not_enabled",
                           "turn on two-factor sign-in first");
    if (r < 0)
        goto out;
    struct rs_tx tx;
    json_t *codes = NULL;
    r = rs_tx_begin(ctx, &tx, err);
    if (r < 0)
        goto out;
    r = recovery_new(ctx, &tx, m.u.id, &codes, err);
    if (r == 0)
        r = queue_two_factor_changed(ctx, &tx, &m.u,
                                     "new recovery codes were made (the old ones no longer work)",
                                     err);
    if (r == 0)
        r = rs_tx_audit(&tx, "auth.recovery_codes_renewed", "user", m.u.id, NULL, NULL, NULL,
                        err);
    if (r < 0) {
        json_decref(codes);
        rs_tx_abort(&tx);
        goto out;
    }
    r = rs_tx_commit(&tx, err);
    if (r == 0)
        *ret = json_pack("{s:o}", "recovery_codes", codes);
    else
        json_decref(codes);
out:
    me_release(&m);
    return r;
}

/* --- administering another user's credentials --- */

/* Inside a new tx: the target user (not erased) and their credential, for update. */
static int admin_begin(struct rs_ctx *ctx, int64_t user_id, enum rs_level need, const char *what,
                       struct rs_tx *tx, struct rs_user *u, struct rs_credential *cr,
                       struct rs_error *err)
{
    int r = rs_svc_require(ctx, RS_RES_USERS, need, err);
    if (r < 0)
        return r;
    r = rs_tx_begin(ctx, tx, err);
    if (r < 0)
        return r;
    r = ctx->store->ops->user_get_for_update(tx->conn, user_id, u, err);
    if (r == -RS_ENOTFOUND) {
        rs_error_init(err);
        r = not_found(err, user_id);
    }
    if (r == 0 && u->erased_at) {
        rs_user_release(u);
        r = rs_error_field(err, RS_ECONFLICT, "status", "erased",
                           "user %lld was erased and cannot be changed", (long long)user_id);
    } else if (r == 0) {
        r = rs_svc_check_outranks(ctx, tx->conn, u, what, err);
        if (r < 0)
            rs_user_release(u);
    }
    if (r == 0) {
        r = cred_load(ctx, tx->conn, user_id, true, cr, err);
        if (r < 0)
            rs_user_release(u);
    }
    if (r < 0)
        rs_tx_abort(tx);
    return r;
}

static int admin_end(struct rs_tx *tx, struct rs_user *u, struct rs_credential *cr, int r,
                     struct rs_error *err)
{
    rs_user_release(u);
    rs_credential_release(cr);
    if (r < 0) {
        rs_tx_abort(tx);
        return r;
    }
    return rs_tx_commit(tx, err);
}

int rs_svc_totp_reset(struct rs_ctx *ctx, int64_t user_id, struct rs_error *err)
{
    struct rs_tx tx;
    struct rs_user u;
    struct rs_credential cr;
    int r = admin_begin(ctx, user_id, RS_LEVEL_ADMIN, "reset the 2FA of", &tx, &u, &cr, err);
    if (r < 0)
        return r;
    cr.totp_secret[0] = '\0';
    cr.totp_pending[0] = '\0';
    cr.totp_last_step = 0;
    r = ctx->store->ops->cred_put(tx.conn, &cr, err);
    if (r == 0)
        r = ctx->store->ops->recovery_set(tx.conn, user_id, NULL, 0, err);
    if (r == 0)
        r = rs_sessions_end_user(ctx, &tx, user_id, 0, "totp_reset", NULL, err);
    if (r == 0)
        r = queue_two_factor_changed(ctx, &tx, &u,
                                     "an administrator removed your two-factor sign-in", err);
    if (r == 0)
        r = rs_tx_audit(&tx, "auth.totp_disabled", "user", user_id, NULL, NULL, "by_admin", err);
    return admin_end(&tx, &u, &cr, r, err);
}

/* A readable temporary password: 20 characters of an unambiguous alphabet. */
static void temp_password(char out[TEMP_PASSWORD_CHARS + 1])
{
    static const char alphabet[] = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghjkmnpqrstuvwxyz23456789";
    for (int i = 0; i < TEMP_PASSWORD_CHARS; i++)
        out[i] = alphabet[randombytes_uniform(sizeof(alphabet) - 1)];
    out[TEMP_PASSWORD_CHARS] = '\0';
}

int rs_svc_admin_reset_password(struct rs_ctx *ctx, int64_t user_id, const char *method,
                                const char *password, char **ret_password, struct rs_error *err)
{
    *ret_password = NULL;
    bool by_email;
    if (method && strcmp(method, "email") == 0)
        by_email = true;
    else if (method && strcmp(method, "temporary") == 0)
        by_email = false;
    else
        return rs_error_field(err, RS_EVALIDATION, "method", "one_of",
                              "method must be \"email\" (send a reset link) or \"temporary\" "
                              "(set a temporary password)");
    if (by_email && password)
        return rs_error_field(err, RS_EVALIDATION, "password", "conflict",
                              "password goes with method \"temporary\" only");
    int r = rs_svc_require(ctx, RS_RES_USERS, RS_LEVEL_WRITE, err);
    if (r < 0)
        return r;
    struct rs_conn *c = rs_ctx_read_conn(ctx, err);
    if (!c)
        return -RS_EUNAVAILABLE;
    struct rs_auth_settings s;
    struct rs_user probe;
    r = rs_auth_settings_load(ctx, c, &s, err);
    if (r < 0)
        return r;
    r = ctx->store->ops->user_get(c, user_id, &probe, err);
    rs_ctx_release(ctx);
    if (r == -RS_ENOTFOUND) {
        rs_error_init(err);
        r = not_found(err, user_id);
    }
    if (r < 0) {
        rs_auth_settings_release(&s);
        return r;
    }
    _cleanup_free_ char *hash = NULL;
    char generated[TEMP_PASSWORD_CHARS + 1] = "";
    struct rs_conn *rc = rs_ctx_read_conn(ctx, err);
    r = rc ? rs_svc_check_outranks(ctx, rc, &probe, "reset the password of", err)
           : -RS_EUNAVAILABLE;
    rs_ctx_release(ctx);
    if (r < 0)
        ;
    else if (probe.type == RS_USER_API)
        r = rs_error_field(err, RS_ECONFLICT, "type", "api_user",
                           "API users have no password: they use API keys");
    else if (probe.status == RS_STATUS_INACTIVE || probe.status == RS_STATUS_PENDING)
        r = rs_error_field(err, RS_ECONFLICT, "status", "not_active",
                           "user %s is %s: %s first", probe.username,
                           rs_user_status_name(probe.status),
                           probe.status == RS_STATUS_PENDING ? "resend the invite"
                                                             : "reactivate them");
    if (r == 0 && !by_email) {
        if (!password) {
            /* Generated passwords skip the profile check but not the others. */
            temp_password(generated);
            password = generated;
        }
        r = password_prepare(ctx, &s, &probe, "password", password, &hash, err);
    }
    rs_user_release(&probe);
    if (r < 0) {
        rs_auth_settings_release(&s);
        return r;
    }
    struct rs_tx tx;
    struct rs_user u;
    struct rs_credential cr;
    r = admin_begin(ctx, user_id, RS_LEVEL_WRITE, "reset the password of", &tx, &u, &cr, err);
    if (r < 0) {
        rs_auth_settings_release(&s);
        return r;
    }
    if (by_email) {
        _cleanup_free_ char *link = NULL;
        char mins[16];
        snprintf(mins, sizeof(mins), "%d", s.tokens.reset_minutes);
        r = token_issue(ctx, &tx, "reset", &u, cr.password_changed_at,
                        minutes(s.tokens.reset_minutes), "/reset-password", &link, err);
        if (r == 0)
            r = queue_link_mail(&tx, RS_MAIL_RESET, &u, link, "expires_minutes", mins, err);
        /* Until the link is used, the old password signs in only to change
         * it (the password_changed_at the link depends on stays). */
        if (r == 0 && !cr.must_change) {
            cr.must_change = true;
            r = ctx->store->ops->cred_put(tx.conn, &cr, err);
        }
        /* An administrator resets when something is wrong: sign them out too. */
        if (r == 0)
            r = rs_sessions_end_user(ctx, &tx, user_id, 0, "password_reset_by_admin", NULL, err);
        if (r == 0)
            r = rs_tx_audit(&tx, "auth.password_reset_requested", "user", user_id, NULL,
                            "{\"method\":\"email\",\"must_change\":true}", "by_admin", err);
    } else {
        r = password_store(ctx, &tx, &s, &cr, hash, true, err);
        if (r == 0)
            r = rs_sessions_end_user(ctx, &tx, user_id, 0, "password_reset_by_admin", NULL, err);
        if (r == 0)
            r = queue_password_changed(ctx, &tx, &u, err);
        if (r == 0)
            r = rs_tx_audit(&tx, "auth.password_reset", "user", user_id, NULL,
                            "{\"method\":\"temporary\",\"must_change\":true}", "by_admin", err);
    }
    r = admin_end(&tx, &u, &cr, r, err);
    if (r == 0 && generated[0])
        *ret_password = rs_xstrdup(generated);
    sodium_memzero(generated, sizeof(generated));
    rs_auth_settings_release(&s);
    return r;
}

int rs_svc_invite(struct rs_ctx *ctx, int64_t user_id, struct rs_error *err)
{
    struct rs_tx tx;
    struct rs_user u;
    struct rs_credential cr;
    int r = admin_begin(ctx, user_id, RS_LEVEL_WRITE, "invite", &tx, &u, &cr, err);
    if (r < 0)
        return r;
    struct rs_auth_settings s;
    r = rs_auth_settings_load(ctx, tx.conn, &s, err);
    if (r < 0)
        return admin_end(&tx, &u, &cr, r, err);
    if (u.status != RS_STATUS_PENDING)
        r = rs_error_field(err, RS_ECONFLICT, "status", "not_pending",
                           "only pending users are invited; %s is %s", u.username,
                           rs_user_status_name(u.status));
    else if (u.type == RS_USER_API)
        r = rs_error_field(err, RS_ECONFLICT, "type", "api_user",
                           "API users sign in with API keys only and cannot be invited");
    else if (!u.email || !u.email[0])
        r = rs_error_field(err, RS_ECONFLICT, "email", "required", "the user has no email");
    if (r == 0)
        r = ctx->store->ops->token_void_user(tx.conn, user_id, "invite", rs_ctx_now(ctx), err);
    if (r == 0) {
        _cleanup_free_ char *link = NULL;
        char when[RS_TIME_STR_MAX];
        int64_t valid = (int64_t)s.tokens.invite_hours * 3600000;
        rs_time_format(rs_ctx_now(ctx) + valid, when);
        r = token_issue(ctx, &tx, "invite", &u, 0, valid, "/activate", &link, err);
        if (r == 0)
            r = queue_link_mail(&tx, RS_MAIL_INVITE, &u, link, "expires_at", when, err);
    }
    if (r == 0)
        r = rs_tx_audit(&tx, "auth.invite_sent", "user", user_id, NULL, NULL, "resent", err);
    rs_auth_settings_release(&s);
    return admin_end(&tx, &u, &cr, r, err);
}

int rs_svc_lockout_expire(struct rs_ctx *ctx, int64_t user_id, struct rs_error *err)
{
    struct rs_tx tx;
    struct rs_credential cr;
    int r = rs_tx_begin(ctx, &tx, err);
    if (r < 0)
        return r;
    r = cred_load(ctx, tx.conn, user_id, true, &cr, err);
    if (r < 0) {
        rs_tx_abort(&tx);
        return r;
    }
    bool due = cr.locked_until > 0 && cr.locked_until <= rs_ctx_now(ctx);
    rs_credential_release(&cr);
    if (due)
        r = rs_user_act_tx(ctx, &tx, user_id, RS_ACTION_UNLOCK, "lockout_expired", NULL, -1, NULL,
                           err);
    if (r < 0 || !due) {
        rs_tx_abort(&tx);
        /* Unlocked by someone else meanwhile: nothing to do. */
        return r == -RS_ECONFLICT ? 0 : r;
    }
    return rs_tx_commit(&tx, err);
}

/* --- "User cannot log in" --- */

static void check_add(json_t *checks, const char *name, bool ok, const char *detail);

/* The spec's "Password reset not working": can reset and invite mail reach
 * the user? Their address, reset mail turned on, and how
 * the latest mail to them went (as `last_mail`). Not a sign-in condition. */
static int diagnose_mail(struct rs_ctx *ctx, struct rs_conn *c, const struct rs_user *u,
                         json_t *checks, struct rs_error *err)
{
    struct rs_notify_settings ns;
    int r = rs_notify_settings_load(ctx, c, &ns, err);
    if (r < 0)
        return r;
    struct rs_mail *last = NULL;
    size_t n = 0;
    r = ctx->store->ops->mail_list(c, NULL, u->id, 1, &last, &n, err);
    if (r < 0) {
        rs_notify_settings_release(&ns);
        return r;
    }
    char buf[512], when[RS_TIME_STR_MAX];
    bool ok = false;
    if (!u->email || !u->email[0])
        snprintf(buf, sizeof(buf), "no email address: reset and invite links cannot reach them; "
                                   "set a temporary password instead");
    else if (!ns.enabled[RS_MAIL_RESET])
        snprintf(buf, sizeof(buf), "reset mail is turned off (settings, notifications, "
                                   "enabled.reset)");
    else if (n && strcmp(last->status, "failed") == 0)
        snprintf(buf, sizeof(buf), "the last mail to them (%s) was given up: %s", last->kind,
                 last->last_error);
    else if (n && strcmp(last->status, "pending") == 0 && last->attempts > 0)
        snprintf(buf, sizeof(buf), "the last mail to them (%s) is failing and will be retried: "
                                   "%s", last->kind, last->last_error);
    else {
        ok = true;
        snprintf(buf, sizeof(buf), n ? "mail reaches their address; if it seems lost, ask "
                                       "them to check their spam folder"
                                     : "mail is configured; nothing has been sent to them yet");
    }
    check_add(checks, "email", ok, buf);
    json_t *mc = json_array_get(checks, json_array_size(checks) - 1);
    if (n) {
        json_t *lm = json_pack("{s:s,s:s,s:i}", "kind", last->kind, "status", last->status,
                               "attempts", last->attempts);
        rs_time_format(last->created_at, when);
        json_object_set_new(lm, "created_at", json_string(when));
        if (last->sent_at) {
            rs_time_format(last->sent_at, when);
            json_object_set_new(lm, "sent_at", json_string(when));
        } else {
            json_object_set_new(lm, "sent_at", json_null());
        }
        json_object_set_new(lm, "last_error",
                            last->last_error[0] ? json_string(last->last_error) : json_null());
        json_object_set_new(mc, "last_mail", lm);
    } else {
        json_object_set_new(mc, "last_mail", json_null());
    }
    rs_mails_free(last, n);
    rs_notify_settings_release(&ns);
    return 0;
}

static void check_add(json_t *checks, const char *name, bool ok, const char *detail)
{
    json_array_append_new(checks,
                          json_pack("{s:s,s:b,s:s}", "check", name, "ok", ok, "detail", detail));
}

int rs_svc_login_diagnosis(struct rs_ctx *ctx, int64_t user_id, const char *ip, json_t **ret,
                           struct rs_error *err)
{
    int r = rs_svc_require(ctx, RS_RES_USERS, RS_LEVEL_WRITE, err);
    if (r < 0)
        return r;
    struct rs_ipaddr parsed;
    if (ip && rs_ip_parse(ip, &parsed) < 0)
        return rs_error_field(err, RS_EBADREQUEST, "ip", "format",
                              "ip must be an IPv4 or IPv6 address");
    struct rs_conn *c = rs_ctx_read_conn(ctx, err);
    if (!c)
        return -RS_EUNAVAILABLE;
    struct rs_user u;
    struct rs_credential cr;
    struct rs_auth_settings s;
    r = ctx->store->ops->user_get(c, user_id, &u, err);
    if (r == -RS_ENOTFOUND)
        return not_found(err, user_id);
    if (r < 0)
        return r;
    r = cred_load(ctx, c, user_id, false, &cr, err);
    if (r < 0) {
        rs_user_release(&u);
        return r;
    }
    r = rs_auth_settings_load(ctx, c, &s, err);
    if (r < 0) {
        rs_user_release(&u);
        rs_credential_release(&cr);
        return r;
    }
    int64_t now = rs_ctx_now(ctx);
    json_t *checks = json_array();
    bool can = true;
    char buf[256], when[RS_TIME_STR_MAX];

    bool type_ok = u.type != RS_USER_API;
    can &= type_ok;
    check_add(checks, "type", type_ok,
              type_ok ? "an interactive user type"
                      : "API users sign in with API keys only, never interactively");

    bool lock_over = u.status == RS_STATUS_LOCKED && cr.locked_until > 0 && cr.locked_until <= now;
    bool status_ok = u.status == RS_STATUS_ACTIVE || lock_over;
    can &= status_ok;
    snprintf(buf, sizeof(buf), "status is %s%s%s", rs_user_status_name(u.status),
             u.status_reason ? " (" : "", u.status_reason ? u.status_reason : "");
    if (u.status_reason)
        rs_strlcpy(buf + strlen(buf), ")", sizeof(buf) - strlen(buf));
    check_add(checks, "status", status_ok, status_ok ? "active" : buf);

    bool locked = u.status == RS_STATUS_LOCKED && !lock_over;
    if (u.status == RS_STATUS_LOCKED && cr.locked_until > 0) {
        rs_time_format(cr.locked_until, when);
        snprintf(buf, sizeof(buf), "locked after failed sign-ins until %s%s", when,
                 lock_over ? " (over: the next sign-in unlocks)" : "");
    } else if (u.status == RS_STATUS_LOCKED && cr.locked_until < 0) {
        snprintf(buf, sizeof(buf), "locked after failed sign-ins until an administrator unlocks");
    } else if (u.status == RS_STATUS_LOCKED) {
        snprintf(buf, sizeof(buf), "locked by an administrator: unlock to let them sign in");
    } else if (cr.locked_until > now) {
        locked = true;
        rs_time_format(cr.locked_until, when);
        snprintf(buf, sizeof(buf),
                 "sign-in paused after failed sign-ins until %s (the last administrator is "
                 "paused, never locked)",
                 when);
    } else {
        snprintf(buf, sizeof(buf), "not locked; %d failed sign-in(s) in the current window",
                 cr.failed_count);
    }
    check_add(checks, "lock", !locked, buf);
    json_t *lock_check = json_array_get(checks, json_array_size(checks) - 1);
    json_object_set_new(lock_check, "failed_attempts", json_integer(cr.failed_count));
    if (cr.locked_until > 0) {
        rs_time_format(cr.locked_until, when);
        json_object_set_new(lock_check, "locked_until", json_string(when));
    } else {
        json_object_set_new(lock_check, "locked_until", json_null());
    }

    bool pending = u.status == RS_STATUS_PENDING;
    check_add(checks, "pending_activation", !pending,
              pending ? "invited but not yet activated: resend the invite "
                        "(POST /api/v1/users/{id}/invite)"
                      : "not pending");

    bool has_pw = cr.password_hash[0] != '\0';
    bool expired = rs_password_expired(&s, &cr, now);
    if (!has_pw)
        snprintf(buf, sizeof(buf), "no password set: send a reset email or set a temporary one");
    else if (expired)
        snprintf(buf, sizeof(buf), "password expired; the next sign-in must change it");
    else if (cr.must_change)
        snprintf(buf, sizeof(buf), "must change the password at the next sign-in");
    else
        snprintf(buf, sizeof(buf), "password set");
    can &= has_pw || u.type == RS_USER_API;
    check_add(checks, "password", has_pw && !expired && !cr.must_change, buf);
    json_t *pw_check = json_array_get(checks, json_array_size(checks) - 1);
    json_object_set_new(pw_check, "expired", json_boolean(expired));
    json_object_set_new(pw_check, "must_change", json_boolean(cr.must_change));

    json_t *lists = NULL;
    struct rs_error e2;
    rs_error_init(&e2);
    r = rs_ip_lists_for(ctx, c, &u, &lists, &e2);
    if (r == 0) {
        bool ip_ok = true;
        size_t i;
        json_t *l;
        if (ip) {
            char refusing[160] = "";
            json_array_foreach(lists, i, l)
            {
                if (!rs_cidr_list_allows(json_object_get(l, "ranges"), ip)) {
                    size_t k = strlen(refusing);
                    snprintf(refusing + k, sizeof(refusing) - k, "%s%s", ip_ok ? "" : ", ",
                             json_string_value(json_object_get(l, "source")));
                    ip_ok = false;
                }
            }
            if (ip_ok)
                snprintf(buf, sizeof(buf), "%s is allowed by every rule", ip);
            else
                snprintf(buf, sizeof(buf), "%s is outside the ranges allowed by %s", ip,
                         refusing);
        } else {
            snprintf(buf, sizeof(buf), json_array_size(lists)
                                           ? "sign-in restricted to the ranges listed"
                                           : "no address restrictions");
        }
        can &= ip_ok;
        check_add(checks, "ip", ip_ok, buf);
        json_object_set_new(json_array_get(checks, json_array_size(checks) - 1), "rules",
                            lists);
    }
    r = 0;

    bool need2fa = rs_totp_required(ctx, c, &s, &u);
    bool has2fa = cr.totp_secret[0] != '\0';
    check_add(checks, "two_factor", !(need2fa && !has2fa),
              need2fa && !has2fa ? "2FA is required but not enrolled: the next sign-in must "
                                   "enrol an authenticator app"
              : has2fa           ? "2FA enrolled: a code is needed at sign-in"
                                 : "2FA not required");

    r = diagnose_mail(ctx, c, &u, checks, err);
    if (r < 0) {
        json_decref(checks);
        rs_user_release(&u);
        rs_credential_release(&cr);
        rs_auth_settings_release(&s);
        return r;
    }

    json_t *o = json_object();
    json_object_set_new(o, "user_id", json_integer(user_id));
    json_object_set_new(o, "username", json_string(u.username));
    json_object_set_new(o, "can_sign_in", json_boolean(can && !locked && !pending));
    json_object_set_new(o, "failed_attempts", json_integer(cr.failed_count));
    if (cr.locked_until > 0) {
        rs_time_format(cr.locked_until, when);
        json_object_set_new(o, "locked_until", json_string(when));
    } else {
        json_object_set_new(o, "locked_until", json_null());
    }
    json_object_set_new(o, "checks", checks);
    *ret = o;
    rs_user_release(&u);
    rs_credential_release(&cr);
    rs_auth_settings_release(&s);
    return 0;
}

/* The test routes: settings admin, and only on a server started for tests. */
static int test_route_check(struct rs_ctx *ctx, bool enabled, struct rs_error *err)
{
    int r = rs_svc_require(ctx, RS_RES_SETTINGS, RS_LEVEL_ADMIN, err);
    if (r == 0 && !enabled)
        r = rs_error_set(err, RS_ENOTFOUND, "no such route");
    return r;
}

int rs_svc_test_jobs_pause(struct rs_ctx *ctx, bool enabled, bool paused,
                           struct rs_error *err)
{
    int r = test_route_check(ctx, enabled, err);
    if (r < 0)
        return r;
    rs_jobs_pause(paused);
    rs_log(RS_LOG_WARN, paused ? "test: background jobs paused" : "test: background jobs resumed",
           "request_id", ctx->request_id, NULL);
    return 0;
}

int rs_svc_test_clock_set(struct rs_ctx *ctx, bool enabled, int64_t offset_ms,
                          struct rs_error *err)
{
    int r = test_route_check(ctx, enabled, err);
    if (r < 0)
        return r;
    rs_clock_offset_set(offset_ms);
    rs_log(RS_LOG_WARN, "test clock moved", "request_id", ctx->request_id, NULL);
    return 0;
}
