/* test_http_codec.c: unit tests for request-body decoding (src/http/codec.h):
 * JSON object parsing and strict decoding of user and API key bodies. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>

#include "src/http/codec.h"

static json_t *parse(const char *body, struct rs_error *e)
{
    rs_error_init(e);
    return rs_json_parse_object(body, strlen(body), e);
}

static void expect_body_error(const char *body, const char *rule)
{
    struct rs_error e;
    json_t *o = parse(body, &e);
    if (o) {
        json_decref(o);
        fail_msg("body '%s' accepted", body);
    }
    if (e.code != RS_EBADREQUEST || e.nfields != 1 || strcmp(e.fields[0].field, "body") != 0 ||
        strcmp(e.fields[0].rule, rule) != 0)
        fail_msg("body '%s': code %d %s/%s, want body/%s", body, e.code, e.fields[0].field,
                 e.fields[0].rule, rule);
}

/* Decodes body (which must parse) as a user; returns rs_user_decode's result. */
static int decode_user(const char *body, struct rs_user *u, unsigned *mask, struct rs_error *e)
{
    json_t *o = parse(body, e);
    assert_non_null(o);
    int r = rs_user_decode(o, u, mask, e);
    json_decref(o);
    return r;
}

static void expect_user_field_error(const char *body, int code, const char *field, const char *rule)
{
    struct rs_user u;
    unsigned mask = 0;
    struct rs_error e;
    int r = decode_user(body, &u, &mask, &e);
    if (r == 0) {
        rs_user_release(&u);
        fail_msg("user body '%s' accepted", body);
    }
    if (r != -code || e.code != code || e.nfields != 1 || strcmp(e.fields[0].field, field) != 0 ||
        strcmp(e.fields[0].rule, rule) != 0)
        fail_msg("user body '%s': r=%d %s/%s, want %s/%s", body, r, e.fields[0].field,
                 e.fields[0].rule, field, rule);
}

/* ---- rs_json_parse_object ------------------------------------------------- */

static void parse_object_accepts_objects(void **state)
{
    struct rs_error e;
    json_t *o = parse("{\"a\": 1, \"b\": \"x\"}", &e);
    assert_non_null(o);
    assert_true(json_is_object(o));
    assert_int_equal(json_integer_value(json_object_get(o, "a")), 1);
    assert_int_equal(e.nfields, 0);
    json_decref(o);
    o = parse("{}", &e);
    assert_non_null(o);
    assert_int_equal(json_object_size(o), 0);
    json_decref(o);
}

static void parse_object_uses_len(void **state)
{
    struct rs_error e;
    const char body[] = "{\"a\":1}trailing garbage";
    rs_error_init(&e);
    json_t *o = rs_json_parse_object(body, 7, &e);
    assert_non_null(o);
    json_decref(o);
    rs_error_init(&e);
    assert_null(rs_json_parse_object(body, sizeof(body) - 1, &e));
    assert_string_equal(e.fields[0].rule, "syntax");
}

static void parse_object_refuses_malformed(void **state)
{
    static const char *const bad[] = {
        "",
        "{",
        "}",
        "{\"a\":}",
        "{\"a\" 1}",
        "{'a':1}",
        "{\"a\":1,}",
        "{a:1}",
        "{} {}",
        "{\"a\":\"\xff\"}",      /* invalid UTF-8 */
        "{\"a\":\"x\\u0000y\"}", /* NUL in a string */
        "{\"a\":1,\"a\":2}",     /* duplicate key */
        "{\"username\":\"a\",\"username\":\"b\"}",
    };
    for (size_t i = 0; i < RS_ARRAY_LEN(bad); i++)
        expect_body_error(bad[i], "syntax");

    struct rs_error e;
    assert_null(parse("{\"a\":", &e));
    assert_non_null(strstr(e.message, "not valid JSON"));
    assert_string_equal(e.message, e.fields[0].message);
}

static void parse_object_refuses_non_objects(void **state)
{
    /* Valid JSON of the wrong type is "type", not "syntax", scalars included. */
    static const char *const bad[] = {"[]", "[1,2]", "[{\"a\":1}]", " [ ] ", "\"str\"",
                                      "42", "-1.5",  "true",        "false", "null"};
    for (size_t i = 0; i < RS_ARRAY_LEN(bad); i++)
        expect_body_error(bad[i], "type");
}

/* ---- rs_user_decode ------------------------------------------------------- */

static void user_decode_full(void **state)
{
    struct rs_user u;
    unsigned mask = 0;
    struct rs_error e;
    assert_int_equal(decode_user("{\"username\":\"Åsa\",\"email\":\"a@example.com\","
                                 "\"first_name\":\"Åsa\",\"last_name\":\"Öberg\","
                                 "\"type\":\"admin\"}",
                                 &u, &mask, &e),
                     0);
    assert_int_equal(mask, RS_UF_USERNAME | RS_UF_EMAIL | RS_UF_FIRST_NAME | RS_UF_LAST_NAME |
                               RS_UF_TYPE);
    assert_string_equal(u.username, "Åsa");
    assert_string_equal(u.email, "a@example.com");
    assert_string_equal(u.first_name, "Åsa");
    assert_string_equal(u.last_name, "Öberg");
    assert_int_equal(u.type, RS_USER_ADMIN);
    assert_int_equal(e.nfields, 0);
    rs_user_release(&u);
}

static void user_decode_partial_and_empty(void **state)
{
    struct rs_user u;
    unsigned mask = 99;
    struct rs_error e;
    assert_int_equal(decode_user("{\"email\":\"x@example.com\"}", &u, &mask, &e), 0);
    assert_int_equal(mask, RS_UF_EMAIL);
    assert_string_equal(u.email, "x@example.com");
    assert_null(u.username);
    rs_user_release(&u);

    mask = 99;
    assert_int_equal(decode_user("{}", &u, &mask, &e), 0);
    assert_int_equal(mask, 0);
    assert_null(u.username);
    assert_null(u.email);
}

static void user_decode_null_is_present(void **state)
{
    struct rs_user u;
    unsigned mask = 0;
    struct rs_error e;
    assert_int_equal(decode_user("{\"first_name\":null,\"username\":null}", &u, &mask, &e), 0);
    assert_int_equal(mask, RS_UF_FIRST_NAME | RS_UF_USERNAME);
    assert_null(u.first_name);
    assert_null(u.username);
    /* Core then reports the null as a "required" fault. */
    rs_error_init(&e);
    assert_int_equal(rs_user_validate(&u, mask, 0, &e), -RS_EVALIDATION);
    assert_int_equal(e.nfields, 2);
    assert_string_equal(e.fields[0].rule, "required");
    assert_string_equal(e.fields[1].rule, "required");
    rs_user_release(&u);
}

static void user_decode_unknown_field(void **state)
{
    expect_user_field_error("{\"nickname\":\"x\"}", RS_EBADREQUEST, "nickname", "unknown_field");
    expect_user_field_error("{\"Username\":\"x\"}", RS_EBADREQUEST, "Username", "unknown_field");
    expect_user_field_error("{\"password\":\"x\"}", RS_EBADREQUEST, "password", "unknown_field");
    expect_user_field_error("{\"\":1}", RS_EBADREQUEST, "", "unknown_field");

    struct rs_user u;
    unsigned mask = 0;
    struct rs_error e;
    assert_int_equal(decode_user("{\"nickname\":1}", &u, &mask, &e), -RS_EBADREQUEST);
    assert_non_null(strstr(e.fields[0].message, "\"nickname\""));
}

static void user_decode_read_only_fields(void **state)
{
    static const char *const fields[] = {"id", "created_at", "updated_at", "version", "status"};
    for (size_t i = 0; i < RS_ARRAY_LEN(fields); i++) {
        char body[64];
        snprintf(body, sizeof(body), "{\"%s\":\"x\"}", fields[i]);
        expect_user_field_error(body, RS_EBADREQUEST, fields[i], "read_only");
    }
    expect_user_field_error("{\"id\":5}", RS_EBADREQUEST, "id", "read_only");
    expect_user_field_error("{\"status\":\"active\"}", RS_EBADREQUEST, "status", "read_only");
}

static void user_decode_wrong_types(void **state)
{
    static const struct {
        const char *body;
        const char *field;
        const char *type_word;
    } cases[] = {
        {"{\"username\":5}", "username", "a number"},
        {"{\"username\":1.5}", "username", "a number"},
        {"{\"email\":true}", "email", "a boolean"},
        {"{\"first_name\":[\"a\"]}", "first_name", "an array"},
        {"{\"last_name\":{\"a\":1}}", "last_name", "an object"},
        {"{\"type\":1}", "type", "a number"},
        {"{\"type\":null}", "type", "null"},
    };
    for (size_t i = 0; i < RS_ARRAY_LEN(cases); i++) {
        expect_user_field_error(cases[i].body, RS_EBADREQUEST, cases[i].field, "type");
        struct rs_user u;
        unsigned mask = 0;
        struct rs_error e;
        assert_int_equal(decode_user(cases[i].body, &u, &mask, &e), -RS_EBADREQUEST);
        if (!strstr(e.fields[0].message, cases[i].type_word))
            fail_msg("'%s': message \"%s\" does not say \"%s\"", cases[i].body, e.fields[0].message,
                     cases[i].type_word);
    }
}

static void user_decode_type_enum(void **state)
{
    expect_user_field_error("{\"type\":\"superuser\"}", RS_EVALIDATION, "type", "enum");
    expect_user_field_error("{\"type\":\"Admin\"}", RS_EVALIDATION, "type", "enum");
    static const char *const types[] = {"standard", "admin", "api", "guest"};
    for (int t = 0; t < RS_USER_TYPE_COUNT; t++) {
        char body[64];
        struct rs_user u;
        unsigned mask = 0;
        struct rs_error e;
        snprintf(body, sizeof(body), "{\"type\":\"%s\"}", types[t]);
        assert_int_equal(decode_user(body, &u, &mask, &e), 0);
        assert_int_equal(u.type, t);
        assert_int_equal(mask, RS_UF_TYPE);
        rs_user_release(&u);
    }
}

static void user_decode_reports_every_fault_and_leaves_output(void **state)
{
    struct rs_user u;
    rs_user_init(&u);
    u.username = (char *)"sentinel";
    unsigned mask = 0x5a;
    struct rs_error e;
    assert_int_equal(
        decode_user("{\"username\":\"ok\",\"nickname\":1,\"id\":2,\"email\":5}", &u, &mask, &e),
        -RS_EBADREQUEST);
    assert_int_equal(e.nfields, 3);
    assert_string_equal(e.fields[0].field, "nickname");
    assert_string_equal(e.fields[0].rule, "unknown_field");
    assert_string_equal(e.fields[1].field, "id");
    assert_string_equal(e.fields[1].rule, "read_only");
    assert_string_equal(e.fields[2].field, "email");
    assert_string_equal(e.fields[2].rule, "type");
    /* Output parameters are written only on success (and "ok" did not leak: ASan). */
    assert_string_equal(u.username, "sentinel");
    assert_int_equal(mask, 0x5a);
}

/* A malformed field (400) outranks a rule failure (422) whatever the key order.
 * (That the return value agrees with err->code: see test_known_bugs.c.) */
static void user_decode_status_independent_of_key_order(void **state)
{
    static const char *const bodies[] = {"{\"type\":\"x\",\"nickname\":1}",
                                         "{\"nickname\":1,\"type\":\"x\"}"};
    for (size_t i = 0; i < RS_ARRAY_LEN(bodies); i++) {
        struct rs_user u;
        unsigned mask;
        struct rs_error e;
        assert_true(decode_user(bodies[i], &u, &mask, &e) < 0);
        assert_int_equal(e.code, RS_EBADREQUEST);
        assert_int_equal(e.nfields, 2);
    }
}

/* Error text quotes the unknown key cut to size; it must stay valid UTF-8. */
static void user_decode_long_unknown_key_stays_utf8(void **state)
{
    for (int n = 60; n <= 66; n++) {
        char key[80];
        char body[128];
        memset(key, 'a', (size_t)n);
        memcpy(key + n, "é", 3);
        snprintf(body, sizeof(body), "{\"%s\":1}", key);
        struct rs_user u;
        unsigned mask;
        struct rs_error e;
        assert_int_equal(decode_user(body, &u, &mask, &e), -RS_EBADREQUEST);
        assert_string_equal(e.fields[0].rule, "unknown_field");
        if (rs_utf8_length(e.fields[0].field, strlen(e.fields[0].field)) < 0 ||
            rs_utf8_length(e.fields[0].message, strlen(e.fields[0].message)) < 0 ||
            rs_utf8_length(e.message, strlen(e.message)) < 0)
            fail_msg("key of %d a's and an e-acute: error text is not UTF-8", n);
        assert_memory_equal(e.fields[0].field, key, strlen(e.fields[0].field));
    }
}

static void user_decode_keeps_non_ascii_and_long_strings(void **state)
{
    char body[2100];
    char big[2001];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    snprintf(body, sizeof(body), "{\"first_name\":\"%s\",\"last_name\":\"\\u00c5sa\"}", big);
    struct rs_user u;
    unsigned mask = 0;
    struct rs_error e;
    assert_int_equal(decode_user(body, &u, &mask, &e), 0);
    assert_int_equal(strlen(u.first_name), 2000); /* length rules are core's, not the codec's */
    assert_string_equal(u.last_name, "Åsa");
    rs_user_release(&u);
}

/* ---- rs_apikey_request_decode -------------------------------------------- */

static int decode_key(const char *body, struct rs_apikey_request *req, struct rs_error *e)
{
    json_t *o = parse(body, e);
    assert_non_null(o);
    int r = rs_apikey_request_decode(o, req, e);
    json_decref(o);
    return r;
}

static void expect_key_field_error(const char *body, int code, const char *field, const char *rule)
{
    struct rs_apikey_request req = {0};
    struct rs_error e;
    int r = decode_key(body, &req, &e);
    if (r == 0) {
        rs_apikey_request_release(&req);
        fail_msg("key body '%s' accepted", body);
    }
    if (r != -code || e.nfields != 1 || strcmp(e.fields[0].field, field) != 0 ||
        strcmp(e.fields[0].rule, rule) != 0)
        fail_msg("key body '%s': r=%d %s/%s, want %s/%s", body, r, e.fields[0].field,
                 e.fields[0].rule, field, rule);
}

static void apikey_decode_full(void **state)
{
    struct rs_apikey_request req;
    struct rs_error e;
    assert_int_equal(decode_key("{\"name\":\"ci\",\"username\":\"bob\","
                                "\"expires_at\":\"2027-01-31T00:00:00Z\"}",
                                &req, &e),
                     0);
    assert_string_equal(req.name, "ci");
    assert_string_equal(req.username, "bob");
    assert_true(req.has_expires_at);
    assert_int_equal(req.expires_at, 1801353600000);
    char s[RS_TIME_STR_MAX];
    rs_time_format(req.expires_at, s);
    assert_string_equal(s, "2027-01-31T00:00:00.000Z");
    rs_apikey_request_release(&req);
    assert_null(req.name);
}

static void apikey_decode_expires(void **state)
{
    struct rs_apikey_request req;
    struct rs_error e;
    assert_int_equal(
        decode_key("{\"name\":\"x\",\"expires_at\":\"2027-01-31T02:00:00.250+02:00\"}", &req, &e),
        0);
    assert_true(req.has_expires_at);
    assert_int_equal(req.expires_at, 1801353600250);
    rs_apikey_request_release(&req);

    /* null and absent: never expires. */
    assert_int_equal(decode_key("{\"name\":\"x\",\"expires_at\":null}", &req, &e), 0);
    assert_false(req.has_expires_at);
    assert_int_equal(req.expires_at, 0);
    rs_apikey_request_release(&req);
    assert_int_equal(decode_key("{\"name\":\"x\"}", &req, &e), 0);
    assert_false(req.has_expires_at);
    assert_null(req.username);
    rs_apikey_request_release(&req);

    /* The epoch is a time (in the past), not "never": the service must see it. */
    assert_int_equal(
        decode_key("{\"name\":\"x\",\"expires_at\":\"1970-01-01T00:00:00Z\"}", &req, &e), 0);
    assert_true(req.has_expires_at);
    assert_int_equal(req.expires_at, 0);
    rs_apikey_request_release(&req);

    expect_key_field_error("{\"expires_at\":\"tomorrow\"}", RS_EVALIDATION, "expires_at", "format");
    expect_key_field_error("{\"expires_at\":\"2027-01-31\"}", RS_EVALIDATION, "expires_at",
                           "format");
    expect_key_field_error("{\"expires_at\":\"2027-02-31T00:00:00Z\"}", RS_EVALIDATION,
                           "expires_at", "format");
    expect_key_field_error("{\"expires_at\":1801353600000}", RS_EBADREQUEST, "expires_at", "type");
    expect_key_field_error("{\"expires_at\":false}", RS_EBADREQUEST, "expires_at", "type");
}

static void apikey_decode_refuses(void **state)
{
    static const char *const read_only[] = {"id",         "key_id",     "token",
                                            "created_at", "revoked_at", "last_used_at"};
    for (size_t i = 0; i < RS_ARRAY_LEN(read_only); i++) {
        char body[64];
        snprintf(body, sizeof(body), "{\"%s\":\"x\"}", read_only[i]);
        expect_key_field_error(body, RS_EBADREQUEST, read_only[i], "read_only");
    }
    expect_key_field_error("{\"secret\":\"x\"}", RS_EBADREQUEST, "secret", "unknown_field");
    expect_key_field_error("{\"user_id\":3}", RS_EBADREQUEST, "user_id", "unknown_field");
    expect_key_field_error("{\"name\":5}", RS_EBADREQUEST, "name", "type");
    expect_key_field_error("{\"username\":[]}", RS_EBADREQUEST, "username", "type");

    struct rs_apikey_request req;
    struct rs_error e;
    req.name = (char *)"sentinel";
    assert_int_equal(decode_key("{\"name\":\"ok\",\"token\":\"t\"}", &req, &e), -RS_EBADREQUEST);
    assert_string_equal(req.name, "sentinel");
}

/* The decoders return -(err's code), so 400 outranks 422 in the return value
 * too, whatever the field order. */
static int decode_any(const char *body, bool user, struct rs_error *e)
{
    rs_error_init(e);
    json_t *o = rs_json_parse_object(body, strlen(body), e);
    assert_non_null(o);
    int r;
    if (user) {
        struct rs_user u;
        unsigned mask;
        r = rs_user_decode(o, &u, &mask, e);
        if (r == 0)
            rs_user_release(&u);
    } else {
        struct rs_apikey_request req;
        r = rs_apikey_request_decode(o, &req, e);
        if (r == 0)
            rs_apikey_request_release(&req);
    }
    json_decref(o);
    return r;
}

static void decode_returns_the_error_code(void **state)
{
    struct rs_error e;
    int r = decode_any("{\"type\":\"x\",\"nickname\":1}", true, &e);
    assert_int_equal(e.code, RS_EBADREQUEST);
    assert_int_equal(r, -e.code);

    r = decode_any("{\"expires_at\":\"soon\",\"token\":\"t\"}", false, &e);
    assert_int_equal(e.code, RS_EBADREQUEST);
    assert_int_equal(r, -e.code);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parse_object_accepts_objects),
        cmocka_unit_test(parse_object_uses_len),
        cmocka_unit_test(parse_object_refuses_malformed),
        cmocka_unit_test(parse_object_refuses_non_objects),
        cmocka_unit_test(user_decode_full),
        cmocka_unit_test(user_decode_partial_and_empty),
        cmocka_unit_test(user_decode_null_is_present),
        cmocka_unit_test(user_decode_unknown_field),
        cmocka_unit_test(user_decode_read_only_fields),
        cmocka_unit_test(user_decode_wrong_types),
        cmocka_unit_test(user_decode_type_enum),
        cmocka_unit_test(user_decode_reports_every_fault_and_leaves_output),
        cmocka_unit_test(user_decode_status_independent_of_key_order),
        cmocka_unit_test(user_decode_long_unknown_key_stays_utf8),
        cmocka_unit_test(user_decode_keeps_non_ascii_and_long_strings),
        cmocka_unit_test(apikey_decode_full),
        cmocka_unit_test(apikey_decode_expires),
        cmocka_unit_test(apikey_decode_refuses),
        cmocka_unit_test(decode_returns_the_error_code),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
