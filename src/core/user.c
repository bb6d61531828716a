/* user.c: the user record's rules: normalisation, validation, uniqueness keys,
 * sorting and cursors (see user.h). Pure: no I/O. */
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <regex.h>
#include <utf8proc.h>

#include "b64.h"
#include "user.h"

static const char *const type_names[RS_USER_TYPE_COUNT] = {"standard", "admin", "api", "guest"};
static const char *const status_names[RS_STATUS_COUNT] = {"active", "inactive", "locked",
                                                          "pending"};
static const char *const sort_names[RS_SORT_FIELD_COUNT] = {
    "id",         "username", "email",    "first_name",  "last_name", "created_at",
    "updated_at", "department", "location", "position", "employee_id", "type",
    "status",     "last_login_at"};

bool rs_sort_is_integer(enum rs_user_sort_field f)
{
    return f == RS_SORT_ID || f == RS_SORT_CREATED_AT || f == RS_SORT_UPDATED_AT ||
           f == RS_SORT_LAST_LOGIN_AT;
}

/* The string fields of a user, described once for copying, applying,
 * comparing, normalising and checking. */
enum text_kind { K_USERNAME, K_EMAIL, K_NAME, K_TEXT, K_PHONE, K_EMPLOYEE_ID, K_ROLE };

static const struct string_field {
    unsigned bit;
    const char *name;
    size_t offset;
    enum text_kind kind;
} string_fields[] = {
    {RS_UF_USERNAME, "username", offsetof(struct rs_user, username), K_USERNAME},
    {RS_UF_EMAIL, "email", offsetof(struct rs_user, email), K_EMAIL},
    {RS_UF_FIRST_NAME, "first_name", offsetof(struct rs_user, first_name), K_NAME},
    {RS_UF_LAST_NAME, "last_name", offsetof(struct rs_user, last_name), K_NAME},
    {RS_UF_PHONE, "phone", offsetof(struct rs_user, phone), K_PHONE},
    {RS_UF_EMPLOYEE_ID, "employee_id", offsetof(struct rs_user, employee_id), K_EMPLOYEE_ID},
    {RS_UF_DEPARTMENT, "department", offsetof(struct rs_user, department), K_TEXT},
    {RS_UF_POSITION, "position", offsetof(struct rs_user, position), K_TEXT},
    {RS_UF_LOCATION, "location", offsetof(struct rs_user, location), K_TEXT},
    {RS_UF_ROLE, "role", offsetof(struct rs_user, role), K_ROLE},
};

static char **field_slot(struct rs_user *u, const struct string_field *f)
{
    return (char **)((char *)u + f->offset);
}

static const char *field_value(const struct rs_user *u, const struct string_field *f)
{
    return *(char *const *)((const char *)u + f->offset);
}

void rs_user_init(struct rs_user *u)
{
    memset(u, 0, sizeof(*u));
}

void rs_user_release(struct rs_user *u)
{
    for (size_t i = 0; i < RS_ARRAY_LEN(string_fields); i++)
        free(*field_slot(u, &string_fields[i]));
    free(u->status_reason);
    free(u->status_note);
    json_decref(u->custom);
    rs_user_init(u);
}

static char *dup_or_null(const char *s)
{
    return s ? rs_xstrdup(s) : NULL;
}

void rs_user_copy(struct rs_user *dst, const struct rs_user *src)
{
    *dst = *src;
    for (size_t i = 0; i < RS_ARRAY_LEN(string_fields); i++)
        *field_slot(dst, &string_fields[i]) = dup_or_null(field_value(src, &string_fields[i]));
    dst->status_reason = dup_or_null(src->status_reason);
    dst->status_note = dup_or_null(src->status_note);
    dst->custom = src->custom ? json_deep_copy(src->custom) : NULL;
}

static void replace(char **dst, const char *src)
{
    free(*dst);
    *dst = dup_or_null(src);
}

void rs_user_apply(struct rs_user *dst, const struct rs_user *src, unsigned mask)
{
    for (size_t i = 0; i < RS_ARRAY_LEN(string_fields); i++) {
        if (mask & string_fields[i].bit)
            replace(field_slot(dst, &string_fields[i]), field_value(src, &string_fields[i]));
    }
    if (mask & RS_UF_TYPE)
        dst->type = src->type;
    if (mask & RS_UF_STATUS)
        dst->status = src->status;
    if (mask & RS_UF_MANAGER)
        dst->manager_id = src->manager_id;
    if (mask & RS_UF_CUSTOM) {
        /* Merge per key: a JSON null removes the key. */
        if (!dst->custom)
            dst->custom = json_object();
        const char *key;
        json_t *v;
        json_object_foreach(src->custom, key, v)
        {
            if (json_is_null(v))
                json_object_del(dst->custom, key);
            else
                json_object_set(dst->custom, key, v);
        }
        if (json_object_size(dst->custom) == 0) {
            json_decref(dst->custom);
            dst->custom = NULL;
        }
    }
}

char *rs_user_display_name(const struct rs_user *u)
{
    return rs_xasprintf("%s %s", u->first_name ? u->first_name : "",
                        u->last_name ? u->last_name : "");
}

static int parse_name(const char *const *names, int count, const char *s, int *ret)
{
    for (int i = 0; i < count; i++) {
        if (strcmp(names[i], s) == 0) {
            *ret = i;
            return 0;
        }
    }
    return -1;
}

const char *rs_user_type_name(enum rs_user_type t)
{
    return (unsigned)t < RS_USER_TYPE_COUNT ? type_names[t] : "standard";
}

int rs_user_type_parse(const char *s, enum rs_user_type *ret)
{
    int v;
    if (parse_name(type_names, RS_USER_TYPE_COUNT, s, &v) < 0)
        return -1;
    *ret = (enum rs_user_type)v;
    return 0;
}

const char *rs_user_status_name(enum rs_user_status s)
{
    return (unsigned)s < RS_STATUS_COUNT ? status_names[s] : "active";
}

int rs_user_status_parse(const char *s, enum rs_user_status *ret)
{
    int v;
    if (parse_name(status_names, RS_STATUS_COUNT, s, &v) < 0)
        return -1;
    *ret = (enum rs_user_status)v;
    return 0;
}

long rs_utf8_length(const char *s, size_t len)
{
    long count = 0;
    const utf8proc_uint8_t *p = (const utf8proc_uint8_t *)s;
    utf8proc_ssize_t left = (utf8proc_ssize_t)len;
    while (left > 0) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t n = utf8proc_iterate(p, left, &cp);
        if (n <= 0)
            return -1;
        p += n;
        left -= n;
        count++;
    }
    return count;
}

/* Code points decomposed on the stack by map_utf8; longer strings (rare:
 * names and keys are at most a few hundred) take utf8proc_map's path. */
#define MAP_STACK_CP 512

static bool is_ascii(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p >= 0x80)
            return false;
    return true;
}

/* Exactly what utf8proc_map(s, 0, &out, opts) returns (a new string, or
 * NULL when s is not valid UTF-8), at about half the cost. utf8proc_map
 * decomposes twice, first only to count the code points, then into a
 * buffer of that size, and then composes and re-encodes (utf8proc.c,
 * utf8proc_map_custom); here one decomposition into a stack buffer serves,
 * followed by the same utf8proc_reencode. On every create this runs for
 * each text field and each uniqueness and search key. */
static char *map_utf8(const char *s, utf8proc_option_t opts)
{
    utf8proc_int32_t buf[MAP_STACK_CP];
    utf8proc_ssize_t n = utf8proc_decompose_custom((const utf8proc_uint8_t *)s, 0, buf,
                                                   MAP_STACK_CP, opts, NULL, NULL);
    if (n < 0)
        return NULL;
    /* utf8proc_reencode needs one byte beyond the n code points. */
    if (n >= MAP_STACK_CP) {
        utf8proc_uint8_t *out = NULL;
        if (utf8proc_map((const utf8proc_uint8_t *)s, 0, &out, opts) < 0)
            return NULL;
        return (char *)out;
    }
    utf8proc_ssize_t len = utf8proc_reencode(buf, n, opts);
    if (len < 0)
        return NULL;
    char *out = rs_xmalloc((size_t)len + 1);
    memcpy(out, buf, (size_t)len + 1);
    return out;
}

/* White space of any script (U+00A0, U+3000, ...) and the ASCII controls
 * \t \n \v \f \r: what normalize_field trims. */
static bool is_trimmed_space(utf8proc_int32_t cp)
{
    return utf8proc_category(cp) == UTF8PROC_CATEGORY_ZS || (cp >= 0x09 && cp <= 0x0d);
}

/* NFC-normalises and trims *s in place (replacing the string). ASCII is
 * its own NFC (no ASCII character decomposes, or composes with another),
 * so ASCII text skips utf8proc. */
static int normalize_field(char **s, const char *field, struct rs_error *err)
{
    if (!*s)
        return 0;
    char *nfc = NULL;
    if (!is_ascii(*s)) {
        nfc = map_utf8(*s, UTF8PROC_NULLTERM | UTF8PROC_STABLE | UTF8PROC_COMPOSE);
        if (!nfc)
            return rs_error_field(err, RS_EVALIDATION, field, "encoding", "%s is not valid UTF-8",
                                  field);
    }
    const char *text = nfc ? nfc : *s;
    const char *start = text, *end = start;
    const utf8proc_uint8_t *p = (const utf8proc_uint8_t *)text;
    utf8proc_int32_t cp;
    bool leading = true;
    for (utf8proc_ssize_t len; (len = utf8proc_iterate(p, -1, &cp)) > 0 && cp != 0; p += len) {
        bool space = is_trimmed_space(cp);
        if (leading && space) {
            start = (const char *)(p + len);
            continue;
        }
        leading = false;
        if (!space)
            end = (const char *)(p + len);
    }
    if (end < start)
        end = start;
    char *out = rs_xstrndup(start, (size_t)(end - start));
    free(nfc);
    free(*s);
    *s = out;
    return 0;
}

int rs_user_normalize(struct rs_user *u, unsigned mask, struct rs_error *err)
{
    int r = 0;
    for (size_t i = 0; i < RS_ARRAY_LEN(string_fields); i++) {
        const struct string_field *f = &string_fields[i];
        char **slot = field_slot(u, f);
        if (!(mask & f->bit))
            continue;
        /* "" stays "": the checks refuse it (null, not "", clears a field). */
        if (normalize_field(slot, f->name, err) < 0)
            r = -RS_EVALIDATION;
    }
    return r;
}

char *rs_text_clean(const char *s)
{
    if (!s)
        return NULL;
    char *copy = rs_xstrdup(s);
    if (normalize_field(&copy, "text", NULL) < 0 || !*copy) {
        free(copy);
        return NULL;
    }
    return copy;
}

/* The NFKC case fold of ASCII is its lower case: no ASCII character has a
 * compatibility decomposition, composes or is default-ignorable, and only
 * A-Z fold (test_core_user checks all 127 against utf8proc). */
char *rs_fold_key(const char *s)
{
    if (is_ascii(s)) {
        size_t n = strlen(s);
        char *out = rs_xmalloc(n + 1);
        for (size_t i = 0; i <= n; i++)
            out[i] = (s[i] >= 'A' && s[i] <= 'Z') ? (char)(s[i] - 'A' + 'a') : s[i];
        return out;
    }
    return map_utf8(s, UTF8PROC_NULLTERM | UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_COMPAT |
                           UTF8PROC_CASEFOLD | UTF8PROC_IGNORE);
}

char *rs_user_search_key(const struct rs_user *u, const char *username_key, const char *email_key,
                         const char *employee_id_key)
{
    if (!username_key || !email_key || !employee_id_key || !u->first_name || !u->last_name)
        return NULL;
    char *first = rs_fold_key(u->first_name), *last = rs_fold_key(u->last_name);
    char *key = NULL;
    if (first && last)
        key = rs_xasprintf("%s %s %s %s %s", username_key, email_key, first, last, employee_id_key);
    free(first);
    free(last);
    return key;
}

/* A string of 1..max code points without control characters. */
static void check_text(const char *v, const char *field, long min, long max, struct rs_error *err)
{
    long len = rs_utf8_length(v, strlen(v));
    if (len < 0) {
        rs_error_field(err, RS_EVALIDATION, field, "encoding", "%s is not valid UTF-8", field);
        return;
    }
    if (len < min) {
        if (min == 1)
            rs_error_field(err, RS_EVALIDATION, field, "required", "%s must not be empty", field);
        else
            rs_error_field(err, RS_EVALIDATION, field, "min_length",
                           "%s must be at least %ld characters", field, min);
        return;
    }
    if (len > max) {
        rs_error_field(err, RS_EVALIDATION, field, "max_length",
                       "%s must be at most %ld characters (got %ld)", field, max, len);
        return;
    }
    const utf8proc_uint8_t *p = (const utf8proc_uint8_t *)v;
    utf8proc_int32_t cp;
    for (utf8proc_ssize_t n; (n = utf8proc_iterate(p, -1, &cp)) > 0 && cp != 0; p += n) {
        utf8proc_category_t cat = utf8proc_category(cp);
        /* Format characters (bidi overrides that disguise a name, invisible
         * marks) are refused, except the joiners some scripts need. */
        bool format = cat == UTF8PROC_CATEGORY_CF && cp != 0x200c && cp != 0x200d;
        if (cat == UTF8PROC_CATEGORY_CC || cat == UTF8PROC_CATEGORY_ZL ||
            cat == UTF8PROC_CATEGORY_ZP || format) {
            rs_error_field(err, RS_EVALIDATION, field, "characters",
                           "%s must not contain control or format characters", field);
            return;
        }
    }
}

int rs_text_check(const char *v, const char *field, long min, long max, struct rs_error *err)
{
    int before = err->nfields;
    check_text(v, field, min, max, err);
    return err->nfields > before ? -RS_EVALIDATION : 0;
}

static bool is_letter_or_digit(utf8proc_int32_t cp)
{
    switch (utf8proc_category(cp)) {
    case UTF8PROC_CATEGORY_LU:
    case UTF8PROC_CATEGORY_LL:
    case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO:
    case UTF8PROC_CATEGORY_MN:
    case UTF8PROC_CATEGORY_MC:
    case UTF8PROC_CATEGORY_ND:
        return true;
    default:
        return false;
    }
}

static void check_username(const char *v, struct rs_error *err)
{
    /* Lengths are checked against the rules first; this checks encoding and
     * the absolute bounds settings cannot move (1..RS_USERNAME_MAX). */
    int before = err ? err->nfields : 0;
    check_text(v, "username", 1, RS_USERNAME_MAX, err);
    if (err && err->nfields != before)
        return;
    const utf8proc_uint8_t *p = (const utf8proc_uint8_t *)v;
    utf8proc_int32_t cp;
    bool first = true;
    for (utf8proc_ssize_t n; (n = utf8proc_iterate(p, -1, &cp)) > 0 && cp != 0; p += n) {
        utf8proc_category_t cat = utf8proc_category(cp);
        bool starts_ok = cat == UTF8PROC_CATEGORY_LU || cat == UTF8PROC_CATEGORY_LL ||
                         cat == UTF8PROC_CATEGORY_LT || cat == UTF8PROC_CATEGORY_LM ||
                         cat == UTF8PROC_CATEGORY_LO || cat == UTF8PROC_CATEGORY_ND;
        bool ok = first ? starts_ok
                        : is_letter_or_digit(cp) || cp == '.' || cp == '_' || cp == '-';
        if (!ok) {
            rs_error_field(err, RS_EVALIDATION, "username", "characters",
                           "username may contain only letters, digits, '.', '_' and '-', and "
                           "must start with a letter or digit");
            return;
        }
        first = false;
    }
}

/* Practical address syntax (RFC 5321 limits, dot-atom local part, a domain
 * with at least two labels); internationalised domains and local parts in
 * UTF-8 are accepted as RFC 6531 allows. */
static void check_email(const char *v, struct rs_error *err)
{
    size_t len = strlen(v);
    const char *at = strrchr(v, '@');
    const char *why = NULL;
    if (len == 0) {
        rs_error_field(err, RS_EVALIDATION, "email", "required", "email must not be empty");
        return;
    }
    if (len > RS_EMAIL_MAX) {
        rs_error_field(err, RS_EVALIDATION, "email", "max_length",
                       "email must be at most %d bytes", RS_EMAIL_MAX);
        return;
    }
    if (rs_utf8_length(v, len) < 0)
        why = "is not valid UTF-8";
    else if (!at || at == v || at[1] == '\0')
        why = "must look like name@example.com";
    else if ((size_t)(at - v) > 64)
        why = "has a local part longer than 64 bytes";
    else if (v[0] == '.' || at[-1] == '.' || strstr(v, ".."))
        why = "has a misplaced '.'";
    if (!why) {
        /* Beyond ASCII: no controls, format characters, separators or spaces. */
        const utf8proc_uint8_t *u = (const utf8proc_uint8_t *)v;
        utf8proc_int32_t cp;
        for (utf8proc_ssize_t n; !why && (n = utf8proc_iterate(u, -1, &cp)) > 0 && cp != 0;
             u += n) {
            utf8proc_category_t cat = utf8proc_category(cp);
            if (cp >= 0x80 && (cat == UTF8PROC_CATEGORY_CC || cat == UTF8PROC_CATEGORY_CF ||
                               cat == UTF8PROC_CATEGORY_ZS || cat == UTF8PROC_CATEGORY_ZL ||
                               cat == UTF8PROC_CATEGORY_ZP || cat == UTF8PROC_CATEGORY_CN ||
                               cat == UTF8PROC_CATEGORY_CO))
                why = "contains a space or control character";
        }
    }
    if (!why) {
        for (const char *p = v; *p && !why; p++) {
            unsigned char c = (unsigned char)*p;
            if (c <= 0x20 || c == 0x7f || c == '(' || c == ')' || c == '<' || c == '>' ||
                c == ',' || c == ';' || c == ':' || c == '\\' || c == '"' || c == '[' ||
                c == ']' || (c == '@' && p != at))
                why = "contains a character not allowed in an address";
        }
    }
    if (!why) {
        const char *d = at + 1;
        size_t dlen = strlen(d);
        if (!strchr(d, '.') || d[dlen - 1] == '.')
            why = "must have a domain of at least two labels, such as example.com";
        for (const char *label = d; !why && *label;) {
            const char *dot = strchr(label, '.');
            size_t l = dot ? (size_t)(dot - label) : strlen(label);
            if (l == 0 || l > 63 || label[0] == '-' || label[l - 1] == '-')
                why = "has an invalid domain";
            for (size_t i = 0; !why && i < l; i++) {
                unsigned char c = (unsigned char)label[i];
                if (!(isalnum(c) || c == '-' || c >= 0x80))
                    why = "has an invalid domain";
            }
            label = dot ? dot + 1 : label + l;
        }
    }
    if (why)
        rs_error_field(err, RS_EVALIDATION, "email", "format", "email %s", why);
}

static const char *const default_reserved[] = {"admin", "administrator", "root", "system",
                                               "support", "api", "null"};
#define DEFAULT_PHONE_PATTERN "^\\+?[0-9][0-9 ().-]{5,24}$"

static char **dup_list(char *const *src, size_t n)
{
    char **out = rs_xcalloc(n ? n : 1, sizeof(char *));
    for (size_t i = 0; i < n; i++)
        out[i] = rs_xstrdup(src[i]);
    return out;
}

void rs_user_rules_defaults(struct rs_user_rules *r)
{
    memset(r, 0, sizeof(*r));
    r->username_min_length = RS_USERNAME_MIN;
    r->username_max_length = RS_USERNAME_MAX;
    r->reserved_usernames = dup_list((char *const *)default_reserved,
                                     RS_ARRAY_LEN(default_reserved));
    r->nreserved = RS_ARRAY_LEN(default_reserved);
    r->email_allowed_domains = rs_xcalloc(1, sizeof(char *));
    r->phone_pattern = rs_xstrdup(DEFAULT_PHONE_PATTERN);
}

static void free_list(char **list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(list[i]);
    free(list);
}

void rs_user_rules_release(struct rs_user_rules *r)
{
    free(r->username_pattern);
    free_list(r->reserved_usernames, r->nreserved);
    free_list(r->email_allowed_domains, r->ndomains);
    free(r->phone_pattern);
    free(r->employee_id_pattern);
    memset(r, 0, sizeof(*r));
}

void rs_user_rules_copy(struct rs_user_rules *dst, const struct rs_user_rules *src)
{
    *dst = *src;
    dst->username_pattern = dup_or_null(src->username_pattern);
    dst->reserved_usernames = dup_list(src->reserved_usernames, src->nreserved);
    dst->email_allowed_domains = dup_list(src->email_allowed_domains, src->ndomains);
    dst->phone_pattern = dup_or_null(src->phone_pattern);
    dst->employee_id_pattern = dup_or_null(src->employee_id_pattern);
}

/* rs_pattern_ok reads the pattern as glibc's regcomp will: it builds one
 * node per atom and expands every interval and '+' into copies of its
 * operand, so "(a{40}){40}" is 1,600 nodes and twenty nested "(...+)" a
 * million. The reader tracks, per open group, the nodes so far and those of
 * the last atom (what a quantifier repeats). */
#define PATTERN_QUANTIFIERS_MAX 32
#define PATTERN_DEPTH_MAX 16

struct pattern_scan {
    uint64_t total[PATTERN_DEPTH_MAX + 1]; /* nodes in the group so far */
    uint64_t last[PATTERN_DEPTH_MAX + 1];  /* nodes of its last atom */
    int depth;
};

static bool scan_atom(struct pattern_scan *ps, uint64_t nodes)
{
    ps->total[ps->depth] += nodes;
    ps->last[ps->depth] = nodes;
    return ps->total[ps->depth] <= RS_PATTERN_NODES_MAX;
}

/* The end of the bracket expression opening at p[i] ('['), or 0. */
static size_t bracket_end(const char *p, size_t n, size_t i)
{
    size_t j = i + 1;
    if (j < n && p[j] == '^')
        j++;
    if (j < n && p[j] == ']') /* a leading ']' is a member */
        j++;
    while (j < n && p[j] != ']') {
        if (p[j] == '[' && j + 1 < n && (p[j + 1] == ':' || p[j + 1] == '.' || p[j + 1] == '=')) {
            char kind = p[j + 1];
            size_t k = j + 2;
            while (k + 1 < n && !(p[k] == kind && p[k + 1] == ']'))
                k++;
            if (k + 1 >= n)
                return 0;
            j = k + 2;
            continue;
        }
        j++;
    }
    return j < n ? j : 0;
}

/* The copies an interval "{m}", "{m,}" or "{m,n}" at p[i] makes (its end in
 * *end), or 0 if it is not one. */
static uint64_t interval_copies(const char *p, size_t n, size_t i, size_t *end)
{
    uint64_t lo = 0, hi = 0;
    size_t j = i + 1;
    bool any = false;
    while (j < n && p[j] >= '0' && p[j] <= '9' && lo <= RS_PATTERN_REPEAT_MAX) {
        lo = lo * 10 + (uint64_t)(p[j++] - '0');
        any = true;
    }
    if (!any)
        return 0;
    hi = lo;
    if (j < n && p[j] == ',') {
        j++;
        if (j < n && p[j] >= '0' && p[j] <= '9') {
            hi = 0;
            while (j < n && p[j] >= '0' && p[j] <= '9' && hi <= RS_PATTERN_REPEAT_MAX)
                hi = hi * 10 + (uint64_t)(p[j++] - '0');
            if (hi < lo)
                return 0;
        } else {
            hi = lo + 1; /* "{m,}": m copies and a star */
        }
    }
    if (j >= n || p[j] != '}' || hi > RS_PATTERN_REPEAT_MAX)
        return 0;
    *end = j;
    return hi ? hi : 1;
}

/* Screens p and compiles it into *re (to regfree) if it passes. */
static bool pattern_compile(const char *p, regex_t *re)
{
    size_t n = strlen(p);
    if (n > RS_PATTERN_MAX)
        return false;
    struct pattern_scan ps = {.depth = 0};
    int quantifiers = 0;
    bool after_quantifier = false;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        bool ok = true;
        if (c == '*' || c == '+' || c == '?' || c == '{') {
            if (after_quantifier || ++quantifiers > PATTERN_QUANTIFIERS_MAX)
                return false;
            uint64_t copies = c == '+' ? 2 : 1;
            if (c == '{' && !(copies = interval_copies(p, n, i, &i)))
                return false;
            uint64_t *last = &ps.last[ps.depth];
            ps.total[ps.depth] += *last * (copies - 1);
            *last *= copies;
            if (ps.total[ps.depth] > RS_PATTERN_NODES_MAX)
                return false;
            after_quantifier = true;
            continue;
        }
        after_quantifier = false;
        if (c == '\\') {
            if (i + 1 >= n)
                return false;
            /* A back-reference makes matching exponential in the worst case. */
            if (p[++i] >= '1' && p[i] <= '9')
                return false;
            ok = scan_atom(&ps, 1);
        } else if (c == '[') {
            size_t j = bracket_end(p, n, i);
            if (!j)
                return false;
            i = j;
            ok = scan_atom(&ps, 1);
        } else if (c == '(') {
            /* An empty group or alternative ("()", "(|a)", "a||b") matches
             * nothing a '?' could not say, and chains of them, repeated,
             * take regcomp and regexec hundreds of milliseconds. */
            if (ps.depth == PATTERN_DEPTH_MAX || (i + 1 < n && (p[i + 1] == ')' || p[i + 1] == '|')))
                return false;
            ps.depth++;
            ps.total[ps.depth] = 0;
            ps.last[ps.depth] = 0;
        } else if (c == ')') {
            if (ps.depth == 0)
                return false;
            uint64_t group = ps.total[ps.depth] + 1;
            ps.depth--;
            ok = scan_atom(&ps, group);
        } else if (c == '|') {
            if (i == 0 || p[i - 1] == '(' || p[i - 1] == '|' || i + 1 == n || p[i + 1] == ')' ||
                p[i + 1] == '|')
                return false;
            ps.last[ps.depth] = 0;
            ok = ++ps.total[ps.depth] <= RS_PATTERN_NODES_MAX;
        } else {
            ok = scan_atom(&ps, 1);
        }
        if (!ok)
            return false;
    }
    return ps.depth == 0 && regcomp(re, p, REG_EXTENDED | REG_NOSUB) == 0;
}

bool rs_pattern_ok(const char *p)
{
    regex_t re;
    if (!pattern_compile(p, &re))
        return false;
    regfree(&re);
    return true;
}

int rs_pattern_match(const char *pattern, const char *v)
{
    regex_t re;
    if (!pattern_compile(pattern, &re))
        return -1;
    int m = regexec(&re, v, 0, NULL, 0) == 0;
    regfree(&re);
    return m;
}

static void check_pattern(const char *v, const char *pattern, const char *field, const char *rule,
                          struct rs_error *err)
{
    if (pattern && rs_pattern_match(pattern, v) != 1)
        rs_error_field(err, RS_EVALIDATION, field, rule,
                       "%s does not match the required pattern %s", field, pattern);
}

static void check_role(const char *v, struct rs_error *err)
{
    size_t n = strlen(v);
    bool ok = n >= 1 && n <= RS_ROLE_MAX && v[0] >= 'a' && v[0] <= 'z';
    for (size_t i = 1; ok && i < n; i++) {
        char c = v[i];
        ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
    }
    if (!ok)
        rs_error_field(err, RS_EVALIDATION, "role", "format",
                       "role must be a role key: a lower-case letter, then up to %d lower-case "
                       "letters, digits, '_', '.' or '-'",
                       RS_ROLE_MAX - 1);
}

static void check_username_rules(const char *v, const struct rs_user_rules *r,
                                 struct rs_error *err)
{
    int before = err->nfields;
    long len = rs_utf8_length(v, strlen(v));
    if (len >= 0 && len < r->username_min_length) {
        rs_error_field(err, RS_EVALIDATION, "username", "min_length",
                       "username must be at least %d characters", r->username_min_length);
        return;
    }
    if (len > r->username_max_length) {
        rs_error_field(err, RS_EVALIDATION, "username", "max_length",
                       "username must be at most %d characters (got %ld)",
                       r->username_max_length, len);
        return;
    }
    check_username(v, err);
    if (err->nfields != before)
        return;
    check_pattern(v, r->username_pattern, "username", "pattern", err);
    char *key = rs_fold_key(v);
    for (size_t i = 0; key && i < r->nreserved; i++) {
        char *reserved = rs_fold_key(r->reserved_usernames[i]);
        bool hit = reserved && strcmp(reserved, key) == 0;
        free(reserved);
        if (hit) {
            rs_error_field(err, RS_EVALIDATION, "username", "reserved",
                           "username \"%s\" is reserved", v);
            break;
        }
    }
    free(key);
}

static void check_email_rules(const char *v, const struct rs_user_rules *r, struct rs_error *err)
{
    int before = err->nfields;
    check_email(v, err);
    if (err->nfields != before || r->ndomains == 0)
        return;
    const char *domain = strrchr(v, '@') + 1;
    char *d = rs_fold_key(domain);
    bool allowed = false;
    for (size_t i = 0; d && !allowed && i < r->ndomains; i++) {
        char *a = rs_fold_key(r->email_allowed_domains[i]);
        allowed = a && strcmp(a, d) == 0;
        free(a);
    }
    free(d);
    if (!allowed)
        rs_error_field(err, RS_EVALIDATION, "email", "domain",
                       "email must be at an allowed domain (%s%s)", r->email_allowed_domains[0],
                       r->ndomains > 1 ? ", ..." : "");
}

static void check_string_field(const struct string_field *f, const char *v,
                               const struct rs_user_rules *r, struct rs_error *err)
{
    int before = err->nfields;
    switch (f->kind) {
    case K_USERNAME:
        check_username_rules(v, r, err);
        break;
    case K_EMAIL:
        check_email_rules(v, r, err);
        break;
    case K_NAME:
        check_text(v, f->name, 1, RS_NAME_MAX, err);
        break;
    case K_TEXT:
        check_text(v, f->name, 1, RS_TEXT_FIELD_MAX, err);
        break;
    case K_PHONE:
        check_text(v, f->name, 1, RS_PHONE_MAX, err);
        if (err->nfields == before && r->phone_pattern &&
            rs_pattern_match(r->phone_pattern, v) != 1)
            rs_error_field(err, RS_EVALIDATION, "phone", "format",
                           "phone must be a telephone number such as +1 555-0100");
        break;
    case K_EMPLOYEE_ID:
        check_text(v, f->name, 1, RS_EMPLOYEE_ID_MAX, err);
        if (err->nfields == before)
            check_pattern(v, r->employee_id_pattern, "employee_id", "pattern", err);
        break;
    case K_ROLE:
        check_role(v, err);
        break;
    }
}

int rs_user_check(const struct rs_user *u, unsigned mask, unsigned required_mask,
                  const struct rs_user_rules *rules, struct rs_error *out)
{
    /* Checks report into a local error, so the verdict holds whether out is
     * NULL, fresh or already full; then the faults are copied to out. */
    struct rs_error local, *err = &local;
    struct rs_user_rules builtin;
    rs_error_init(&local);
    if (!rules) {
        rs_user_rules_defaults(&builtin);
        rules = &builtin;
    }
    for (size_t i = 0; i < RS_ARRAY_LEN(string_fields); i++) {
        const struct string_field *f = &string_fields[i];
        const char *v = field_value(u, f);
        bool required = (required_mask & f->bit) != 0;
        if (required && (!(mask & f->bit) || !v)) {
            rs_error_field(err, RS_EVALIDATION, f->name, "required", "%s is required", f->name);
            continue;
        }
        if (!(mask & f->bit))
            continue;
        if (!v) {
            /* Only optional fields may be cleared. */
            if (f->kind == K_USERNAME || f->kind == K_EMAIL || f->kind == K_NAME)
                rs_error_field(err, RS_EVALIDATION, f->name, "required",
                               "%s must not be null", f->name);
            continue;
        }
        check_string_field(f, v, rules, err);
    }
    if ((required_mask & RS_UF_MANAGER) && (!(mask & RS_UF_MANAGER) || u->manager_id == 0))
        rs_error_field(err, RS_EVALIDATION, "manager_id", "required", "manager_id is required");
    else if ((mask & RS_UF_MANAGER) && u->manager_id < 0)
        rs_error_field(err, RS_EVALIDATION, "manager_id", "exists",
                       "manager_id must name an existing user");
    if ((mask & RS_UF_TYPE) && (unsigned)u->type >= RS_USER_TYPE_COUNT)
        rs_error_field(err, RS_EVALIDATION, "type", "enum",
                       "type must be one of standard, admin, api, guest");
    if ((mask & RS_UF_STATUS) && u->status != RS_STATUS_ACTIVE && u->status != RS_STATUS_PENDING)
        rs_error_field(err, RS_EVALIDATION, "status", "enum",
                       "a new user's status must be active or pending");

    if (rules == &builtin)
        rs_user_rules_release(&builtin);
    for (int i = 0; out && i < local.nfields; i++)
        rs_error_field(out, local.code, local.fields[i].field, local.fields[i].rule, "%s",
                       local.fields[i].message);
    return local.code != RS_OK ? -RS_EVALIDATION : 0;
}

unsigned rs_user_rules_required(const struct rs_user_rules *rules)
{
    return (rules->require_department ? RS_UF_DEPARTMENT : 0u) |
           (rules->require_manager ? RS_UF_MANAGER : 0u) | (rules->require_role ? RS_UF_ROLE : 0u);
}

int rs_user_validate(const struct rs_user *u, unsigned mask, unsigned required_mask,
                     struct rs_error *err)
{
    return rs_user_check(u, mask, required_mask, NULL, err);
}

void rs_user_query_init(struct rs_user_query *q)
{
    memset(q, 0, sizeof(*q));
    q->limit = RS_LIST_LIMIT_DEFAULT;
}

void rs_user_query_release(struct rs_user_query *q)
{
    free(q->q);
    free(q->department);
    free(q->location);
    free(q->position);
    free(q->role);
    for (int i = 0; i < q->ncf; i++) {
        free(q->cf_keys[i]);
        free(q->cf_values[i]);
    }
    for (int i = 0; i < q->cursor.nvalues; i++)
        free(q->cursor.values[i]);
    rs_user_query_init(q);
}

const char *rs_sort_field_name(enum rs_user_sort_field f)
{
    return (unsigned)f < RS_SORT_FIELD_COUNT ? sort_names[f] : "id";
}

int rs_sort_parse(const char *s, struct rs_user_query *q, struct rs_error *err)
{
    struct rs_sort_key keys[RS_SORT_MAX_KEYS];
    int n = 0;
    const char *p = s;
    if (*p == '\0') {
        q->nsort = 0; /* the default order: by id */
        return 0;
    }
    /* Every comma-separated item must name a field: "a,", ",a" and "a,,b" are refused. */
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        bool desc = false;
        if (len && (*p == '-' || *p == '+')) {
            desc = *p == '-';
            p++;
            len--;
        }
        int field = -1;
        for (int i = 0; i < RS_SORT_FIELD_COUNT; i++) {
            if (strlen(sort_names[i]) == len && memcmp(sort_names[i], p, len) == 0)
                field = i;
        }
        if (field < 0)
            return rs_error_field(err, RS_EBADREQUEST, "sort", "enum",
                                  "sort must list fields from id, username, email, first_name, "
                                  "last_name, department, location, position, employee_id, "
                                  "type, status, created_at, updated_at, last_login_at, each "
                                  "optionally prefixed with '-'");
        if (n == RS_SORT_MAX_KEYS)
            return rs_error_field(err, RS_EBADREQUEST, "sort", "max_items",
                                  "sort may name at most %d fields", RS_SORT_MAX_KEYS);
        for (int i = 0; i < n; i++) {
            if ((int)keys[i].field == field)
                return rs_error_field(err, RS_EBADREQUEST, "sort", "unique",
                                      "sort names %s twice", sort_names[field]);
        }
        keys[n].field = (enum rs_user_sort_field)field;
        keys[n].desc = desc;
        n++;
        if (!comma)
            break;
        p = comma + 1;
    }
    q->nsort = n;
    memcpy(q->sort, keys, sizeof(keys[0]) * (size_t)n);
    return 0;
}

char *rs_user_sort_value(const struct rs_user *u, enum rs_user_sort_field f)
{
    switch (f) {
    case RS_SORT_ID:
        return rs_xasprintf("%" PRId64, u->id);
    case RS_SORT_USERNAME:
        return u->username ? rs_fold_key(u->username) : NULL;
    case RS_SORT_EMAIL:
        return u->email ? rs_fold_key(u->email) : NULL;
    case RS_SORT_FIRST_NAME:
        return dup_or_null(u->first_name);
    case RS_SORT_LAST_NAME:
        return dup_or_null(u->last_name);
    case RS_SORT_CREATED_AT:
        return rs_xasprintf("%" PRId64, u->created_at);
    case RS_SORT_UPDATED_AT:
        return rs_xasprintf("%" PRId64, u->updated_at);
    case RS_SORT_LAST_LOGIN_AT:
        return rs_xasprintf("%" PRId64, u->last_login_at);
    /* Stores keep absent optional text as "", which sorts first. */
    case RS_SORT_DEPARTMENT:
        return rs_xstrdup(u->department ? u->department : "");
    case RS_SORT_LOCATION:
        return rs_xstrdup(u->location ? u->location : "");
    case RS_SORT_POSITION:
        return rs_xstrdup(u->position ? u->position : "");
    case RS_SORT_EMPLOYEE_ID:
        return rs_xstrdup(u->employee_id ? u->employee_id : "");
    case RS_SORT_TYPE:
        return rs_xstrdup(rs_user_type_name(u->type));
    case RS_SORT_STATUS:
        return rs_xstrdup(rs_user_status_name(u->status));
    default:
        return NULL;
    }
}

/* Cursor text before base64url: "c1" then, per sort key, "\x1f<field>:<dir>:<value>",
 * then "\x1f<id>". Values never contain \x1f (control characters are refused). */
char *rs_cursor_encode(const struct rs_user_query *q, const struct rs_user *last)
{
    size_t cap = 64, len = 0;
    char *raw = rs_xmalloc(cap);
    len = (size_t)snprintf(raw, cap, "c1");
    for (int i = 0; i < q->nsort; i++) {
        char *v = rs_user_sort_value(last, q->sort[i].field);
        char *part = rs_xasprintf("\x1f%d:%d:%s", (int)q->sort[i].field, q->sort[i].desc ? 1 : 0,
                                  v ? v : "");
        size_t pl = strlen(part);
        if (len + pl + 1 > cap) {
            cap = (len + pl + 1) * 2;
            raw = rs_xrealloc(raw, cap);
        }
        memcpy(raw + len, part, pl + 1);
        len += pl;
        free(part);
        free(v);
    }
    char *tail = rs_xasprintf("\x1f%" PRId64, last->id);
    size_t tl = strlen(tail);
    raw = rs_xrealloc(raw, len + tl + 1);
    memcpy(raw + len, tail, tl + 1);
    len += tl;
    free(tail);
    char *out = rs_b64url_encode((const unsigned char *)raw, len);
    free(raw);
    return out;
}

static int bad_cursor(struct rs_error *err)
{
    return rs_error_field(err, RS_EBADREQUEST, "cursor", "format",
                          "cursor is not one this list issued for the same sort; start again "
                          "without a cursor");
}

int rs_cursor_decode(const char *s, struct rs_user_query *q, struct rs_error *err)
{
    size_t len = 0;
    if (strlen(s) > 4096)
        return bad_cursor(err);
    unsigned char *raw = rs_b64url_decode(s, &len);
    if (!raw)
        return bad_cursor(err);
    char *text = rs_xstrndup((const char *)raw, len);
    free(raw);
    struct rs_cursor c = {0};
    int r = -1;
    char *save = NULL;
    char *part = strtok_r(text, "\x1f", &save);
    if (!part || strcmp(part, "c1") != 0)
        goto out;
    for (int i = 0; i < q->nsort; i++) {
        part = strtok_r(NULL, "\x1f", &save);
        int field, desc, used = 0;
        if (!part || sscanf(part, "%d:%d:%n", &field, &desc, &used) != 2 || used == 0 ||
            field != (int)q->sort[i].field || desc != (q->sort[i].desc ? 1 : 0))
            goto out;
        const char *value = part + used;
        if (rs_sort_is_integer(q->sort[i].field)) {
            /* Integer keys must be integers, so every backend reads them alike. */
            char *iend = NULL;
            (void)strtoll(value, &iend, 10);
            if (!*value || *iend)
                goto out;
        }
        c.values[c.nvalues++] = rs_xstrdup(value);
    }
    part = strtok_r(NULL, "\x1f", &save);
    char *end = NULL;
    if (!part)
        goto out;
    c.id = strtoll(part, &end, 10);
    if (*end != '\0' || strtok_r(NULL, "\x1f", &save))
        goto out;
    r = 0;
out:
    free(text);
    if (r < 0) {
        for (int i = 0; i < c.nvalues; i++)
            free(c.values[i]);
        return bad_cursor(err);
    }
    for (int i = 0; i < q->cursor.nvalues; i++)
        free(q->cursor.values[i]);
    q->cursor = c;
    q->has_cursor = true;
    return 0;
}

void rs_user_page_release(struct rs_user_page *p)
{
    for (size_t i = 0; i < p->count; i++)
        rs_user_release(&p->items[i]);
    free(p->items);
    memset(p, 0, sizeof(*p));
}
