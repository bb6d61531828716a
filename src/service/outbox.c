/* outbox.c: queueing mail inside the transaction of the change it tells
 * about. The whole RFC 5322 message is rendered and stored at queue time, so
 * the `mail` job (jobs.c) only delivers bytes and a template edited later
 * never changes mail already promised. */
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>

#include "crypto.h"
#include "internal.h"
#include "notify.h"

#define DEFAULT_BASE_URL "http://127.0.0.1:8080"
#define BASE_URL_MAX 512
#define MAX_EXTRA_VARS 16

static pthread_mutex_t base_url_lock = PTHREAD_MUTEX_INITIALIZER;
static char base_url[BASE_URL_MAX] = DEFAULT_BASE_URL;

void rs_outbox_set_base_url(const char *url)
{
    pthread_mutex_lock(&base_url_lock);
    rs_strlcpy(base_url, url && *url ? url : DEFAULT_BASE_URL, sizeof(base_url));
    /* Links are built as base_url + "/path": no trailing slash. */
    size_t n = strlen(base_url);
    while (n > 1 && base_url[n - 1] == '/')
        base_url[--n] = '\0';
    pthread_mutex_unlock(&base_url_lock);
}

const char *rs_outbox_base_url(void)
{
    /* Set once at start, before any thread reads it. */
    return base_url;
}

static const char *nz(const char *s)
{
    return s ? s : "";
}

/* <32 hex>@<the from address's domain> */
static void message_id(struct rs_ctx *ctx, const char *from, char *out, size_t cap)
{
    unsigned char rnd[16];
    char hex[sizeof(rnd) * 2 + 1];
    ctx->random(rnd, sizeof(rnd));
    rs_hex(rnd, sizeof(rnd), hex);
    char addr[RS_MAIL_ADDR_MAX + 1];
    const char *domain = "localhost";
    if (from && rs_mail_addr_spec(from, addr, sizeof(addr)) == 0) {
        const char *at = strrchr(addr, '@');
        if (at && at[1])
            domain = at + 1;
    }
    snprintf(out, cap, "%s@%s", hex, domain);
}

/* Re-states a build failure of rs_mail_build so it names the setting or
 * the template at fault and says which mail could not be built. */
static int build_failed(enum rs_mail_kind kind, const char *to, const struct rs_error *local,
                        struct rs_error *err)
{
    const char *kname = rs_mail_kind_name(kind);
    for (int i = 0; i < local->nfields && i < RS_MAX_FIELD_ERRORS; i++) {
        const struct rs_field_error *f = &local->fields[i];
        char field[128];
        if (strcmp(f->field, "subject") == 0 || strcmp(f->field, "body") == 0)
            snprintf(field, sizeof(field), "templates.%s.%s", kname, f->field);
        else if (strcmp(f->field, "from") == 0)
            rs_strlcpy(field, "smtp.from", sizeof(field));
        else if (strcmp(f->field, "to") == 0)
            rs_strlcpy(field, "email", sizeof(field));
        else
            rs_strlcpy(field, f->field, sizeof(field));
        rs_error_field(err, local->code, field, f->rule,
                       "the %s mail to %s cannot be built: %s: %s", kname, to, field, f->message);
    }
    return rs_error_set(err, local->code ? local->code : RS_EINTERNAL,
                        "the %s mail to %s cannot be built: %s", kname, to, local->message);
}

int rs_outbox_build(struct rs_ctx *ctx, const struct rs_notify_settings *ns,
                    enum rs_mail_kind kind, const struct rs_user *u, const char *to,
                    const char *const *extra, char **ret_subject, char **ret_message,
                    struct rs_error *err)
{
    if ((int)kind < 0 || kind >= RS_MAIL_KIND_COUNT)
        return rs_error_set(err, RS_EINTERNAL, "no mail kind %d", (int)kind);
    size_t nextra = 0;
    while (extra && extra[nextra * 2] && nextra < MAX_EXTRA_VARS)
        nextra++;
    char url[BASE_URL_MAX];
    pthread_mutex_lock(&base_url_lock);
    rs_strlcpy(url, base_url, sizeof(url));
    pthread_mutex_unlock(&base_url_lock);

    const char *vars[2 * (6 + MAX_EXTRA_VARS) + 1];
    size_t n = 0;
    vars[n++] = "username";
    vars[n++] = nz(u ? u->username : NULL);
    vars[n++] = "first_name";
    vars[n++] = nz(u ? u->first_name : NULL);
    vars[n++] = "last_name";
    vars[n++] = nz(u ? u->last_name : NULL);
    vars[n++] = "email";
    vars[n++] = nz(u && u->email ? u->email : to);
    vars[n++] = "product";
    vars[n++] = "roster";
    vars[n++] = "base_url";
    vars[n++] = url;
    for (size_t i = 0; i < nextra; i++) {
        vars[n++] = extra[2 * i];
        vars[n++] = nz(extra[2 * i + 1]);
    }
    vars[n] = NULL;

    const char *subj_t = ns->templates[kind].subject && ns->templates[kind].subject[0]
                             ? ns->templates[kind].subject
                             : rs_mail_default_subject(kind);
    const char *body_t = ns->templates[kind].body && ns->templates[kind].body[0]
                             ? ns->templates[kind].body
                             : rs_mail_default_body(kind);
    char *subject = rs_mail_render_subject(kind, subj_t, vars);
    char *body = rs_mail_render(body_t, vars);
    char mid[200];
    message_id(ctx, ns->smtp.from, mid, sizeof(mid));
    char *msg = NULL;
    struct rs_error local;
    rs_error_init(&local);
    int r = rs_mail_build(ns->smtp.from, to, subject, body, rs_ctx_now(ctx), mid, &msg, &local);
    free(body);
    if (r < 0) {
        free(subject);
        return build_failed(kind, to, &local, err);
    }
    *ret_subject = subject;
    *ret_message = msg;
    return 0;
}

int rs_outbox_queue(struct rs_tx *tx, enum rs_mail_kind kind, const struct rs_user *u,
                    const char *const *extra, struct rs_error *err)
{
    struct rs_ctx *ctx = tx->ctx;
    if ((int)kind < 0 || kind >= RS_MAIL_KIND_COUNT)
        return rs_error_set(err, RS_EINTERNAL, "no mail kind %d", (int)kind);
    if (!u || !u->email || !u->email[0])
        return 0;
    struct rs_notify_settings ns;
    int r = rs_notify_settings_load(ctx, tx->conn, &ns, err);
    if (r < 0)
        return r;
    if (kind != RS_MAIL_TEST && !ns.enabled[kind]) {
        rs_notify_settings_release(&ns);
        return 0;
    }
    char *subject = NULL, *msg = NULL;
    r = rs_outbox_build(ctx, &ns, kind, u, u->email, extra, &subject, &msg, err);
    rs_notify_settings_release(&ns);
    if (r < 0)
        return r;
    int64_t now = rs_ctx_now(ctx);
    struct rs_mail m = {
        .created_at = now,
        .kind = (char *)rs_mail_kind_name(kind),
        .user_id = u->id,
        .to_addr = u->email,
        .subject = subject,
        .message = msg,
        .status = (char *)"pending",
        .attempts = 0,
        .next_attempt_at = now,
        .sent_at = 0,
        .last_error = (char *)"",
    };
    r = ctx->store->ops->mail_insert(tx->conn, &m, err);
    free(subject);
    free(msg);
    return r;
}

int rs_smtp_params_init(const struct rs_notify_settings *ns, struct rs_smtp_params *ret,
                        struct rs_error *err)
{
    memset(ret, 0, sizeof(*ret));
    if (!ns->smtp.url || !ns->smtp.url[0])
        return rs_error_field(err, RS_EVALIDATION, "smtp.url", "required",
                              "no SMTP server is configured (smtp.url)");
    if (!ns->smtp.from || rs_mail_addr_spec(ns->smtp.from, ret->from_addr,
                                            sizeof(ret->from_addr)) < 0)
        return rs_error_field(err, RS_EVALIDATION, "smtp.from", "mailbox",
                              "smtp.from is not one mailbox");
    int r = rs_notify_smtp_auth_check(ns, err);
    if (r < 0)
        return r;
    if (ns->smtp.password_stored && ns->smtp.password_stored[0]) {
        size_t n = 0;
        if (rs_secret_open(ns->smtp.password_stored, (unsigned char *)ret->password,
                           sizeof(ret->password) - 1, &n) < 0) {
            rs_error_log(err, "smtp.password does not open with the server key");
            return rs_error_set(err, RS_EINTERNAL,
                                "the stored SMTP password cannot be decrypted with this "
                                "server's key (was the key file replaced?); set smtp.password "
                                "again");
        }
        ret->password[n] = '\0';
    }
    ret->cfg.url = ns->smtp.url;
    ret->cfg.security = ns->smtp.security;
    ret->cfg.username = ns->smtp.username;
    ret->cfg.password = ret->password;
    ret->cfg.envelope_from = ret->from_addr;
    ret->cfg.timeout_ms = ns->smtp.timeout_seconds > 0 ? ns->smtp.timeout_seconds * 1000 : 0;
    ret->cfg.verify_tls = ns->smtp.verify_tls;
    return 0;
}

void rs_smtp_params_release(struct rs_smtp_params *p)
{
    sodium_memzero(p->password, sizeof(p->password));
}
