/* server.c: h2o + libuv transport (see server.h). A request's way: match the
 * route, check headers and body limits, establish the client's address (and
 * whether it came over TLS), copy what the call needs out of h2o's memory,
 * then authenticate and run the handler inline (fast reads) or on the worker
 * pool (writes, or any store whose reads may wait), and answer on the loop
 * that received the request. Calls that hash passwords take a slot of a
 * process-wide cap first and wait in their loop's queue without holding a
 * pool thread, so commits and PostgreSQL reads still find free pool threads
 * while sign-ins keep the CPU busy. */
#include <arpa/inet.h>
#include <errno.h>
#include <malloc.h>
#include <netdb.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <h2o.h>
#include <h2o/http1.h>
#include <h2o/http2.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sodium.h>
#include <uv.h>

#include "../core/credential.h"
#include "../core/ipnet.h"
#include "../util/log.h"
#include "../service/crypto.h"
#include "http.h"
#include "server.h"

#define COOKIE_NAME "__Host-roster_session"
#define TOKEN_MAX 256      /* session cookie and X-CSRF-Token: longer ones are ignored */
#define USER_AGENT_MAX 256 /* bytes kept of User-Agent */
#define IP_TEXT_MAX 46
#define HASH_NO_TICKET UINT64_MAX

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
    uv_async_t hash_wake;  /* another loop freed a hashing slot this loop may take */
    h2o_linklist_t hash_queue; /* jobs waiting for a hashing slot, oldest first */
    _Atomic uint64_t hash_head; /* ticket of hash_queue's first job, HASH_NO_TICKET if empty */
    uv_timer_t drain_timer;
    uv_timer_t keep_timer;    /* ends a kept read snapshot (before_poll) */
    uv_prepare_t before_poll; /* before_poll() */
    bool served;              /* answered a request since the last poll */
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
    SSL_CTX *ssl_ctx;        /* NULL: plain HTTP */
    struct rs_cidr *proxies; /* trusted proxies */
    size_t nproxies;
    int hash_limit;              /* hashing calls at once */
    _Atomic int hash_running;    /* hashing calls on the pool now */
    _Atomic uint64_t hash_ticket; /* next ticket: the order of arrival across loops */
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
    bool hashing;         /* holds a hashing slot once submitted */
    uint64_t ticket;      /* while in w->hash_queue */
    h2o_linklist_t queued;
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
    cfg->loop_yield = true;
}

/* --- TLS and trusted proxies --- */

static int tls_fail(struct rs_error *err, const char *field, const char *what, const char *file)
{
    char detail[256] = "unknown reason";
    unsigned long e = ERR_peek_last_error();
    if (e)
        ERR_error_string_n(e, detail, sizeof(detail));
    ERR_clear_error();
    return rs_error_field(err, RS_EVALIDATION, field, "tls", "%s %s: cannot be used (%s)", what,
                          file, detail);
}

/* What ALPN offers, in our order of preference: h2o's HTTP/2 identifiers,
 * then http/1.1 (h2o serves HTTP/1.1 on any protocol that is not HTTP/2). */
static const h2o_iovec_t *alpn_protocols(void)
{
    static h2o_iovec_t list[8];
    if (list[0].len == 0) {
        size_t n = 0;
        for (const h2o_iovec_t *p = h2o_http2_alpn_protocols; p->len && n < 6; p++)
            list[n++] = *p;
        list[n] = h2o_iovec_init(H2O_STRLIT("http/1.1"));
    }
    return list;
}

/* TLS 1.2 and later, the server's cipher order, no compression or
 * renegotiation, ALPN h2 then http/1.1. Session tickets stay on (OpenSSL
 * rotates nothing by itself, but a restart makes new keys). */
static int tls_ctx_new(const struct rs_server_config *cfg, SSL_CTX **ret, struct rs_error *err)
{
    if (!cfg->tls_cert && !cfg->tls_key)
        return 0;
    if (!cfg->tls_cert || !cfg->tls_key)
        return rs_error_field(err, RS_EVALIDATION, cfg->tls_cert ? "tls_key" : "tls_cert",
                              "required", "--tls-cert and --tls-key go together: %s is missing",
                              cfg->tls_cert ? "--tls-key" : "--tls-cert");
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx)
        return tls_fail(err, "tls_cert", "TLS", "context");
    int r = 0;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_COMPRESSION |
                                 SSL_OP_NO_RENEGOTIATION);
    /* TLS 1.2: forward-secret AEAD suites only (none on HTTP/2's block list);
     * TLS 1.3 keeps OpenSSL's own. */
    if (SSL_CTX_set_cipher_list(ctx, "ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM:DHE+CHACHA20") != 1) {
        r = tls_fail(err, "tls_cert", "TLS", "cipher list");
        goto out;
    }
    if (SSL_CTX_use_certificate_chain_file(ctx, cfg->tls_cert) != 1) {
        r = tls_fail(err, "tls_cert", "--tls-cert", cfg->tls_cert);
        goto out;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, cfg->tls_key, SSL_FILETYPE_PEM) != 1 &&
        ERR_GET_REASON(ERR_peek_last_error()) != X509_R_KEY_VALUES_MISMATCH) {
        r = tls_fail(err, "tls_key", "--tls-key", cfg->tls_key);
        goto out;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        ERR_clear_error();
        r = rs_error_field(err, RS_EVALIDATION, "tls_key", "tls",
                           "--tls-key %s does not belong to the certificate in --tls-cert %s",
                           cfg->tls_key, cfg->tls_cert);
        goto out;
    }
    h2o_ssl_register_alpn_protocols(ctx, alpn_protocols());
out:
    if (r < 0) {
        SSL_CTX_free(ctx);
        return r;
    }
    *ret = ctx;
    return 0;
}

/* Parses "10.0.0.0/8, 192.168.1.5,2001:db8::/32" (empty items ignored). */
static int proxies_parse(const char *list, struct rs_cidr **ret, size_t *ret_n,
                         struct rs_error *err)
{
    struct rs_cidr *items = NULL;
    size_t n = 0;
    const char *p = list ? list : "";
    while (*p) {
        const char *end = strchr(p, ',');
        if (!end)
            end = p + strlen(p);
        const char *a = p, *b = end;
        while (a < b && (*a == ' ' || *a == '\t'))
            a++;
        while (b > a && (b[-1] == ' ' || b[-1] == '\t'))
            b--;
        p = *end ? end + 1 : end;
        if (a == b)
            continue;
        char item[64];
        struct rs_cidr c;
        int len = (int)(b - a);
        if ((size_t)len >= sizeof(item)) {
            free(items);
            return rs_error_field(err, RS_EVALIDATION, "trusted_proxies", "cidr",
                                  "--trusted-proxies: \"%.*s...\" is too long for an address "
                                  "range", 40, a);
        }
        memcpy(item, a, (size_t)len);
        item[len] = '\0';
        if (rs_cidr_parse(item, &c) < 0) {
            free(items);
            return rs_error_field(err, RS_EVALIDATION, "trusted_proxies", "cidr",
                                  "--trusted-proxies: \"%s\" is not an address range (as in "
                                  "10.0.0.0/8, 192.0.2.7 or 2001:db8::/32)",
                                  item);
        }
        items = rs_xrealloc(items, (n + 1) * sizeof(*items));
        items[n++] = c;
    }
    *ret = items;
    *ret_n = n;
    return 0;
}

int rs_server_config_check(const struct rs_server_config *cfg, struct rs_error *err)
{
    SSL_CTX *ctx = NULL;
    int r = tls_ctx_new(cfg, &ctx, err);
    if (r < 0)
        return r;
    SSL_CTX_free(ctx);
    struct rs_cidr *proxies = NULL;
    size_t n = 0;
    r = proxies_parse(cfg->trusted_proxies, &proxies, &n, err);
    free(proxies);
    return r;
}

/* --- the client's address --- */

static bool addr6_text(const struct in6_addr *a6, char out[IP_TEXT_MAX])
{
    if (IN6_IS_ADDR_V4MAPPED(a6))
        return inet_ntop(AF_INET, &a6->s6_addr[12], out, IP_TEXT_MAX) != NULL;
    return inet_ntop(AF_INET6, a6, out, IP_TEXT_MAX) != NULL;
}

/* The canonical text of an address given as text (IPv4-mapped IPv6 as
 * IPv4); false when s is not one address. */
static bool ip_canonical(const char *s, size_t len, char out[IP_TEXT_MAX])
{
    char buf[64];
    struct in_addr a4;
    struct in6_addr a6;
    if (len == 0 || len >= sizeof(buf))
        return false;
    memcpy(buf, s, len);
    buf[len] = '\0';
    if (inet_pton(AF_INET, buf, &a4) == 1)
        return inet_ntop(AF_INET, &a4, out, IP_TEXT_MAX) != NULL;
    return inet_pton(AF_INET6, buf, &a6) == 1 && addr6_text(&a6, out);
}

static void peer_text(h2o_req_t *req, char out[IP_TEXT_MAX])
{
    struct sockaddr_storage ss;
    socklen_t n = req->conn->callbacks->get_peername(req->conn, (struct sockaddr *)&ss);
    bool ok = false;
    if (n > 0 && ss.ss_family == AF_INET)
        ok = inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, out, IP_TEXT_MAX) != NULL;
    else if (n > 0 && ss.ss_family == AF_INET6)
        ok = addr6_text(&((struct sockaddr_in6 *)&ss)->sin6_addr, out);
    if (!ok)
        out[0] = '\0';
}

static bool ip_trusted(const struct server *srv, const char *text)
{
    struct rs_ipaddr ip;
    if (rs_ip_parse(text, &ip) < 0)
        return false;
    for (size_t i = 0; i < srv->nproxies; i++)
        if (rs_cidr_contains(&srv->proxies[i], &ip))
            return true;
    return false;
}

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* The right-most entry of all X-Forwarded-For headers joined in order that
 * is not a trusted proxy (the left-most if every one is) into out. false
 * when an entry looked at is not an address: the caller keeps the peer. */
static bool forwarded_for(const struct server *srv, h2o_req_t *req, char out[IP_TEXT_MAX])
{
    char leftmost[IP_TEXT_MAX] = "";
    for (size_t i = req->headers.size; i-- > 0;) {
        if (req->headers.entries[i].name != &H2O_TOKEN_X_FORWARDED_FOR->buf)
            continue;
        h2o_iovec_t v = req->headers.entries[i].value;
        size_t end = v.len;
        for (;;) {
            size_t start = end;
            while (start > 0 && v.base[start - 1] != ',')
                start--;
            size_t a = start, b = end;
            while (a < b && is_ows(v.base[a]))
                a++;
            while (b > a && is_ows(v.base[b - 1]))
                b--;
            if (a < b) { /* empty list elements are allowed (RFC 9110 5.6.1) */
                char canon[IP_TEXT_MAX];
                if (!ip_canonical(v.base + a, b - a, canon))
                    return false;
                if (!ip_trusted(srv, canon)) {
                    memcpy(out, canon, IP_TEXT_MAX);
                    return true;
                }
                memcpy(leftmost, canon, IP_TEXT_MAX);
            }
            if (start == 0)
                break;
            end = start - 1;
        }
    }
    if (!leftmost[0])
        return false;
    memcpy(out, leftmost, IP_TEXT_MAX);
    return true;
}

/* Whether the right-most entry of X-Forwarded-Proto (what the nearest
 * proxy saw) is https. */
static bool forwarded_https(h2o_req_t *req)
{
    static const char name[] = "x-forwarded-proto";
    h2o_iovec_t last = {NULL, 0};
    for (ssize_t i = -1;
         (i = h2o_find_header_by_str(&req->headers, name, sizeof(name) - 1, i)) >= 0;)
        last = req->headers.entries[i].value;
    if (!last.base)
        return false;
    size_t b = last.len;
    while (b > 0 && is_ows(last.base[b - 1]))
        b--;
    size_t a = b;
    while (a > 0 && last.base[a - 1] != ',' && !is_ows(last.base[a - 1]))
        a--;
    return b - a == 5 && strncasecmp(last.base + a, "https", 5) == 0;
}

/* The client's address and whether the request is secure: the peer and the
 * connection, or what a trusted proxy says. */
static void client_resolve(const struct server *srv, h2o_req_t *req, char out[IP_TEXT_MAX],
                           bool *ret_secure)
{
    peer_text(req, out);
    *ret_secure = srv->ssl_ctx != NULL;
    if (srv->nproxies == 0 || !out[0] || !ip_trusted(srv, out))
        return;
    char fwd[IP_TEXT_MAX];
    if (forwarded_for(srv, req, fwd))
        memcpy(out, fwd, IP_TEXT_MAX);
    if (forwarded_https(req))
        *ret_secure = true;
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
                        const char *client, const char *detail)
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
                     "\"duration_ms\":%.3f,\"actor\":\"%s\",\"client\":\"%s\",\"thread\":%d",
                     ts, level == RS_LOG_ERROR ? "error" : "info", request_id, method, route,
                     path, status, ms, actor, client, w->index);
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

static void send_response(struct worker *w, h2o_req_t *req, int status, const char *content_type,
                          const char *body, size_t len, const char *request_id)
{
    req->res.status = status;
    req->res.reason = reason_phrase(status);
    for (size_t i = 0; i < RS_ARRAY_LEN(security_headers); i++)
        add_header(req, security_headers[i][0], security_headers[i][1]);
    if (w->srv->ssl_ctx)
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_STRICT_TRANSPORT_SECURITY, NULL,
                       H2O_STRLIT("max-age=31536000"));
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
                            const char *client, struct rs_error *err, uint64_t start_ns,
                            const char *allow)
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
    send_response(w, req, status, "application/problem+json", body, strlen(body), request_id);
    rs_metrics_observe(w->index, w->srv->nroutes, status, rs_mono_ns() - start_ns);
    log_request(w, req, request_id, "-", status, start_ns, "-", client, err->log_detail);
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
    if (call->disposition[0] && status < 300) {
        h2o_iovec_t v = h2o_strdup(&req->pool, call->disposition, SIZE_MAX);
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_DISPOSITION, NULL,
                       v.base, v.len);
    }
    if (call->set_cookie) {
        /* Cache-Control: no-store is on every answer (security_headers). */
        h2o_iovec_t v = h2o_strdup(&req->pool, call->set_cookie, SIZE_MAX);
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_SET_COOKIE, NULL, v.base, v.len);
    }
    if (call->retry_after > 0) {
        char ra[16];
        int n = snprintf(ra, sizeof(ra), "%d", call->retry_after);
        h2o_iovec_t v = h2o_strdup(&req->pool, ra, (size_t)n);
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_RETRY_AFTER, NULL, v.base, v.len);
    }
    send_response(w, req, status, ctype, body ? body : "", body ? strlen(body) : 0, rid);
    rs_metrics_observe(w->index, route_idx, status, rs_mono_ns() - start_ns);
    const char *actor = call->ctx.actor.user_id ? call->ctx.actor.username : "-";
    log_request(w, req, rid, call->route->pattern, status, start_ns, actor, call->ctx.client_ip,
                call->err.log_detail);
    free(body);
}

/* --- calls --- */

static void secret_free(char *s)
{
    if (s) {
        sodium_memzero(s, strlen(s));
        free(s);
    }
}

static void call_free(struct rs_call *call)
{
    rs_ctx_release(&call->ctx);
    json_decref(call->json);
    free(call->text);
    free(call->query);
    if (call->body && call->route && (call->route->flags & RS_ROUTE_HASHES))
        sodium_memzero(call->body, call->body_len); /* it held a password */
    free(call->body);
    free(call->if_match);
    free(call->user_agent);
    secret_free(call->authorization);
    secret_free(call->session_token);
    secret_free(call->csrf_token);
    secret_free(call->set_cookie);
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

/* RFC 6265 cookie-octet. */
static bool cookie_octet(unsigned char c)
{
    return c == 0x21 || (c >= 0x23 && c <= 0x2b) || (c >= 0x2d && c <= 0x3a) ||
           (c >= 0x3c && c <= 0x5b) || (c >= 0x5d && c <= 0x7e);
}

/* The session cookie's value from all Cookie headers (the first pair of that
 * name counts); NULL when absent, empty, over TOKEN_MAX or not cookie-octets. */
static char *session_cookie(h2o_req_t *req)
{
    static const char name[] = COOKIE_NAME;
    const size_t nlen = sizeof(name) - 1;
    for (ssize_t i = -1; (i = h2o_find_header(&req->headers, H2O_TOKEN_COOKIE, i)) >= 0;) {
        h2o_iovec_t v = req->headers.entries[i].value;
        size_t p = 0;
        while (p < v.len) {
            size_t end = p;
            while (end < v.len && v.base[end] != ';')
                end++;
            size_t a = p, b = end;
            p = end + 1;
            while (a < b && is_ows(v.base[a]))
                a++;
            if (b - a <= nlen || memcmp(v.base + a, name, nlen) != 0)
                continue;
            a += nlen;
            while (a < b && is_ows(v.base[a]))
                a++;
            if (a == b || v.base[a] != '=')
                continue;
            a++;
            while (a < b && is_ows(v.base[a]))
                a++;
            while (b > a && is_ows(v.base[b - 1]))
                b--;
            if (b - a >= 2 && v.base[a] == '"' && v.base[b - 1] == '"') {
                a++;
                b--;
            }
            if (a == b || b - a > TOKEN_MAX)
                return NULL;
            for (size_t k = a; k < b; k++)
                if (!cookie_octet((unsigned char)v.base[k]))
                    return NULL;
            return rs_xstrndup(v.base + a, b - a);
        }
    }
    return NULL;
}

static char *csrf_header(h2o_req_t *req)
{
    static const char name[] = "x-csrf-token";
    ssize_t i = h2o_find_header_by_str(&req->headers, name, sizeof(name) - 1, -1);
    if (i < 0 || req->headers.entries[i].value.len > TOKEN_MAX)
        return NULL;
    h2o_iovec_t v = req->headers.entries[i].value;
    return rs_xstrndup(v.base, v.len);
}

/* User-Agent, at most USER_AGENT_MAX bytes of valid UTF-8. */
static char *user_agent(h2o_req_t *req)
{
    ssize_t i = h2o_find_header(&req->headers, H2O_TOKEN_USER_AGENT, -1);
    if (i < 0)
        return NULL;
    h2o_iovec_t v = req->headers.entries[i].value;
    char *s = rs_xstrndup(v.base, v.len > USER_AGENT_MAX ? USER_AGENT_MAX : v.len);
    rs_utf8_sanitize(s);
    return s;
}

static int session_refuse(struct rs_call *call, const char *rule, const char *message)
{
    rs_error_field(&call->err, RS_EFORBIDDEN, "session", rule, "%s", message);
    return -RS_EFORBIDDEN;
}

/* Authorization present: the API key; else the session cookie (with the
 * CSRF check and the limits of a session that must change its password or
 * enrol 2FA); else 401. */
static int call_authenticate(struct rs_call *call)
{
    const struct rs_route *route = call->route;
    if (!call->authorization && call->session_token) {
        bool state_changing =
            strcmp(route->method, "GET") != 0 && strcmp(route->method, "HEAD") != 0;
        int r = rs_svc_authenticate_session(&call->ctx, call->session_token, call->csrf_token,
                                            state_changing, &call->touch_session, &call->err);
        if (r < 0)
            return r;
        rs_call_session_rotated(call);
        if ((call->ctx.session_flags & RS_SESSION_MUST_CHANGE) &&
            !(route->flags & RS_ROUTE_PW_OK))
            return session_refuse(call, "password_change_required",
                                  "change your password first (POST "
                                  "/api/v1/auth/change-password)");
        if ((call->ctx.session_flags & RS_SESSION_MUST_ENROLL) &&
            !(route->flags & RS_ROUTE_2FA_OK))
            return session_refuse(call, "totp_enrollment_required",
                                  "set up two-factor authentication first (POST "
                                  "/api/v1/auth/totp/enroll)");
        return 0;
    }
    const char *a = call->authorization;
    const char *token = NULL;
    if (a && strncasecmp(a, "Bearer ", 7) == 0) {
        token = a + 7;
        while (*token == ' ')
            token++;
    }
    return rs_svc_authenticate(&call->ctx, token, token ? strlen(token) : 0, &call->touch_key,
                               &call->err);
}

/* Writes the last-used time of the key or session that authenticated the
 * call (pool threads only). */
static void call_touch(struct rs_call *call)
{
    struct rs_error terr;
    if (call->touch_key) {
        rs_error_init(&terr);
        if (rs_svc_apikey_touch(&call->ctx, &terr) < 0)
            rs_log(RS_LOG_WARN, "could not record api key use", "request_id",
                   call->ctx.request_id, "detail", terr.log_detail, NULL);
        call->touch_key = false;
    }
    if (call->touch_session) {
        rs_error_init(&terr);
        if (rs_svc_session_touch(&call->ctx, &terr) < 0)
            rs_log(RS_LOG_WARN, "could not record session use", "request_id",
                   call->ctx.request_id, "detail", terr.log_detail, NULL);
        call->touch_session = false;
    }
}

/* The level the route table declares, checked before any handler runs, so
 * a handler that forgets its check cannot open a route. The services check
 * again what they need (and what a call's content needs: escalation). */
static int route_allows(struct rs_call *call)
{
    const struct rs_route *route = call->route;
    if ((route->flags & RS_ROUTE_PUBLIC) || route->level == RS_LEVEL_NONE ||
        (route->flags & RS_ROUTE_OWN))
        return 0;
    if ((route->flags & RS_ROUTE_SELF) && call->id == call->ctx.actor.user_id)
        return 0;
    return rs_svc_authorize(&call->ctx, route->resource, route->level, &call->err);
}

/* Authenticates (unless public) and runs the handler; any thread. */
static void call_execute(struct rs_call *call, bool on_pool)
{
    const struct rs_route *route = call->route;
    call->ctx.on_loop = !on_pool;
    if (!(route->flags & RS_ROUTE_PUBLIC)) {
        int r = call_authenticate(call);
        if (r < 0 && call->ctx.retry_on_pool)
            return; /* a session to rotate: the caller queues the call */
        if (r < 0) {
            rs_call_fail(call, r);
            call->touch_key = call->touch_session = false;
            rs_ctx_release(&call->ctx);
            return;
        }
    } else {
        call->ctx.actor.user_id = 0;
        rs_strlcpy(call->ctx.actor.username, "-", sizeof(call->ctx.actor.username));
    }
    int r = route_allows(call);
    if (r == 0)
        r = route->handler(call);
    if (r < 0 && call->status == 0)
        rs_call_fail(call, r);
    if (on_pool)
        call_touch(call);
    if (call->status >= 500 && call->err.log_detail[0])
        rs_log(RS_LOG_ERROR, "request failed", "request_id", call->ctx.request_id, "detail",
               call->err.log_detail, NULL);
    rs_ctx_release(&call->ctx);
}

static void maybe_finish(struct worker *w);
static void hash_release(struct worker *w);

/* libuv's pool threads inherit the name of the thread that first queued
 * work (an event loop's); name them for what they are on their first job so
 * that `top -H` tells a blocked write from a busy loop. */
static void pool_thread_name(void)
{
    static _Thread_local bool named;
    if (!named) {
        pthread_setname_np(pthread_self(), "roster-pool");
        named = true;
    }
}

static void job_work(uv_work_t *work)
{
    struct job *job = work->data;
    pool_thread_name();
    call_execute(job->call, true);
}

static void job_done(uv_work_t *work, int status)
{
    struct job *job = work->data;
    struct worker *w = job->w;
    w->in_flight--;
    w->served = true;
    if (job->hashing)
        hash_release(w);
    if (job->req) {
        job->guard->job = NULL;
        respond_call(w, job->req, job->call, job->route_idx, job->start_ns);
    }
    call_free(job->call);
    free(job);
    maybe_finish(w);
}

static void hash_publish_head(struct worker *w);
static void hash_pump(struct worker *w);

static void guard_dispose(void *p)
{
    struct guard *g = p;
    struct job *job = g->job;
    if (!job)
        return;
    if (!h2o_linklist_is_linked(&job->queued)) {
        job->req = NULL; /* on the pool: the client went away, answer no one */
        return;
    }
    /* Still waiting for a hashing slot: it will never run. */
    struct worker *w = job->w;
    h2o_linklist_unlink(&job->queued);
    hash_publish_head(w);
    w->in_flight--;
    call_free(job->call);
    free(job);
    hash_pump(w);
    maybe_finish(w);
}

static struct job *job_new(struct worker *w, h2o_req_t *req, struct rs_call *call,
                           size_t route_idx, uint64_t start_ns)
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
    return job;
}

static void job_submit(struct job *job)
{
    struct worker *w = job->w;
    int r = uv_queue_work(&w->loop, &job->work, job_work, job_done);
    if (r != 0) {
        /* Cannot happen with a live loop; answer rather than hang. */
        struct rs_call *call = job->call;
        w->in_flight--;
        if (job->hashing)
            hash_release(w);
        if (job->guard)
            job->guard->job = NULL;
        if (job->req) {
            rs_error_set(&call->err, RS_EUNAVAILABLE, "server is shutting down");
            rs_call_fail(call, -RS_EUNAVAILABLE);
            respond_call(w, job->req, call, job->route_idx, job->start_ns);
        }
        call_free(call);
        free(job);
    }
}

static void queue_job(struct worker *w, h2o_req_t *req, struct rs_call *call, size_t route_idx,
                      uint64_t start_ns)
{
    job_submit(job_new(w, req, call, route_idx, start_ns));
}

/* --- the cap on hashing calls ---
 *
 * At most srv->hash_limit calls of RS_ROUTE_HASHES routes run on the pool at
 * once (srv->hash_running). The others wait in their loop's queue, holding no
 * pool thread, each with a ticket taken at arrival. A loop publishes the
 * ticket of its oldest waiting job (hash_head); whenever a slot may be free
 * (a hashing job finished, a job arrived, a waiting job was dropped), the
 * loop holding the oldest ticket process-wide is served, by itself or
 * through its hash_wake, so calls start in arrival order across loops. Every
 * change of a head is published before the pump that reads the heads, so no
 * waiting job is forgotten while a slot is free. */

static void hash_publish_head(struct worker *w)
{
    uint64_t t = HASH_NO_TICKET;
    if (!h2o_linklist_is_empty(&w->hash_queue))
        t = H2O_STRUCT_FROM_MEMBER(struct job, queued, w->hash_queue.next)->ticket;
    atomic_store(&w->hash_head, t);
}

static bool hash_slot_take(struct server *srv)
{
    int n = atomic_load(&srv->hash_running);
    while (n < srv->hash_limit)
        if (atomic_compare_exchange_weak(&srv->hash_running, &n, n + 1))
            return true;
    return false;
}

/* Serves waiting jobs while slots are free: this loop's own, or wakes the
 * loop whose oldest job arrived first. Loop thread. */
static void hash_pump(struct worker *w)
{
    struct server *srv = w->srv;
    for (;;) {
        if (atomic_load(&srv->hash_running) >= srv->hash_limit)
            return;
        struct worker *first = NULL;
        uint64_t best = HASH_NO_TICKET;
        for (int i = 0; i < srv->nworkers; i++) {
            uint64_t t = atomic_load(&srv->workers[i].hash_head);
            if (t < best) {
                best = t;
                first = &srv->workers[i];
            }
        }
        if (!first)
            return;
        if (first != w) {
            uv_async_send(&first->hash_wake);
            return;
        }
        if (!hash_slot_take(srv))
            return;
        struct job *job = H2O_STRUCT_FROM_MEMBER(struct job, queued, w->hash_queue.next);
        h2o_linklist_unlink(&job->queued);
        hash_publish_head(w);
        job->hashing = true;
        job_submit(job);
    }
}

static void hash_release(struct worker *w)
{
    atomic_fetch_sub(&w->srv->hash_running, 1);
    hash_pump(w);
}

static void on_hash_wake(uv_async_t *a)
{
    hash_pump(a->data);
}

static void queue_hash_job(struct worker *w, h2o_req_t *req, struct rs_call *call,
                           size_t route_idx, uint64_t start_ns)
{
    struct job *job = job_new(w, req, call, route_idx, start_ns);
    job->ticket = atomic_fetch_add(&w->srv->hash_ticket, 1);
    h2o_linklist_insert(&w->hash_queue, &job->queued);
    hash_publish_head(w);
    hash_pump(w);
}

/* A key's or session's last-used time is written off the loop, after the
 * answer. */
static void touch_work(uv_work_t *work)
{
    struct job *job = work->data;
    pool_thread_name();
    call_touch(job->call);
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
    t->touch_key = from->touch_key;
    t->touch_session = from->touch_session;
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

/* A read on this loop may have left its snapshot open for the next one
 * (store.h, read_keep): a timer ends it a millisecond or two later, whether
 * the loop is busy or idle. */
static void on_keep_timer(uv_timer_t *t)
{
    struct worker *w = t->data;
    w->srv->store->ops->read_drop(w->srv->store);
}

/* Runs before each poll. A loop that has just served requests first gives
 * its core to whatever else is ready to run (loop_yield, server.h): the
 * clients, proxy and database it talks to are mostly on the same machine
 * and get to answer or read sooner, instead of when the loop's time slice
 * ends (with two loops and wrk on two cores, GET p99 ~3.1 -> ~2.1 ms,
 * bench/README.md). It costs one system call per busy iteration and nothing
 * when no one else wants the core. */
static void before_poll(uv_prepare_t *p)
{
    struct worker *w = p->data;
    /* read_kept also drops a snapshot the checkpointer is waiting for. */
    const struct rs_store_ops *ops = w->srv->store->ops;
    if (ops->read_kept && ops->read_kept(w->srv->store) &&
        !uv_is_active((uv_handle_t *)&w->keep_timer))
        uv_timer_start(&w->keep_timer, on_keep_timer, 1, 0);
    if (w->served) {
        w->served = false;
        if (w->srv->cfg->loop_yield)
            sched_yield();
    }
}

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    struct worker *w = ((uv_loop_t *)req->conn->ctx->loop)->data;
    w->served = true;
    struct server *srv = w->srv;
    uint64_t start = rs_mono_ns();
    char rid[RS_REQUEST_ID_MAX];
    struct rs_error err;
    rs_error_init(&err);
    request_id_make(w, rid);
    char client[IP_TEXT_MAX];
    bool secure;
    client_resolve(srv, req, client, &secure);

    size_t header_bytes = 0;
    for (size_t i = 0; i < req->headers.size; i++)
        header_bytes += req->headers.entries[i].name->len + req->headers.entries[i].value.len;
    if (header_bytes > srv->cfg->max_header_bytes) {
        rs_error_field(&err, RS_EBADREQUEST, "headers", "header_size",
                       "request headers total %zu bytes; the limit is %zu", header_bytes,
                       srv->cfg->max_header_bytes);
        respond_problem(w, req, rid, client, &err, start, NULL);
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
        respond_problem(w, req, rid, client, &err, start, NULL);
        return 0;
    }
    if (m == RS_MATCH_NO_METHOD) {
        rs_error_set(&err, RS_EMETHOD, "this resource allows only %s", allow);
        respond_problem(w, req, rid, client, &err, start, allow);
        return 0;
    }
    size_t route_idx = (size_t)(route - srv->routes);
    if (route->flags & RS_ROUTE_BODY) {
        if (req->entity.len > srv->cfg->max_body) {
            rs_error_set(&err, RS_ETOOLARGE, "request body is %zu bytes; the limit is %zu",
                         req->entity.len, srv->cfg->max_body);
            respond_problem(w, req, rid, client, &err, start, NULL);
            return 0;
        }
        bool empty_ok = (route->flags & RS_ROUTE_BODY_OPTIONAL) && req->entity.len == 0;
        if (!empty_ok && !media_type_ok(req, route)) {
            rs_error_set(&err, RS_EMEDIATYPE, "send the body as Content-Type: application/json");
            respond_problem(w, req, rid, client, &err, start, NULL);
            return 0;
        }
    }

    struct rs_call *call = rs_xcalloc(1, sizeof(*call));
    rs_ctx_init(&call->ctx, srv->store);
    call->ctx.actor.user_id = 0;
    call->ctx.actor.type = RS_USER_GUEST;
    rs_strlcpy(call->ctx.request_id, rid, sizeof(call->ctx.request_id));
    memcpy(call->ctx.client_ip, client, sizeof(call->ctx.client_ip));
    call->ctx.secure = secure;
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
    call->session_token = session_cookie(req);
    call->csrf_token = csrf_header(req);
    call->user_agent = user_agent(req);

    if (route->flags & RS_ROUTE_HASHES) {
        queue_hash_job(w, req, call, route_idx, start);
        return 0;
    }
    bool inline_ok = (route->flags & RS_ROUTE_LOCAL) ||
                     (!(route->flags & RS_ROUTE_WRITES) && srv->store->ops->reads_inline);
    if (!inline_ok) {
        queue_job(w, req, call, route_idx, start);
        return 0;
    }
    call_execute(call, false);
    if (call->ctx.retry_on_pool) {
        call->ctx.retry_on_pool = false;
        rs_ctx_release(&call->ctx);
        rs_error_init(&call->err);
        queue_job(w, req, call, route_idx, start);
        return 0;
    }
    respond_call(w, req, call, route_idx, start);
    if (call->touch_key || call->touch_session)
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
    /* Requests still answered while the loop winds down keep no snapshot:
     * the timer that would end it is gone. */
    const struct rs_store_ops *ops = w->srv->store->ops;
    if (ops->read_keep) {
        ops->read_keep(w->srv->store, false);
        ops->read_drop(w->srv->store);
    }
    uv_timer_stop(&w->drain_timer);
    uv_timer_stop(&w->keep_timer);
    uv_prepare_stop(&w->before_poll);
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
    char name[16];
    snprintf(name, sizeof(name), "roster-loop%d", w->index);
    pthread_setname_np(pthread_self(), name);
    const struct rs_store_ops *ops = w->srv->store->ops;
    if (ops->read_keep)
        ops->read_keep(w->srv->store, true);
    uv_run(&w->loop, UV_RUN_DEFAULT);
    /* Stopped: close the loop's own handles. h2o 2.2's context cannot be
     * disposed while connection timeouts are linked (it asserts), so the
     * context and the loop stay allocated, reachable from the server, until
     * the process exits. hash_wake stays open (unreferenced) for the same
     * reason: another loop may still signal it past the shutdown deadline. */
    uv_close((uv_handle_t *)&w->wake, NULL);
    uv_close((uv_handle_t *)&w->drain_timer, NULL);
    uv_close((uv_handle_t *)&w->keep_timer, NULL);
    uv_close((uv_handle_t *)&w->before_poll, NULL);
    for (int i = 0; i < 10 && uv_run(&w->loop, UV_RUN_NOWAIT) != 0; i++)
        ;
    if (ops->read_drop)
        ops->read_drop(w->srv->store);
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
        w->accept_ctx.ssl_ctx = srv->ssl_ctx;
        randombytes_buf(&w->rid_prefix, sizeof(w->rid_prefix));
        uv_async_init(&w->loop, &w->wake, on_wake);
        w->wake.data = w;
        h2o_linklist_init_anchor(&w->hash_queue);
        atomic_store(&w->hash_head, HASH_NO_TICKET);
        uv_async_init(&w->loop, &w->hash_wake, on_hash_wake);
        w->hash_wake.data = w;
        uv_unref((uv_handle_t *)&w->hash_wake);
        uv_timer_init(&w->loop, &w->drain_timer);
        w->drain_timer.data = w;
        uv_timer_init(&w->loop, &w->keep_timer);
        w->keep_timer.data = w;
        uv_prepare_init(&w->loop, &w->before_poll);
        w->before_poll.data = w;
        uv_prepare_start(&w->before_poll, before_poll);
        /* Neither keeps the loop alive: they only tidy up after requests. */
        uv_unref((uv_handle_t *)&w->keep_timer);
        uv_unref((uv_handle_t *)&w->before_poll);
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
    const char *scheme = srv->ssl_ctx ? "https" : "http";
    printf("roster listening on %s://%s\n", scheme, where);
    fflush(stdout);
    char limit[16];
    snprintf(limit, sizeof(limit), "%d", srv->hash_limit);
    rs_log(RS_LOG_INFO, "listening", "address", where, "scheme", scheme, "backend",
           srv->store->ops->name, "hash_concurrency", limit, NULL);
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
    /* Hashes at once: --hash-concurrency (default one per loop). Calls that
     * hash may be twice as many, so one can commit while another hashes;
     * the rest wait without holding a pool thread. */
    int hashes = cfg->hash_concurrency > 0 ? cfg->hash_concurrency : srv.nworkers;
    rs_crypto_hash_slots(hashes);
    srv.hash_limit = 2 * hashes;
    int r = tls_ctx_new(cfg, &srv.ssl_ctx, err);
    if (r == 0)
        r = proxies_parse(cfg->trusted_proxies, &srv.proxies, &srv.nproxies, err);
    if (r < 0) {
        SSL_CTX_free(srv.ssl_ctx);
        return r;
    }
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
    r = start_workers(&srv, err);
    if (r < 0) {
        uv_close((uv_handle_t *)&sigterm, NULL);
        uv_close((uv_handle_t *)&sigint, NULL);
        uv_run(&main_loop, UV_RUN_NOWAIT);
        uv_loop_close(&main_loop);
        free(srv.workers);
        free(srv.proxies);
        SSL_CTX_free(srv.ssl_ctx);
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
