/* server.h: the HTTP server: h2o on libuv, one event loop per core, each
 * with its own SO_REUSEPORT listener, optionally behind TLS. Reads that the
 * store can answer in microseconds run on the loop; anything that may wait
 * runs on libuv's worker pool and answers back on its own loop. */
#ifndef RS_SERVER_H
#define RS_SERVER_H

#include "../core/error.h"
#include "../store/store.h"

struct rs_server_config {
    const char *listen;        /* "127.0.0.1:8080", "[::1]:8080" */
    int threads;               /* event loops; 0: one per core */
    size_t max_body;           /* bytes; larger bodies get 413 */
    size_t max_header_bytes;   /* all request headers together; larger get 431 */
    int max_connections;       /* per process; more are closed at accept */
    int request_timeout_ms;    /* to receive a request, and keep-alive idle time */
    int shutdown_timeout_ms;   /* graceful shutdown deadline */
    const char *tls_cert;      /* PEM certificate chain file, or NULL (plain HTTP) */
    const char *tls_key;       /* PEM private key file; set exactly when tls_cert is */
    const char *trusted_proxies; /* comma-separated CIDR list, or NULL: whose
                                  * X-Forwarded-For/-Proto are believed */
    int hash_concurrency;      /* password-hashing calls at once; 0: one per event loop */
    bool loop_yield;           /* a loop that served requests yields its core before
                                * polling again (server.c, before_poll); default on */
};

void rs_server_config_defaults(struct rs_server_config *cfg);

/* Checks what can be checked before serving: the TLS pair (both or neither;
 * the files load and the key matches the certificate) and the trusted proxy
 * list. Fails with -RS_EVALIDATION and a message naming the option. */
int rs_server_config_check(const struct rs_server_config *cfg, struct rs_error *err) RS_WUR;

/* Serves until SIGTERM or SIGINT, then stops accepting, finishes in-flight
 * requests and returns 0. Prints "roster listening on http://HOST:PORT"
 * (https:// with TLS) on stdout once every loop accepts. The caller closes the
 * store afterwards. */
int rs_server_run(const struct rs_server_config *cfg, struct rs_store *store,
                  struct rs_error *err) RS_WUR;

#endif
