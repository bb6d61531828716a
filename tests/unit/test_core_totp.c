/* test_core_totp.c: unit tests for TOTP (src/core/totp.h): the RFC 6238
 * Appendix B vectors, the acceptance window and single use, code syntax,
 * RFC 4648 base32, the otpauth:// URI and the QR code SVG. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>
#include <qrencode.h>

#include "src/core/totp.h"

/* RFC 6238 Appendix B: the SHA-1 seed is the ASCII "12345678901234567890". */
static const unsigned char rfc_secret[] = "12345678901234567890";
#define RFC_SECRET_LEN 20

/* Times and the 8-digit SHA-1 codes of RFC 6238 Appendix B; a 6-digit code
 * is the same truncated value mod 10^6, i.e. the last six digits. */
static const struct {
    int64_t t;
    const char *code8;
} vectors[] = {
    {59, "94287082"},         {1111111109, "07081804"}, {1111111111, "14050471"},
    {1234567890, "89005924"}, {2000000000, "69279037"}, {20000000000, "65353130"},
};

#define STEP_MS(s) ((int64_t)(s)*RS_TOTP_PERIOD_MS)

static const char *last6(const char *code8)
{
    return code8 + 2;
}

/* ---- codes -------------------------------------------------------------- */

static void rfc6238_vectors(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
        char out[7] = "xxxxxx";
        rs_totp_code(rfc_secret, RFC_SECRET_LEN, vectors[i].t * 1000, out);
        assert_string_equal(out, last6(vectors[i].code8));
        /* Any millisecond of the same step gives the same code. */
        int64_t step = vectors[i].t / 30;
        rs_totp_code(rfc_secret, RFC_SECRET_LEN, STEP_MS(step), out);
        assert_string_equal(out, last6(vectors[i].code8));
        rs_totp_code(rfc_secret, RFC_SECRET_LEN, STEP_MS(step + 1) - 1, out);
        assert_string_equal(out, last6(vectors[i].code8));
    }
}

static void rfc6238_verify_at_vector_times(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
        int64_t step = -1;
        assert_int_equal(rs_totp_verify(rfc_secret, RFC_SECRET_LEN, last6(vectors[i].code8),
                                        vectors[i].t * 1000, 0, 0, &step),
                         0);
        assert_int_equal(step, vectors[i].t / 30);
    }
}

static void step_rounds_down(void **state)
{
    (void)state;
    assert_int_equal(rs_totp_step(0), 0);
    assert_int_equal(rs_totp_step(29999), 0);
    assert_int_equal(rs_totp_step(30000), 1);
    assert_int_equal(rs_totp_step(59000), 1);
    assert_int_equal(rs_totp_step(-1), -1);
    assert_int_equal(rs_totp_step(-30000), -1);
    assert_int_equal(rs_totp_step(-30001), -2);
}

/* ---- window and single use ---------------------------------------------- */

/* The code of step s at the middle of that step. */
static void code_of_step(int64_t s, char out[7])
{
    rs_totp_code(rfc_secret, RFC_SECRET_LEN, STEP_MS(s) + 15000, out);
}

static int verify_at(const char *code, int64_t now_step, int window, int64_t last, int64_t *ret)
{
    return rs_totp_verify(rfc_secret, RFC_SECRET_LEN, code, STEP_MS(now_step) + 1234, window, last,
                          ret);
}

static void window_accepts_one_step_either_side(void **state)
{
    (void)state;
    const int64_t s = 1234567890 / 30;
    char code[7];
    code_of_step(s, code);
    /* The neighbouring codes differ, so a match is this step's. */
    char before[7], after[7];
    code_of_step(s - 1, before);
    code_of_step(s + 1, after);
    assert_string_not_equal(code, before);
    assert_string_not_equal(code, after);

    int64_t got = 0;
    assert_int_equal(verify_at(code, s, 1, 0, &got), 0);
    assert_int_equal(got, s);
    got = 0;
    assert_int_equal(verify_at(code, s + 1, 1, 0, &got), 0); /* phone slow by one step */
    assert_int_equal(got, s);
    got = 0;
    assert_int_equal(verify_at(code, s - 1, 1, 0, &got), 0); /* phone fast by one step */
    assert_int_equal(got, s);

    got = 42;
    assert_int_equal(verify_at(code, s + 2, 1, 0, &got), -RS_EUNAUTHENTICATED);
    assert_int_equal(verify_at(code, s - 2, 1, 0, &got), -RS_EUNAUTHENTICATED);
    assert_int_equal(got, 42); /* untouched on failure */
    /* Window 0: only the current step. */
    assert_int_equal(verify_at(code, s, 0, 0, &got), 0);
    assert_int_equal(verify_at(code, s + 1, 0, 0, &got), -RS_EUNAUTHENTICATED);
    assert_int_equal(verify_at(code, s - 1, 0, 0, &got), -RS_EUNAUTHENTICATED);
    /* Window 2 reaches two steps; a negative window means 0. */
    assert_int_equal(verify_at(code, s + 2, 2, 0, &got), 0);
    assert_int_equal(verify_at(code, s + 1, -5, 0, &got), -RS_EUNAUTHENTICATED);
    /* Huge windows are clamped to RS_TOTP_WINDOW_MAX. */
    assert_int_equal(verify_at(code, s + RS_TOTP_WINDOW_MAX, 1000000, 0, &got), 0);
    assert_int_equal(verify_at(code, s + RS_TOTP_WINDOW_MAX + 1, 1000000, 0, &got),
                     -RS_EUNAUTHENTICATED);
}

static void single_use(void **state)
{
    (void)state;
    const int64_t s = 2000000000 / 30;
    char code[7];
    code_of_step(s, code);
    int64_t got = 0;
    assert_int_equal(verify_at(code, s, 1, s - 1, &got), 0);
    assert_int_equal(got, s);
    /* Once step s was used, its code (and anything older) is refused. */
    assert_int_equal(verify_at(code, s, 1, s, &got), -RS_EUNAUTHENTICATED);
    assert_int_equal(verify_at(code, s + 1, 1, s, &got), -RS_EUNAUTHENTICATED);
    assert_int_equal(verify_at(code, s, 1, s + 1, &got), -RS_EUNAUTHENTICATED);
    /* The next step's code is still good. */
    char next[7];
    code_of_step(s + 1, next);
    assert_int_equal(verify_at(next, s, 1, s, &got), 0);
    assert_int_equal(got, s + 1);
}

static void malformed_codes_refused(void **state)
{
    (void)state;
    const int64_t t = 59000;
    const char *bad[] = {
        "",
        "28708",
        "2870820",
        "28708a",
        " 287082",
        "287082 ",
        "287082\n",
        "+287082",
        "-28708",
        "28 708",
        "2870 82",
        "0x1234",
        "\xef\xbc\x92\xef\xbc\x98\xef\xbc\x97\xef\xbc\x90\xef\xbc\x98\xef\xbc\x92", /* full-width */
    };
    int64_t got = 7;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (rs_totp_verify(rfc_secret, RFC_SECRET_LEN, bad[i], t, 1, 0, &got) !=
            -RS_EUNAUTHENTICATED)
            fail_msg("code \"%s\" accepted", bad[i]);
    }
    assert_int_equal(rs_totp_verify(rfc_secret, RFC_SECRET_LEN, NULL, t, 1, 0, &got),
                     -RS_EUNAUTHENTICATED);
    assert_int_equal(got, 7);
    /* The well-formed code is accepted, so the refusals above are about form. */
    assert_int_equal(rs_totp_verify(rfc_secret, RFC_SECRET_LEN, "287082", t, 1, 0, &got), 0);
    /* Wrong code, right form. */
    assert_int_equal(rs_totp_verify(rfc_secret, RFC_SECRET_LEN, "287083", t, 1, 0, &got),
                     -RS_EUNAUTHENTICATED);
    /* Another secret does not produce this code. */
    static const unsigned char other[RFC_SECRET_LEN] = {1, 2, 3};
    assert_int_equal(rs_totp_verify(other, RFC_SECRET_LEN, "287082", t, 1, 0, &got),
                     -RS_EUNAUTHENTICATED);
    /* No secret. */
    assert_int_equal(rs_totp_verify(rfc_secret, 0, "287082", t, 1, 0, &got), -RS_EUNAUTHENTICATED);
}

/* ---- base32 ------------------------------------------------------------- */

static void expect_b32(const char *in, const char *want)
{
    char out[64];
    memset(out, '#', sizeof(out));
    rs_totp_base32((const unsigned char *)in, strlen(in), out, sizeof(out));
    assert_string_equal(out, want);
}

static void base32_rfc4648_vectors(void **state)
{
    (void)state;
    /* RFC 4648 section 10, padding removed. */
    expect_b32("", "");
    expect_b32("f", "MY");
    expect_b32("fo", "MZXQ");
    expect_b32("foo", "MZXW6");
    expect_b32("foob", "MZXW6YQ");
    expect_b32("fooba", "MZXW6YTB");
    expect_b32("foobar", "MZXW6YTBOI");
    /* The RFC 6238 seed as authenticator apps know it. */
    expect_b32("12345678901234567890", "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
    /* Every bit pattern maps into the alphabet. */
    unsigned char ff[5] = {0xff, 0xff, 0xff, 0xff, 0xff}, zero[5] = {0};
    char out[16];
    rs_totp_base32(ff, 5, out, sizeof(out));
    assert_string_equal(out, "77777777");
    rs_totp_base32(zero, 5, out, sizeof(out));
    assert_string_equal(out, "AAAAAAAA");
}

static void base32_capacity(void **state)
{
    (void)state;
    unsigned char secret[RS_TOTP_SECRET_BYTES];
    for (int i = 0; i < RS_TOTP_SECRET_BYTES; i++)
        secret[i] = (unsigned char)(i * 37 + 11);
    char out[2 * RS_TOTP_SECRET_BYTES + 1];
    rs_totp_base32(secret, sizeof(secret), out, sizeof(out));
    assert_int_equal(strlen(out), 32);
    /* Exactly enough: 32 characters and the NUL. */
    char exact[33];
    rs_totp_base32(secret, sizeof(secret), exact, sizeof(exact));
    assert_string_equal(exact, out);
    /* One byte short: an empty string, never a truncated secret. */
    char small[32];
    memset(small, 'x', sizeof(small));
    rs_totp_base32(secret, sizeof(secret), small, sizeof(small));
    assert_string_equal(small, "");
}

/* ---- URI ---------------------------------------------------------------- */

static void uri_format(void **state)
{
    (void)state;
    char *uri = rs_totp_uri("Acme Corp", "jane.doe@example.com", "GEZDGNBVGY3TQOJQ");
    assert_string_equal(uri, "otpauth://totp/Acme%20Corp:jane.doe%40example.com"
                             "?secret=GEZDGNBVGY3TQOJQ&issuer=Acme%20Corp"
                             "&algorithm=SHA1&digits=6&period=30");
    free(uri);
    /* Non-ASCII is percent-encoded UTF-8; a colon in a part cannot split the label. */
    uri = rs_totp_uri("Z\xc3\xbcrich:HR", "a&b=c?d/e", "MY");
    assert_string_equal(uri, "otpauth://totp/Z%C3%BCrich%3AHR:a%26b%3Dc%3Fd%2Fe"
                             "?secret=MY&issuer=Z%C3%BCrich%3AHR"
                             "&algorithm=SHA1&digits=6&period=30");
    free(uri);
    /* Unreserved characters stay as they are. */
    uri = rs_totp_uri("a-b.c_d~e", "X9", "MY");
    assert_string_equal(uri, "otpauth://totp/a-b.c_d~e:X9?secret=MY&issuer=a-b.c_d~e"
                             "&algorithm=SHA1&digits=6&period=30");
    free(uri);
    /* No issuer: no prefix, no parameter. */
    uri = rs_totp_uri(NULL, "jane", "MY");
    assert_string_equal(uri, "otpauth://totp/jane?secret=MY&algorithm=SHA1&digits=6&period=30");
    free(uri);
    uri = rs_totp_uri("", "jane", "MY");
    assert_string_equal(uri, "otpauth://totp/jane?secret=MY&algorithm=SHA1&digits=6&period=30");
    free(uri);
}

/* ---- QR SVG ------------------------------------------------------------- */

/* Redraws the SVG's path into a size x size grid of modules. */
static void svg_modules(const char *svg, int size, unsigned char *grid)
{
    const char *d = strstr(svg, " d=\"");
    assert_non_null(d);
    d += 4;
    while (*d == 'M') {
        int x, y, h, back, used = 0;
        assert_int_equal(sscanf(d, "M%d %dh%dv1h-%dz%n", &x, &y, &h, &back, &used), 4);
        assert_true(used > 0);
        assert_int_equal(h, back);
        assert_true(x >= 0 && y >= 0 && h > 0 && x + h <= size && y < size);
        for (int i = 0; i < h; i++) {
            assert_int_equal(grid[y * size + x + i], 0); /* runs never overlap */
            grid[y * size + x + i] = 1;
        }
        d += used;
    }
    assert_true(*d == '"');
}

static void qr_svg_matches_libqrencode(void **state)
{
    (void)state;
    const char *text = "otpauth://totp/Acme%20Corp:jane%40example.com?secret="
                       "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Acme%20Corp&algorithm=SHA1"
                       "&digits=6&period=30";
    char *svg = rs_qr_svg(text);
    assert_non_null(svg);
    assert_memory_equal(svg, "<svg", 4);
    assert_non_null(strstr(svg, "xmlns=\"http://www.w3.org/2000/svg\""));
    assert_non_null(strstr(svg, "shape-rendering=\"crispEdges\""));
    assert_non_null(strstr(svg, "<path"));
    assert_non_null(strstr(svg, "</svg>"));

    QRcode *qr = QRcode_encodeString(text, 0, QR_ECLEVEL_M, QR_MODE_8, 1);
    assert_non_null(qr);
    int size = qr->width + 8;
    char viewbox[64];
    snprintf(viewbox, sizeof(viewbox), "viewBox=\"0 0 %d %d\"", size, size);
    assert_non_null(strstr(svg, viewbox));

    /* Every dark module is drawn, nothing else, and the quiet zone is empty. */
    unsigned char *grid = calloc((size_t)(size * size), 1);
    svg_modules(svg, size, grid);
    for (int y = 0; y < size; y++) {
        for (int x = 0; x < size; x++) {
            bool inside = x >= 4 && y >= 4 && x < size - 4 && y < size - 4;
            int want = inside ? qr->data[(y - 4) * qr->width + (x - 4)] & 1 : 0;
            if (grid[y * size + x] != want)
                fail_msg("module (%d,%d) is %d, want %d", x, y, grid[y * size + x], want);
        }
    }
    free(grid);
    QRcode_free(qr);

    /* Deterministic. */
    char *again = rs_qr_svg(text);
    assert_string_equal(svg, again);
    free(again);
    /* Different text, different picture. */
    char *other = rs_qr_svg("otpauth://totp/x?secret=MY");
    assert_string_not_equal(svg, other);
    free(other);
    free(svg);
}

static void qr_svg_refuses(void **state)
{
    (void)state;
    assert_null(rs_qr_svg(NULL));
    /* More than a version-40 symbol holds at level M (2331 bytes). */
    char big[4000];
    memset(big, 'z', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_null(rs_qr_svg(big));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(rfc6238_vectors),
        cmocka_unit_test(rfc6238_verify_at_vector_times),
        cmocka_unit_test(step_rounds_down),
        cmocka_unit_test(window_accepts_one_step_either_side),
        cmocka_unit_test(single_use),
        cmocka_unit_test(malformed_codes_refused),
        cmocka_unit_test(base32_rfc4648_vectors),
        cmocka_unit_test(base32_capacity),
        cmocka_unit_test(uri_format),
        cmocka_unit_test(qr_svg_matches_libqrencode),
        cmocka_unit_test(qr_svg_refuses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
