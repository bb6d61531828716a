/* authsettings.c: Settings -> Authentication and Settings -> Notifications
 * (GET/PATCH, each change one transaction with its audit event), the test
 * message, and the outbox list. The SMTP password is sealed with the server
 * key before it is stored and never leaves this file in clear except towards
 * the SMTP server. */
#include <sodium.h>

#include "crypto.h"
#include "internal.h"
#include "notify.h"

#define AUTH_KEY "auth"
#define NOTIFY_KEY "notifications"

/* The stored document of key parsed as JSON into *ret (NULL when never
 * written) with its version. */
static int load_doc(struct rs_ctx *ctx, struct rs_conn *c, const char *key, json_t **ret,
                    int64_t *ret_version, struct rs_error *err)
{
    char *text = NULL;
    int64_t version = 0;
    int r = ctx->store->ops->settings_get(c, key, &text, &version, err);
    if (r == -RS_ENOTFOUND) {
        *ret = NULL;
        *ret_version = 1;
        return 0;
    }
    if (r < 0)
        return r;
    json_t *doc = json_loads(text, 0, NULL);
    free(text);
    if (!doc) {
        rs_error_log(err, "stored %s settings are not JSON", key);
        return rs_error_set(err, RS_EINTERNAL, "the %s settings are unreadable", key);
    }
    *ret = doc;
    *ret_version = version;
    return 0;
}

static int auth_load(struct rs_ctx *ctx, struct rs_conn *c, struct rs_auth_settings *ret,
                     bool *ret_stored, struct rs_error *err)
{
    json_t *doc = NULL;
    int64_t version = 0;
    int r = load_doc(ctx, c, AUTH_KEY, &doc, &version, err);
    if (r < 0)
        return r;
    if (!doc) {
        rs_auth_settings_defaults(ret);
        ret->version = 1;
        *ret_stored = false;
        return 0;
    }
    r = rs_auth_settings_from_json(doc, ret, err);
    json_decref(doc);
    if (r < 0)
        return r;
    ret->version = version;
    *ret_stored = true;
    return 0;
}

static int notify_load(struct rs_ctx *ctx, struct rs_conn *c, struct rs_notify_settings *ret,
                       bool *ret_stored, struct rs_error *err)
{
    json_t *doc = NULL;
    int64_t version = 0;
    int r = load_doc(ctx, c, NOTIFY_KEY, &doc, &version, err);
    if (r < 0)
        return r;
    if (!doc) {
        rs_notify_settings_defaults(ret);
        ret->version = 1;
        *ret_stored = false;
        return 0;
    }
    r = rs_notify_settings_from_json(doc, ret, err);
    json_decref(doc);
    if (r < 0)
        return r;
    ret->version = version;
    *ret_stored = true;
    return 0;
}

int rs_auth_settings_load(struct rs_ctx *ctx, struct rs_conn *c, struct rs_auth_settings *ret,
                          struct rs_error *err)
{
    bool stored;
    return auth_load(ctx, c, ret, &stored, err);
}

int rs_notify_settings_load(struct rs_ctx *ctx, struct rs_conn *c,
                            struct rs_notify_settings *ret, struct rs_error *err)
{
    bool stored;
    return notify_load(ctx, c, ret, &stored, err);
}

int rs_svc_auth_settings_get(struct rs_ctx *ctx, struct rs_auth_settings *ret,
                             struct rs_error *err)
{
    int r = rs_svc_require(ctx, RS_RES_SETTINGS, RS_LEVEL_READ, err);
    if (r < 0)
        return r;
    struct rs_conn *c = rs_ctx_read_conn(ctx, err);
    if (!c)
        return -RS_EUNAVAILABLE;
    return rs_auth_settings_load(ctx, c, ret, err);
}

int rs_svc_notify_settings_get(struct rs_ctx *ctx, struct rs_notify_settings *ret,
                               struct rs_error *err)
{
    int r = rs_svc_require(ctx, RS_RES_SETTINGS, RS_LEVEL_READ, err);
    if (r < 0)
        return r;
    struct rs_conn *c = rs_ctx_read_conn(ctx, err);
    if (!c)
        return -RS_EUNAVAILABLE;
    return rs_notify_settings_load(ctx, c, ret, err);
}

static int stale(int64_t have, int64_t expected, struct rs_error *err)
{
    return rs_error_set(err, RS_EPRECONDITION,
                        "the settings have changed (version %lld, If-Match names %lld); fetch "
                        "them again and retry",
                        (long long)have, (long long)expected);
}

/* Stores doc (its reference is taken) under key as version, where
 * before_version was stored, and writes the audit event; both in tx. */
static int store_and_audit(struct rs_tx *tx, const char *key, const char *action, json_t *doc,
                           int64_t version, bool stored, int64_t before_version,
                           const char *before_json, const char *after_json, struct rs_error *err)
{
    struct rs_ctx *ctx = tx->ctx;
    char *text = rs_json_text(doc);
    int r = ctx->store->ops->settings_put(tx->conn, key, text, version,
                                          stored ? before_version : 0, rs_ctx_now(ctx), err);
    free(text);
    if (r == -RS_EPRECONDITION)
        r = rs_error_set(err, RS_EPRECONDITION, "the settings changed meanwhile; retry");
    if (r < 0)
        return r;
    return rs_tx_audit(tx, action, "settings", 0, before_json, after_json, NULL, err);
}

int rs_svc_auth_settings_patch(struct rs_ctx *ctx, json_t *patch, int64_t expected_version,
                               struct rs_auth_settings *ret, struct rs_error *err)
{
    int r = rs_svc_require(ctx, RS_RES_SETTINGS, RS_LEVEL_ADMIN, err);
    if (r < 0)
        return r;
    struct rs_tx tx;
    struct rs_auth_settings before, after;
    bool have_before = false, have_after = false, stored = false;
    char *before_json = NULL, *after_json = NULL;
    r = rs_tx_begin(ctx, &tx, err);
    if (r < 0)
        return r;
    r = auth_load(ctx, tx.conn, &before, &stored, err);
    if (r < 0)
        goto abort;
    have_before = true;
    if (expected_version >= 0 && before.version != expected_version) {
        r = stale(before.version, expected_version, err);
        goto abort;
    }
    r = rs_auth_settings_patch(&before, patch, &after, err);
    if (r < 0)
        goto abort;
    have_after = true;
    after.version = before.version + 1;
    before_json = rs_json_text(rs_auth_settings_to_json(&before));
    after_json = rs_json_text(rs_auth_settings_to_json(&after));
    json_t *doc = rs_auth_settings_to_json(&after);
    r = store_and_audit(&tx, AUTH_KEY, "settings.auth", doc, after.version, stored,
                        before.version, before_json, after_json, err);
    /* IP rules and the 2FA policy decide who may do what: cached access and
     * sessions must be judged again. */
    if (r == 0)
        r = rs_tx_access_changed(&tx, err);
    if (r < 0)
        goto abort;
    r = rs_tx_commit(&tx, err);
    if (r == 0) {
        *ret = after;
        have_after = false;
    }
    goto out;
abort:
    rs_tx_abort(&tx);
out:
    if (have_before)
        rs_auth_settings_release(&before);
    if (have_after)
        rs_auth_settings_release(&after);
    free(before_json);
    free(after_json);
    return r;
}

/* A patch that carried smtp.password: seal it into password_stored ("" or
 * null clears it) so the plaintext is never stored. */
static void seal_password(struct rs_notify_settings *s)
{
    if (!s->smtp.password_new)
        return;
    char *sealed = s->smtp.password_new[0]
                       ? rs_secret_seal(s->smtp.password_new, strlen(s->smtp.password_new))
                       : rs_xstrdup("");
    free(s->smtp.password_stored);
    s->smtp.password_stored = sealed;
    sodium_memzero(s->smtp.password_new, strlen(s->smtp.password_new));
    free(s->smtp.password_new);
    s->smtp.password_new = NULL;
}

int rs_svc_notify_settings_patch(struct rs_ctx *ctx, json_t *patch, int64_t expected_version,
                                 struct rs_notify_settings *ret, struct rs_error *err)
{
    int r = rs_svc_require(ctx, RS_RES_SETTINGS, RS_LEVEL_ADMIN, err);
    if (r < 0)
        return r;
    struct rs_tx tx;
    struct rs_notify_settings before, after;
    bool have_before = false, have_after = false, stored = false;
    char *before_json = NULL, *after_json = NULL;
    r = rs_tx_begin(ctx, &tx, err);
    if (r < 0)
        return r;
    r = notify_load(ctx, tx.conn, &before, &stored, err);
    if (r < 0)
        goto abort;
    have_before = true;
    if (expected_version >= 0 && before.version != expected_version) {
        r = stale(before.version, expected_version, err);
        goto abort;
    }
    r = rs_notify_settings_patch(&before, patch, &after, err);
    if (r < 0)
        goto abort;
    have_after = true;
    seal_password(&after);
    after.version = before.version + 1;
    /* The API form: password_set, never the password (sealed or not). */
    before_json = rs_json_text(rs_notify_settings_to_json(&before, false));
    after_json = rs_json_text(rs_notify_settings_to_json(&after, false));
    json_t *doc = rs_notify_settings_to_json(&after, true);
    r = store_and_audit(&tx, NOTIFY_KEY, "settings.notifications", doc, after.version, stored,
                        before.version, before_json, after_json, err);
    if (r < 0)
        goto abort;
    r = rs_tx_commit(&tx, err);
    if (r == 0) {
        *ret = after;
        have_after = false;
    }
    goto out;
abort:
    rs_tx_abort(&tx);
out:
    if (have_before)
        rs_notify_settings_release(&before);
    if (have_after)
        rs_notify_settings_release(&after);
    free(before_json);
    free(after_json);
    return r;
}

int rs_svc_notify_test(struct rs_ctx *ctx, const char *to, struct rs_error *err)
{
    int r = rs_svc_require(ctx, RS_RES_SETTINGS, RS_LEVEL_ADMIN, err);
    if (r < 0)
        return r;
    if (!to || !to[0])
        return rs_error_field(err, RS_EVALIDATION, "to", "required",
                              "to is required: the address the test message goes to");
    if (!rs_mail_addr_spec_ok(to))
        return rs_error_field(err, RS_EVALIDATION, "to", "addr_spec",
                              "to must be one email address such as someone@example.com");
    struct rs_conn *c = rs_ctx_read_conn(ctx, err);
    if (!c)
        return -RS_EUNAVAILABLE;
    struct rs_notify_settings ns;
    r = rs_notify_settings_load(ctx, c, &ns, err);
    if (r < 0)
        return r;
    struct rs_user me;
    bool have_me = false;
    if (ctx->actor.user_id > 0) {
        struct rs_error ignored;
        rs_error_init(&ignored);
        have_me = ctx->store->ops->user_get(c, ctx->actor.user_id, &me, &ignored) == 0;
    }
    /* Never hold a read snapshot (or a pooled connection) while waiting on SMTP. */
    rs_ctx_release(ctx);
    struct rs_user who;
    rs_user_init(&who);
    who.username = have_me ? me.username : ctx->actor.username;
    who.first_name = have_me ? me.first_name : NULL;
    who.last_name = have_me ? me.last_name : NULL;
    who.email = (char *)to;
    char *subject = NULL, *msg = NULL;
    struct rs_smtp_params sp;
    bool have_sp = false;
    r = rs_outbox_build(ctx, &ns, RS_MAIL_TEST, &who, to, NULL, &subject, &msg, err);
    if (r == 0) {
        r = rs_smtp_params_init(&ns, &sp, err);
        have_sp = r == 0;
    }
    if (r == 0) {
        struct rs_error se;
        rs_error_init(&se);
        r = rs_smtp_send(&sp.cfg, to, msg, &se);
        if (r < 0) {
            rs_error_log(err, "%s", se.log_detail);
            r = rs_error_set(err, RS_EUPSTREAM, "the test message was not sent: %s",
                             se.message);
        }
    }
    if (have_sp)
        rs_smtp_params_release(&sp);
    free(subject);
    free(msg);
    if (have_me)
        rs_user_release(&me);
    rs_notify_settings_release(&ns);
    return r;
}

int rs_svc_outbox_list(struct rs_ctx *ctx, const char *status, int64_t user_id, int limit,
                       struct rs_mail **ret, size_t *ret_n, struct rs_error *err)
{
    int r = rs_svc_require(ctx, RS_RES_SETTINGS, RS_LEVEL_READ, err);
    if (r < 0)
        return r;
    if (status && strcmp(status, "pending") != 0 && strcmp(status, "sent") != 0 &&
        strcmp(status, "failed") != 0)
        return rs_error_field(err, RS_EBADREQUEST, "status", "enum",
                              "status must be one of pending, sent, failed");
    if (limit < 1 || limit > 500)
        return rs_error_field(err, RS_EBADREQUEST, "limit", "range",
                              "limit must be a whole number from 1 to 500");
    if (user_id < 0)
        return rs_error_field(err, RS_EBADREQUEST, "user_id", "range",
                              "user_id must be a positive whole number");
    struct rs_conn *c = rs_ctx_read_conn(ctx, err);
    if (!c)
        return -RS_EUNAVAILABLE;
    return ctx->store->ops->mail_list(c, status, user_id, limit, ret, ret_n, err);
}
