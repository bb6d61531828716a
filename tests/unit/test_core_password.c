/* test_core_password.c: unit tests for the password policy
 * (src/core/password.h): NFKC normalisation, length in code points and the
 * profile-word rule. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>

#include "src/core/password.h"

/* ---- helpers ------------------------------------------------------------ */

/* s repeated n times (a new string). */
static char *repeat(const char *s, int n)
{
    size_t len = strlen(s);
    char *out = rs_xmalloc(len * (size_t)n + 1);
    for (int i = 0; i < n; i++)
        memcpy(out + len * (size_t)i, s, len);
    out[len * (size_t)n] = '\0';
    return out;
}

static void expect_normalized(const char *in, const char *want)
{
    struct rs_error e;
    rs_error_init(&e);
    char *out = NULL;
    assert_int_equal(rs_password_normalize(in, "password", &out, &e), 0);
    assert_int_equal(e.code, RS_OK);
    assert_non_null(out);
    assert_string_equal(out, want);
    free(out);
}

static void expect_bad_utf8(const char *in)
{
    struct rs_error e;
    rs_error_init(&e);
    char *out = (char *)"untouched";
    assert_int_equal(rs_password_normalize(in, "new_password", &out, &e), -RS_EVALIDATION);
    assert_string_equal(out, "untouched");
    assert_int_equal(e.nfields, 1);
    assert_string_equal(e.fields[0].field, "new_password");
    assert_string_equal(e.fields[0].rule, "utf8");
}

/* Runs the check; returns its result with e filled. */
static int check(const struct rs_password_policy *p, const char *pw, const struct rs_user *u,
                 struct rs_error *e)
{
    rs_error_init(e);
    return rs_password_check(p, "password", pw, u, e);
}

static void expect_ok(const struct rs_password_policy *p, const char *pw, const struct rs_user *u)
{
    struct rs_error e;
    int r = check(p, pw, u, &e);
    if (r != 0)
        fail_msg("\"%s\" refused: %s (%s)", pw, e.message, e.nfields ? e.fields[0].rule : "");
    assert_int_equal(e.nfields, 0);
}

/* Expects exactly one field error with this rule; returns its message. */
static void expect_rule(const struct rs_password_policy *p, const char *pw, const struct rs_user *u,
                        const char *rule, struct rs_error *e)
{
    int r = check(p, pw, u, e);
    if (r != -RS_EVALIDATION)
        fail_msg("\"%s\" not refused (want %s)", pw, rule);
    assert_int_equal(e->code, RS_EVALIDATION);
    assert_int_equal(e->nfields, 1);
    assert_string_equal(e->fields[0].field, "password");
    assert_string_equal(e->fields[0].rule, rule);
}

static void user_fill(struct rs_user *u)
{
    rs_user_init(u);
    u->username = rs_xstrdup("jsmith99");
    u->email = rs_xstrdup("john.doe@example.com");
    u->first_name = rs_xstrdup("Johnathan");
    u->last_name = rs_xstrdup("Smithers");
    u->employee_id = rs_xstrdup("E-77123");
}

/* ---- defaults ----------------------------------------------------------- */

static void defaults(void **state)
{
    (void)state;
    struct rs_password_policy p;
    memset(&p, 0x5a, sizeof(p));
    rs_password_policy_defaults(&p);
    assert_int_equal(p.min_length, 12);
    assert_int_equal(p.max_length, 256);
    assert_true(p.blocklist);
    assert_true(p.profile_words);
    assert_int_equal(p.history, 0);
    assert_int_equal(p.max_age_days, 0);
    assert_int_equal(p.expiry_notice_days, 14);
}

/* ---- normalisation ------------------------------------------------------ */

static void normalize_plain_ascii_unchanged(void **state)
{
    (void)state;
    expect_normalized("correct horse battery staple", "correct horse battery staple");
    expect_normalized("", "");
    /* No trimming: spaces are part of a password (NIST SP 800-63B). */
    expect_normalized("  padded  ", "  padded  ");
}

static void normalize_full_width(void **state)
{
    (void)state;
    /* U+FF50.. full-width Latin and digits, as typed with a CJK input method. */
    expect_normalized("\xef\xbd\x90\xef\xbd\x81\xef\xbd\x93\xef\xbd\x93\xef\xbc\x91", "pass1");
    /* U+3000 ideographic space becomes a space. */
    expect_normalized("a\u3000b", "a b");
}

static void normalize_compatibility(void **state)
{
    (void)state;
    expect_normalized("\uFB01ne", "fine");               /* U+FB01 ligature fi */
    expect_normalized("x\xc2\xb2", "x2");                /* U+00B2 superscript two */
    expect_normalized("\xe2\x91\xa0\xe2\x91\xa1", "12"); /* U+2460 circled digits */
    expect_normalized("\xe2\x85\xab", "XII");            /* U+216B roman numeral twelve */
    expect_normalized("a\u00A0b", "a b");                /* U+00A0 no-break space */
    /* Canonical composition: e + combining acute == precomposed e-acute. */
    expect_normalized("cafe\u0301", "caf\xc3\xa9");
    expect_normalized("caf\xc3\xa9", "caf\xc3\xa9");
    /* Hangul jamo compose to the syllable. */
    expect_normalized("\xe1\x84\x80\xe1\x85\xa1", "\xea\xb0\x80");
}

static void normalize_invalid_utf8(void **state)
{
    (void)state;
    expect_bad_utf8("\xff");
    expect_bad_utf8("abc\xc3");          /* truncated sequence */
    expect_bad_utf8("\xc0\xaf");         /* overlong '/' */
    expect_bad_utf8("\xed\xa0\x80");     /* UTF-16 surrogate */
    expect_bad_utf8("\xf4\x90\x80\x80"); /* beyond U+10FFFF */
    expect_bad_utf8("ok\x80\x63ontinuation");
}

static void normalize_null_is_required(void **state)
{
    (void)state;
    struct rs_error e;
    rs_error_init(&e);
    char *out = NULL;
    assert_int_equal(rs_password_normalize(NULL, "password", &out, &e), -RS_EVALIDATION);
    assert_null(out);
    assert_string_equal(e.fields[0].field, "password");
    assert_string_equal(e.fields[0].rule, "required");
}

/* ---- length ------------------------------------------------------------- */

static void min_length_in_code_points(void **state)
{
    (void)state;
    struct rs_password_policy p;
    rs_password_policy_defaults(&p);
    struct rs_error e;
    expect_rule(&p, "short", NULL, "min_length", &e);
    assert_string_equal(e.fields[0].message, "password must be at least 12 characters");
    assert_string_equal(e.message, "password must be at least 12 characters");
    expect_rule(&p, "elevenchars", NULL, "min_length", &e);
    expect_ok(&p, "twelve chars", NULL);

    /* 11 two-byte characters are 22 bytes but 11 characters. */
    char *e11 = repeat("\xc3\xa9", 11), *e12 = repeat("\xc3\xa9", 12);
    expect_rule(&p, e11, NULL, "min_length", &e);
    expect_ok(&p, e12, NULL);
    /* Emoji: four bytes each. */
    char *g11 = repeat("\xf0\x9f\x98\x80", 11), *g12 = repeat("\xf0\x9f\x98\x80", 12);
    expect_rule(&p, g11, NULL, "min_length", &e);
    expect_ok(&p, g12, NULL);
    free(e11);
    free(e12);
    free(g11);
    free(g12);

    p.min_length = 8;
    expect_ok(&p, "8 chars!", NULL);
    expect_rule(&p, "7 chars", NULL, "min_length", &e);
    assert_string_equal(e.fields[0].message, "password must be at least 8 characters");
    expect_rule(&p, "", NULL, "min_length", &e);
}

static void max_length_in_code_points(void **state)
{
    (void)state;
    struct rs_password_policy p;
    rs_password_policy_defaults(&p);
    struct rs_error e;
    /* Long passphrases are welcome (NIST: at least 64 allowed). */
    char *a64 = repeat("a1b2", 16), *a200 = repeat("xy9z ", 40);
    expect_ok(&p, a64, NULL);
    expect_ok(&p, a200, NULL);
    char *a256 = repeat("q", 256), *a257 = repeat("q", 257);
    expect_ok(&p, a256, NULL);
    expect_rule(&p, a257, NULL, "max_length", &e);
    assert_string_equal(e.fields[0].message, "password must be at most 256 characters");
    free(a64);
    free(a200);
    free(a256);
    free(a257);

    /* 64 emoji (256 bytes) fit a 64-character maximum; 65 do not. */
    p.max_length = 64;
    char *g64 = repeat("\xf0\x9f\x98\x80", 64), *g65 = repeat("\xf0\x9f\x98\x80", 65);
    expect_ok(&p, g64, NULL);
    expect_rule(&p, g65, NULL, "max_length", &e);
    free(g64);
    free(g65);
}

static void check_refuses_invalid_utf8(void **state)
{
    (void)state;
    struct rs_password_policy p;
    rs_password_policy_defaults(&p);
    struct rs_error e;
    expect_rule(&p, "valid prefix then \xff", NULL, "utf8", &e);
    expect_rule(&p, NULL, NULL, "required", &e);
}

/* ---- profile words ------------------------------------------------------ */

/* pw is refused for containing the part `what` ("username", ...). */
static void expect_profile(const char *pw, const struct rs_user *u, const char *what)
{
    struct rs_password_policy p;
    rs_password_policy_defaults(&p);
    struct rs_error e;
    expect_rule(&p, pw, u, "profile_words", &e);
    char want[128];
    snprintf(want, sizeof(want), "password must not contain your %s", what);
    assert_string_equal(e.fields[0].message, want);
    /* The message never echoes the password. */
    assert_null(strstr(e.message, pw));
}

static void profile_each_part(void **state)
{
    (void)state;
    struct rs_user u;
    user_fill(&u);
    expect_profile("my-JSMITH99-is-long", &u, "username");
    expect_profile("xx john.doe xx long", &u, "email address");
    expect_profile("long johnathan text", &u, "first name");
    expect_profile("long text SmItHeRs", &u, "last name");
    expect_profile("badge e-77123 please", &u, "employee id");
    /* Several parts: one error naming them all. */
    expect_profile("johnathansmithers!", &u, "first name or last name");
    /* The email's domain is not a profile word. */
    struct rs_password_policy p;
    rs_password_policy_defaults(&p);
    expect_ok(&p, "example.com is fine", &u);
    /* Unrelated passphrase passes. */
    expect_ok(&p, "correct horse battery staple", &u);
    rs_user_release(&u);
}

static void profile_unicode_case_fold(void **state)
{
    (void)state;
    struct rs_user u;
    rs_user_init(&u);
    u.first_name = rs_xstrdup("Bj\xc3\xb8rn"); /* Bjørn */
    u.last_name = rs_xstrdup("Stra\u00DFe");   /* Straße */
    expect_profile("BJ\xc3\x98RN likes fjords", &u, "first name");
    /* Case folding maps ß to ss. */
    expect_profile("down the STRASSE we go", &u, "last name");
    rs_user_release(&u);

    /* A password typed full-width is caught after normalisation. */
    user_fill(&u);
    struct rs_error e;
    rs_error_init(&e);
    char *norm = NULL;
    /* "ＪＳＭＩＴＨ９９" then "-rocks-hard" */
    assert_int_equal(rs_password_normalize("\xef\xbc\xaa\xef\xbc\xb3\xef\xbc\xad\xef\xbc\xa9"
                                           "\xef\xbc\xb4\xef\xbc\xa8\xef\xbc\x99\xef\xbc\x99"
                                           "-rocks-hard",
                                           "password", &norm, &e),
                     0);
    expect_profile(norm, &u, "username");
    free(norm);
    rs_user_release(&u);
}

static void profile_short_parts_ignored(void **state)
{
    (void)state;
    struct rs_user u;
    rs_user_init(&u);
    u.username = rs_xstrdup("bob");
    u.email = rs_xstrdup("al@example.com");
    u.first_name = rs_xstrdup("Ann");
    u.last_name = rs_xstrdup("Li");
    u.employee_id = rs_xstrdup("007");
    struct rs_password_policy p;
    rs_password_policy_defaults(&p);
    expect_ok(&p, "bob al ann li 007 fine", &u);
    /* Three characters of two bytes each are still three characters. */
    free(u.first_name);
    u.first_name = rs_xstrdup("\xc3\x89v\xc3\xa9"); /* Évé */
    expect_ok(&p, "\xc3\xa9v\xc3\xa9 is short here", &u);
    /* At four characters the rule applies. */
    free(u.first_name);
    u.first_name = rs_xstrdup("Anna");
    expect_profile("hello anna my dear", &u, "first name");
    rs_user_release(&u);
}

static void profile_off_and_null_user(void **state)
{
    (void)state;
    struct rs_user u;
    user_fill(&u);
    struct rs_password_policy p;
    rs_password_policy_defaults(&p);
    expect_ok(&p, "my-jsmith99-is-long", NULL);
    p.profile_words = false;
    expect_ok(&p, "my-jsmith99-is-long", &u);
    /* A user with no profile strings at all. */
    struct rs_user empty;
    rs_user_init(&empty);
    p.profile_words = true;
    expect_ok(&p, "nothing to compare", &empty);
    rs_user_release(&u);
}

static void short_and_profile_both_reported(void **state)
{
    (void)state;
    struct rs_user u;
    user_fill(&u);
    struct rs_password_policy p;
    rs_password_policy_defaults(&p);
    struct rs_error e;
    assert_int_equal(check(&p, "jsmith99!", &u, &e), -RS_EVALIDATION);
    assert_int_equal(e.nfields, 2);
    assert_string_equal(e.fields[0].rule, "min_length");
    assert_string_equal(e.fields[1].rule, "profile_words");
    rs_user_release(&u);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(defaults),
        cmocka_unit_test(normalize_plain_ascii_unchanged),
        cmocka_unit_test(normalize_full_width),
        cmocka_unit_test(normalize_compatibility),
        cmocka_unit_test(normalize_invalid_utf8),
        cmocka_unit_test(normalize_null_is_required),
        cmocka_unit_test(min_length_in_code_points),
        cmocka_unit_test(max_length_in_code_points),
        cmocka_unit_test(check_refuses_invalid_utf8),
        cmocka_unit_test(profile_each_part),
        cmocka_unit_test(profile_unicode_case_fold),
        cmocka_unit_test(profile_short_parts_ignored),
        cmocka_unit_test(profile_off_and_null_user),
        cmocka_unit_test(short_and_profile_both_reported),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
