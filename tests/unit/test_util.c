/* test_util.c: unit tests for the small helpers in src/util/util.h: RFC 3339
 * time formatting and parsing, bounded copies, hex and allocation helpers. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>

#include "src/util/util.h"

static void expect_format(int64_t ms, const char *want)
{
    char out[RS_TIME_STR_MAX];
    rs_time_format(ms, out);
    if (strcmp(out, want) != 0)
        fail_msg("format(%lld) = \"%s\", want \"%s\"", (long long)ms, out, want);
}

static void expect_parse(const char *s, int64_t want)
{
    int64_t ms = 12345;
    int r = rs_time_parse(s, &ms);
    if (r != 0)
        fail_msg("parse(\"%s\") refused", s);
    if (ms != want)
        fail_msg("parse(\"%s\") = %lld, want %lld", s, (long long)ms, (long long)want);
}

static void expect_malformed(const char *s)
{
    int64_t ms = 12345;
    int r = rs_time_parse(s, &ms);
    if (r != -1)
        fail_msg("parse(\"%s\") accepted as %lld", s, (long long)ms);
    if (ms != 12345)
        fail_msg("parse(\"%s\") wrote its output on failure", s);
}

static void time_format(void **state)
{
    expect_format(0, "1970-01-01T00:00:00.000Z");
    expect_format(1700000000123, "2023-11-14T22:13:20.123Z");
    expect_format(1795502400123, "2026-11-24T06:40:00.123Z");
    expect_format(1709208000000, "2024-02-29T12:00:00.000Z");
    expect_format(253402300799999, "9999-12-31T23:59:59.999Z");
    expect_format(-1, "1969-12-31T23:59:59.999Z");
    expect_format(-1000, "1969-12-31T23:59:59.000Z");
    expect_format(-1001, "1969-12-31T23:59:58.999Z");
    expect_format(-62135596800000, "0001-01-01T00:00:00.000Z");
}

static void time_round_trip(void **state)
{
    static const int64_t values[] = {0,
                                     1,
                                     999,
                                     1000,
                                     -1,
                                     -999,
                                     -1000,
                                     -86400001,
                                     1483228799000,
                                     1700000000123,
                                     1795502400123,
                                     253402300799999,
                                     -62135596800000};
    for (size_t i = 0; i < RS_ARRAY_LEN(values); i++) {
        char s[RS_TIME_STR_MAX];
        rs_time_format(values[i], s);
        expect_parse(s, values[i]);
    }
}

static void time_parse_variants(void **state)
{
    expect_parse("2026-11-24T06:40:00Z", 1795502400000);
    expect_parse("2026-11-24T06:40:00z", 1795502400000);
    expect_parse("2026-11-24t06:40:00Z", 1795502400000); /* RFC 3339 allows lower case */
    expect_parse("2026-11-24T06:40:00.1Z", 1795502400100);
    expect_parse("2026-11-24T06:40:00.12Z", 1795502400120);
    expect_parse("2026-11-24T06:40:00.123Z", 1795502400123);
    expect_parse("2026-11-24T06:40:00.05Z", 1795502400050);
    /* Digits past milliseconds are truncated, not rounded. */
    expect_parse("2026-11-24T06:40:00.123999Z", 1795502400123);
    /* Offsets: local time minus the offset is UTC. */
    expect_parse("2026-11-24T08:40:00+02:00", 1795502400000);
    expect_parse("2026-11-24T08:40:00.123+02:00", 1795502400123);
    expect_parse("2026-11-24T01:10:00-05:30", 1795502400000);
    expect_parse("2026-11-24T06:40:00+00:00", 1795502400000);
    expect_parse("2026-11-24T06:40:00-00:00", 1795502400000);
    expect_parse("2026-11-24T06:40:00+23:59", 1795416060000);
    expect_parse("2026-11-24T06:40:00-23:59", 1795588740000);
    /* Across a day and year boundary. */
    expect_parse("2027-01-01T01:00:00+02:00", 1798758000000);
    /* Leap days, and the ends of the four-digit years format can write. */
    expect_parse("2024-02-29T12:00:00Z", 1709208000000);
    expect_parse("2000-02-29T00:00:00Z", 951782400000);
    expect_parse("0000-01-01T00:00:00Z", -62167219200000);
    expect_parse("9999-12-31T23:59:59.999Z", 253402300799999);
    expect_parse("0000-01-01T00:01:00+00:01", -62167219200000);
    expect_parse("9999-12-31T23:58:59.999-00:01", 253402300799999);
}

static void time_parse_malformed(void **state)
{
    static const char *const bad[] = {
        "", "x", "2026-11-24", "2026-11-24T06:40", "2026-11-24T06:40:00", /* no zone */
        "2026-11-24 06:40:00Z",                                           /* space for T */
        "26-11-24T06:40:00Z", "2026-1-24T06:40:00Z", "2026-11-2T06:40:00Z", "20261124T064000Z",
        " 2026-11-24T06:40:00Z", "2026-13-01T00:00:00Z", "2026-00-01T00:00:00Z",
        "2026-01-00T00:00:00Z", "2026-01-32T00:00:00Z", "2026-01-01T24:00:00Z",
        "2026-01-01T00:60:00Z", "2026-01-01T00:00:61Z", "2026-11-24T06:40:00.Z",
        "2026-11-24T06:40:00.123", "2026-11-24T06:40:00ZZ", "2026-11-24T06:40:00Z ",
        "2026-11-24T06:40:00+0200", "2026-11-24T06:40:00+02", "2026-11-24T06:40:00+02:00x",
        "2026-11-24T06:40:00+2:00", "2026-11-24T06:40:00 +02:00", "2026-11-24T06:40:00UTC",
        /* Not real dates or times. */
        "2026-02-31T00:00:00Z", "2026-04-31T00:00:00Z",
        "2026-02-29T00:00:00Z", /* not a leap year */
        "1900-02-29T00:00:00Z", "2026-01-01T00:00:60Z",
        /* Offsets out of range. */
        "2026-01-01T00:00:00+99:99", "2026-01-01T00:00:00+24:00", "2026-01-01T00:00:00+00:60",
        /* Signs and blanks inside fields. */
        "+026-01-01T00:00:00Z", "-001-01-01T00:00:00Z", "2026-+1-01T00:00:00Z",
        "2026-01-01T00:00: 1Z", "2026-01-01T00:00:+1Z", "2026-01-01T00:00:00+-1:00",
        "2026-01-01T00:00:00+ 1:00",
        /* Instants outside the years 0000..9999 UTC, which format could not write. */
        "9999-12-31T23:59:59-01:00", "0000-01-01T00:00:00+01:00",
        "0000-01-01T00:00:59.999+00:01", /* 1 ms before 0000-01-01T00:00:00Z */
        "9999-12-31T23:59:00-00:01",     /* 10000-01-01T00:00:00Z */
    };
    for (size_t i = 0; i < RS_ARRAY_LEN(bad); i++)
        expect_malformed(bad[i]);
}

static void expect_sanitized(const char *in, const char *want)
{
    char buf[64];
    rs_strlcpy(buf, in, sizeof(buf));
    rs_utf8_sanitize(buf);
    if (strcmp(buf, want) != 0)
        fail_msg("sanitize(\"%s\") = \"%s\", want \"%s\"", in, buf, want);
}

static void utf8_sanitize(void **state)
{
    expect_sanitized("", "");
    expect_sanitized("plain", "plain");
    expect_sanitized("Åsa 用户 \U0001f600", "Åsa 用户 \U0001f600");
    /* A sequence cut off at the end (as by a bounded copy) is dropped. */
    expect_sanitized("ab\xc3", "ab");
    expect_sanitized("ab\xe7\x94", "ab");
    expect_sanitized("ab\xf0\x9f\x98", "ab");
    /* Any other invalid byte becomes '?'. */
    expect_sanitized("a\377b", "a?b");
    expect_sanitized("a\200b", "a?b");
    expect_sanitized("a\xc3(b", "a?(b");
    expect_sanitized("a\300\200b", "a??b");           /* overlong NUL */
    expect_sanitized("a\355\240\200b", "a???b");      /* surrogate */
    expect_sanitized("a\364\220\200\200b", "a????b"); /* past U+10FFFF */

    /* The result of cutting a string at any byte is always valid UTF-8. */
    const char *s = "aé用\U0001f600z";
    for (size_t cut = 0; cut <= strlen(s); cut++) {
        char buf[32];
        memcpy(buf, s, cut);
        buf[cut] = '\0';
        rs_utf8_sanitize(buf);
        assert_memory_equal(buf, s, strlen(buf)); /* only ever shortened here */
        for (const char *p = buf; *p; p++)
            assert_true(*p != '?');
    }
}

static void strlcpy_copies_and_truncates(void **state)
{
    char buf[8];
    memset(buf, 'X', sizeof(buf));
    assert_int_equal(rs_strlcpy(buf, "abc", sizeof(buf)), 3);
    assert_string_equal(buf, "abc");

    /* Exactly fits: 7 characters and the terminator. */
    assert_int_equal(rs_strlcpy(buf, "abcdefg", sizeof(buf)), 7);
    assert_string_equal(buf, "abcdefg");

    /* Truncated: returns the source length so callers can tell. */
    char guarded[12];
    memset(guarded, 'G', sizeof(guarded));
    assert_int_equal(rs_strlcpy(guarded, "abcdefghij", 4), 10);
    assert_string_equal(guarded, "abc");
    assert_int_equal(guarded[4], 'G'); /* nothing written past dst_size */

    /* Size 0 writes nothing. */
    memset(buf, 'X', sizeof(buf));
    assert_int_equal(rs_strlcpy(buf, "abc", 0), 3);
    assert_int_equal(buf[0], 'X');

    /* Size 1 leaves an empty string. */
    assert_int_equal(rs_strlcpy(buf, "abc", 1), 3);
    assert_string_equal(buf, "");
}

static void hex(void **state)
{
    const unsigned char bytes[] = {0x00, 0x01, 0x7f, 0xab, 0xff};
    char out[2 * sizeof(bytes) + 1];
    memset(out, 'X', sizeof(out));
    rs_hex(bytes, sizeof(bytes), out);
    assert_string_equal(out, "00017fabff");
    char empty[1] = {'X'};
    rs_hex(bytes, 0, empty);
    assert_string_equal(empty, "");
}

static void alloc_helpers(void **state)
{
    char *s = rs_xstrndup("abcdef", 3);
    assert_string_equal(s, "abc");
    free(s);
    s = rs_xstrdup("");
    assert_string_equal(s, "");
    free(s);
    s = rs_xasprintf("%s-%d", "id", 42);
    assert_string_equal(s, "id-42");
    free(s);
    int *z = rs_xcalloc(4, sizeof(int));
    assert_int_equal(z[0] | z[1] | z[2] | z[3], 0);
    z = rs_xrealloc(z, 8 * sizeof(int));
    z[7] = 7;
    assert_int_equal(z[7], 7);
    free(z);
    _cleanup_free_ char *c = rs_xstrdup("cleanup");
    assert_string_equal(c, "cleanup");
    char *taken = RS_TAKE_PTR(c);
    assert_null(c);
    assert_string_equal(taken, "cleanup");
    free(taken);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(time_format),
        cmocka_unit_test(time_round_trip),
        cmocka_unit_test(time_parse_variants),
        cmocka_unit_test(time_parse_malformed),
        cmocka_unit_test(utf8_sanitize),
        cmocka_unit_test(strlcpy_copies_and_truncates),
        cmocka_unit_test(hex),
        cmocka_unit_test(alloc_helpers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
