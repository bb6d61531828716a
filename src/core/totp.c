/* totp.c: RFC 6238 codes through liboath, base32 and the otpauth:// URI, and
 * the enrolment QR code through libqrencode (see totp.h). Pure: no clock, no
 * randomness; the caller passes both in. */
#include <liboath/oath.h>
#include <pthread.h>
#include <qrencode.h>
#include <sodium.h>
#include <stdio.h>

#include "totp.h"

static pthread_once_t oath_once = PTHREAD_ONCE_INIT;
static int oath_status = OATH_OK;

/* liboath asks for oath_init before use. It only initialises its crypto
 * backend (a no-op for Debian's build, which uses gnulib's SHA-1), but
 * running it once under pthread_once keeps that true whatever the build. */
static void oath_setup(void)
{
    oath_status = oath_init();
}

void rs_totp_base32(const unsigned char *secret, size_t n, char *out, size_t cap)
{
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    size_t need = (n * 8 + 4) / 5;
    if (cap == 0)
        return;
    if (cap < need + 1) {
        out[0] = '\0';
        return;
    }
    size_t o = 0;
    unsigned buffer = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        buffer = (buffer << 8) | secret[i];
        bits += 8;
        while (bits >= 5) {
            out[o++] = alphabet[(buffer >> (bits - 5)) & 31];
            bits -= 5;
        }
    }
    /* The last group is padded with zero bits on the right (RFC 4648 6). */
    if (bits > 0)
        out[o++] = alphabet[(buffer << (5 - bits)) & 31];
    out[o] = '\0';
}

/* Percent-encoded copy of s: RFC 3986 unreserved characters stay, every
 * other byte becomes %XX. */
static char *uri_escape(const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t len = strlen(s);
    char *out = rs_xmalloc(len * 3 + 1), *o = out;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        bool keep = (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
                    (*p >= '0' && *p <= '9') || *p == '-' || *p == '.' || *p == '_' || *p == '~';
        if (keep) {
            *o++ = (char)*p;
            continue;
        }
        *o++ = '%';
        *o++ = hex[*p >> 4];
        *o++ = hex[*p & 15];
    }
    *o = '\0';
    return out;
}

char *rs_totp_uri(const char *issuer, const char *account, const char *base32)
{
    _cleanup_free_ char *acc = uri_escape(account ? account : "");
    if (!issuer || !*issuer)
        return rs_xasprintf("otpauth://totp/%s?secret=%s&algorithm=SHA1&digits=%d&period=%d", acc,
                            base32, RS_TOTP_DIGITS, RS_TOTP_PERIOD_MS / 1000);
    _cleanup_free_ char *iss = uri_escape(issuer);
    /* The issuer is in the label (older apps) and the parameter (newer ones). */
    return rs_xasprintf(
        "otpauth://totp/%s:%s?secret=%s&issuer=%s&algorithm=SHA1&digits=%d&period=%d", iss, acc,
        base32, iss, RS_TOTP_DIGITS, RS_TOTP_PERIOD_MS / 1000);
}

int64_t rs_totp_step(int64_t now_ms)
{
    int64_t step = now_ms / RS_TOTP_PERIOD_MS;
    /* Round towards minus infinity, so a time before 1970 is not step 0. */
    if (now_ms % RS_TOTP_PERIOD_MS < 0)
        step--;
    return step;
}

/* The code of one step (RFC 4226 HOTP with the step as counter); 0 or -1. */
static int step_code(const unsigned char *secret, size_t n, int64_t step, char out[7])
{
    out[0] = '\0';
    if (pthread_once(&oath_once, oath_setup) != 0 || oath_status != OATH_OK || step < 0)
        return -1;
    int rc = oath_hotp_generate((const char *)secret, n, (uint64_t)step, RS_TOTP_DIGITS, false,
                                OATH_HOTP_DYNAMIC_TRUNCATION, out);
    if (rc != OATH_OK) {
        out[0] = '\0';
        return -1;
    }
    return 0;
}

void rs_totp_code(const unsigned char *secret, size_t n, int64_t now_ms, char out[7])
{
    (void)step_code(secret, n, rs_totp_step(now_ms), out);
}

/* Exactly six ASCII digits, nothing else. */
static bool code_well_formed(const char *code)
{
    if (!code)
        return false;
    for (int i = 0; i < RS_TOTP_DIGITS; i++) {
        if (code[i] < '0' || code[i] > '9')
            return false;
    }
    return code[RS_TOTP_DIGITS] == '\0';
}

int rs_totp_verify(const unsigned char *secret, size_t n, const char *code, int64_t now_ms,
                   int window, int64_t last_step, int64_t *ret_step)
{
    if (!code_well_formed(code) || !secret || n == 0)
        return -RS_EUNAUTHENTICATED;
    if (window < 0)
        window = 0;
    if (window > RS_TOTP_WINDOW_MAX)
        window = RS_TOTP_WINDOW_MAX;
    int64_t now_step = rs_totp_step(now_ms);
    int64_t matched = -1;
    /* No early exit: the time taken says nothing about which step matched. */
    for (int64_t step = now_step - window; step <= now_step + window; step++) {
        char expect[7];
        if (step_code(secret, n, step, expect) < 0)
            continue;
        bool same = sodium_memcmp(expect, code, RS_TOTP_DIGITS) == 0;
        if (same && step > last_step && matched < 0)
            matched = step;
    }
    if (matched < 0)
        return -RS_EUNAUTHENTICATED;
    *ret_step = matched;
    return 0;
}

/* A growable text buffer for the SVG (sizes are bounded by the QR version). */
struct svgbuf {
    char *s;
    size_t len, cap;
};

static void svg_addf(struct svgbuf *b, const char *fmt, ...) RS_PRINTF(2, 3);
static void svg_addf(struct svgbuf *b, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int w = vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (w >= 0 && (size_t)w < b->cap - b->len) {
            b->len += (size_t)w;
            return;
        }
        b->cap = b->cap * 2 + (w > 0 ? (size_t)w : 64);
        b->s = rs_xrealloc(b->s, b->cap);
    }
}

#define QR_QUIET_ZONE 4 /* modules of margin ISO/IEC 18004 asks for */
#define QR_PIXELS_PER_MODULE 4

char *rs_qr_svg(const char *text)
{
    if (!text)
        return NULL;
    /* casesensitive=1: an otpauth secret is upper case and must stay so. */
    QRcode *qr = QRcode_encodeString(text, 0, QR_ECLEVEL_M, QR_MODE_8, 1);
    if (!qr)
        return NULL;
    int w = qr->width, size = w + 2 * QR_QUIET_ZONE;
    struct svgbuf b = {.s = rs_xmalloc(4096), .len = 0, .cap = 4096};
    svg_addf(&b,
             "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
             "viewBox=\"0 0 %d %d\" shape-rendering=\"crispEdges\">"
             "<rect width=\"%d\" height=\"%d\" fill=\"#fff\"/><path fill=\"#000\" d=\"",
             size * QR_PIXELS_PER_MODULE, size * QR_PIXELS_PER_MODULE, size, size, size, size);
    /* One rectangle per horizontal run of dark modules (bit 0 of each byte). */
    for (int y = 0; y < w; y++) {
        for (int x = 0; x < w;) {
            if (!(qr->data[y * w + x] & 1)) {
                x++;
                continue;
            }
            int run = 1;
            while (x + run < w && (qr->data[y * w + x + run] & 1))
                run++;
            svg_addf(&b, "M%d %dh%dv1h-%dz", x + QR_QUIET_ZONE, y + QR_QUIET_ZONE, run, run);
            x += run;
        }
    }
    svg_addf(&b, "\"/></svg>\n");
    QRcode_free(qr);
    return b.s;
}
