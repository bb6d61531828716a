/* totp.h: time-based one-time passwords (RFC 6238: HMAC-SHA-1, 6 digits,
 * 30-second steps, the parameters every authenticator app supports), the
 * otpauth:// URI that enrols them, and its QR code as SVG. Pure: the caller
 * supplies the secret (random bytes) and the time. */
#ifndef RS_TOTP_H
#define RS_TOTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

#define RS_TOTP_SECRET_BYTES 20 /* 160 bits, the HMAC-SHA-1 block RFC 4226 recommends */
#define RS_TOTP_PERIOD_MS 30000
#define RS_TOTP_DIGITS 6
#define RS_TOTP_WINDOW_MAX 10 /* rs_totp_verify clamps window to 0..this */

/* RFC 4648 base32 (A-Z, 2-7) without padding, NUL-terminated; out needs
 * 2*n+1 bytes (exactly ceil(8n/5)+1). If cap is too small, out is "" (when
 * cap > 0). */
void rs_totp_base32(const unsigned char *secret, size_t n, char *out, size_t cap);

/* otpauth://totp/ISSUER:ACCOUNT?secret=...&issuer=...&algorithm=SHA1&digits=6&period=30
 * with issuer and account percent-encoded (everything but RFC 3986
 * unreserved characters). A NULL or empty issuer leaves out the label
 * prefix and the issuer parameter. Caller frees. */
char *rs_totp_uri(const char *issuer, const char *account, const char *base32);

/* Verifies a code at now_ms, accepting steps now-window..now+window (window
 * clamped to 0..RS_TOTP_WINDOW_MAX); a step <= last_step is refused (single
 * use: pass the step of the last accepted code, 0 if none). code must be
 * exactly 6 ASCII digits. Every step in the window is computed and compared
 * in constant time whatever matches. 0 and *ret_step = the earliest matching
 * step, or -RS_EUNAUTHENTICATED (*ret_step untouched). */
int rs_totp_verify(const unsigned char *secret, size_t n, const char *code, int64_t now_ms,
                   int window, int64_t last_step, int64_t *ret_step) RS_WUR;

/* The time step of now_ms (floor(now_ms / RS_TOTP_PERIOD_MS)). */
int64_t rs_totp_step(int64_t now_ms);

/* The code for a time (tests, and the enrolment check). out: 7 bytes, six
 * digits and a NUL ("" if liboath fails, which it does only for a bad
 * argument). */
void rs_totp_code(const unsigned char *secret, size_t n, int64_t now_ms, char out[7]);

/* A QR code of text (libqrencode, error correction level M, 8-bit mode) as a
 * standalone SVG document: a viewBox in modules with a 4-module quiet zone,
 * a white background and one black <path>. Deterministic. NULL when text is
 * NULL or too long for a QR code. Caller frees. */
char *rs_qr_svg(const char *text);

#endif
