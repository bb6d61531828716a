/* mail.c: mail kinds, templates and RFC 5322 messages (see mail.h). */
#include <stdio.h>

#include "mail.h"
#include "user.h"

/* --- kinds, variables, default templates --- */

static const char *const kind_names[RS_MAIL_KIND_COUNT] = {
    [RS_MAIL_INVITE] = "invite",
    [RS_MAIL_WELCOME] = "welcome",
    [RS_MAIL_RESET] = "reset",
    [RS_MAIL_PASSWORD_CHANGED] = "password_changed",
    [RS_MAIL_ACCOUNT_LOCKED] = "account_locked",
    [RS_MAIL_EXPIRY_NOTICE] = "expiry_notice",
    [RS_MAIL_TWO_FACTOR_CHANGED] = "two_factor_changed",
    [RS_MAIL_EMAIL_CHANGED] = "email_changed",
    [RS_MAIL_TEST] = "test",
};

#define COMMON_VARS "username", "first_name", "last_name", "email", "product", "base_url"

static const char *const vars_invite[] = {COMMON_VARS, "link", "expires_at", NULL};
static const char *const vars_welcome[] = {COMMON_VARS, "sign_in_url", NULL};
static const char *const vars_reset[] = {COMMON_VARS, "link", "expires_minutes", NULL};
static const char *const vars_changed[] = {COMMON_VARS, "changed_at", "ip", NULL};
static const char *const vars_locked[] = {COMMON_VARS, "locked_until", "failed_attempts", NULL};
static const char *const vars_expiry[] = {COMMON_VARS, "expires_at", "days_left", NULL};
static const char *const vars_2fa[] = {COMMON_VARS, "change", "changed_at", "ip", NULL};
static const char *const vars_email[] = {COMMON_VARS, "old_email", "new_email", "changed_at",
                                         NULL};
static const char *const vars_test[] = {COMMON_VARS, NULL};

/* The link carries a secret token: bodies only. */
static const char *const body_only_link[] = {"link", NULL};
static const char *const body_only_none[] = {NULL};

static const char *const *const kind_vars[RS_MAIL_KIND_COUNT] = {
    [RS_MAIL_INVITE] = vars_invite,
    [RS_MAIL_WELCOME] = vars_welcome,
    [RS_MAIL_RESET] = vars_reset,
    [RS_MAIL_PASSWORD_CHANGED] = vars_changed,
    [RS_MAIL_ACCOUNT_LOCKED] = vars_locked,
    [RS_MAIL_EXPIRY_NOTICE] = vars_expiry,
    [RS_MAIL_TWO_FACTOR_CHANGED] = vars_2fa,
    [RS_MAIL_EMAIL_CHANGED] = vars_email,
    [RS_MAIL_TEST] = vars_test,
};

static const char *const default_subjects[RS_MAIL_KIND_COUNT] = {
    [RS_MAIL_INVITE] = "You have been invited to roster",
    [RS_MAIL_WELCOME] = "Welcome to roster",
    [RS_MAIL_RESET] = "Reset your roster password",
    [RS_MAIL_PASSWORD_CHANGED] = "Your roster password was changed",
    [RS_MAIL_ACCOUNT_LOCKED] = "Your roster account is locked",
    [RS_MAIL_EXPIRY_NOTICE] = "Your roster password expires in {{days_left}} days",
    [RS_MAIL_TWO_FACTOR_CHANGED] = "Two-factor sign-in on your roster account changed",
    [RS_MAIL_EMAIL_CHANGED] = "The email address of your roster account was changed",
    [RS_MAIL_TEST] = "roster test message",
};

static const char *const default_bodies[RS_MAIL_KIND_COUNT] = {
    [RS_MAIL_INVITE] =
        "Hello {{first_name}},\n"
        "\n"
        "You have been invited to roster, where your organisation manages its user "
        "accounts. Your username is {{username}}.\n"
        "\n"
        "To choose your password and activate your account, open this link:\n"
        "\n"
        "{{link}}\n"
        "\n"
        "The link works once and expires at {{expires_at}}. If it has expired, ask your "
        "administrator to send you a new invitation.\n",
    [RS_MAIL_WELCOME] = "Hello {{first_name}},\n"
                        "\n"
                        "Your roster account is ready. Your username is {{username}}.\n"
                        "\n"
                        "Sign in here:\n"
                        "\n"
                        "{{sign_in_url}}\n"
                        "\n"
                        "If you have any questions, ask your administrator.\n",
    [RS_MAIL_RESET] =
        "Hello {{first_name}},\n"
        "\n"
        "Someone asked to reset the password of your roster account {{username}}.\n"
        "\n"
        "To choose a new password, open this link within {{expires_minutes}} minutes:\n"
        "\n"
        "{{link}}\n"
        "\n"
        "The link works once.\n"
        "\n"
        "If you did not ask for this, ignore this message: your password stays the same.\n",
    [RS_MAIL_PASSWORD_CHANGED] =
        "Hello {{first_name}},\n"
        "\n"
        "The password of your roster account {{username}} was changed at {{changed_at}} "
        "from the address {{ip}}.\n"
        "\n"
        "If this was you, there is nothing more to do.\n"
        "\n"
        "If it was not you, someone else may know your password: use \"Forgot password\" "
        "on the sign-in page to choose a new one straight away, and tell your "
        "administrator.\n",
    [RS_MAIL_ACCOUNT_LOCKED] =
        "Hello {{first_name}},\n"
        "\n"
        "Your roster account {{username}} has been locked after {{failed_attempts}} failed "
        "sign-in attempts. It stays locked until {{locked_until}}.\n"
        "\n"
        "If these attempts were not yours, someone may be trying to guess your password: "
        "tell your administrator.\n",
    [RS_MAIL_EXPIRY_NOTICE] =
        "Hello {{first_name}},\n"
        "\n"
        "The password of your roster account {{username}} expires in {{days_left}} days, "
        "at {{expires_at}}.\n"
        "\n"
        "Sign in and choose a new password before then to keep your access without "
        "interruption.\n",
    [RS_MAIL_TWO_FACTOR_CHANGED] =
        "Hello {{first_name}},\n"
        "\n"
        "On your roster account {{username}}: {{change}}, at {{changed_at}} from the address "
        "{{ip}}.\n"
        "\n"
        "If this was you (or your administrator at your request), there is nothing more to "
        "do.\n"
        "\n"
        "If it was not, someone may have access to your account: change your password and "
        "tell your administrator straight away.\n",
    [RS_MAIL_EMAIL_CHANGED] =
        "Hello {{first_name}},\n"
        "\n"
        "The email address of your roster account {{username}} was changed at {{changed_at}} "
        "from {{old_email}} to {{new_email}}. This is the last message sent to this "
        "address.\n"
        "\n"
        "If you did not ask for this, tell your administrator straight away: password "
        "resets now go to the new address.\n",
    [RS_MAIL_TEST] =
        "This is a test message from roster.\n"
        "\n"
        "If you can read it, roster can send mail with its current notification settings.\n",
};

const char *rs_mail_kind_name(enum rs_mail_kind k)
{
    return (unsigned)k < RS_MAIL_KIND_COUNT ? kind_names[k] : NULL;
}

int rs_mail_kind_parse(const char *s, enum rs_mail_kind *ret)
{
    for (int k = 0; s && k < RS_MAIL_KIND_COUNT; k++) {
        if (strcmp(kind_names[k], s) == 0) {
            *ret = (enum rs_mail_kind)k;
            return 0;
        }
    }
    return -1;
}

const char *const *rs_mail_variables(enum rs_mail_kind k)
{
    return (unsigned)k < RS_MAIL_KIND_COUNT ? kind_vars[k] : vars_test;
}

const char *const *rs_mail_body_only_variables(enum rs_mail_kind k)
{
    static const char *const *const kind_body_only[RS_MAIL_KIND_COUNT] = {
        [RS_MAIL_INVITE] = body_only_link,
        [RS_MAIL_RESET] = body_only_link,
    };
    const char *const *v = (unsigned)k < RS_MAIL_KIND_COUNT ? kind_body_only[k] : NULL;
    return v ? v : body_only_none;
}

const char *rs_mail_default_subject(enum rs_mail_kind k)
{
    return (unsigned)k < RS_MAIL_KIND_COUNT ? default_subjects[k] : "";
}

const char *rs_mail_default_body(enum rs_mail_kind k)
{
    return (unsigned)k < RS_MAIL_KIND_COUNT ? default_bodies[k] : "";
}

/* --- a growable buffer (capped by the callers' input limits) --- */

struct buf {
    char *p;
    size_t len, cap;
};

static void buf_add(struct buf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        b->p = rs_xrealloc(b->p, cap);
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void buf_str(struct buf *b, const char *s)
{
    buf_add(b, s, strlen(s));
}

static void buf_char(struct buf *b, char c)
{
    buf_add(b, &c, 1);
}

/* --- placeholders --- */

#define NAME_MAX_LEN 64

static bool name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

/* At s (which starts with "{{"): a placeholder "{{ name }}"? Sets the name's
 * start and length and returns the placeholder's length, or 0. */
static size_t placeholder_at(const char *s, const char **ret_name, size_t *ret_len)
{
    size_t i = 2;
    while (s[i] == ' ' || s[i] == '\t')
        i++;
    size_t start = i;
    while (name_char(s[i]))
        i++;
    size_t n = i - start;
    if (n == 0 || n > NAME_MAX_LEN)
        return 0;
    while (s[i] == ' ' || s[i] == '\t')
        i++;
    if (s[i] != '}' || s[i + 1] != '}')
        return 0;
    *ret_name = s + start;
    *ret_len = n;
    return i + 2;
}

static bool var_known(const char *const *vars, const char *name, size_t n)
{
    for (size_t i = 0; vars[i]; i++) {
        if (strlen(vars[i]) == n && memcmp(vars[i], name, n) == 0)
            return true;
    }
    return false;
}

int rs_mail_template_check(enum rs_mail_kind k, const char *field, const char *text,
                           enum rs_mail_part part, struct rs_error *err)
{
    bool is_subject = part != RS_MAIL_PART_BODY;
    size_t len = strlen(text);
    long chars = rs_utf8_length(text, len);
    long max = is_subject ? RS_MAIL_SUBJECT_MAX : RS_MAIL_BODY_MAX;
    if (chars < 0)
        return rs_error_field(err, RS_EVALIDATION, field, "utf8", "%s must be valid UTF-8", field);
    if (chars == 0)
        return rs_error_field(err, RS_EVALIDATION, field, "required", "%s must not be empty",
                              field);
    if (chars > max)
        return rs_error_field(err, RS_EVALIDATION, field, "max_length",
                              "%s must be at most %ld characters", field, max);
    if (is_subject && strpbrk(text, "\r\n"))
        return rs_error_field(err, RS_EVALIDATION, field, "header_injection",
                              "%s must be one line: it becomes the Subject header", field);
    const char *const *vars = rs_mail_variables(k);
    const char *body_only = NULL;
    size_t body_only_len = 0;
    for (const char *p = strstr(text, "{{"); p; p = strstr(p, "{{")) {
        const char *name;
        size_t n;
        size_t plen = placeholder_at(p, &name, &n);
        if (plen == 0)
            return rs_error_field(err, RS_EVALIDATION, field, "placeholder",
                                  "%s has a \"{{\" that opens no placeholder: write "
                                  "{{name}} with a variable's name",
                                  field);
        if (!var_known(vars, name, n)) {
            struct buf list = {0};
            for (size_t i = 0; vars[i]; i++) {
                if (i)
                    buf_str(&list, ", ");
                buf_str(&list, vars[i]);
            }
            int r = rs_error_field(err, RS_EVALIDATION, field, "unknown_variable",
                                   "%s uses {{%.*s}}, which %s mail does not have; it may use "
                                   "%s",
                                   field, (int)n, name, rs_mail_kind_name(k), list.p);
            free(list.p);
            return r;
        }
        /* Reported after every name is known to exist. */
        if (part == RS_MAIL_PART_SUBJECT && !body_only &&
            var_known(rs_mail_body_only_variables(k), name, n)) {
            body_only = name;
            body_only_len = n;
        }
        p += plen;
    }
    if (body_only)
        return rs_error_field(err, RS_EVALIDATION, field, "variable_not_allowed",
                              "%s uses {{%.*s}}, which may appear only in the body: it carries a "
                              "secret token, and subjects are shown in mail lists, the outbox "
                              "and logs",
                              field, (int)body_only_len, body_only);
    return 0;
}

/* Replaces placeholders by their values; those named in `blank` render as "". */
static char *render(const char *tmpl, const char *const *vars, const char *const *blank)
{
    struct buf b = {0};
    buf_add(&b, "", 0);
    const char *p = tmpl;
    for (;;) {
        const char *open = strstr(p, "{{");
        if (!open) {
            buf_str(&b, p);
            break;
        }
        buf_add(&b, p, (size_t)(open - p));
        const char *name;
        size_t n;
        size_t plen = placeholder_at(open, &name, &n);
        if (plen == 0) {
            buf_add(&b, "{{", 2);
            p = open + 2;
            continue;
        }
        for (size_t i = 0; vars && vars[i] && !(blank && var_known(blank, name, n)); i += 2) {
            if (strlen(vars[i]) == n && memcmp(vars[i], name, n) == 0) {
                if (vars[i + 1])
                    buf_str(&b, vars[i + 1]);
                break;
            }
        }
        p = open + plen;
    }
    return b.p;
}

char *rs_mail_render(const char *tmpl, const char *const *vars)
{
    return render(tmpl, vars, NULL);
}

char *rs_mail_render_subject(enum rs_mail_kind k, const char *tmpl, const char *const *vars)
{
    return render(tmpl, vars, rs_mail_body_only_variables(k));
}

/* --- addresses --- */

static bool atext(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL || c >= 0x80;
}

static bool addr_spec_ok_n(const char *s, size_t len)
{
    if (len == 0 || len > RS_MAIL_ADDR_MAX || memchr(s, '\0', len) || rs_utf8_length(s, len) < 0)
        return false;
    const char *at = memchr(s, '@', len);
    if (!at)
        return false;
    size_t llen = (size_t)(at - s);
    const char *d = at + 1;
    size_t dlen = len - llen - 1;
    if (llen == 0 || llen > 64 || dlen == 0 || dlen > 255)
        return false;
    for (size_t i = 0; i < llen; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '.') {
            if (i == 0 || i == llen - 1 || s[i - 1] == '.')
                return false;
        } else if (!atext(c)) {
            return false;
        }
    }
    size_t label = 0;
    for (size_t i = 0; i < dlen; i++) {
        unsigned char c = (unsigned char)d[i];
        if (c == '.') {
            if (label == 0 || d[i - 1] == '-')
                return false;
            label = 0;
            continue;
        }
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c >= 0x80 || (c == '-' && label > 0);
        if (!ok || ++label > 63)
            return false;
    }
    return label > 0 && d[dlen - 1] != '-';
}

bool rs_mail_addr_spec_ok(const char *s)
{
    return s && addr_spec_ok_n(s, strlen(s));
}

static bool is_wsp(char c)
{
    return c == ' ' || c == '\t';
}

/* Splits a mailbox into its display name (unquoted; "" when none) and its
 * addr-spec, both new strings. -1 if not one mailbox. */
static int mailbox_parse(const char *mb, char **ret_name, char **ret_addr)
{
    size_t len = strlen(mb);
    /* Under 998 with "From: " in front, even when the name is not folded. */
    if (len > 900 || strpbrk(mb, "\r\n") || rs_utf8_length(mb, len) < 0)
        return -1;
    const char *b = mb;
    const char *e = mb + len;
    while (b < e && is_wsp(*b))
        b++;
    while (e > b && is_wsp(e[-1]))
        e--;
    if (e == b)
        return -1;
    if (e[-1] != '>') {
        if (!addr_spec_ok_n(b, (size_t)(e - b)))
            return -1;
        *ret_name = rs_xstrdup("");
        *ret_addr = rs_xstrndup(b, (size_t)(e - b));
        return 0;
    }
    struct buf name = {0};
    buf_add(&name, "", 0);
    const char *p = b;
    while (p < e && is_wsp(*p))
        p++;
    if (p < e && *p == '"') {
        p++;
        while (p < e && *p != '"') {
            if (*p == '\\' && p + 1 < e)
                p++;
            buf_char(&name, *p);
            p++;
        }
        if (p >= e)
            goto bad;
        p++;
        while (p < e && is_wsp(*p))
            p++;
    } else {
        const char *ns = p;
        while (p < e && *p != '<') {
            if (!atext((unsigned char)*p) && !is_wsp(*p) && *p != '.')
                goto bad;
            p++;
        }
        const char *ne = p;
        while (ne > ns && is_wsp(ne[-1]))
            ne--;
        buf_add(&name, ns, (size_t)(ne - ns));
    }
    if (p >= e || *p != '<')
        goto bad;
    const char *as = p + 1;
    const char *ae = e - 1;
    if (!addr_spec_ok_n(as, (size_t)(ae - as)))
        goto bad;
    *ret_name = name.p;
    *ret_addr = rs_xstrndup(as, (size_t)(ae - as));
    return 0;
bad:
    free(name.p);
    return -1;
}

int rs_mail_addr_spec(const char *mailbox, char *out, size_t cap)
{
    char *name = NULL;
    char *addr = NULL;
    if (!mailbox || mailbox_parse(mailbox, &name, &addr) < 0)
        return -1;
    int r = -1;
    if (strlen(addr) < cap) {
        rs_strlcpy(out, addr, cap);
        r = 0;
    }
    free(name);
    free(addr);
    return r;
}

/* --- dates --- */

/* Howard Hinnant's civil_from_days: days since 1970-01-01 to y-m-d. */
static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t yy = (int64_t)yoe + era * 400;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = yy + (*m <= 2);
}

void rs_mail_date(int64_t ms, char out[RS_MAIL_DATE_MAX])
{
    static const char *const wd[] = {"Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"};
    static const char *const mon[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    int64_t secs = ms / 1000 - (ms % 1000 < 0);
    int64_t days = secs / 86400 - (secs % 86400 < 0);
    int64_t sod = secs - days * 86400;
    int64_t y;
    unsigned m, d;
    civil_from_days(days, &y, &m, &d);
    int64_t w = days % 7;
    if (w < 0)
        w += 7;
    snprintf(out, RS_MAIL_DATE_MAX, "%s, %02u %s %04lld %02d:%02d:%02d +0000", wd[w], d, mon[m - 1],
             (long long)y, (int)(sod / 3600), (int)(sod / 60 % 60), (int)(sod % 60));
}

/* --- header encoding --- */

static bool printable_ascii(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p < 0x20 || *p > 0x7e)
            return false;
    }
    return strstr(s, "=?") == NULL;
}

static size_t utf8_seq_len(unsigned char c)
{
    if (c < 0x80)
        return 1;
    if ((c & 0xe0) == 0xc0)
        return 2;
    if ((c & 0xf0) == 0xe0)
        return 3;
    return 4;
}

static void b64_add(struct buf *b, const unsigned char *s, size_t n)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)s[i] << 16;
        if (i + 1 < n)
            v |= (unsigned)s[i + 1] << 8;
        if (i + 2 < n)
            v |= s[i + 2];
        char q[4] = {tab[(v >> 18) & 63], tab[(v >> 12) & 63], i + 1 < n ? tab[(v >> 6) & 63] : '=',
                     i + 2 < n ? tab[v & 63] : '='};
        buf_add(b, q, 4);
    }
}

/* Writes s (valid UTF-8) as RFC 2047 B encoded words of at most 75
 * characters, each holding whole characters, folded onto continuation lines
 * (CRLF SP) so no line passes 78 characters; `used` is how much of the first
 * line the header name already took. */
static void encoded_words(struct buf *b, const char *s, size_t used)
{
    size_t n = strlen(s);
    size_t i = 0;
    bool first = true;
    while (i < n || first) {
        /* room for base64 on this line, less "=?UTF-8?B?" and "?=" */
        size_t room = (first ? 78 - used : 76) - 12;
        if (room > 63)
            room = 63;
        size_t max_bytes = room / 4 * 3;
        size_t take = 0;
        while (i + take < n) {
            size_t cl = utf8_seq_len((unsigned char)s[i + take]);
            if (take + cl > max_bytes)
                break;
            take += cl;
        }
        if (!first)
            buf_str(b, "\r\n ");
        buf_str(b, "=?UTF-8?B?");
        b64_add(b, (const unsigned char *)s + i, take);
        buf_str(b, "?=");
        i += take;
        first = false;
    }
}

/* Printable ASCII folded at spaces so lines stay within 78 characters when
 * the words allow it. */
static void folded_ascii(struct buf *b, const char *s, size_t used)
{
    size_t line = used;
    const char *p = s;
    bool first = true;
    for (;;) {
        const char *sp = strchr(p, ' ');
        size_t wlen = sp ? (size_t)(sp - p) : strlen(p);
        if (!first) {
            if (line + 1 + wlen > 78 && wlen > 0) {
                buf_str(b, "\r\n");
                line = 0;
            }
            buf_char(b, ' ');
            line++;
        }
        buf_add(b, p, wlen);
        line += wlen;
        first = false;
        if (!sp)
            break;
        p = sp + 1;
    }
}

/* Whether s has a run of more than max bytes where folding cannot break it:
 * folding breaks only at a space that a word follows, so a run of spaces
 * counts as part of the run. */
static bool long_word(const char *s, size_t max)
{
    size_t run = 0;
    for (; *s; s++) {
        run = *s == ' ' && s[1] && s[1] != ' ' ? 0 : run + 1;
        if (run > max)
            return true;
    }
    return false;
}

static void header_text(struct buf *b, const char *name, const char *value)
{
    buf_str(b, name);
    buf_str(b, ": ");
    size_t used = strlen(name) + 2;
    /* Encoded words also carry what folding at spaces could not keep within
     * a line: RFC 5322 allows 998 characters at most. */
    if (printable_ascii(value) && !long_word(value, 900))
        folded_ascii(b, value, used);
    else
        encoded_words(b, value, used);
    buf_str(b, "\r\n");
}

static bool atom_phrase(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p >= 0x80 || (!atext(*p) && *p != ' '))
            return false;
    }
    return true;
}

static void header_from(struct buf *b, const char *name, const char *addr)
{
    buf_str(b, "From: ");
    if (name[0]) {
        if (!printable_ascii(name)) {
            encoded_words(b, name, 6);
        } else if (atom_phrase(name)) {
            buf_str(b, name);
        } else {
            buf_char(b, '"');
            for (const char *p = name; *p; p++) {
                if (*p == '"' || *p == '\\')
                    buf_char(b, '\\');
                buf_char(b, *p);
            }
            buf_char(b, '"');
        }
        buf_str(b, " <");
        buf_str(b, addr);
        buf_str(b, ">\r\n");
    } else {
        buf_str(b, addr);
        buf_str(b, "\r\n");
    }
}

/* --- quoted-printable (RFC 2045 section 6.7) --- */

static void qp_line(struct buf *b, const unsigned char *s, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t col = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = s[i];
        bool last = i + 1 == n;
        char tok[3];
        size_t tlen;
        if ((c >= 33 && c <= 126 && c != '=') || ((c == ' ' || c == '\t') && !last)) {
            tok[0] = (char)c;
            tlen = 1;
        } else {
            tok[0] = '=';
            tok[1] = hex[c >> 4];
            tok[2] = hex[c & 15];
            tlen = 3;
        }
        /* A soft break "=" needs a column of its own, except after the last token. */
        if (col + tlen > (last ? 76u : 75u)) {
            buf_str(b, "=\r\n");
            col = 0;
        }
        buf_add(b, tok, tlen);
        col += tlen;
    }
    buf_str(b, "\r\n");
}

static void qp_body(struct buf *b, const char *body)
{
    const char *p = body;
    while (*p) {
        size_t n = strcspn(p, "\r\n");
        qp_line(b, (const unsigned char *)p, n);
        p += n;
        if (p[0] == '\r' && p[1] == '\n')
            p += 2;
        else if (*p)
            p++;
    }
    if (body[0] == '\0')
        buf_str(b, "\r\n");
}

/* --- the message --- */

static int check_header(const char *field, const char *v, struct rs_error *err)
{
    if (strpbrk(v, "\r\n"))
        return rs_error_field(err, RS_EVALIDATION, field, "header_injection",
                              "%s must not contain line breaks: it goes into a mail header", field);
    return 0;
}

static bool message_id_ok(const char *id)
{
    const char *at = strchr(id, '@');
    if (!at || at == id || at[1] == '\0' || strchr(at + 1, '@') || strlen(id) > 250)
        return false;
    for (const unsigned char *p = (const unsigned char *)id; *p; p++) {
        if (*p < 33 || *p > 126 || strchr("<>()[]\\,;:\"", *p))
            return false;
    }
    return true;
}

int rs_mail_build(const char *from, const char *to, const char *subject, const char *body,
                  int64_t now_ms, const char *message_id, char **ret, struct rs_error *err)
{
    char *name = NULL;
    char *addr = NULL;
    struct buf b = {0};
    int r = 0;
    if (!body)
        body = "";
    if (check_header("from", from, err) < 0 || check_header("to", to, err) < 0 ||
        check_header("subject", subject, err) < 0 ||
        check_header("message_id", message_id, err) < 0) {
        r = -RS_EVALIDATION;
        goto out;
    }
    if (mailbox_parse(from, &name, &addr) < 0) {
        r = rs_error_field(err, RS_EVALIDATION, "from", "mailbox",
                           "from must be one mailbox: addr@domain or Name <addr@domain>");
        goto out;
    }
    if (!rs_mail_addr_spec_ok(to)) {
        r = rs_error_field(err, RS_EVALIDATION, "to", "addr_spec",
                           "to must be one address such as name@example.com");
        goto out;
    }
    if (!message_id_ok(message_id)) {
        r = rs_error_field(err, RS_EVALIDATION, "message_id", "message_id",
                           "message_id must be id@host in printable ASCII, without <>");
        goto out;
    }
    size_t slen = strlen(subject);
    size_t blen = strlen(body);
    if (rs_utf8_length(subject, slen) < 0) {
        r = rs_error_field(err, RS_EVALIDATION, "subject", "utf8", "subject must be valid UTF-8");
        goto out;
    }
    if (rs_utf8_length(body, blen) < 0) {
        r = rs_error_field(err, RS_EVALIDATION, "body", "utf8", "body must be valid UTF-8");
        goto out;
    }
    if (slen + blen > RS_MAIL_MESSAGE_MAX) {
        r = rs_error_field(err, RS_EVALIDATION, "body", "max_length",
                           "the message must be at most %d bytes", RS_MAIL_MESSAGE_MAX);
        goto out;
    }
    char date[RS_MAIL_DATE_MAX];
    rs_mail_date(now_ms, date);
    header_from(&b, name, addr);
    buf_str(&b, "To: ");
    buf_str(&b, to);
    buf_str(&b, "\r\n");
    header_text(&b, "Subject", subject);
    buf_str(&b, "Date: ");
    buf_str(&b, date);
    buf_str(&b, "\r\nMessage-ID: <");
    buf_str(&b, message_id);
    buf_str(&b, ">\r\n"
                "MIME-Version: 1.0\r\n"
                "Content-Type: text/plain; charset=UTF-8\r\n"
                "Content-Transfer-Encoding: quoted-printable\r\n"
                "\r\n");
    qp_body(&b, body);
    *ret = RS_TAKE_PTR(b.p);
out:
    free(b.p);
    free(name);
    free(addr);
    return r;
}
