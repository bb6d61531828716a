/* bench_access.c: in-process throughput of the cached access check (the
 * path every API call takes to authorise): rs_svc_level over many users and
 * resources, from 1 and 2 threads. Figures, not pass/fail. Built by meson as
 * build/bench/bench_access; run by bench/run.sh. */
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <unistd.h>

#include "src/service/internal.h"

#define USERS 1000
#define CHECKS_PER_THREAD 4000000

static struct rs_store *store;
static int64_t user_ids[USERS];
static const char *const resources[] = {"users", "groups", "roles", "settings", "audit"};

static void *run(void *arg)
{
    struct rs_ctx ctx;
    rs_ctx_init(&ctx, store);
    struct rs_error err;
    rs_error_init(&err);
    unsigned seed = (unsigned)(uintptr_t)arg;
    long allowed = 0;
    for (long i = 0; i < CHECKS_PER_THREAD; i++) {
        seed = seed * 1103515245u + 12345u;
        enum rs_level l = RS_LEVEL_NONE;
        if (rs_svc_level(&ctx, user_ids[seed % USERS], resources[(seed >> 16) % 5], &l, &err) < 0)
            abort();
        allowed += l >= RS_LEVEL_READ;
    }
    rs_ctx_release(&ctx);
    return (void *)allowed;
}

static double measure(int threads)
{
    pthread_t t[2];
    uint64_t start = rs_mono_ns();
    for (int i = 0; i < threads; i++)
        pthread_create(&t[i], NULL, run, (void *)(uintptr_t)(i + 1));
    for (int i = 0; i < threads; i++)
        pthread_join(t[i], NULL);
    double secs = (double)(rs_mono_ns() - start) / 1e9;
    return (double)CHECKS_PER_THREAD * threads / secs;
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    char path[] = "/tmp/roster-bench-access-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0)
        return 1;
    close(fd);
    char *url = rs_xasprintf("sqlite:%s", path);
    struct rs_store_config cfg = {.url = url, .pool_size = 2, .busy_timeout_ms = 5000};
    struct rs_error err;
    rs_error_init(&err);
    int applied = 0;
    if (rs_store_open(&cfg, &store, &err) < 0 || store->ops->migrate(store, &applied, &err) < 0) {
        fprintf(stderr, "bench_access: %s (%s)\n", err.message, err.log_detail);
        return 1;
    }
    struct rs_ctx ctx;
    rs_ctx_init(&ctx, store);
    static const char *const roles[] = {"standard_user", "auditor", "user_manager", "guest"};
    for (int i = 0; i < USERS; i++) {
        struct rs_user in, out;
        rs_user_init(&in);
        in.username = rs_xasprintf("bench%04d", i);
        in.email = rs_xasprintf("bench%04d@example.com", i);
        in.first_name = rs_xstrdup("Bench");
        in.last_name = rs_xstrdup("User");
        in.role = rs_xstrdup(roles[i % 4]);
        unsigned mask = RS_UF_REQUIRED_ON_CREATE | RS_UF_ROLE;
        if (rs_svc_user_create(&ctx, &in, mask, &out, &err) < 0) {
            fprintf(stderr, "bench_access: create: %s\n", err.message);
            return 1;
        }
        user_ids[i] = out.id;
        rs_user_release(&in);
        rs_user_release(&out);
    }
    rs_ctx_release(&ctx);
    /* The server runs this watcher: cache entries are trusted only while
     * the database's access version is the one they were read at, and the
     * watcher is what tells lookups that version. Without it every lookup
     * misses. */
    if (rs_access_watch_start(store, &err) < 0) {
        fprintf(stderr, "bench_access: watcher: %s\n", err.message);
        return 1;
    }
    (void)measure(1); /* warm the cache */
    double one = measure(1), two = measure(2);
    printf("access check (cached, in-process): %.0f checks/s on 1 thread, %.0f on 2 threads "
           "(%d users, %zu resources)\n",
           one, two, USERS, sizeof(resources) / sizeof(resources[0]));
    rs_access_watch_stop();
    store->ops->close(store);
    unlink(path);
    char *wal = rs_xasprintf("%s-wal", path), *shm = rs_xasprintf("%s-shm", path);
    unlink(wal);
    unlink(shm);
    free(wal);
    free(shm);
    free(url);
    return 0;
}
