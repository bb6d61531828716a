/* test_core_mail.c: mail templates and messages (src/core/mail.h): rendering,
 * template checks, header injection, RFC 2047 subjects and display names,
 * quoted-printable bodies (decoded back here), RFC 5322 dates. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>
#include <cmocka.h>

#include "src/core/mail.h"

/* --- decoders written here, independent of the encoder --- */

static int b64_val(char c)
{
    const char *tab = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const char *p = strchr(tab, c);
    return c && p ? (int)(p - tab) : -1;
}

/* Appends the decoded base64 of s[0..n) to out; fails the test on bad input. */
static void b64_decode(const char *s, size_t n, char *out, size_t *olen)
{
    assert_int_equal(n % 4, 0);
    for (size_t i = 0; i < n; i += 4) {
        int v[4];
        for (int j = 0; j < 4; j++)
            v[j] = s[i + j] == '=' ? 0 : b64_val(s[i + j]);
        for (int j = 0; j < 4; j++)
            assert_true(v[j] >= 0);
        unsigned w = (unsigned)(v[0] << 18 | v[1] << 12 | v[2] << 6 | v[3]);
        out[(*olen)++] = (char)(w >> 16);
        if (s[i + 2] != '=')
            out[(*olen)++] = (char)(w >> 8);
        if (s[i + 3] != '=')
            out[(*olen)++] = (char)w;
    }
    out[*olen] = '\0';
}

/* The value of header `name` in msg, unfolded (CRLF before WSP removed). */
static char *header_value(const char *msg, const char *name)
{
    size_t nl = strlen(name);
    const char *p = msg;
    for (;;) {
        if (strncmp(p, name, nl) == 0 && p[nl] == ':')
            break;
        p = strstr(p, "\r\n");
        assert_non_null(p);
        p += 2;
        assert_false(p[0] == '\r' && p[1] == '\n'); /* end of headers: not found */
    }
    p += nl + 1;
    while (*p == ' ')
        p++;
    char *v = calloc(strlen(p) + 1, 1);
    size_t n = 0;
    for (;;) {
        const char *e = strstr(p, "\r\n");
        assert_non_null(e);
        memcpy(v + n, p, (size_t)(e - p));
        n += (size_t)(e - p);
        if (e[2] != ' ' && e[2] != '\t')
            break;
        p = e + 2;
    }
    v[n] = '\0';
    return v;
}

/* Decodes a header value made of RFC 2047 B words separated by white space
 * (white space between encoded words is dropped, RFC 2047 section 6.2). */
static char *decode_words(const char *v)
{
    char *out = calloc(strlen(v) + 1, 1);
    size_t olen = 0;
    const char *p = v;
    while (*p) {
        while (*p == ' ')
            p++;
        if (!*p)
            break;
        assert_int_equal(strncmp(p, "=?UTF-8?B?", 10), 0);
        const char *end = strstr(p + 10, "?=");
        assert_non_null(end);
        assert_true(end + 2 - p <= 75); /* RFC 2047: an encoded word is at most 75 characters */
        char word[128];
        size_t wlen = 0;
        b64_decode(p + 10, (size_t)(end - (p + 10)), word, &wlen);
        /* each word holds whole characters */
        assert_true(wlen == 0 || ((unsigned char)word[0] & 0xc0) != 0x80);
        memcpy(out + olen, word, wlen);
        olen += wlen;
        p = end + 2;
    }
    out[olen] = '\0';
    return out;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decodes a quoted-printable body with CRLF lines, checking the line
 * length and that no line ends in white space. */
static char *qp_decode(const char *body)
{
    char *out = calloc(strlen(body) + 1, 1);
    size_t olen = 0;
    const char *p = body;
    while (*p) {
        const char *e = strstr(p, "\r\n");
        assert_non_null(e);
        size_t n = (size_t)(e - p);
        if (n > 76)
            fail_msg("line of %zu characters: %.*s", n, (int)n, p);
        assert_true(memchr(p, '\n', n) == NULL && memchr(p, '\r', n) == NULL);
        if (n > 0)
            assert_true(p[n - 1] != ' ' && p[n - 1] != '\t');
        bool soft = false;
        for (size_t i = 0; i < n; i++) {
            if (p[i] == '=') {
                if (i + 1 == n) {
                    soft = true;
                    break;
                }
                assert_true(i + 2 < n);
                int h = hexval(p[i + 1]), l = hexval(p[i + 2]);
                assert_true(h >= 0 && l >= 0);
                out[olen++] = (char)(h << 4 | l);
                i += 2;
            } else {
                assert_true((p[i] >= 33 && p[i] <= 126) || p[i] == ' ' || p[i] == '\t');
                out[olen++] = p[i];
            }
        }
        if (!soft) {
            out[olen++] = '\r';
            out[olen++] = '\n';
        }
        p = e + 2;
    }
    out[olen] = '\0';
    return out;
}

static char *build_ok(const char *from, const char *to, const char *subject, const char *body)
{
    struct rs_error e;
    rs_error_init(&e);
    char *msg = NULL;
    int r = rs_mail_build(from, to, subject, body, 0, "abc.123@roster.example", &msg, &e);
    if (r != 0)
        fail_msg("build refused: %s", e.message);
    assert_non_null(msg);
    /* every line ends in CRLF: no bare CR or LF anywhere */
    for (const char *p = msg; *p; p++) {
        if (*p == '\n')
            assert_true(p > msg && p[-1] == '\r');
        if (*p == '\r')
            assert_true(p[1] == '\n');
    }
    return msg;
}

static const char *msg_body(const char *msg)
{
    const char *p = strstr(msg, "\r\n\r\n");
    assert_non_null(p);
    return p + 4;
}

/* --- kinds and templates --- */

static void kinds_variables_and_defaults(void **state)
{
    const char *names[] = {"invite",         "welcome",       "reset",
                           "password_changed", "account_locked", "expiry_notice",
                           "two_factor_changed", "email_changed", "test"};
    for (int k = 0; k < RS_MAIL_KIND_COUNT; k++) {
        assert_string_equal(rs_mail_kind_name((enum rs_mail_kind)k), names[k]);
        enum rs_mail_kind back;
        assert_int_equal(rs_mail_kind_parse(names[k], &back), 0);
        assert_int_equal(back, k);
        /* the defaults use only the kind's variables and pass the checks */
        struct rs_error e;
        rs_error_init(&e);
        assert_int_equal(rs_mail_template_check((enum rs_mail_kind)k, "s",
                                                rs_mail_default_subject((enum rs_mail_kind)k),
                                                RS_MAIL_PART_SUBJECT, &e),
                         0);
        assert_int_equal(rs_mail_template_check((enum rs_mail_kind)k, "b",
                                                rs_mail_default_body((enum rs_mail_kind)k),
                                                RS_MAIL_PART_BODY, &e),
                         0);
        /* a body-only variable is one of the kind's own */
        for (const char *const *b = rs_mail_body_only_variables((enum rs_mail_kind)k); *b; b++) {
            bool found = false;
            for (const char *const *v = rs_mail_variables((enum rs_mail_kind)k); *v; v++)
                found = found || strcmp(*v, *b) == 0;
            assert_true(found);
        }
        const char *const *v = rs_mail_variables((enum rs_mail_kind)k);
        assert_string_equal(v[0], "username");
        assert_string_equal(v[5], "base_url");
    }
    enum rs_mail_kind k;
    assert_int_equal(rs_mail_kind_parse("Invite", &k), -1);
    assert_null(rs_mail_kind_name(RS_MAIL_KIND_COUNT));
    const char *const *v = rs_mail_variables(RS_MAIL_RESET);
    assert_string_equal(v[6], "link");
    assert_string_equal(v[7], "expires_minutes");
    assert_null(v[8]);
    assert_string_equal(rs_mail_default_subject(RS_MAIL_INVITE), "You have been invited to roster");
    assert_non_null(strstr(rs_mail_default_body(RS_MAIL_INVITE), "{{link}}"));
    assert_non_null(strstr(rs_mail_default_body(RS_MAIL_INVITE), "{{expires_at}}"));
    assert_non_null(strstr(rs_mail_default_body(RS_MAIL_RESET), "{{expires_minutes}}"));
    assert_non_null(strstr(rs_mail_default_body(RS_MAIL_RESET),
                           "If you did not ask for this, ignore this message: your password "
                           "stays the same."));
    assert_non_null(strstr(rs_mail_default_body(RS_MAIL_PASSWORD_CHANGED), "{{ip}}"));
    assert_non_null(strstr(rs_mail_default_body(RS_MAIL_ACCOUNT_LOCKED), "{{locked_until}}"));
    assert_non_null(strstr(rs_mail_default_body(RS_MAIL_EXPIRY_NOTICE), "{{days_left}}"));
}

static void render_replaces_placeholders(void **state)
{
    const char *vars[] = {"first_name", "Åsa", "link", "https://x/a?b=1", "ip", NULL, NULL};
    char *s =
        rs_mail_render("Hi {{first_name}}, {{ link }} {{\tip }}|{{nope}}|{{ first_name}}!", vars);
    assert_string_equal(s, "Hi Åsa, https://x/a?b=1 ||Åsa!");
    free(s);
    /* not placeholders: left as written; values are not re-scanned */
    const char *v2[] = {"a", "{{a}}", NULL};
    s = rs_mail_render("{{ {{a}} {{a b}} {{}} x}} {{a", v2);
    assert_string_equal(s, "{{ {{a}} {{a b}} {{}} x}} {{a");
    free(s);
    s = rs_mail_render("", NULL);
    assert_string_equal(s, "");
    free(s);
}

static void tcheck(enum rs_mail_kind k, const char *text, bool subject, const char *rule)
{
    struct rs_error e;
    rs_error_init(&e);
    int r = rs_mail_template_check(k, "templates.x.body", text,
                                   subject ? RS_MAIL_PART_SUBJECT : RS_MAIL_PART_BODY, &e);
    if (!rule) {
        if (r != 0)
            fail_msg("refused \"%.40s\": %s", text, e.message);
        return;
    }
    if (r == 0)
        fail_msg("accepted \"%.40s\"", text);
    assert_int_equal(r, -RS_EVALIDATION);
    assert_string_equal(e.fields[0].field, "templates.x.body");
    assert_string_equal(e.fields[0].rule, rule);
}

static void template_check_rules(void **state)
{
    tcheck(RS_MAIL_RESET, "Go: {{ link }} in {{expires_minutes}}", false, NULL);
    tcheck(RS_MAIL_WELCOME, "Go: {{ link }}", false, "unknown_variable");
    tcheck(RS_MAIL_RESET, "{{changed_at}}", true, "unknown_variable");
    tcheck(RS_MAIL_RESET, "Reset\r\nBcc: x@y", true, "header_injection");
    tcheck(RS_MAIL_RESET, "Reset\nnow", true, "header_injection");
    tcheck(RS_MAIL_RESET, "Line one\nLine two", false, NULL);
    tcheck(RS_MAIL_RESET, "Hello {{ first_name", false, "placeholder");
    tcheck(RS_MAIL_RESET, "Hello {{first-name}}", false, "placeholder");
    tcheck(RS_MAIL_RESET, "", true, "required");
    tcheck(RS_MAIL_RESET, "bad \xff byte", false, "utf8");

    struct rs_error e;
    rs_error_init(&e);
    assert_int_equal(
        rs_mail_template_check(RS_MAIL_WELCOME, "t", "{{link}}", RS_MAIL_PART_BODY, &e),
        -RS_EVALIDATION);
    assert_non_null(strstr(e.fields[0].message, "sign_in_url")); /* says what may be used */

    /* length edges, in characters (ä is two bytes) */
    char s[2 * RS_MAIL_BODY_MAX + 8];
    s[0] = '\0';
    for (int i = 0; i < RS_MAIL_SUBJECT_MAX; i++)
        memcpy(s + 2 * i, "ä", 3);
    tcheck(RS_MAIL_TEST, s, true, NULL);
    memcpy(s + 2 * RS_MAIL_SUBJECT_MAX, "x", 2);
    tcheck(RS_MAIL_TEST, s, true, "max_length");
    memset(s, 'a', RS_MAIL_BODY_MAX);
    s[RS_MAIL_BODY_MAX] = '\0';
    tcheck(RS_MAIL_TEST, s, false, NULL);
    s[RS_MAIL_BODY_MAX] = 'a';
    s[RS_MAIL_BODY_MAX + 1] = '\0';
    tcheck(RS_MAIL_TEST, s, false, "max_length");
}

/* The reset and invite links carry a secret token: bodies only, never the
 * subject (shown in mail lists, the outbox, logs). */
static void link_only_in_bodies(void **state)
{
    tcheck(RS_MAIL_RESET, "Reset: {{link}}", true, "variable_not_allowed");
    tcheck(RS_MAIL_INVITE, "Join via {{ link }} by {{expires_at}}", true, "variable_not_allowed");
    tcheck(RS_MAIL_INVITE, "Join: {{link}}", false, NULL);
    tcheck(RS_MAIL_RESET, "Reset {{username}} within {{expires_minutes}} min", true, NULL);
    struct rs_error e;
    rs_error_init(&e);
    assert_int_equal(rs_mail_template_check(RS_MAIL_RESET, "templates.reset.subject",
                                            "Reset {{link}}", RS_MAIL_PART_SUBJECT, &e),
                     -RS_EVALIDATION);
    assert_string_equal(e.fields[0].field, "templates.reset.subject");
    assert_non_null(strstr(e.fields[0].message, "{{link}}"));
    assert_non_null(strstr(e.fields[0].message, "only in the body"));
    /* a subject stored before the rule still reads, and the other rules hold */
    rs_error_init(&e);
    assert_int_equal(rs_mail_template_check(RS_MAIL_RESET, "s", "Reset {{link}}",
                                            RS_MAIL_PART_STORED_SUBJECT, &e),
                     0);
    assert_int_equal(
        rs_mail_template_check(RS_MAIL_RESET, "s", "a\nb", RS_MAIL_PART_STORED_SUBJECT, &e),
        -RS_EVALIDATION);
    /* the lists */
    assert_string_equal(rs_mail_body_only_variables(RS_MAIL_RESET)[0], "link");
    assert_null(rs_mail_body_only_variables(RS_MAIL_RESET)[1]);
    assert_string_equal(rs_mail_body_only_variables(RS_MAIL_INVITE)[0], "link");
    assert_null(rs_mail_body_only_variables(RS_MAIL_WELCOME)[0]);
    assert_null(rs_mail_body_only_variables(RS_MAIL_KIND_COUNT)[0]);
    /* rendering a subject leaves the link empty whatever the values hold */
    const char *vars[] = {"username", "jdoe", "link", "https://x/reset?t=SECRET", NULL};
    char *subj = rs_mail_render_subject(RS_MAIL_RESET, "Reset {{username}} [{{ link }}]", vars);
    assert_string_equal(subj, "Reset jdoe []");
    free(subj);
    char *body = rs_mail_render("Reset {{username}} [{{ link }}]", vars);
    assert_string_equal(body, "Reset jdoe [https://x/reset?t=SECRET]");
    free(body);
}

/* --- messages --- */

static void expect_refused(const char *from, const char *to, const char *subject, const char *mid,
                           const char *field, const char *rule)
{
    struct rs_error e;
    rs_error_init(&e);
    char *msg = (char *)0x1;
    int r = rs_mail_build(from, to, subject, "body", 0, mid, &msg, &e);
    if (r == 0)
        fail_msg("accepted from=%s to=%s subject=%s", from, to, subject);
    assert_int_equal(r, -RS_EVALIDATION);
    assert_ptr_equal(msg, (char *)0x1); /* untouched */
    assert_string_equal(e.fields[0].field, field);
    assert_string_equal(e.fields[0].rule, rule);
}

static void build_refuses_header_injection(void **state)
{
    const char *f = "roster <noreply@example.com>";
    const char *m = "1@x";
    expect_refused(f, "a@example.com", "Hi\r\nBcc: victim@example.com", m, "subject",
                   "header_injection");
    expect_refused(f, "a@example.com", "Hi\nthere", m, "subject", "header_injection");
    expect_refused(f, "a@example.com", "Hi\rthere", m, "subject", "header_injection");
    expect_refused(f, "a@example.com\r\nBcc: b@example.com", "Hi", m, "to", "header_injection");
    expect_refused(f, "a@example.com\n", "Hi", m, "to", "header_injection");
    expect_refused("roster <a@example.com>\r\nBcc: b@example.com", "a@example.com", "Hi", m, "from",
                   "header_injection");
    expect_refused(f, "a@example.com", "Hi", "1@x\r\nBcc: b@x", "message_id", "header_injection");
    /* to: one addr-spec */
    const char *bad_to[] = {"a b@example.com",
                            "<a@example.com>",
                            "Ann <a@example.com>",
                            "a@example.com,b@example.com",
                            "a@example.com b@example.com",
                            "example.com",
                            "@example.com",
                            "a@",
                            "a..b@example.com",
                            ".a@example.com",
                            "a@-example.com",
                            "a@example..com",
                            "\"a\"@x.com",
                            ""};
    for (size_t i = 0; i < RS_ARRAY_LEN(bad_to); i++)
        expect_refused(f, bad_to[i], "Hi", m, "to", "addr_spec");
    /* from: one mailbox */
    const char *bad_from[] = {"Doe, John <j@example.com>",
                              "a@example.com, b@example.com",
                              "<a@example.com",
                              "Ann <a@example.com> <b@example.com>",
                              "\"Ann <a@example.com>",
                              "nobody",
                              ""};
    for (size_t i = 0; i < RS_ARRAY_LEN(bad_from); i++)
        expect_refused(bad_from[i], "a@example.com", "Hi", m, "from", "mailbox");
    expect_refused(f, "a@example.com", "Hi", "no-at-sign", "message_id", "message_id");
    expect_refused(f, "a@example.com", "Hi", "<1@x>", "message_id", "message_id");
}

static void build_message_shape(void **state)
{
    char *msg = build_ok("roster <noreply@example.com>", "ann@example.com", "Welcome to roster",
                         "Hello Ann,\n\nWelcome.\n");
    const char *want_head = "From: roster <noreply@example.com>\r\n"
                            "To: ann@example.com\r\n"
                            "Subject: Welcome to roster\r\n"
                            "Date: Thu, 01 Jan 1970 00:00:00 +0000\r\n"
                            "Message-ID: <abc.123@roster.example>\r\n"
                            "MIME-Version: 1.0\r\n"
                            "Content-Type: text/plain; charset=UTF-8\r\n"
                            "Content-Transfer-Encoding: quoted-printable\r\n"
                            "\r\n"
                            "Hello Ann,\r\n\r\nWelcome.\r\n";
    assert_string_equal(msg, want_head);
    free(msg);

    /* a display name with specials is quoted; a plain address stays plain */
    msg = build_ok("\"Doe, J. \\\"IT\\\"\" <it@example.com>", "a@example.com", "x", "y");
    char *v = header_value(msg, "From");
    assert_string_equal(v, "\"Doe, J. \\\"IT\\\"\" <it@example.com>");
    free(v);
    free(msg);
    msg = build_ok("it@example.com", "a@example.com", "x", "y");
    v = header_value(msg, "From");
    assert_string_equal(v, "it@example.com");
    free(v);
    free(msg);
}

static void build_subject_rfc2047_round_trip(void **state)
{
    const char *subjects[] = {
        "Ihr Passwort für roster wurde geändert",
        "パスワードの再設定 — roster のアカウント 🔑 パスワードの再設定 — roster のアカウント",
        ("Réinitialisez votre mot de passe roster: le lien expire dans 30 minutes, "
         "à utiliser une seule fois, ça marche"),
        "ASCII but =?looks encoded?=",
        /* one ASCII byte first, so 3-byte characters do not line up with the word size */
        "xパスワードの再設定 — roster のアカウント 🔑 パスワードの再設定 — roster のアカウント",
    };
    for (size_t i = 0; i < RS_ARRAY_LEN(subjects); i++) {
        char *msg = build_ok("roster <noreply@example.com>", "a@example.com", subjects[i], "x");
        /* every header line within 78 characters */
        const char *end = strstr(msg, "\r\n\r\n");
        for (const char *p = msg; p < end;) {
            const char *e = strstr(p, "\r\n");
            assert_true(e - p <= 78);
            p = e + 2;
        }
        char *raw = header_value(msg, "Subject");
        assert_int_equal(strncmp(raw, "=?UTF-8?B?", 10), 0);
        char *dec = decode_words(raw);
        assert_string_equal(dec, subjects[i]);
        free(dec);
        free(raw);
        free(msg);
    }
    /* the long one took several words */
    char *msg = build_ok("roster <noreply@example.com>", "a@example.com", subjects[1], "x");
    char *raw = header_value(msg, "Subject");
    assert_non_null(strstr(raw + 1, "=?UTF-8?B?"));
    free(raw);
    free(msg);

    /* a long ASCII subject is folded at spaces, and unfolds back */
    const char *ascii = "Your roster password expires in 14 days: sign in and choose a new "
                        "one before then to keep your access without interruption";
    msg = build_ok("roster <noreply@example.com>", "a@example.com", ascii, "x");
    raw = header_value(msg, "Subject");
    assert_string_equal(raw, ascii);
    const char *fold = strstr(msg, "\r\n ");
    assert_non_null(fold); /* folded onto a continuation line */
    assert_true(fold < strstr(msg, "\r\n\r\n"));
    free(raw);
    free(msg);
}

static void build_from_display_name_encoded(void **state)
{
    char *msg = build_ok("Büro Zürich <buero@example.ch>", "a@example.com", "x", "y");
    char *v = header_value(msg, "From");
    char *lt = strstr(v, " <buero@example.ch>");
    assert_non_null(lt);
    assert_string_equal(lt, " <buero@example.ch>");
    *lt = '\0';
    char *dec = decode_words(v);
    assert_string_equal(dec, "Büro Zürich");
    free(dec);
    free(v);
    free(msg);
}

static void build_body_quoted_printable(void **state)
{
    /* long UTF-8 lines, '=' signs, trailing spaces and tabs, bare LF and CRLF */
    char body[4096];
    size_t n = 0;
    for (int i = 0; i < 120; i++) {
        memcpy(body + n, "ü", 2);
        n += 2;
    }
    const char *rest =
        "\na=b ==  \r\nx\t\n\n"
        "a plain line that is comfortably longer than seventy-six characters, "
        "so it needs soft breaks\n"
        "ends with space \n"
        "日本語のテキストは一行が長くなっても大丈夫です。日本語のテキストは一行が長く"
        "なっても大丈夫です。\n";
    memcpy(body + n, rest, strlen(rest) + 1);
    char *msg = build_ok("roster <noreply@example.com>", "a@example.com", "x", body);
    char *dec = qp_decode(msg_body(msg));
    /* decoded = body with every line end as CRLF */
    char want[8192];
    size_t w = 0;
    for (const char *p = body; *p; p++) {
        if (*p == '\r' && p[1] == '\n')
            continue;
        if (*p == '\n') {
            want[w++] = '\r';
            want[w++] = '\n';
        } else {
            want[w++] = *p;
        }
    }
    want[w] = '\0';
    assert_string_equal(dec, want);
    /* '=' and trailing white space are encoded */
    assert_non_null(strstr(msg_body(msg), "a=3Db =3D=3D =20\r\n"));
    assert_non_null(strstr(msg_body(msg), "x=09\r\n"));
    assert_non_null(strstr(msg_body(msg), "=C3=BC"));
    free(dec);
    free(msg);

    /* a body without a final line end still ends in CRLF */
    msg = build_ok("roster <noreply@example.com>", "a@example.com", "x", "one line");
    assert_string_equal(msg_body(msg), "one line\r\n");
    free(msg);
}

static void build_refuses_bad_utf8(void **state)
{
    struct rs_error e;
    rs_error_init(&e);
    char *msg = NULL;
    assert_int_equal(rs_mail_build("a@x.com", "b@x.com", "ok", "bad \xc3", 0, "1@x", &msg, &e),
                     -RS_EVALIDATION);
    assert_string_equal(e.fields[0].field, "body");
    assert_string_equal(e.fields[0].rule, "utf8");
    assert_null(msg);
}

static void date_format(void **state)
{
    char d[RS_MAIL_DATE_MAX];
    rs_mail_date(0, d);
    assert_string_equal(d, "Thu, 01 Jan 1970 00:00:00 +0000");
    rs_mail_date(951782400000LL, d);
    assert_string_equal(d, "Tue, 29 Feb 2000 00:00:00 +0000");
    rs_mail_date(-1, d);
    assert_string_equal(d, "Wed, 31 Dec 1969 23:59:59 +0000");
    rs_mail_date(1795502400123LL, d);
    assert_string_equal(d, "Tue, 24 Nov 2026 06:40:00 +0000");
    /* against libc over many instants, 1900..2200 */
    int64_t t = -2208988800LL;
    while (t < 7258118400LL) {
        time_t tt = (time_t)t;
        struct tm tm;
        assert_non_null(gmtime_r(&tt, &tm));
        char want[64];
        strftime(want, sizeof(want), "%a, %d %b %Y %H:%M:%S +0000", &tm);
        rs_mail_date(t * 1000 + 999, d);
        assert_string_equal(d, want);
        t += 7654321;
    }
}

static void addr_spec_extraction(void **state)
{
    char out[RS_MAIL_ADDR_MAX + 1];
    assert_int_equal(rs_mail_addr_spec("Name <a@b>", out, sizeof(out)), 0);
    assert_string_equal(out, "a@b");
    assert_int_equal(rs_mail_addr_spec("  a.b+tag@example.com ", out, sizeof(out)), 0);
    assert_string_equal(out, "a.b+tag@example.com");
    assert_int_equal(rs_mail_addr_spec("\"Doe, Jane\" <jane@example.com>", out, sizeof(out)), 0);
    assert_string_equal(out, "jane@example.com");
    assert_int_equal(rs_mail_addr_spec("<x@y>", out, sizeof(out)), 0);
    assert_string_equal(out, "x@y");
    assert_int_equal(rs_mail_addr_spec("Ünïcode Name <ü@bücher.de>", out, sizeof(out)), 0);
    assert_string_equal(out, "ü@bücher.de");
    assert_int_equal(rs_mail_addr_spec("roster <noreply@localhost>", out, sizeof(out)), 0);
    assert_string_equal(out, "noreply@localhost");
    char small[4];
    assert_int_equal(rs_mail_addr_spec("Name <a@bc>", small, sizeof(small)), -1);
    assert_int_equal(rs_mail_addr_spec("a@b, c@d", out, sizeof(out)), -1);
    assert_int_equal(rs_mail_addr_spec("Doe, Jane <jane@example.com>", out, sizeof(out)), -1);
    assert_int_equal(rs_mail_addr_spec("Name <a@b", out, sizeof(out)), -1);
    assert_int_equal(rs_mail_addr_spec("Name\r\n <a@b>", out, sizeof(out)), -1);
    assert_int_equal(rs_mail_addr_spec("Name <a b@c>", out, sizeof(out)), -1);
    assert_int_equal(rs_mail_addr_spec("", out, sizeof(out)), -1);
    assert_true(rs_mail_addr_spec_ok("first.last@sub.example.co.uk"));
    assert_false(rs_mail_addr_spec_ok("first.last@sub.example.co.uk."));
    assert_false(rs_mail_addr_spec_ok("a@b@c"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(kinds_variables_and_defaults),
        cmocka_unit_test(render_replaces_placeholders),
        cmocka_unit_test(template_check_rules),
        cmocka_unit_test(link_only_in_bodies),
        cmocka_unit_test(build_refuses_header_injection),
        cmocka_unit_test(build_message_shape),
        cmocka_unit_test(build_subject_rfc2047_round_trip),
        cmocka_unit_test(build_from_display_name_encoded),
        cmocka_unit_test(build_body_quoted_printable),
        cmocka_unit_test(build_refuses_bad_utf8),
        cmocka_unit_test(date_format),
        cmocka_unit_test(addr_spec_extraction),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
