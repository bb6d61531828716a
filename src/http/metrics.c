/* metrics.c: request counters and a latency histogram in Prometheus text
 * format. Each event loop writes only its own shard (relaxed atomics, no
 * shared cache lines between loops); a scrape sums the shards. */
#include <stdio.h>

#include "http.h"
#include "rs_version.h"

static const int statuses[] = {200, 201, 204, 400, 401, 403, 404, 405, 409,
                               412, 413, 415, 422, 429, 431, 500, 503};
#define NSTATUS (RS_ARRAY_LEN(statuses) + 1) /* + "other" */
static const double buckets[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                 0.1,    0.25,  0.5,    1.0,   2.5,  5.0};
#define NBUCKETS RS_ARRAY_LEN(buckets)

struct shard {
    uint64_t *counts;           /* [route][status] */
    uint64_t hist[NBUCKETS + 1]; /* cumulative at render; here per bucket, last = +Inf */
    uint64_t sum_ns;
    uint64_t count;
    char pad[64];
};

static struct shard shards[RS_METRICS_MAX_SHARDS];
static size_t nroutes_plus1;
static const char *backend_name = "";

void rs_metrics_init(size_t nroutes, const char *backend)
{
    nroutes_plus1 = nroutes + 1;
    backend_name = backend;
    for (int i = 0; i < RS_METRICS_MAX_SHARDS; i++) {
        free(shards[i].counts);
        memset(&shards[i], 0, sizeof(shards[i]));
        shards[i].counts = rs_xcalloc(nroutes_plus1 * NSTATUS, sizeof(uint64_t));
    }
}

static size_t status_index(int status)
{
    for (size_t i = 0; i < RS_ARRAY_LEN(statuses); i++) {
        if (statuses[i] == status)
            return i;
    }
    return NSTATUS - 1;
}

static void bump(uint64_t *p, uint64_t by)
{
    __atomic_store_n(p, __atomic_load_n(p, __ATOMIC_RELAXED) + by, __ATOMIC_RELAXED);
}

void rs_metrics_observe(int shard, size_t route_idx, int status, uint64_t duration_ns)
{
    struct shard *s = &shards[shard % RS_METRICS_MAX_SHARDS];
    if (!s->counts || route_idx >= nroutes_plus1)
        return;
    bump(&s->counts[route_idx * NSTATUS + status_index(status)], 1);
    double secs = (double)duration_ns / 1e9;
    size_t b = 0;
    while (b < NBUCKETS && secs > buckets[b])
        b++;
    bump(&s->hist[b], 1);
    bump(&s->sum_ns, duration_ns);
    bump(&s->count, 1);
}

struct out {
    char *s;
    size_t len, cap;
};

static void outf(struct out *o, const char *fmt, ...) RS_PRINTF(2, 3);
static void outf(struct out *o, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(o->s + o->len, o->cap - o->len, fmt, ap);
        va_end(ap);
        if (n >= 0 && (size_t)n < o->cap - o->len) {
            o->len += (size_t)n;
            return;
        }
        o->cap = o->cap * 2 + (size_t)(n > 0 ? n : 64);
        o->s = rs_xrealloc(o->s, o->cap);
    }
}

static uint64_t load(const uint64_t *p)
{
    return __atomic_load_n(p, __ATOMIC_RELAXED);
}

char *rs_metrics_render(const struct rs_store_stats *db)
{
    struct out o = {rs_xmalloc(4096), 0, 4096};
    size_t nroutes = 0;
    const struct rs_route *routes = rs_routes(&nroutes);
    outf(&o, "# HELP roster_http_requests_total HTTP requests by route, method and status.\n"
             "# TYPE roster_http_requests_total counter\n");
    for (size_t r = 0; r < nroutes_plus1; r++) {
        for (size_t st = 0; st < NSTATUS; st++) {
            uint64_t total = 0;
            for (int i = 0; i < RS_METRICS_MAX_SHARDS; i++)
                total += shards[i].counts ? load(&shards[i].counts[r * NSTATUS + st]) : 0;
            if (!total)
                continue;
            const char *route = r < nroutes ? routes[r].pattern : "unmatched";
            const char *method = r < nroutes ? routes[r].method : "";
            char status[8];
            if (st < RS_ARRAY_LEN(statuses))
                snprintf(status, sizeof(status), "%d", statuses[st]);
            else
                snprintf(status, sizeof(status), "other");
            outf(&o,
                 "roster_http_requests_total{route=\"%s\",method=\"%s\",status=\"%s\"} %llu\n",
                 route, method, status, (unsigned long long)total);
        }
    }
    outf(&o, "# HELP roster_http_request_duration_seconds Time from request to response.\n"
             "# TYPE roster_http_request_duration_seconds histogram\n");
    uint64_t cum = 0, sum_ns = 0, count = 0;
    for (size_t b = 0; b <= NBUCKETS; b++) {
        for (int i = 0; i < RS_METRICS_MAX_SHARDS; i++)
            cum += load(&shards[i].hist[b]);
        if (b < NBUCKETS)
            outf(&o, "roster_http_request_duration_seconds_bucket{le=\"%g\"} %llu\n", buckets[b],
                 (unsigned long long)cum);
        else
            outf(&o, "roster_http_request_duration_seconds_bucket{le=\"+Inf\"} %llu\n",
                 (unsigned long long)cum);
    }
    for (int i = 0; i < RS_METRICS_MAX_SHARDS; i++) {
        sum_ns += load(&shards[i].sum_ns);
        count += load(&shards[i].count);
    }
    outf(&o, "roster_http_request_duration_seconds_sum %.6f\n", (double)sum_ns / 1e9);
    outf(&o, "roster_http_request_duration_seconds_count %llu\n", (unsigned long long)count);
    outf(&o,
         "# HELP roster_db_connections_open Database connections open.\n"
         "# TYPE roster_db_connections_open gauge\nroster_db_connections_open %d\n"
         "# HELP roster_db_connections_in_use Database connections in use.\n"
         "# TYPE roster_db_connections_in_use gauge\nroster_db_connections_in_use %d\n"
         "# HELP roster_search_index_pending Users the search index has yet to take in, "
         "as of the indexer's last pass (search is exact regardless).\n"
         "# TYPE roster_search_index_pending gauge\nroster_search_index_pending %lld\n"
         "# HELP roster_search_indexed_total Users this process folded into the search index.\n"
         "# TYPE roster_search_indexed_total counter\nroster_search_indexed_total %lld\n"
         "# HELP roster_build_info Build information.\n# TYPE roster_build_info gauge\n"
         "roster_build_info{version=\"%s\",backend=\"%s\"} 1\n",
         db->conns_open, db->conns_in_use, (long long)db->search_pending,
         (long long)db->search_indexed, RS_VERSION, backend_name);
    return o.s;
}
