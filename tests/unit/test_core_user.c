/* test_core_user.c: unit tests for the user record's rules (src/core/user.h):
 * validation, normalisation, uniqueness keys, sort lists and cursors. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>
#include <utf8proc.h>

#include "src/core/b64.h"
#include "src/core/user.h"
#include "src/core/user_json.h"

/* ---- helpers ------------------------------------------------------------ */

static char *dup_opt(const char *s)
{
    return s ? rs_xstrdup(s) : NULL;
}

static char **field_slot(struct rs_user *u, unsigned bit)
{
    switch (bit) {
    case RS_UF_USERNAME:
        return &u->username;
    case RS_UF_EMAIL:
        return &u->email;
    case RS_UF_FIRST_NAME:
        return &u->first_name;
    default:
        return &u->last_name;
    }
}

static void user_fill(struct rs_user *u, const char *username, const char *email, const char *first,
                      const char *last)
{
    rs_user_init(u);
    u->username = dup_opt(username);
    u->email = dup_opt(email);
    u->first_name = dup_opt(first);
    u->last_name = dup_opt(last);
}

/* Validates a user carrying only the field `bit`, set to value (a patch). */
static int check_one(unsigned bit, const char *value, struct rs_error *err)
{
    struct rs_user u;
    rs_user_init(&u);
    *field_slot(&u, bit) = dup_opt(value);
    rs_error_init(err);
    int r = rs_user_validate(&u, bit, 0, err);
    rs_user_release(&u);
    return r;
}

static void expect_valid(unsigned bit, const char *value)
{
    struct rs_error e;
    int r = check_one(bit, value, &e);
    if (r != 0 || e.nfields != 0 || e.code != RS_OK)
        fail_msg("\"%s\" refused: r=%d %s/%s: %s", value, r, e.fields[0].field, e.fields[0].rule,
                 e.message);
}

static void expect_invalid(unsigned bit, const char *value, const char *field, const char *rule)
{
    struct rs_error e;
    int r = check_one(bit, value, &e);
    if (r != -RS_EVALIDATION || e.code != RS_EVALIDATION || e.nfields != 1 ||
        strcmp(e.fields[0].field, field) != 0 || strcmp(e.fields[0].rule, rule) != 0)
        fail_msg("\"%s\": r=%d nfields=%d got %s/%s, want %s/%s", value, r, e.nfields,
                 e.fields[0].field, e.fields[0].rule, field, rule);
    if (strcmp(e.message, e.fields[0].message) != 0)
        fail_msg("\"%s\": top message \"%s\" is not the field's \"%s\"", value, e.message,
                 e.fields[0].message);
}

static const struct rs_field_error *find_field(const struct rs_error *e, const char *field)
{
    for (int i = 0; i < e->nfields; i++) {
        if (strcmp(e->fields[i].field, field) == 0)
            return &e->fields[i];
    }
    return NULL;
}

static char *repeat(const char *unit, int n)
{
    size_t ul = strlen(unit);
    char *s = rs_xmalloc(ul * (size_t)n + 1);
    for (int i = 0; i < n; i++)
        memcpy(s + ul * (size_t)i, unit, ul);
    s[ul * (size_t)n] = '\0';
    return s;
}

/* ---- rs_user_validate: required fields ---------------------------------- */

static void validate_full_create_passes(void **state)
{
    struct rs_user u;
    struct rs_error e;
    user_fill(&u, "jsmith", "j@example.com", "John", "Smith");
    u.type = RS_USER_ADMIN;
    rs_error_init(&e);
    assert_int_equal(
        rs_user_validate(&u, RS_UF_REQUIRED_ON_CREATE | RS_UF_TYPE, RS_UF_REQUIRED_ON_CREATE, &e),
        0);
    assert_int_equal(e.nfields, 0);
    assert_int_equal(e.code, RS_OK);
    assert_string_equal(e.message, "");
    rs_user_release(&u);
}

static void validate_create_requires_each_field(void **state)
{
    static const struct {
        unsigned bit;
        const char *name;
    } fields[] = {{RS_UF_USERNAME, "username"},
                  {RS_UF_EMAIL, "email"},
                  {RS_UF_FIRST_NAME, "first_name"},
                  {RS_UF_LAST_NAME, "last_name"}};
    for (size_t i = 0; i < RS_ARRAY_LEN(fields); i++) {
        struct rs_user u;
        struct rs_error e;
        user_fill(&u, "jsmith", "j@example.com", "John", "Smith");
        rs_error_init(&e);
        /* Absent from the body: the bit is missing from the mask. */
        unsigned mask = RS_UF_REQUIRED_ON_CREATE & ~fields[i].bit;
        assert_int_equal(rs_user_validate(&u, mask, RS_UF_REQUIRED_ON_CREATE, &e), -RS_EVALIDATION);
        assert_int_equal(e.code, RS_EVALIDATION);
        assert_int_equal(e.nfields, 1);
        assert_string_equal(e.fields[0].field, fields[i].name);
        assert_string_equal(e.fields[0].rule, "required");
        /* Present but null. */
        rs_error_init(&e);
        char **slot = field_slot(&u, fields[i].bit);
        free(*slot);
        *slot = NULL;
        assert_int_equal(
            rs_user_validate(&u, RS_UF_REQUIRED_ON_CREATE, RS_UF_REQUIRED_ON_CREATE, &e),
            -RS_EVALIDATION);
        assert_int_equal(e.nfields, 1);
        assert_string_equal(e.fields[0].field, fields[i].name);
        assert_string_equal(e.fields[0].rule, "required");
        rs_user_release(&u);
    }
}

static void validate_empty_create_reports_every_field(void **state)
{
    struct rs_user u;
    struct rs_error e;
    rs_user_init(&u);
    rs_error_init(&e);
    assert_int_equal(rs_user_validate(&u, 0, RS_UF_REQUIRED_ON_CREATE, &e), -RS_EVALIDATION);
    assert_int_equal(e.nfields, 4);
    assert_string_equal(e.fields[0].field, "username");
    assert_string_equal(e.fields[1].field, "email");
    assert_string_equal(e.fields[2].field, "first_name");
    assert_string_equal(e.fields[3].field, "last_name");
    for (int i = 0; i < 4; i++)
        assert_string_equal(e.fields[i].rule, "required");
    assert_string_equal(e.message, e.fields[0].message);
}

static void validate_patch_null_field_refused(void **state)
{
    struct rs_user u;
    struct rs_error e;
    user_fill(&u, "jsmith", NULL, NULL, "Smith");
    rs_error_init(&e);
    assert_int_equal(rs_user_validate(&u, RS_UF_FIRST_NAME, 0, &e), -RS_EVALIDATION);
    assert_int_equal(e.nfields, 1);
    assert_string_equal(e.fields[0].field, "first_name");
    assert_string_equal(e.fields[0].rule, "required");
    assert_non_null(strstr(e.fields[0].message, "null"));
    rs_user_release(&u);
}

static void validate_patch_checks_only_masked_fields(void **state)
{
    struct rs_user u;
    struct rs_error e;
    /* Everything but the email is invalid, and only the email is in the patch. */
    user_fill(&u, "x", "j@example.com", "", NULL);
    rs_error_init(&e);
    assert_int_equal(rs_user_validate(&u, RS_UF_EMAIL, 0, &e), 0);
    assert_int_equal(e.nfields, 0);
    rs_error_init(&e);
    assert_int_equal(rs_user_validate(&u, RS_UF_EMAIL | RS_UF_USERNAME, 0, &e), -RS_EVALIDATION);
    assert_int_equal(e.nfields, 1);
    assert_string_equal(e.fields[0].field, "username");
    rs_user_release(&u);
}

static void validate_reports_every_fault(void **state)
{
    struct rs_user u;
    struct rs_error e;
    char *long_last = repeat("a", RS_NAME_MAX + 1);
    user_fill(&u, "x", "not-an-address", "", long_last);
    u.type = RS_USER_TYPE_COUNT;
    rs_error_init(&e);
    assert_int_equal(
        rs_user_validate(&u, RS_UF_REQUIRED_ON_CREATE | RS_UF_TYPE, RS_UF_REQUIRED_ON_CREATE, &e),
        -RS_EVALIDATION);
    assert_int_equal(e.nfields, 5);
    assert_string_equal(find_field(&e, "username")->rule, "min_length");
    assert_string_equal(find_field(&e, "email")->rule, "format");
    assert_string_equal(find_field(&e, "first_name")->rule, "required");
    assert_string_equal(find_field(&e, "last_name")->rule, "max_length");
    assert_string_equal(find_field(&e, "type")->rule, "enum");
    assert_string_equal(e.message, e.fields[0].message);
    free(long_last);
    rs_user_release(&u);
}

static void validate_type(void **state)
{
    for (int t = 0; t < RS_USER_TYPE_COUNT; t++) {
        struct rs_user u;
        struct rs_error e;
        rs_user_init(&u);
        u.type = (enum rs_user_type)t;
        rs_error_init(&e);
        assert_int_equal(rs_user_validate(&u, RS_UF_TYPE, 0, &e), 0);
    }
    struct rs_user u;
    struct rs_error e;
    rs_user_init(&u);
    u.type = (enum rs_user_type)99;
    rs_error_init(&e);
    assert_int_equal(rs_user_validate(&u, RS_UF_TYPE, 0, &e), -RS_EVALIDATION);
    assert_int_equal(e.nfields, 1);
    assert_string_equal(e.fields[0].field, "type");
    assert_string_equal(e.fields[0].rule, "enum");
    /* Not in the mask: not checked. */
    rs_error_init(&e);
    assert_int_equal(rs_user_validate(&u, 0, 0, &e), 0);
}

/* ---- rs_user_validate: username ----------------------------------------- */

static void validate_username_length_in_code_points(void **state)
{
    expect_invalid(RS_UF_USERNAME, "", "username", "min_length");
    expect_invalid(RS_UF_USERNAME, "a", "username", "min_length");
    expect_invalid(RS_UF_USERNAME, "Å", "username", "min_length"); /* 1 code point, 2 bytes */
    expect_valid(RS_UF_USERNAME, "ab");
    expect_valid(RS_UF_USERNAME, "Ås");
    expect_valid(RS_UF_USERNAME, "Åsa");

    char *s = repeat("a", RS_USERNAME_MAX);
    expect_valid(RS_UF_USERNAME, s);
    free(s);
    s = repeat("a", RS_USERNAME_MAX + 1);
    expect_invalid(RS_UF_USERNAME, s, "username", "max_length");
    free(s);
    /* 64 two-byte and three-byte characters are 128 and 192 bytes, still 64 characters. */
    s = repeat("å", RS_USERNAME_MAX);
    expect_valid(RS_UF_USERNAME, s);
    free(s);
    s = repeat("用", RS_USERNAME_MAX);
    expect_valid(RS_UF_USERNAME, s);
    free(s);
    s = repeat("å", RS_USERNAME_MAX + 1);
    expect_invalid(RS_UF_USERNAME, s, "username", "max_length");
    free(s);
}

static void validate_username_characters(void **state)
{
    /* Letters of any script and digits (U+0663 is an Arabic-Indic digit three). */
    static const char *const ok[] = {
        "jsmith",   "j.smith", "j_smith", "j-smith", "a.b_c-d", "user1",    "1user",
        "42",       "JSmith",  "Åsa",     "Zoë",     "Ωμέγα",   "Борис",    "用户名",
        "\u0663ab", "ab.",     "ab-",     "ab_",     "a..b",    "ab\u0301",
    };
    /* The start rule (a combining mark is not a letter either), punctuation,
     * U+200B zero width space (Cf), an emoji (So) and U+00A0 no-break space (Zs). */
    static const char *const bad[] = {
        "_ab", ".ab", "-ab", "a b",      "a@b",          "a+b",      "a/b",      "ab!",
        "a'b", "a,b", "a:b", "a\u200bb", "ab\U0001f600", "\u00a0ab", "\u0301ab",
    };
    for (size_t i = 0; i < RS_ARRAY_LEN(ok); i++)
        expect_valid(RS_UF_USERNAME, ok[i]);
    for (size_t i = 0; i < RS_ARRAY_LEN(bad); i++)
        expect_invalid(RS_UF_USERNAME, bad[i], "username", "characters");
}

static void validate_username_controls_and_encoding(void **state)
{
    expect_invalid(RS_UF_USERNAME, "a\tb", "username", "characters");
    expect_invalid(RS_UF_USERNAME, "ab\177", "username", "characters");
    expect_invalid(RS_UF_USERNAME, "ab\xff", "username", "encoding");
    expect_invalid(RS_UF_USERNAME, "ab\xc3", "username", "encoding");
}

/* ---- rs_user_validate: email -------------------------------------------- */

static void validate_email_valid(void **state)
{
    static const char *const ok[] = {
        "j@example.com",         "first.last+tag@sub.example.co.uk",
        "o'brien@example.ie",    "a@b.c",
        "x_y-z@ex-ample.org",    "user@bücher.de", /* IDN domain in UTF-8 */
        "user@xn--bcher-kva.de",                   /* the same domain as an A-label */
        "用户@例子.中国",                          /* RFC 6531 local part and domain */
        "åsa@exämple.se",        "1234567890@123.example",
    };
    for (size_t i = 0; i < RS_ARRAY_LEN(ok); i++)
        expect_valid(RS_UF_EMAIL, ok[i]);
}

static void validate_email_invalid(void **state)
{
    static const char *const bad[] = {
        "plain",
        "@example.com",
        "j@",
        "j@example", /* no dot */
        ".j@example.com",
        "j.@example.com",
        "j..k@example.com",
        "j@example..com",
        "j@.example.com",
        "j@-example.com",
        "j@example-.com",
        "j@example.com-",
        "j@exa_mple.com",
        "j@exa mple.com",
        "j k@example.com",
        "j\t@example.com",
        "j\177@example.com",
        "j(k)@example.com",
        "j<k>@example.com",
        "j,k@example.com",
        "j;k@example.com",
        "j:k@example.com",
        "j\\k@example.com",
        "\"j\"@example.com",
        "j@[127.0.0.1]",
        "j@k@example.com",
        "j@localhost.", /* one label and a trailing dot */
        "j@example.com.",
        "j\302\205@example.com", /* U+0085 NEL */
        "j\u00a0k@example.com",  /* no-break space */
        "j\u200b@example.com",   /* zero width space */
        "j@example.com\u2028",   /* line separator */
        "j\xff@example.com",     /* invalid UTF-8 */
        "j@ex\xc3.com",
    };
    for (size_t i = 0; i < RS_ARRAY_LEN(bad); i++)
        expect_invalid(RS_UF_EMAIL, bad[i], "email", "format");
    expect_invalid(RS_UF_EMAIL, "", "email", "required");
}

static void validate_email_lengths(void **state)
{
    char buf[400];
    /* Local part: 64 bytes allowed, 65 refused. */
    char *local = repeat("a", 64);
    snprintf(buf, sizeof(buf), "%s@example.com", local);
    expect_valid(RS_UF_EMAIL, buf);
    snprintf(buf, sizeof(buf), "%sa@example.com", local);
    expect_invalid(RS_UF_EMAIL, buf, "email", "format");
    /* Domain label: 63 bytes allowed, 64 refused. */
    char *label = repeat("b", 63);
    snprintf(buf, sizeof(buf), "j@%s.com", label);
    expect_valid(RS_UF_EMAIL, buf);
    snprintf(buf, sizeof(buf), "j@%sb.com", label);
    expect_invalid(RS_UF_EMAIL, buf, "email", "format");
    /* Whole address: 254 bytes allowed (64 + 1 + 63.63.61), 255 refused. */
    char *last = repeat("c", 61);
    snprintf(buf, sizeof(buf), "%s@%s.%s.%s", local, label, label, last);
    assert_int_equal(strlen(buf), RS_EMAIL_MAX);
    expect_valid(RS_UF_EMAIL, buf);
    snprintf(buf, sizeof(buf), "%s@%s.%s.%sc", local, label, label, last);
    assert_int_equal(strlen(buf), RS_EMAIL_MAX + 1);
    expect_invalid(RS_UF_EMAIL, buf, "email", "max_length");
    free(local);
    free(label);
    free(last);
}

/* ---- rs_user_validate: names -------------------------------------------- */

static void validate_names(void **state)
{
    static const unsigned bits[] = {RS_UF_FIRST_NAME, RS_UF_LAST_NAME};
    static const char *const names[] = {"first_name", "last_name"};
    static const char *const ok[] = {"John",       "Zoë",          "O'Brien", "Jean-Luc",
                                     "María José", "van der Berg", "李",      "X"};
    /* ASCII controls, U+0085 NEL (Cc), U+2028 and U+2029 (Zl, Zp). */
    static const char *const controls[] = {
        "Bo\tb", "Bo\nb", "Bo\rb", "Bo\x01", "Bo\177b", "Bo\302\205b", "Bo\u2028b", "Bo\u2029b",
    };
    for (size_t f = 0; f < RS_ARRAY_LEN(bits); f++) {
        for (size_t i = 0; i < RS_ARRAY_LEN(ok); i++)
            expect_valid(bits[f], ok[i]);
        for (size_t i = 0; i < RS_ARRAY_LEN(controls); i++)
            expect_invalid(bits[f], controls[i], names[f], "characters");
        expect_invalid(bits[f], "", names[f], "required");
        expect_invalid(bits[f], "Bo\xff", names[f], "encoding");
        char *s = repeat("é", RS_NAME_MAX);
        expect_valid(bits[f], s);
        free(s);
        s = repeat("a", RS_NAME_MAX + 1);
        expect_invalid(bits[f], s, names[f], "max_length");
        free(s);
    }
}

/* ---- rs_user_normalize --------------------------------------------------- */

static void normalize_nfc_and_trim(void **state)
{
    struct rs_user u;
    struct rs_error e;
    user_fill(&u, "A\u030asa", "  j@example.com\t", " Jose\u0301 ", "\n Smith \r\n");
    rs_error_init(&e);
    assert_int_equal(rs_user_normalize(&u, RS_UF_REQUIRED_ON_CREATE, &e), 0);
    assert_int_equal(e.nfields, 0);
    assert_string_equal(u.username, "\u00c5sa"); /* precomposed Å */
    assert_string_equal(u.email, "j@example.com");
    assert_string_equal(u.first_name, "Jos\u00e9");
    assert_string_equal(u.last_name, "Smith");
    rs_user_release(&u);
}

static void normalize_keeps_inner_space_and_compat_chars(void **state)
{
    struct rs_user u;
    struct rs_error e;
    /* NFC, not NFKC: the ligature stays; inner spaces stay. */
    user_fill(&u, "\ufb01le", NULL, "Mary  Ann", NULL);
    rs_error_init(&e);
    assert_int_equal(rs_user_normalize(&u, RS_UF_USERNAME | RS_UF_FIRST_NAME, &e), 0);
    assert_string_equal(u.username, "\ufb01le");
    assert_string_equal(u.first_name, "Mary  Ann");
    rs_user_release(&u);
}

static void normalize_only_masked_fields(void **state)
{
    struct rs_user u;
    struct rs_error e;
    user_fill(&u, " a ", " b@example.com ", NULL, " c ");
    rs_error_init(&e);
    /* first_name is NULL and in the mask: stays NULL, no error. */
    assert_int_equal(rs_user_normalize(&u, RS_UF_EMAIL | RS_UF_FIRST_NAME, &e), 0);
    assert_string_equal(u.username, " a ");
    assert_string_equal(u.email, "b@example.com");
    assert_null(u.first_name);
    assert_string_equal(u.last_name, " c ");
    rs_user_release(&u);
}

static void normalize_refuses_invalid_utf8(void **state)
{
    struct rs_user u;
    struct rs_error e;
    user_fill(&u, "ab\xff", "ok@example.com", "\xc3", " Smith ");
    rs_error_init(&e);
    assert_int_equal(rs_user_normalize(&u, RS_UF_REQUIRED_ON_CREATE, &e), -RS_EVALIDATION);
    assert_int_equal(e.code, RS_EVALIDATION);
    assert_int_equal(e.nfields, 2);
    assert_string_equal(e.fields[0].field, "username");
    assert_string_equal(e.fields[0].rule, "encoding");
    assert_string_equal(e.fields[1].field, "first_name");
    assert_string_equal(e.fields[1].rule, "encoding");
    /* Valid fields are still normalised. */
    assert_string_equal(u.last_name, "Smith");
    rs_user_release(&u);
}

static void normalize_then_validate(void **state)
{
    struct rs_user u;
    struct rs_error e;
    /* "A" + combining ring is two code points before NFC, one after. */
    user_fill(&u, "A\u030a", NULL, "   ", NULL);
    rs_error_init(&e);
    assert_int_equal(rs_user_normalize(&u, RS_UF_USERNAME | RS_UF_FIRST_NAME, &e), 0);
    assert_string_equal(u.first_name, "");
    assert_int_equal(rs_user_validate(&u, RS_UF_USERNAME | RS_UF_FIRST_NAME, 0, &e),
                     -RS_EVALIDATION);
    assert_int_equal(e.nfields, 2);
    assert_string_equal(find_field(&e, "username")->rule, "min_length");
    assert_string_equal(find_field(&e, "first_name")->rule, "required");
    rs_user_release(&u);

    /* Leading and trailing tabs are trimmed, so they are no longer control characters. */
    user_fill(&u, NULL, NULL, "\tJohn\t", NULL);
    rs_error_init(&e);
    assert_int_equal(rs_user_normalize(&u, RS_UF_FIRST_NAME, &e), 0);
    assert_int_equal(rs_user_validate(&u, RS_UF_FIRST_NAME, 0, &e), 0);
    assert_string_equal(u.first_name, "John");
    rs_user_release(&u);
}

/* ---- rs_fold_key ---------------------------------------------------------- */

static void assert_fold(const char *in, const char *want)
{
    char *k = rs_fold_key(in);
    if (!k)
        fail_msg("fold(\"%s\") is NULL", in);
    if (strcmp(k, want) != 0)
        fail_msg("fold(\"%s\") = \"%s\", want \"%s\"", in, k, want);
    free(k);
}

static void fold_key_case_and_normalisation(void **state)
{
    assert_fold("ÅSA", "åsa");
    assert_fold("åsa", "åsa");
    assert_fold("A\u030asa", "åsa");
    assert_fold("a\u030aSA", "åsa");
    assert_fold("JSmith", "jsmith");
    assert_fold("J@Example.COM", "j@example.com");
    /* Full case folding: sharp s folds to "ss", as does capital sharp s. */
    assert_fold("ß", "ss");
    assert_fold("SS", "ss");
    assert_fold("ẞ", "ss");
    assert_fold("Straße", "strasse");
    assert_fold("STRASSE", "strasse");
    /* Compatibility forms. */
    assert_fold("\ufb01le", "file"); /* U+FB01 ligature */
    assert_fold("\uff21b", "ab");    /* fullwidth A */
    assert_fold("", "");
}

static void fold_key_distinguishes_and_refuses(void **state)
{
    char *a = rs_fold_key("asa");
    char *b = rs_fold_key("åsa");
    assert_non_null(a);
    assert_non_null(b);
    assert_string_not_equal(a, b);
    free(a);
    free(b);
    assert_null(rs_fold_key("ab\xff"));
    assert_null(rs_fold_key("\xc3"));
}

/* rs_fold_key and the NFC of rs_text_clean skip utf8proc for ASCII and
 * decompose once into a stack buffer otherwise: both must give exactly what
 * utf8proc_map gives. */
static char *reference_map(const char *s, utf8proc_option_t opts)
{
    utf8proc_uint8_t *out = NULL;
    if (utf8proc_map((const utf8proc_uint8_t *)s, 0, &out, opts) < 0)
        return NULL;
    return (char *)out;
}

static const utf8proc_option_t fold_opts = UTF8PROC_NULLTERM | UTF8PROC_STABLE | UTF8PROC_COMPOSE |
                                           UTF8PROC_COMPAT | UTF8PROC_CASEFOLD | UTF8PROC_IGNORE;
static const utf8proc_option_t nfc_opts = UTF8PROC_NULLTERM | UTF8PROC_STABLE | UTF8PROC_COMPOSE;

static void assert_maps_like_utf8proc(const char *s)
{
    char *want = reference_map(s, fold_opts);
    char *got = rs_fold_key(s);
    assert_non_null(want);
    assert_non_null(got);
    assert_string_equal(got, want);
    free(want);
    free(got);
    /* rs_text_clean trims too; the inputs here have no white space at
     * either end and are not blank. */
    want = reference_map(s, nfc_opts);
    got = rs_text_clean(s);
    assert_non_null(want);
    assert_non_null(got);
    assert_string_equal(got, want);
    free(want);
    free(got);
}

static void fold_and_nfc_match_utf8proc(void **state)
{
    char one[4] = {0};
    for (int c = 1; c < 128; c++) {
        if (c == ' ' || (c >= 0x09 && c <= 0x0d))
            continue; /* trimmed away by rs_text_clean */
        one[0] = (char)c;
        one[1] = 'x';
        assert_maps_like_utf8proc(one);
    }
    static const char *const samples[] = {"Anna.Smith-abc1-1",
                                          "c.abc1-1@bench.example.com",
                                          "Åsa.Öberg-Q1",
                                          "Łukasz Dvořák",
                                          "Γιώργος.Παπαδόπουλος",
                                          "Ольга Смирнов",
                                          "Søren Ødegård Straße",
                                          "A\u030asa",
                                          "e\u0301\u0323x",
                                          "\ufb01le \uff21b",
                                          "ẞ İstanbul ǅ",
                                          "x\u00ad\u200by",
                                          "한국어 \u1100\u1161\u11a8",
                                          "用户名 \U0001f600",
                                          "\u1e9b\u0323"};
    for (size_t i = 0; i < sizeof(samples) / sizeof(samples[0]); i++)
        assert_maps_like_utf8proc(samples[i]);
    /* Longer than the stack buffer (512 code points; ß folds to two). */
    char *lng = rs_xmalloc(2000 * 2 + 3);
    size_t n = 0;
    lng[n++] = 'x';
    for (int i = 0; i < 2000; i++) {
        memcpy(lng + n, "ß", 2);
        n += 2;
    }
    lng[n++] = 'y';
    lng[n] = '\0';
    assert_maps_like_utf8proc(lng);
    lng[601] = '\0'; /* x and 300 ß: 601 code points folded, 301 in NFC */
    assert_maps_like_utf8proc(lng);
    lng[401] = '\0'; /* x and 200 ß: 401 folded, within the stack buffer */
    assert_maps_like_utf8proc(lng);
    free(lng);
}

/* The search key from folded parts is the fold of the joined string, also
 * where a part starts with a combining mark, ends on a starter that could
 * compose, is Hangul jamo, a compatibility character that decomposes to a
 * space and a mark, default-ignorable, or empty. */
static void search_key_is_fold_of_joined(void **state)
{
    static const char *const parts[] = {
        "Anna",       "ÅSA",          "\u0301x", "\u0308\u0323", "A",      "e\u0301",
        "\u1100",     "\u1161\u11a8", "\u00a8",  "\u00b4z",      "\u00ad", "\u200b",
        "",           "Straße",       "İ",       "\ufb01",       "\uff21", "Γιώργος",
        "Ολγα\u0342", "한",           "\u0b47",  "\u0b3e",       "x\u0345"};
    size_t n = sizeof(parts) / sizeof(parts[0]);
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < n; j++) {
            struct rs_user u;
            rs_user_init(&u);
            u.username = rs_xstrdup(parts[i]);
            u.email = rs_xstrdup(parts[j]);
            u.first_name = rs_xstrdup(parts[(i + j) % n]);
            u.last_name = rs_xstrdup(parts[(i * 7 + j) % n]);
            u.employee_id = rs_xstrdup(parts[(j * 3 + i) % n]);
            char *joined = rs_xasprintf("%s %s %s %s %s", u.username, u.email, u.first_name,
                                        u.last_name, u.employee_id);
            char *want = rs_fold_key(joined);
            char *uk = rs_fold_key(u.username), *ek = rs_fold_key(u.email);
            char *ik = rs_fold_key(u.employee_id);
            char *got = rs_user_search_key(&u, uk, ek, ik);
            assert_non_null(want);
            assert_non_null(got);
            if (strcmp(got, want) != 0)
                fail_msg("search key of \"%s\": \"%s\", want \"%s\"", joined, got, want);
            free(joined);
            free(want);
            free(uk);
            free(ek);
            free(ik);
            free(got);
            rs_user_release(&u);
        }
    }
    struct rs_user u;
    rs_user_init(&u);
    u.first_name = rs_xstrdup("\xc3");
    u.last_name = rs_xstrdup("x");
    assert_null(rs_user_search_key(&u, "a", "b", ""));
    rs_user_release(&u);
}

/* ---- rs_utf8_length ------------------------------------------------------ */

static void utf8_length(void **state)
{
    assert_int_equal(rs_utf8_length("", 0), 0);
    assert_int_equal(rs_utf8_length("abc", 3), 3);
    assert_int_equal(rs_utf8_length("abc", 2), 2);
    assert_int_equal(rs_utf8_length("Åsa", strlen("Åsa")), 3);
    assert_int_equal(rs_utf8_length("A\u030asa", 5), 4);
    assert_int_equal(rs_utf8_length("用户名", 9), 3);
    assert_int_equal(rs_utf8_length("\U0001f600", 4), 1);
    assert_int_equal(rs_utf8_length("\xf4\x8f\xbf\xbf", 4), 1); /* U+10FFFF */
}

static void utf8_length_invalid(void **state)
{
    /* Stray bytes, truncated sequences, overlong forms, a surrogate, past U+10FFFF. */
    static const char *const bad[] = {
        "\xff",
        "\x80",
        "\xc3",
        "\xc3(",
        "\xe2\x82",
        "\xc0\x80",
        "\xc1\xbf",
        "\xe0\x80\x80",
        "\xed\xa0\x80",
        "\xf4\x90\x80\x80",
        "\xf5\x80\x80\x80",
    };
    for (size_t i = 0; i < RS_ARRAY_LEN(bad); i++) {
        long n = rs_utf8_length(bad[i], strlen(bad[i]));
        if (n != -1)
            fail_msg("case %zu: length %ld, want -1", i, n);
    }
    /* A valid prefix cut inside a character is invalid. */
    assert_int_equal(rs_utf8_length("Å", 1), -1);
}

/* ---- types and statuses ------------------------------------------------- */

static void type_and_status_names(void **state)
{
    static const char *const types[] = {"standard", "admin", "api", "guest"};
    static const char *const statuses[] = {"active", "inactive", "locked", "pending"};
    for (int i = 0; i < RS_USER_TYPE_COUNT; i++) {
        enum rs_user_type t = RS_USER_TYPE_COUNT;
        assert_string_equal(rs_user_type_name((enum rs_user_type)i), types[i]);
        assert_int_equal(rs_user_type_parse(types[i], &t), 0);
        assert_int_equal(t, i);
    }
    for (int i = 0; i < RS_STATUS_COUNT; i++) {
        enum rs_user_status s = RS_STATUS_COUNT;
        assert_string_equal(rs_user_status_name((enum rs_user_status)i), statuses[i]);
        assert_int_equal(rs_user_status_parse(statuses[i], &s), 0);
        assert_int_equal(s, i);
    }
    enum rs_user_type t = RS_USER_GUEST;
    assert_int_equal(rs_user_type_parse("Admin", &t), -1);
    assert_int_equal(rs_user_type_parse("", &t), -1);
    assert_int_equal(t, RS_USER_GUEST);
    enum rs_user_status s = RS_STATUS_LOCKED;
    assert_int_equal(rs_user_status_parse("deleted", &s), -1);
    assert_int_equal(s, RS_STATUS_LOCKED);
}

static void copy_and_apply(void **state)
{
    struct rs_user a, b, c;
    user_fill(&a, "jsmith", "j@example.com", "John", "Smith");
    a.id = 7;
    a.version = 3;
    rs_user_copy(&b, &a);
    assert_int_equal(b.id, 7);
    assert_int_equal(b.version, 3);
    assert_string_equal(b.username, "jsmith");
    assert_ptr_not_equal(b.username, a.username);
    user_fill(&c, "new", NULL, "Jane", "Doe");
    c.type = RS_USER_ADMIN;
    rs_user_apply(&b, &c, RS_UF_USERNAME | RS_UF_EMAIL | RS_UF_TYPE);
    assert_string_equal(b.username, "new");
    assert_null(b.email);
    assert_string_equal(b.first_name, "John");
    assert_int_equal(b.type, RS_USER_ADMIN);
    rs_user_release(&a);
    rs_user_release(&b);
    rs_user_release(&c);
}

/* ---- rs_sort_parse -------------------------------------------------------- */

static void sort_parse_valid(void **state)
{
    struct rs_user_query q;
    struct rs_error e;
    rs_user_query_init(&q);
    rs_error_init(&e);
    assert_int_equal(rs_sort_parse("last_name,-created_at", &q, &e), 0);
    assert_int_equal(q.nsort, 2);
    assert_int_equal(q.sort[0].field, RS_SORT_LAST_NAME);
    assert_false(q.sort[0].desc);
    assert_int_equal(q.sort[1].field, RS_SORT_CREATED_AT);
    assert_true(q.sort[1].desc);

    assert_int_equal(rs_sort_parse("-username,+email,id", &q, &e), 0);
    assert_int_equal(q.nsort, 3);
    assert_int_equal(q.sort[0].field, RS_SORT_USERNAME);
    assert_true(q.sort[0].desc);
    assert_int_equal(q.sort[1].field, RS_SORT_EMAIL);
    assert_false(q.sort[1].desc);
    assert_int_equal(q.sort[2].field, RS_SORT_ID);
    assert_false(q.sort[2].desc);
    assert_int_equal(e.nfields, 0);

    for (int f = 0; f < RS_SORT_FIELD_COUNT; f++) {
        const char *name = rs_sort_field_name((enum rs_user_sort_field)f);
        assert_int_equal(rs_sort_parse(name, &q, &e), 0);
        assert_int_equal(q.nsort, 1);
        assert_int_equal(q.sort[0].field, f);
    }
    assert_string_equal(rs_sort_field_name(RS_SORT_UPDATED_AT), "updated_at");

    assert_int_equal(rs_sort_parse("", &q, &e), 0);
    assert_int_equal(q.nsort, 0);
    rs_user_query_release(&q);
}

static void expect_sort_error(const char *s, const char *rule)
{
    struct rs_user_query q;
    struct rs_error e;
    rs_user_query_init(&q);
    q.nsort = 1;
    q.sort[0].field = RS_SORT_EMAIL;
    q.sort[0].desc = true;
    rs_error_init(&e);
    int r = rs_sort_parse(s, &q, &e);
    if (r != -RS_EBADREQUEST || e.code != RS_EBADREQUEST || e.nfields != 1 ||
        strcmp(e.fields[0].field, "sort") != 0 || strcmp(e.fields[0].rule, rule) != 0)
        fail_msg("sort \"%s\": r=%d %s/%s, want sort/%s", s, r, e.fields[0].field, e.fields[0].rule,
                 rule);
    /* The query is left as it was. */
    if (q.nsort != 1 || q.sort[0].field != RS_SORT_EMAIL || !q.sort[0].desc)
        fail_msg("sort \"%s\": query changed on failure", s);
}

static void sort_parse_errors(void **state)
{
    expect_sort_error("nope", "enum");
    expect_sort_error("Username", "enum");
    expect_sort_error("-", "enum");
    expect_sort_error("--id", "enum");
    expect_sort_error(" id", "enum");
    expect_sort_error("id,,email", "enum");
    expect_sort_error(",id", "enum");
    expect_sort_error("id,", "enum");
    expect_sort_error("username,-email,", "enum");
    expect_sort_error(",", "enum");
    expect_sort_error("id,password", "enum");
    expect_sort_error("username,username", "unique");
    expect_sort_error("username,-username", "unique");
    expect_sort_error("id,username,email,first_name", "max_items");

    struct rs_user_query q;
    struct rs_error e;
    rs_user_query_init(&q);
    rs_error_init(&e);
    assert_int_equal(rs_sort_parse("id,password", &q, &e), -RS_EBADREQUEST);
    assert_non_null(strstr(e.message, "username")); /* lists the allowed fields */
}

/* ---- cursors -------------------------------------------------------------- */

static void query_with_sort(struct rs_user_query *q, const char *sort)
{
    struct rs_error e;
    rs_user_query_init(q);
    rs_error_init(&e);
    assert_int_equal(rs_sort_parse(sort, q, &e), 0);
}

/* The cursor's field separator (ASCII unit separator), for hand-made cursors. */
#define US "\x1f"

static char *encode_raw(const char *raw, size_t len)
{
    return rs_b64url_encode((const unsigned char *)raw, len);
}

static void cursor_round_trip(void **state)
{
    struct rs_user u;
    user_fill(&u, "ÅSA", "a@example.com", "Åsa", "Smith");
    u.id = 42;
    u.created_at = 1700000000123;

    struct rs_user_query q, q2;
    struct rs_error e;
    query_with_sort(&q, "last_name,-created_at");
    char *c = rs_cursor_encode(&q, &u);
    assert_non_null(c);
    assert_int_equal(strspn(c, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
                     strlen(c));

    query_with_sort(&q2, "last_name,-created_at");
    rs_error_init(&e);
    assert_int_equal(rs_cursor_decode(c, &q2, &e), 0);
    assert_true(q2.has_cursor);
    assert_int_equal(q2.cursor.nvalues, 2);
    assert_string_equal(q2.cursor.values[0], "Smith");
    assert_string_equal(q2.cursor.values[1], "1700000000123");
    assert_int_equal(q2.cursor.id, 42);
    free(c);
    rs_user_query_release(&q2);

    /* Username and email sort by their fold keys. */
    query_with_sort(&q, "username,-email");
    c = rs_cursor_encode(&q, &u);
    query_with_sort(&q2, "username,-email");
    assert_int_equal(rs_cursor_decode(c, &q2, &e), 0);
    assert_string_equal(q2.cursor.values[0], "åsa");
    assert_string_equal(q2.cursor.values[1], "a@example.com");
    free(c);
    rs_user_query_release(&q2);

    /* Default order: the id alone. */
    query_with_sort(&q, "");
    c = rs_cursor_encode(&q, &u);
    query_with_sort(&q2, "");
    assert_int_equal(rs_cursor_decode(c, &q2, &e), 0);
    assert_int_equal(q2.cursor.nvalues, 0);
    assert_int_equal(q2.cursor.id, 42);
    assert_int_equal(e.nfields, 0);
    free(c);
    rs_user_query_release(&q2);
    rs_user_query_release(&q);
    rs_user_release(&u);
}

static void cursor_decode_replaces_previous(void **state)
{
    struct rs_user u;
    user_fill(&u, "a1", "a@example.com", "A", "One");
    u.id = 1;
    struct rs_user_query q;
    struct rs_error e;
    query_with_sort(&q, "first_name");
    char *c1 = rs_cursor_encode(&q, &u);
    free(u.first_name);
    u.first_name = rs_xstrdup("B");
    u.id = 2;
    char *c2 = rs_cursor_encode(&q, &u);
    rs_error_init(&e);
    assert_int_equal(rs_cursor_decode(c1, &q, &e), 0);
    assert_int_equal(rs_cursor_decode(c2, &q, &e), 0); /* no leak of the first (ASan) */
    assert_string_equal(q.cursor.values[0], "B");
    assert_int_equal(q.cursor.id, 2);
    /* A refused cursor leaves the accepted one in place. */
    assert_int_equal(rs_cursor_decode("garbage!", &q, &e), -RS_EBADREQUEST);
    assert_true(q.has_cursor);
    assert_string_equal(q.cursor.values[0], "B");
    assert_int_equal(q.cursor.id, 2);
    free(c1);
    free(c2);
    rs_user_query_release(&q);
    rs_user_release(&u);
}

static void expect_cursor_refused(const char *cursor, const char *sort)
{
    struct rs_user_query q;
    struct rs_error e;
    query_with_sort(&q, sort);
    rs_error_init(&e);
    int r = rs_cursor_decode(cursor, &q, &e);
    if (r != -RS_EBADREQUEST || e.code != RS_EBADREQUEST || e.nfields != 1 ||
        strcmp(e.fields[0].field, "cursor") != 0 || strcmp(e.fields[0].rule, "format") != 0)
        fail_msg("cursor \"%s\" for sort \"%s\": r=%d %s/%s", cursor, sort, r, e.fields[0].field,
                 e.fields[0].rule);
    if (q.has_cursor || q.cursor.nvalues != 0)
        fail_msg("cursor \"%s\" for sort \"%s\": query changed on failure", cursor, sort);
    rs_user_query_release(&q);
}

static void expect_raw_cursor_refused(const char *raw, size_t len, const char *sort)
{
    char *c = encode_raw(raw, len);
    expect_cursor_refused(c, sort);
    free(c);
}

static void cursor_refused_for_other_sort(void **state)
{
    struct rs_user u;
    user_fill(&u, "jsmith", "j@example.com", "John", "Smith");
    u.id = 9;
    struct rs_user_query q;
    query_with_sort(&q, "username");
    char *c = rs_cursor_encode(&q, &u);
    expect_cursor_refused(c, "-username");
    expect_cursor_refused(c, "email");
    expect_cursor_refused(c, "");
    expect_cursor_refused(c, "username,id");
    free(c);
    query_with_sort(&q, "username,id");
    c = rs_cursor_encode(&q, &u);
    expect_cursor_refused(c, "username");
    free(c);
    query_with_sort(&q, "");
    c = rs_cursor_encode(&q, &u);
    expect_cursor_refused(c, "id");
    free(c);
    rs_user_query_release(&q);
    rs_user_release(&u);
}

static void cursor_refuses_garbage(void **state)
{
    expect_cursor_refused("", "");
    expect_cursor_refused("!!!!", "");
    expect_cursor_refused("YWJj", ""); /* "abc": no version tag */
    expect_cursor_refused("YzE=", ""); /* padded base64 of "c1" */
    expect_cursor_refused("a+b/", ""); /* standard, not url-safe alphabet */
    expect_cursor_refused("YzEfNDI\n", "");
    expect_cursor_refused("YzEfNDI=", "");

    /* Without the newline or padding, the same text is "c1" US "42": accepted. */
    struct rs_user_query q;
    struct rs_error e;
    query_with_sort(&q, "");
    rs_error_init(&e);
    assert_int_equal(rs_cursor_decode("YzEfNDI", &q, &e), 0);
    assert_int_equal(q.cursor.id, 42);
    rs_user_query_release(&q);

    char *huge = repeat("A", 5000);
    expect_cursor_refused(huge, "");
    free(huge);

    /* A well-formed cursor is refused once its text passes 4096 characters. */
    struct rs_user u;
    char *name = repeat("n", 3000);
    user_fill(&u, "jsmith", "j@example.com", "John", name);
    u.id = 1;
    query_with_sort(&q, "last_name");
    char *c = rs_cursor_encode(&q, &u);
    assert_true(strlen(c) < 4096);
    assert_int_equal(rs_cursor_decode(c, &q, &e), 0);
    assert_string_equal(q.cursor.values[0], name);
    free(c);
    free(u.last_name);
    u.last_name = repeat("n", 3100);
    c = rs_cursor_encode(&q, &u);
    assert_true(strlen(c) > 4096);
    expect_cursor_refused(c, "last_name");
    free(c);
    free(name);
    rs_user_query_release(&q);
    rs_user_release(&u);
}

static void cursor_refuses_tampered_text(void **state)
{
    /* Well-formed raw text is accepted: this proves the encoding the cases below break. */
    static const char good_raw[] = "c1" US "4:0:Smith" US "42";
    char *good = encode_raw(good_raw, strlen(good_raw));
    struct rs_user_query q;
    struct rs_error e;
    query_with_sort(&q, "last_name");
    rs_error_init(&e);
    assert_int_equal(rs_cursor_decode(good, &q, &e), 0);
    assert_string_equal(q.cursor.values[0], "Smith");
    assert_int_equal(q.cursor.id, 42);
    rs_user_query_release(&q);
    free(good);

    static const char *const bad[] = {
        "c2" US "4:0:Smith" US "42",        /* other version */
        "c1" US "3:0:Smith" US "42",        /* other field */
        "c1" US "4:1:Smith" US "42",        /* other direction */
        "c1" US "4:0:Smith" US "42x",       /* id not a number */
        "c1" US "4:0:Smith" US,             /* no id */
        "c1" US "4:0:Smith" US "42" US "7", /* trailing part */
        "c1" US "4:0Smith" US "42",         /* no second colon */
        "c1" US "x:0:Smith" US "42",
        "c1",
    };
    for (size_t i = 0; i < RS_ARRAY_LEN(bad); i++)
        expect_raw_cursor_refused(bad[i], strlen(bad[i]), "last_name");
    /* Integer keys must carry integers. */
    expect_raw_cursor_refused("c1" US "5:0:abc" US "42", 13, "created_at");
    expect_raw_cursor_refused("c1" US "5:0:" US "42", 10, "created_at");
    static const char int_raw[] = "c1" US "5:0:1700000000123" US "42";
    char *ok = encode_raw(int_raw, strlen(int_raw));
    query_with_sort(&q, "created_at");
    assert_int_equal(rs_cursor_decode(ok, &q, &e), 0);
    assert_string_equal(q.cursor.values[0], "1700000000123");
    rs_user_query_release(&q);
    free(ok);
}

/* rs_user_to_json_text writes what json_dumps(rs_user_to_json) would. */
static void expect_same_json(const struct rs_user *u)
{
    json_t *o = rs_user_to_json(u);
    char *want = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    char *got = rs_user_to_json_text(u);
    assert_non_null(want);
    assert_string_equal(got, want);
    free(want);
    free(got);
    json_decref(o);
}

static void expect_same_fields_json(const struct rs_user *u, unsigned mask)
{
    json_t *o = rs_user_fields_to_json(u, mask);
    char *want = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    char *got = rs_user_fields_to_json_text(u, mask);
    assert_non_null(want);
    assert_string_equal(got, want);
    free(want);
    free(got);
    json_decref(o);
}

static void expect_same_json_every_mask(const struct rs_user *u)
{
    expect_same_json(u);
    static const unsigned masks[] = {0,
                                     RS_UF_PROFILE | RS_UF_STATUS,
                                     RS_UF_REQUIRED_ON_CREATE | RS_UF_TYPE,
                                     RS_UF_MANAGER,
                                     RS_UF_CUSTOM | RS_UF_ROLE,
                                     ~0u};
    for (size_t i = 0; i < sizeof(masks) / sizeof(masks[0]); i++)
        expect_same_fields_json(u, masks[i]);
}

static void json_text_matches_jansson(void **state)
{
    struct rs_user u;
    user_fill(&u, "anna", "anna@example.com", "Anna", "Lind");
    u.id = 42;
    u.version = 3;
    expect_same_json_every_mask(&u); /* mostly nulls, no times */
    u.created_at = 1795523391162;
    u.updated_at = 1795523391999;
    u.status_changed_at = 1;
    u.manager_id = 7;
    u.type = RS_USER_ADMIN;
    u.status = RS_STATUS_LOCKED;
    u.phone = strdup("+46 8 123 456");
    u.department = strdup("R&D \"Core\" \\ team");
    u.position = strdup("tab\there, newline\nthere, \r\b\f and \x01\x1f\x7f");
    u.location = strdup("Göteborg / Γιώργος / Иван / 日本 / 😀");
    u.role = strdup("standard_user");
    u.status_reason = strdup("other");
    u.status_note = strdup("</script><b>");
    u.custom = json_pack("{s:s,s:i,s:b,s:n}", "cost_center", "CC-\"9\"", "level", 3, "remote",
                         1, "none");
    expect_same_json_every_mask(&u);
    json_decref(u.custom);
    u.custom = json_object(); /* empty: {} either way */
    expect_same_json_every_mask(&u);
    rs_user_release(&u);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(validate_full_create_passes),
        cmocka_unit_test(json_text_matches_jansson),
        cmocka_unit_test(validate_create_requires_each_field),
        cmocka_unit_test(validate_empty_create_reports_every_field),
        cmocka_unit_test(validate_patch_null_field_refused),
        cmocka_unit_test(validate_patch_checks_only_masked_fields),
        cmocka_unit_test(validate_reports_every_fault),
        cmocka_unit_test(validate_type),
        cmocka_unit_test(validate_username_length_in_code_points),
        cmocka_unit_test(validate_username_characters),
        cmocka_unit_test(validate_username_controls_and_encoding),
        cmocka_unit_test(validate_email_valid),
        cmocka_unit_test(validate_email_invalid),
        cmocka_unit_test(validate_email_lengths),
        cmocka_unit_test(validate_names),
        cmocka_unit_test(normalize_nfc_and_trim),
        cmocka_unit_test(normalize_keeps_inner_space_and_compat_chars),
        cmocka_unit_test(normalize_only_masked_fields),
        cmocka_unit_test(normalize_refuses_invalid_utf8),
        cmocka_unit_test(normalize_then_validate),
        cmocka_unit_test(fold_key_case_and_normalisation),
        cmocka_unit_test(fold_key_distinguishes_and_refuses),
        cmocka_unit_test(fold_and_nfc_match_utf8proc),
        cmocka_unit_test(search_key_is_fold_of_joined),
        cmocka_unit_test(utf8_length),
        cmocka_unit_test(utf8_length_invalid),
        cmocka_unit_test(type_and_status_names),
        cmocka_unit_test(copy_and_apply),
        cmocka_unit_test(sort_parse_valid),
        cmocka_unit_test(sort_parse_errors),
        cmocka_unit_test(cursor_round_trip),
        cmocka_unit_test(cursor_decode_replaces_previous),
        cmocka_unit_test(cursor_refused_for_other_sort),
        cmocka_unit_test(cursor_refuses_garbage),
        cmocka_unit_test(cursor_refuses_tampered_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
