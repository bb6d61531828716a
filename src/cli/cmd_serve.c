/* cmd_serve.c: `roster serve`: open and migrate the database, load the
 * server key, create the first administrator on an empty one (printing its
 * key once), start the background jobs, and serve. */
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>

#include "../http/server.h"
#include "../service/crypto.h"
#include "../service/notify.h"
#include "../util/log.h"
#include "cli.h"

static void serve_usage(FILE *out)
{
    fprintf(out,
            "usage: roster serve [OPTIONS]\n\n"
            "  --listen HOST:PORT     address to serve on (ROSTER_LISTEN; 127.0.0.1:8080)\n"
            "  --db URL               sqlite:PATH or postgres://... (ROSTER_DB; %s)\n"
            "  --base-url URL         public URL of this server, for links in mail\n"
            "                         (ROSTER_BASE_URL; http://LISTEN)\n"
            "  --log-level LEVEL      debug, info, warn, error, off (ROSTER_LOG_LEVEL; info)\n"
            "  --threads N            event loops (ROSTER_THREADS; one per core)\n"
            "  --db-pool-size N       PostgreSQL connections (ROSTER_DB_POOL_SIZE; 8)\n"
            "  --max-body BYTES       largest request body (ROSTER_MAX_BODY; 1048576)\n"
            "  --max-connections N    open connections (ROSTER_MAX_CONNECTIONS; 10000)\n"
            "  --request-timeout MS   to receive a request; keep-alive idle time\n"
            "                         (ROSTER_REQUEST_TIMEOUT; 10000)\n"
            "  --tls-cert FILE        PEM certificate chain: serve HTTPS (ROSTER_TLS_CERT)\n"
            "  --tls-key FILE         PEM private key of --tls-cert (ROSTER_TLS_KEY)\n"
            "  --trusted-proxies LIST comma-separated CIDR ranges whose X-Forwarded-For and\n"
            "                         X-Forwarded-Proto are believed (ROSTER_TRUSTED_PROXIES)\n"
            "  --hash-concurrency N   password hashes computed at once; twice as many\n"
            "                         sign-in calls on the pool (ROSTER_HASH_CONCURRENCY;\n"
            "                         one per event loop)\n"
            "  --loop-yield on|off    a loop that has served requests lets other ready\n"
            "                         processes run before it polls again: on when clients,\n"
            "                         proxy and database share its cores; off beside\n"
            "                         CPU-bound batch work (ROSTER_LOOP_YIELD; on)\n"
            "  --secret-key-file FILE the server key, created (0600) when missing\n"
            "                         (ROSTER_SECRET_KEY_FILE; roster.key beside the SQLite\n"
            "                         file, var/roster.key for PostgreSQL)\n",
            RS_DEFAULT_DB);
}

enum { O_LISTEN = 1, O_DB, O_BASE_URL, O_LOG_LEVEL, O_THREADS, O_POOL, O_MAX_BODY, O_MAX_CONN,
       O_TIMEOUT, O_TLS_CERT, O_TLS_KEY, O_PROXIES, O_HASH, O_YIELD, O_KEY_FILE, O_HELP };

/* roster.key beside the SQLite file; var/roster.key otherwise. Caller frees. */
static char *default_key_file(const char *db)
{
    if (strncmp(db, "sqlite:", 7) != 0)
        return rs_xstrdup("var/roster.key");
    const char *path = db + 7;
    const char *slash = strrchr(path, '/');
    if (!slash)
        return rs_xstrdup("roster.key");
    return rs_xasprintf("%.*s/roster.key", (int)(slash - path), path);
}

/* Everything a start needs besides the database, checked before it is
 * opened: a bad flag costs no migration. */
static int serve_check(const struct rs_server_config *cfg)
{
    if ((cfg->tls_cert != NULL) != (cfg->tls_key != NULL)) {
        fprintf(stderr, "roster: --tls-cert and --tls-key go together: %s is missing\n",
                cfg->tls_cert ? "--tls-key (ROSTER_TLS_KEY)" : "--tls-cert (ROSTER_TLS_CERT)");
        return -1;
    }
    struct rs_error err;
    rs_error_init(&err);
    if (rs_server_config_check(cfg, &err) < 0) {
        fprintf(stderr, "roster: %s\n", err.message);
        return -1;
    }
    return 0;
}

/* The dummy hash an unknown user's sign-in is checked against is made on a
 * thread of its own while the server starts listening: one argon2id
 * computation (~20 ms) that start-up need not wait for. A sign-in that comes
 * first makes it itself, which costs what the verification it stands for
 * costs (rs_pw_dummy_verify), so no answer is slower either way. */
static pthread_t dummy_thread;
static bool dummy_started;

static void *dummy_main(void *arg)
{
    struct rs_store *store = arg;
    pthread_setname_np(pthread_self(), "roster-dummy");
    struct rs_ctx ctx;
    struct rs_error err;
    rs_ctx_init(&ctx, store);
    rs_error_init(&err);
    int mem = 0, iter = 0;
    int r = rs_svc_signin_prepare(&ctx, &mem, &iter, &err);
    rs_ctx_release(&ctx);
    if (r < 0) {
        rs_log(RS_LOG_WARN, "dummy password hash not made; the first unknown sign-in makes it",
               "error", err.message, "detail", err.log_detail, NULL);
        return NULL;
    }
    char mem_text[16], iter_text[16];
    snprintf(mem_text, sizeof(mem_text), "%d", mem);
    snprintf(iter_text, sizeof(iter_text), "%d", iter);
    rs_log(RS_LOG_INFO, "sign-in ready: dummy password hash made", "hash_memory_kib", mem_text,
           "hash_iterations", iter_text, NULL);
    return NULL;
}

static void serve_stop(struct rs_store *store, bool jobs)
{
    if (dummy_started) { /* it reads the store: done before the store closes */
        pthread_join(dummy_thread, NULL);
        dummy_started = false;
    }
    if (jobs)
        rs_jobs_stop();
    store->ops->close(store);
}

int rs_cmd_serve(int argc, char **argv)
{
    static const struct option opts[] = {
        {"listen", required_argument, NULL, O_LISTEN},
        {"db", required_argument, NULL, O_DB},
        {"base-url", required_argument, NULL, O_BASE_URL},
        {"log-level", required_argument, NULL, O_LOG_LEVEL},
        {"threads", required_argument, NULL, O_THREADS},
        {"db-pool-size", required_argument, NULL, O_POOL},
        {"max-body", required_argument, NULL, O_MAX_BODY},
        {"max-connections", required_argument, NULL, O_MAX_CONN},
        {"request-timeout", required_argument, NULL, O_TIMEOUT},
        {"tls-cert", required_argument, NULL, O_TLS_CERT},
        {"tls-key", required_argument, NULL, O_TLS_KEY},
        {"trusted-proxies", required_argument, NULL, O_PROXIES},
        {"hash-concurrency", required_argument, NULL, O_HASH},
        {"loop-yield", required_argument, NULL, O_YIELD},
        {"secret-key-file", required_argument, NULL, O_KEY_FILE},
        {"help", no_argument, NULL, O_HELP},
        {NULL, 0, NULL, 0},
    };
    const char *v[O_HELP] = {0};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c == O_HELP) {
            serve_usage(stdout);
            return RS_EXIT_OK;
        }
        if (c <= 0 || c >= O_HELP) {
            serve_usage(stderr);
            return RS_EXIT_USAGE;
        }
        v[c] = optarg;
    }
    if (optind < argc) {
        fprintf(stderr, "roster serve: unexpected argument \"%s\"\n", argv[optind]);
        return RS_EXIT_USAGE;
    }

    struct rs_server_config cfg;
    rs_server_config_defaults(&cfg);
    cfg.listen = rs_cli_opt(v[O_LISTEN], "ROSTER_LISTEN", cfg.listen);
    const char *db = rs_cli_opt(v[O_DB], "ROSTER_DB", RS_DEFAULT_DB);
    const char *level_s = rs_cli_opt(v[O_LOG_LEVEL], "ROSTER_LOG_LEVEL", "info");
    const char *base_url = rs_cli_opt(v[O_BASE_URL], "ROSTER_BASE_URL", NULL);
    long threads = 0, pool = 8, max_body = (long)cfg.max_body, max_conn = cfg.max_connections,
         timeout = cfg.request_timeout_ms, hash = 0;
    const char *s;
    if (((s = rs_cli_opt(v[O_THREADS], "ROSTER_THREADS", NULL)) &&
         rs_cli_int("--threads", s, 1, 64, &threads) < 0) ||
        ((s = rs_cli_opt(v[O_POOL], "ROSTER_DB_POOL_SIZE", NULL)) &&
         rs_cli_int("--db-pool-size", s, 1, 1000, &pool) < 0) ||
        ((s = rs_cli_opt(v[O_MAX_BODY], "ROSTER_MAX_BODY", NULL)) &&
         rs_cli_int("--max-body", s, 1024, 64L * 1024 * 1024, &max_body) < 0) ||
        ((s = rs_cli_opt(v[O_MAX_CONN], "ROSTER_MAX_CONNECTIONS", NULL)) &&
         rs_cli_int("--max-connections", s, 1, 1000000, &max_conn) < 0) ||
        ((s = rs_cli_opt(v[O_TIMEOUT], "ROSTER_REQUEST_TIMEOUT", NULL)) &&
         rs_cli_int("--request-timeout", s, 100, 3600000, &timeout) < 0) ||
        ((s = rs_cli_opt(v[O_HASH], "ROSTER_HASH_CONCURRENCY", NULL)) &&
         rs_cli_int("--hash-concurrency", s, 1, 1024, &hash) < 0))
        return RS_EXIT_USAGE;
    enum rs_log_level level;
    if (rs_log_level_parse(level_s, &level) < 0) {
        fprintf(stderr, "roster: --log-level must be debug, info, warn, error or off\n");
        return RS_EXIT_USAGE;
    }
    if (base_url && strncmp(base_url, "http://", 7) != 0 && strncmp(base_url, "https://", 8) != 0) {
        fprintf(stderr, "roster: --base-url must start with http:// or https://\n");
        return RS_EXIT_USAGE;
    }
    const char *yield = rs_cli_opt(v[O_YIELD], "ROSTER_LOOP_YIELD", "on");
    if (strcmp(yield, "on") != 0 && strcmp(yield, "off") != 0) {
        fprintf(stderr, "roster: --loop-yield must be on or off\n");
        return RS_EXIT_USAGE;
    }
    rs_log_set_level(level);
    cfg.loop_yield = strcmp(yield, "on") == 0;
    cfg.threads = (int)threads;
    cfg.max_body = (size_t)max_body;
    cfg.max_connections = (int)max_conn;
    cfg.request_timeout_ms = (int)timeout;
    cfg.hash_concurrency = (int)hash;
    cfg.tls_cert = rs_cli_opt(v[O_TLS_CERT], "ROSTER_TLS_CERT", NULL);
    cfg.tls_key = rs_cli_opt(v[O_TLS_KEY], "ROSTER_TLS_KEY", NULL);
    cfg.trusted_proxies = rs_cli_opt(v[O_PROXIES], "ROSTER_TRUSTED_PROXIES", NULL);
    if (serve_check(&cfg) < 0)
        return RS_EXIT_USAGE;
    _cleanup_free_ char *key_default = default_key_file(db);
    const char *key_file = rs_cli_opt(v[O_KEY_FILE], "ROSTER_SECRET_KEY_FILE", key_default);
    /* Links in mail: the configured public URL, else this server's address. */
    _cleanup_free_ char *base_default =
        rs_xasprintf("%s://%s", cfg.tls_cert ? "https" : "http", cfg.listen);
    rs_outbox_set_base_url(base_url ? base_url : base_default);
    const char *test_clock = getenv("ROSTER_TEST_CLOCK");
    if (test_clock && strcmp(test_clock, "1") == 0)
        rs_log(RS_LOG_WARN, "test clock enabled",
               "detail", "PUT /api/v1/test/clock can move this server's time; tests only", NULL);

    struct rs_store *store = rs_cli_open_store(db, (int)pool);
    if (!store)
        return RS_EXIT_ERROR;

    struct rs_ctx ctx;
    struct rs_error err;
    rs_error_init(&err);
    if (rs_keys_load(key_file, &err) < 0) {
        fprintf(stderr, "roster: %s (--secret-key-file, ROSTER_SECRET_KEY_FILE)\n", err.message);
        store->ops->close(store);
        return RS_EXIT_ERROR;
    }
    rs_ctx_init(&ctx, store);
    bool created = false;
    char token[RS_APIKEY_TOKEN_MAX];
    int r = rs_svc_bootstrap(&ctx, &created, token, &err);
    rs_ctx_release(&ctx);
    if (r < 0) {
        fprintf(stderr, "roster: could not set up the first administrator\n");
        rs_cli_print_error(&err);
        store->ops->close(store);
        return RS_EXIT_ERROR;
    }
    if (created) {
        /* Shown once: only its hash is stored. */
        printf("admin API key: %s\n", token);
        fflush(stdout);
        rs_log(RS_LOG_INFO, "created the first administrator \"admin\" and its API key", NULL);
    }
    rs_ctx_release(&ctx);
    int e = pthread_create(&dummy_thread, NULL, dummy_main, store);
    if (e != 0)
        rs_log(RS_LOG_WARN, "could not start the dummy-hash thread; the first unknown sign-in "
               "makes it", "error", strerror(e), NULL);
    dummy_started = e == 0;

    struct rs_jobs_config jobs = {.store = store, .interval_ms = 0};
    r = rs_jobs_start(&jobs, &err);
    if (r < 0) {
        fprintf(stderr, "roster: could not start the background jobs\n");
        rs_cli_print_error(&err);
        serve_stop(store, false);
        return RS_EXIT_ERROR;
    }
    r = rs_access_watch_start(store, &err);
    if (r == 0) {
        r = rs_server_run(&cfg, store, &err);
        rs_access_watch_stop();
    }
    serve_stop(store, true);
    if (r < 0) {
        rs_cli_print_error(&err);
        return RS_EXIT_ERROR;
    }
    return RS_EXIT_OK;
}
