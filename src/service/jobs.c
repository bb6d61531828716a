/* jobs.c: the background jobs: `resets` (forgotten-password requests from
 * the work queue), `mail` (deliver due outbox mail), `expiry`
 * (password expiry notices), `locks` (lockouts that ran out) and `sessions`
 * (purge expired sessions). One thread runs every job each interval; each job
 * runs under a lease of its own name, taken before and given back after it
 * runs, so processes sharing a database never run the same job at once. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "notify.h"
#include "../util/log.h"

#define LEASE_MS 30000
#define LEASE_RENEW_MS 10000
#define DEFAULT_INTERVAL_MS 1000
#define MAIL_BATCH 50
#define USER_BATCH 100
#define RETRY_BASE_MS 30000
#define RETRY_MAX_MS 3600000
#define GIVE_UP_MS (3LL * 24 * 3600 * 1000)
#define DAY_MS (24LL * 3600 * 1000)

static pthread_mutex_t jobs_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t jobs_cond;
static pthread_t jobs_thread;
static bool jobs_running;
static bool jobs_stopping; /* read without the lock between messages: a hint */
static bool jobs_woken;    /* a pass was asked for (rs_jobs_wake) */
static bool jobs_paused;   /* tests only (rs_jobs_pause) */
static bool jobs_in_pass;  /* the thread is running a pass */
static pthread_cond_t jobs_idle = PTHREAD_COND_INITIALIZER; /* a pass ended */
static struct rs_store *jobs_store;
static int jobs_interval_ms;

static pthread_once_t owner_once = PTHREAD_ONCE_INIT;
static char lease_owner[128];

static void owner_init(void)
{
    char host[64] = "";
    if (gethostname(host, sizeof(host) - 1) < 0 || !host[0])
        rs_strlcpy(host, "localhost", sizeof(host));
    host[sizeof(host) - 1] = '\0';
    unsigned char rnd[8];
    char hex[sizeof(rnd) * 2 + 1];
    struct rs_ctx tmp;
    rs_ctx_init(&tmp, NULL);
    tmp.random(rnd, sizeof(rnd));
    rs_hex(rnd, sizeof(rnd), hex);
    snprintf(lease_owner, sizeof(lease_owner), "%s:%ld:%s", host, (long)getpid(), hex);
}

static bool stopping(void)
{
    return __atomic_load_n(&jobs_stopping, __ATOMIC_RELAXED);
}

static void log_error(const char *job, const char *what, const struct rs_error *err)
{
    rs_log(RS_LOG_ERROR, "job failed", "job", job, "what", what, "error", err->message,
           "detail", err->log_detail, NULL);
}

/* Takes (or renews) the lease on name; autocommit on the writer, released at
 * once so no job holds the SQLite writer while it works. */
static bool lease_take_ms(struct rs_ctx *ctx, const char *name, int64_t lease_ms)
{
    struct rs_error err;
    rs_error_init(&err);
    struct rs_conn *c = ctx->store->ops->acquire(ctx->store, RS_CONN_WRITE, &err);
    if (!c) {
        log_error(name, "lease", &err);
        return false;
    }
    bool got = false;
    int64_t now = rs_ctx_now(ctx);
    int r = ctx->store->ops->lease_acquire(c, name, lease_owner, now, now + lease_ms, &got, &err);
    ctx->store->ops->release(c);
    if (r < 0) {
        log_error(name, "lease", &err);
        return false;
    }
    return got;
}

static bool lease_take(struct rs_ctx *ctx, const char *name)
{
    return lease_take_ms(ctx, name, LEASE_MS);
}

static void lease_give_back(struct rs_ctx *ctx, const char *name)
{
    struct rs_error err;
    rs_error_init(&err);
    struct rs_conn *c = ctx->store->ops->acquire(ctx->store, RS_CONN_WRITE, &err);
    if (!c) {
        log_error(name, "lease release", &err);
        return;
    }
    if (ctx->store->ops->lease_release(c, name, lease_owner, &err) < 0)
        log_error(name, "lease release", &err);
    ctx->store->ops->release(c);
}

/* --- queued work --- */

#define WORK_BATCH 50
#define WORK_GIVE_UP_MS (3600LL * 1000)

/* Does each queued row of kind with run; a row that keeps failing is
 * dropped after an hour, so one bad row cannot stall the queue. */
static void work_drain(struct rs_ctx *ctx, const char *job, const char *kind,
                       int (*run)(struct rs_ctx *, const struct rs_work *, struct rs_error *))
{
    struct rs_error err;
    rs_error_init(&err);
    struct rs_conn *c = rs_ctx_read_conn(ctx, &err);
    if (!c) {
        log_error(job, "connect", &err);
        return;
    }
    struct rs_work *items = NULL;
    size_t n = 0;
    int r = ctx->store->ops->work_due(c, kind, WORK_BATCH, &items, &n, &err);
    rs_ctx_release(ctx);
    if (r < 0) {
        log_error(job, "list queued work", &err);
        return;
    }
    for (size_t i = 0; i < n && !stopping(); i++) {
        struct rs_ctx wctx = *ctx;
        wctx.rconn = NULL;
        struct rs_error e;
        rs_error_init(&e);
        if (run(&wctx, &items[i], &e) == 0)
            continue;
        rs_ctx_release(&wctx);
        char id[24];
        snprintf(id, sizeof(id), "%lld", (long long)items[i].id);
        bool give_up = rs_ctx_now(ctx) - items[i].created_at > WORK_GIVE_UP_MS;
        rs_log(RS_LOG_ERROR, give_up ? "queued work failed; dropped" : "queued work failed",
               "job", job, "work_id", id, "error", e.message, "detail", e.log_detail, NULL);
        if (give_up) {
            struct rs_tx tx;
            rs_error_init(&e);
            if (rs_tx_begin(ctx, &tx, &e) == 0) {
                int t = ctx->store->ops->work_take(tx.conn, items[i].id, &e);
                if (t == 0 || t == -RS_ENOTFOUND)
                    t = rs_tx_commit(&tx, &e);
                else
                    rs_tx_abort(&tx);
            }
        }
    }
    rs_works_free(items, n);
}

static void job_resets(struct rs_ctx *ctx)
{
    work_drain(ctx, "resets", RS_WORK_FORGOT_PASSWORD, rs_svc_forgot_password_work);
}

/* --- mail --- */

static int64_t retry_delay(int attempts)
{
    int64_t d = RETRY_BASE_MS;
    for (int i = 1; i < attempts && d < RETRY_MAX_MS; i++)
        d *= 2;
    return d < RETRY_MAX_MS ? d : RETRY_MAX_MS;
}

/* Records the outcome of one delivery on the writer (autocommit). */
static void mail_record(struct rs_ctx *ctx, const struct rs_mail *m, bool sent,
                        const struct rs_error *send_err)
{
    struct rs_error err;
    rs_error_init(&err);
    struct rs_conn *c = ctx->store->ops->acquire(ctx->store, RS_CONN_WRITE, &err);
    if (!c) {
        log_error("mail", "record delivery", &err);
        return;
    }
    int64_t now = rs_ctx_now(ctx);
    char id[24];
    snprintf(id, sizeof(id), "%lld", (long long)m->id);
    int r;
    if (sent) {
        r = ctx->store->ops->mail_mark_sent(c, m->id, now, &err);
    } else {
        int attempts = m->attempts + 1;
        bool give_up = now - m->created_at > GIVE_UP_MS;
        r = ctx->store->ops->mail_mark_retry(c, m->id, attempts, now + retry_delay(attempts),
                                             send_err->message, give_up, &err);
        char n[16];
        snprintf(n, sizeof(n), "%d", attempts);
        rs_log(give_up ? RS_LOG_ERROR : RS_LOG_WARN,
               give_up ? "mail given up" : "mail not sent; will retry", "mail_id", id, "kind",
               m->kind, "attempts", n, "error", send_err->message, "detail",
               send_err->log_detail, NULL);
    }
    ctx->store->ops->release(c);
    if (r < 0) {
        log_error("mail", sent ? "mark sent" : "mark retry", &err);
        if (sent)
            rs_log(RS_LOG_ERROR, "mail sent but not marked sent; it may be sent again",
                   "mail_id", id, NULL);
    }
}

static void job_mail(struct rs_ctx *ctx)
{
    struct rs_error err;
    rs_error_init(&err);
    struct rs_conn *c = rs_ctx_read_conn(ctx, &err);
    if (!c) {
        log_error("mail", "connect", &err);
        return;
    }
    struct rs_mail *items = NULL;
    size_t n = 0;
    int r = ctx->store->ops->mail_due(c, rs_ctx_now(ctx), MAIL_BATCH, &items, &n, &err);
    if (r < 0) {
        rs_ctx_release(ctx);
        log_error("mail", "list due mail", &err);
        return;
    }
    if (n == 0) {
        rs_ctx_release(ctx);
        rs_mails_free(items, n); /* a backend may hand back an empty array */
        return;
    }
    struct rs_notify_settings ns;
    r = rs_notify_settings_load(ctx, c, &ns, &err);
    rs_ctx_release(ctx);
    if (r < 0) {
        log_error("mail", "load settings", &err);
        rs_mails_free(items, n);
        return;
    }
    struct rs_smtp_params sp;
    int pr = rs_smtp_params_init(&ns, &sp, &err);
    uint64_t renewed = rs_mono_ns();
    for (size_t i = 0; i < n && !stopping(); i++) {
        struct rs_error se;
        rs_error_init(&se);
        if (pr < 0) {
            /* Settings unusable: every message waits (and counts an attempt). */
            se = err;
        } else {
            /* Each send holds the lease for longer than the SMTP timeout, so
             * no other process can take it and send the same mail meanwhile;
             * if another process took it, stop: it sends the rest. */
            int64_t hold = (int64_t)sp.cfg.timeout_ms * 2 + LEASE_MS;
            if (rs_mono_ns() - renewed > (uint64_t)LEASE_RENEW_MS * 1000000u ||
                hold > LEASE_MS) {
                if (!lease_take_ms(ctx, "mail", hold))
                    break;
                renewed = rs_mono_ns();
            }
            r = rs_smtp_send(&sp.cfg, items[i].to_addr, items[i].message, &se);
        }
        mail_record(ctx, &items[i], pr == 0 && r == 0, &se);
    }
    if (pr == 0)
        rs_smtp_params_release(&sp);
    rs_notify_settings_release(&ns);
    rs_mails_free(items, n);
}

/* --- expiry --- */

static int expiry_one(struct rs_ctx *ctx, const struct rs_auth_settings *as, int64_t user_id,
                      int64_t changed_before, struct rs_error *err)
{
    const struct rs_store_ops *ops = ctx->store->ops;
    struct rs_tx tx;
    int r = rs_tx_begin(ctx, &tx, err);
    if (r < 0)
        return r;
    struct rs_credential cr;
    struct rs_user u;
    bool have_cr = false, have_u = false;
    r = ops->cred_get_for_update(tx.conn, user_id, &cr, err);
    if (r < 0)
        goto done;
    have_cr = true;
    r = ops->user_get(tx.conn, user_id, &u, err);
    if (r < 0)
        goto done;
    have_u = true;
    /* Judged again under the row lock: another process may have just sent it,
     * or the password changed. */
    if (u.status != RS_STATUS_ACTIVE || !cr.password_hash[0] ||
        cr.password_changed_at > changed_before || cr.expiry_notice_at >= cr.password_changed_at)
        goto done;
    int64_t now = rs_ctx_now(ctx);
    int64_t expires = cr.password_changed_at + (int64_t)as->password.max_age_days * DAY_MS;
    int64_t left_ms = expires - now;
    int64_t days_left = left_ms <= 0 ? 0 : (left_ms + DAY_MS - 1) / DAY_MS;
    char expires_at[RS_TIME_STR_MAX], days[24];
    rs_time_format(expires, expires_at);
    snprintf(days, sizeof(days), "%lld", (long long)days_left);
    const char *extra[] = {"expires_at", expires_at, "days_left", days, NULL};
    r = rs_outbox_queue(&tx, RS_MAIL_EXPIRY_NOTICE, &u, extra, err);
    if (r < 0)
        goto done;
    cr.expiry_notice_at = now;
    r = ops->cred_put(tx.conn, &cr, err);
    if (r < 0)
        goto done;
    char *after = rs_json_text(json_pack("{s:s, s:I}", "expires_at", expires_at, "days_left",
                                         (json_int_t)days_left));
    r = rs_tx_audit(&tx, "auth.expiry_notice", "user", user_id, NULL, after, NULL, err);
    free(after);
done:
    if (r == 0)
        r = rs_tx_commit(&tx, err);
    else
        rs_tx_abort(&tx);
    if (have_cr)
        rs_credential_release(&cr);
    if (have_u)
        rs_user_release(&u);
    return r == -RS_ENOTFOUND ? 0 : r;
}

static void job_expiry(struct rs_ctx *ctx)
{
    struct rs_error err;
    rs_error_init(&err);
    struct rs_conn *c = rs_ctx_read_conn(ctx, &err);
    if (!c) {
        log_error("expiry", "connect", &err);
        return;
    }
    struct rs_auth_settings as;
    int r = rs_auth_settings_load(ctx, c, &as, &err);
    if (r < 0) {
        rs_ctx_release(ctx);
        log_error("expiry", "load settings", &err);
        return;
    }
    int64_t *ids = NULL;
    size_t n = 0;
    int64_t changed_before = 0;
    if (as.password.max_age_days > 0) {
        changed_before = rs_ctx_now(ctx) -
                         (int64_t)(as.password.max_age_days - as.password.expiry_notice_days) *
                             DAY_MS;
        r = ctx->store->ops->cred_expiring(c, changed_before, USER_BATCH, &ids, &n, &err);
        if (r < 0)
            log_error("expiry", "list users", &err);
    }
    rs_ctx_release(ctx);
    for (size_t i = 0; r == 0 && i < n && !stopping(); i++) {
        struct rs_error e;
        rs_error_init(&e);
        if (expiry_one(ctx, &as, ids[i], changed_before, &e) < 0) {
            char id[24];
            snprintf(id, sizeof(id), "%lld", (long long)ids[i]);
            rs_log(RS_LOG_ERROR, "expiry notice failed", "user_id", id, "error", e.message,
                   "detail", e.log_detail, NULL);
        }
    }
    free(ids);
    rs_auth_settings_release(&as);
}

/* --- locks --- */

static void job_locks(struct rs_ctx *ctx)
{
    struct rs_error err;
    rs_error_init(&err);
    struct rs_conn *c = rs_ctx_read_conn(ctx, &err);
    if (!c) {
        log_error("locks", "connect", &err);
        return;
    }
    int64_t *ids = NULL;
    size_t n = 0;
    int r = ctx->store->ops->cred_lock_expired(c, rs_ctx_now(ctx), USER_BATCH, &ids, &n, &err);
    rs_ctx_release(ctx);
    if (r < 0) {
        log_error("locks", "list users", &err);
        return;
    }
    for (size_t i = 0; i < n && !stopping(); i++) {
        struct rs_error e;
        rs_error_init(&e);
        if (rs_svc_lockout_expire(ctx, ids[i], &e) < 0) {
            char id[24];
            snprintf(id, sizeof(id), "%lld", (long long)ids[i]);
            rs_log(RS_LOG_ERROR, "lockout expiry failed", "user_id", id, "error", e.message,
                   "detail", e.log_detail, NULL);
        }
    }
    free(ids);
}

/* --- sessions --- */

static void job_sessions(struct rs_ctx *ctx)
{
    struct rs_error err;
    rs_error_init(&err);
    struct rs_conn *c = rs_ctx_read_conn(ctx, &err);
    if (!c) {
        log_error("sessions", "connect", &err);
        return;
    }
    struct rs_auth_settings as;
    int r = rs_auth_settings_load(ctx, c, &as, &err);
    rs_ctx_release(ctx);
    if (r < 0) {
        log_error("sessions", "load settings", &err);
        return;
    }
    int64_t now = rs_ctx_now(ctx);
    int64_t idle_before = now - (int64_t)as.sessions.idle_timeout_minutes * 60000;
    /* Failure and request counters outlive their window by an hour at least. */
    int64_t keep_ms = (int64_t)as.throttle.ip_window_seconds * 1000 + 3600000;
    if (keep_ms < 2 * 3600000)
        keep_ms = 2 * 3600000;
    rs_auth_settings_release(&as);
    struct rs_tx tx;
    int purged = 0;
    r = rs_tx_begin(ctx, &tx, &err);
    if (r == 0) {
        r = ctx->store->ops->session_purge(tx.conn, now, idle_before, &purged, &err);
        if (r == 0)
            r = ctx->store->ops->rate_purge(tx.conn, now - keep_ms, &err);
        if (r == 0)
            r = rs_tx_commit(&tx, &err);
        else
            rs_tx_abort(&tx);
    }
    if (r < 0) {
        log_error("sessions", "purge", &err);
    } else if (purged > 0) {
        char n[16];
        snprintf(n, sizeof(n), "%d", purged);
        rs_log(RS_LOG_INFO, "sessions purged", "count", n, NULL);
    }
}

/* --- the pass and the thread --- */

static const struct {
    const char *name;
    void (*run)(struct rs_ctx *ctx);
} jobs[] = {
    {"resets", job_resets}, /* before mail: a reset's mail goes in the same pass */
    {"mail", job_mail},
    {"expiry", job_expiry},
    {"locks", job_locks},
    {"sessions", job_sessions},
};

void rs_jobs_run_once(struct rs_store *store)
{
    pthread_once(&owner_once, owner_init);
    for (size_t i = 0; i < RS_ARRAY_LEN(jobs) && !stopping(); i++) {
        struct rs_ctx ctx;
        rs_ctx_init(&ctx, store);
        snprintf(ctx.request_id, sizeof(ctx.request_id), "job-%s", jobs[i].name);
        if (lease_take(&ctx, jobs[i].name)) {
            jobs[i].run(&ctx);
            rs_ctx_release(&ctx);
            lease_give_back(&ctx, jobs[i].name);
        }
        rs_ctx_release(&ctx);
    }
}

static void *jobs_main(void *arg)
{
    (void)arg;
    pthread_setname_np(pthread_self(), "roster-jobs");
    pthread_mutex_lock(&jobs_lock);
    while (!stopping()) {
        bool run = !jobs_paused;
        jobs_in_pass = run;
        pthread_mutex_unlock(&jobs_lock);
        if (run)
            rs_jobs_run_once(jobs_store);
        pthread_mutex_lock(&jobs_lock);
        jobs_in_pass = false;
        pthread_cond_broadcast(&jobs_idle);
        if (stopping())
            break;
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_sec += jobs_interval_ms / 1000;
        until.tv_nsec += (long)(jobs_interval_ms % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        while (!stopping() && !jobs_woken &&
               pthread_cond_timedwait(&jobs_cond, &jobs_lock, &until) != ETIMEDOUT)
            ;
        jobs_woken = false;
    }
    pthread_mutex_unlock(&jobs_lock);
    return NULL;
}

static int interval_from_env(int dflt)
{
    const char *v = getenv("ROSTER_JOBS_INTERVAL_MS");
    if (!v || !*v)
        return dflt;
    char *end = NULL;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (errno || *end || n < 10 || n > 3600000) {
        rs_log(RS_LOG_WARN, "ROSTER_JOBS_INTERVAL_MS ignored: not a number of ms from 10 to "
               "3600000", "value", v, NULL);
        return dflt;
    }
    return (int)n;
}

int rs_jobs_start(const struct rs_jobs_config *cfg, struct rs_error *err)
{
    pthread_once(&owner_once, owner_init);
    pthread_mutex_lock(&jobs_lock);
    if (jobs_running) {
        pthread_mutex_unlock(&jobs_lock);
        return rs_error_set(err, RS_EINTERNAL, "the background jobs are already running");
    }
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&jobs_cond, &ca);
    pthread_condattr_destroy(&ca);
    jobs_store = cfg->store;
    jobs_interval_ms = interval_from_env(cfg->interval_ms > 0 ? cfg->interval_ms
                                                             : DEFAULT_INTERVAL_MS);
    __atomic_store_n(&jobs_stopping, false, __ATOMIC_RELAXED);
    int e = pthread_create(&jobs_thread, NULL, jobs_main, NULL);
    if (e != 0) {
        pthread_cond_destroy(&jobs_cond);
        pthread_mutex_unlock(&jobs_lock);
        return rs_error_set(err, RS_EINTERNAL, "could not start the background jobs thread: %s",
                            strerror(e));
    }
    jobs_running = true;
    pthread_mutex_unlock(&jobs_lock);
    char iv[16];
    snprintf(iv, sizeof(iv), "%d", jobs_interval_ms);
    rs_log(RS_LOG_INFO, "background jobs started", "interval_ms", iv, "owner", lease_owner, NULL);
    return 0;
}

void rs_jobs_pause(bool paused)
{
    pthread_mutex_lock(&jobs_lock);
    jobs_paused = paused;
    if (jobs_running && !paused) {
        jobs_woken = true;
        pthread_cond_signal(&jobs_cond);
    }
    /* Pausing returns once a pass under way has ended: no pass after this. */
    while (paused && jobs_in_pass)
        pthread_cond_wait(&jobs_idle, &jobs_lock);
    pthread_mutex_unlock(&jobs_lock);
}

void rs_jobs_wake(void)
{
    pthread_mutex_lock(&jobs_lock);
    if (jobs_running) {
        jobs_woken = true;
        pthread_cond_signal(&jobs_cond);
    }
    pthread_mutex_unlock(&jobs_lock);
}

void rs_jobs_stop(void)
{
    pthread_mutex_lock(&jobs_lock);
    if (!jobs_running) {
        pthread_mutex_unlock(&jobs_lock);
        return;
    }
    __atomic_store_n(&jobs_stopping, true, __ATOMIC_RELAXED);
    pthread_cond_signal(&jobs_cond);
    pthread_mutex_unlock(&jobs_lock);
    pthread_join(jobs_thread, NULL);
    pthread_mutex_lock(&jobs_lock);
    jobs_running = false;
    pthread_cond_destroy(&jobs_cond);
    __atomic_store_n(&jobs_stopping, false, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&jobs_lock);
}
