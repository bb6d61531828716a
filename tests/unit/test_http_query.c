/* test_http_query.c: unit tests for strict query-string parsing
 * (src/http/query.c, declared in src/http/http.h): percent-decoding, the
 * parameter cap, repeated and unknown parameters refused by name. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>

#include "src/http/http.h"

static const char *const list_params[] = {"q", "status", "type", "sort", "limit", "cursor", NULL};

static void parse_ok(const char *qs, struct rs_query_params *p)
{
    struct rs_error e;
    rs_error_init(&e);
    int r = rs_query_parse(qs, p, &e);
    if (r != 0)
        fail_msg("query \"%s\" refused: %s/%s %s", qs ? qs : "(null)", e.fields[0].field,
                 e.fields[0].rule, e.message);
}

/* The single value of a one-parameter query. */
static void expect_param(const char *qs, const char *key, const char *want)
{
    struct rs_query_params p;
    parse_ok(qs, &p);
    const char *v = rs_query_get(&p, key);
    if (p.n != 1 || !v || strcmp(v, want) != 0)
        fail_msg("query \"%s\": n=%d %s=\"%s\", want \"%s\"", qs, p.n, key, v ? v : "(none)", want);
    rs_query_release(&p);
}

static void expect_refused(const char *qs, const char *field, const char *rule)
{
    struct rs_query_params p;
    p.n = -7;
    struct rs_error e;
    rs_error_init(&e);
    int r = rs_query_parse(qs, &p, &e);
    if (r != -RS_EBADREQUEST || e.code != RS_EBADREQUEST || e.nfields != 1 ||
        strcmp(e.fields[0].field, field) != 0 || strcmp(e.fields[0].rule, rule) != 0)
        fail_msg("query \"%s\": r=%d %s/%s, want %s/%s", qs, r, e.fields[0].field, e.fields[0].rule,
                 field, rule);
    if (p.n != -7)
        fail_msg("query \"%s\": output written on failure", qs);
}

static void parse_pairs(void **state)
{
    struct rs_query_params p;
    parse_ok("q=smith&limit=10&sort=-created_at", &p);
    assert_int_equal(p.n, 3);
    assert_string_equal(rs_query_get(&p, "q"), "smith");
    assert_string_equal(rs_query_get(&p, "limit"), "10");
    assert_string_equal(rs_query_get(&p, "sort"), "-created_at");
    assert_null(rs_query_get(&p, "cursor"));
    assert_null(rs_query_get(&p, "Q")); /* keys are case-sensitive */
    rs_query_release(&p);
    assert_int_equal(p.n, 0);
}

static void parse_empty(void **state)
{
    struct rs_query_params p;
    parse_ok("", &p);
    assert_int_equal(p.n, 0);
    parse_ok(NULL, &p);
    assert_int_equal(p.n, 0);
    parse_ok("&&&", &p);
    assert_int_equal(p.n, 0);
    parse_ok("a=1&&b=2&", &p);
    assert_int_equal(p.n, 2);
    assert_string_equal(rs_query_get(&p, "b"), "2");
    rs_query_release(&p);
}

static void parse_values(void **state)
{
    expect_param("q=J%C3%B6rg", "q", "Jörg");
    expect_param("q=a%2Bb", "q", "a+b");
    expect_param("q=a+b", "q", "a b");
    expect_param("q=a%20b", "q", "a b");
    expect_param("q=%4a%4A", "q", "JJ");
    expect_param("q=%26%3D", "q", "&=");
    expect_param("q=1=2", "q", "1=2");
    expect_param("q=", "q", "");
    expect_param("flag", "flag", "");
    expect_param("%71=x", "q", "x"); /* keys are decoded too */
    expect_param("a+b=1", "a b", "1");
    expect_param("q=%E2%82%AC", "q", "\u20ac");
}

static void parse_bad_escapes(void **state)
{
    static const char *const bad[] = {
        "q=%", "q=%4", "q=%zz",   "q=%g1", "q=%1g",  "q=100%",
        "%=1", "q%=1", "q=a%00b", "%00=1", "q=%%41",
    };
    for (size_t i = 0; i < RS_ARRAY_LEN(bad); i++)
        expect_refused(bad[i], "query", "format");
    /* A bad escape after a good pair frees the good pair (ASan). */
    expect_refused("q=ok&limit=%", "query", "format");
}

static void parse_refuses_repeats(void **state)
{
    expect_refused("sort=id&sort=email", "sort", "unique");
    expect_refused("q=1&limit=2&q=1", "q", "unique");
    expect_refused("q=1&%71=2", "q", "unique"); /* the same key once decoded */
    expect_refused("flag&flag", "flag", "unique");

    struct rs_error e;
    struct rs_query_params p;
    rs_error_init(&e);
    assert_int_equal(rs_query_parse("limit=1&limit=2", &p, &e), -RS_EBADREQUEST);
    assert_non_null(strstr(e.message, "limit"));
}

static void parse_caps_params(void **state)
{
    char qs[1024];
    size_t len = 0;
    for (int i = 0; i < RS_QUERY_MAX_PARAMS; i++)
        len += (size_t)snprintf(qs + len, sizeof(qs) - len, "%sk%d=v", i ? "&" : "", i);
    struct rs_query_params p;
    parse_ok(qs, &p);
    assert_int_equal(p.n, RS_QUERY_MAX_PARAMS);
    assert_string_equal(rs_query_get(&p, "k31"), "v");
    rs_query_release(&p);

    snprintf(qs + len, sizeof(qs) - len, "&k%d=v", RS_QUERY_MAX_PARAMS);
    expect_refused(qs, "query", "max_items");
}

static void check_refuses_unknown(void **state)
{
    struct rs_query_params p;
    struct rs_error e;
    parse_ok("q=1&limit=2&cursor=abc", &p);
    rs_error_init(&e);
    assert_int_equal(rs_query_check(&p, list_params, &e), 0);
    assert_int_equal(e.nfields, 0);
    rs_query_release(&p);

    parse_ok("q=1&page=2", &p);
    assert_int_equal(rs_query_check(&p, list_params, &e), -RS_EBADREQUEST);
    assert_int_equal(e.code, RS_EBADREQUEST);
    assert_int_equal(e.nfields, 1);
    assert_string_equal(e.fields[0].field, "page");
    assert_string_equal(e.fields[0].rule, "unknown_parameter");
    assert_non_null(strstr(e.message, "\"page\""));
    rs_query_release(&p);

    /* Names are compared whole: neither a prefix nor an extension of an allowed one passes. */
    static const char *const near[] = {"qq=1", "sor=id", "sorted=id", "Limit=1", "q%20=1"};
    for (size_t i = 0; i < RS_ARRAY_LEN(near); i++) {
        parse_ok(near[i], &p);
        rs_error_init(&e);
        if (rs_query_check(&p, list_params, &e) != -RS_EBADREQUEST)
            fail_msg("\"%s\" passed the check", near[i]);
        rs_query_release(&p);
    }

    /* A name that is not UTF-8 is named in the error as valid UTF-8 (it ends up in JSON). */
    parse_ok("%FF%C3=1", &p);
    rs_error_init(&e);
    assert_int_equal(rs_query_check(&p, list_params, &e), -RS_EBADREQUEST);
    assert_int_equal(rs_utf8_length(e.fields[0].field, strlen(e.fields[0].field)), 1);
    assert_string_equal(e.fields[0].field, "?");
    assert_true(rs_utf8_length(e.message, strlen(e.message)) >= 0);
    rs_query_release(&p);

    static const char *const none[] = {NULL};
    parse_ok("q=1", &p);
    rs_error_init(&e);
    assert_int_equal(rs_query_check(&p, none, &e), -RS_EBADREQUEST);
    assert_string_equal(e.fields[0].field, "q");
    rs_query_release(&p);

    parse_ok("", &p);
    rs_error_init(&e);
    assert_int_equal(rs_query_check(&p, none, &e), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parse_pairs),           cmocka_unit_test(parse_empty),
        cmocka_unit_test(parse_values),          cmocka_unit_test(parse_bad_escapes),
        cmocka_unit_test(parse_refuses_repeats), cmocka_unit_test(parse_caps_params),
        cmocka_unit_test(check_refuses_unknown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
