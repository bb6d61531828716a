/* test_core_settings.c: the users settings document and custom field
 * definitions and values (src/core/settings.h, src/core/custom_field.h), and
 * the rules the settings feed into (rs_user_check). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>

#include "src/core/custom_field.h"
#include "src/core/settings.h"

static json_t *J(const char *text)
{
    json_t *v = json_loads(text, JSON_DECODE_ANY, NULL);
    assert_non_null(v);
    return v;
}

static int patch(const char *text, struct rs_user_settings *out, struct rs_error *e)
{
    struct rs_user_settings base;
    rs_user_settings_defaults(&base);
    rs_error_init(e);
    json_t *p = J(text);
    int r = rs_user_settings_patch(&base, p, out, e);
    json_decref(p);
    rs_user_settings_release(&base);
    return r;
}

static void settings_patch_applies_and_names_paths(void **state)
{
    struct rs_user_settings s;
    struct rs_error e;
    assert_int_equal(patch("{\"licence\":{\"max_active_users\":250},\"validation\":"
                           "{\"require_department\":true,\"email_allowed_domains\":"
                           "[\"example.com\"]},\"defaults\":{\"status\":\"pending\"}}",
                           &s, &e),
                     0);
    assert_int_equal(s.max_active_users, 250);
    assert_true(s.rules.require_department);
    assert_int_equal(s.rules.ndomains, 1);
    assert_int_equal(s.defaults.status, RS_STATUS_PENDING);
    assert_int_equal(rs_user_rules_required(&s.rules), RS_UF_DEPARTMENT);
    rs_user_settings_release(&s);

    struct {
        const char *patch;
        int code;
        const char *field;
        const char *rule;
    } bad[] = {
        {"{\"nope\":{}}", RS_EBADREQUEST, "nope", "unknown_field"},
        {"{\"validation\":{\"nope\":1}}", RS_EBADREQUEST, "validation.nope", "unknown_field"},
        {"{\"validation\":{\"username_min_length\":\"3\"}}", RS_EBADREQUEST,
         "validation.username_min_length", "type"},
        {"{\"validation\":{\"username_min_length\":0}}", RS_EVALIDATION,
         "validation.username_min_length", "range"},
        {"{\"validation\":{\"username_min_length\":10,\"username_max_length\":5}}",
         RS_EVALIDATION, "validation.username_min_length", "range"},
        {"{\"validation\":{\"username_pattern\":\"([a-z\"}}", RS_EVALIDATION,
         "validation.username_pattern", "pattern"},
        {"{\"validation\":{\"email_allowed_domains\":[\"@x\"]}}", RS_EVALIDATION,
         "validation.email_allowed_domains", "format"},
        {"{\"defaults\":{\"status\":\"locked\"}}", RS_EVALIDATION, "defaults.status", "enum"},
        {"{\"licence\":{\"max_active_users\":0}}", RS_EVALIDATION, "licence.max_active_users",
         "range"},
        {"{\"version\":3}", RS_EBADREQUEST, "version", "read_only"},
    };
    for (size_t i = 0; i < RS_ARRAY_LEN(bad); i++) {
        if (patch(bad[i].patch, &s, &e) == 0)
            fail_msg("accepted %s", bad[i].patch);
        assert_int_equal(e.code, bad[i].code);
        assert_string_equal(e.fields[0].field, bad[i].field);
        assert_string_equal(e.fields[0].rule, bad[i].rule);
    }
}

static void settings_round_trip(void **state)
{
    struct rs_user_settings s, back;
    struct rs_error e;
    assert_int_equal(patch("{\"options\":{\"allow_username_change\":false},\"licence\":"
                           "{\"max_active_users\":9}}",
                           &s, &e),
                     0);
    json_t *doc = rs_user_settings_to_json(&s);
    assert_int_equal(rs_user_settings_from_json(doc, &back, &e), 0);
    assert_false(back.options.allow_username_change);
    assert_int_equal(back.max_active_users, 9);
    /* A stored document from a newer version with unknown keys still reads. */
    json_object_set_new(json_object_get(doc, "options"), "future_toggle", json_true());
    rs_user_settings_release(&back);
    assert_int_equal(rs_user_settings_from_json(doc, &back, &e), 0);
    json_decref(doc);
    rs_user_settings_release(&back);
    rs_user_settings_release(&s);
}

/* The service caches parsed settings and hands out copies: a copy encodes
 * as its source does and owns its memory (released apart, under ASan). */
static void settings_copy_is_deep(void **state)
{
    struct rs_user_settings s, c;
    struct rs_error e;
    assert_int_equal(patch("{\"validation\":{\"username_pattern\":\"^[a-z.]+$\","
                           "\"reserved_usernames\":[\"boss\",\"ceo\"],"
                           "\"email_allowed_domains\":[\"example.com\"],"
                           "\"employee_id_pattern\":\"^E[0-9]+$\"},"
                           "\"defaults\":{\"department\":\"Sales\",\"location\":\"Oslo\"}}",
                           &s, &e),
                     0);
    s.version = 7;
    rs_user_settings_copy(&c, &s);
    json_t *a = rs_user_settings_to_json(&s), *b = rs_user_settings_to_json(&c);
    assert_true(json_equal(a, b));
    assert_int_equal(c.version, 7);
    assert_ptr_not_equal(c.rules.reserved_usernames, s.rules.reserved_usernames);
    assert_ptr_not_equal(c.defaults.department, s.defaults.department);
    json_decref(a);
    json_decref(b);
    rs_user_settings_release(&s);
    assert_string_equal(c.rules.reserved_usernames[1], "ceo");
    assert_string_equal(c.defaults.location, "Oslo");
    rs_user_settings_release(&c);
}

static void rules_from_settings(void **state)
{
    struct rs_user_settings s;
    struct rs_error e;
    assert_int_equal(patch("{\"validation\":{\"username_min_length\":5,\"reserved_usernames\":"
                           "[\"Boss\"],\"email_allowed_domains\":[\"Example.com\"],"
                           "\"employee_id_pattern\":\"^EMP[0-9]{3}$\"}}",
                           &s, &e),
                     0);
    struct rs_user u;
    rs_user_init(&u);
    u.username = rs_xstrdup("BOSS");
    u.email = rs_xstrdup("x@other.org");
    u.employee_id = rs_xstrdup("E1");
    rs_error_init(&e);
    assert_int_equal(rs_user_check(&u, RS_UF_USERNAME | RS_UF_EMAIL | RS_UF_EMPLOYEE_ID, 0,
                                   &s.rules, &e),
                     -RS_EVALIDATION);
    assert_int_equal(e.nfields, 3);
    assert_string_equal(e.fields[0].rule, "min_length"); /* 4 < 5 comes first */
    assert_string_equal(e.fields[1].rule, "domain");
    assert_string_equal(e.fields[2].rule, "pattern");
    free(u.username);
    u.username = rs_xstrdup("bosss");
    free(u.email);
    u.email = rs_xstrdup("x@EXAMPLE.COM");
    free(u.employee_id);
    u.employee_id = rs_xstrdup("EMP042");
    rs_error_init(&e);
    assert_int_equal(rs_user_check(&u, RS_UF_USERNAME | RS_UF_EMAIL | RS_UF_EMPLOYEE_ID, 0,
                                   &s.rules, &e),
                     0);
    rs_user_release(&u);
    rs_user_settings_release(&s);
}

static int decode_field(const char *text, struct rs_custom_field *f, struct rs_error *e)
{
    rs_error_init(e);
    json_t *o = J(text);
    int r = rs_custom_field_decode(o, NULL, f, e);
    json_decref(o);
    return r;
}

static void field_definitions(void **state)
{
    struct rs_custom_field f;
    struct rs_error e;
    assert_int_equal(decode_field("{\"key\":\"cost_center\",\"label\":\"Cost\",\"type\":\"text\","
                                  "\"pattern\":\"^CC-[0-9]+$\",\"default\":\"CC-1\"}",
                                  &f, &e),
                     0);
    assert_string_equal(f.key, "cost_center");
    rs_custom_field_release(&f);
    struct {
        const char *def;
        const char *field;
        const char *rule;
    } bad[] = {
        {"{\"key\":\"Bad\",\"label\":\"x\",\"type\":\"text\"}", "key", "format"},
        {"{\"key\":\"a\",\"type\":\"text\"}", "label", "required"},
        {"{\"key\":\"a\",\"label\":\"x\"}", "type", "required"},
        {"{\"key\":\"a\",\"label\":\"x\",\"type\":\"choice\"}", "options", "required"},
        {"{\"key\":\"a\",\"label\":\"x\",\"type\":\"choice\",\"options\":[\"p\",\"p\"]}",
         "options", "unique"},
        {"{\"key\":\"a\",\"label\":\"x\",\"type\":\"number\",\"min\":5,\"max\":1}", "max", "range"},
        {"{\"key\":\"a\",\"label\":\"x\",\"type\":\"number\",\"pattern\":\"x\"}", "pattern",
         "not_allowed"},
        {"{\"key\":\"a\",\"label\":\"x\",\"type\":\"date\",\"default\":\"2026-02-30\"}", "default",
         "format"},
        {"{\"key\":\"a\",\"label\":\"x\",\"type\":\"text\",\"colour\":1}", "colour",
         "unknown_field"},
    };
    for (size_t i = 0; i < RS_ARRAY_LEN(bad); i++) {
        if (decode_field(bad[i].def, &f, &e) == 0)
            fail_msg("accepted %s", bad[i].def);
        assert_string_equal(e.fields[0].field, bad[i].field);
        assert_string_equal(e.fields[0].rule, bad[i].rule);
    }
    /* key and type cannot change once defined. */
    assert_int_equal(decode_field("{\"key\":\"a\",\"label\":\"x\",\"type\":\"text\"}", &f, &e), 0);
    struct rs_custom_field g;
    json_t *p = J("{\"type\":\"number\"}");
    rs_error_init(&e);
    assert_int_equal(rs_custom_field_decode(p, &f, &g, &e), -RS_EVALIDATION);
    assert_string_equal(e.fields[0].rule, "immutable");
    json_decref(p);
    p = J("{\"label\":\"Renamed\",\"active\":false}");
    rs_error_init(&e);
    assert_int_equal(rs_custom_field_decode(p, &f, &g, &e), 0);
    assert_string_equal(g.label, "Renamed");
    assert_false(g.active);
    json_decref(p);
    rs_custom_field_release(&g);
    rs_custom_field_release(&f);
}

static void field_values(void **state)
{
    struct rs_custom_field defs[3];
    struct rs_error e;
    assert_int_equal(decode_field("{\"key\":\"seats\",\"label\":\"S\",\"type\":\"number\","
                                  "\"min\":0,\"max\":10,\"required\":true,\"default\":1}",
                                  &defs[0], &e),
                     0);
    assert_int_equal(decode_field("{\"key\":\"level\",\"label\":\"L\",\"type\":\"choice\","
                                  "\"options\":[\"a\",\"b\"],\"required\":true}",
                                  &defs[1], &e),
                     0);
    assert_int_equal(decode_field("{\"key\":\"start\",\"label\":\"D\",\"type\":\"date\"}",
                                  &defs[2], &e),
                     0);
    json_t *out = NULL;
    json_t *given = J("{\"level\":\"b\",\"start\":\"2024-02-29\"}");
    rs_error_init(&e);
    assert_int_equal(rs_custom_values_check(defs, 3, given, NULL, true, &out, &e), 0);
    /* The required number took its default. */
    assert_true(json_number_value(json_object_get(out, "seats")) == 1);
    json_decref(out);
    json_decref(given);

    given = J("{\"seats\":11,\"start\":\"2023-02-29\",\"nope\":1}");
    rs_error_init(&e);
    assert_int_equal(rs_custom_values_check(defs, 3, given, NULL, true, &out, &e),
                     -RS_EVALIDATION);
    assert_int_equal(e.nfields, 4);
    bool saw_max = false, saw_format = false, saw_unknown = false, saw_required = false;
    for (int i = 0; i < e.nfields; i++) {
        saw_max |= strcmp(e.fields[i].field, "custom_fields.seats") == 0 &&
                   strcmp(e.fields[i].rule, "max") == 0;
        saw_format |= strcmp(e.fields[i].field, "custom_fields.start") == 0 &&
                      strcmp(e.fields[i].rule, "format") == 0;
        saw_unknown |= strcmp(e.fields[i].field, "custom_fields.nope") == 0 &&
                       strcmp(e.fields[i].rule, "unknown") == 0;
        saw_required |= strcmp(e.fields[i].field, "custom_fields.level") == 0 &&
                        strcmp(e.fields[i].rule, "required") == 0;
    }
    assert_true(saw_max && saw_format && saw_unknown && saw_required);
    json_decref(given);

    /* On a change, a required field may not be cleared. */
    given = J("{\"level\":null}");
    rs_error_init(&e);
    assert_int_equal(rs_custom_values_check(defs, 3, given, NULL, false, &out, &e),
                     -RS_EVALIDATION);
    assert_string_equal(e.fields[0].rule, "required");
    json_decref(given);

    json_t *num = J("12.5");
    char *t = rs_custom_value_text(num);
    assert_string_equal(t, "12.5");
    free(t);
    json_decref(num);
    for (int i = 0; i < 3; i++)
        rs_custom_field_release(&defs[i]);
}

static void patterns_are_screened(void **state)
{
    assert_true(rs_pattern_ok("^EMP[0-9]{3}$"));
    assert_true(rs_pattern_ok("^\\+?[0-9][0-9 ().-]{5,24}$"));
    assert_true(rs_pattern_ok("^a\\+\\+$")); /* escaped: literal plus signs */
    /* Stacked quantifiers make glibc's regcomp allocate gigabytes. */
    assert_false(rs_pattern_ok("^1C0++++++++++++++++++++++++++++-[C--"));
    assert_false(rs_pattern_ok("a{2}+"));
    assert_false(rs_pattern_ok("([a-z"));
    /* Brackets are read as brackets: a '{' inside one opens no interval, so
     * the stars after it are still stacked (found by fuzz_settings: regcomp
     * ran for minutes). */
    assert_false(rs_pattern_ok("^[ve{a-]**********+d"));
    assert_true(rs_pattern_ok("^[]{}a-]+$"));
    assert_true(rs_pattern_ok("^[[:alpha:]_]{1,32}$"));
    assert_false(rs_pattern_ok("^[[:alpha:]"));
    /* Intervals must be well formed and at most 64. */
    assert_false(rs_pattern_ok("a{"));
    assert_false(rs_pattern_ok("a{3,2}"));
    assert_false(rs_pattern_ok("a{65}"));
    assert_true(rs_pattern_ok("a{64}"));
    /* No empty groups or alternatives: "^(){255}(|a){255}(){0,}" took
     * regcomp and regexec 0.6 s. */
    assert_false(rs_pattern_ok("a()b"));
    assert_false(rs_pattern_ok("(|a)"));
    assert_false(rs_pattern_ok("(a|)"));
    assert_false(rs_pattern_ok("a||b"));
    assert_false(rs_pattern_ok("|a"));
    assert_false(rs_pattern_ok("a|"));
    assert_true(rs_pattern_ok("^(ab|cd)$"));
    assert_true(rs_pattern_ok("a{2,}b"));
    /* Back-references can make matching exponential. */
    assert_false(rs_pattern_ok("^(a+)\\1$"));
    assert_true(rs_pattern_ok("^a\\.b$"));
    /* Repetition is expanded by regcomp: nested intervals multiply, each
     * nested '+' doubles. */
    assert_true(rs_pattern_ok("^([a-z]{1,20}\\.){1,10}$")); /* 221 parts */
    assert_false(rs_pattern_ok("^([a-z]{1,20}\\.){1,20}$"));
    assert_false(rs_pattern_ok("((a{40}){40}){40}"));
    assert_false(rs_pattern_ok("(.{1,64}){5}"));
    assert_true(rs_pattern_ok("(.{1,64}){4}"));
    /* "(((a+)+)+)..." nested k deep: "(" k times, "a", "+)" k times. */
    char nest[64];
    for (int k = 7; k <= 8; k++) {
        size_t n = 0;
        for (int i = 0; i < k; i++)
            nest[n++] = '(';
        nest[n++] = 'a';
        for (int i = 0; i < k; i++) {
            nest[n++] = '+';
            nest[n++] = ')';
        }
        nest[n] = '\0';
        if (k == 7)
            assert_true(rs_pattern_ok(nest)); /* 255 parts */
    }
    assert_false(rs_pattern_ok(nest)); /* 511 */
    char longp[RS_PATTERN_MAX + 2];
    memset(longp, 'a', sizeof(longp) - 1);
    longp[sizeof(longp) - 1] = '\0';
    assert_false(rs_pattern_ok(longp));
    /* Settings and field definitions refuse them by name. */
    struct rs_user_settings s;
    struct rs_error e;
    assert_int_equal(patch("{\"validation\":{\"phone_pattern\":\"a+++\"}}", &s, &e),
                     -RS_EVALIDATION);
    assert_string_equal(e.fields[0].rule, "pattern");
}

/* A stored pattern a stricter screen now refuses keeps the settings
 * readable; values checked against it fail by name until it is replaced. */
static void stored_pattern_refused_later(void **state)
{
    json_t *doc = J("{\"validation\":{\"username_pattern\":\"^(a)\\\\1$\"}}");
    struct rs_user_settings s;
    struct rs_error e;
    rs_error_init(&e);
    assert_int_equal(rs_user_settings_from_json(doc, &s, &e), 0);
    assert_string_equal(s.rules.username_pattern, "^(a)\\1$");
    struct rs_user u;
    rs_user_init(&u);
    u.username = rs_xstrdup("aa");
    rs_error_init(&e);
    assert_int_equal(rs_user_check(&u, RS_UF_USERNAME, 0, &s.rules, &e), -RS_EVALIDATION);
    assert_string_equal(e.fields[0].field, "username");
    assert_string_equal(e.fields[0].rule, "pattern");
    rs_user_release(&u);
    rs_user_settings_release(&s);
    /* As a change it is refused. */
    assert_int_equal(patch("{\"validation\":{\"username_pattern\":\"^(a)\\\\1$\"}}", &s, &e),
                     -RS_EVALIDATION);
    json_decref(doc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(settings_patch_applies_and_names_paths),
        cmocka_unit_test(settings_round_trip),
        cmocka_unit_test(settings_copy_is_deep),
        cmocka_unit_test(rules_from_settings),
        cmocka_unit_test(field_definitions),
        cmocka_unit_test(field_values),
        cmocka_unit_test(patterns_are_screened),
        cmocka_unit_test(stored_pattern_refused_later),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
