/* util.h: small helpers every roster file may use: allocation that aborts on
 * out-of-memory, bounded string copies, cleanup attributes, time. No I/O. */
#ifndef RS_UTIL_H
#define RS_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define RS_WUR __attribute__((warn_unused_result))
#define RS_PRINTF(a, b) __attribute__((format(printf, a, b)))
#define RS_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
/* A macro's value as a string literal: RS_STR(RS_PATTERN_MAX) is "256". */
#define RS_STR_(x) #x
#define RS_STR(x) RS_STR_(x)

/* Out of memory aborts (as in git and Redis): a server that cannot allocate
 * should fail fast, not limp. */
void *rs_xmalloc(size_t n);
void *rs_xcalloc(size_t count, size_t n);
void *rs_xrealloc(void *p, size_t n);
char *rs_xstrdup(const char *s);
char *rs_xstrndup(const char *s, size_t n);
char *rs_xasprintf(const char *fmt, ...) RS_PRINTF(1, 2);

/* Copies at most dst_size-1 bytes and always terminates; returns strlen(src)
 * so callers can detect truncation (as BSD strlcpy). */
size_t rs_strlcpy(char *dst, const char *src, size_t dst_size);

/* Frees *p and sets it to NULL. */
static inline void rs_freep(void *p)
{
    free(*(void **)p);
    *(void **)p = NULL;
}
#define _cleanup_free_ __attribute__((cleanup(rs_freep)))

/* Hands ownership of *pp to the caller and clears the local (systemd's TAKE_PTR). */
#define RS_TAKE_PTR(p)                                                                             \
    ({                                                                                             \
        __typeof__(p) _tp = (p);                                                                   \
        (p) = NULL;                                                                                \
        _tp;                                                                                       \
    })

/* Wall clock in milliseconds since the Unix epoch, and a monotonic clock in
 * nanoseconds. Service code reads time only through its context (ctx.h). */
int64_t rs_wall_ms(void);
/* The business clock: the wall clock plus an offset that tests may set
 * (ROSTER_TEST_CLOCK=1 and PUT /api/v1/test/clock); 0 in production. */
int64_t rs_now_ms(void);
void rs_clock_offset_set(int64_t offset_ms);
int64_t rs_clock_offset_get(void);
uint64_t rs_mono_ns(void);
/* Fills *ts with CLOCK_MONOTONIC now + ms, for pthread_cond_timedwait on a
 * condition variable set to that clock. */
struct timespec;
void rs_deadline_ms(struct timespec *ts, int ms);

/* Formats ms since the epoch as RFC 3339 UTC with milliseconds
 * ("2026-11-24T06:40:00.123Z") into out (at least RS_TIME_STR_MAX bytes). */
#define RS_TIME_STR_MAX 32
void rs_time_format(int64_t ms, char out[RS_TIME_STR_MAX]);
/* Parses RFC 3339 as rs_time_format writes it (the fraction is optional, and
 * an offset may replace Z). Strict: digits only, real calendar dates, offsets
 * up to 23:59, instants within years 0000..9999 UTC (what format can write).
 * Returns 0 and sets *ret_ms, or -1 on malformed input. */
int rs_time_parse(const char *s, int64_t *ret_ms) RS_WUR;

/* Makes s valid UTF-8 in place: a sequence cut off at the end (by a bounded
 * copy) is dropped and any other invalid byte becomes '?'. For text bound
 * for JSON, which must be UTF-8. */
void rs_utf8_sanitize(char *s);

/* Lower-case hex of n bytes into out (2n+1 bytes). */
void rs_hex(const unsigned char *bytes, size_t n, char *out);

#include "banned.h"

#endif
