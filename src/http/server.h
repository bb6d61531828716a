/* server.h: the HTTP server: h2o on libuv, one event loop per core, each
 * with its own SO_REUSEPORT listener. Reads that the store can answer in
 * microseconds run on the loop; anything that may wait runs on libuv's worker
 * pool and answers back on its own loop. */
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
};

void rs_server_config_defaults(struct rs_server_config *cfg);

/* Serves until SIGTERM or SIGINT, then stops accepting, finishes in-flight
 * requests and returns 0. Prints "roster listening on http://HOST:PORT" on
 * stdout once every loop accepts. The caller closes the store afterwards. */
int rs_server_run(const struct rs_server_config *cfg, struct rs_store *store,
                  struct rs_error *err) RS_WUR;

#endif
