/* user.c: the user record's rules: normalisation, validation, uniqueness keys,
 * sorting and cursors (see user.h). Pure: no I/O. */
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <utf8proc.h>

#include "b64.h"
#include "user.h"

static const char *const type_names[RS_USER_TYPE_COUNT] = {"standard", "admin", "api", "guest"};
static const char *const status_names[RS_STATUS_COUNT] = {"active", "inactive", "locked",
                                                          "pending"};
static const char *const sort_names[RS_SORT_FIELD_COUNT] = {
    "id", "username", "email", "first_name", "last_name", "created_at", "updated_at"};

void rs_user_init(struct rs_user *u)
{
    memset(u, 0, sizeof(*u));
}

void rs_user_release(struct rs_user *u)
{
    free(u->username);
    free(u->email);
    free(u->first_name);
    free(u->last_name);
    rs_user_init(u);
}

static char *dup_or_null(const char *s)
{
    return s ? rs_xstrdup(s) : NULL;
}

void rs_user_copy(struct rs_user *dst, const struct rs_user *src)
{
    *dst = *src;
    dst->username = dup_or_null(src->username);
    dst->email = dup_or_null(src->email);
    dst->first_name = dup_or_null(src->first_name);
    dst->last_name = dup_or_null(src->last_name);
}

static void replace(char **dst, const char *src)
{
    free(*dst);
    *dst = dup_or_null(src);
}

void rs_user_apply(struct rs_user *dst, const struct rs_user *src, unsigned mask)
{
    if (mask & RS_UF_USERNAME)
        replace(&dst->username, src->username);
    if (mask & RS_UF_EMAIL)
        replace(&dst->email, src->email);
    if (mask & RS_UF_FIRST_NAME)
        replace(&dst->first_name, src->first_name);
    if (mask & RS_UF_LAST_NAME)
        replace(&dst->last_name, src->last_name);
    if (mask & RS_UF_TYPE)
        dst->type = src->type;
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

/* NFC-normalises and trims *s in place (replacing the string). */
static int normalize_field(char **s, const char *field, struct rs_error *err)
{
    if (!*s)
        return 0;
    utf8proc_uint8_t *nfc = NULL;
    utf8proc_ssize_t n = utf8proc_map((const utf8proc_uint8_t *)*s, 0, &nfc,
                                      UTF8PROC_NULLTERM | UTF8PROC_STABLE | UTF8PROC_COMPOSE);
    if (n < 0)
        return rs_error_field(err, RS_EVALIDATION, field, "encoding",
                              "%s is not valid UTF-8", field);
    /* Trim white space of any script (U+00A0, U+3000, ...) at both ends. */
    const char *start = (const char *)nfc, *end = start;
    const utf8proc_uint8_t *p = nfc;
    utf8proc_int32_t cp;
    bool leading = true;
    for (utf8proc_ssize_t len; (len = utf8proc_iterate(p, -1, &cp)) > 0 && cp != 0; p += len) {
        bool space = utf8proc_category(cp) == UTF8PROC_CATEGORY_ZS || (cp >= 0x09 && cp <= 0x0d);
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
    if ((mask & RS_UF_USERNAME) && normalize_field(&u->username, "username", err) < 0)
        r = -RS_EVALIDATION;
    if ((mask & RS_UF_EMAIL) && normalize_field(&u->email, "email", err) < 0)
        r = -RS_EVALIDATION;
    if ((mask & RS_UF_FIRST_NAME) && normalize_field(&u->first_name, "first_name", err) < 0)
        r = -RS_EVALIDATION;
    if ((mask & RS_UF_LAST_NAME) && normalize_field(&u->last_name, "last_name", err) < 0)
        r = -RS_EVALIDATION;
    return r;
}

char *rs_fold_key(const char *s)
{
    utf8proc_uint8_t *out = NULL;
    utf8proc_ssize_t n =
        utf8proc_map((const utf8proc_uint8_t *)s, 0, &out,
                     UTF8PROC_NULLTERM | UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_COMPAT |
                         UTF8PROC_CASEFOLD | UTF8PROC_IGNORE);
    if (n < 0)
        return NULL;
    return (char *)out;
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
    int before = err ? err->nfields : 0;
    check_text(v, "username", RS_USERNAME_MIN, RS_USERNAME_MAX, err);
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

int rs_user_validate(const struct rs_user *u, unsigned mask, unsigned required_mask,
                     struct rs_error *out)
{
    /* Checks report into a local error, so the verdict holds whether out is
     * NULL, fresh or already full; then the faults are copied to out. */
    struct rs_error local, *err = &local;
    rs_error_init(&local);
    static const struct {
        unsigned bit;
        const char *name;
        size_t offset;
    } fields[] = {
        {RS_UF_USERNAME, "username", offsetof(struct rs_user, username)},
        {RS_UF_EMAIL, "email", offsetof(struct rs_user, email)},
        {RS_UF_FIRST_NAME, "first_name", offsetof(struct rs_user, first_name)},
        {RS_UF_LAST_NAME, "last_name", offsetof(struct rs_user, last_name)},
    };
    bool failed = false;
    for (size_t i = 0; i < RS_ARRAY_LEN(fields); i++) {
        const char *v = *(char *const *)((const char *)u + fields[i].offset);
        if ((required_mask & fields[i].bit) && (!(mask & fields[i].bit) || !v)) {
            rs_error_field(err, RS_EVALIDATION, fields[i].name, "required", "%s is required",
                           fields[i].name);
            failed = true;
            continue;
        }
        if (!(mask & fields[i].bit))
            continue;
        if (!v) {
            rs_error_field(err, RS_EVALIDATION, fields[i].name, "required",
                           "%s must not be null", fields[i].name);
            failed = true;
            continue;
        }
        if (fields[i].bit == RS_UF_USERNAME)
            check_username(v, err);
        else if (fields[i].bit == RS_UF_EMAIL)
            check_email(v, err);
        else
            check_text(v, fields[i].name, 1, RS_NAME_MAX, err);
    }
    if ((mask & RS_UF_TYPE) && (unsigned)u->type >= RS_USER_TYPE_COUNT) {
        rs_error_field(err, RS_EVALIDATION, "type", "enum",
                       "type must be one of standard, admin, api, guest");
        failed = true;
    }
    failed = failed || local.code != RS_OK;
    for (int i = 0; out && i < local.nfields; i++)
        rs_error_field(out, local.code, local.fields[i].field, local.fields[i].rule, "%s",
                       local.fields[i].message);
    return failed ? -RS_EVALIDATION : 0;
}

void rs_user_query_init(struct rs_user_query *q)
{
    memset(q, 0, sizeof(*q));
    q->limit = RS_LIST_LIMIT_DEFAULT;
}

void rs_user_query_release(struct rs_user_query *q)
{
    free(q->q);
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
                                  "last_name, created_at, updated_at, each optionally prefixed "
                                  "with '-'");
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
        if (q->sort[i].field == RS_SORT_ID || q->sort[i].field == RS_SORT_CREATED_AT ||
            q->sort[i].field == RS_SORT_UPDATED_AT) {
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
