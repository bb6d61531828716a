/* bench_hash.c: the raw argon2id verify rate (libsodium crypto_pwhash_str_verify
 * of one hash made with crypto_pwhash_str_alg, ALG_ARGON2ID13) from T threads
 * for D seconds: the ceiling that sign-in throughput is compared with. Figures,
 * not pass/fail. Built by meson as build/bench/bench_hash; run by bench/login.sh.
 *
 *   bench_hash [--memory-kib K] [--iterations N] [--threads T] [--seconds D]
 *
 * Defaults are the `auth` settings' defaults (19456 KiB, 2 iterations;
 * libsodium's argon2id always uses parallelism 1) and T = online cores.
 * Prints one JSON line on stdout. */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define MAX_THREADS 256
#define PASSWORD "bench-hash Correct Horse 42!"

struct worker {
    pthread_t thread;
    const char *hash; /* shared, read-only */
    double deadline;  /* monotonic seconds */
    long verifies;    /* written by the thread */
    double busy_s;    /* first start to last finish, this thread */
    int failed;       /* a verify that did not match */
};

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *run(void *arg)
{
    struct worker *w = arg;
    double t0 = mono_s(), now = t0;
    /* Start a verify only while time is left, so every counted verify is a
     * whole one; the run overshoots the deadline by at most one verify. */
    while (now < w->deadline) {
        if (crypto_pwhash_str_verify(w->hash, PASSWORD, strlen(PASSWORD)) != 0) {
            w->failed = 1;
            break;
        }
        w->verifies++;
        now = mono_s();
    }
    w->busy_s = now - t0;
    return NULL;
}

static int parse_long(const char *name, const char *s, long min, long max, long *ret)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < min || v > max) {
        fprintf(stderr, "bench_hash: %s must be an integer in %ld..%ld, not \"%s\"\n", name, min,
                max, s);
        return -1;
    }
    *ret = v;
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: bench_hash [--memory-kib K] [--iterations N] [--threads T] [--seconds D]\n"
               "  raw argon2id verifies/s (libsodium, parallelism 1); prints one JSON line\n");
}

int main(int argc, char **argv)
{
    long memory_kib = 19456, iterations = 2, seconds = 10;
    long threads = sysconf(_SC_NPROCESSORS_ONLN);
    if (threads < 1)
        threads = 1;
    static const struct option opts[] = {
        {"memory-kib", required_argument, NULL, 'm'},
        {"iterations", required_argument, NULL, 'i'},
        {"threads", required_argument, NULL, 't'},
        {"seconds", required_argument, NULL, 's'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "m:i:t:s:h", opts, NULL)) != -1) {
        int rc = 0;
        switch (c) {
        case 'm':
            rc = parse_long("--memory-kib", optarg, 8, 4194304, &memory_kib);
            break;
        case 'i':
            rc = parse_long("--iterations", optarg, 1, 1000, &iterations);
            break;
        case 't':
            rc = parse_long("--threads", optarg, 1, MAX_THREADS, &threads);
            break;
        case 's':
            rc = parse_long("--seconds", optarg, 1, 3600, &seconds);
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
        if (rc < 0)
            return 2;
    }
    if (optind != argc) {
        usage(stderr);
        return 2;
    }
    if (sodium_init() < 0) {
        fprintf(stderr, "bench_hash: sodium_init failed\n");
        return 1;
    }

    char hash[crypto_pwhash_STRBYTES];
    double h0 = mono_s();
    if (crypto_pwhash_str_alg(hash, PASSWORD, strlen(PASSWORD), (unsigned long long)iterations,
                              (size_t)memory_kib * 1024, crypto_pwhash_ALG_ARGON2ID13) != 0) {
        fprintf(stderr,
                "bench_hash: could not hash with memory %ld KiB, %ld iterations: out of "
                "memory or parameters out of libsodium's range\n",
                memory_kib, iterations);
        return 1;
    }
    double hash_ms = (mono_s() - h0) * 1000;

    static struct worker w[MAX_THREADS];
    double start = mono_s();
    for (long i = 0; i < threads; i++) {
        w[i].hash = hash;
        w[i].deadline = start + (double)seconds;
        int rc = pthread_create(&w[i].thread, NULL, run, &w[i]);
        if (rc != 0) {
            fprintf(stderr, "bench_hash: could not start thread %ld: %s\n", i, strerror(rc));
            return 1;
        }
    }
    long total = 0;
    int failed = 0;
    double sum_rate = 0;
    for (long i = 0; i < threads; i++) {
        pthread_join(w[i].thread, NULL);
        total += w[i].verifies;
        failed |= w[i].failed;
        if (w[i].busy_s > 0)
            sum_rate += (double)w[i].verifies / w[i].busy_s;
    }
    double wall = mono_s() - start;
    struct rusage ru;
    double cpu_s = 0;
    if (getrusage(RUSAGE_SELF, &ru) == 0)
        cpu_s = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
                (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
    if (failed) {
        fprintf(stderr, "bench_hash: crypto_pwhash_str_verify did not accept its own hash\n");
        return 1;
    }
    /* verifies_per_s: every whole verify over the wall time until the last
     * thread finished (conservative); sum_thread_rates_per_s: each thread's own
     * rate summed (ignores the overshoot of the slowest thread); cpu_pct: this
     * process's CPU (including the one hash made first) over the verify wall
     * time, in % of one core: below threads x 100 when something else ran. */
    printf("{\"alg\":\"argon2id13\",\"memory_kib\":%ld,\"iterations\":%ld,\"parallelism\":1,"
           "\"threads\":%ld,\"seconds\":%ld,\"wall_s\":%.3f,\"verifies\":%ld,"
           "\"verifies_per_s\":%.2f,\"sum_thread_rates_per_s\":%.2f,\"ms_per_verify\":%.2f,"
           "\"hash_ms\":%.2f,\"cpu_pct\":%.1f,\"cores_online\":%ld,\"libsodium\":\"%s\"}\n",
           memory_kib, iterations, threads, seconds, wall, total, (double)total / wall, sum_rate,
           total > 0 ? wall * 1000 * (double)threads / (double)total : 0.0, hash_ms,
           100.0 * cpu_s / wall, sysconf(_SC_NPROCESSORS_ONLN), sodium_version_string());
    return 0;
}
