/* test_core_authsettings.c: the "auth" and "notifications" settings documents
 * (src/core/authsettings.h): defaults, every range edge, strict decoding
 * (400 vs 422 and the dotted path), merge-patch nulls, round trips through
 * the stored form, the write-only SMTP password, older documents. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>

#include "src/core/authsettings.h"

static json_t *J(const char *text)
{
    json_error_t je;
    json_t *v = json_loads(text, JSON_DECODE_ANY, &je);
    if (!v)
        fail_msg("bad JSON in test: %s: %s", je.text, text);
    return v;
}

static void assert_json_equal(json_t *got, const char *want_text)
{
    json_t *want = J(want_text);
    if (!json_equal(got, want)) {
        char *g = json_dumps(got, JSON_SORT_KEYS);
        char *w = json_dumps(want, JSON_SORT_KEYS);
        fail_msg("JSON differs:\n got  %s\n want %s", g, w);
    }
    json_decref(want);
}

/* --- auth --- */

static int apatch(const char *text, struct rs_auth_settings *out, struct rs_error *e)
{
    struct rs_auth_settings base;
    rs_auth_settings_defaults(&base);
    rs_error_init(e);
    json_t *p = J(text);
    int r = rs_auth_settings_patch(&base, p, out, e);
    json_decref(p);
    rs_auth_settings_release(&base);
    return r;
}

static void expect_auth_error(const char *patch, int code, const char *field, const char *rule)
{
    struct rs_auth_settings s;
    memset(&s, 0xab, sizeof(s));
    struct rs_error e;
    int r = apatch(patch, &s, &e);
    if (r == 0)
        fail_msg("accepted %s", patch);
    assert_int_equal(r, -code);
    assert_int_equal(e.code, code);
    assert_true(e.nfields >= 1);
    if (strcmp(e.fields[0].field, field) != 0 || strcmp(e.fields[0].rule, rule) != 0)
        fail_msg("%s: got %s/%s, want %s/%s", patch, e.fields[0].field, e.fields[0].rule, field,
                 rule);
    assert_int_equal(((unsigned char *)&s)[0], 0xab); /* *ret untouched */
}

static void auth_defaults_json_shape(void **state)
{
    struct rs_auth_settings s;
    rs_auth_settings_defaults(&s);
    json_t *j = rs_auth_settings_to_json(&s);
    assert_json_equal(
        j, "{\"password\": {\"min_length\": 12, \"max_length\": 256, \"blocklist\": true,"
           " \"profile_words\": true, \"history\": 0, \"max_age_days\": 0,"
           " \"expiry_notice_days\": 14, \"hash_memory_kib\": 19456, \"hash_iterations\": 2},"
           " \"lockout\": {\"enabled\": true, \"max_failures\": 5, \"window_minutes\": 15,"
           " \"duration_minutes\": 15, \"notify_user\": true},"
           " \"throttle\": {\"ip_max_failures\": 50, \"ip_window_seconds\": 300,"
           " \"forgot_per_account_per_hour\": 3, \"forgot_per_ip_per_hour\": 30},"
           " \"sessions\": {\"idle_timeout_minutes\": 30, \"absolute_timeout_hours\": 12,"
           " \"max_per_user\": 5},"
           " \"two_factor\": {\"require\": \"off\", \"roles\": [], \"issuer\": \"roster\"},"
           " \"ip_rules\": {\"types\": {}, \"roles\": {}},"
           " \"tokens\": {\"reset_minutes\": 30, \"invite_hours\": 72},"
           " \"version\": 1}");
    json_decref(j);
    rs_auth_settings_release(&s);
}

static const struct range {
    const char *section, *name;
    long min, max;
    const char *extra; /* other members the edge needs */
} auth_ranges[] = {
    {"password", "min_length", 8, 1024, ", \"max_length\": 1024"},
    {"password", "max_length", 64, 1024, NULL},
    {"password", "history", 0, 24, NULL},
    {"password", "max_age_days", 0, 3650, NULL},
    {"password", "expiry_notice_days", 0, 365, NULL},
    {"password", "hash_memory_kib", 19456, 1048576, NULL},
    {"password", "hash_iterations", 2, 20, NULL},
    {"lockout", "max_failures", 1, 100, NULL},
    {"lockout", "window_minutes", 1, 1440, NULL},
    {"lockout", "duration_minutes", 0, 525600, NULL},
    {"throttle", "ip_max_failures", 1, 100000, NULL},
    {"throttle", "ip_window_seconds", 1, 100000, NULL},
    {"throttle", "forgot_per_account_per_hour", 1, 100000, NULL},
    {"throttle", "forgot_per_ip_per_hour", 1, 100000, NULL},
    {"sessions", "idle_timeout_minutes", 1, 1440, NULL},
    {"sessions", "absolute_timeout_hours", 1, 720, NULL},
    {"sessions", "max_per_user", 0, 1000, NULL},
    {"tokens", "reset_minutes", 5, 1440, NULL},
    {"tokens", "invite_hours", 1, 720, NULL},
};

static void auth_range_edges(void **state)
{
    for (size_t i = 0; i < RS_ARRAY_LEN(auth_ranges); i++) {
        const struct range *rg = &auth_ranges[i];
        char path[96];
        snprintf(path, sizeof(path), "%s.%s", rg->section, rg->name);
        long edges[4] = {rg->min, rg->max, rg->min - 1, rg->max + 1};
        for (int k = 0; k < 4; k++) {
            char patch[256];
            snprintf(patch, sizeof(patch), "{\"%s\": {\"%s\": %ld%s}}", rg->section, rg->name,
                     edges[k], rg->extra ? rg->extra : "");
            if (k < 2) {
                struct rs_auth_settings s;
                struct rs_error e;
                if (apatch(patch, &s, &e) != 0)
                    fail_msg("refused %s: %s", patch, e.message);
                json_t *j = rs_auth_settings_to_json(&s);
                json_t *v = json_object_get(json_object_get(j, rg->section), rg->name);
                assert_int_equal(json_integer_value(v), edges[k]);
                json_decref(j);
                rs_auth_settings_release(&s);
            } else {
                expect_auth_error(patch, RS_EVALIDATION, path, "range");
            }
        }
    }
    /* max_length may not be below min_length */
    expect_auth_error("{\"password\": {\"min_length\": 100, \"max_length\": 99}}", RS_EVALIDATION,
                      "password.max_length", "range");
    expect_auth_error("{\"password\": {\"min_length\": 257}}", RS_EVALIDATION,
                      "password.max_length", "range");
    struct rs_auth_settings s;
    struct rs_error e;
    assert_int_equal(apatch("{\"password\": {\"min_length\": 100, \"max_length\": 100}}", &s, &e),
                     0);
    rs_auth_settings_release(&s);
    /* the hint for lockout */
    apatch("{\"lockout\": {\"max_failures\": 0}}", &s, &e);
    assert_non_null(strstr(e.fields[0].message, "lockout.enabled"));
}

static void auth_strict_decoding(void **state)
{
    /* unknown keys: 400 */
    expect_auth_error("{\"nope\": {}}", RS_EBADREQUEST, "nope", "unknown_field");
    expect_auth_error("{\"lockout\": {\"nope\": 1}}", RS_EBADREQUEST, "lockout.nope",
                      "unknown_field");
    expect_auth_error("{\"password\": {\"expiry\": 1}}", RS_EBADREQUEST, "password.expiry",
                      "unknown_field");
    /* wrong types: 400 */
    expect_auth_error("{\"lockout\": {\"max_failures\": \"5\"}}", RS_EBADREQUEST,
                      "lockout.max_failures", "type");
    expect_auth_error("{\"lockout\": {\"max_failures\": 5.5}}", RS_EBADREQUEST,
                      "lockout.max_failures", "type");
    expect_auth_error("{\"lockout\": {\"enabled\": 1}}", RS_EBADREQUEST, "lockout.enabled", "type");
    expect_auth_error("{\"lockout\": [1]}", RS_EBADREQUEST, "lockout", "type");
    expect_auth_error("{\"two_factor\": {\"require\": 1}}", RS_EBADREQUEST, "two_factor.require",
                      "type");
    expect_auth_error("{\"two_factor\": {\"roles\": \"admin\"}}", RS_EBADREQUEST,
                      "two_factor.roles", "type");
    expect_auth_error("{\"two_factor\": {\"roles\": [\"a\", 2]}}", RS_EBADREQUEST,
                      "two_factor.roles[1]", "type");
    expect_auth_error("{\"ip_rules\": {\"types\": [\"10.0.0.0/8\"]}}", RS_EBADREQUEST,
                      "ip_rules.types", "type");
    expect_auth_error("{\"ip_rules\": {\"types\": {\"api\": \"10.0.0.0/8\"}}}", RS_EBADREQUEST,
                      "ip_rules.types.api", "type");
    expect_auth_error("{\"ip_rules\": {\"roles\": {\"sales\": [7]}}}", RS_EBADREQUEST,
                      "ip_rules.roles.sales[0]", "type");
    /* read-only */
    expect_auth_error("{\"version\": 3}", RS_EBADREQUEST, "version", "read_only");
    /* not an object at all */
    struct rs_auth_settings s;
    struct rs_error e;
    assert_int_equal(apatch("[1]", &s, &e), -RS_EBADREQUEST);

    /* rules: 422 */
    expect_auth_error("{\"two_factor\": {\"require\": \"sometimes\"}}", RS_EVALIDATION,
                      "two_factor.require", "enum");
    expect_auth_error("{\"two_factor\": {\"roles\": [\"Sales Rep\"]}}", RS_EVALIDATION,
                      "two_factor.roles[0]", "format");
    expect_auth_error("{\"two_factor\": {\"roles\": [\"sales\", \"hr\", \"sales\"]}}",
                      RS_EVALIDATION, "two_factor.roles[2]", "unique");
    expect_auth_error("{\"two_factor\": {\"require\": \"roles\"}}", RS_EVALIDATION,
                      "two_factor.roles", "required");
    expect_auth_error("{\"two_factor\": {\"issuer\": \"ACME: ERP\"}}", RS_EVALIDATION,
                      "two_factor.issuer", "format");
    expect_auth_error("{\"two_factor\": {\"issuer\": \"  \"}}", RS_EVALIDATION, "two_factor.issuer",
                      "required");
    expect_auth_error("{\"two_factor\": {\"issuer\": "
                      "\"12345678901234567890123456789012345678901234567890123456789012345\"}}",
                      RS_EVALIDATION, "two_factor.issuer", "max_length");
    expect_auth_error("{\"ip_rules\": {\"types\": {\"robot\": [\"10.0.0.0/8\"]}}}", RS_EVALIDATION,
                      "ip_rules.types.robot", "user_type");
    expect_auth_error("{\"ip_rules\": {\"roles\": {\"Sales Rep\": [\"10.0.0.0/8\"]}}}",
                      RS_EVALIDATION, "ip_rules.roles.Sales Rep", "format");
    expect_auth_error("{\"ip_rules\": {\"types\": {\"api\": [\"10.0.0.0/8\", \"10.0.0.1/8\"]}}}",
                      RS_EVALIDATION, "ip_rules.types.api[1]", "cidr");
    expect_auth_error("{\"ip_rules\": {\"roles\": {\"sales\": [\"300.0.0.0/8\"]}}}", RS_EVALIDATION,
                      "ip_rules.roles.sales[0]", "cidr");
    /* a 400 outranks a 422, and every fault is reported */
    assert_int_equal(apatch("{\"lockout\": {\"max_failures\": 0, \"enabled\": \"no\"}}", &s, &e),
                     -RS_EBADREQUEST);
    assert_int_equal(e.nfields, 2);

    /* what is allowed */
    assert_int_equal(
        apatch(
            "{\"two_factor\": {\"require\": \"roles\", \"roles\": [\"sales_rep\", \"hr\"],"
            " \"issuer\": \"ACME ERP\"}, \"ip_rules\": {\"types\": {\"api\": [\"10.0.0.0/8\"],"
            " \"guest\": []}, \"roles\": {\"sales_rep\": [\"192.0.2.0/24\", \"2001:db8::/32\"]}}}",
            &s, &e),
        0);
    assert_int_equal(s.two_factor.require, RS_2FA_ROLES);
    assert_int_equal(json_array_size(s.two_factor.roles), 2);
    assert_string_equal(s.two_factor.issuer, "ACME ERP");
    assert_int_equal(json_object_size(s.ip_types), 2);
    assert_true(rs_cidr_list_allows(json_object_get(s.ip_roles, "sales_rep"), "192.0.2.9"));
    rs_auth_settings_release(&s);
}

static void auth_merge_patch_nulls(void **state)
{
    struct rs_auth_settings a, b, c;
    struct rs_error e;
    assert_int_equal(
        apatch(
            "{\"lockout\": {\"max_failures\": 9, \"window_minutes\": 60},"
            " \"two_factor\": {\"require\": \"everyone\", \"issuer\": \"ACME\", \"roles\": "
            "[\"hr\"]},"
            " \"ip_rules\": {\"types\": {\"api\": [\"10.0.0.0/8\"], \"guest\": [\"192.0.2.0/24\"]},"
            " \"roles\": {\"hr\": [\"198.51.100.0/24\"]}}}",
            &a, &e),
        0);

    /* a member set to null returns to its default; others stay */
    json_t *p = J("{\"lockout\": {\"max_failures\": null}, \"two_factor\": {\"issuer\": null}}");
    rs_error_init(&e);
    assert_int_equal(rs_auth_settings_patch(&a, p, &b, &e), 0);
    json_decref(p);
    assert_int_equal(b.lockout.max_failures, 5);
    assert_int_equal(b.lockout.window_minutes, 60);
    assert_string_equal(b.two_factor.issuer, "roster");
    assert_int_equal(b.two_factor.require, RS_2FA_EVERYONE);

    /* a map entry set to null is removed, another added, the rest kept; arrays replaced whole */
    p = J("{\"ip_rules\": {\"types\": {\"api\": null, \"standard\": [\"203.0.113.0/24\"]},"
          " \"roles\": {\"hr\": [\"198.51.100.7\"]}}}");
    assert_int_equal(rs_auth_settings_patch(&b, p, &c, &e), 0);
    json_decref(p);
    json_t *j = rs_auth_settings_to_json(&c);
    assert_json_equal(
        json_object_get(j, "ip_rules"),
        "{\"types\": {\"guest\": [\"192.0.2.0/24\"], \"standard\": [\"203.0.113.0/24\"]},"
        " \"roles\": {\"hr\": [\"198.51.100.7\"]}}");
    json_decref(j);
    rs_auth_settings_release(&c);

    /* a whole section set to null returns to its defaults */
    p = J("{\"lockout\": null, \"ip_rules\": {\"types\": null}, \"two_factor\": null}");
    assert_int_equal(rs_auth_settings_patch(&b, p, &c, &e), 0);
    json_decref(p);
    j = rs_auth_settings_to_json(&c);
    assert_json_equal(json_object_get(j, "lockout"),
                      "{\"enabled\": true, \"max_failures\": 5, \"window_minutes\": 15,"
                      " \"duration_minutes\": 15, \"notify_user\": true}");
    assert_json_equal(json_object_get(j, "ip_rules"),
                      "{\"types\": {}, \"roles\": {\"hr\": [\"198.51.100.0/24\"]}}");
    assert_json_equal(json_object_get(j, "two_factor"),
                      "{\"require\": \"off\", \"roles\": [], \"issuer\": \"roster\"}");
    json_decref(j);
    rs_auth_settings_release(&c);

    /* the patch never touches cur */
    assert_int_equal(a.lockout.max_failures, 9);
    assert_int_equal(json_object_size(a.ip_types), 2);
    rs_auth_settings_release(&a);
    rs_auth_settings_release(&b);
}

static void auth_round_trip(void **state)
{
    struct rs_auth_settings a, b;
    struct rs_error e;
    assert_int_equal(
        apatch("{\"password\": {\"min_length\": 14, \"max_length\": 128, \"blocklist\": false,"
               " \"profile_words\": false, \"history\": 5, \"max_age_days\": 90,"
               " \"expiry_notice_days\": 7, \"hash_memory_kib\": 65536, \"hash_iterations\": 3},"
               " \"lockout\": {\"enabled\": false, \"max_failures\": 10, \"window_minutes\": 30,"
               " \"duration_minutes\": 0, \"notify_user\": false},"
               " \"throttle\": {\"ip_max_failures\": 20, \"ip_window_seconds\": 60,"
               " \"forgot_per_account_per_hour\": 1, \"forgot_per_ip_per_hour\": 10},"
               " \"sessions\": {\"idle_timeout_minutes\": 5, \"absolute_timeout_hours\": 8,"
               " \"max_per_user\": 0},"
               " \"two_factor\": {\"require\": \"admins\", \"roles\": [\"hr\"], \"issuer\": "
               "\"Ärzte GmbH\"},"
               " \"ip_rules\": {\"types\": {\"api\": [\"10.0.0.0/8\"]}, \"roles\": {\"hr\": "
               "[\"::1\"]}},"
               " \"tokens\": {\"reset_minutes\": 15, \"invite_hours\": 24}}",
               &a, &e),
        0);
    a.version = 42;
    json_t *ja = rs_auth_settings_to_json(&a);
    rs_error_init(&e);
    assert_int_equal(rs_auth_settings_from_json(ja, &b, &e), 0);
    json_t *jb = rs_auth_settings_to_json(&b);
    assert_true(json_equal(ja, jb));
    assert_int_equal(b.version, 42);
    assert_int_equal(b.password.history, 5);
    assert_false(b.lockout.enabled);
    json_decref(ja);
    json_decref(jb);
    rs_auth_settings_release(&a);
    rs_auth_settings_release(&b);
}

static void auth_older_document(void **state)
{
    /* written before some members existed, and by newer code with more */
    json_t *doc = J("{\"password\": {\"min_length\": 14}, \"lockout\": {\"later\": 1},"
                    " \"future\": {\"x\": 1}, \"version\": 7}");
    struct rs_auth_settings s, d;
    struct rs_error e;
    rs_error_init(&e);
    assert_int_equal(rs_auth_settings_from_json(doc, &s, &e), 0);
    json_decref(doc);
    assert_int_equal(s.version, 7);
    assert_int_equal(s.password.min_length, 14);
    rs_auth_settings_defaults(&d);
    d.password.min_length = 14;
    d.version = 7;
    json_t *js = rs_auth_settings_to_json(&s);
    json_t *jd = rs_auth_settings_to_json(&d);
    assert_true(json_equal(js, jd));
    json_decref(js);
    json_decref(jd);
    rs_auth_settings_release(&s);
    rs_auth_settings_release(&d);
    /* a stored value that breaks a rule is still refused */
    doc = J("{\"lockout\": {\"max_failures\": 0}}");
    rs_error_init(&e);
    assert_int_equal(rs_auth_settings_from_json(doc, &s, &e), -RS_EVALIDATION);
    json_decref(doc);
}

/* --- notifications --- */

static int npatch_on(const struct rs_notify_settings *base, const char *text,
                     struct rs_notify_settings *out, struct rs_error *e)
{
    rs_error_init(e);
    json_t *p = J(text);
    int r = rs_notify_settings_patch(base, p, out, e);
    json_decref(p);
    return r;
}

static int npatch(const char *text, struct rs_notify_settings *out, struct rs_error *e)
{
    struct rs_notify_settings base;
    rs_notify_settings_defaults(&base);
    int r = npatch_on(&base, text, out, e);
    rs_notify_settings_release(&base);
    return r;
}

static void expect_notify_error(const char *patch, int code, const char *field, const char *rule)
{
    struct rs_notify_settings s;
    memset(&s, 0xab, sizeof(s));
    struct rs_error e;
    int r = npatch(patch, &s, &e);
    if (r == 0)
        fail_msg("accepted %s", patch);
    assert_int_equal(r, -code);
    if (strcmp(e.fields[0].field, field) != 0 || strcmp(e.fields[0].rule, rule) != 0)
        fail_msg("%s: got %s/%s, want %s/%s", patch, e.fields[0].field, e.fields[0].rule, field,
                 rule);
    assert_int_equal(((unsigned char *)&s)[0], 0xab);
}

static void notify_defaults_json_shape(void **state)
{
    struct rs_notify_settings s;
    rs_notify_settings_defaults(&s);
    json_t *j = rs_notify_settings_to_json(&s, false);
    assert_json_equal(
        json_object_get(j, "smtp"),
        "{\"url\": \"smtp://127.0.0.1:25\", \"security\": \"none\", \"username\": \"\","
        " \"password_set\": false, \"from\": \"roster <noreply@localhost>\","
        " \"timeout_seconds\": 10, \"verify_tls\": true}");
    assert_json_equal(json_object_get(j, "enabled"),
                      "{\"invite\": true, \"welcome\": true, \"reset\": true,"
                      " \"password_changed\": true, \"account_locked\": true,"
                      " \"expiry_notice\": true, \"two_factor_changed\": true,"
                      " \"email_changed\": true}");
    assert_int_equal(json_integer_value(json_object_get(j, "version")), 1);
    json_t *t = json_object_get(j, "templates");
    assert_int_equal(json_object_size(t), RS_MAIL_KIND_COUNT);
    for (int k = 0; k < RS_MAIL_KIND_COUNT; k++) {
        json_t *tk = json_object_get(t, rs_mail_kind_name((enum rs_mail_kind)k));
        assert_non_null(tk);
        assert_string_equal(json_string_value(json_object_get(tk, "subject")),
                            rs_mail_default_subject((enum rs_mail_kind)k));
        assert_string_equal(json_string_value(json_object_get(tk, "body")),
                            rs_mail_default_body((enum rs_mail_kind)k));
        json_t *vars = json_object_get(tk, "variables");
        assert_true(json_is_array(vars));
        assert_string_equal(json_string_value(json_array_get(vars, 0)), "username");
    }
    assert_json_equal(json_object_get(json_object_get(t, "reset"), "variables"),
                      "[\"username\", \"first_name\", \"last_name\", \"email\", \"product\","
                      " \"base_url\", \"link\", \"expires_minutes\"]");
    json_decref(j);
    /* the stored form of the defaults carries no templates and no password_set */
    j = rs_notify_settings_to_json(&s, true);
    assert_json_equal(json_object_get(j, "templates"), "{}");
    assert_null(json_object_get(json_object_get(j, "smtp"), "password_set"));
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "smtp"), "password")),
                        "");
    json_decref(j);
    rs_notify_settings_release(&s);
}

static void notify_rules(void **state)
{
    struct rs_notify_settings s;
    struct rs_error e;
    /* 400s */
    expect_notify_error("{\"smtp\": {\"host\": \"x\"}}", RS_EBADREQUEST, "smtp.host",
                        "unknown_field");
    expect_notify_error("{\"enabled\": {\"test\": false}}", RS_EBADREQUEST, "enabled.test",
                        "unknown_field");
    expect_notify_error("{\"templates\": {\"nope\": {}}}", RS_EBADREQUEST, "templates.nope",
                        "unknown_field");
    expect_notify_error("{\"templates\": {\"reset\": {\"html\": \"x\"}}}", RS_EBADREQUEST,
                        "templates.reset.html", "unknown_field");
    expect_notify_error("{\"smtp\": {\"timeout_seconds\": \"10\"}}", RS_EBADREQUEST,
                        "smtp.timeout_seconds", "type");
    expect_notify_error("{\"smtp\": {\"url\": 25}}", RS_EBADREQUEST, "smtp.url", "type");
    expect_notify_error("{\"enabled\": {\"invite\": \"yes\"}}", RS_EBADREQUEST, "enabled.invite",
                        "type");
    expect_notify_error("{\"templates\": {\"reset\": \"text\"}}", RS_EBADREQUEST, "templates.reset",
                        "type");
    expect_notify_error("{\"templates\": {\"reset\": {\"body\": 1}}}", RS_EBADREQUEST,
                        "templates.reset.body", "type");
    expect_notify_error("{\"smtp\": {\"password\": 1234}}", RS_EBADREQUEST, "smtp.password",
                        "type");
    expect_notify_error("{\"smtp\": {\"password_set\": true}}", RS_EBADREQUEST, "smtp.password_set",
                        "read_only");
    expect_notify_error("{\"smtp\": {\"password_set\": null}}", RS_EBADREQUEST, "smtp.password_set",
                        "read_only");
    expect_notify_error("{\"templates\": {\"invite\": {\"variables\": []}}}", RS_EBADREQUEST,
                        "templates.invite.variables", "read_only");
    expect_notify_error("{\"version\": 2}", RS_EBADREQUEST, "version", "read_only");

    /* 422s */
    const char *bad_urls[] = {"http://mail.example.com",
                              "smtp://",
                              "smtp://mail.example.com:0",
                              "smtp://mail.example.com:65536",
                              "smtp://mail.example.com:25/x",
                              "smtp://user@mail.example.com",
                              "smtp://mail..example.com",
                              "smtp://-mail.example.com",
                              "smtp://[::1",
                              "smtp://[nope]:25",
                              "SMTP://mail.example.com",
                              "smtp://mail.example.com:025",
                              "smtp://mail example.com",
                              "smtp://mail.example.com:"};
    for (size_t i = 0; i < RS_ARRAY_LEN(bad_urls); i++) {
        char patch[200];
        snprintf(patch, sizeof(patch), "{\"smtp\": {\"url\": \"%s\"}}", bad_urls[i]);
        expect_notify_error(patch, RS_EVALIDATION, "smtp.url", "url");
    }
    const char *good_urls[] = {"smtp://mail.example.com",       "smtp://mail.example.com:1",
                               "smtp://mail.example.com:65535", "smtp://[::1]:2525",
                               "smtp://192.0.2.1:587",          "smtp://localhost"};
    for (size_t i = 0; i < RS_ARRAY_LEN(good_urls); i++) {
        char patch[200];
        snprintf(patch, sizeof(patch), "{\"smtp\": {\"url\": \"%s\"}}", good_urls[i]);
        if (npatch(patch, &s, &e) != 0)
            fail_msg("refused %s: %s", patch, e.message);
        assert_string_equal(s.smtp.url, good_urls[i]);
        rs_notify_settings_release(&s);
    }
    expect_notify_error("{\"smtp\": {\"security\": \"ssl\"}}", RS_EVALIDATION, "smtp.security",
                        "enum");
    expect_notify_error("{\"smtp\": {\"security\": \"tls\"}}", RS_EVALIDATION, "smtp.security",
                        "security");
    expect_notify_error("{\"smtp\": {\"url\": \"smtps://mail.example.com\"}}", RS_EVALIDATION,
                        "smtp.security", "security");
    expect_notify_error("{\"smtp\": {\"url\": \"smtps://mail.example.com\","
                        " \"security\": \"starttls\"}}",
                        RS_EVALIDATION, "smtp.security", "security");
    assert_int_equal(npatch("{\"smtp\": {\"url\": \"smtps://mail.example.com:465\","
                            " \"security\": \"tls\"}}",
                            &s, &e),
                     0);
    assert_int_equal(s.smtp.security, RS_SMTP_TLS);
    rs_notify_settings_release(&s);
    assert_int_equal(npatch("{\"smtp\": {\"url\": \"smtp://mail.example.com:587\","
                            " \"security\": \"starttls\"}}",
                            &s, &e),
                     0);
    rs_notify_settings_release(&s);
    expect_notify_error("{\"smtp\": {\"from\": \"Doe, J <j@example.com>\"}}", RS_EVALIDATION,
                        "smtp.from", "mailbox");
    expect_notify_error("{\"smtp\": {\"from\": \"a@example.com, b@example.com\"}}", RS_EVALIDATION,
                        "smtp.from", "mailbox");
    expect_notify_error("{\"smtp\": {\"from\": \"x <a@example.com>\\r\\nBcc: v@example.com\"}}",
                        RS_EVALIDATION, "smtp.from", "mailbox");
    expect_notify_error("{\"smtp\": {\"timeout_seconds\": 0}}", RS_EVALIDATION,
                        "smtp.timeout_seconds", "range");
    expect_notify_error("{\"smtp\": {\"timeout_seconds\": 301}}", RS_EVALIDATION,
                        "smtp.timeout_seconds", "range");
    expect_notify_error("{\"smtp\": {\"username\": \"a\\nb\"}}", RS_EVALIDATION, "smtp.username",
                        "format");
    expect_notify_error("{\"templates\": {\"welcome\": {\"body\": \"Go to {{link}}\"}}}",
                        RS_EVALIDATION, "templates.welcome.body", "unknown_variable");
    expect_notify_error("{\"templates\": {\"reset\": {\"subject\": \"{{ip}}\"}}}", RS_EVALIDATION,
                        "templates.reset.subject", "unknown_variable");
    expect_notify_error("{\"templates\": {\"reset\": {\"subject\": \"Reset\\r\\nBcc: x@y\"}}}",
                        RS_EVALIDATION, "templates.reset.subject", "header_injection");
    expect_notify_error("{\"templates\": {\"reset\": {\"subject\": \"\"}}}", RS_EVALIDATION,
                        "templates.reset.subject", "required");

    assert_int_equal(
        npatch("{\"smtp\": {\"timeout_seconds\": 1, \"verify_tls\": false,"
               " \"from\": \"Büro <buero@example.ch>\", \"username\": \"mailer\","
               " \"security\": \"starttls\"},"
               " \"enabled\": {\"welcome\": false},"
               " \"templates\": {\"reset\": {\"subject\": \"Reset for {{ username }}\"},"
               " \"test\": {\"body\": \"Test from {{product}}\"}}}",
               &s, &e),
        0);
    assert_int_equal(s.smtp.timeout_seconds, 1);
    assert_false(s.smtp.verify_tls);
    assert_false(s.enabled[RS_MAIL_WELCOME]);
    assert_true(s.enabled[RS_MAIL_TEST]);
    assert_string_equal(s.templates[RS_MAIL_RESET].subject, "Reset for {{ username }}");
    assert_string_equal(s.templates[RS_MAIL_RESET].body, rs_mail_default_body(RS_MAIL_RESET));
    assert_string_equal(s.templates[RS_MAIL_TEST].body, "Test from {{product}}");
    rs_notify_settings_release(&s);
}

static void notify_password_write_only(void **state)
{
    struct rs_notify_settings base, s, t;
    struct rs_error e;
    rs_notify_settings_defaults(&base);
    free(base.smtp.password_stored);
    base.smtp.password_stored = rs_xstrdup("sealed:AAAA");
    base.smtp.security = RS_SMTP_STARTTLS; /* credentials need TLS */

    /* a patch without a password leaves it alone */
    assert_int_equal(npatch_on(&base, "{\"smtp\": {\"username\": \"u\"}}", &s, &e), 0);
    assert_null(s.smtp.password_new);
    assert_string_equal(s.smtp.password_stored, "sealed:AAAA");
    json_t *j = rs_notify_settings_to_json(&s, false);
    assert_true(json_is_true(json_object_get(json_object_get(j, "smtp"), "password_set")));
    assert_null(json_object_get(json_object_get(j, "smtp"), "password"));
    json_decref(j);
    rs_notify_settings_release(&s);

    /* a patch with one sets password_new; the API form never shows it */
    assert_int_equal(npatch_on(&base, "{\"smtp\": {\"password\": \"s3cret!\"}}", &s, &e), 0);
    assert_string_equal(s.smtp.password_new, "s3cret!");
    assert_string_equal(s.smtp.password_stored, "sealed:AAAA");
    j = rs_notify_settings_to_json(&s, false);
    char *text = json_dumps(j, 0);
    assert_null(strstr(text, "s3cret"));
    assert_null(strstr(text, "sealed:AAAA"));
    assert_true(json_is_true(json_object_get(json_object_get(j, "smtp"), "password_set")));
    free(text);
    json_decref(j);
    /* the stored form carries the stored text, not the plaintext */
    j = rs_notify_settings_to_json(&s, true);
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "smtp"), "password")),
                        "sealed:AAAA");
    json_decref(j);
    /* copies carry password_new too (the service seals it) */
    rs_notify_settings_copy(&t, &s);
    assert_string_equal(t.smtp.password_new, "s3cret!");
    rs_notify_settings_release(&t);
    rs_notify_settings_release(&s);

    /* null and "" clear it */
    const char *clears[] = {"{\"smtp\": {\"password\": null}}", "{\"smtp\": {\"password\": \"\"}}",
                            "{\"smtp\": null}"};
    for (size_t i = 0; i < RS_ARRAY_LEN(clears); i++) {
        assert_int_equal(npatch_on(&base, clears[i], &s, &e), 0);
        assert_non_null(s.smtp.password_new);
        assert_string_equal(s.smtp.password_new, "");
        j = rs_notify_settings_to_json(&s, false);
        assert_true(json_is_false(json_object_get(json_object_get(j, "smtp"), "password_set")));
        json_decref(j);
        rs_notify_settings_release(&s);
    }

    /* the stored document reads the password back into password_stored */
    j = J("{\"smtp\": {\"password\": \"sealed:BBBB\", \"password_set\": true}}");
    rs_error_init(&e);
    assert_int_equal(rs_notify_settings_from_json(j, &s, &e), 0);
    json_decref(j);
    assert_string_equal(s.smtp.password_stored, "sealed:BBBB");
    assert_null(s.smtp.password_new);
    rs_notify_settings_release(&s);
    rs_notify_settings_release(&base);
}

/* SMTP AUTH sends the password as readable text: credentials need
 * starttls or tls. */
static void notify_auth_needs_tls(void **state)
{
    struct rs_notify_settings base, s;
    struct rs_error e;
    expect_notify_error("{\"smtp\": {\"username\": \"mailer\"}}", RS_EVALIDATION, "smtp.security",
                        "auth_needs_tls");
    expect_notify_error("{\"smtp\": {\"password\": \"s3cret\"}}", RS_EVALIDATION, "smtp.security",
                        "auth_needs_tls");
    expect_notify_error("{\"smtp\": {\"username\": \"mailer\", \"password\": \"s3cret\","
                        " \"security\": \"none\"}}",
                        RS_EVALIDATION, "smtp.security", "auth_needs_tls");
    /* the message says why and what to do */
    assert_int_not_equal(npatch("{\"smtp\": {\"username\": \"mailer\"}}", &s, &e), 0);
    assert_non_null(strstr(e.fields[0].message, "in the clear"));
    assert_non_null(strstr(e.fields[0].message, "starttls"));
    /* none without credentials, and credentials over starttls or tls, are fine */
    assert_int_equal(npatch("{\"smtp\": {\"security\": \"none\", \"username\": \"\","
                            " \"password\": \"\"}}",
                            &s, &e),
                     0);
    rs_notify_settings_release(&s);
    assert_int_equal(npatch("{\"smtp\": {\"security\": \"starttls\", \"username\": \"mailer\","
                            " \"password\": \"s3cret\"}}",
                            &base, &e),
                     0);
    assert_int_equal(npatch("{\"smtp\": {\"url\": \"smtps://mx.example.com\", \"security\": "
                            "\"tls\", \"username\": \"mailer\", \"password\": \"s3cret\"}}",
                            &s, &e),
                     0);
    rs_notify_settings_release(&s);
    /* dropping TLS while the credentials stay is refused; with them, fine */
    rs_error_init(&e);
    memset(&s, 0xab, sizeof(s));
    json_t *p = J("{\"smtp\": {\"security\": \"none\"}}");
    assert_int_equal(rs_notify_settings_patch(&base, p, &s, &e), -RS_EVALIDATION);
    json_decref(p);
    assert_string_equal(e.fields[0].field, "smtp.security");
    assert_string_equal(e.fields[0].rule, "auth_needs_tls");
    assert_int_equal(((unsigned char *)&s)[0], 0xab);
    assert_int_equal(
        npatch_on(&base, "{\"smtp\": {\"security\": \"none\", \"password\": null}}", &s, &e),
        -RS_EVALIDATION); /* the username alone still means AUTH */
    assert_int_equal(npatch_on(&base,
                               "{\"smtp\": {\"security\": \"none\", \"username\": \"\","
                               " \"password\": null}}",
                               &s, &e),
                     0);
    assert_int_equal(rs_notify_smtp_auth_check(&s, &e), 0);
    rs_notify_settings_release(&s);
    rs_notify_settings_release(&base);
    /* a stored document from before the rule still reads; the check refuses it */
    json_t *doc = J("{\"smtp\": {\"security\": \"none\", \"username\": \"mailer\","
                    " \"password\": \"sealed:DDDD\"}}");
    rs_error_init(&e);
    assert_int_equal(rs_notify_settings_from_json(doc, &s, &e), 0);
    json_decref(doc);
    rs_error_init(&e);
    assert_int_equal(rs_notify_smtp_auth_check(&s, &e), -RS_EVALIDATION);
    assert_string_equal(e.fields[0].rule, "auth_needs_tls");
    s.smtp.security = RS_SMTP_STARTTLS;
    assert_int_equal(rs_notify_smtp_auth_check(&s, &e), 0);
    rs_notify_settings_release(&s);
}

static void notify_merge_patch_nulls(void **state)
{
    struct rs_notify_settings a, b;
    struct rs_error e;
    assert_int_equal(npatch("{\"smtp\": {\"timeout_seconds\": 60, \"url\": \"smtp://mx:2525\"},"
                            " \"enabled\": {\"invite\": false, \"reset\": false},"
                            " \"templates\": {\"invite\": {\"subject\": \"Join {{product}}\","
                            " \"body\": \"{{link}}\"}, \"reset\": {\"subject\": \"R\"}}}",
                            &a, &e),
                     0);
    assert_int_equal(
        npatch_on(&a,
                  "{\"smtp\": {\"timeout_seconds\": null},"
                  " \"enabled\": {\"invite\": null},"
                  " \"templates\": {\"invite\": {\"subject\": null}, \"reset\": null}}",
                  &b, &e),
        0);
    assert_int_equal(b.smtp.timeout_seconds, 10);
    assert_string_equal(b.smtp.url, "smtp://mx:2525");
    assert_true(b.enabled[RS_MAIL_INVITE]);
    assert_false(b.enabled[RS_MAIL_RESET]);
    assert_string_equal(b.templates[RS_MAIL_INVITE].subject,
                        rs_mail_default_subject(RS_MAIL_INVITE));
    assert_string_equal(b.templates[RS_MAIL_INVITE].body, "{{link}}");
    assert_string_equal(b.templates[RS_MAIL_RESET].subject, rs_mail_default_subject(RS_MAIL_RESET));
    rs_notify_settings_release(&b);
    assert_int_equal(
        npatch_on(&a, "{\"templates\": null, \"enabled\": null, \"smtp\": null}", &b, &e), 0);
    struct rs_notify_settings d;
    rs_notify_settings_defaults(&d);
    json_t *jb = rs_notify_settings_to_json(&b, false);
    json_t *jd = rs_notify_settings_to_json(&d, false);
    assert_true(json_equal(jb, jd));
    json_decref(jb);
    json_decref(jd);
    rs_notify_settings_release(&d);
    rs_notify_settings_release(&b);
    rs_notify_settings_release(&a);
}

static void notify_round_trip_and_older_document(void **state)
{
    struct rs_notify_settings a, b;
    struct rs_error e;
    assert_int_equal(
        npatch("{\"smtp\": {\"url\": \"smtps://mail.example.com:465\","
               " \"security\": \"tls\", \"username\": \"roster\","
               " \"from\": \"\\\"ACME, HR\\\" <hr@example.com>\","
               " \"timeout_seconds\": 30, \"verify_tls\": false},"
               " \"enabled\": {\"account_locked\": false},"
               " \"templates\": {\"expiry_notice\": {\"subject\": \"{{days_left}} Tage\","
               " \"body\": \"Ihr Passwort läuft am {{expires_at}} ab.\"}}}",
               &a, &e),
        0);
    free(a.smtp.password_stored);
    a.smtp.password_stored = rs_xstrdup("sealed:CCCC");
    a.version = 9;
    json_t *stored = rs_notify_settings_to_json(&a, true);
    /* only the changed template is stored */
    assert_int_equal(json_object_size(json_object_get(stored, "templates")), 1);
    rs_error_init(&e);
    assert_int_equal(rs_notify_settings_from_json(stored, &b, &e), 0);
    json_t *ja = rs_notify_settings_to_json(&a, false);
    json_t *jb = rs_notify_settings_to_json(&b, false);
    assert_true(json_equal(ja, jb));
    assert_string_equal(b.smtp.password_stored, "sealed:CCCC");
    assert_int_equal(b.version, 9);
    json_t *stored2 = rs_notify_settings_to_json(&b, true);
    assert_true(json_equal(stored, stored2));
    json_decref(stored);
    json_decref(stored2);
    json_decref(ja);
    json_decref(jb);
    rs_notify_settings_release(&a);
    rs_notify_settings_release(&b);

    /* an older document: missing members read as defaults, unknown ones skipped */
    json_t *doc = J("{\"smtp\": {\"url\": \"smtp://mx.example.com\", \"pool\": 3},"
                    " \"digest\": {}, \"version\": 4}");
    rs_error_init(&e);
    assert_int_equal(rs_notify_settings_from_json(doc, &b, &e), 0);
    json_decref(doc);
    assert_string_equal(b.smtp.url, "smtp://mx.example.com");
    assert_int_equal(b.smtp.timeout_seconds, 10);
    assert_string_equal(b.smtp.from, "roster <noreply@localhost>");
    assert_string_equal(b.smtp.password_stored, "");
    assert_true(b.enabled[RS_MAIL_INVITE]);
    assert_string_equal(b.templates[RS_MAIL_INVITE].body, rs_mail_default_body(RS_MAIL_INVITE));
    assert_int_equal(b.version, 4);
    rs_notify_settings_release(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(auth_defaults_json_shape),
        cmocka_unit_test(auth_range_edges),
        cmocka_unit_test(auth_strict_decoding),
        cmocka_unit_test(auth_merge_patch_nulls),
        cmocka_unit_test(auth_round_trip),
        cmocka_unit_test(auth_older_document),
        cmocka_unit_test(notify_defaults_json_shape),
        cmocka_unit_test(notify_rules),
        cmocka_unit_test(notify_password_write_only),
        cmocka_unit_test(notify_auth_needs_tls),
        cmocka_unit_test(notify_merge_patch_nulls),
        cmocka_unit_test(notify_round_trip_and_older_document),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
