/* postgres.c: the PostgreSQL backend of store.h, over libpq. A fixed-size pool
 * of connections opened lazily (the first eagerly, to fail fast at start) and
 * shared by all threads; every statement is parameterised, text format except
 * the API key hash, which travels as binary. */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <time.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "pq_dl.h"

#include "store.h"
#include "../util/util.h"

#define PG_POOL_DEFAULT 8
#define PG_ACQUIRE_TIMEOUT_MS 5000
#define PG_CONNECT_TIMEOUT_S "5"
#define PG_MAX_PARAMS 48
#define PG_SQL_MAX (64 * 1024)
/* pg_advisory_xact_lock key that serialises migrations across processes
 * ("roster" in ASCII). */
#define PG_MIGRATE_LOCK_KEY "125779893093746"

/* ---- pool -------------------------------------------------------------- */

enum pg_slot_state { PG_SLOT_EMPTY, PG_SLOT_IDLE, PG_SLOT_BUSY };

struct pg_store;

/* What a struct rs_conn * really points to (never defined as rs_conn here:
 * sqlite.c has its own and both link into one binary). */
/* Statements prepared on one connection (see pg_run). */
#define PG_PREP_MAX 96
#define PG_PREP_SQL_MAX 4096

struct pg_prepared {
    uint64_t hash;
    char *sql;
};

struct pg_conn {
    struct pg_store *store;
    PGconn *pq; /* NULL while the slot is empty */
    enum pg_slot_state state;
    struct pg_prepared prep[PG_PREP_MAX]; /* valid for this pq only */
    int nprep;
};

/* Forgets the connection's prepared statements (a new or reset session has none). */
static void prep_forget(struct pg_conn *c)
{
    for (int i = 0; i < c->nprep; i++)
        free(c->prep[i].sql);
    c->nprep = 0;
}

struct pg_store {
    struct rs_store base;
    char *url;  /* may hold a password: never logged */
    char *host; /* "host:port" for messages */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int size;
    int nopen;
    int nin_use;
    struct pg_conn *conns; /* size slots */
};

static struct pg_conn *to_pg(struct rs_conn *c)
{
    return (struct pg_conn *)c;
}

static struct rs_conn *to_rs(struct pg_conn *c)
{
    return (struct rs_conn *)c;
}

/* ---- errors ------------------------------------------------------------ */

/* First line of a libpq message, for log detail. */
static void log_pq_text(struct rs_error *err, const char *what, const char *text)
{
    if (!text)
        text = "";
    size_t n = strcspn(text, "\n");
    rs_error_log(err, "%s: %.*s", what, (int)n, text);
}

static bool sqlstate_unavailable(const char *state)
{
    if (!state)
        return false;
    /* 08: connection exception; 57P01..03: admin shutdown, crash shutdown,
     * cannot connect now (server starting or stopping). */
    return strncmp(state, "08", 2) == 0 || strcmp(state, "57P01") == 0 ||
           strcmp(state, "57P02") == 0 || strcmp(state, "57P03") == 0;
}

/* Maps a failed result (res may be NULL) to -code with err filled. u, when
 * given, names the user whose write may have hit a uniqueness rule. */
static int pg_fail(struct pg_conn *c, PGresult *res, const struct rs_user *u, const char *what,
                   struct rs_error *err)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *text = res ? PQresultErrorMessage(res) : PQerrorMessage(c->pq);
    if (!text || !*text)
        text = PQerrorMessage(c->pq);

    if (PQstatus(c->pq) != CONNECTION_OK || sqlstate_unavailable(state)) {
        log_pq_text(err, what, text);
        return rs_error_set(err, RS_EUNAVAILABLE, "database unavailable");
    }
    const char *cons = res ? PQresultErrorField(res, PG_DIAG_CONSTRAINT_NAME) : NULL;
    if (state && strcmp(state, "23503") == 0 && cons && strcmp(cons, "users_manager_id_fkey") == 0)
        return rs_error_field(err, RS_EVALIDATION, "manager_id", "exists",
                              "manager_id must name an existing user");
    if (state && strcmp(state, "23505") == 0) {
        if (u && cons && strcmp(cons, "users_username_key") == 0)
            return rs_error_field(err, RS_ECONFLICT, "username", "unique",
                                  "username \"%s\" is already taken",
                                  u->username ? u->username : "");
        if (u && cons && strcmp(cons, "users_email_key") == 0)
            return rs_error_field(err, RS_ECONFLICT, "email", "unique",
                                  "email \"%s\" is already in use", u->email ? u->email : "");
        if (u && cons && strcmp(cons, "users_employee_id_key") == 0)
            return rs_error_field(err, RS_ECONFLICT, "employee_id", "unique",
                                  "employee_id \"%s\" is already in use",
                                  u->employee_id ? u->employee_id : "");
        if (cons && strcmp(cons, "custom_fields_key") == 0)
            return rs_error_field(err, RS_ECONFLICT, "key", "unique",
                                  "a custom field with this key exists");
        if (cons && (strcmp(cons, "roles_key") == 0 || strcmp(cons, "resources_key") == 0))
            return rs_error_field(err, RS_ECONFLICT, "key", "unique", "this key is taken");
        if (cons && strcmp(cons, "groups_name_key") == 0)
            return rs_error_field(err, RS_ECONFLICT, "name", "unique",
                                  "a group with this name exists");
        log_pq_text(err, what, text);
        return rs_error_set(err, RS_ECONFLICT, "the record conflicts with an existing one");
    }
    log_pq_text(err, what, text);
    return rs_error_set(err, RS_EINTERNAL, "database error");
}

static int bad_data(const char *what, struct rs_error *err)
{
    rs_error_log(err, "unexpected value in %s", what);
    return rs_error_set(err, RS_EINTERNAL, "database error");
}

/* ---- parameters and statements ------------------------------------------ */

struct pg_params {
    int n;
    const char *vals[PG_MAX_PARAMS];
    int lens[PG_MAX_PARAMS];
    int fmts[PG_MAX_PARAMS];
    char ints[PG_MAX_PARAMS][24];
};

static int pp_add(struct pg_params *p, const char *v, int len, int fmt)
{
    if (p->n >= PG_MAX_PARAMS)
        abort(); /* a bug in this file: statements have a fixed shape */
    p->vals[p->n] = v;
    p->lens[p->n] = len;
    p->fmts[p->n] = fmt;
    return ++p->n;
}

/* Each returns the parameter's number ($n). */
static int pp_text(struct pg_params *p, const char *s)
{
    return pp_add(p, s, 0, 0);
}

static int pp_int(struct pg_params *p, int64_t v)
{
    int i = p->n;
    if (i >= PG_MAX_PARAMS)
        abort();
    snprintf(p->ints[i], sizeof(p->ints[i]), "%" PRId64, v);
    return pp_add(p, p->ints[i], 0, 0);
}

/* 0 is written as SQL NULL (optional times and ids). */
static int pp_int_or_null(struct pg_params *p, int64_t v)
{
    return v ? pp_int(p, v) : pp_add(p, NULL, 0, 0);
}

static int pp_bytes(struct pg_params *p, const unsigned char *b, int len)
{
    return pp_add(p, (const char *)b, len, 1);
}

/* Runs sql with the first nparams of p (p may be NULL). Returns 0 and *ret
 * (caller PQclear()s it) on success, or -code with err filled. */
static uint64_t sql_hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

/* The name of sql's prepared statement on c, preparing it on first use;
 * NULL when it is not (or cannot be) prepared: then it runs unprepared. */
static const char *prepared_name(struct pg_conn *c, const char *sql, int nparams, char name[16])
{
    if (strlen(sql) > PG_PREP_SQL_MAX)
        return NULL;
    uint64_t h = sql_hash(sql);
    for (int i = 0; i < c->nprep; i++) {
        if (c->prep[i].hash == h && strcmp(c->prep[i].sql, sql) == 0) {
            snprintf(name, 16, "rs%d", i);
            return name;
        }
    }
    /* A failed transaction refuses everything until it ends; prepare later. */
    if (c->nprep == PG_PREP_MAX || PQtransactionStatus(c->pq) == PQTRANS_INERROR)
        return NULL;
    snprintf(name, 16, "rs%d", c->nprep);
    PGresult *res = PQprepare(c->pq, name, sql, nparams, NULL);
    bool ok = res && PQresultStatus(res) == PGRES_COMMAND_OK;
    PQclear(res);
    if (!ok)
        return NULL; /* run unprepared: its error, if any, is reported there */
    c->prep[c->nprep].hash = h;
    c->prep[c->nprep].sql = rs_xstrdup(sql);
    c->nprep++;
    return name;
}

static int pg_run_named(struct pg_conn *c, const char *sql, const char *stmt_name,
                   const struct pg_params *p, int nparams, const struct rs_user *u,
                   PGresult **ret, struct rs_error *err);

/* A built list query: its plan depends on the values (a department of 979
 * users or of 179,783), so it is planned for each run, not prepared. */
static int pg_run_unprepared(struct pg_conn *c, const char *sql, const struct pg_params *p,
                             int nparams, const struct rs_user *u, PGresult **ret,
                             struct rs_error *err)
{
    return pg_run_named(c, sql, NULL, p, nparams, u, ret, err);
}

/* Runs sql with parameters. Each distinct statement text is prepared once
 * per connection (parsed and planned once, generic plans after PostgreSQL's
 * first five runs), up to PG_PREP_MAX of them: the fixed statements and the
 * common shapes of built list queries. */
static int pg_run(struct pg_conn *c, const char *sql, const struct pg_params *p, int nparams,
                  const struct rs_user *u, PGresult **ret, struct rs_error *err)
{
    char name[16];
    return pg_run_named(c, sql, prepared_name(c, sql, nparams, name), p, nparams, u, ret, err);
}

static int pg_run_named(struct pg_conn *c, const char *sql, const char *stmt_name,
                   const struct pg_params *p, int nparams, const struct rs_user *u,
                   PGresult **ret, struct rs_error *err)
{
    PGresult *res =
        stmt_name ? PQexecPrepared(c->pq, stmt_name, nparams, p ? p->vals : NULL,
                                   p ? p->lens : NULL, p ? p->fmts : NULL, 0)
                  : PQexecParams(c->pq, sql, nparams, NULL, p ? p->vals : NULL,
                                 p ? p->lens : NULL, p ? p->fmts : NULL, 0);
    ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
        int rc = pg_fail(c, res, u, "query", err);
        PQclear(res);
        return rc;
    }
    *ret = res;
    return 0;
}

/* A statement without parameters and without rows wanted (BEGIN, DDL). */
static int pg_simple(struct pg_conn *c, const char *sql, const char *what, struct rs_error *err)
{
    PGresult *res = PQexec(c->pq, sql);
    ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    int rc = 0;
    if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK)
        rc = pg_fail(c, res, NULL, what, err);
    PQclear(res);
    return rc;
}

static int parse_i64(const char *s, int64_t *ret)
{
    if (!s || !*s)
        return -1;
    errno = 0;
    char *end;
    long long v = strtoll(s, &end, 10);
    if (errno || *end)
        return -1;
    *ret = v;
    return 0;
}

/* Integer column; SQL NULL reads as 0. */
static int get_i64(PGresult *r, int row, int col, int64_t *ret)
{
    if (PQgetisnull(r, row, col)) {
        *ret = 0;
        return 0;
    }
    return parse_i64(PQgetvalue(r, row, col), ret);
}

/* Text column as a new string, or NULL for SQL NULL. */
static char *get_str(PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? NULL : rs_xstrdup(PQgetvalue(r, row, col));
}

/* A growable SQL text (capped: statements are built only from this file's
 * fragments, so an overflow is a bug). */
struct pg_sql {
    char *buf;
    size_t len;
    size_t cap;
};

static void sql_add(struct pg_sql *b, const char *fmt, ...) RS_PRINTF(2, 3);
static void sql_add(struct pg_sql *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || b->len + (size_t)n + 1 > PG_SQL_MAX)
        abort();
    if (b->len + (size_t)n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 512;
        while (cap < b->len + (size_t)n + 1)
            cap *= 2;
        b->buf = rs_xrealloc(b->buf, cap);
        b->cap = cap;
    }
    va_start(ap, fmt);
    vsnprintf(b->buf + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

/* ---- pool operations ---------------------------------------------------- */

/* Server NOTICEs ("relation already exists, skipping") would go to stderr;
 * libraries don't log. */
static void ignore_notice(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

/* Whether an idle connection is still alive, without a round trip: a backend
 * that was terminated or a server that restarted has closed the socket, and
 * reading what is pending (libpq sockets never block) notices that. */
static bool conn_alive(PGconn *pq)
{
    if (PQstatus(pq) != CONNECTION_OK)
        return false;
    /* An idle connection has nothing to read; a dying backend sends its
     * FATAL message and then closes, which may take two reads to see. */
    for (int i = 0; i < 4; i++) {
        struct pollfd pfd = {.fd = PQsocket(pq), .events = POLLIN};
        if (pfd.fd < 0 || poll(&pfd, 1, 0) <= 0)
            break;
        if (!PQconsumeInput(pq))
            return false;
        PGnotify *n;
        while ((n = PQnotifies(pq)))
            PQfreemem(n);
    }
    return PQstatus(pq) == CONNECTION_OK;
}

/* Settings every new or reset connection gets. */
static int conn_setup(PGconn *pq, struct rs_error *err)
{
    PQsetNoticeProcessor(pq, ignore_notice, NULL);
    if (PQsetClientEncoding(pq, "UTF8") != 0) {
        log_pq_text(err, "set client encoding", PQerrorMessage(pq));
        return -RS_EUNAVAILABLE;
    }
    return 0;
}

static PGconn *pg_connect(struct pg_store *s, struct rs_error *err)
{
    /* The URL is used as given; keywords before it are only defaults, so a
     * connect_timeout in the URL wins. Without one libpq waits for TCP to
     * give up (minutes) on a host that drops packets. */
    static const char *const keys[] = {"connect_timeout", "dbname", NULL};
    const char *const vals[] = {PG_CONNECT_TIMEOUT_S, s->url, NULL};
    PGconn *pq = PQconnectdbParams(keys, vals, 1);
    if (!pq || PQstatus(pq) != CONNECTION_OK) {
        log_pq_text(err, "connect", pq ? PQerrorMessage(pq) : "out of memory");
        rs_error_set(err, RS_EUNAVAILABLE, "database unavailable: could not connect to %s",
                     s->host);
        PQfinish(pq);
        return NULL;
    }
    if (conn_setup(pq, err)) {
        rs_error_set(err, RS_EUNAVAILABLE, "database unavailable: could not connect to %s",
                     s->host);
        PQfinish(pq);
        return NULL;
    }
    return pq;
}

/* Takes a slot under s->mu: an idle connection first, else an empty slot to
 * fill. Waits up to the acquire timeout. NULL on timeout. */
static struct pg_conn *pool_take(struct pg_store *s)
{
    struct timespec deadline;
    rs_deadline_ms(&deadline, PG_ACQUIRE_TIMEOUT_MS);
    pthread_mutex_lock(&s->mu);
    struct pg_conn *got = NULL;
    for (;;) {
        struct pg_conn *empty = NULL;
        for (int i = 0; i < s->size && !got; i++) {
            if (s->conns[i].state == PG_SLOT_IDLE)
                got = &s->conns[i];
            else if (s->conns[i].state == PG_SLOT_EMPTY && !empty)
                empty = &s->conns[i];
        }
        if (!got)
            got = empty;
        if (got)
            break;
        if (pthread_cond_timedwait(&s->cv, &s->mu, &deadline) == ETIMEDOUT)
            break;
    }
    if (got) {
        got->state = PG_SLOT_BUSY;
        s->nin_use++;
    }
    pthread_mutex_unlock(&s->mu);
    return got;
}

/* Gives a slot back; drops its connection when it is unusable. */
static void pool_put(struct pg_store *s, struct pg_conn *c, bool drop)
{
    PGconn *to_close = NULL;
    pthread_mutex_lock(&s->mu);
    if (drop && c->pq) {
        to_close = c->pq;
        c->pq = NULL;
        prep_forget(c);
        s->nopen--;
    }
    c->state = c->pq ? PG_SLOT_IDLE : PG_SLOT_EMPTY;
    s->nin_use--;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    PQfinish(to_close);
}

static struct rs_conn *pg_acquire(struct rs_store *store, enum rs_conn_kind kind,
                                  struct rs_error *err)
{
    struct pg_store *s = (struct pg_store *)store;
    (void)kind; /* reads and writes share one pool */
    struct pg_conn *c = pool_take(s);
    if (!c) {
        rs_error_log(err, "no free PostgreSQL connection after %d ms (pool size %d)",
                     PG_ACQUIRE_TIMEOUT_MS, s->size);
        rs_error_set(err, RS_EUNAVAILABLE, "database unavailable");
        return NULL;
    }
    if (!c->pq) {
        PGconn *pq = pg_connect(s, err);
        if (!pq) {
            pool_put(s, c, false);
            return NULL;
        }
        pthread_mutex_lock(&s->mu);
        prep_forget(c);
        c->pq = pq;
        s->nopen++;
        pthread_mutex_unlock(&s->mu);
    } else if (!conn_alive(c->pq)) {
        prep_forget(c);
        PQreset(c->pq);
        if (PQstatus(c->pq) != CONNECTION_OK) {
            log_pq_text(err, "reconnect", PQerrorMessage(c->pq));
            rs_error_set(err, RS_EUNAVAILABLE, "database unavailable");
            pool_put(s, c, true);
            return NULL;
        }
        if (conn_setup(c->pq, err)) {
            rs_error_set(err, RS_EUNAVAILABLE, "database unavailable");
            pool_put(s, c, true);
            return NULL;
        }
    }
    return to_rs(c);
}

static void pg_release(struct rs_conn *rc)
{
    if (!rc)
        return;
    struct pg_conn *c = to_pg(rc);
    bool drop = PQstatus(c->pq) != CONNECTION_OK;
    PGTransactionStatusType ts = PQtransactionStatus(c->pq);
    if (!drop && (ts == PQTRANS_INTRANS || ts == PQTRANS_INERROR)) {
        /* A caller left a transaction open: never hand it to the next one. */
        PGresult *res = PQexec(c->pq, "ROLLBACK");
        drop = !res || PQresultStatus(res) != PGRES_COMMAND_OK;
        PQclear(res);
    } else if (ts == PQTRANS_ACTIVE || ts == PQTRANS_UNKNOWN) {
        drop = true;
    }
    pool_put(c->store, c, drop);
}

static void pg_stats(struct rs_store *store, struct rs_store_stats *ret)
{
    struct pg_store *s = (struct pg_store *)store;
    pthread_mutex_lock(&s->mu);
    ret->conns_open = s->nopen;
    ret->conns_in_use = s->nin_use;
    pthread_mutex_unlock(&s->mu);
}

static void pg_close(struct rs_store *store)
{
    struct pg_store *s = (struct pg_store *)store;
    if (!s)
        return;
    for (int i = 0; i < s->size; i++) {
        PQfinish(s->conns[i].pq);
        prep_forget(&s->conns[i]);
    }
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    free(s->conns);
    free(s->url);
    free(s->host);
    free(s);
}

/* ---- transactions ------------------------------------------------------- */

static int pg_ping(struct rs_conn *rc, struct rs_error *err)
{
    return pg_simple(to_pg(rc), "SELECT 1", "ping", err);
}

static int pg_begin(struct rs_conn *rc, struct rs_error *err)
{
    return pg_simple(to_pg(rc), "BEGIN", "begin", err);
}

static int pg_commit(struct rs_conn *rc, struct rs_error *err)
{
    struct pg_conn *c = to_pg(rc);
    PGresult *res = PQexec(c->pq, "COMMIT");
    int rc2 = 0;
    if (!res || PQresultStatus(res) != PGRES_COMMAND_OK) {
        rc2 = pg_fail(c, res, NULL, "commit", err);
    } else if (strcmp(PQcmdStatus(res), "COMMIT") != 0) {
        /* COMMIT of a failed transaction succeeds as ROLLBACK. */
        rs_error_log(err, "commit: transaction was rolled back (%s)", PQcmdStatus(res));
        rc2 = rs_error_set(err, RS_EINTERNAL, "database error");
    }
    PQclear(res);
    return rc2;
}

static void pg_rollback(struct rs_conn *rc)
{
    PQclear(PQexec(to_pg(rc)->pq, "ROLLBACK"));
}

/* ---- migrations --------------------------------------------------------- */

static int migration_applied(struct pg_conn *c, int version, bool *ret, struct rs_error *err)
{
    struct pg_params p = {0};
    pp_int(&p, version);
    PGresult *res = NULL;
    int rc =
        pg_run(c, "SELECT 1 FROM schema_migrations WHERE version = $1", &p, p.n, NULL, &res, err);
    if (rc == 0)
        *ret = PQntuples(res) > 0;
    PQclear(res);
    return rc;
}

/* Applies one migration in its own transaction, unless another process has
 * (the advisory lock serialises them; the check runs under it). */
static int migrate_one(struct pg_conn *c, const struct rs_migration *m, bool *ret_applied,
                       struct rs_error *err)
{
    bool done = false;
    int rc = pg_simple(c, "BEGIN", "migrate", err);
    if (rc)
        return rc;
    rc = pg_simple(c, "SELECT pg_advisory_xact_lock(" PG_MIGRATE_LOCK_KEY ")", "migrate lock", err);
    if (rc)
        goto out;
    rc = migration_applied(c, m->version, &done, err);
    if (rc || done)
        goto out;
    PGresult *res = PQexec(c->pq, m->sql);
    ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        rs_error_log(err, "migration %04d_%s failed", m->version, m->name);
        rc = pg_fail(c, res, NULL, "migrate", err);
        PQclear(res);
        goto out;
    }
    PQclear(res);
    res = NULL;
    struct pg_params p = {0};
    pp_int(&p, m->version);
    pp_text(&p, m->name);
    pp_int(&p, rs_wall_ms());
    rc = pg_run(c, "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
                &p, p.n, NULL, &res, err);
    PQclear(res);
    if (rc)
        goto out;
    rc = pg_commit(to_rs(c), err);
    if (rc == 0)
        *ret_applied = true;
    return rc;
out:
    pg_rollback(to_rs(c));
    return rc;
}

static int pg_migrate(struct rs_store *store, int *ret_applied, struct rs_error *err)
{
    struct rs_conn *rc_conn = pg_acquire(store, RS_CONN_WRITE, err);
    if (!rc_conn)
        return -RS_EUNAVAILABLE;
    struct pg_conn *c = to_pg(rc_conn);
    int applied = 0;
    size_t n = 0;
    const struct rs_migration *ms = rs_migrations("postgres", &n);

    /* The table itself, under the same lock: concurrent CREATE TABLE IF NOT
     * EXISTS can otherwise fail on the catalog's unique index. */
    int rc = pg_simple(c, "BEGIN", "migrate", err);
    if (rc)
        goto out;
    rc = pg_simple(c, "SELECT pg_advisory_xact_lock(" PG_MIGRATE_LOCK_KEY ")", "migrate lock", err);
    if (rc == 0)
        rc = pg_simple(c,
                       "CREATE TABLE IF NOT EXISTS schema_migrations ("
                       " version INTEGER PRIMARY KEY,"
                       " name TEXT NOT NULL,"
                       " applied_at BIGINT NOT NULL)",
                       "migrate", err);
    if (rc) {
        pg_rollback(rc_conn);
        goto out;
    }
    rc = pg_commit(rc_conn, err);
    if (rc)
        goto out;

    for (size_t i = 0; i < n; i++) {
        bool did = false;
        rc = migrate_one(c, &ms[i], &did, err);
        if (rc)
            goto out;
        applied += did;
    }
    *ret_applied = applied;
out:
    pg_release(rc_conn);
    return rc;
}

static int pg_schema_version(struct rs_store *store, int *ret_version, struct rs_error *err)
{
    struct rs_conn *rc_conn = pg_acquire(store, RS_CONN_READ, err);
    if (!rc_conn)
        return -RS_EUNAVAILABLE;
    struct pg_conn *c = to_pg(rc_conn);
    PGresult *res = NULL;
    int64_t v = 0;
    int rc =
        pg_run(c, "SELECT to_regclass('schema_migrations') IS NOT NULL", NULL, 0, NULL, &res, err);
    if (rc)
        goto out;
    bool exists = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    PQclear(res);
    res = NULL;
    if (exists) {
        rc = pg_run(c, "SELECT coalesce(max(version), 0) FROM schema_migrations", NULL, 0, NULL,
                    &res, err);
        if (rc)
            goto out;
        if (get_i64(res, 0, 0, &v)) {
            rc = bad_data("schema_migrations", err);
            goto out;
        }
    }
    *ret_version = (int)v;
out:
    PQclear(res);
    pg_release(rc_conn);
    return rc;
}

/* ---- users -------------------------------------------------------------- */

#define USER_COLS                                                                                  \
    "id, username, email, first_name, last_name, type, status, created_at, updated_at, version,"   \
    " phone, employee_id, department, position, location, role, manager_id, status_reason,"        \
    " status_note, status_changed_at, custom_json, last_login_at, erased_at"
/* What an insert or update writes, in the order user_params binds it. */
#define USER_WRITE_COLS                                                                            \
    "username, username_key, email, email_key, first_name, last_name, search_key, type, status,"   \
    " phone, employee_id, employee_id_key, department, position, location, role, manager_id,"      \
    " status_reason, status_note, status_changed_at, custom_json, last_login_at, erased_at,"       \
    " updated_at, version"
#define USER_WRITE_VALUES                                                                          \
    "$1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20,"   \
    " $21::jsonb, $22, $23, $24, $25"

/* Optional text: '' in the table is "none". */
static char *get_optional(PGresult *r, int row, int col)
{
    if (PQgetisnull(r, row, col))
        return NULL;
    const char *v = PQgetvalue(r, row, col);
    return *v ? rs_xstrdup(v) : NULL;
}

/* The custom field values. jsonb prints a number without an exponent, so a
 * large real (1e300) comes back as an integer jansson cannot hold; then all
 * numbers are read as reals rather than losing the object. */
static json_t *get_custom(PGresult *r, int row, int col)
{
    if (PQgetisnull(r, row, col))
        return NULL;
    const char *text = PQgetvalue(r, row, col);
    json_t *v = json_loads(text, 0, NULL);
    return v ? v : json_loads(text, JSON_DECODE_INT_AS_REAL, NULL);
}

/* Reads a row of USER_COLS into u (released on failure). */
static int user_from_row(PGresult *r, int row, struct rs_user *ret, struct rs_error *err)
{
    struct rs_user u;
    rs_user_init(&u);
    int bad = get_i64(r, row, 0, &u.id) || get_i64(r, row, 7, &u.created_at) ||
              get_i64(r, row, 8, &u.updated_at) || get_i64(r, row, 9, &u.version) ||
              get_i64(r, row, 16, &u.manager_id) || get_i64(r, row, 19, &u.status_changed_at) ||
              get_i64(r, row, 21, &u.last_login_at) || get_i64(r, row, 22, &u.erased_at) ||
              rs_user_type_parse(PQgetvalue(r, row, 5), &u.type) ||
              rs_user_status_parse(PQgetvalue(r, row, 6), &u.status);
    if (bad) {
        rs_user_release(&u);
        return bad_data("users", err);
    }
    u.username = get_str(r, row, 1);
    u.email = get_str(r, row, 2);
    u.first_name = get_str(r, row, 3);
    u.last_name = get_str(r, row, 4);
    u.phone = get_optional(r, row, 10);
    u.employee_id = get_optional(r, row, 11);
    u.department = get_optional(r, row, 12);
    u.position = get_optional(r, row, 13);
    u.location = get_optional(r, row, 14);
    u.role = get_optional(r, row, 15);
    u.status_reason = get_str(r, row, 17);
    u.status_note = get_str(r, row, 18);
    u.custom = get_custom(r, row, 20);
    *ret = u;
    return 0;
}

/* What a user row stores beside the display values: the folded keys and the
 * custom values as JSON text. */
struct user_keys {
    char *username;
    char *email;
    char *employee_id;
    char *search;
    char *custom; /* NULL: no values */
};

static void user_keys_release(struct user_keys *k)
{
    free(k->username);
    free(k->email);
    free(k->employee_id);
    free(k->search);
    free(k->custom);
}

/* As sqlite.c: the same search key (rs_user_search_key), so both backends
 * match the same rows. */
static int user_keys_make(const struct rs_user *u, struct user_keys *ret, struct rs_error *err)
{
    if (!u->username || !u->email || !u->first_name || !u->last_name) {
        rs_error_log(err, "user write without a required field");
        return rs_error_set(err, RS_EINTERNAL, "internal error");
    }
    const char *employee_id = u->employee_id ? u->employee_id : "";
    struct user_keys k = {0};
    k.username = rs_fold_key(u->username);
    k.email = rs_fold_key(u->email);
    k.employee_id = rs_fold_key(employee_id);
    k.search = rs_user_search_key(u, k.username, k.email, k.employee_id);
    if (!k.username || !k.email || !k.employee_id || !k.search) {
        user_keys_release(&k);
        return rs_error_set(err, RS_EVALIDATION, "user fields are not valid UTF-8");
    }
    if (u->custom && json_object_size(u->custom) > 0) {
        k.custom = json_dumps(u->custom, JSON_COMPACT | JSON_SORT_KEYS);
        if (!k.custom)
            abort(); /* jansson fails only when out of memory */
    }
    *ret = k;
    return 0;
}

/* '' stands for "none" in optional text columns. */
static int pp_optional(struct pg_params *p, const char *s)
{
    return pp_text(p, s ? s : "");
}

/* Binds USER_WRITE_COLS as $1..$25. */
static void user_params(struct pg_params *p, const struct rs_user *u, const struct user_keys *k)
{
    pp_text(p, u->username);
    pp_text(p, k->username);
    pp_text(p, u->email);
    pp_text(p, k->email);
    pp_text(p, u->first_name);
    pp_text(p, u->last_name);
    pp_text(p, k->search);
    pp_text(p, rs_user_type_name(u->type));
    pp_text(p, rs_user_status_name(u->status));
    pp_optional(p, u->phone);
    pp_optional(p, u->employee_id);
    pp_text(p, k->employee_id);
    pp_optional(p, u->department);
    pp_optional(p, u->position);
    pp_optional(p, u->location);
    pp_optional(p, u->role);
    pp_int_or_null(p, u->manager_id);
    pp_text(p, u->status_reason);
    pp_text(p, u->status_note);
    pp_int(p, u->status_changed_at);
    pp_text(p, k->custom);
    pp_int(p, u->last_login_at);
    pp_int(p, u->erased_at);
    pp_int(p, u->updated_at);
    pp_int(p, u->version);
}

static int pg_user_insert(struct rs_conn *rc_conn, struct rs_user *u, struct rs_error *err)
{
    struct pg_conn *c = to_pg(rc_conn);
    struct user_keys k = {0};
    PGresult *res = NULL;
    int64_t id;
    int rc = user_keys_make(u, &k, err);
    if (rc)
        goto out;
    struct pg_params p = {0};
    user_params(&p, u, &k);
    pp_int(&p, u->created_at); /* $26 */
    rc = pg_run(c,
                "INSERT INTO users (" USER_WRITE_COLS ", created_at)"
                " VALUES (" USER_WRITE_VALUES ", $26) RETURNING id",
                &p, p.n, u, &res, err);
    if (rc)
        goto out;
    if (PQntuples(res) != 1 || get_i64(res, 0, 0, &id)) {
        rc = bad_data("users insert", err);
        goto out;
    }
    u->id = id;
out:
    PQclear(res);
    user_keys_release(&k);
    return rc;
}

/* where is a column name from this file, never client input. */
static int user_get_where(struct pg_conn *c, const char *where, const char *value,
                          const char *suffix, struct rs_user *ret, struct rs_error *err)
{
    struct pg_params p = {0};
    pp_text(&p, value);
    PGresult *res = NULL;
    char *sql = rs_xasprintf("SELECT " USER_COLS " FROM users WHERE %s = $1%s", where, suffix);
    int rc = pg_run(c, sql, &p, p.n, NULL, &res, err);
    free(sql);
    if (rc)
        return rc;
    if (PQntuples(res) == 0)
        rc = -RS_ENOTFOUND; /* bare, as store.h says */
    else
        rc = user_from_row(res, 0, ret, err);
    PQclear(res);
    return rc;
}

static int pg_user_get(struct rs_conn *rc_conn, int64_t id, struct rs_user *ret,
                       struct rs_error *err)
{
    char buf[24];
    snprintf(buf, sizeof(buf), "%" PRId64, id);
    return user_get_where(to_pg(rc_conn), "id", buf, "", ret, err);
}

/* NO KEY UPDATE, not UPDATE: the row is changed but never its id, so writes
 * that name this user as a manager (the foreign key takes KEY SHARE) need
 * not wait for it, and two users made each other's manager at once get the
 * cycle check instead of a deadlock. */
static int pg_user_get_for_update(struct rs_conn *rc_conn, int64_t id, struct rs_user *ret,
                                  struct rs_error *err)
{
    char buf[24];
    snprintf(buf, sizeof(buf), "%" PRId64, id);
    return user_get_where(to_pg(rc_conn), "id", buf, " FOR NO KEY UPDATE", ret, err);
}

static int pg_user_get_by_username(struct rs_conn *rc_conn, const char *username_key,
                                   struct rs_user *ret, struct rs_error *err)
{
    return user_get_where(to_pg(rc_conn), "username_key", username_key, "", ret, err);
}

static int pg_user_update(struct rs_conn *rc_conn, const struct rs_user *u,
                          int64_t expected_version, struct rs_error *err)
{
    struct pg_conn *c = to_pg(rc_conn);
    struct user_keys k = {0};
    PGresult *res = NULL;
    int rc = user_keys_make(u, &k, err);
    if (rc)
        goto out;
    struct pg_params p = {0};
    user_params(&p, u, &k);
    pp_int(&p, u->id);            /* $26 */
    pp_int(&p, expected_version); /* $27 */
    rc = pg_run(c,
                "UPDATE users SET (" USER_WRITE_COLS ") = (" USER_WRITE_VALUES ")"
                " WHERE id = $26 AND version = $27",
                &p, p.n, u, &res, err);
    if (rc)
        goto out;
    if (strcmp(PQcmdTuples(res), "0") != 0)
        goto out;
    PQclear(res);
    res = NULL;
    struct pg_params q = {0};
    pp_int(&q, u->id);
    rc = pg_run(c, "SELECT 1 FROM users WHERE id = $1", &q, q.n, NULL, &res, err);
    if (rc)
        goto out;
    /* Bare codes, as sqlite.c: the caller words the message. */
    rc = PQntuples(res) == 0 ? -RS_ENOTFOUND : -RS_EPRECONDITION;
out:
    PQclear(res);
    user_keys_release(&k);
    return rc;
}

static int pg_users_exist(struct rs_conn *rc_conn, bool *ret, struct rs_error *err)
{
    PGresult *res = NULL;
    int64_t n;
    int rc = pg_run(to_pg(rc_conn), "SELECT count(*) FROM (SELECT 1 FROM users LIMIT 1) AS one",
                    NULL, 0, NULL, &res, err);
    if (rc)
        return rc;
    if (get_i64(res, 0, 0, &n))
        rc = bad_data("users count", err);
    else
        *ret = n > 0;
    PQclear(res);
    return rc;
}

/* Column for a sort field and whether it is text (ordered byte-wise, as
 * SQLite's BINARY collation, so both backends page alike). */
static const char *sort_column(enum rs_user_sort_field f, bool *ret_text)
{
    static const char *const cols[RS_SORT_FIELD_COUNT] = {
        [RS_SORT_ID] = "id",
        [RS_SORT_USERNAME] = "username_key",
        [RS_SORT_EMAIL] = "email_key",
        [RS_SORT_FIRST_NAME] = "first_name",
        [RS_SORT_LAST_NAME] = "last_name",
        [RS_SORT_CREATED_AT] = "created_at",
        [RS_SORT_UPDATED_AT] = "updated_at",
        [RS_SORT_DEPARTMENT] = "department",
        [RS_SORT_LOCATION] = "location",
        [RS_SORT_POSITION] = "position",
        [RS_SORT_EMPLOYEE_ID] = "employee_id",
        [RS_SORT_TYPE] = "type",
        [RS_SORT_STATUS] = "status",
        [RS_SORT_LAST_LOGIN_AT] = "last_login_at",
    };
    *ret_text = false;
    if ((unsigned)f >= RS_SORT_FIELD_COUNT)
        return NULL;
    *ret_text = !rs_sort_is_integer(f);
    return cols[f];
}

/* "%" "_" "\" escaped for LIKE ... ESCAPE '\'. */
static char *like_escape(const char *s)
{
    size_t n = strlen(s);
    char *out = rs_xmalloc(2 * n + 1);
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%' || s[i] == '_' || s[i] == '\\')
            out[j++] = '\\';
        out[j++] = s[i];
    }
    out[j] = '\0';
    return out;
}

static void filter_eq(struct pg_sql *sql, struct pg_params *p, const char *col, const char *v)
{
    if (v)
        sql_add(sql, " AND %s = $%d", col, pp_text(p, v));
}

static void filter_int(struct pg_sql *sql, struct pg_params *p, const char *cond, int64_t v)
{
    if (v)
        sql_add(sql, cond, pp_int(p, v));
}

/* Appends the WHERE clause of q's filters to sql. Returns the LIKE pattern
 * bound for q->q (the caller frees it after the queries ran), or NULL. */
static char *add_filter(struct pg_sql *sql, struct pg_params *p, const struct rs_user_query *q)
{
    char *pattern = NULL;
    sql_add(sql, " WHERE TRUE");
    if (q->q && *q->q) {
        /* users_search_trgm serves this from three characters on. */
        pattern = like_escape(q->q);
        sql_add(sql, " AND search_key LIKE '%%' || $%d::text || '%%' ESCAPE E'\\\\'",
                pp_text(p, pattern));
    }
    filter_eq(sql, p, "department", q->department);
    filter_eq(sql, p, "location", q->location);
    filter_eq(sql, p, "position", q->position);
    filter_eq(sql, p, "role", q->role);
    filter_int(sql, p, " AND manager_id = $%d", q->manager_id);
    filter_int(sql, p, " AND id IN (SELECT user_id FROM group_members WHERE group_id = $%d)",
               q->group_id);
    filter_int(sql, p, " AND created_at >= $%d", q->created_after);
    filter_int(sql, p, " AND created_at <= $%d", q->created_before);
    filter_int(sql, p, " AND last_login_at >= $%d", q->last_login_after);
    filter_int(sql, p, " AND last_login_at <= $%d AND last_login_at > 0", q->last_login_before);
    for (int i = 0; i < q->ncf && i < RS_QUERY_MAX_CF; i++) {
        /* The value's text as SQLite's CAST gives it: strings and booleans
         * as ->> prints them, integers as stored; a real (stored by jansson
         * with 17 digits, 0.1 as 0.10000000000000001) as its shortest form,
         * with ".0" when that has no point (3.0, 1.0e-05), as SQLite does. */
        int k = pp_text(p, q->cf_keys[i]);
        sql_add(sql,
                " AND (CASE WHEN jsonb_typeof(custom_json -> $%d::text) = 'number'"
                " AND strpos(custom_json ->> $%d::text, '.') > 0"
                " THEN regexp_replace(((custom_json ->> $%d::text)::float8)::text,"
                " '^(-?[0-9]+)(e|$)', '\\1.0\\2')"
                " ELSE custom_json ->> $%d::text END) = $%d::text",
                k, k, k, k, pp_text(p, q->cf_values[i]));
    }
    if (q->has_status)
        sql_add(sql, " AND status COLLATE \"C\" = $%d", pp_text(p, rs_user_status_name(q->status)));
    if (q->has_type)
        sql_add(sql, " AND type = $%d", pp_text(p, rs_user_type_name(q->type)));
    return pattern;
}

static int bad_cursor(struct rs_error *err)
{
    /* Same wording as core's cursor decoding, which catches most bad cursors. */
    return rs_error_field(err, RS_EBADREQUEST, "cursor", "format",
                          "cursor is not one this list issued for the same sort; start again "
                          "without a cursor");
}

/* Appends the keyset condition: rows strictly after the cursor in the sort
 * order; a row-value comparison when every key goes one way, else the
 * expanded OR form, which handles mixed directions. */
static int add_cursor_cond(struct pg_sql *sql, struct pg_params *p, const struct rs_user_query *q,
                           struct rs_error *err)
{
    const struct rs_cursor *cur = &q->cursor;
    int nkeys = q->nsort;
    if (cur->nvalues != nkeys)
        return bad_cursor(err);
    const char *cols[RS_SORT_MAX_KEYS + 1];
    bool text[RS_SORT_MAX_KEYS + 1];
    bool desc[RS_SORT_MAX_KEYS + 1];
    int param[RS_SORT_MAX_KEYS + 1];
    for (int i = 0; i < nkeys; i++) {
        cols[i] = sort_column(q->sort[i].field, &text[i]);
        desc[i] = q->sort[i].desc;
        int64_t dummy;
        if (!cols[i] || !cur->values[i] || (!text[i] && parse_i64(cur->values[i], &dummy)))
            return bad_cursor(err);
        param[i] = pp_text(p, cur->values[i]);
    }
    cols[nkeys] = "id";
    text[nkeys] = false;
    desc[nkeys] = nkeys > 0 ? q->sort[nkeys - 1].desc : false;
    param[nkeys] = pp_int(p, cur->id);

    bool same = true;
    for (int i = 1; i <= nkeys; i++)
        same = same && desc[i] == desc[0];
    if (same) {
        /* Every key one way: one row-value comparison, which an index on
         * the sort keys answers as a range (a cursor half-way through
         * Sales at a million users: 258 ms -> 0.14 ms; the OR form below
         * made the planner read the department from its start). */
        sql_add(sql, " AND (");
        for (int i = 0; i <= nkeys; i++)
            sql_add(sql, "%s%s%s", i ? ", " : "", cols[i], text[i] ? " COLLATE \"C\"" : "");
        sql_add(sql, ") %c (", desc[0] ? '<' : '>');
        for (int i = 0; i <= nkeys; i++)
            sql_add(sql, "%s$%d", i ? ", " : "", param[i]);
        sql_add(sql, ")");
        return 0;
    }
    sql_add(sql, " AND (");
    for (int i = 0; i <= nkeys; i++) {
        sql_add(sql, "%s(", i ? " OR " : "");
        for (int j = 0; j < i; j++)
            sql_add(sql, "%s%s = $%d AND ", cols[j], text[j] ? " COLLATE \"C\"" : "", param[j]);
        sql_add(sql, "%s%s %c $%d)", cols[i], text[i] ? " COLLATE \"C\"" : "", desc[i] ? '<' : '>',
                param[i]);
    }
    sql_add(sql, ")");
    return 0;
}

static void add_order(struct pg_sql *sql, const struct rs_user_query *q)
{
    sql_add(sql, " ORDER BY ");
    for (int i = 0; i < q->nsort; i++) {
        bool text;
        const char *col = sort_column(q->sort[i].field, &text);
        sql_add(sql, "%s%s %s, ", col, text ? " COLLATE \"C\"" : "",
                q->sort[i].desc ? "DESC" : "ASC");
    }
    bool last_desc = q->nsort > 0 && q->sort[q->nsort - 1].desc;
    sql_add(sql, "id %s", last_desc ? "DESC" : "ASC");
}

static void user_page_free_items(struct rs_user *items, size_t n)
{
    for (size_t i = 0; i < n; i++)
        rs_user_release(&items[i]);
    free(items);
}

static int pg_user_list(struct rs_conn *rc_conn, const struct rs_user_query *q,
                        struct rs_user_page *ret, struct rs_error *err)
{
    struct pg_conn *c = to_pg(rc_conn);
    struct pg_sql where = {0};
    struct pg_sql sql = {0};
    struct pg_params p = {0};
    PGresult *res = NULL;
    struct rs_user *items = NULL;
    size_t count = 0;
    int64_t total = 0;
    _cleanup_free_ char *pattern = NULL;
    int rc = 0;

    if (q->nsort < 0 || q->nsort > RS_SORT_MAX_KEYS) {
        rc = rs_error_field(err, RS_EBADREQUEST, "sort", "max_keys", "too many sort keys");
        goto out;
    }
    for (int i = 0; i < q->nsort; i++) {
        bool text;
        if (!sort_column(q->sort[i].field, &text)) {
            rc = rs_error_field(err, RS_EBADREQUEST, "sort", "enum", "unknown sort field");
            goto out;
        }
    }
    int limit = q->limit > 0 ? q->limit : RS_LIST_LIMIT_DEFAULT;
    if (limit > RS_LIST_LIMIT_MAX)
        limit = RS_LIST_LIMIT_MAX;

    /* The filter: its parameters come first so the count can reuse them. */
    pattern = add_filter(&where, &p, q);
    int nfilter = p.n;

    /* Total, ignoring the cursor. */
    sql_add(&sql, "SELECT count(*) FROM users%s", where.buf);
    rc = pg_run_unprepared(c, sql.buf, &p, nfilter, NULL, &res, err);
    if (rc)
        goto out;
    if (get_i64(res, 0, 0, &total)) {
        rc = bad_data("users count", err);
        goto out;
    }
    PQclear(res);
    res = NULL;

    /* The page. */
    if (q->has_cursor) {
        rc = add_cursor_cond(&where, &p, q, err);
        if (rc)
            goto out;
    }
    sql.len = 0;
    sql_add(&sql, "SELECT " USER_COLS " FROM users%s", where.buf);
    add_order(&sql, q);
    sql_add(&sql, " LIMIT $%d", pp_int(&p, (int64_t)limit + 1));
    if (q->offset > 0 && !q->has_cursor)
        sql_add(&sql, " OFFSET $%d", pp_int(&p, q->offset));
    rc = pg_run_unprepared(c, sql.buf, &p, p.n, NULL, &res, err);
    if (rc)
        goto out;
    int rows = PQntuples(res);
    size_t want = rows > limit ? (size_t)limit : (size_t)rows;
    items = rs_xcalloc(want ? want : 1, sizeof(*items));
    for (; count < want; count++) {
        rc = user_from_row(res, (int)count, &items[count], err);
        if (rc)
            goto out;
    }
    ret->items = RS_TAKE_PTR(items);
    ret->count = count;
    ret->total = total;
    ret->has_more = rows > limit;
out:
    if (items)
        user_page_free_items(items, count);
    PQclear(res);
    free(where.buf);
    free(sql.buf);
    return rc;
}

/* ---- audit -------------------------------------------------------------- */

static int pg_audit_insert(struct rs_conn *rc_conn, struct rs_audit_event *ev, struct rs_error *err)
{
    struct pg_params p = {0};
    pp_int(&p, ev->at);
    pp_int_or_null(&p, ev->actor_id);
    pp_text(&p, ev->actor_name ? ev->actor_name : "system");
    pp_text(&p, ev->action);
    pp_text(&p, ev->target_type);
    pp_int(&p, ev->target_id);
    pp_text(&p, ev->request_id);
    pp_text(&p, ev->before_json);
    pp_text(&p, ev->after_json);
    pp_text(&p, ev->reason);
    PGresult *res = NULL;
    int64_t id;
    int rc = pg_run(to_pg(rc_conn),
                    "INSERT INTO audit_events (at, actor_id, actor_name, action, target_type,"
                    " target_id, request_id, before_json, after_json, reason)"
                    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
                    &p, p.n, NULL, &res, err);
    if (rc)
        return rc;
    if (PQntuples(res) != 1 || get_i64(res, 0, 0, &id))
        rc = bad_data("audit insert", err);
    else
        ev->id = id;
    PQclear(res);
    return rc;
}

static json_t *json_str_or_null(PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? json_null() : json_string(PQgetvalue(r, row, col));
}

/* A stored JSON text as a value; text that does not parse stays a string. */
static json_t *json_doc_or_null(PGresult *r, int row, int col)
{
    if (PQgetisnull(r, row, col))
        return json_null();
    const char *s = PQgetvalue(r, row, col);
    json_t *v = json_loads(s, JSON_DECODE_ANY, NULL);
    return v ? v : json_string(s);
}

static int pg_audit_list_target(struct rs_conn *rc_conn, const char *target_type, int64_t target_id,
                                int limit, char **ret_json, struct rs_error *err)
{
    struct pg_params p = {0};
    pp_text(&p, target_type);
    pp_int(&p, target_id);
    pp_int_or_null(&p, limit > 0 ? limit : 0); /* LIMIT NULL: no limit */
    PGresult *res = NULL;
    json_t *arr = NULL;
    int rc = pg_run(to_pg(rc_conn),
                    "SELECT id, at, actor_id, actor_name, action, target_type, target_id,"
                    " request_id, before_json, after_json, reason FROM audit_events"
                    " WHERE target_type = $1 AND target_id = $2 ORDER BY id DESC LIMIT $3",
                    &p, p.n, NULL, &res, err);
    if (rc)
        return rc;
    arr = json_array();
    for (int i = 0; i < PQntuples(res); i++) {
        int64_t id, at, actor, tid;
        if (get_i64(res, i, 0, &id) || get_i64(res, i, 1, &at) || get_i64(res, i, 2, &actor) ||
            get_i64(res, i, 6, &tid)) {
            rc = bad_data("audit_events", err);
            goto out;
        }
        char when[RS_TIME_STR_MAX];
        rs_time_format(at, when);
        json_t *o = json_object();
        json_object_set_new(o, "id", json_integer(id));
        json_object_set_new(o, "at", json_string(when));
        json_object_set_new(o, "actor_id",
                            PQgetisnull(res, i, 2) ? json_null() : json_integer(actor));
        json_object_set_new(o, "actor_name", json_str_or_null(res, i, 3));
        json_object_set_new(o, "action", json_str_or_null(res, i, 4));
        json_object_set_new(o, "target_type", json_str_or_null(res, i, 5));
        json_object_set_new(o, "target_id", json_integer(tid));
        json_object_set_new(o, "request_id", json_str_or_null(res, i, 7));
        json_object_set_new(o, "before", json_doc_or_null(res, i, 8));
        json_object_set_new(o, "after", json_doc_or_null(res, i, 9));
        json_object_set_new(o, "reason", json_str_or_null(res, i, 10));
        json_array_append_new(arr, o);
    }
    char *s = json_dumps(arr, JSON_COMPACT);
    if (!s)
        abort(); /* jansson fails only when out of memory */
    *ret_json = s;
out:
    json_decref(arr);
    PQclear(res);
    return rc;
}

/* ---- API keys ----------------------------------------------------------- */

#define APIKEY_COLS                                                                                \
    "a.id, a.key_id, encode(a.secret_hash, 'hex'), a.user_id, u.username, a.name,"                 \
    " a.created_at, a.expires_at, a.revoked_at, a.last_used_at, u.type, u.status"
#define APIKEY_FROM " FROM api_keys a JOIN users u ON u.id = a.user_id"

static int hex_val(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

static int unhex(const char *s, unsigned char *out, size_t n)
{
    if (strlen(s) != 2 * n)
        return -1;
    for (size_t i = 0; i < n; i++) {
        int hi = hex_val(s[2 * i]);
        int lo = hex_val(s[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        out[i] = (unsigned char)(hi << 4 | lo);
    }
    return 0;
}

static int apikey_from_row(PGresult *r, int row, struct rs_apikey *ret, struct rs_error *err)
{
    struct rs_apikey k;
    rs_apikey_init(&k);
    const char *key_id = PQgetvalue(r, row, 1);
    int bad = get_i64(r, row, 0, &k.id) || strlen(key_id) != RS_APIKEY_ID_LEN ||
              unhex(PQgetvalue(r, row, 2), k.secret_hash, RS_APIKEY_HASH_BYTES) ||
              get_i64(r, row, 3, &k.user_id) || get_i64(r, row, 6, &k.created_at) ||
              get_i64(r, row, 7, &k.expires_at) || get_i64(r, row, 8, &k.revoked_at) ||
              get_i64(r, row, 9, &k.last_used_at);
    if (bad) {
        rs_apikey_release(&k);
        return bad_data("api_keys", err);
    }
    rs_strlcpy(k.key_id, key_id, sizeof(k.key_id));
    k.username = get_str(r, row, 4);
    k.name = get_str(r, row, 5);
    enum rs_user_type t = RS_USER_STANDARD;
    enum rs_user_status st = RS_STATUS_INACTIVE;
    if (rs_user_type_parse(PQgetvalue(r, row, 10), &t) < 0 ||
        rs_user_status_parse(PQgetvalue(r, row, 11), &st) < 0) {
        rs_apikey_release(&k);
        return bad_data("api_keys", err);
    }
    k.owner_type = t;
    k.owner_status = st;
    *ret = k;
    return 0;
}

static int pg_apikey_insert(struct rs_conn *rc_conn, struct rs_apikey *k, struct rs_error *err)
{
    struct pg_params p = {0};
    pp_text(&p, k->key_id);
    pp_bytes(&p, k->secret_hash, RS_APIKEY_HASH_BYTES);
    pp_int(&p, k->user_id);
    pp_text(&p, k->name ? k->name : "");
    pp_int(&p, k->created_at);
    pp_int_or_null(&p, k->expires_at);
    pp_int_or_null(&p, k->revoked_at);
    pp_int_or_null(&p, k->last_used_at);
    PGresult *res = NULL;
    int64_t id;
    int rc = pg_run(to_pg(rc_conn),
                    "INSERT INTO api_keys (key_id, secret_hash, user_id, name, created_at,"
                    " expires_at, revoked_at, last_used_at)"
                    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
                    &p, p.n, NULL, &res, err);
    if (rc)
        return rc;
    if (PQntuples(res) != 1 || get_i64(res, 0, 0, &id))
        rc = bad_data("api_keys insert", err);
    else
        k->id = id;
    PQclear(res);
    return rc;
}

static int apikey_get_where(struct pg_conn *c, const char *where, const char *value,
                            struct rs_apikey *ret, struct rs_error *err)
{
    struct pg_params p = {0};
    pp_text(&p, value);
    PGresult *res = NULL;
    char *sql = rs_xasprintf("SELECT " APIKEY_COLS APIKEY_FROM " WHERE %s = $1", where);
    int rc = pg_run(c, sql, &p, p.n, NULL, &res, err);
    free(sql);
    if (rc)
        return rc;
    if (PQntuples(res) == 0)
        rc = -RS_ENOTFOUND;
    else
        rc = apikey_from_row(res, 0, ret, err);
    PQclear(res);
    return rc;
}

static int pg_apikey_find(struct rs_conn *rc_conn, const char *key_id, struct rs_apikey *ret,
                          struct rs_error *err)
{
    return apikey_get_where(to_pg(rc_conn), "a.key_id", key_id, ret, err);
}

static int pg_apikey_get(struct rs_conn *rc_conn, int64_t id, struct rs_apikey *ret,
                         struct rs_error *err)
{
    char buf[24];
    snprintf(buf, sizeof(buf), "%" PRId64, id);
    return apikey_get_where(to_pg(rc_conn), "a.id", buf, ret, err);
}

static int pg_apikey_list(struct rs_conn *rc_conn, int64_t user_id, struct rs_apikey **ret_items,
                          size_t *ret_count, struct rs_error *err)
{
    struct pg_params p = {0};
    PGresult *res = NULL;
    int rc;
    if (user_id > 0) {
        pp_int(&p, user_id);
        rc = pg_run(to_pg(rc_conn),
                    "SELECT " APIKEY_COLS APIKEY_FROM " WHERE a.user_id = $1 ORDER BY a.id DESC",
                    &p, p.n, NULL, &res, err);
    } else {
        rc = pg_run(to_pg(rc_conn), "SELECT " APIKEY_COLS APIKEY_FROM " ORDER BY a.id DESC", NULL,
                    0, NULL, &res, err);
    }
    if (rc)
        return rc;
    size_t n = (size_t)PQntuples(res);
    struct rs_apikey *items = rs_xcalloc(n ? n : 1, sizeof(*items));
    size_t i = 0;
    for (; i < n; i++) {
        rc = apikey_from_row(res, (int)i, &items[i], err);
        if (rc)
            break;
    }
    PQclear(res);
    if (rc) {
        for (size_t j = 0; j < i; j++)
            rs_apikey_release(&items[j]);
        free(items);
        return rc;
    }
    *ret_items = items;
    *ret_count = n;
    return 0;
}

static int pg_apikey_revoke(struct rs_conn *rc_conn, int64_t id, int64_t at, struct rs_error *err)
{
    struct pg_conn *c = to_pg(rc_conn);
    struct pg_params p = {0};
    pp_int(&p, at);
    pp_int(&p, id);
    PGresult *res = NULL;
    int rc = pg_run(c, "UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
                    &p, p.n, NULL, &res, err);
    if (rc)
        return rc;
    bool changed = strcmp(PQcmdTuples(res), "0") != 0;
    PQclear(res);
    res = NULL;
    if (changed)
        return 0;
    struct pg_params q = {0};
    pp_int(&q, id);
    rc = pg_run(c, "SELECT 1 FROM api_keys WHERE id = $1", &q, q.n, NULL, &res, err);
    if (rc)
        return rc;
    if (PQntuples(res) == 0)
        rc = -RS_ENOTFOUND;
    else
        rc = rs_error_set(err, RS_ECONFLICT, "api key %lld is already revoked", (long long)id);
    PQclear(res);
    return rc;
}

static int pg_apikey_touch(struct rs_conn *rc_conn, int64_t id, int64_t at, struct rs_error *err)
{
    struct pg_params p = {0};
    pp_int_or_null(&p, at);
    pp_int(&p, id);
    PGresult *res = NULL;
    int rc = pg_run(to_pg(rc_conn), "UPDATE api_keys SET last_used_at = $1 WHERE id = $2", &p, p.n,
                    NULL, &res, err);
    if (rc)
        return rc;
    if (strcmp(PQcmdTuples(res), "0") == 0)
        rc = -RS_ENOTFOUND;
    PQclear(res);
    return rc;
}

/* ---- managers, counts, settings, custom fields --------------------------- */

/* pg_advisory_xact_lock key that serialises manager changes ("mgrs"). */
#define PG_MANAGER_LOCK_KEY "1835496051"

/* One query: the managers above from_id, nearest first, up to and including
 * the first repeat. In a transaction it first takes a lock that every other
 * manager check waits for until this transaction ends: under READ COMMITTED
 * two concurrent changes (a reports to b, b reports to a) would otherwise
 * each see a chain without the other and together make a loop. */
static int pg_user_manager_chain(struct rs_conn *rc_conn, int64_t from_id, int max,
                                 int64_t *ret_ids, char **ret_names, int *ret_n,
                                 struct rs_error *err)
{
    struct pg_conn *c = to_pg(rc_conn);
    if (max <= 0) {
        *ret_n = 0;
        return 0;
    }
    if (PQtransactionStatus(c->pq) == PQTRANS_INTRANS) {
        int rc = pg_simple(c, "SELECT pg_advisory_xact_lock(" PG_MANAGER_LOCK_KEY ")",
                           "manager lock", err);
        if (rc)
            return rc;
    }
    struct pg_params p = {0};
    pp_int(&p, from_id);
    pp_int(&p, max);
    PGresult *res = NULL;
    int rc = pg_run(c,
                    "WITH RECURSIVE chain (id, username, next, depth, path, repeat) AS ("
                    " SELECT m.id, m.username, m.manager_id, 1, ARRAY[m.id], false"
                    " FROM users u JOIN users m ON m.id = u.manager_id WHERE u.id = $1"
                    " UNION ALL"
                    " SELECT m.id, m.username, m.manager_id, c.depth + 1, c.path || m.id,"
                    " m.id = ANY (c.path)"
                    " FROM chain c JOIN users m ON m.id = c.next"
                    " WHERE NOT c.repeat AND c.depth < $2)"
                    " SELECT id, username FROM chain ORDER BY depth",
                    &p, p.n, NULL, &res, err);
    if (rc)
        return rc;
    int n = PQntuples(res);
    if (n > max) {
        PQclear(res);
        return bad_data("manager chain", err);
    }
    for (int i = 0; i < n; i++) {
        if (get_i64(res, i, 0, &ret_ids[i])) {
            for (int j = 0; j < i; j++)
                free(ret_names[j]);
            PQclear(res);
            return bad_data("manager chain", err);
        }
        ret_names[i] = get_str(res, i, 1);
    }
    PQclear(res);
    *ret_n = n;
    return 0;
}

/* Inside a transaction the counted rows stay locked until it ends (FOR
 * UPDATE re-reads a row another transaction changed, so the sum is current),
 * taken in key order as the users trigger takes them. */
static int pg_user_count_status(struct rs_conn *rc_conn, enum rs_user_status status, int type,
                                int64_t *ret, struct rs_error *err)
{
    struct pg_conn *c = to_pg(rc_conn);
    bool lock = PQtransactionStatus(c->pq) == PQTRANS_INTRANS;
    struct pg_params p = {0};
    pp_text(&p, rs_user_status_name(status));
    if (type >= 0)
        pp_text(&p, rs_user_type_name((enum rs_user_type)type));
    char *sql = rs_xasprintf("SELECT coalesce(sum(n), 0) FROM (SELECT n FROM user_counts"
                             " WHERE status = $1%s ORDER BY status, type%s) s",
                             type >= 0 ? " AND type = $2" : "", lock ? " FOR UPDATE" : "");
    PGresult *res = NULL;
    int rc = pg_run(c, sql, &p, p.n, NULL, &res, err);
    free(sql);
    if (rc)
        return rc;
    int64_t n;
    if (PQntuples(res) != 1 || get_i64(res, 0, 0, &n))
        rc = bad_data("user_counts", err);
    else
        *ret = n;
    PQclear(res);
    return rc;
}

static int pg_apikey_revoke_user(struct rs_conn *rc_conn, int64_t user_id, int64_t at,
                                 struct rs_error *err)
{
    struct pg_params p = {0};
    pp_int(&p, at);
    pp_int(&p, user_id);
    PGresult *res = NULL;
    int rc = pg_run(to_pg(rc_conn),
                    "UPDATE api_keys SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL",
                    &p, p.n, NULL, &res, err);
    PQclear(res);
    return rc;
}

static int pg_settings_get(struct rs_conn *rc_conn, const char *key, char **ret_json,
                           int64_t *ret_version, struct rs_error *err)
{
    struct pg_params p = {0};
    pp_text(&p, key);
    PGresult *res = NULL;
    int rc = pg_run(to_pg(rc_conn), "SELECT value, version FROM settings WHERE key = $1", &p, p.n,
                    NULL, &res, err);
    if (rc)
        return rc;
    int64_t version;
    if (PQntuples(res) == 0) {
        rc = -RS_ENOTFOUND; /* never written */
    } else if (get_i64(res, 0, 1, &version)) {
        rc = bad_data("settings", err);
    } else {
        *ret_json = get_str(res, 0, 0);
        *ret_version = version;
    }
    PQclear(res);
    return rc;
}

static int pg_settings_put(struct rs_conn *rc_conn, const char *key, const char *json,
                           int64_t version, int64_t expected_version, int64_t at,
                           struct rs_error *err)
{
    struct pg_params p = {0};
    pp_text(&p, key);
    pp_text(&p, json);
    pp_int(&p, version);
    pp_int(&p, at);
    const char *sql = "INSERT INTO settings (key, value, version, updated_at)"
                      " VALUES ($1, $2, $3, $4) ON CONFLICT (key) DO NOTHING";
    if (expected_version != 0) {
        pp_int(&p, expected_version);
        sql = "UPDATE settings SET value = $2, version = $3, updated_at = $4"
              " WHERE key = $1 AND version = $5";
    }
    PGresult *res = NULL;
    int rc = pg_run(to_pg(rc_conn), sql, &p, p.n, NULL, &res, err);
    if (rc)
        return rc;
    /* Bare, as in sqlite.c: the caller words the message. */
    if (strcmp(PQcmdTuples(res), "1") != 0)
        rc = -RS_EPRECONDITION;
    PQclear(res);
    return rc;
}

#define CF_COLS                                                                                    \
    "id, key, label, type, required, default_json, options_json, pattern, min, max, active,"       \
    " created_at, updated_at, version"

static json_t *get_json(PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? NULL
                                    : json_loads(PQgetvalue(r, row, col), JSON_DECODE_ANY, NULL);
}

static bool get_bool(PGresult *r, int row, int col)
{
    return !PQgetisnull(r, row, col) && strcmp(PQgetvalue(r, row, col), "t") == 0;
}

/* A float8 column; false for SQL NULL or what does not parse. */
static bool get_double(PGresult *r, int row, int col, double *ret)
{
    if (PQgetisnull(r, row, col))
        return false;
    char *end;
    errno = 0;
    double d = strtod(PQgetvalue(r, row, col), &end);
    if (errno || *end)
        return false;
    *ret = d;
    return true;
}

static int cf_from_row(PGresult *r, int row, struct rs_custom_field *ret, struct rs_error *err)
{
    struct rs_custom_field f;
    rs_custom_field_init(&f);
    if (get_i64(r, row, 0, &f.id) || get_i64(r, row, 11, &f.created_at) ||
        get_i64(r, row, 12, &f.updated_at) || get_i64(r, row, 13, &f.version) ||
        rs_cf_type_parse(PQgetvalue(r, row, 3), &f.type) < 0) {
        rs_custom_field_release(&f);
        return bad_data("custom_fields", err);
    }
    f.key = get_str(r, row, 1);
    f.label = get_str(r, row, 2);
    f.required = get_bool(r, row, 4);
    f.default_value = get_json(r, row, 5);
    f.options = get_json(r, row, 6);
    f.pattern = get_str(r, row, 7);
    f.has_min = get_double(r, row, 8, &f.min);
    f.has_max = get_double(r, row, 9, &f.max);
    f.active = get_bool(r, row, 10);
    *ret = f;
    return 0;
}

static int pg_cf_list(struct rs_conn *rc_conn, struct rs_custom_field **ret_items,
                      size_t *ret_count, struct rs_error *err)
{
    PGresult *res = NULL;
    int rc = pg_run(to_pg(rc_conn), "SELECT " CF_COLS " FROM custom_fields ORDER BY id", NULL, 0,
                    NULL, &res, err);
    if (rc)
        return rc;
    size_t n = (size_t)PQntuples(res);
    struct rs_custom_field *items = rs_xcalloc(n ? n : 1, sizeof(*items));
    size_t i = 0;
    for (; i < n; i++) {
        rc = cf_from_row(res, (int)i, &items[i], err);
        if (rc)
            break;
    }
    PQclear(res);
    if (rc) {
        for (size_t j = 0; j < i; j++)
            rs_custom_field_release(&items[j]);
        free(items);
        return rc;
    }
    *ret_items = items;
    *ret_count = n;
    return 0;
}

/* A JSON value as text for a TEXT column, or NULL. */
static char *json_text_or_null(const json_t *v)
{
    if (!v)
        return NULL;
    char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!s)
        abort(); /* jansson fails only when out of memory */
    return s;
}

/* A bound as float8 text: 17 significant digits read back exactly. */
static int pp_double_or_null(struct pg_params *p, bool has, double v)
{
    if (!has)
        return pp_add(p, NULL, 0, 0);
    int i = p->n;
    if (i >= PG_MAX_PARAMS)
        abort();
    snprintf(p->ints[i], sizeof(p->ints[i]), "%.17g", v);
    return pp_add(p, p->ints[i], 0, 0);
}

/* Binds the definition's writable columns as $1..$8 (label, required,
 * default_json, options_json, pattern, min, max, active). */
static void cf_params(struct pg_params *p, const struct rs_custom_field *f, const char *def,
                      const char *opts)
{
    pp_text(p, f->label);
    pp_text(p, f->required ? "true" : "false");
    pp_text(p, def);
    pp_text(p, opts);
    pp_text(p, f->pattern);
    pp_double_or_null(p, f->has_min, f->min);
    pp_double_or_null(p, f->has_max, f->max);
    pp_text(p, f->active ? "true" : "false");
}

static int pg_cf_insert(struct rs_conn *rc_conn, struct rs_custom_field *f, struct rs_error *err)
{
    _cleanup_free_ char *def = json_text_or_null(f->default_value);
    _cleanup_free_ char *opts = json_text_or_null(f->options);
    struct pg_params p = {0};
    cf_params(&p, f, def, opts);
    pp_text(&p, f->key);                   /* $9 */
    pp_text(&p, rs_cf_type_name(f->type)); /* $10 */
    pp_int(&p, f->created_at);             /* $11 */
    pp_int(&p, f->updated_at);             /* $12 */
    pp_int(&p, f->version);                /* $13 */
    PGresult *res = NULL;
    int rc = pg_run(to_pg(rc_conn),
                    "INSERT INTO custom_fields (label, required, default_json, options_json,"
                    " pattern, min, max, active, key, type, created_at, updated_at, version)"
                    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
                    " RETURNING id",
                    &p, p.n, NULL, &res, err);
    if (rc)
        return rc;
    int64_t id;
    if (PQntuples(res) != 1 || get_i64(res, 0, 0, &id))
        rc = bad_data("custom_fields insert", err);
    else
        f->id = id;
    PQclear(res);
    return rc;
}

static int pg_cf_update(struct rs_conn *rc_conn, const struct rs_custom_field *f,
                        int64_t expected_version, struct rs_error *err)
{
    _cleanup_free_ char *def = json_text_or_null(f->default_value);
    _cleanup_free_ char *opts = json_text_or_null(f->options);
    struct pg_params p = {0};
    cf_params(&p, f, def, opts);
    pp_int(&p, f->updated_at);    /* $9 */
    pp_int(&p, f->version);       /* $10 */
    pp_int(&p, f->id);            /* $11 */
    pp_int(&p, expected_version); /* $12 */
    PGresult *res = NULL;
    int rc = pg_run(to_pg(rc_conn),
                    "UPDATE custom_fields SET label = $1, required = $2, default_json = $3,"
                    " options_json = $4, pattern = $5, min = $6, max = $7, active = $8,"
                    " updated_at = $9, version = $10 WHERE id = $11 AND version = $12",
                    &p, p.n, NULL, &res, err);
    if (rc)
        return rc;
    if (strcmp(PQcmdTuples(res), "1") != 0)
        rc = -RS_EPRECONDITION; /* bare, as in sqlite.c */
    PQclear(res);
    return rc;
}

/* ---- access: version, resources, roles, groups -------------------------- */

/* Reads one row into *item (of the list's item type); 0 or -code, leaving
 * nothing to release on failure. */
typedef int (*row_reader)(PGresult *r, int row, void *item, struct rs_error *err);

/* Runs a query and reads every row into a new array of items of `size`
 * bytes, owned by the caller; on failure releases what was read. */
static int pg_list(struct pg_conn *c, const char *sql, const struct pg_params *p, size_t size,
                   row_reader read, void (*release)(void *), void **ret_items, size_t *ret_count,
                   struct rs_error *err)
{
    PGresult *res = NULL;
    int rc = pg_run(c, sql, p, p ? p->n : 0, NULL, &res, err);
    if (rc)
        return rc;
    size_t n = (size_t)PQntuples(res);
    char *items = rs_xcalloc(n ? n : 1, size);
    size_t i = 0;
    for (; i < n; i++) {
        rc = read(res, (int)i, items + i * size, err);
        if (rc)
            break;
    }
    PQclear(res);
    if (rc) {
        for (size_t j = 0; j < i; j++)
            release(items + j * size);
        free(items);
        return rc;
    }
    *ret_items = items;
    *ret_count = n;
    return 0;
}

/* Runs a write whose result has no rows wanted. */
static int pg_exec(struct pg_conn *c, const char *sql, const struct pg_params *p,
                   struct rs_error *err)
{
    PGresult *res = NULL;
    int rc = pg_run(c, sql, p, p ? p->n : 0, NULL, &res, err);
    PQclear(res);
    return rc;
}

/* Runs an UPDATE or DELETE; *ret_changed says whether it touched a row. */
static int pg_exec_changed(struct pg_conn *c, const char *sql, const struct pg_params *p,
                           bool *ret_changed, struct rs_error *err)
{
    PGresult *res = NULL;
    int rc = pg_run(c, sql, p, p->n, NULL, &res, err);
    if (rc)
        return rc;
    *ret_changed = strcmp(PQcmdTuples(res), "0") != 0;
    PQclear(res);
    return 0;
}

/* Runs an INSERT ... RETURNING id. */
static int pg_insert_id(struct pg_conn *c, const char *sql, const struct pg_params *p,
                        const char *what, int64_t *ret_id, struct rs_error *err)
{
    PGresult *res = NULL;
    int rc = pg_run(c, sql, p, p->n, NULL, &res, err);
    if (rc)
        return rc;
    int64_t id;
    if (PQntuples(res) != 1 || get_i64(res, 0, 0, &id))
        rc = bad_data(what, err);
    else
        *ret_id = id;
    PQclear(res);
    return rc;
}

/* A JSON value as compact text (jansson fails only when out of memory). */
static char *json_text(const json_t *v, size_t flags)
{
    char *s = json_dumps(v, JSON_COMPACT | flags);
    if (!s)
        abort();
    return s;
}

static int pg_access_version_get(struct rs_conn *rc_conn, int64_t *ret, struct rs_error *err)
{
    PGresult *res = NULL;
    int rc = pg_run(to_pg(rc_conn), "SELECT version FROM access_version WHERE id = 1", NULL, 0,
                    NULL, &res, err);
    if (rc)
        return rc;
    int64_t v;
    if (PQntuples(res) != 1 || get_i64(res, 0, 0, &v))
        rc = bad_data("access_version", err);
    else
        *ret = v;
    PQclear(res);
    return rc;
}

/* Holds the row's lock until the transaction ends: concurrent access changes
 * queue here, briefly, as they are bumped last. */
static int pg_access_version_bump(struct rs_conn *rc_conn, struct rs_error *err)
{
    struct pg_params p = {0};
    bool changed;
    int rc = pg_exec_changed(to_pg(rc_conn),
                             "UPDATE access_version SET version = version + 1 WHERE id = 1", &p,
                             &changed, err);
    if (rc == 0 && !changed)
        rc = bad_data("access_version", err);
    return rc;
}

static int resource_from_row(PGresult *r, int row, void *item, struct rs_error *err)
{
    struct rs_resource_def d = {0};
    if (get_i64(r, row, 4, &d.created_at))
        return bad_data("resources", err);
    d.key = get_str(r, row, 0);
    d.label = get_str(r, row, 1);
    d.module = get_str(r, row, 2);
    d.built_in = get_bool(r, row, 3);
    *(struct rs_resource_def *)item = d;
    return 0;
}

static void release_resource_item(void *item)
{
    rs_resource_def_release(item);
}

static int pg_resource_list(struct rs_conn *rc_conn, struct rs_resource_def **ret_items,
                            size_t *ret_count, struct rs_error *err)
{
    return pg_list(to_pg(rc_conn),
                   "SELECT key, label, module, built_in, created_at FROM resources ORDER BY key",
                   NULL, sizeof(**ret_items), resource_from_row, release_resource_item,
                   (void **)ret_items, ret_count, err);
}

static int pg_resource_insert(struct rs_conn *rc_conn, const struct rs_resource_def *r,
                              struct rs_error *err)
{
    struct pg_params p = {0};
    pp_text(&p, r->key);
    pp_text(&p, r->label);
    pp_text(&p, r->module ? r->module : "");
    pp_int(&p, r->created_at);
    return pg_exec(to_pg(rc_conn),
                   "INSERT INTO resources (key, label, module, built_in, created_at)"
                   " VALUES ($1, $2, $3, false, $4)",
                   &p, err);
}

#define ROLE_COLS                                                                                  \
    "id, key, name, description, permissions, built_in, active, created_at, updated_at, version"

static int role_from_row(PGresult *r, int row, void *item, struct rs_error *err)
{
    struct rs_role x;
    rs_role_init(&x);
    if (get_i64(r, row, 0, &x.id) || get_i64(r, row, 7, &x.created_at) ||
        get_i64(r, row, 8, &x.updated_at) || get_i64(r, row, 9, &x.version))
        return bad_data("roles", err);
    x.key = get_str(r, row, 1);
    x.name = get_str(r, row, 2);
    x.description = get_str(r, row, 3);
    /* As sqlite.c: permissions that do not parse grant nothing. */
    x.permissions = json_loads(PQgetvalue(r, row, 4), 0, NULL);
    if (!json_is_object(x.permissions)) {
        json_decref(x.permissions);
        x.permissions = json_object();
    }
    x.built_in = get_bool(r, row, 5);
    x.active = get_bool(r, row, 6);
    *(struct rs_role *)item = x;
    return 0;
}

static void release_role_item(void *item)
{
    rs_role_release(item);
}

static int pg_role_list(struct rs_conn *rc_conn, struct rs_role **ret_items, size_t *ret_count,
                        struct rs_error *err)
{
    return pg_list(to_pg(rc_conn), "SELECT " ROLE_COLS " FROM roles ORDER BY id", NULL,
                   sizeof(**ret_items), role_from_row, release_role_item, (void **)ret_items,
                   ret_count, err);
}

/* Binds name, description, permissions, active as $1..$4; the caller frees
 * *ret_perms after the query. */
static void role_params(struct pg_params *p, const struct rs_role *r, char **ret_perms)
{
    *ret_perms = json_text(r->permissions ? r->permissions : json_object(), JSON_SORT_KEYS);
    pp_text(p, r->name);
    pp_text(p, r->description ? r->description : "");
    pp_text(p, *ret_perms);
    pp_text(p, r->active ? "true" : "false");
}

static int pg_role_insert(struct rs_conn *rc_conn, struct rs_role *r, struct rs_error *err)
{
    _cleanup_free_ char *perms = NULL;
    struct pg_params p = {0};
    role_params(&p, r, &perms);
    pp_text(&p, r->key);       /* $5 */
    pp_int(&p, r->created_at); /* $6 */
    pp_int(&p, r->updated_at); /* $7 */
    pp_int(&p, r->version);    /* $8 */
    return pg_insert_id(to_pg(rc_conn),
                        "INSERT INTO roles (name, description, permissions, active, key,"
                        " built_in, created_at, updated_at, version)"
                        " VALUES ($1, $2, $3, $4, $5, false, $6, $7, $8) RETURNING id",
                        &p, "roles insert", &r->id, err);
}

static int pg_role_update(struct rs_conn *rc_conn, const struct rs_role *r,
                          int64_t expected_version, struct rs_error *err)
{
    _cleanup_free_ char *perms = NULL;
    struct pg_params p = {0};
    role_params(&p, r, &perms);
    pp_int(&p, r->updated_at);    /* $5 */
    pp_int(&p, r->version);       /* $6 */
    pp_int(&p, r->id);            /* $7 */
    pp_int(&p, expected_version); /* $8 */
    bool changed;
    int rc = pg_exec_changed(to_pg(rc_conn),
                             "UPDATE roles SET name = $1, description = $2, permissions = $3,"
                             " active = $4, updated_at = $5, version = $6"
                             " WHERE id = $7 AND version = $8",
                             &p, &changed, err);
    if (rc == 0 && !changed)
        rc = -RS_EPRECONDITION; /* bare, as in sqlite.c */
    return rc;
}

static int text_from_row(PGresult *r, int row, void *item, struct rs_error *err)
{
    (void)err;
    *(char **)item = get_str(r, row, 0);
    return 0;
}

static void release_text_item(void *item)
{
    free(*(char **)item);
}

static int pg_user_roles_get(struct rs_conn *rc_conn, int64_t user_id, char ***ret_keys,
                             size_t *ret_count, struct rs_error *err)
{
    struct pg_params p = {0};
    pp_int(&p, user_id);
    return pg_list(
        to_pg(rc_conn), "SELECT role_key FROM user_roles WHERE user_id = $1 ORDER BY role_key", &p,
        sizeof(**ret_keys), text_from_row, release_text_item, (void **)ret_keys, ret_count, err);
}

/* The keys travel as one JSON array, so any text is safe and one statement
 * writes them all. */
static int pg_user_roles_set(struct rs_conn *rc_conn, int64_t user_id, char *const *keys, size_t n,
                             struct rs_error *err)
{
    struct pg_conn *c = to_pg(rc_conn);
    struct pg_params p = {0};
    pp_int(&p, user_id);
    int rc = pg_exec(c, "DELETE FROM user_roles WHERE user_id = $1", &p, err);
    if (rc || n == 0)
        return rc;
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, json_string(keys[i]));
    _cleanup_free_ char *text = json_text(arr, 0);
    json_decref(arr);
    pp_text(&p, text);
    return pg_exec(c,
                   "INSERT INTO user_roles (user_id, role_key)"
                   " SELECT $1, value FROM json_array_elements_text($2::json)"
                   " ON CONFLICT DO NOTHING",
                   &p, err);
}

#define GROUP_COLS                                                                                 \
    "g.id, g.name, g.description, g.email, g.roles, g.created_at, g.updated_at, g.version,"        \
    " (SELECT count(*) FROM group_members m WHERE m.group_id = g.id)"

static int group_from_row(PGresult *r, int row, void *item, struct rs_error *err)
{
    struct rs_group g;
    rs_group_init(&g);
    if (get_i64(r, row, 0, &g.id) || get_i64(r, row, 5, &g.created_at) ||
        get_i64(r, row, 6, &g.updated_at) || get_i64(r, row, 7, &g.version) ||
        get_i64(r, row, 8, &g.member_count))
        return bad_data("groups", err);
    g.name = get_str(r, row, 1);
    g.description = get_str(r, row, 2);
    g.email = get_str(r, row, 3);
    /* As sqlite.c: roles that do not parse are none. */
    g.roles = json_loads(PQgetvalue(r, row, 4), 0, NULL);
    if (!json_is_array(g.roles)) {
        json_decref(g.roles);
        g.roles = json_array();
    }
    *(struct rs_group *)item = g;
    return 0;
}

static void release_group_item(void *item)
{
    rs_group_release(item);
}

static int pg_group_list(struct rs_conn *rc_conn, struct rs_group **ret_items, size_t *ret_count,
                         struct rs_error *err)
{
    return pg_list(to_pg(rc_conn), "SELECT " GROUP_COLS " FROM groups g ORDER BY g.name_key", NULL,
                   sizeof(**ret_items), group_from_row, release_group_item, (void **)ret_items,
                   ret_count, err);
}

static int pg_group_get(struct rs_conn *rc_conn, int64_t id, struct rs_group *ret,
                        struct rs_error *err)
{
    struct pg_params p = {0};
    pp_int(&p, id);
    PGresult *res = NULL;
    int rc = pg_run(to_pg(rc_conn), "SELECT " GROUP_COLS " FROM groups g WHERE g.id = $1", &p, p.n,
                    NULL, &res, err);
    if (rc)
        return rc;
    if (PQntuples(res) == 0)
        rc = -RS_ENOTFOUND; /* bare, as store.h says */
    else
        rc = group_from_row(res, 0, ret, err);
    PQclear(res);
    return rc;
}

/* What a group row stores beside its fields: the folded name and the roles
 * as JSON text. */
struct group_text {
    char *name_key;
    char *roles;
};

static void group_text_release(struct group_text *t)
{
    free(t->name_key);
    free(t->roles);
}

/* Binds name, name_key, description, email, roles as $1..$5. */
static void group_params(struct pg_params *p, const struct rs_group *g, struct group_text *t)
{
    /* As sqlite.c: a name that does not fold (not UTF-8) is its own key. */
    t->name_key = rs_fold_key(g->name);
    t->roles = g->roles ? json_text(g->roles, 0) : rs_xstrdup("[]");
    pp_text(p, g->name);
    pp_text(p, t->name_key ? t->name_key : g->name);
    pp_text(p, g->description ? g->description : "");
    pp_text(p, g->email);
    pp_text(p, t->roles);
}

static int pg_group_insert(struct rs_conn *rc_conn, struct rs_group *g, struct rs_error *err)
{
    struct group_text t = {0};
    struct pg_params p = {0};
    group_params(&p, g, &t);
    pp_int(&p, g->created_at); /* $6 */
    pp_int(&p, g->updated_at); /* $7 */
    pp_int(&p, g->version);    /* $8 */
    int rc = pg_insert_id(to_pg(rc_conn),
                          "INSERT INTO groups (name, name_key, description, email, roles,"
                          " created_at, updated_at, version)"
                          " VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
                          &p, "groups insert", &g->id, err);
    group_text_release(&t);
    return rc;
}

static int pg_group_update(struct rs_conn *rc_conn, const struct rs_group *g,
                           int64_t expected_version, struct rs_error *err)
{
    struct group_text t = {0};
    struct pg_params p = {0};
    group_params(&p, g, &t);
    pp_int(&p, g->updated_at);    /* $6 */
    pp_int(&p, g->version);       /* $7 */
    pp_int(&p, g->id);            /* $8 */
    pp_int(&p, expected_version); /* $9 */
    bool changed;
    int rc = pg_exec_changed(to_pg(rc_conn),
                             "UPDATE groups SET name = $1, name_key = $2, description = $3,"
                             " email = $4, roles = $5, updated_at = $6, version = $7"
                             " WHERE id = $8 AND version = $9",
                             &p, &changed, err);
    group_text_release(&t);
    if (rc == 0 && !changed)
        rc = -RS_EPRECONDITION; /* bare, as in sqlite.c */
    return rc;
}

/* Memberships go with the group (ON DELETE CASCADE). */
static int pg_group_delete(struct rs_conn *rc_conn, int64_t id, struct rs_error *err)
{
    struct pg_params p = {0};
    pp_int(&p, id);
    return pg_exec(to_pg(rc_conn), "DELETE FROM groups WHERE id = $1", &p, err);
}

/* Two statements whatever n: the first id (in the caller's order) that names
 * no user, then every member at once. The ids travel as one JSON array. */
static int pg_group_members_add(struct rs_conn *rc_conn, int64_t group_id, const int64_t *user_ids,
                                size_t n, int64_t at, struct rs_error *err)
{
    struct pg_conn *c = to_pg(rc_conn);
    if (n == 0)
        return 0;
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, json_integer(user_ids[i]));
    _cleanup_free_ char *ids = json_text(arr, 0);
    json_decref(arr);

    struct pg_params p = {0};
    pp_text(&p, ids);
    PGresult *res = NULL;
    int rc = pg_run(c,
                    "SELECT t.id FROM json_array_elements_text($1::json) WITH ORDINALITY"
                    " AS t (id, i) WHERE NOT EXISTS (SELECT 1 FROM users u"
                    " WHERE u.id = t.id::bigint) ORDER BY t.i LIMIT 1",
                    &p, p.n, NULL, &res, err);
    if (rc)
        return rc;
    if (PQntuples(res) > 0)
        rc = rs_error_field(err, RS_EVALIDATION, "user_ids", "exists", "user_ids: %s names no user",
                            PQgetvalue(res, 0, 0));
    PQclear(res);
    if (rc)
        return rc;
    pp_int(&p, group_id); /* $2 */
    pp_int(&p, at);       /* $3 */
    return pg_exec(c,
                   "INSERT INTO group_members (group_id, user_id, added_at)"
                   " SELECT $2, value::bigint, $3 FROM json_array_elements_text($1::json)"
                   " ON CONFLICT DO NOTHING",
                   &p, err);
}

static int pg_group_member_remove(struct rs_conn *rc_conn, int64_t group_id, int64_t user_id,
                                  struct rs_error *err)
{
    struct pg_params p = {0};
    pp_int(&p, group_id);
    pp_int(&p, user_id);
    bool changed;
    int rc = pg_exec_changed(to_pg(rc_conn),
                             "DELETE FROM group_members WHERE group_id = $1 AND user_id = $2", &p,
                             &changed, err);
    if (rc == 0 && !changed)
        rc = -RS_ENOTFOUND; /* bare: the caller words it */
    return rc;
}

static int pg_groups_of_user(struct rs_conn *rc_conn, int64_t user_id, struct rs_group **ret_items,
                             size_t *ret_count, struct rs_error *err)
{
    struct pg_params p = {0};
    pp_int(&p, user_id);
    return pg_list(to_pg(rc_conn),
                   "SELECT " GROUP_COLS " FROM groups g JOIN group_members gm"
                   " ON gm.group_id = g.id WHERE gm.user_id = $1 ORDER BY g.name_key",
                   &p, sizeof(**ret_items), group_from_row, release_group_item, (void **)ret_items,
                   ret_count, err);
}

/* Three probes, each served by an index (users_role; user_roles, scanned by
 * role; the few groups, then their members), rather than one OR over every
 * user. Callers check the last-administrator rule after user_count_status,
 * whose row lock serialises the checks of concurrent transactions, so under
 * READ COMMITTED this statement sees what the previous one committed. */
static int pg_role_held(struct rs_conn *rc_conn, const char *role_key, bool *ret,
                        struct rs_error *err)
{
    struct pg_params p = {0};
    pp_text(&p, role_key);
    PGresult *res = NULL;
    int rc = pg_run(to_pg(rc_conn),
                    "SELECT EXISTS (SELECT 1 FROM users WHERE role = $1 AND status = 'active'"
                    " AND type <> 'guest')"
                    " OR EXISTS (SELECT 1 FROM user_roles r JOIN users u ON u.id = r.user_id"
                    " WHERE r.role_key = $1 AND u.status = 'active' AND u.type <> 'guest')"
                    " OR EXISTS (SELECT 1 FROM groups g JOIN group_members m"
                    " ON m.group_id = g.id JOIN users u ON u.id = m.user_id"
                    " WHERE g.roles::jsonb ? $1 AND u.status = 'active' AND u.type <> 'guest')",
                    &p, p.n, NULL, &res, err);
    if (rc)
        return rc;
    if (PQntuples(res) != 1 || PQgetisnull(res, 0, 0))
        rc = bad_data("role held", err);
    else
        *ret = get_bool(res, 0, 0);
    PQclear(res);
    return rc;
}

/* ---- sign-in: credentials, history, codes, sessions, tokens -------------- */

static int pg_user_get_by_email(struct rs_conn *rc_conn, const char *email_key, struct rs_user *ret,
                                struct rs_error *err)
{
    return user_get_where(to_pg(rc_conn), "email_key", email_key, "", ret, err);
}

/* Only last_login_at: no trigger fires (the counts trigger watches status and
 * type), and version and updated_at stay, so an If-Match taken before the
 * sign-in still holds. */
static int pg_user_set_last_login(struct rs_conn *rc_conn, int64_t user_id, int64_t at,
                                  struct rs_error *err)
{
    struct pg_params p = {0};
    pp_int(&p, at);
    pp_int(&p, user_id);
    bool changed;
    int rc = pg_exec_changed(to_pg(rc_conn), "UPDATE users SET last_login_at = $1 WHERE id = $2",
                             &p, &changed, err);
    if (rc == 0 && !changed)
        rc = -RS_ENOTFOUND;
    return rc;
}

/* Limits from callers, for LIMIT (which refuses negatives). */
static int64_t limit_of(int n)
{
    return n > 0 ? n : 0;
}

/* Reads an id list (one BIGINT column) into a new array owned by the caller. */
static int pg_ids(struct pg_conn *c, const char *sql, const struct pg_params *p, int64_t **ret_ids,
                  size_t *ret_n, struct rs_error *err)
{
    PGresult *res = NULL;
    int rc = pg_run(c, sql, p, p->n, NULL, &res, err);
    if (rc)
        return rc;
    size_t n = (size_t)PQntuples(res);
    int64_t *ids = rs_xcalloc(n ? n : 1, sizeof(*ids));
    for (size_t i = 0; i < n; i++) {
        if (PQgetisnull(res, (int)i, 0) || get_i64(res, (int)i, 0, &ids[i])) {
            free(ids);
            PQclear(res);
            return bad_data("id list", err);
        }
    }
    PQclear(res);
    *ret_ids = ids;
    *ret_n = n;
    return 0;
}

#define CRED_COLS                                                                                  \
    "user_id, password_hash, password_changed_at, must_change, failed_count, failed_first_at,"     \
    " locked_until, totp_secret, totp_pending, totp_last_step, ip_ranges, expiry_notice_at"

static int cred_from_row(PGresult *r, int row, struct rs_credential *ret, struct rs_error *err)
{
    struct rs_credential cr;
    memset(&cr, 0, sizeof(cr));
    int64_t failed;
    int bad = get_i64(r, row, 0, &cr.user_id) || get_i64(r, row, 2, &cr.password_changed_at) ||
              get_i64(r, row, 4, &failed) || failed < 0 || failed > INT_MAX ||
              get_i64(r, row, 5, &cr.failed_first_at) || get_i64(r, row, 6, &cr.locked_until) ||
              get_i64(r, row, 9, &cr.totp_last_step) || get_i64(r, row, 11, &cr.expiry_notice_at) ||
              get_i64(r, row, 12, &cr.privilege_epoch) ||
              PQgetisnull(r, row, 1) || PQgetisnull(r, row, 7) || PQgetisnull(r, row, 8) ||
              PQgetisnull(r, row, 10);
    if (bad)
        return bad_data("credentials", err);
    cr.failed_count = (int)failed;
    cr.must_change = get_bool(r, row, 3);
    cr.password_hash = get_str(r, row, 1);
    cr.totp_secret = get_str(r, row, 7);
    cr.totp_pending = get_str(r, row, 8);
    cr.ip_ranges = get_str(r, row, 10);
    *ret = cr;
    return 0;
}

/* suffix is this file's text (a locking clause), never client input. */
static int cred_select(struct pg_conn *c, int64_t user_id, const char *suffix,
                       struct rs_credential *ret, struct rs_error *err)
{
    struct pg_params p = {0};
    pp_int(&p, user_id);
    PGresult *res = NULL;
    char *sql = rs_xasprintf("SELECT " CRED_COLS ", privilege_epoch FROM credentials"
                             " WHERE user_id = $1%s",
                             suffix);
    int rc = pg_run(c, sql, &p, p.n, NULL, &res, err);
    free(sql);
    if (rc)
        return rc;
    if (PQntuples(res) == 0)
        rc = -RS_ENOTFOUND; /* bare: the caller uses rs_credential_init */
    else
        rc = cred_from_row(res, 0, ret, err);
    PQclear(res);
    return rc;
}

static int pg_cred_get(struct rs_conn *rc_conn, int64_t user_id, struct rs_credential *ret,
                       struct rs_error *err)
{
    return cred_select(to_pg(rc_conn), user_id, "", ret, err);
}

/* A row is locked FOR UPDATE. With no row yet there is nothing to lock, and
 * two first-time writers would each read "none" and the second upsert would
 * overwrite the first; so the user's row is locked instead (NO KEY UPDATE, as
 * user_get_for_update takes it: the two serialise, foreign key checks of
 * other inserts for this user do not wait) and the credentials read again,
 * which under READ COMMITTED sees a row a writer committed meanwhile. */
static int pg_cred_get_for_update(struct rs_conn *rc_conn, int64_t user_id,
                                  struct rs_credential *ret, struct rs_error *err)
{
    struct pg_conn *c = to_pg(rc_conn);
    int rc = cred_select(c, user_id, " FOR UPDATE", ret, err);
    if (rc != -RS_ENOTFOUND)
        return rc;
    struct pg_params p = {0};
    pp_int(&p, user_id);
    rc = pg_exec(c, "SELECT 1 FROM users WHERE id = $1 FOR NO KEY UPDATE", &p, err);
    if (rc)
        return rc;
    return cred_select(c, user_id, " FOR UPDATE", ret, err);
}

static int pg_cred_put(struct rs_conn *rc_conn, const struct rs_credential *cr,
                       struct rs_error *err)
{
    struct pg_params p = {0};
    pp_int(&p, cr->user_id);
    pp_text(&p, cr->password_hash ? cr->password_hash : "");
    pp_int(&p, cr->password_changed_at);
    pp_text(&p, cr->must_change ? "true" : "false");
    pp_int(&p, cr->failed_count);
    pp_int(&p, cr->failed_first_at);
    pp_int(&p, cr->locked_until);
    pp_text(&p, cr->totp_secret ? cr->totp_secret : "");
    pp_text(&p, cr->totp_pending ? cr->totp_pending : "");
    pp_int(&p, cr->totp_last_step);
    pp_text(&p, cr->ip_ranges ? cr->ip_ranges : "[]");
    pp_int(&p, cr->expiry_notice_at);
    return pg_exec(to_pg(rc_conn),
                   "INSERT INTO credentials (" CRED_COLS ")"
                   " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
                   " ON CONFLICT (user_id) DO UPDATE SET"
                   " password_hash = EXCLUDED.password_hash,"
                   " password_changed_at = EXCLUDED.password_changed_at,"
                   " must_change = EXCLUDED.must_change,"
                   " failed_count = EXCLUDED.failed_count,"
                   " failed_first_at = EXCLUDED.failed_first_at,"
                   " locked_until = EXCLUDED.locked_until,"
                   " totp_secret = EXCLUDED.totp_secret,"
                   " totp_pending = EXCLUDED.totp_pending,"
                   " totp_last_step = EXCLUDED.totp_last_step,"
                   " ip_ranges = EXCLUDED.ip_ranges,"
                   " expiry_notice_at = EXCLUDED.expiry_notice_at",
                   &p, err);
}

/* The predicate repeats credentials_expiry's, so that index serves it. */
static int pg_cred_expiring(struct rs_conn *rc_conn, int64_t changed_before, int limit,
                            int64_t **ret_ids, size_t *ret_n, struct rs_error *err)
{
    struct pg_params p = {0};
    pp_int(&p, changed_before);
    pp_int(&p, limit_of(limit));
    return pg_ids(to_pg(rc_conn),
                  "SELECT c.user_id FROM credentials c JOIN users u ON u.id = c.user_id"
                  " WHERE c.password_hash <> '' AND c.expiry_notice_at < c.password_changed_at"
                  " AND c.password_changed_at <= $1 AND u.status = 'active'"
                  " ORDER BY c.user_id LIMIT $2",
                  &p, ret_ids, ret_n, err);
}

static int pg_cred_lock_expired(struct rs_conn *rc_conn, int64_t now, int limit, int64_t **ret_ids,
                                size_t *ret_n, struct rs_error *err)
{
    struct pg_params p = {0};
    pp_int(&p, now);
    pp_int(&p, limit_of(limit));
    return pg_ids(to_pg(rc_conn),
                  "SELECT c.user_id FROM credentials c JOIN users u ON u.id = c.user_id"
                  " WHERE c.locked_until > 0 AND c.locked_until <= $1 AND u.status = 'locked'"
                  " ORDER BY c.user_id LIMIT $2",
                  &p, ret_ids, ret_n, err);
}

/* Newest is the highest id (two changes in one millisecond keep their order). */
static int pg_pwhist_add(struct rs_conn *rc_conn, int64_t user_id, const char *hash, int64_t at,
                         int keep, struct rs_error *err)
{
    struct pg_conn *c = to_pg(rc_conn);
    struct pg_params p = {0};
    pp_int(&p, user_id);
    pp_text(&p, hash);
    pp_int(&p, at);
    int rc = pg_exec(
        c, "INSERT INTO password_history (user_id, hash, created_at) VALUES ($1, $2, $3)", &p, err);
    if (rc)
        return rc;
    struct pg_params q = {0};
    pp_int(&q, user_id);
    pp_int(&q, limit_of(keep));
    return pg_exec(
        c,
        "DELETE FROM password_history WHERE user_id = $1 AND id NOT IN"
        " (SELECT id FROM password_history WHERE user_id = $1 ORDER BY id DESC LIMIT $2)",
        &q, err);
}

static int pg_pwhist_list(struct rs_conn *rc_conn, int64_t user_id, int limit, char ***ret_hashes,
                          size_t *ret_n, struct rs_error *err)
{
    struct pg_params p = {0};
    pp_int(&p, user_id);
    pp_int(&p, limit_of(limit));
    return pg_list(to_pg(rc_conn),
                   "SELECT hash FROM password_history WHERE user_id = $1 ORDER BY id DESC LIMIT $2",
                   &p, sizeof(**ret_hashes), text_from_row, release_text_item, (void **)ret_hashes,
                   ret_n, err);
}

/* The hashes travel as one JSON array, as user_roles_set's keys do. */
static int pg_recovery_set(struct rs_conn *rc_conn, int64_t user_id, char *const *code_hashes,
                           size_t n, struct rs_error *err)
{
    struct pg_conn *c = to_pg(rc_conn);
    struct pg_params p = {0};
    pp_int(&p, user_id);
    int rc = pg_exec(c, "DELETE FROM recovery_codes WHERE user_id = $1", &p, err);
    if (rc || n == 0)
        return rc;
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, json_string(code_hashes[i]));
    _cleanup_free_ char *text = json_text(arr, 0);
    json_decref(arr);
    pp_text(&p, text);
    return pg_exec(c,
                   "INSERT INTO recovery_codes (user_id, code_hash)"
                   " SELECT $1, value FROM json_array_elements_text($2::json)",
                   &p, err);
}

/* A concurrent use of the same code waits for the row and then finds it used. */
static int pg_recovery_use(struct rs_conn *rc_conn, int64_t user_id, const char *code_hash,
                           int64_t at, bool *ret_used, struct rs_error *err)
{
    struct pg_params p = {0};
    pp_int(&p, at);
    pp_int(&p, user_id);
    pp_text(&p, code_hash);
    bool changed;
    int rc = pg_exec_changed(to_pg(rc_conn),
                             "UPDATE recovery_codes SET used_at = $1"
                             " WHERE user_id = $2 AND code_hash = $3 AND used_at = 0",
                             &p, &changed, err);
    if (rc == 0)
        *ret_used = changed;
    return rc;
}

static int pg_recovery_count(struct rs_conn *rc_conn, int64_t user_id, int *ret,
                             struct rs_error *err)
{
    struct pg_params p = {0};
    pp_int(&p, user_id);
    PGresult *res = NULL;
    int rc = pg_run(to_pg(rc_conn),
                    "SELECT count(*) FROM recovery_codes WHERE user_id = $1 AND used_at = 0", &p,
                    p.n, NULL, &res, err);
    if (rc)
        return rc;
    int64_t n;
    if (PQntuples(res) != 1 || get_i64(res, 0, 0, &n) || n > INT_MAX)
        rc = bad_data("recovery_codes count", err);
    else
        *ret = (int)n;
    PQclear(res);
    return rc;
}

/* Text from the network (a User-Agent, an SMTP server's answer) may not be
 * UTF-8, which a UTF8 database refuses: stored with '?' for bad bytes. */
static char *utf8_copy(const char *s)
{
    char *t = rs_xstrdup(s ? s : "");
    rs_utf8_sanitize(t);
    return t;
}

/* A hash column into a fixed buffer; -1 when it does not fit. */
static int get_hash(PGresult *r, int row, int col, char out[RS_HASH_HEX])
{
    if (PQgetisnull(r, row, col))
        return -1;
    return rs_strlcpy(out, PQgetvalue(r, row, col), RS_HASH_HEX) < RS_HASH_HEX ? 0 : -1;
}

#define SESSION_COLS                                                                               \
    "s.id, s.token_hash, s.user_id, s.created_at, s.last_seen_at, s.expires_at, s.ip,"             \
    " s.user_agent, s.flags, s.csrf_seed, s.privilege_epoch, coalesce(c.privilege_epoch, 0)"
/* The user's credential beside each session: its privilege epoch now. */
#define SESSION_FROM "sessions s LEFT JOIN credentials c ON c.user_id = s.user_id"

static int session_from_row(PGresult *r, int row, void *item, struct rs_error *err)
{
    struct rs_session s;
    memset(&s, 0, sizeof(s));
    int64_t flags;
    int bad = get_i64(r, row, 0, &s.id) || get_hash(r, row, 1, s.token_hash) ||
              get_i64(r, row, 2, &s.user_id) || get_i64(r, row, 3, &s.created_at) ||
              get_i64(r, row, 4, &s.last_seen_at) || get_i64(r, row, 5, &s.expires_at) ||
              get_i64(r, row, 8, &flags) || flags < 0 || flags > UINT_MAX ||
              PQgetisnull(r, row, 6) || PQgetisnull(r, row, 7) || PQgetisnull(r, row, 9) ||
              rs_strlcpy(s.csrf_seed, PQgetvalue(r, row, 9), sizeof(s.csrf_seed)) >=
                  sizeof(s.csrf_seed) ||
              get_i64(r, row, 10, &s.privilege_epoch) || get_i64(r, row, 11, &s.user_epoch);
    if (bad)
        return bad_data("sessions", err);
    s.flags = (unsigned)flags;
    s.ip = get_str(r, row, 6);
    s.user_agent = get_str(r, row, 7);
    *(struct rs_session *)item = s;
    return 0;
}

static void release_session_item(void *item)
{
    rs_session_release(item);
}

static int pg_session_insert(struct rs_conn *rc_conn, struct rs_session *s, struct rs_error *err)
{
    _cleanup_free_ char *ip = utf8_copy(s->ip);
    _cleanup_free_ char *agent = utf8_copy(s->user_agent);
    struct pg_params p = {0};
    pp_text(&p, s->token_hash);
    pp_int(&p, s->user_id);
    pp_int(&p, s->created_at);
    pp_int(&p, s->last_seen_at);
    pp_int(&p, s->expires_at);
    pp_text(&p, ip);
    pp_text(&p, agent);
    pp_int(&p, s->flags);
    pp_text(&p, s->csrf_seed);
    pp_int(&p, s->privilege_epoch);
    int64_t id;
    int rc = pg_insert_id(to_pg(rc_conn),
                          "INSERT INTO sessions (token_hash, user_id, created_at, last_seen_at,"
                          " expires_at, ip, user_agent, flags, csrf_seed, privilege_epoch)"
                          " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
                          &p, "sessions insert", &id, err);
    if (rc == 0)
        s->id = id;
    return rc;
}

/* One session where col = value; col is this file's text. */
static int session_get_where(struct pg_conn *c, const char *col, const char *value,
                             struct rs_session *ret, struct rs_error *err)
{
    struct pg_params p = {0};
    pp_text(&p, value);
    PGresult *res = NULL;
    char *sql = rs_xasprintf("SELECT " SESSION_COLS " FROM " SESSION_FROM " WHERE s.%s = $1", col);
    int rc = pg_run(c, sql, &p, p.n, NULL, &res, err);
    free(sql);
    if (rc)
        return rc;
    if (PQntuples(res) == 0)
        rc = -RS_ENOTFOUND;
    else
        rc = session_from_row(res, 0, ret, err);
    PQclear(res);
    return rc;
}

static int pg_session_find(struct rs_conn *rc_conn, const char *token_hash, struct rs_session *ret,
                           struct rs_error *err)
{
    return session_get_where(to_pg(rc_conn), "token_hash", token_hash, ret, err);
}

static int pg_session_get(struct rs_conn *rc_conn, int64_t id, struct rs_session *ret,
                          struct rs_error *err)
{
    char buf[24];
    snprintf(buf, sizeof(buf), "%" PRId64, id);
    return session_get_where(to_pg(rc_conn), "id", buf, ret, err);
}

/* An UPDATE or DELETE of one row by id: -RS_ENOTFOUND when none matched. */
static int pg_exec_one(struct pg_conn *c, const char *sql, const struct pg_params *p,
                       struct rs_error *err)
{
    bool changed;
    int rc = pg_exec_changed(c, sql, p, &changed, err);
    if (rc == 0 && !changed)
        rc = -RS_ENOTFOUND;
    return rc;
}

/* How many rows a write touched (PQcmdTuples). */
static int pg_exec_count(struct pg_conn *c, const char *sql, const struct pg_params *p, int *ret_n,
                         struct rs_error *err)
{
    PGresult *res = NULL;
    int rc = pg_run(c, sql, p, p->n, NULL, &res, err);
    if (rc)
        return rc;
    int64_t n;
    if (parse_i64(PQcmdTuples(res), &n) || n < 0 || n > INT_MAX)
        rc = bad_data("row count", err);
    else if (ret_n)
        *ret_n = (int)n;
    PQclear(res);
    return rc;
}

static int pg_session_touch(struct rs_conn *rc_conn, int64_t id, int64_t at, struct rs_error *err)
{
    struct pg_params p = {0};
    pp_int(&p, at);
    pp_int(&p, id);
    return pg_exec_one(to_pg(rc_conn), "UPDATE sessions SET last_seen_at = $1 WHERE id = $2", &p,
                       err);
}

static int pg_session_set_flags(struct rs_conn *rc_conn, int64_t id, unsigned flags,
                                struct rs_error *err)
{
    struct pg_params p = {0};
    pp_int(&p, flags);
    pp_int(&p, id);
    return pg_exec_one(to_pg(rc_conn), "UPDATE sessions SET flags = $1 WHERE id = $2", &p, err);
}

static int pg_session_delete(struct rs_conn *rc_conn, int64_t id, struct rs_error *err)
{
    struct pg_params p = {0};
    pp_int(&p, id);
    return pg_exec_one(to_pg(rc_conn), "DELETE FROM sessions WHERE id = $1", &p, err);
}

static int pg_session_delete_user(struct rs_conn *rc_conn, int64_t user_id, int64_t except_id,
                                  int *ret_n, struct rs_error *err)
{
    struct pg_params p = {0};
    pp_int(&p, user_id);
    pp_int(&p, except_id); /* ids start at 1, so 0 excepts none */
    return pg_exec_count(to_pg(rc_conn), "DELETE FROM sessions WHERE user_id = $1 AND id <> $2", &p,
                         ret_n, err);
}

static int pg_session_list_user(struct rs_conn *rc_conn, int64_t user_id, struct rs_session **ret,
                                size_t *ret_n, struct rs_error *err)
{
    struct pg_params p = {0};
    pp_int(&p, user_id);
    return pg_list(to_pg(rc_conn),
                   "SELECT " SESSION_COLS " FROM " SESSION_FROM " WHERE s.user_id = $1"
                   " ORDER BY s.created_at DESC, s.id DESC",
                   &p, sizeof(**ret), session_from_row, release_session_item, (void **)ret, ret_n,
                   err);
}

static int pg_session_purge(struct rs_conn *rc_conn, int64_t now, int64_t idle_before, int *ret_n,
                            struct rs_error *err)
{
    struct pg_params p = {0};
    pp_int(&p, now);
    pp_int(&p, idle_before);
    int rc = pg_exec_count(to_pg(rc_conn),
                           "DELETE FROM sessions WHERE expires_at <= $1 OR last_seen_at <= $2", &p,
                           ret_n, err);
    if (rc)
        return rc;
    struct pg_params q = {0};
    pp_int(&q, now);
    return pg_exec(to_pg(rc_conn), "DELETE FROM session_successors WHERE until <= $1", &q, err);
}

static int pg_session_successor_put(struct rs_conn *rc_conn, const char *token_hash,
                                    int64_t old_id, int64_t new_id, int64_t until,
                                    struct rs_error *err)
{
    struct pg_conn *c = to_pg(rc_conn);
    struct pg_params p = {0};
    pp_int(&p, new_id);
    pp_int(&p, old_id);
    int rc = pg_exec(c, "UPDATE session_successors SET session_id = $1 WHERE session_id = $2", &p,
                     err);
    if (rc)
        return rc;
    struct pg_params q = {0};
    pp_text(&q, token_hash);
    pp_int(&q, new_id);
    pp_int(&q, until);
    return pg_exec(c,
                   "INSERT INTO session_successors (token_hash, session_id, until)"
                   " VALUES ($1, $2, $3) ON CONFLICT (token_hash) DO UPDATE SET"
                   " session_id = EXCLUDED.session_id, until = EXCLUDED.until",
                   &q, err);
}

static int pg_session_successor_find(struct rs_conn *rc_conn, const char *token_hash, int64_t now,
                                     int64_t *ret_id, struct rs_error *err)
{
    struct pg_params p = {0};
    pp_text(&p, token_hash);
    pp_int(&p, now);
    PGresult *res = NULL;
    int rc = pg_run(to_pg(rc_conn),
                    "SELECT session_id FROM session_successors WHERE token_hash = $1"
                    " AND until > $2",
                    &p, p.n, NULL, &res, err);
    if (rc)
        return rc;
    if (PQntuples(res) == 0)
        rc = -RS_ENOTFOUND;
    else if (get_i64(res, 0, 0, ret_id))
        rc = bad_data("session_successors", err);
    PQclear(res);
    return rc;
}

static int pg_cred_privilege_bump(struct rs_conn *rc_conn, const int64_t *user_ids, size_t n,
                                  struct rs_error *err)
{
    for (size_t i = 0; i < n; i++) {
        struct pg_params p = {0};
        pp_int(&p, user_ids[i]);
        int rc = pg_exec(to_pg(rc_conn),
                         "UPDATE credentials SET privilege_epoch = privilege_epoch + 1"
                         " WHERE user_id = $1",
                         &p, err);
        if (rc)
            return rc;
    }
    return 0;
}

static int pg_cred_privilege_bump_group(struct rs_conn *rc_conn, int64_t group_id,
                                        struct rs_error *err)
{
    struct pg_params p = {0};
    pp_int(&p, group_id);
    return pg_exec(to_pg(rc_conn),
                   "UPDATE credentials SET privilege_epoch = privilege_epoch + 1"
                   " WHERE user_id IN (SELECT user_id FROM group_members WHERE group_id = $1)",
                   &p, err);
}

/* The holders as pg_role_held finds them, whatever their status. */
static int pg_cred_privilege_bump_role(struct rs_conn *rc_conn, const char *role_key,
                                       struct rs_error *err)
{
    struct pg_params p = {0};
    pp_text(&p, role_key);
    return pg_exec(to_pg(rc_conn),
                   "UPDATE credentials SET privilege_epoch = privilege_epoch + 1 WHERE user_id IN ("
                   "SELECT id FROM users WHERE role = $1"
                   " UNION SELECT user_id FROM user_roles WHERE role_key = $1"
                   " UNION SELECT m.user_id FROM groups g JOIN group_members m"
                   " ON m.group_id = g.id WHERE g.roles::jsonb ? $1)",
                   &p, err);
}

static int pg_cred_privilege_bump_all(struct rs_conn *rc_conn, struct rs_error *err)
{
    return pg_exec(to_pg(rc_conn), "UPDATE credentials SET privilege_epoch = privilege_epoch + 1",
                   NULL, err);
}

#define TOKEN_COLS "id, token_hash, kind, user_id, created_at, expires_at, used_at, pw_changed_at"

static int token_from_row(PGresult *r, int row, struct rs_auth_token *ret, struct rs_error *err)
{
    struct rs_auth_token t;
    memset(&t, 0, sizeof(t));
    int bad = get_i64(r, row, 0, &t.id) || get_hash(r, row, 1, t.token_hash) ||
              PQgetisnull(r, row, 2) ||
              rs_strlcpy(t.kind, PQgetvalue(r, row, 2), sizeof(t.kind)) >= sizeof(t.kind) ||
              get_i64(r, row, 3, &t.user_id) || get_i64(r, row, 4, &t.created_at) ||
              get_i64(r, row, 5, &t.expires_at) || get_i64(r, row, 6, &t.used_at) ||
              get_i64(r, row, 7, &t.pw_changed_at);
    if (bad)
        return bad_data("auth_tokens", err);
    *ret = t;
    return 0;
}

static int pg_token_insert(struct rs_conn *rc_conn, struct rs_auth_token *t, struct rs_error *err)
{
    struct pg_params p = {0};
    pp_text(&p, t->token_hash);
    pp_text(&p, t->kind);
    pp_int(&p, t->user_id);
    pp_int(&p, t->created_at);
    pp_int(&p, t->expires_at);
    pp_int(&p, t->used_at);
    pp_int(&p, t->pw_changed_at);
    int64_t id;
    int rc = pg_insert_id(to_pg(rc_conn),
                          "INSERT INTO auth_tokens (token_hash, kind, user_id, created_at,"
                          " expires_at, used_at, pw_changed_at)"
                          " VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
                          &p, "auth_tokens insert", &id, err);
    if (rc == 0)
        t->id = id;
    return rc;
}

static int pg_token_find(struct rs_conn *rc_conn, const char *token_hash, struct rs_auth_token *ret,
                         struct rs_error *err)
{
    struct pg_params p = {0};
    pp_text(&p, token_hash);
    PGresult *res = NULL;
    int rc = pg_run(to_pg(rc_conn), "SELECT " TOKEN_COLS " FROM auth_tokens WHERE token_hash = $1",
                    &p, p.n, NULL, &res, err);
    if (rc)
        return rc;
    if (PQntuples(res) == 0)
        rc = -RS_ENOTFOUND;
    else
        rc = token_from_row(res, 0, ret, err);
    PQclear(res);
    return rc;
}

/* Of two concurrent uses the second waits for the row, re-reads it and
 * matches nothing: it lost the race. */
static int pg_token_use(struct rs_conn *rc_conn, int64_t id, int64_t at, struct rs_error *err)
{
    struct pg_params p = {0};
    pp_int(&p, at);
    pp_int(&p, id);
    return pg_exec_one(to_pg(rc_conn),
                       "UPDATE auth_tokens SET used_at = $1 WHERE id = $2 AND used_at = 0", &p,
                       err);
}

static int pg_token_void_user(struct rs_conn *rc_conn, int64_t user_id, const char *kind,
                              int64_t at, struct rs_error *err)
{
    struct pg_params p = {0};
    pp_int(&p, at);
    pp_int(&p, user_id);
    if (kind)
        pp_text(&p, kind);
    return pg_exec(to_pg(rc_conn),
                   kind ? "UPDATE auth_tokens SET used_at = $1"
                          " WHERE user_id = $2 AND used_at = 0 AND kind = $3"
                        : "UPDATE auth_tokens SET used_at = $1 WHERE user_id = $2 AND used_at = 0",
                   &p, err);
}

/* ---- sign-in: rate limits, outbox, leases -------------------------------- */

/* One upsert: a concurrent hit on the same key waits for the row and then
 * counts on top of it. Every SET expression reads the row as it was, so both
 * CASEs judge the old window. */
static int pg_rate_hit(struct rs_conn *rc_conn, const char *key, int64_t now, int64_t window_ms,
                       int add, int64_t *ret_count, int64_t *ret_window_start, struct rs_error *err)
{
    struct pg_params p = {0};
    pp_text(&p, key);
    pp_int(&p, now);
    pp_int(&p, window_ms);
    const char *sql = "SELECT count, window_start FROM rate_limits WHERE key = $1"
                      " AND window_start > $2::bigint - $3::bigint";
    if (add != 0) {
        pp_int(&p, add);
        sql = "INSERT INTO rate_limits (key, window_start, count)"
              " VALUES ($1, $2::bigint, $4::bigint)"
              " ON CONFLICT (key) DO UPDATE SET"
              " window_start = CASE WHEN rate_limits.window_start <= $2::bigint - $3::bigint"
              " THEN $2::bigint ELSE rate_limits.window_start END,"
              " count = CASE WHEN rate_limits.window_start <= $2::bigint - $3::bigint"
              " THEN $4::bigint ELSE rate_limits.count + $4::bigint END"
              " RETURNING count, window_start";
    }
    PGresult *res = NULL;
    int rc = pg_run(to_pg(rc_conn), sql, &p, p.n, NULL, &res, err);
    if (rc)
        return rc;
    int64_t count = 0;
    int64_t start = now; /* no current window: it would start now, empty */
    if (PQntuples(res) > 1 ||
        (PQntuples(res) == 1 && (get_i64(res, 0, 0, &count) || get_i64(res, 0, 1, &start))))
        rc = bad_data("rate_limits", err);
    PQclear(res);
    if (rc)
        return rc;
    *ret_count = count;
    *ret_window_start = start;
    return 0;
}

static int pg_rate_reset(struct rs_conn *rc_conn, const char *key, struct rs_error *err)
{
    struct pg_params p = {0};
    pp_text(&p, key);
    return pg_exec(to_pg(rc_conn), "DELETE FROM rate_limits WHERE key = $1", &p, err);
}

static int pg_rate_purge(struct rs_conn *rc_conn, int64_t before, struct rs_error *err)
{
    struct pg_params p = {0};
    pp_int(&p, before);
    return pg_exec(to_pg(rc_conn), "DELETE FROM rate_limits WHERE window_start < $1", &p, err);
}

#define MAIL_COLS                                                                                  \
    "id, created_at, kind, user_id, to_addr, subject, message, status, attempts,"                  \
    " next_attempt_at, sent_at, last_error"

static int mail_from_row(PGresult *r, int row, void *item, struct rs_error *err)
{
    struct rs_mail m;
    memset(&m, 0, sizeof(m));
    int64_t attempts;
    int bad = get_i64(r, row, 0, &m.id) || get_i64(r, row, 1, &m.created_at) ||
              get_i64(r, row, 3, &m.user_id) || get_i64(r, row, 8, &attempts) || attempts < 0 ||
              attempts > INT_MAX || get_i64(r, row, 9, &m.next_attempt_at) ||
              get_i64(r, row, 10, &m.sent_at);
    for (int col = 2; col <= 11 && !bad; col++)
        bad = (col == 2 || (col >= 4 && col <= 7) || col == 11) && PQgetisnull(r, row, col);
    if (bad)
        return bad_data("outbox", err);
    m.attempts = (int)attempts;
    m.kind = get_str(r, row, 2);
    m.to_addr = get_str(r, row, 4);
    m.subject = get_str(r, row, 5);
    m.message = get_str(r, row, 6);
    m.status = get_str(r, row, 7);
    m.last_error = get_str(r, row, 11);
    *(struct rs_mail *)item = m;
    return 0;
}

static void release_mail_item(void *item)
{
    rs_mail_release(item);
}

static int pg_mail_insert(struct rs_conn *rc_conn, struct rs_mail *m, struct rs_error *err)
{
    struct pg_params p = {0};
    pp_int(&p, m->created_at);
    pp_text(&p, m->kind ? m->kind : "");
    pp_int(&p, m->user_id);
    pp_text(&p, m->to_addr ? m->to_addr : "");
    pp_text(&p, m->subject ? m->subject : "");
    pp_text(&p, m->message ? m->message : "");
    pp_int(&p, m->next_attempt_at);
    int64_t id;
    int rc = pg_insert_id(to_pg(rc_conn),
                          "INSERT INTO outbox (created_at, kind, user_id, to_addr, subject,"
                          " message, status, attempts, next_attempt_at, sent_at, last_error)"
                          " VALUES ($1, $2, $3, $4, $5, $6, 'pending', 0, $7, 0, '') RETURNING id",
                          &p, "outbox insert", &id, err);
    if (rc == 0)
        m->id = id;
    return rc;
}

/* Oldest (first queued) first. */
static int pg_mail_due(struct rs_conn *rc_conn, int64_t now, int max, struct rs_mail **ret,
                       size_t *ret_n, struct rs_error *err)
{
    struct pg_params p = {0};
    pp_int(&p, now);
    pp_int(&p, limit_of(max));
    return pg_list(to_pg(rc_conn),
                   "SELECT " MAIL_COLS " FROM outbox"
                   " WHERE status = 'pending' AND next_attempt_at <= $1 ORDER BY id LIMIT $2",
                   &p, sizeof(**ret), mail_from_row, release_mail_item, (void **)ret, ret_n, err);
}

static int pg_mail_mark_sent(struct rs_conn *rc_conn, int64_t id, int64_t at, struct rs_error *err)
{
    struct pg_params p = {0};
    pp_int(&p, at);
    pp_int(&p, id);
    return pg_exec_one(to_pg(rc_conn),
                       /* The message goes: it may carry live links. */
                       "UPDATE outbox SET status = 'sent', sent_at = $1, attempts = attempts + 1,"
                       " message = '' WHERE id = $2",
                       &p, err);
}

static int pg_mail_mark_retry(struct rs_conn *rc_conn, int64_t id, int attempts,
                              int64_t next_attempt_at, const char *last_error, bool give_up,
                              struct rs_error *err)
{
    /* A refused answer would leave next_attempt_at as it was: a busy loop. */
    _cleanup_free_ char *why = utf8_copy(last_error);
    struct pg_params p = {0};
    pp_int(&p, attempts);
    pp_int(&p, next_attempt_at);
    pp_text(&p, why);
    pp_int(&p, id);
    return pg_exec_one(to_pg(rc_conn),
                       give_up ? "UPDATE outbox SET attempts = $1, next_attempt_at = $2,"
                                 " last_error = $3, status = 'failed', message = '' WHERE id = $4"
                               : "UPDATE outbox SET attempts = $1, next_attempt_at = $2,"
                                 " last_error = $3 WHERE id = $4",
                       &p, err);
}

static int pg_mail_list(struct rs_conn *rc_conn, const char *status, int64_t user_id, int limit,
                        struct rs_mail **ret, size_t *ret_n, struct rs_error *err)
{
    struct pg_params p = {0};
    struct pg_sql sql = {0};
    sql_add(&sql, "SELECT " MAIL_COLS " FROM outbox WHERE TRUE");
    filter_eq(&sql, &p, "status", status);
    filter_int(&sql, &p, " AND user_id = $%d", user_id);
    sql_add(&sql, " ORDER BY id DESC LIMIT $%d", pp_int(&p, limit_of(limit)));
    int rc = pg_list(to_pg(rc_conn), sql.buf, &p, sizeof(**ret), mail_from_row, release_mail_item,
                     (void **)ret, ret_n, err);
    free(sql.buf);
    return rc;
}

static int pg_work_insert(struct rs_conn *rc_conn, struct rs_work *w, struct rs_error *err)
{
    struct pg_params p = {0};
    pp_text(&p, w->kind ? w->kind : "");
    pp_text(&p, w->payload ? w->payload : "");
    pp_int(&p, w->created_at);
    return pg_insert_id(to_pg(rc_conn),
                        "INSERT INTO work_queue (kind, payload, created_at) VALUES ($1, $2, $3)"
                        " RETURNING id",
                        &p, "work_queue insert", &w->id, err);
}

static int work_from_row(PGresult *r, int row, void *item, struct rs_error *err)
{
    struct rs_work w = {0};
    if (get_i64(r, row, 0, &w.id) || get_i64(r, row, 3, &w.created_at) ||
        PQgetisnull(r, row, 1) || PQgetisnull(r, row, 2))
        return bad_data("work_queue", err);
    w.kind = get_str(r, row, 1);
    w.payload = get_str(r, row, 2);
    *(struct rs_work *)item = w;
    return 0;
}

static void release_work_item(void *item)
{
    rs_work_release(item);
}

static int pg_work_due(struct rs_conn *rc_conn, const char *kind, int max, struct rs_work **ret,
                       size_t *ret_n, struct rs_error *err)
{
    struct pg_params p = {0};
    pp_text(&p, kind);
    pp_int(&p, limit_of(max));
    return pg_list(to_pg(rc_conn),
                   "SELECT id, kind, payload, created_at FROM work_queue WHERE kind = $1"
                   " ORDER BY id LIMIT $2",
                   &p, sizeof(**ret), work_from_row, release_work_item, (void **)ret, ret_n, err);
}

/* A second taker blocks on the row lock until the first commits, then finds
 * nothing to delete. */
static int pg_work_take(struct rs_conn *rc_conn, int64_t id, struct rs_error *err)
{
    struct pg_params p = {0};
    pp_int(&p, id);
    return pg_exec_one(to_pg(rc_conn), "DELETE FROM work_queue WHERE id = $1", &p, err);
}

/* One statement in its own transaction: a row that is not there is inserted;
 * a concurrent inserter of the same name waits for the first and then meets
 * the WHERE like any other; a row held by someone else until after now is
 * left alone and nothing comes back. */
static int pg_lease_acquire(struct rs_conn *rc_conn, const char *name, const char *owner,
                            int64_t now, int64_t until, bool *ret_got, struct rs_error *err)
{
    struct pg_params p = {0};
    pp_text(&p, name);
    pp_text(&p, owner);
    pp_int(&p, until);
    pp_int(&p, now);
    PGresult *res = NULL;
    int rc = pg_run(to_pg(rc_conn),
                    "INSERT INTO leases (name, owner, until) VALUES ($1, $2, $3)"
                    " ON CONFLICT (name) DO UPDATE SET owner = EXCLUDED.owner,"
                    " until = EXCLUDED.until"
                    " WHERE leases.until <= $4::bigint OR leases.owner = EXCLUDED.owner"
                    " RETURNING owner",
                    &p, p.n, NULL, &res, err);
    if (rc)
        return rc;
    if (PQntuples(res) > 1)
        rc = bad_data("leases", err);
    else
        *ret_got = PQntuples(res) == 1;
    PQclear(res);
    return rc;
}

static int pg_lease_release(struct rs_conn *rc_conn, const char *name, const char *owner,
                            struct rs_error *err)
{
    struct pg_params p = {0};
    pp_text(&p, name);
    pp_text(&p, owner);
    return pg_exec(to_pg(rc_conn), "DELETE FROM leases WHERE name = $1 AND owner = $2", &p, err);
}

/* ---- open --------------------------------------------------------------- */

static const struct rs_store_ops pg_ops = {
    .name = "postgres",
    .reads_inline = false,
    .close = pg_close,
    .migrate = pg_migrate,
    .schema_version = pg_schema_version,
    .stats = pg_stats,
    .acquire = pg_acquire,
    .release = pg_release,
    .ping = pg_ping,
    .begin = pg_begin,
    .commit = pg_commit,
    .rollback = pg_rollback,
    .user_insert = pg_user_insert,
    .user_get = pg_user_get,
    .user_get_by_username = pg_user_get_by_username,
    .user_update = pg_user_update,
    .user_get_for_update = pg_user_get_for_update,
    .user_list = pg_user_list,
    .users_exist = pg_users_exist,
    .user_manager_chain = pg_user_manager_chain,
    .user_count_status = pg_user_count_status,
    .apikey_revoke_user = pg_apikey_revoke_user,
    .settings_get = pg_settings_get,
    .settings_put = pg_settings_put,
    .access_version_get = pg_access_version_get,
    .access_version_bump = pg_access_version_bump,
    .resource_list = pg_resource_list,
    .resource_insert = pg_resource_insert,
    .role_list = pg_role_list,
    .role_insert = pg_role_insert,
    .role_update = pg_role_update,
    .user_roles_get = pg_user_roles_get,
    .user_roles_set = pg_user_roles_set,
    .group_list = pg_group_list,
    .group_get = pg_group_get,
    .group_insert = pg_group_insert,
    .group_update = pg_group_update,
    .group_delete = pg_group_delete,
    .group_members_add = pg_group_members_add,
    .group_member_remove = pg_group_member_remove,
    .groups_of_user = pg_groups_of_user,
    .role_held = pg_role_held,
    .cf_list = pg_cf_list,
    .cf_insert = pg_cf_insert,
    .cf_update = pg_cf_update,
    .audit_insert = pg_audit_insert,
    .audit_list_target = pg_audit_list_target,
    .apikey_insert = pg_apikey_insert,
    .apikey_find = pg_apikey_find,
    .apikey_list = pg_apikey_list,
    .apikey_get = pg_apikey_get,
    .apikey_revoke = pg_apikey_revoke,
    .apikey_touch = pg_apikey_touch,
    .user_get_by_email = pg_user_get_by_email,
    .user_set_last_login = pg_user_set_last_login,
    .cred_get = pg_cred_get,
    .cred_get_for_update = pg_cred_get_for_update,
    .cred_put = pg_cred_put,
    .cred_expiring = pg_cred_expiring,
    .cred_lock_expired = pg_cred_lock_expired,
    .pwhist_add = pg_pwhist_add,
    .pwhist_list = pg_pwhist_list,
    .recovery_set = pg_recovery_set,
    .recovery_use = pg_recovery_use,
    .recovery_count = pg_recovery_count,
    .session_insert = pg_session_insert,
    .session_find = pg_session_find,
    .session_get = pg_session_get,
    .session_touch = pg_session_touch,
    .session_set_flags = pg_session_set_flags,
    .session_delete = pg_session_delete,
    .session_delete_user = pg_session_delete_user,
    .session_list_user = pg_session_list_user,
    .session_purge = pg_session_purge,
    .session_successor_put = pg_session_successor_put,
    .session_successor_find = pg_session_successor_find,
    .cred_privilege_bump = pg_cred_privilege_bump,
    .cred_privilege_bump_group = pg_cred_privilege_bump_group,
    .cred_privilege_bump_role = pg_cred_privilege_bump_role,
    .cred_privilege_bump_all = pg_cred_privilege_bump_all,
    .token_insert = pg_token_insert,
    .token_find = pg_token_find,
    .token_use = pg_token_use,
    .token_void_user = pg_token_void_user,
    .rate_hit = pg_rate_hit,
    .rate_reset = pg_rate_reset,
    .rate_purge = pg_rate_purge,
    .mail_insert = pg_mail_insert,
    .mail_due = pg_mail_due,
    .mail_mark_sent = pg_mail_mark_sent,
    .mail_mark_retry = pg_mail_mark_retry,
    .mail_list = pg_mail_list,
    .work_insert = pg_work_insert,
    .work_due = pg_work_due,
    .work_take = pg_work_take,
    .lease_acquire = pg_lease_acquire,
    .lease_release = pg_lease_release,
};

/* "host:port" from the URL for messages, without user or password. */
static char *describe_host(const char *url)
{
    char *errmsg = NULL;
    PQconninfoOption *opts = PQconninfoParse(url, &errmsg);
    if (!opts) {
        PQfreemem(errmsg);
        return rs_xstrdup("PostgreSQL (unparsable URL)");
    }
    const char *host = NULL;
    const char *hostaddr = NULL;
    const char *port = NULL;
    const char *dbname = NULL;
    for (PQconninfoOption *o = opts; o->keyword; o++) {
        if (!o->val || !*o->val)
            continue;
        if (strcmp(o->keyword, "host") == 0)
            host = o->val;
        else if (strcmp(o->keyword, "hostaddr") == 0)
            hostaddr = o->val;
        else if (strcmp(o->keyword, "port") == 0)
            port = o->val;
        else if (strcmp(o->keyword, "dbname") == 0)
            dbname = o->val;
    }
    if (!host)
        host = hostaddr ? hostaddr : "localhost (default socket)";
    char *out = rs_xasprintf("PostgreSQL at %s port %s%s%s", host, port ? port : "5432",
                             dbname ? ", database " : "", dbname ? dbname : "");
    PQconninfoFree(opts);
    return out;
}

int rs_postgres_open(const struct rs_store_config *cfg, struct rs_store **ret, struct rs_error *err)
{
    if (!cfg || !cfg->url)
        return rs_error_set(err, RS_EINTERNAL, "no PostgreSQL URL given");
    int lr = rs_pq_load(err);
    if (lr < 0)
        return lr;
    struct pg_store *s = rs_xcalloc(1, sizeof(*s));
    s->base.ops = &pg_ops;
    s->url = rs_xstrdup(cfg->url);
    s->host = describe_host(cfg->url);
    s->size = cfg->pool_size > 0 ? cfg->pool_size : PG_POOL_DEFAULT;
    s->conns = rs_xcalloc((size_t)s->size, sizeof(*s->conns));
    for (int i = 0; i < s->size; i++)
        s->conns[i].store = s;
    pthread_mutex_init(&s->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->cv, &ca);
    pthread_condattr_destroy(&ca);

    /* One connection now, so a wrong URL or a down server fails at start. */
    PGconn *pq = pg_connect(s, err);
    if (!pq) {
        pg_close(&s->base);
        return -RS_EUNAVAILABLE;
    }
    s->conns[0].pq = pq;
    s->conns[0].state = PG_SLOT_IDLE;
    s->nopen = 1;
    *ret = &s->base;
    return 0;
}
