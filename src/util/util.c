/* util.c: allocation, bounded strings and time helpers (see util.h). */
#include <stdbool.h>
#include <stdio.h>
#include <time.h>

#include "util.h"

#undef gmtime

static void oom(size_t n)
{
    fprintf(stderr, "roster: out of memory allocating %zu bytes\n", n);
    abort();
}

void *rs_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        oom(n);
    return p;
}

void *rs_xcalloc(size_t count, size_t n)
{
    void *p = calloc(count ? count : 1, n ? n : 1);
    if (!p)
        oom(count * n);
    return p;
}

void *rs_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        oom(n);
    return q;
}

char *rs_xstrdup(const char *s)
{
    return rs_xstrndup(s, strlen(s));
}

char *rs_xstrndup(const char *s, size_t n)
{
    char *p = rs_xmalloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *rs_xasprintf(const char *fmt, ...)
{
    va_list ap;
    char *out = NULL;
    va_start(ap, fmt);
    int r = vasprintf(&out, fmt, ap);
    va_end(ap);
    if (r < 0)
        oom(0);
    return out;
}

size_t rs_strlcpy(char *dst, const char *src, size_t dst_size)
{
    size_t len = strlen(src);
    if (dst_size) {
        size_t n = len < dst_size - 1 ? len : dst_size - 1;
        memcpy(dst, src, n);
        dst[n] = '\0';
    }
    return len;
}

static _Atomic int64_t clock_offset_ms;

int64_t rs_now_ms(void)
{
    return rs_wall_ms() + clock_offset_ms;
}

void rs_clock_offset_set(int64_t offset_ms)
{
    clock_offset_ms = offset_ms;
}

int64_t rs_clock_offset_get(void)
{
    return clock_offset_ms;
}

int64_t rs_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

uint64_t rs_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void rs_time_format(int64_t ms, char out[RS_TIME_STR_MAX])
{
    time_t secs = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
    int frac = (int)(ms - (int64_t)secs * 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    /* Years outside 0..9999 are clamped: RFC 3339 has four-digit years. */
    int year = tm.tm_year + 1900;
    year = year < 0 ? 0 : (year > 9999 ? 9999 : year);
    /* By hand: every record in every answer carries a few of these, and
     * snprintf was a visible share of a GET. Same text as
     * "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ". */
    const int parts[7] = {year, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                          frac};
    static const int widths[7] = {4, 2, 2, 2, 2, 2, 3};
    static const char after[7] = {'-', '-', 'T', ':', ':', '.', 'Z'};
    char *p = out;
    for (int i = 0; i < 7; i++) {
        int v = parts[i] < 0 ? 0 : parts[i];
        for (int d = widths[i] - 1; d >= 0; d--) {
            p[d] = (char)('0' + v % 10);
            v /= 10;
        }
        p += widths[i];
        *p++ = after[i];
    }
    *p = '\0';
}

/* Reads exactly n ASCII digits. */
static int digits(const char *s, int n, int *ret)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *ret = v;
    return 0;
}

static int days_in_month(int year, int month)
{
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    return month == 2 && leap ? 29 : days[month - 1];
}

int rs_time_parse(const char *s, int64_t *ret_ms)
{
    int year, mon, day, hour, min, sec;
    if (strlen(s) < 20 || digits(s, 4, &year) || s[4] != '-' || digits(s + 5, 2, &mon) ||
        s[7] != '-' || digits(s + 8, 2, &day) || (s[10] != 'T' && s[10] != 't') ||
        digits(s + 11, 2, &hour) || s[13] != ':' || digits(s + 14, 2, &min) || s[16] != ':' ||
        digits(s + 17, 2, &sec))
        return -1;
    if (mon < 1 || mon > 12 || day < 1 || day > days_in_month(year, mon) || hour > 23 ||
        min > 59 || sec > 59)
        return -1;
    const char *p = s + 19;
    int frac = 0, fdigits = 0;
    if (*p == '.') {
        p++;
        while (*p >= '0' && *p <= '9') {
            if (fdigits < 3)
                frac = frac * 10 + (*p - '0');
            fdigits++;
            p++;
        }
        if (fdigits == 0)
            return -1;
        for (int i = fdigits; i < 3; i++)
            frac *= 10;
    }
    int offset_min = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int oh, om;
        if (digits(p + 1, 2, &oh) || p[3] != ':' || digits(p + 4, 2, &om) || oh > 23 || om > 59)
            return -1;
        offset_min = (oh * 60 + om) * (*p == '-' ? -1 : 1);
        p += 6;
    } else {
        return -1;
    }
    if (*p != '\0')
        return -1;
    struct tm tm = {.tm_year = year - 1900, .tm_mon = mon - 1, .tm_mday = day,
                    .tm_hour = hour, .tm_min = min, .tm_sec = sec};
    int64_t ms = ((int64_t)timegm(&tm) - offset_min * 60) * 1000 + frac;
    /* 0000-01-01T00:00:00Z .. 9999-12-31T23:59:59.999Z */
    if (ms < -62167219200000LL || ms > 253402300799999LL)
        return -1;
    *ret_ms = ms;
    return 0;
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0 if invalid or cut off. */
static int utf8_seq(const unsigned char *s)
{
    unsigned char c = s[0];
    int n;
    uint32_t cp;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
        cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    for (int i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3f);
    }
    if ((n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
        (n == 4 && (cp < 0x10000 || cp > 0x10ffff)))
        return 0;
    return n;
}

void rs_utf8_sanitize(char *s)
{
    unsigned char *p = (unsigned char *)s;
    while (*p) {
        int n = utf8_seq(p);
        if (n > 0) {
            p += n;
            continue;
        }
        /* A lead byte whose sequence the terminator cut short: drop the tail. */
        size_t rest = strlen((char *)p);
        if (*p >= 0xc2 && *p <= 0xf4 && rest < 4) {
            bool all_cont = true;
            for (size_t i = 1; i < rest; i++)
                all_cont = all_cont && (p[i] & 0xc0) == 0x80;
            if (all_cont) {
                *p = '\0';
                return;
            }
        }
        *p++ = '?';
    }
}

void rs_hex(const unsigned char *bytes, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[bytes[i] >> 4];
        out[2 * i + 1] = digits[bytes[i] & 15];
    }
    out[2 * n] = '\0';
}

void rs_deadline_ms(struct timespec *ts, int ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}
