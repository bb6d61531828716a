/* notify.h: mail that is never lost, background jobs under leases, and the
 * auth / notifications settings (docs/design/auth-contract.md).
 *
 * Mail is queued into the outbox inside the transaction of the change it
 * tells about (rs_outbox_queue) and sent later by the `mail` job, so a
 * change commits with its mail or not at all, and an SMTP server that is down
 * only delays it. */
#ifndef RS_NOTIFY_H
#define RS_NOTIFY_H

#include <jansson.h>

#include "../core/authsettings.h"
#include "../core/mail.h"
#include "../ext/smtp.h"
#include "ctx.h"

/* --- Settings (authsettings.c) --- */

/* The auth / notifications settings as stored (the defaults, version 1, when
 * never written), read on c. Release with rs_*_settings_release. */
int rs_auth_settings_load(struct rs_ctx *ctx, struct rs_conn *c, struct rs_auth_settings *ret,
                          struct rs_error *err) RS_WUR;
int rs_notify_settings_load(struct rs_ctx *ctx, struct rs_conn *c,
                            struct rs_notify_settings *ret, struct rs_error *err) RS_WUR;
/* rs_auth_settings_load on a read connection of its own, released before it
 * returns (callers about to hash must hold no connection). */
int rs_auth_settings_read(struct rs_ctx *ctx, struct rs_auth_settings *ret,
                          struct rs_error *err) RS_WUR;
/* settings:read to get, settings:admin to patch. A patch is a JSON merge
 * patch; expected_version (-1: any) is the If-Match version (412 when
 * stale). Each patch is one transaction with its audit event
 * (`settings.auth`, `settings.notifications`; never the SMTP password). */
int rs_svc_auth_settings_get(struct rs_ctx *ctx, struct rs_auth_settings *ret,
                             struct rs_error *err) RS_WUR;
int rs_svc_auth_settings_patch(struct rs_ctx *ctx, json_t *patch, int64_t expected_version,
                               struct rs_auth_settings *ret, struct rs_error *err) RS_WUR;
int rs_svc_notify_settings_get(struct rs_ctx *ctx, struct rs_notify_settings *ret,
                               struct rs_error *err) RS_WUR;
int rs_svc_notify_settings_patch(struct rs_ctx *ctx, json_t *patch, int64_t expected_version,
                                 struct rs_notify_settings *ret, struct rs_error *err) RS_WUR;
/* settings:admin. Sends a test message to `to` (one addr-spec) now with the
 * current SMTP settings (blocking: pool thread only); -RS_EUPSTREAM with the
 * server's answer when it fails. */
int rs_svc_notify_test(struct rs_ctx *ctx, const char *to, struct rs_error *err) RS_WUR;
/* settings:read. The outbox, newest first: status NULL (any) or
 * "pending"/"sent"/"failed", user_id 0 (any), limit 1..500. Free the items
 * with rs_mails_free. */
int rs_svc_outbox_list(struct rs_ctx *ctx, const char *status, int64_t user_id, int limit,
                       struct rs_mail **ret, size_t *ret_n, struct rs_error *err) RS_WUR;

/* --- The outbox (outbox.c) --- */

/* The base URL mail links start with (the server sets it at start; default
 * "http://127.0.0.1:8080"). Copied. */
void rs_outbox_set_base_url(const char *url);
const char *rs_outbox_base_url(void);

/* Inside tx: queues mail of kind to u (when the kind is enabled and u has an
 * email): renders the kind's template with the common variables (username,
 * first_name, last_name, email, product, base_url) plus extra (name, value
 * pairs, NULL-terminated; may be NULL) and stores the whole message, due
 * now. A message that cannot be built (e.g. a line break reaching the
 * subject) fails with -RS_EVALIDATION naming the template. */
int rs_outbox_queue(struct rs_tx *tx, enum rs_mail_kind kind, const struct rs_user *u,
                    const char *const *extra, struct rs_error *err) RS_WUR;

/* Builds the message of kind for `to` from the settings' template (or the
 * built-in one), u supplying the common variables (u may be NULL), now_ms
 * its Date. *ret_subject (rendered) and *ret_message owned by the caller. */
int rs_outbox_build(struct rs_ctx *ctx, const struct rs_notify_settings *ns,
                    enum rs_mail_kind kind, const struct rs_user *u, const char *to,
                    const char *const *extra, char **ret_subject, char **ret_message,
                    struct rs_error *err) RS_WUR;

/* SMTP parameters taken from the notification settings, with the password
 * opened (rs_secret_open). Refuses credentials with security none
 * (rs_notify_smtp_auth_check: a stored document from before that rule), so
 * a password never crosses the network in the clear. Wipe with
 * rs_smtp_params_release. */
struct rs_smtp_params {
    struct rs_smtp_config cfg;
    char from_addr[RS_MAIL_ADDR_MAX + 1];
    char password[1024];
};
int rs_smtp_params_init(const struct rs_notify_settings *ns, struct rs_smtp_params *ret,
                        struct rs_error *err) RS_WUR;
void rs_smtp_params_release(struct rs_smtp_params *p);

/* --- Background jobs (jobs.c) --- */

/* One thread runs every job each interval_ms (<= 0: 1000; the environment's
 * ROSTER_JOBS_INTERVAL_MS overrides, for tests). Each job runs under a lease
 * of its own name (`mail`, `expiry`, `locks`, `sessions`), held only while it
 * runs, so processes sharing a database never run one job twice at once. */
struct rs_jobs_config {
    struct rs_store *store;
    int interval_ms;
};
int rs_jobs_start(const struct rs_jobs_config *cfg, struct rs_error *err) RS_WUR;
/* Wakes the thread and joins it (returns within one send at most). */
void rs_jobs_stop(void);
/* Runs one pass of every job now, on the calling thread. */
void rs_jobs_run_once(struct rs_store *store);
/* Test only (PUT /api/v1/test/jobs): no pass starts while paused. */
void rs_jobs_pause(bool paused);
/* Asks for a pass now rather than at the next interval (after a request
 * queued work; a no-op when the thread is not running). */
void rs_jobs_wake(void);

/* The work queue's kinds and the calls that do them (see store.h work_*). */
#define RS_WORK_FORGOT_PASSWORD "forgot_password"
int rs_svc_forgot_password_work(struct rs_ctx *ctx, const struct rs_work *w,
                                struct rs_error *err) RS_WUR;

#endif
