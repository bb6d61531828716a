/* test_core_error.c: unit tests for struct rs_error (src/core/error.h): the
 * first message wins, field errors are capped, code names and titles. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>
#include <stdbool.h>

#include "src/core/error.h"
#include "src/core/user.h" /* rs_utf8_length */

static void init_clears(void **state)
{
    struct rs_error e;
    memset(&e, 0x5a, sizeof(e));
    rs_error_init(&e);
    assert_int_equal(e.code, RS_OK);
    assert_string_equal(e.message, "");
    assert_string_equal(e.log_detail, "");
    assert_int_equal(e.nfields, 0);
}

static void set_keeps_first_message_and_code(void **state)
{
    struct rs_error e;
    rs_error_init(&e);
    assert_int_equal(rs_error_set(&e, RS_ENOTFOUND, "no user %d", 7), -RS_ENOTFOUND);
    assert_int_equal(e.code, RS_ENOTFOUND);
    assert_string_equal(e.message, "no user 7");
    /* A later error neither replaces the message nor the code; the return is the kept code. */
    assert_int_equal(rs_error_set(&e, RS_EINTERNAL, "something else"), -RS_ENOTFOUND);
    assert_int_equal(e.code, RS_ENOTFOUND);
    assert_string_equal(e.message, "no user 7");
    assert_int_equal(e.nfields, 0);
}

static void set_on_null_returns_code(void **state)
{
    assert_int_equal(rs_error_set(NULL, RS_ECONFLICT, "x"), -RS_ECONFLICT);
    assert_int_equal(rs_error_field(NULL, RS_EVALIDATION, "f", "r", "x"), -RS_EVALIDATION);
    rs_error_log(NULL, "ignored %d", 1);
    rs_error_init(NULL); /* callers that want no detail pass NULL throughout */
}

static void set_truncates_long_message(void **state)
{
    struct rs_error e;
    char big[sizeof(e.message) + 100]; /* longer than the limit, whatever it is */
    memset(big, 'm', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    rs_error_init(&e);
    assert_int_equal(rs_error_set(&e, RS_EBADREQUEST, "%s", big), -RS_EBADREQUEST);
    assert_int_equal(strlen(e.message), sizeof(e.message) - 1);
    assert_int_equal(e.message[0], 'm');
}

static void field_adds_and_sets_message(void **state)
{
    struct rs_error e;
    rs_error_init(&e);
    assert_int_equal(rs_error_field(&e, RS_EVALIDATION, "email", "format", "email %s", "is bad"),
                     -RS_EVALIDATION);
    assert_int_equal(e.code, RS_EVALIDATION);
    assert_int_equal(e.nfields, 1);
    assert_string_equal(e.fields[0].field, "email");
    assert_string_equal(e.fields[0].rule, "format");
    assert_string_equal(e.fields[0].message, "email is bad");
    assert_string_equal(e.message, "email is bad");

    /* The second field error keeps the first's code and top-level message. */
    assert_int_equal(rs_error_field(&e, RS_ECONFLICT, "username", "unique", "second"),
                     -RS_EVALIDATION);
    assert_int_equal(e.nfields, 2);
    assert_string_equal(e.fields[1].field, "username");
    assert_string_equal(e.fields[1].message, "second");
    assert_string_equal(e.message, "email is bad");
    assert_int_equal(e.code, RS_EVALIDATION);
}

/* The first code wins, except that a malformed request (400) outranks a rule
 * failure (422), so the status does not depend on the order of the fields. */
static void bad_request_outranks_validation(void **state)
{
    struct rs_error e;
    rs_error_init(&e);
    assert_int_equal(rs_error_field(&e, RS_EVALIDATION, "type", "enum", "first"), -RS_EVALIDATION);
    assert_int_equal(rs_error_field(&e, RS_EBADREQUEST, "nickname", "unknown_field", "second"),
                     -RS_EBADREQUEST);
    assert_int_equal(e.code, RS_EBADREQUEST);
    assert_string_equal(e.message, "first"); /* the message is still the first */
    assert_int_equal(rs_error_field(&e, RS_EVALIDATION, "email", "format", "third"),
                     -RS_EBADREQUEST);
    assert_int_equal(e.code, RS_EBADREQUEST);

    rs_error_init(&e);
    assert_int_equal(rs_error_set(&e, RS_EVALIDATION, "rule"), -RS_EVALIDATION);
    assert_int_equal(rs_error_set(&e, RS_EBADREQUEST, "syntax"), -RS_EBADREQUEST);
    assert_string_equal(e.message, "rule");

    /* Only 422 gives way, and only to 400. */
    rs_error_init(&e);
    assert_int_equal(rs_error_set(&e, RS_ENOTFOUND, "x"), -RS_ENOTFOUND);
    assert_int_equal(rs_error_field(&e, RS_EBADREQUEST, "f", "r", "y"), -RS_ENOTFOUND);
    rs_error_init(&e);
    assert_int_equal(rs_error_set(&e, RS_EVALIDATION, "x"), -RS_EVALIDATION);
    assert_int_equal(rs_error_set(&e, RS_ECONFLICT, "y"), -RS_EVALIDATION);
}

static bool is_utf8(const char *s)
{
    return rs_utf8_length(s, strlen(s)) >= 0;
}

/* Field names and messages quote client input cut to size; they must stay
 * valid UTF-8 to survive into a JSON problem body. */
static void field_text_stays_utf8(void **state)
{
    char name[80];
    memset(name, 'a', 62);
    memcpy(name + 62, "é", 3); /* é straddles the 63-byte field limit */
    struct rs_error e;
    rs_error_init(&e);
    assert_int_equal(rs_error_field(&e, RS_EBADREQUEST, name, "unknown_field", "bad \xff%s", "é"),
                     -RS_EBADREQUEST);
    assert_true(is_utf8(e.fields[0].field));
    assert_int_equal(strlen(e.fields[0].field), 62); /* the cut character is dropped */
    assert_string_equal(e.fields[0].message, "bad ?é");
    assert_string_equal(e.message, "bad ?é");

    /* A character straddling the message limit (the buffer less its NUL). */
    const size_t limit = sizeof(e.message) - 1;
    char msg[sizeof(e.message) + 8];
    memset(msg, 'm', limit - 1);
    memcpy(msg + limit - 1, "é", 3);
    rs_error_init(&e);
    assert_int_equal(rs_error_set(&e, RS_ECONFLICT, "%s", msg), -RS_ECONFLICT);
    assert_true(is_utf8(e.message));
    assert_int_equal(strlen(e.message), limit - 1);
}

static void field_after_set_keeps_set_message(void **state)
{
    struct rs_error e;
    rs_error_init(&e);
    assert_int_equal(rs_error_set(&e, RS_ECONFLICT, "username taken"), -RS_ECONFLICT);
    assert_int_equal(rs_error_field(&e, RS_ECONFLICT, "username", "unique", "field msg"),
                     -RS_ECONFLICT);
    assert_string_equal(e.message, "username taken");
    assert_string_equal(e.fields[0].message, "field msg");
}

static void field_caps_at_max(void **state)
{
    struct rs_error e;
    rs_error_init(&e);
    for (int i = 0; i < RS_MAX_FIELD_ERRORS + 5; i++) {
        char name[16];
        snprintf(name, sizeof(name), "f%d", i);
        assert_int_equal(rs_error_field(&e, RS_EVALIDATION, name, "required", "m%d", i),
                         -RS_EVALIDATION);
    }
    assert_int_equal(e.nfields, RS_MAX_FIELD_ERRORS);
    assert_string_equal(e.fields[0].field, "f0");
    assert_string_equal(e.fields[RS_MAX_FIELD_ERRORS - 1].field, "f15");
    assert_string_equal(e.fields[RS_MAX_FIELD_ERRORS - 1].message, "m15");
    assert_string_equal(e.message, "m0");
}

static void field_truncates_long_names(void **state)
{
    struct rs_error e;
    char name[100];
    memset(name, 'n', sizeof(name) - 1);
    name[sizeof(name) - 1] = '\0';
    rs_error_init(&e);
    assert_int_equal(
        rs_error_field(&e, RS_EBADREQUEST, name, "unknown_field_rule_that_is_long", "x"),
        -RS_EBADREQUEST);
    assert_int_equal(strlen(e.fields[0].field), sizeof(e.fields[0].field) - 1);
    assert_string_equal(e.fields[0].rule, "unknown_field_rule_that_is_long");
}

static void log_appends_separately(void **state)
{
    struct rs_error e;
    rs_error_init(&e);
    rs_error_log(&e, "key %s", "abc");
    rs_error_log(&e, "owner %d", 5);
    assert_string_equal(e.log_detail, "key abc; owner 5");
    assert_string_equal(e.message, "");
    assert_int_equal(e.code, RS_OK);
    /* Filling past the end stays terminated and inside the buffer. */
    for (int i = 0; i < 100; i++)
        rs_error_log(&e, "more detail %d", i);
    assert_true(strlen(e.log_detail) < sizeof(e.log_detail));
    assert_memory_equal(e.log_detail, "key abc; owner 5; more detail 0", 31);
}

static void code_names_and_titles(void **state)
{
    static const struct {
        int code;
        const char *name;
        const char *title;
    } want[] = {
        {RS_OK, "ok", "OK"},
        {RS_EBADREQUEST, "bad_request", "Bad Request"},
        {RS_EVALIDATION, "validation", "Validation Failed"},
        {RS_EUNAUTHENTICATED, "unauthenticated", "Unauthorized"},
        {RS_EFORBIDDEN, "forbidden", "Forbidden"},
        {RS_ENOTFOUND, "not_found", "Not Found"},
        {RS_EMETHOD, "method_not_allowed", "Method Not Allowed"},
        {RS_ECONFLICT, "conflict", "Conflict"},
        {RS_EPRECONDITION, "precondition_failed", "Precondition Failed"},
        {RS_ETOOLARGE, "too_large", "Content Too Large"},
        {RS_EMEDIATYPE, "unsupported_media_type", "Unsupported Media Type"},
        {RS_EUNAVAILABLE, "unavailable", "Service Unavailable"},
        {RS_EINTERNAL, "internal", "Internal Server Error"},
        {RS_ETHROTTLED, "throttled", "Too Many Requests"},
        {RS_EUPSTREAM, "upstream", "Bad Gateway"},
    };
    assert_int_equal(RS_ARRAY_LEN(want), RS_CODE_COUNT);
    for (size_t i = 0; i < RS_ARRAY_LEN(want); i++) {
        assert_string_equal(rs_code_name(want[i].code), want[i].name);
        assert_string_equal(rs_code_title(want[i].code), want[i].title);
        /* Negative codes, as functions return them, name the same thing. */
        assert_string_equal(rs_code_name(-want[i].code), want[i].name);
        assert_string_equal(rs_code_title(-want[i].code), want[i].title);
    }
    assert_string_equal(rs_code_name(RS_CODE_COUNT), "internal");
    assert_string_equal(rs_code_name(999), "internal");
    assert_string_equal(rs_code_title(-999), "Internal Server Error");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(init_clears),
        cmocka_unit_test(set_keeps_first_message_and_code),
        cmocka_unit_test(set_on_null_returns_code),
        cmocka_unit_test(set_truncates_long_message),
        cmocka_unit_test(field_adds_and_sets_message),
        cmocka_unit_test(field_after_set_keeps_set_message),
        cmocka_unit_test(bad_request_outranks_validation),
        cmocka_unit_test(field_text_stays_utf8),
        cmocka_unit_test(field_caps_at_max),
        cmocka_unit_test(field_truncates_long_names),
        cmocka_unit_test(log_appends_separately),
        cmocka_unit_test(code_names_and_titles),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
