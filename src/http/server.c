/* server.c: h2o + libuv transport (see server.h). A request's way: match the
 * route, check headers and body limits, copy what the call needs out of h2o's
 * memory, then authenticate and run the handler inline (fast reads) or on the
 * worker pool (writes, or any store whose reads may wait), and answer on the
 * loop that received the request. */
#include <arpa/inet.h>
#include <errno.h>
#include <malloc.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <h2o.h>
#include <h2o/http1.h>
#include <h2o/http2.h>
#include <sodium.h>
#include <uv.h>

#include "../util/log.h"
#include "http.h"
#include "server.h"

struct server;

struct worker {
    int index;
    struct server *srv;
    pthread_t thread;
    uv_loop_t loop;
    h2o_context_t ctx;
    h2o_accept_ctx_t accept_ctx;
    uv_tcp_t listener;
    int listen_fd;
    uv_async_t wake;
    uv_timer_t drain_timer;
    bool stopping;
    uint64_t stop_started_ns;
    uint64_t idle_since_ns;
    unsigned in_flight;   /* jobs on the worker pool */
    unsigned connections;
    uint64_t rid_prefix;
    uint64_t rid_counter;
};

struct server {
    const struct rs_server_config *cfg;
    struct rs_store *store;
    h2o_globalconf_t config;
    struct worker *workers;
    int nworkers;
    size_t nroutes;
    const struct rs_route *routes;
    _Atomic int connections; /* across loops, for the limit */
};

/* A pool job and the guard that tells it whether its request still exists. */
struct job;
struct guard {
    struct job *job;
};

struct job {
    uv_work_t work;
    struct worker *w;
    h2o_req_t *req;       /* NULL once the client has gone */
    struct guard *guard;
    struct rs_call *call;
    uint64_t start_ns;
    size_t route_idx;
};

static const char security_headers[][2][64] = {
    {"content-security-policy", "default-src 'none'; frame-ancestors 'none'"},
    {"x-content-type-options", "nosniff"},
    {"referrer-policy", "no-referrer"},
    {"x-frame-options", "DENY"},
    {"cache-control", "no-store"},
};

void rs_server_config_defaults(struct rs_server_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->listen = "127.0.0.1:8080";
    cfg->max_body = 1024 * 1024;
    cfg->max_header_bytes = 32 * 1024;
    cfg->max_connections = 10000;
    cfg->request_timeout_ms = 10000;
    cfg->shutdown_timeout_ms = 5000;
}

/* --- responding --- */

static void add_header(h2o_req_t *req, const char *name, const char *value)
{
    h2o_add_header_by_str(&req->pool, &req->res.headers, name, strlen(name), 1, NULL, value,
                          strlen(value));
}

static void request_id_make(struct worker *w, char out[RS_REQUEST_ID_MAX])
{
    unsigned char raw[16];
    uint64_t n = ++w->rid_counter;
    memcpy(raw, &w->rid_prefix, 8);
    for (int i = 0; i < 8; i++)
        raw[8 + i] = (unsigned char)(n >> (56 - 8 * i));
    rs_hex(raw, sizeof(raw), out);
}

/* Appends s as a JSON string body (without quotes) to buf. */
static size_t json_escape(char *buf, size_t cap, const char *s, size_t len)
{
    size_t j = 0;
    for (size_t i = 0; i < len && j + 7 < cap; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            buf[j++] = '\\';
            buf[j++] = (char)c;
        } else if (c < 0x20 || c == 0x7f) {
            j += (size_t)snprintf(buf + j, cap - j, "\\u%04x", c);
        } else {
            buf[j++] = (char)c;
        }
    }
    buf[j] = '\0';
    return j;
}

static void log_request(struct worker *w, h2o_req_t *req, const char *request_id,
                        const char *route, int status, uint64_t start_ns, const char *actor,
                        const char *detail)
{
    enum rs_log_level level = status >= 500 ? RS_LOG_ERROR : RS_LOG_INFO;
    if (!rs_log_enabled(level))
        return;
    char ts[RS_TIME_STR_MAX], path[512], method[32], det[300], line[1200];
    rs_time_format(rs_wall_ms(), ts);
    size_t plen = req->path_normalized.len;
    json_escape(path, sizeof(path), req->path_normalized.base, plen > 400 ? 400 : plen);
    json_escape(method, sizeof(method), req->method.base,
                req->method.len > 16 ? 16 : req->method.len);
    double ms = (double)(rs_mono_ns() - start_ns) / 1e6;
    int n = snprintf(line, sizeof(line),
                     "{\"ts\":\"%s\",\"level\":\"%s\",\"msg\":\"request\",\"request_id\":\"%s\","
                     "\"method\":\"%s\",\"route\":\"%s\",\"path\":\"%s\",\"status\":%d,"
                     "\"duration_ms\":%.3f,\"actor\":\"%s\",\"thread\":%d",
                     ts, level == RS_LOG_ERROR ? "error" : "info", request_id, method, route,
                     path, status, ms, actor, w->index);
    if (n < 0 || (size_t)n >= sizeof(line) - 320)
        n = (int)strlen(line);
    if (detail && *detail) {
        json_escape(det, sizeof(det), detail, strlen(detail));
        n += snprintf(line + n, sizeof(line) - (size_t)n, ",\"detail\":\"%s\"", det);
    }
    n += snprintf(line + n, sizeof(line) - (size_t)n, "}");
    rs_log_line(line, (size_t)n);
}

static const char *reason_phrase(int status)
{
    switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 409: return "Conflict";
    case 412: return "Precondition Failed";
    case 413: return "Content Too Large";
    case 415: return "Unsupported Media Type";
    case 422: return "Unprocessable Content";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 503: return "Service Unavailable";
    default: return status >= 500 ? "Internal Server Error" : "OK";
    }
}

static void send_response(h2o_req_t *req, int status, const char *content_type, const char *body,
                          size_t len, const char *request_id)
{
    req->res.status = status;
    req->res.reason = reason_phrase(status);
    for (size_t i = 0; i < RS_ARRAY_LEN(security_headers); i++)
        add_header(req, security_headers[i][0], security_headers[i][1]);
    add_header(req, "x-request-id", request_id);
    if (content_type)
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, content_type,
                       strlen(content_type));
    /* A known length lets HTTP/1.1 keep the connection open after any method. */
    req->res.content_length = len;
    h2o_send_inline(req, body, len);
}

/* A problem answer produced by the front end itself (no route, limits). */
static void respond_problem(struct worker *w, h2o_req_t *req, const char *request_id,
                            struct rs_error *err, uint64_t start_ns, const char *allow)
{
    int status = err->code == RS_OK ? 500 : rs_http_status(err->code);
    if (err->code == RS_EBADREQUEST && err->nfields > 0 &&
        strcmp(err->fields[0].rule, "header_size") == 0)
        status = 431;
    char *path = rs_xstrndup(req->path_normalized.base, req->path_normalized.len);
    char *body = rs_problem_encode(err, status, path, request_id);
    if (status == 431) {
        /* rs_problem_encode titles by code; 431 has its own. */
        json_t *o = json_loads(body, 0, NULL);
        if (o) {
            json_object_set_new(o, "title", json_string("Request Header Fields Too Large"));
            json_object_set_new(o, "status", json_integer(431));
            free(body);
            body = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
            json_decref(o);
        }
    }
    if (allow)
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ALLOW, NULL, allow, strlen(allow));
    send_response(req, status, "application/problem+json", body, strlen(body), request_id);
    rs_metrics_observe(w->index, w->srv->nroutes, status, rs_mono_ns() - start_ns);
    log_request(w, req, request_id, "-", status, start_ns, "-", err->log_detail);
    free(body);
    free(path);
}

static void respond_call(struct worker *w, h2o_req_t *req, struct rs_call *call,
                         size_t route_idx, uint64_t start_ns)
{
    const char *rid = call->ctx.request_id;
    int status = call->status ? call->status : 500;
    char *body = NULL;
    const char *ctype = NULL;
    if (call->err.code != RS_OK && status >= 400) {
        char *path = rs_xstrndup(req->path_normalized.base, req->path_normalized.len);
        body = rs_problem_encode(&call->err, status, path, rid);
        free(path);
        ctype = "application/problem+json";
        if (status == 401)
            h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_WWW_AUTHENTICATE, NULL,
                           H2O_STRLIT("Bearer realm=\"roster\""));
    } else if (call->json) {
        body = json_dumps(call->json, JSON_COMPACT | JSON_PRESERVE_ORDER);
        ctype = "application/json";
    } else if (call->text) {
        body = RS_TAKE_PTR(call->text);
        ctype = call->content_type;
    }
    if (call->etag[0])
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ETAG, NULL, call->etag,
                       strlen(call->etag));
    if (call->location[0] && status < 300)
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_LOCATION, NULL, call->location,
                       strlen(call->location));
    send_response(req, status, ctype, body ? body : "", body ? strlen(body) : 0, rid);
    rs_metrics_observe(w->index, route_idx, status, rs_mono_ns() - start_ns);
    const char *actor = call->ctx.actor.user_id ? call->ctx.actor.username : "-";
    log_request(w, req, rid, call->route->pattern, status, start_ns, actor, call->err.log_detail);
    free(body);
}

/* --- calls --- */

static void call_free(struct rs_call *call)
{
    rs_ctx_release(&call->ctx);
    json_decref(call->json);
    free(call->text);
    free(call->query);
    free(call->body);
    free(call->if_match);
    if (call->authorization) {
        sodium_memzero(call->authorization, strlen(call->authorization));
        free(call->authorization);
    }
    free(call);
}

static char *header_dup(h2o_req_t *req, const h2o_token_t *token)
{
    ssize_t i = h2o_find_header(&req->headers, token, -1);
    if (i < 0)
        return NULL;
    h2o_iovec_t v = req->headers.entries[i].value;
    return rs_xstrndup(v.base, v.len);
}

/* Authenticates (unless public) and runs the handler; any thread. */
static void call_execute(struct rs_call *call, bool on_pool)
{
    const struct rs_route *route = call->route;
    if (!(route->flags & RS_ROUTE_PUBLIC)) {
        const char *a = call->authorization;
        const char *token = NULL;
        if (a && strncasecmp(a, "Bearer ", 7) == 0) {
            token = a + 7;
            while (*token == ' ')
                token++;
        }
        int r = rs_svc_authenticate(&call->ctx, token, token ? strlen(token) : 0,
                                    &call->touch_key, &call->err);
        if (r < 0) {
            rs_call_fail(call, r);
            rs_ctx_release(&call->ctx);
            return;
        }
    } else {
        call->ctx.actor.user_id = 0;
        rs_strlcpy(call->ctx.actor.username, "-", sizeof(call->ctx.actor.username));
    }
    int r = route->handler(call);
    if (r < 0 && call->status == 0)
        rs_call_fail(call, r);
    if (call->touch_key && on_pool) {
        struct rs_error terr;
        rs_error_init(&terr);
        if (rs_svc_apikey_touch(&call->ctx, &terr) < 0)
            rs_log(RS_LOG_WARN, "could not record api key use", "request_id",
                   call->ctx.request_id, "detail", terr.log_detail, NULL);
        call->touch_key = false;
    }
    if (call->status >= 500 && call->err.log_detail[0])
        rs_log(RS_LOG_ERROR, "request failed", "request_id", call->ctx.request_id, "detail",
               call->err.log_detail, NULL);
    rs_ctx_release(&call->ctx);
}

static void maybe_finish(struct worker *w);

static void job_work(uv_work_t *work)
{
    struct job *job = work->data;
    call_execute(job->call, true);
}

static void job_done(uv_work_t *work, int status)
{
    struct job *job = work->data;
    struct worker *w = job->w;
    w->in_flight--;
    if (job->req) {
        job->guard->job = NULL;
        respond_call(w, job->req, job->call, job->route_idx, job->start_ns);
    }
    call_free(job->call);
    free(job);
    maybe_finish(w);
}

static void guard_dispose(void *p)
{
    struct guard *g = p;
    if (g->job)
        g->job->req = NULL; /* the client went away: answer no one */
}

static void queue_job(struct worker *w, h2o_req_t *req, struct rs_call *call, size_t route_idx,
                      uint64_t start_ns)
{
    struct job *job = rs_xcalloc(1, sizeof(*job));
    job->w = w;
    job->req = req;
    job->call = call;
    job->start_ns = start_ns;
    job->route_idx = route_idx;
    job->work.data = job;
    if (req) {
        job->guard = h2o_mem_alloc_shared(&req->pool, sizeof(*job->guard), guard_dispose);
        job->guard->job = job;
    }
    w->in_flight++;
    int r = uv_queue_work(&w->loop, &job->work, job_work, job_done);
    if (r != 0) {
        /* Cannot happen with a live loop; answer rather than hang. */
        w->in_flight--;
        if (job->guard)
            job->guard->job = NULL;
        if (req) {
            rs_error_set(&call->err, RS_EUNAVAILABLE, "server is shutting down");
            rs_call_fail(call, -RS_EUNAVAILABLE);
            respond_call(w, req, call, route_idx, start_ns);
        }
        call_free(call);
        free(job);
    }
}

/* A key's last-used time is written off the loop, after the answer. */
static void touch_work(uv_work_t *work)
{
    struct job *job = work->data;
    struct rs_error err;
    rs_error_init(&err);
    if (rs_svc_apikey_touch(&job->call->ctx, &err) < 0)
        rs_log(RS_LOG_WARN, "could not record api key use", "request_id",
               job->call->ctx.request_id, "detail", err.log_detail, NULL);
    rs_ctx_release(&job->call->ctx);
}

static void touch_done(uv_work_t *work, int status)
{
    struct job *job = work->data;
    struct worker *w = job->w;
    w->in_flight--;
    call_free(job->call);
    free(job);
    maybe_finish(w);
}

static void queue_touch(struct worker *w, struct rs_call *from)
{
    struct rs_call *t = rs_xcalloc(1, sizeof(*t));
    t->ctx = from->ctx;
    t->ctx.rconn = NULL;
    t->route = from->route;
    struct job *job = rs_xcalloc(1, sizeof(*job));
    job->w = w;
    job->call = t;
    job->work.data = job;
    w->in_flight++;
    if (uv_queue_work(&w->loop, &job->work, touch_work, touch_done) != 0) {
        w->in_flight--;
        call_free(t);
        free(job);
    }
}

static bool media_type_ok(h2o_req_t *req, const struct rs_route *route)
{
    ssize_t i = h2o_find_header(&req->headers, H2O_TOKEN_CONTENT_TYPE, -1);
    if (i < 0)
        return false;
    h2o_iovec_t v = req->headers.entries[i].value;
    size_t n = 0;
    while (n < v.len && v.base[n] != ';' && v.base[n] != ' ')
        n++;
    if (n == 16 && strncasecmp(v.base, "application/json", 16) == 0)
        return true;
    return strcmp(route->method, "PATCH") == 0 && n == 28 &&
           strncasecmp(v.base, "application/merge-patch+json", 28) == 0;
}

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    struct worker *w = ((uv_loop_t *)req->conn->ctx->loop)->data;
    struct server *srv = w->srv;
    uint64_t start = rs_mono_ns();
    char rid[RS_REQUEST_ID_MAX];
    struct rs_error err;
    rs_error_init(&err);
    request_id_make(w, rid);

    size_t header_bytes = 0;
    for (size_t i = 0; i < req->headers.size; i++)
        header_bytes += req->headers.entries[i].name->len + req->headers.entries[i].value.len;
    if (header_bytes > srv->cfg->max_header_bytes) {
        rs_error_field(&err, RS_EBADREQUEST, "headers", "header_size",
                       "request headers total %zu bytes; the limit is %zu", header_bytes,
                       srv->cfg->max_header_bytes);
        respond_problem(w, req, rid, &err, start, NULL);
        return 0;
    }

    const struct rs_route *route = NULL;
    int64_t ids[2] = {0, 0};
    char allow[128];
    enum rs_route_match m =
        rs_route_find(req->method.base, req->method.len, req->path_normalized.base,
                      req->path_normalized.len, &route, ids, allow, sizeof(allow));
    if (m == RS_MATCH_NO_PATH) {
        rs_error_set(&err, RS_ENOTFOUND, "no such resource");
        respond_problem(w, req, rid, &err, start, NULL);
        return 0;
    }
    if (m == RS_MATCH_NO_METHOD) {
        rs_error_set(&err, RS_EMETHOD, "this resource allows only %s", allow);
        respond_problem(w, req, rid, &err, start, allow);
        return 0;
    }
    size_t route_idx = (size_t)(route - srv->routes);
    if (route->flags & RS_ROUTE_BODY) {
        if (req->entity.len > srv->cfg->max_body) {
            rs_error_set(&err, RS_ETOOLARGE, "request body is %zu bytes; the limit is %zu",
                         req->entity.len, srv->cfg->max_body);
            respond_problem(w, req, rid, &err, start, NULL);
            return 0;
        }
        bool empty_ok = (route->flags & RS_ROUTE_BODY_OPTIONAL) && req->entity.len == 0;
        if (!empty_ok && !media_type_ok(req, route)) {
            rs_error_set(&err, RS_EMEDIATYPE, "send the body as Content-Type: application/json");
            respond_problem(w, req, rid, &err, start, NULL);
            return 0;
        }
    }

    struct rs_call *call = rs_xcalloc(1, sizeof(*call));
    rs_ctx_init(&call->ctx, srv->store);
    call->ctx.actor.user_id = 0;
    call->ctx.actor.type = RS_USER_GUEST;
    rs_strlcpy(call->ctx.request_id, rid, sizeof(call->ctx.request_id));
    call->route = route;
    call->id = ids[0];
    call->id2 = ids[1];
    if (req->query_at != SIZE_MAX)
        call->query = rs_xstrndup(req->path.base + req->query_at + 1,
                                  req->path.len - req->query_at - 1);
    if ((route->flags & RS_ROUTE_BODY) && req->entity.base) {
        call->body = rs_xstrndup(req->entity.base, req->entity.len);
        call->body_len = req->entity.len;
    }
    call->if_match = header_dup(req, H2O_TOKEN_IF_MATCH);
    call->authorization = header_dup(req, H2O_TOKEN_AUTHORIZATION);

    bool inline_ok = (route->flags & RS_ROUTE_LOCAL) ||
                     (!(route->flags & RS_ROUTE_WRITES) && srv->store->ops->reads_inline);
    if (!inline_ok) {
        queue_job(w, req, call, route_idx, start);
        return 0;
    }
    call_execute(call, false);
    respond_call(w, req, call, route_idx, start);
    if (call->touch_key)
        queue_touch(w, call);
    call_free(call);
    return 0;
}

/* --- connections --- */

static void on_conn_close(uv_handle_t *h)
{
    struct worker *w = h->loop->data;
    w->connections--;
    w->srv->connections--;
    free(h);
    maybe_finish(w);
}

static void on_accept(uv_stream_t *listener, int status)
{
    struct worker *w = listener->loop->data;
    if (status != 0 || w->stopping)
        return;
    uv_tcp_t *conn = rs_xmalloc(sizeof(*conn));
    uv_tcp_init(listener->loop, conn);
    if (uv_accept(listener, (uv_stream_t *)conn) != 0) {
        uv_close((uv_handle_t *)conn, (uv_close_cb)free);
        return;
    }
    if (w->srv->connections >= w->srv->cfg->max_connections) {
        uv_close((uv_handle_t *)conn, (uv_close_cb)free);
        return;
    }
    uv_tcp_nodelay(conn, 1);
    w->connections++;
    w->srv->connections++;
    h2o_socket_t *sock = h2o_uv_socket_create((uv_stream_t *)conn, on_conn_close);
    h2o_accept(&w->accept_ctx, sock);
}

/* --- shutdown --- */

static void stop_loop(struct worker *w)
{
    uv_timer_stop(&w->drain_timer);
    uv_stop(&w->loop);
}

/* Stops the loop once no job is pending and open connections are gone (or
 * have been idle a moment, so the last answers are written), or at the
 * deadline. */
static void maybe_finish(struct worker *w)
{
    if (!w->stopping)
        return;
    uint64_t now = rs_mono_ns();
    if (w->in_flight == 0) {
        if (w->connections == 0) {
            stop_loop(w);
            return;
        }
        if (!w->idle_since_ns)
            w->idle_since_ns = now;
        if (now - w->idle_since_ns > 200000000u) {
            stop_loop(w);
            return;
        }
    } else {
        w->idle_since_ns = 0;
    }
    if (now - w->stop_started_ns > (uint64_t)w->srv->cfg->shutdown_timeout_ms * 1000000u) {
        rs_log(RS_LOG_WARN, "shutdown deadline passed with requests in flight", NULL);
        stop_loop(w);
    }
}

static void on_drain_tick(uv_timer_t *t)
{
    maybe_finish(t->data);
}

static void on_wake(uv_async_t *a)
{
    struct worker *w = a->data;
    if (w->stopping)
        return;
    w->stopping = true;
    w->stop_started_ns = rs_mono_ns();
    uv_close((uv_handle_t *)&w->listener, NULL);
    h2o_context_request_shutdown(&w->ctx);
    uv_timer_start(&w->drain_timer, on_drain_tick, 20, 20);
    maybe_finish(w);
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    uv_run(&w->loop, UV_RUN_DEFAULT);
    /* Stopped: close the loop's own handles. h2o 2.2's context cannot be
     * disposed while connection timeouts are linked (it asserts), so the
     * context and the loop stay allocated, reachable from the server, until
     * the process exits. */
    uv_close((uv_handle_t *)&w->wake, NULL);
    uv_close((uv_handle_t *)&w->drain_timer, NULL);
    for (int i = 0; i < 10 && uv_run(&w->loop, UV_RUN_NOWAIT) != 0; i++)
        ;
    return NULL;
}

/* --- set-up --- */

static int parse_listen(const char *listen, struct sockaddr_storage *ret, socklen_t *ret_len,
                        struct rs_error *err)
{
    char host[256];
    const char *port;
    const char *colon = strrchr(listen, ':');
    if (!colon)
        return rs_error_field(err, RS_EVALIDATION, "listen", "format",
                              "--listen must be HOST:PORT, as in 127.0.0.1:8080");
    size_t hlen = (size_t)(colon - listen);
    if (hlen >= sizeof(host))
        return rs_error_field(err, RS_EVALIDATION, "listen", "format", "--listen host too long");
    memcpy(host, listen, hlen);
    host[hlen] = '\0';
    port = colon + 1;
    char *h = host;
    if (h[0] == '[' && hlen >= 2 && h[hlen - 1] == ']') {
        h[hlen - 1] = '\0';
        h++;
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    int r = getaddrinfo(*h ? h : NULL, port, &hints, &res);
    if (r != 0 || !res)
        return rs_error_field(err, RS_EVALIDATION, "listen", "format",
                              "--listen %s: %s", listen, gai_strerror(r));
    memcpy(ret, res->ai_addr, res->ai_addrlen);
    *ret_len = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

static int open_listener(const struct sockaddr_storage *addr, socklen_t len, struct rs_error *err)
{
    int fd = socket(addr->ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0 ||
        bind(fd, (const struct sockaddr *)addr, len) != 0 || listen(fd, 1024) != 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        return rs_error_set(err, RS_EUNAVAILABLE, "could not listen: %s", strerror(e));
    }
    return fd;
}

static void addr_text(const struct sockaddr_storage *a, char *out, size_t cap)
{
    char host[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (a->ss_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)a;
        inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof(host));
        port = ntohs(s6->sin6_port);
        snprintf(out, cap, "[%s]:%d", host, port);
    } else {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)a;
        inet_ntop(AF_INET, &s4->sin_addr, host, sizeof(host));
        port = ntohs(s4->sin_port);
        snprintf(out, cap, "%s:%d", host, port);
    }
}

static int start_workers(struct server *srv, struct rs_error *err)
{
    struct sockaddr_storage addr;
    socklen_t alen = 0;
    int r = parse_listen(srv->cfg->listen, &addr, &alen, err);
    if (r < 0)
        return r;
    for (int i = 0; i < srv->nworkers; i++) {
        struct worker *w = &srv->workers[i];
        w->index = i;
        w->srv = srv;
        w->listen_fd = open_listener(&addr, alen, err);
        if (w->listen_fd < 0) {
            rs_error_log(err, "listen on %s", srv->cfg->listen);
            return w->listen_fd;
        }
        if (i == 0) {
            /* Port 0 picks a free port: every later loop binds that one. */
            getsockname(w->listen_fd, (struct sockaddr *)&addr, &alen);
        }
        uv_loop_init(&w->loop);
        w->loop.data = w;
        h2o_context_init(&w->ctx, &w->loop, &srv->config);
        w->accept_ctx.ctx = &w->ctx;
        w->accept_ctx.hosts = srv->config.hosts;
        randombytes_buf(&w->rid_prefix, sizeof(w->rid_prefix));
        uv_async_init(&w->loop, &w->wake, on_wake);
        w->wake.data = w;
        uv_timer_init(&w->loop, &w->drain_timer);
        w->drain_timer.data = w;
        uv_tcp_init(&w->loop, &w->listener);
        if (uv_tcp_open(&w->listener, w->listen_fd) != 0 ||
            uv_listen((uv_stream_t *)&w->listener, 1024, on_accept) != 0)
            return rs_error_set(err, RS_EUNAVAILABLE, "could not listen on %s",
                                srv->cfg->listen);
    }
    for (int i = 0; i < srv->nworkers; i++)
        pthread_create(&srv->workers[i].thread, NULL, worker_main, &srv->workers[i]);
    char where[INET6_ADDRSTRLEN + 16];
    addr_text(&addr, where, sizeof(where));
    printf("roster listening on http://%s\n", where);
    fflush(stdout);
    rs_log(RS_LOG_INFO, "listening", "address", where, "backend", srv->store->ops->name, NULL);
    return 0;
}

static void on_signal(uv_signal_t *s, int signum)
{
    struct server *srv = s->data;
    rs_log(RS_LOG_INFO, "shutting down", "signal", signum == SIGTERM ? "SIGTERM" : "SIGINT",
           NULL);
    for (int i = 0; i < srv->nworkers; i++)
        uv_async_send(&srv->workers[i].wake);
    uv_signal_stop(s);
    uv_stop(s->loop);
}

/* The last server run, kept until exit (see worker_main). */
static struct server stopped_server;

int rs_server_run(const struct rs_server_config *cfg, struct rs_store *store,
                  struct rs_error *err)
{
    struct server srv = {0};
    srv.cfg = cfg;
    srv.store = store;
    srv.routes = rs_routes(&srv.nroutes);
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    srv.nworkers = cfg->threads > 0 ? cfg->threads : (int)(ncpu > 0 ? ncpu : 1);
    if (srv.nworkers > RS_METRICS_MAX_SHARDS)
        srv.nworkers = RS_METRICS_MAX_SHARDS;
    rs_metrics_init(srv.nroutes, store->ops->name);
    signal(SIGPIPE, SIG_IGN);

    h2o_config_init(&srv.config);
    srv.config.server_name = h2o_iovec_init(H2O_STRLIT("roster"));
    srv.config.max_request_entity_size = cfg->max_body * 4 + 65536;
    srv.config.http1.req_timeout = (uint64_t)cfg->request_timeout_ms;
    srv.config.http2.idle_timeout = (uint64_t)cfg->request_timeout_ms;
    srv.config.http2.graceful_shutdown_timeout = (uint64_t)cfg->shutdown_timeout_ms;
    h2o_hostconf_t *host =
        h2o_config_register_host(&srv.config, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_pathconf_t *path = h2o_config_register_path(host, "/", 0);
    h2o_handler_t *handler = h2o_create_handler(path, sizeof(*handler));
    handler->on_req = on_req;

    /* Signals are caught before the first connection can be accepted, so a
     * SIGTERM at any moment after "listening" means a graceful stop. */
    uv_loop_t main_loop;
    uv_loop_init(&main_loop);
    uv_signal_t sigterm, sigint;
    uv_signal_init(&main_loop, &sigterm);
    uv_signal_init(&main_loop, &sigint);
    sigterm.data = sigint.data = &srv;
    uv_signal_start(&sigterm, on_signal, SIGTERM);
    uv_signal_start(&sigint, on_signal, SIGINT);

    srv.workers = rs_xcalloc((size_t)srv.nworkers, sizeof(struct worker));
    int r = start_workers(&srv, err);
    if (r < 0) {
        uv_close((uv_handle_t *)&sigterm, NULL);
        uv_close((uv_handle_t *)&sigint, NULL);
        uv_run(&main_loop, UV_RUN_NOWAIT);
        uv_loop_close(&main_loop);
        free(srv.workers);
        return r;
    }
    /* Start-up (migrations, the first-run check) leaves freed heap behind;
     * give it back so an idle server stays small. */
    malloc_trim(0);
    uv_run(&main_loop, UV_RUN_DEFAULT);

    for (int i = 0; i < srv.nworkers; i++)
        pthread_join(srv.workers[i].thread, NULL);
    uv_close((uv_handle_t *)&sigterm, NULL);
    uv_close((uv_handle_t *)&sigint, NULL);
    uv_run(&main_loop, UV_RUN_NOWAIT);
    uv_loop_close(&main_loop);
    rs_log(RS_LOG_INFO, "stopped", NULL);
    /* srv.workers stays allocated: see worker_main. */
    stopped_server = srv;
    return 0;
}
