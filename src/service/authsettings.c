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

/* The two documents differ only in these operations; loading and patching
 * (If-Match, store, audit) are the same. `after_patch` runs on the patched
 * copy inside the transaction, with the settings before it (sealing a
 * password, dropping cached access, rotating sessions). */
struct doc_kind {
    const char *key, *action;
    size_t size;
    void (*defaults)(void *s);
    int (*from_json)(json_t *doc, void *ret, struct rs_error *err);
    int (*patch)(const void *cur, json_t *patch, void *ret, struct rs_error *err);
    json_t *(*to_json)(const void *s, bool for_storage);
    void (*release)(void *s);
    int64_t *(*version)(void *s);
    int (*after_patch)(struct rs_tx *tx, const void *before, void *after, struct rs_error *err);
};

/* The stored document of kind k (the defaults, version 1, when never
 * written); *ret_stored whether one is stored. */
static int doc_load(struct rs_ctx *ctx, struct rs_conn *c, const struct doc_kind *k, void *ret,
                    bool *ret_stored, struct rs_error *err)
{
    char *text = NULL;
    int64_t version = 0;
    int r = ctx->store->ops->settings_get(c, k->key, &text, &version, err);
    if (r == -RS_ENOTFOUND) {
        rs_error_init(err);
        k->defaults(ret);
        *k->version(ret) = 1;
        *ret_stored = false;
        return 0;
    }
    if (r < 0)
        return r;
    json_t *doc = json_loads(text, 0, NULL);
    free(text);
    if (!doc) {
        rs_error_log(err, "stored %s settings are not JSON", k->key);
        return rs_error_set(err, RS_EINTERNAL, "the %s settings are unreadable", k->key);
    }
    r = k->from_json(doc, ret, err);
    json_decref(doc);
    if (r < 0)
        return r;
    *k->version(ret) = version;
    *ret_stored = true;
    return 0;
}

/* GET-then-PATCH of kind k: settings:admin, If-Match, one transaction with
 * the audit event (the API form of before and after, never a secret). */
static int doc_patch(struct rs_ctx *ctx, const struct doc_kind *k, json_t *patch,
                     int64_t expected_version, void *ret, struct rs_error *err)
{
    int r = rs_svc_require(ctx, RS_RES_SETTINGS, RS_LEVEL_ADMIN, err);
    if (r < 0)
        return r;
    void *before = rs_xcalloc(1, k->size), *after = rs_xcalloc(1, k->size);
    bool have_before = false, have_after = false, stored = false;
    char *before_json = NULL, *after_json = NULL, *text = NULL;
    struct rs_tx tx;
    r = rs_tx_begin(ctx, &tx, err);
    if (r < 0)
        goto out;
    r = doc_load(ctx, tx.conn, k, before, &stored, err);
    have_before = r == 0;
    int64_t v = have_before ? *k->version(before) : 0;
    if (r == 0 && expected_version >= 0 && v != expected_version)
        r = rs_error_set(err, RS_EPRECONDITION,
                         "the settings have changed (version %lld, If-Match names %lld); fetch "
                         "them again and retry",
                         (long long)v, (long long)expected_version);
    if (r == 0) {
        r = k->patch(before, patch, after, err);
        have_after = r == 0;
    }
    if (r == 0 && k->after_patch)
        r = k->after_patch(&tx, before, after, err);
    if (r == 0) {
        *k->version(after) = v + 1;
        before_json = rs_json_text(k->to_json(before, false));
        after_json = rs_json_text(k->to_json(after, false));
        text = rs_json_text(k->to_json(after, true));
        r = ctx->store->ops->settings_put(tx.conn, k->key, text, v + 1, stored ? v : 0,
                                          rs_ctx_now(ctx), err);
        if (r == -RS_EPRECONDITION)
            r = rs_error_set(err, RS_EPRECONDITION, "the settings changed meanwhile; retry");
    }
    if (r == 0)
        r = rs_tx_audit(&tx, k->action, "settings", 0, before_json, after_json, NULL, err);
    if (r == 0)
        r = rs_tx_commit(&tx, err);
    else
        rs_tx_abort(&tx);
    if (r == 0) {
        memcpy(ret, after, k->size);
        have_after = false;
    }
out:
    if (have_before)
        k->release(before);
    if (have_after)
        k->release(after);
    free(before);
    free(after);
    free(before_json);
    free(after_json);
    free(text);
    return r;
}

/* --- the auth document --- */

static void auth_defaults(void *s)
{
    rs_auth_settings_defaults(s);
}
static int auth_from_json(json_t *doc, void *ret, struct rs_error *err)
{
    return rs_auth_settings_from_json(doc, ret, err);
}
static int auth_patch(const void *cur, json_t *patch, void *ret, struct rs_error *err)
{
    return rs_auth_settings_patch(cur, patch, ret, err);
}
static json_t *auth_to_json(const void *s, bool for_storage)
{
    return rs_auth_settings_to_json(s);
}
static void auth_release(void *s)
{
    rs_auth_settings_release(s);
}
static int64_t *auth_version(void *s)
{
    return &((struct rs_auth_settings *)s)->version;
}
static bool two_factor_policy_changed(const struct rs_auth_settings *a,
                                      const struct rs_auth_settings *b)
{
    if (a->two_factor.require != b->two_factor.require)
        return true;
    if (!a->two_factor.roles || !b->two_factor.roles)
        return a->two_factor.roles != b->two_factor.roles;
    return !json_equal(a->two_factor.roles, b->two_factor.roles);
}

/* IP rules and the 2FA policy decide who may do what: cached access and
 * sessions must be judged again. A new 2FA policy may concern anyone, so
 * every user's sessions rotate on their next request, and those now
 * required to enrol are sent to enrolment at once. */
static int auth_after_patch(struct rs_tx *tx, const void *before, void *after, struct rs_error *err)
{
    int r = rs_tx_access_changed(tx, err);
    if (r == 0 && two_factor_policy_changed(before, after))
        r = rs_cred_privilege_changed_all(tx, err);
    return r;
}

static const struct doc_kind auth_kind = {
    AUTH_KEY,        "settings.auth", sizeof(struct rs_auth_settings),
    auth_defaults,   auth_from_json,  auth_patch,
    auth_to_json,    auth_release,    auth_version,
    auth_after_patch};

/* --- the notifications document --- */

static void notify_defaults(void *s)
{
    rs_notify_settings_defaults(s);
}
static int notify_from_json(json_t *doc, void *ret, struct rs_error *err)
{
    return rs_notify_settings_from_json(doc, ret, err);
}
static int notify_patch(const void *cur, json_t *patch, void *ret, struct rs_error *err)
{
    return rs_notify_settings_patch(cur, patch, ret, err);
}
/* The API form shows password_set, never the password (sealed or not). */
static json_t *notify_to_json(const void *s, bool for_storage)
{
    return rs_notify_settings_to_json(s, for_storage);
}
static void notify_release(void *s)
{
    rs_notify_settings_release(s);
}
static int64_t *notify_version(void *s)
{
    return &((struct rs_notify_settings *)s)->version;
}
/* A patch that carried smtp.password: seal it into password_stored ("" or
 * null clears it) so the plaintext is never stored. */
static int notify_after_patch(struct rs_tx *tx, const void *before, void *p, struct rs_error *err)
{
    struct rs_notify_settings *s = p;
    if (!s->smtp.password_new)
        return 0;
    char *sealed = s->smtp.password_new[0]
                       ? rs_secret_seal(s->smtp.password_new, strlen(s->smtp.password_new))
                       : rs_xstrdup("");
    free(s->smtp.password_stored);
    s->smtp.password_stored = sealed;
    sodium_memzero(s->smtp.password_new, strlen(s->smtp.password_new));
    free(s->smtp.password_new);
    s->smtp.password_new = NULL;
    return 0;
}

static const struct doc_kind notify_kind = {
    NOTIFY_KEY,        "settings.notifications", sizeof(struct rs_notify_settings),
    notify_defaults,   notify_from_json,         notify_patch,
    notify_to_json,    notify_release,           notify_version,
    notify_after_patch};

/* --- the service calls --- */

int rs_auth_settings_load(struct rs_ctx *ctx, struct rs_conn *c, struct rs_auth_settings *ret,
                          struct rs_error *err)
{
    bool stored;
    return doc_load(ctx, c, &auth_kind, ret, &stored, err);
}

int rs_auth_settings_read(struct rs_ctx *ctx, struct rs_auth_settings *ret, struct rs_error *err)
{
    struct rs_conn *c = rs_ctx_read_conn(ctx, err);
    if (!c)
        return -RS_EUNAVAILABLE;
    int r = rs_auth_settings_load(ctx, c, ret, err);
    rs_ctx_release(ctx);
    return r;
}

int rs_notify_settings_load(struct rs_ctx *ctx, struct rs_conn *c,
                            struct rs_notify_settings *ret, struct rs_error *err)
{
    bool stored;
    return doc_load(ctx, c, &notify_kind, ret, &stored, err);
}

static int doc_get(struct rs_ctx *ctx, const struct doc_kind *k, void *ret, struct rs_error *err)
{
    int r = rs_svc_require(ctx, RS_RES_SETTINGS, RS_LEVEL_READ, err);
    if (r < 0)
        return r;
    struct rs_conn *c = rs_ctx_read_conn(ctx, err);
    if (!c)
        return -RS_EUNAVAILABLE;
    bool stored;
    return doc_load(ctx, c, k, ret, &stored, err);
}

int rs_svc_auth_settings_get(struct rs_ctx *ctx, struct rs_auth_settings *ret,
                             struct rs_error *err)
{
    return doc_get(ctx, &auth_kind, ret, err);
}

int rs_svc_notify_settings_get(struct rs_ctx *ctx, struct rs_notify_settings *ret,
                               struct rs_error *err)
{
    return doc_get(ctx, &notify_kind, ret, err);
}

int rs_svc_auth_settings_patch(struct rs_ctx *ctx, json_t *patch, int64_t expected_version,
                               struct rs_auth_settings *ret, struct rs_error *err)
{
    int r = doc_patch(ctx, &auth_kind, patch, expected_version, ret, err);
    if (r == 0) {
        /* Unknown users must cost what real hashes now cost: remake the
         * dummy hash here, after the commit (hashing never holds the
         * writer), not in the next unknown user's sign-in. Out of memory
         * leaves it to that sign-in (rs_pw_dummy_verify). */
        struct rs_error ignored;
        rs_error_init(&ignored);
        if (rs_pw_dummy_prepare(ret->hash_memory_kib, ret->hash_iterations, &ignored) < 0)
            rs_error_init(&ignored);
    }
    return r;
}

int rs_svc_notify_settings_patch(struct rs_ctx *ctx, json_t *patch, int64_t expected_version,
                                 struct rs_notify_settings *ret, struct rs_error *err)
{
    return doc_patch(ctx, &notify_kind, patch, expected_version, ret, err);
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
