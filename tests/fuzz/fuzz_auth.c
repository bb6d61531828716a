/* fuzz_auth.c: libFuzzer target for the sign-in parsers that see untrusted
 * bytes: the auth and notifications settings documents, mail templates and
 * messages, IP ranges, TOTP codes and URIs, and password checks. The first
 * byte picks the mode ('A', 'N', 'M', 'C', 'T', 'P', any other byte modulo 6);
 * the rest is the input. Aborts on a broken invariant. */
#include <arpa/inet.h>
#include <sodium.h>
#include <stdio.h>

#include "src/core/authsettings.h"
#include "src/core/ipnet.h"
#include "src/core/mail.h"
#include "src/core/password.h"
#include "src/core/totp.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "invariant failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__);          \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#define MAX_PARTS 8
#define NOW_MS 1700000000000LL /* 2023-11-14T22:13:20Z */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    if (sodium_init() < 0)
        abort();
    return 0;
}

/* --- helpers --- */

/* Splits data at NUL bytes into at most n new strings (the last one takes
 * the rest, NULs included up to its first); missing parts are "". */
static void split_parts(const uint8_t *d, size_t size, char **out, size_t n)
{
    size_t i = 0;
    size_t start = 0;
    for (size_t k = 0; k < n; k++) {
        while (i < size && d[i] != '\0')
            i++;
        out[k] = start < size ? rs_xstrndup((const char *)d + start, i - start) : rs_xstrdup("");
        start = ++i;
    }
}

static void free_parts(char **p, size_t n)
{
    for (size_t k = 0; k < n; k++)
        free(p[k]);
}

static json_t *load_json(const uint8_t *d, size_t size)
{
    /* The flags the HTTP layer parses request bodies with (src/http/codec.c). */
    return json_loadb((const char *)d, size, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, NULL);
}

/* A refused document is refused as malformed (400) or as breaking a rule
 * (422), with a message for the user. */
static void check_refusal(const struct rs_error *err)
{
    CHECK(err->code == RS_EBADREQUEST || err->code == RS_EVALIDATION);
    CHECK(err->message[0] != '\0');
    CHECK(err->nfields >= 0 && err->nfields <= RS_MAX_FIELD_ERRORS);
}

static bool has_field_rule(const struct rs_error *err, const char *rule)
{
    for (int i = 0; i < err->nfields; i++) {
        if (strcmp(err->fields[i].rule, rule) == 0)
            return true;
    }
    return false;
}

/* --- mode A: auth settings --- */

static json_t *without(json_t *doc, const char *member)
{
    json_t *copy = json_deep_copy(doc);
    CHECK(json_object_del(copy, member) == 0);
    return copy;
}

static void auth_round_trip(const struct rs_auth_settings *s, json_t *patch)
{
    struct rs_auth_settings back, again, fresh, def;
    struct rs_error err;
    json_t *doc = rs_auth_settings_to_json(s);
    CHECK(doc != NULL);

    /* What is accepted encodes, and reads back to the same document. */
    rs_error_init(&err);
    CHECK(rs_auth_settings_from_json(doc, &back, &err) == 0);
    json_t *doc2 = rs_auth_settings_to_json(&back);
    CHECK(json_equal(doc, doc2));

    /* A merge patch is idempotent: applying it again changes nothing. */
    if (patch) {
        rs_error_init(&err);
        CHECK(rs_auth_settings_patch(s, patch, &again, &err) == 0);
        json_t *doc3 = rs_auth_settings_to_json(&again);
        CHECK(json_equal(doc, doc3));
        json_decref(doc3);
        rs_auth_settings_release(&again);
    }

    /* What GET shows, sent back as a patch (less the read-only version),
     * gives the same settings. */
    json_t *body = without(doc, "version");
    rs_auth_settings_defaults(&def);
    rs_error_init(&err);
    CHECK(rs_auth_settings_patch(&def, body, &fresh, &err) == 0);
    json_t *doc4 = rs_auth_settings_to_json(&fresh);
    json_t *body4 = without(doc4, "version");
    CHECK(json_equal(body, body4));
    json_decref(body4);
    json_decref(doc4);
    json_decref(body);
    rs_auth_settings_release(&fresh);
    rs_auth_settings_release(&def);

    json_decref(doc);
    json_decref(doc2);
    rs_auth_settings_release(&back);
}

static void auth_mode(const uint8_t *d, size_t size)
{
    json_t *patch = load_json(d, size);
    if (!patch)
        return;
    struct rs_auth_settings base, out;
    struct rs_error err;
    rs_auth_settings_defaults(&base);
    rs_error_init(&err);
    if (rs_auth_settings_patch(&base, patch, &out, &err) == 0) {
        CHECK(out.password.max_length >= out.password.min_length);
        CHECK(out.two_factor.issuer && out.two_factor.issuer[0]);
        auth_round_trip(&out, patch);
        rs_auth_settings_release(&out);
    } else {
        check_refusal(&err);
    }
    /* The same bytes as a stored document: lenient, never crashes, and what
     * it reads is stable. */
    rs_error_init(&err);
    if (rs_auth_settings_from_json(patch, &out, &err) == 0) {
        auth_round_trip(&out, NULL);
        rs_auth_settings_release(&out);
    } else {
        check_refusal(&err);
    }
    rs_auth_settings_release(&base);
    json_decref(patch);
}

/* --- mode N: notifications settings --- */

static void notify_same(const struct rs_notify_settings *a, const struct rs_notify_settings *b)
{
    CHECK(strcmp(a->smtp.url, b->smtp.url) == 0);
    CHECK(a->smtp.security == b->smtp.security);
    CHECK(strcmp(a->smtp.username, b->smtp.username) == 0);
    CHECK(strcmp(a->smtp.password_stored, b->smtp.password_stored) == 0);
    CHECK(strcmp(a->smtp.from, b->smtp.from) == 0);
    CHECK(a->smtp.timeout_seconds == b->smtp.timeout_seconds);
    CHECK(a->smtp.verify_tls == b->smtp.verify_tls);
    CHECK((a->smtp.password_new == NULL) == (b->smtp.password_new == NULL));
    CHECK(!a->smtp.password_new || strcmp(a->smtp.password_new, b->smtp.password_new) == 0);
    for (int k = 0; k < RS_MAIL_KIND_COUNT; k++) {
        CHECK(a->enabled[k] == b->enabled[k]);
        CHECK(strcmp(a->templates[k].subject, b->templates[k].subject) == 0);
        CHECK(strcmp(a->templates[k].body, b->templates[k].body) == 0);
    }
}

/* The API form less every read-only member: what a client may send back. */
static json_t *notify_writable(const struct rs_notify_settings *s)
{
    json_t *doc = rs_notify_settings_to_json(s, false);
    CHECK(json_object_del(doc, "version") == 0);
    CHECK(json_object_del(json_object_get(doc, "smtp"), "password_set") == 0);
    const char *k;
    json_t *t;
    json_object_foreach(json_object_get(doc, "templates"), k, t)
    {
        CHECK(json_object_del(t, "variables") == 0);
        CHECK(json_object_del(t, "body_only_variables") == 0);
    }
    return doc;
}

static void notify_round_trip(const struct rs_notify_settings *s, json_t *patch)
{
    struct rs_notify_settings back, again, fresh, def;
    struct rs_error err;

    /* The stored form reads back to the same settings and the same text. */
    json_t *stored = rs_notify_settings_to_json(s, true);
    CHECK(stored != NULL);
    CHECK(json_object_get(json_object_get(stored, "smtp"), "password_set") == NULL);
    rs_error_init(&err);
    CHECK(rs_notify_settings_from_json(stored, &back, &err) == 0);
    CHECK(back.smtp.password_new == NULL);
    struct rs_notify_settings plain;
    rs_notify_settings_copy(&plain, s);
    free(plain.smtp.password_new);
    plain.smtp.password_new = NULL;
    notify_same(&plain, &back);
    rs_notify_settings_release(&plain);
    json_t *stored2 = rs_notify_settings_to_json(&back, true);
    CHECK(json_equal(stored, stored2));
    /* The API form too, but for password_set: storage keeps only the
     * sealed password, which the service writes. */
    json_t *api = notify_writable(s), *api2 = notify_writable(&back);
    CHECK(json_equal(api, api2));
    json_decref(api2);

    /* A merge patch is idempotent. */
    if (patch) {
        rs_error_init(&err);
        CHECK(rs_notify_settings_patch(s, patch, &again, &err) == 0);
        notify_same(s, &again);
        rs_notify_settings_release(&again);
    }

    /* What GET shows, less its read-only members, is a valid patch that
     * gives the same settings; but for a stored document that breaks a rule
     * newer than it (SMTP credentials without TLS, a link in a subject),
     * which reads but is refused as a patch. */
    rs_notify_settings_defaults(&def);
    rs_error_init(&err);
    if (rs_notify_settings_patch(&def, api, &fresh, &err) == 0) {
        json_t *api3 = notify_writable(&fresh);
        CHECK(json_equal(api, api3));
        json_decref(api3);
        rs_notify_settings_release(&fresh);
    } else {
        struct rs_error why;
        rs_error_init(&why);
        CHECK(!patch);
        CHECK(has_field_rule(&err, "variable_not_allowed") ||
              (has_field_rule(&err, "auth_needs_tls") && rs_notify_smtp_auth_check(s, &why) < 0));
    }
    rs_notify_settings_release(&def);

    json_decref(api);
    json_decref(stored);
    json_decref(stored2);
    rs_notify_settings_release(&back);
}

static void notify_mode(const uint8_t *d, size_t size)
{
    json_t *patch = load_json(d, size);
    if (!patch)
        return;
    struct rs_notify_settings base, out;
    struct rs_error err;
    rs_notify_settings_defaults(&base);
    rs_error_init(&err);
    if (rs_notify_settings_patch(&base, patch, &out, &err) == 0) {
        CHECK(out.enabled[RS_MAIL_TEST]);
        /* Every accepted template passes the template check. */
        for (int k = 0; k < RS_MAIL_KIND_COUNT; k++) {
            struct rs_error e2;
            rs_error_init(&e2);
            CHECK(rs_mail_template_check((enum rs_mail_kind)k, "s", out.templates[k].subject,
                                         RS_MAIL_PART_SUBJECT, &e2) == 0);
            CHECK(rs_mail_template_check((enum rs_mail_kind)k, "b", out.templates[k].body,
                                         RS_MAIL_PART_BODY, &e2) == 0);
        }
        char addr[RS_MAIL_ADDR_MAX + 1];
        CHECK(rs_mail_addr_spec(out.smtp.from, addr, sizeof(addr)) == 0);
        notify_round_trip(&out, patch);
        rs_notify_settings_release(&out);
    } else {
        check_refusal(&err);
    }
    rs_error_init(&err);
    if (rs_notify_settings_from_json(patch, &out, &err) == 0) {
        notify_round_trip(&out, NULL);
        rs_notify_settings_release(&out);
    } else {
        check_refusal(&err);
    }
    rs_notify_settings_release(&base);
    json_decref(patch);
}

/* --- mode M: mail templates and messages --- */

static const char *const expected_headers[] = {
    "From",       "To",           "Subject",      "Date",
    "Message-ID", "MIME-Version", "Content-Type", "Content-Transfer-Encoding"};

/* The value of header `name` with its folds (CRLF before WSP) removed. */
static char *unfolded_header(const char *msg, const char *name)
{
    size_t nlen = strlen(name);
    const char *p = msg;
    while (!(strncmp(p, name, nlen) == 0 && p[nlen] == ':')) {
        p = strstr(p, "\r\n");
        CHECK(p != NULL);
        p += 2;
    }
    p += nlen + 1;
    if (*p == ' ')
        p++;
    char *out = rs_xmalloc(strlen(p) + 1);
    size_t o = 0;
    for (;;) {
        if (p[0] == '\r' && p[1] == '\n') {
            if (p[2] != ' ' && p[2] != '\t')
                break;
            p += 2;
            continue;
        }
        out[o++] = *p++;
    }
    out[o] = '\0';
    return out;
}

/* Whether rs_mail_build writes s as it is (mail.c: printable ASCII without
 * "=?", no run of more than 900 bytes without a space). */
static bool subject_plain(const char *s)
{
    size_t run = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p < 0x20 || *p > 0x7e)
            return false;
        /* mail.c folds only at a space that a word follows */
        run = *p == ' ' && p[1] && p[1] != ' ' ? 0 : run + 1;
        if (run > 900)
            return false;
    }
    return strstr(s, "=?") == NULL;
}

/* Decodes a value made of RFC 2047 "=?UTF-8?B?...?=" words separated by
 * white space; NULL if it is not that. */
static char *decode_words(const char *v)
{
    size_t cap = strlen(v) + 1;
    char *out = rs_xmalloc(cap);
    size_t o = 0;
    const char *p = v;
    while (*p) {
        if (*p == ' ' || *p == '\t') {
            p++;
            continue;
        }
        size_t wlen = strcspn(p, " \t");
        if (wlen > 75 || wlen < 12 || strncmp(p, "=?UTF-8?B?", 10) != 0 ||
            strncmp(p + wlen - 2, "?=", 2) != 0)
            goto bad;
        size_t got = 0;
        if (sodium_base642bin((unsigned char *)out + o, cap - o, p + 10, wlen - 12, NULL, &got,
                              NULL, sodium_base64_VARIANT_ORIGINAL) != 0)
            goto bad;
        o += got;
        p += wlen;
    }
    out[o] = '\0';
    return out;
bad:
    free(out);
    return NULL;
}

/* The structure every message rs_mail_build writes must have. */
static void check_message(const char *msg, const char *subject)
{
    /* CRLF line ends only. */
    for (const char *p = msg; *p; p++) {
        if (*p == '\n')
            CHECK(p > msg && p[-1] == '\r');
        if (*p == '\r')
            CHECK(p[1] == '\n');
    }
    /* The header section: lines of at most 998 bytes, each a continuation
     * (leading WSP) or one of the expected headers, each exactly once, up to
     * the first empty line. */
    int seen[RS_ARRAY_LEN(expected_headers)] = {0};
    const char *line = msg;
    bool first = true;
    for (;;) {
        const char *eol = strstr(line, "\r\n");
        CHECK(eol != NULL);
        size_t len = (size_t)(eol - line);
        if (len == 0)
            break;
        CHECK(len <= 998);
        if (line[0] == ' ' || line[0] == '\t') {
            CHECK(!first);
        } else {
            const char *colon = memchr(line, ':', len);
            CHECK(colon != NULL);
            size_t nlen = (size_t)(colon - line);
            bool known = false;
            for (size_t i = 0; i < RS_ARRAY_LEN(expected_headers); i++) {
                if (strlen(expected_headers[i]) == nlen &&
                    memcmp(expected_headers[i], line, nlen) == 0) {
                    seen[i]++;
                    known = true;
                }
            }
            CHECK(known);
        }
        first = false;
        line = eol + 2;
    }
    for (size_t i = 0; i < RS_ARRAY_LEN(expected_headers); i++)
        CHECK(seen[i] == 1);
    /* The body: quoted-printable, so printable ASCII in lines of at most 76
     * characters with no white space at a line's end. */
    const char *body = line + 2;
    for (const char *p = body; *p;) {
        const char *eol = strstr(p, "\r\n");
        CHECK(eol != NULL);
        size_t len = (size_t)(eol - p);
        CHECK(len <= 76);
        for (size_t i = 0; i < len; i++)
            CHECK((p[i] >= 0x21 && p[i] <= 0x7e) || p[i] == ' ' || p[i] == '\t');
        if (len > 0)
            CHECK(p[len - 1] != ' ' && p[len - 1] != '\t');
        p = eol + 2;
    }
    /* The Subject reads back as the subject given. */
    char *v = unfolded_header(msg, "Subject");
    if (subject_plain(subject)) {
        CHECK(strcmp(v, subject) == 0);
    } else {
        char *dec = decode_words(v);
        CHECK(dec != NULL);
        CHECK(strcmp(dec, subject) == 0);
        free(dec);
    }
    free(v);
}

static void build_and_check(const char *from, const char *to, const char *subject, const char *body,
                            const char *message_id)
{
    char *msg = NULL;
    struct rs_error err;
    rs_error_init(&err);
    if (rs_mail_build(from, to, subject, body, NOW_MS, message_id, &msg, &err) == 0) {
        CHECK(msg != NULL);
        CHECK(!strpbrk(subject, "\r\n") && !strpbrk(from, "\r\n") && !strpbrk(to, "\r\n"));
        check_message(msg, subject);
        free(msg);
    } else {
        CHECK(msg == NULL);
        CHECK(err.code == RS_EVALIDATION);
        CHECK(err.nfields > 0);
    }
}

static void mail_mode(const uint8_t *d, size_t size)
{
    char *p[6];
    split_parts(d, size, p, 6);
    const char *subject = p[0], *body = p[1], *to = p[2], *from = p[3], *value = p[4];
    const char *message_id = p[5][0] ? p[5] : "1.abc@roster.test";

    for (int k = 0; k < RS_MAIL_KIND_COUNT; k++) {
        struct rs_error err;
        rs_error_init(&err);
        if (rs_mail_template_check((enum rs_mail_kind)k, "subject", subject, RS_MAIL_PART_SUBJECT,
                                   &err) == 0)
            CHECK(!strpbrk(subject, "\r\n") && subject[0]);
        else
            CHECK(err.code == RS_EVALIDATION && err.nfields > 0);
        rs_error_init(&err);
        if (rs_mail_template_check((enum rs_mail_kind)k, "body", body, RS_MAIL_PART_BODY, &err) !=
            0)
            CHECK(err.code == RS_EVALIDATION && err.nfields > 0);
    }

    /* The input's value for one variable; a NULL value renders as "". */
    const char *const vars[] = {"first_name", value,  "username",
                                "jdoe",       "link", "https://roster.test/r?t=AbC",
                                "days_left",  NULL,   NULL};
    char *rsubject = rs_mail_render(subject, vars);
    char *rbody = rs_mail_render(body, vars);
    CHECK(rsubject && rbody);
    /* A subject never shows the (secret) link, whatever its template says. */
    char *safe = rs_mail_render_subject(RS_MAIL_RESET, subject, vars);
    CHECK(!strstr(safe, "t=AbC") || strstr(subject, "t=AbC") || strstr(value, "t=AbC"));
    free(safe);
    build_and_check(from, to, subject, body, message_id);
    build_and_check(from, to, rsubject, rbody, message_id);

    char addr[RS_MAIL_ADDR_MAX + 1];
    if (rs_mail_addr_spec(from, addr, sizeof(addr)) == 0)
        CHECK(rs_mail_addr_spec_ok(addr));
    char tiny[4];
    (void)rs_mail_addr_spec(from, tiny, sizeof(tiny));

    free(rsubject);
    free(rbody);
    free_parts(p, 6);
}

/* --- mode C: addresses and ranges --- */

static void check_range_text(const char *s)
{
    struct rs_ipaddr ip, ip2;
    struct rs_cidr c;
    char text[INET6_ADDRSTRLEN + 8];
    if (rs_ip_parse(s, &ip) == 0) {
        CHECK(ip.family == 4 || ip.family == 6);
        if (ip.family == 4)
            for (int i = 4; i < 16; i++)
                CHECK(ip.a[i] == 0);
        /* An address formats and parses back to itself. */
        rs_ip_format(&ip, text, sizeof(text));
        CHECK(text[0] != '\0');
        CHECK(rs_ip_parse(text, &ip2) == 0);
        CHECK(ip2.family == ip.family && memcmp(ip.a, ip2.a, 16) == 0);
        /* An address is also the range of itself alone. */
        CHECK(rs_cidr_parse(s, &c) == 0);
        CHECK(c.prefix == (ip.family == 4 ? 32 : 128));
        CHECK(rs_cidr_contains(&c, &ip));
    }
    if (rs_cidr_parse(s, &c) == 0) {
        CHECK(c.addr.family == 4 || c.addr.family == 6);
        CHECK(c.prefix >= 0 && c.prefix <= (c.addr.family == 4 ? 32 : 128));
        /* Parsing refuses host bits, so the network lies in its range. */
        CHECK(rs_cidr_contains(&c, &c.addr));
        /* Every range of IPv4 lies in 0.0.0.0/0 and everything in ::/0. */
        struct rs_cidr all;
        CHECK(rs_cidr_parse("::/0", &all) == 0);
        CHECK(rs_cidr_contains(&all, &c.addr));
        if (c.addr.family == 4) {
            CHECK(rs_cidr_parse("0.0.0.0/0", &all) == 0);
            CHECK(rs_cidr_contains(&all, &c.addr));
        }
    }
}

static void cidr_mode(const uint8_t *d, size_t size)
{
    char *text = rs_xstrndup((const char *)d, size);
    json_t *arr = json_array();
    size_t lines = 0;
    /* Up to 80 lines, so that lists over RS_CIDR_LIST_MAX are tried too. */
    for (char *line = text; line && lines < 80; lines++) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        check_range_text(line);
        if (strcmp(line, "#") == 0)
            json_array_append_new(arr, json_integer(1)); /* a wrong type */
        else
            json_array_append_new(arr, json_stringn_nocheck(line, strlen(line)));
        line = nl ? nl + 1 : NULL;
    }
    struct rs_error err;
    rs_error_init(&err);
    if (rs_cidr_list_check(arr, "ip_rules.roles.admin", &err) < 0) {
        CHECK(err.code == RS_EBADREQUEST || err.code == RS_EVALIDATION);
        CHECK(err.nfields > 0);
    } else {
        CHECK(json_array_size(arr) <= RS_CIDR_LIST_MAX);
    }
    (void)rs_cidr_list_allows(arr, json_string_value(json_array_get(arr, 0)));
    (void)rs_cidr_list_allows(arr, "192.0.2.7");
    (void)rs_cidr_list_allows(arr, "2001:db8::1");
    json_decref(arr);
    free(text);
}

/* --- mode T: TOTP --- */

static const unsigned char totp_secret[RS_TOTP_SECRET_BYTES] = "12345678901234567890";

static bool six_digits(const char *s)
{
    return strlen(s) == RS_TOTP_DIGITS && strspn(s, "0123456789") == RS_TOTP_DIGITS;
}

/* RFC 4648 base32 decoding (no padding); -1 on a bad character or length. */
static long base32_decode(const char *s, unsigned char *out, size_t cap)
{
    size_t o = 0;
    unsigned buffer = 0;
    int bits = 0;
    for (const char *p = s; *p; p++) {
        const char *alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
        const char *at = strchr(alphabet, *p);
        if (!at)
            return -1;
        buffer = (buffer << 5) | (unsigned)(at - alphabet);
        bits += 5;
        if (bits >= 8) {
            if (o >= cap)
                return -1;
            out[o++] = (unsigned char)(buffer >> (bits - 8));
            bits -= 8;
        }
    }
    /* Leftover bits are padding and must be zero. */
    if (bits >= 5 || (buffer & ((1u << bits) - 1)) != 0)
        return -1;
    return (long)o;
}

static void totp_mode(const uint8_t *d, size_t size)
{
    /* The input as a code: only exactly six digits may be accepted. */
    char *code = rs_xstrndup((const char *)d, size);
    for (int window = 0; window <= 2; window += 2) {
        int64_t step = -1;
        if (rs_totp_verify(totp_secret, sizeof(totp_secret), code, NOW_MS, window, 0, &step) == 0) {
            CHECK(six_digits(code));
            int64_t now = rs_totp_step(NOW_MS);
            CHECK(step >= now - window && step <= now + window);
            char expect[7];
            rs_totp_code(totp_secret, sizeof(totp_secret), step * RS_TOTP_PERIOD_MS, expect);
            CHECK(strcmp(expect, code) == 0);
            /* Single use: the same code is accepted again only for a later
             * step whose code happens to be the same. */
            int64_t later = step;
            if (rs_totp_verify(totp_secret, sizeof(totp_secret), code, NOW_MS, window, step,
                               &later) == 0)
                CHECK(later > step);
        } else {
            CHECK(step == -1);
        }
    }
    free(code);

    /* The input bytes as a secret: base32 of length ceil(8n/5) that decodes
     * back to them. */
    size_t n = size > 64 ? 64 : size;
    char b32[2 * 64 + 1];
    rs_totp_base32(d, n, b32, sizeof(b32));
    CHECK(strlen(b32) == (n * 8 + 4) / 5);
    unsigned char raw[64];
    CHECK(base32_decode(b32, raw, sizeof(raw)) == (long)n);
    CHECK(n == 0 || memcmp(raw, d, n) == 0);
    /* One byte short: "". */
    char small[2 * 64 + 1];
    memset(small, 'x', sizeof(small));
    rs_totp_base32(d, n, small, n > 0 ? (n * 8 + 4) / 5 : 1);
    CHECK(small[0] == '\0');
    if (n > 0) {
        char out[7];
        rs_totp_code(d, n, NOW_MS, out);
        CHECK(six_digits(out));
    }

    /* The input as issuer and account: the URI holds no raw space, control
     * or non-ASCII byte. */
    char *p[2];
    split_parts(d, size, p, 2);
    rs_totp_base32(totp_secret, sizeof(totp_secret), b32, sizeof(b32));
    char *uri = rs_totp_uri(p[0], p[1], b32);
    CHECK(uri != NULL);
    CHECK(strncmp(uri, "otpauth://totp/", 15) == 0);
    for (const unsigned char *q = (const unsigned char *)uri; *q; q++)
        CHECK(*q > 0x20 && *q < 0x7f);
    /* The label holds one ':' at most (between issuer and account). */
    const char *query = strchr(uri, '?');
    CHECK(query != NULL);
    size_t colons = 0;
    for (const char *q = uri + 15; q < query; q++)
        colons += *q == ':';
    CHECK(colons == (p[0][0] ? 1u : 0u));
    CHECK(strchr(query + 1, '?') == NULL);
    if (strlen(uri) <= 512) {
        char *svg = rs_qr_svg(uri);
        CHECK(svg != NULL);
        CHECK(strncmp(svg, "<svg ", 5) == 0);
        size_t sl = strlen(svg);
        CHECK(sl > 7 && strcmp(svg + sl - 7, "</svg>\n") == 0);
        free(svg);
    }
    free(uri);
    free_parts(p, 2);
}

/* --- mode P: passwords --- */

static bool ascii_alnum(const char *s)
{
    for (; *s; s++) {
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9')))
            return false;
    }
    return true;
}

/* Whether pw holds s verbatim followed by an ASCII byte or its end, where
 * no combining mark can join s's last letter. */
static bool holds_verbatim(const char *pw, const char *s)
{
    size_t n = strlen(s);
    for (const char *at = strstr(pw, s); at; at = strstr(at + 1, s)) {
        if ((unsigned char)at[n] < 0x80)
            return true;
    }
    return false;
}

static void password_mode(const uint8_t *d, size_t size)
{
    if (size < 1)
        return;
    struct rs_password_policy pol;
    rs_password_policy_defaults(&pol);
    pol.min_length = 8 + d[0] % 57;             /* 8..64 */
    pol.max_length = 64 + (d[0] >> 1) % 4 * 16; /* 64..112 */
    pol.profile_words = (d[0] & 0x80) == 0;
    char *p[6];
    split_parts(d + 1, size - 1, p, 6);
    struct rs_user u;
    rs_user_init(&u);
    u.username = p[1];
    u.email = p[2];
    u.first_name = p[3];
    u.last_name = p[4];
    u.employee_id = p[5];

    char *pw = NULL;
    struct rs_error err;
    rs_error_init(&err);
    if (rs_password_normalize(p[0], "password", &pw, &err) < 0) {
        CHECK(pw == NULL);
        CHECK(err.code == RS_EVALIDATION && has_field_rule(&err, "utf8"));
        goto out;
    }
    /* NFKC is idempotent. */
    char *pw2 = NULL;
    CHECK(rs_password_normalize(pw, "password", &pw2, &err) == 0);
    CHECK(strcmp(pw, pw2) == 0);
    free(pw2);

    long len = rs_utf8_length(pw, strlen(pw));
    CHECK(len >= 0);
    rs_error_init(&err);
    int r = rs_password_check(&pol, "password", pw, &u, &err);
    CHECK(has_field_rule(&err, "min_length") == (len < pol.min_length));
    CHECK(has_field_rule(&err, "max_length") == (len > pol.max_length));
    if (!pol.profile_words)
        CHECK(!has_field_rule(&err, "profile_words"));
    if (r == 0) {
        CHECK(err.nfields == 0);
    } else {
        CHECK(err.code == RS_EVALIDATION && err.nfields > 0);
        for (int i = 0; i < err.nfields; i++)
            CHECK(strcmp(err.fields[i].field, "password") == 0);
    }
    /* A password holding the username verbatim is refused (when the rule is
     * on, the username is long enough, and no length rule ends the check
     * first). */
    if (pol.profile_words && len <= pol.max_length && strlen(u.username) >= 4 &&
        ascii_alnum(u.username) && holds_verbatim(pw, u.username))
        CHECK(has_field_rule(&err, "profile_words"));
    /* Without a user, only the length rules apply. */
    rs_error_init(&err);
    if (rs_password_check(&pol, "password", pw, NULL, &err) == 0)
        CHECK(len >= pol.min_length && len <= pol.max_length);
    free(pw);
out:
    free_parts(p, 6);
}

/* --- dispatch --- */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    static void (*const modes[])(const uint8_t *, size_t) = {auth_mode, notify_mode, mail_mode,
                                                             cidr_mode, totp_mode,   password_mode};
    int mode;
    switch (data[0]) {
    case 'A':
        mode = 0;
        break;
    case 'N':
        mode = 1;
        break;
    case 'M':
        mode = 2;
        break;
    case 'C':
        mode = 3;
        break;
    case 'T':
        mode = 4;
        break;
    case 'P':
        mode = 5;
        break;
    default:
        mode = data[0] % 6;
    }
    modes[mode](data + 1, size - 1);
    return 0;
}
