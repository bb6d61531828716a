/* authsettings.c: the "auth" and "notifications" settings documents (see
 * authsettings.h). One table-driven decoder serves both: a member is an
 * integer or boolean at an offset in the settings struct (null restores the
 * default at the same offset) or a function for anything richer. */
#include <stddef.h>
#include <stdio.h>

#include "access.h"
#include "authsettings.h"
#include "user.h"

/* --- the decoder --- */

struct ctx {
    void *s;         /* the settings being built */
    const void *def; /* defaults of the same struct type */
    struct rs_error *err;
    bool lenient;   /* a stored document: unknown members skipped, read-only ones read */
    bool resetting; /* a whole section set to null: read-only members are left alone */
    char path[128];
};

typedef int (*member_fn)(struct ctx *c, json_t *v, int arg); /* v may be JSON null */

enum mtype { M_INT, M_BOOL, M_FN };

struct member {
    const char *section;
    const char *name;
    enum mtype type;
    size_t off;
    long min, max;
    member_fn fn;
    int arg;
    const char *hint; /* appended to a range error */
};

struct doc_desc {
    const struct member *members;
    size_t n;
    size_t version_off;
    int (*post)(struct ctx *c);
};

static int type_err(struct ctx *c, const char *path, const char *want)
{
    return rs_error_field(c->err, RS_EBADREQUEST, path, "type", "%s must be %s", path, want);
}

static int read_only(struct ctx *c, const char *path, const char *how)
{
    return rs_error_field(c->err, RS_EBADREQUEST, path, "read_only", "%s is read-only%s", path,
                          how);
}

static int set_int(struct ctx *c, const struct member *m, json_t *v)
{
    int *dst = (int *)((char *)c->s + m->off);
    if (json_is_null(v)) {
        *dst = *(const int *)((const char *)c->def + m->off);
        return 0;
    }
    if (!json_is_integer(v))
        return type_err(c, c->path, "a whole number");
    json_int_t n = json_integer_value(v);
    if (n < m->min || n > m->max)
        return rs_error_field(c->err, RS_EVALIDATION, c->path, "range",
                              "%s must be from %ld to %ld%s", c->path, m->min, m->max,
                              m->hint ? m->hint : "");
    *dst = (int)n;
    return 0;
}

static int set_bool(struct ctx *c, const struct member *m, json_t *v)
{
    bool *dst = (bool *)((char *)c->s + m->off);
    if (json_is_null(v)) {
        *dst = *(const bool *)((const char *)c->def + m->off);
        return 0;
    }
    if (!json_is_boolean(v))
        return type_err(c, c->path, "true or false");
    *dst = json_is_true(v);
    return 0;
}

static int set_member(struct ctx *c, const struct member *m, json_t *v)
{
    snprintf(c->path, sizeof(c->path), "%s.%s", m->section, m->name);
    switch (m->type) {
    case M_INT:
        return set_int(c, m, v);
    case M_BOOL:
        return set_bool(c, m, v);
    default:
        return m->fn(c, v, m->arg);
    }
}

static bool known_section(const struct doc_desc *d, const char *name)
{
    for (size_t i = 0; i < d->n; i++) {
        if (strcmp(d->members[i].section, name) == 0)
            return true;
    }
    return false;
}

static const struct member *find_member(const struct doc_desc *d, const char *section,
                                        const char *name)
{
    for (size_t i = 0; i < d->n; i++) {
        if (strcmp(d->members[i].section, section) == 0 && strcmp(d->members[i].name, name) == 0)
            return &d->members[i];
    }
    return NULL;
}

static void keep_first(int *r, int mr)
{
    if (mr < 0 && *r == 0)
        *r = mr;
}

/* Applies doc onto c->s: strict for a patch, lenient for a stored document.
 * Every fault is reported, then the cross-member checks run on a clean
 * result. */
static int apply_doc(struct ctx *c, const struct doc_desc *d, json_t *doc)
{
    if (!json_is_object(doc))
        return rs_error_set(c->err, RS_EBADREQUEST, "the settings must be a JSON object");
    int r = 0;
    const char *section;
    json_t *sv;
    json_object_foreach(doc, section, sv)
    {
        if (strcmp(section, "version") == 0) {
            if (!c->lenient)
                keep_first(&r, read_only(c, "version",
                                         ": it is set by the server; send If-Match to guard a "
                                         "change"));
            else if (json_is_integer(sv))
                *(int64_t *)((char *)c->s + d->version_off) = json_integer_value(sv);
            continue;
        }
        if (!known_section(d, section)) {
            if (!c->lenient)
                keep_first(&r, rs_error_field(c->err, RS_EBADREQUEST, section, "unknown_field",
                                              "unknown settings section \"%.64s\"", section));
            continue;
        }
        if (json_is_null(sv)) {
            c->resetting = true;
            for (size_t i = 0; i < d->n; i++) {
                if (strcmp(d->members[i].section, section) == 0)
                    keep_first(&r, set_member(c, &d->members[i], sv));
            }
            c->resetting = false;
            continue;
        }
        if (!json_is_object(sv)) {
            keep_first(&r, type_err(c, section, "an object"));
            continue;
        }
        const char *name;
        json_t *v;
        json_object_foreach(sv, name, v)
        {
            const struct member *m = find_member(d, section, name);
            if (!m) {
                if (!c->lenient) {
                    snprintf(c->path, sizeof(c->path), "%s.%.64s", section, name);
                    keep_first(&r, rs_error_field(c->err, RS_EBADREQUEST, c->path, "unknown_field",
                                                  "unknown setting \"%s\"", c->path));
                }
                continue;
            }
            keep_first(&r, set_member(c, m, v));
        }
    }
    if (r == 0 && d->post)
        r = d->post(c);
    if (r < 0)
        return c->err ? -c->err->code : r;
    return 0;
}

/* --- auth: members --- */

#define AS(c) ((struct rs_auth_settings *)(c)->s)
#define AS_DEF(c) ((const struct rs_auth_settings *)(c)->def)

static const char *const require_names[] = {"off", "admins", "roles", "everyone"};

const char *rs_2fa_require_name(enum rs_2fa_require r)
{
    return (unsigned)r < RS_ARRAY_LEN(require_names) ? require_names[r] : "off";
}

static int m_require(struct ctx *c, json_t *v, int arg)
{
    if (json_is_null(v)) {
        AS(c)->two_factor.require = AS_DEF(c)->two_factor.require;
        return 0;
    }
    if (!json_is_string(v))
        return type_err(c, c->path, "a string");
    for (size_t i = 0; i < RS_ARRAY_LEN(require_names); i++) {
        if (strcmp(require_names[i], json_string_value(v)) == 0) {
            AS(c)->two_factor.require = (enum rs_2fa_require)i;
            return 0;
        }
    }
    return rs_error_field(c->err, RS_EVALIDATION, c->path, "enum",
                          "%s must be one of off, admins, roles, everyone", c->path);
}

static int m_2fa_roles(struct ctx *c, json_t *v, int arg)
{
    if (json_is_null(v)) {
        json_decref(AS(c)->two_factor.roles);
        AS(c)->two_factor.roles = json_deep_copy(AS_DEF(c)->two_factor.roles);
        return 0;
    }
    if (!json_is_array(v))
        return type_err(c, c->path, "an array of role keys");
    size_t n = json_array_size(v);
    if (n > RS_2FA_ROLES_MAX)
        return rs_error_field(c->err, RS_EVALIDATION, c->path, "max_items",
                              "%s may hold at most %d roles", c->path, RS_2FA_ROLES_MAX);
    int r = 0;
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_array_get(v, i);
        char p[200];
        snprintf(p, sizeof(p), "%.100s[%zu]", c->path, i);
        if (!json_is_string(e)) {
            keep_first(&r, type_err(c, p, "a role key (a string)"));
            continue;
        }
        if (!rs_access_key_ok(json_string_value(e))) {
            keep_first(&r, rs_error_field(c->err, RS_EVALIDATION, p, "format",
                                          "%s must be a role key: a lower-case letter, then up "
                                          "to 63 of a-z, 0-9, _ . -",
                                          p));
            continue;
        }
        for (size_t j = 0; j < i; j++) {
            if (json_equal(json_array_get(v, j), e)) {
                keep_first(&r, rs_error_field(c->err, RS_EVALIDATION, p, "unique",
                                              "%s repeats role \"%s\"", p, json_string_value(e)));
                break;
            }
        }
    }
    if (r < 0)
        return r;
    json_decref(AS(c)->two_factor.roles);
    AS(c)->two_factor.roles = json_deep_copy(v);
    return 0;
}

static int m_issuer(struct ctx *c, json_t *v, int arg)
{
    const char *text;
    if (json_is_null(v)) {
        text = AS_DEF(c)->two_factor.issuer;
    } else {
        if (!json_is_string(v))
            return type_err(c, c->path, "a string");
        text = json_string_value(v);
        size_t len = json_string_length(v);
        long chars = rs_utf8_length(text, len);
        if (strspn(text, " ") == len)
            return rs_error_field(c->err, RS_EVALIDATION, c->path, "required",
                                  "%s must not be blank: authenticator apps show it beside the "
                                  "account",
                                  c->path);
        if (chars < 0 || chars > RS_ISSUER_MAX)
            return rs_error_field(c->err, RS_EVALIDATION, c->path, "max_length",
                                  "%s must be at most %d characters", c->path, RS_ISSUER_MAX);
        for (size_t i = 0; i < len; i++) {
            unsigned char ch = (unsigned char)text[i];
            if (ch < 0x20 || ch == 0x7f || ch == ':')
                return rs_error_field(c->err, RS_EVALIDATION, c->path, "format",
                                      "%s must not contain ':' or control characters: it "
                                      "labels the account in authenticator apps",
                                      c->path);
        }
    }
    char *copy = rs_xstrdup(text);
    free(AS(c)->two_factor.issuer);
    AS(c)->two_factor.issuer = copy;
    return 0;
}

/* ip_rules.types and ip_rules.roles: maps merged entry by entry. */
static int merge_ip_map(struct ctx *c, json_t *v, json_t **dst, const json_t *def, bool types)
{
    if (json_is_null(v)) {
        json_decref(*dst);
        *dst = json_deep_copy(def);
        return 0;
    }
    if (!json_is_object(v))
        return type_err(c, c->path,
                        types ? "an object of user type -> address ranges"
                              : "an object of role key -> address ranges");
    json_t *out = json_deep_copy(*dst);
    int r = 0;
    const char *key;
    json_t *list;
    json_object_foreach(v, key, list)
    {
        char p[200];
        snprintf(p, sizeof(p), "%.100s.%.64s", c->path, key);
        enum rs_user_type t;
        if (types && rs_user_type_parse(key, &t) < 0) {
            keep_first(&r, rs_error_field(c->err, RS_EVALIDATION, p, "user_type",
                                          "%s: \"%.64s\" is not a user type (standard, admin, "
                                          "api, guest)",
                                          p, key));
            continue;
        }
        if (!types && !rs_access_key_ok(key)) {
            keep_first(&r, rs_error_field(c->err, RS_EVALIDATION, p, "format",
                                          "%s: \"%.64s\" is not a role key", p, key));
            continue;
        }
        if (json_is_null(list)) {
            json_object_del(out, key);
            continue;
        }
        int lr = rs_cidr_list_check(list, p, c->err);
        if (lr < 0) {
            keep_first(&r, lr);
            continue;
        }
        json_object_set_new(out, key, json_deep_copy(list));
    }
    if (r == 0 && json_object_size(out) > RS_IP_RULES_MAX)
        r = rs_error_field(c->err, RS_EVALIDATION, c->path, "max_items",
                           "%s may hold at most %d entries", c->path, RS_IP_RULES_MAX);
    if (r < 0) {
        json_decref(out);
        return r;
    }
    json_decref(*dst);
    *dst = out;
    return 0;
}

static int m_ip_types(struct ctx *c, json_t *v, int arg)
{
    return merge_ip_map(c, v, &AS(c)->ip_types, AS_DEF(c)->ip_types, true);
}

static int m_ip_roles(struct ctx *c, json_t *v, int arg)
{
    return merge_ip_map(c, v, &AS(c)->ip_roles, AS_DEF(c)->ip_roles, false);
}

#define A_INT(sec, nm, field, lo, hi, h)                                                           \
    {                                                                                              \
        sec, nm, M_INT, offsetof(struct rs_auth_settings, field), lo, hi, NULL, 0, h               \
    }
#define A_BOOL(sec, nm, field)                                                                     \
    {                                                                                              \
        sec, nm, M_BOOL, offsetof(struct rs_auth_settings, field), 0, 0, NULL, 0, NULL             \
    }
#define A_FN(sec, nm, f)                                                                           \
    {                                                                                              \
        sec, nm, M_FN, 0, 0, 0, f, 0, NULL                                                         \
    }

static const struct member auth_members[] = {
    A_INT("password", "min_length", password.min_length, 8, 1024, NULL),
    A_INT("password", "max_length", password.max_length, 64, 1024, NULL),
    A_BOOL("password", "blocklist", password.blocklist),
    A_BOOL("password", "profile_words", password.profile_words),
    A_INT("password", "history", password.history, 0, 24, NULL),
    A_INT("password", "max_age_days", password.max_age_days, 0, 3650,
          " (0: passwords never expire)"),
    A_INT("password", "expiry_notice_days", password.expiry_notice_days, 0, 365, NULL),
    A_INT("password", "hash_memory_kib", hash_memory_kib, 19456, 1048576, NULL),
    A_INT("password", "hash_iterations", hash_iterations, 2, 20, NULL),
    A_BOOL("lockout", "enabled", lockout.enabled),
    A_INT("lockout", "max_failures", lockout.max_failures, 1, 100,
          "; to turn lockout off, set lockout.enabled to false"),
    A_INT("lockout", "window_minutes", lockout.window_minutes, 1, 1440, NULL),
    A_INT("lockout", "duration_minutes", lockout.duration_minutes, 0, 525600,
          " (0: until an administrator unlocks)"),
    A_BOOL("lockout", "notify_user", lockout.notify_user),
    A_INT("throttle", "ip_max_failures", throttle.ip_max_failures, 1, 100000, NULL),
    A_INT("throttle", "ip_window_seconds", throttle.ip_window_seconds, 1, 100000, NULL),
    A_INT("throttle", "forgot_per_account_per_hour", throttle.forgot_per_account_per_hour, 1,
          100000, NULL),
    A_INT("throttle", "forgot_per_ip_per_hour", throttle.forgot_per_ip_per_hour, 1, 100000, NULL),
    A_INT("sessions", "idle_timeout_minutes", sessions.idle_timeout_minutes, 1, 1440, NULL),
    A_INT("sessions", "absolute_timeout_hours", sessions.absolute_timeout_hours, 1, 720, NULL),
    A_INT("sessions", "max_per_user", sessions.max_per_user, 0, 1000, " (0: unlimited)"),
    A_FN("two_factor", "require", m_require),
    A_FN("two_factor", "roles", m_2fa_roles),
    A_FN("two_factor", "issuer", m_issuer),
    A_FN("ip_rules", "types", m_ip_types),
    A_FN("ip_rules", "roles", m_ip_roles),
    A_INT("tokens", "reset_minutes", tokens.reset_minutes, 5, 1440, NULL),
    A_INT("tokens", "invite_hours", tokens.invite_hours, 1, 720, NULL),
};

static int auth_post(struct ctx *c)
{
    const struct rs_auth_settings *s = AS(c);
    int r = 0;
    if (s->password.max_length < s->password.min_length)
        r = rs_error_field(c->err, RS_EVALIDATION, "password.max_length", "range",
                           "password.max_length must be at least password.min_length (%d)",
                           s->password.min_length);
    if (s->two_factor.require == RS_2FA_ROLES && json_array_size(s->two_factor.roles) == 0)
        keep_first(&r, rs_error_field(c->err, RS_EVALIDATION, "two_factor.roles", "required",
                                      "two_factor.roles must name at least one role when "
                                      "two_factor.require is roles"));
    return r;
}

static const struct doc_desc auth_doc = {
    auth_members,
    RS_ARRAY_LEN(auth_members),
    offsetof(struct rs_auth_settings, version),
    auth_post,
};

/* --- auth: lifecycle and encoding --- */

void rs_auth_settings_defaults(struct rs_auth_settings *s)
{
    memset(s, 0, sizeof(*s));
    rs_password_policy_defaults(&s->password);
    s->hash_memory_kib = 19456;
    s->hash_iterations = 2;
    s->lockout.enabled = true;
    s->lockout.max_failures = 5;
    s->lockout.window_minutes = 15;
    s->lockout.duration_minutes = 15;
    s->lockout.notify_user = true;
    s->throttle.ip_max_failures = 50;
    s->throttle.ip_window_seconds = 300;
    s->throttle.forgot_per_account_per_hour = 3;
    s->throttle.forgot_per_ip_per_hour = 30;
    s->sessions.idle_timeout_minutes = 30;
    s->sessions.absolute_timeout_hours = 12;
    s->sessions.max_per_user = 5;
    s->two_factor.require = RS_2FA_OFF;
    s->two_factor.roles = json_array();
    s->two_factor.issuer = rs_xstrdup("roster");
    s->ip_types = json_object();
    s->ip_roles = json_object();
    s->tokens.reset_minutes = 30;
    s->tokens.invite_hours = 72;
    s->version = 1;
}

void rs_auth_settings_release(struct rs_auth_settings *s)
{
    json_decref(s->two_factor.roles);
    free(s->two_factor.issuer);
    json_decref(s->ip_types);
    json_decref(s->ip_roles);
    memset(s, 0, sizeof(*s));
}

void rs_auth_settings_copy(struct rs_auth_settings *dst, const struct rs_auth_settings *src)
{
    *dst = *src;
    dst->two_factor.roles =
        src->two_factor.roles ? json_deep_copy(src->two_factor.roles) : json_array();
    dst->two_factor.issuer = rs_xstrdup(src->two_factor.issuer ? src->two_factor.issuer : "");
    dst->ip_types = src->ip_types ? json_deep_copy(src->ip_types) : json_object();
    dst->ip_roles = src->ip_roles ? json_deep_copy(src->ip_roles) : json_object();
}

static json_t *section_json(const struct doc_desc *d, const char *section, const void *s)
{
    json_t *o = json_object();
    for (size_t i = 0; i < d->n; i++) {
        const struct member *m = &d->members[i];
        if (strcmp(m->section, section) != 0)
            continue;
        if (m->type == M_INT)
            json_object_set_new(o, m->name, json_integer(*(const int *)((const char *)s + m->off)));
        else if (m->type == M_BOOL)
            json_object_set_new(o, m->name,
                                json_boolean(*(const bool *)((const char *)s + m->off)));
    }
    return o;
}

json_t *rs_auth_settings_to_json(const struct rs_auth_settings *s)
{
    json_t *doc = json_object();
    static const char *const plain[] = {"password", "lockout", "throttle", "sessions"};
    for (size_t i = 0; i < RS_ARRAY_LEN(plain); i++)
        json_object_set_new(doc, plain[i], section_json(&auth_doc, plain[i], s));
    json_t *tf = json_object();
    json_object_set_new(tf, "require", json_string(rs_2fa_require_name(s->two_factor.require)));
    json_object_set_new(tf, "roles",
                        s->two_factor.roles ? json_deep_copy(s->two_factor.roles) : json_array());
    json_object_set_new(tf, "issuer",
                        json_string(s->two_factor.issuer ? s->two_factor.issuer : "roster"));
    json_object_set_new(doc, "two_factor", tf);
    json_t *ip = json_object();
    json_object_set_new(ip, "types", s->ip_types ? json_deep_copy(s->ip_types) : json_object());
    json_object_set_new(ip, "roles", s->ip_roles ? json_deep_copy(s->ip_roles) : json_object());
    json_object_set_new(doc, "ip_rules", ip);
    json_object_set_new(doc, "tokens", section_json(&auth_doc, "tokens", s));
    json_object_set_new(doc, "version", json_integer(s->version));
    return doc;
}

int rs_auth_settings_patch(const struct rs_auth_settings *cur, json_t *patch,
                           struct rs_auth_settings *ret, struct rs_error *err)
{
    struct rs_auth_settings s, def;
    rs_auth_settings_copy(&s, cur);
    rs_auth_settings_defaults(&def);
    struct ctx c = {.s = &s, .def = &def, .err = err, .lenient = false};
    int r = apply_doc(&c, &auth_doc, patch);
    rs_auth_settings_release(&def);
    if (r < 0) {
        rs_auth_settings_release(&s);
        return r;
    }
    *ret = s;
    return 0;
}

int rs_auth_settings_from_json(json_t *doc, struct rs_auth_settings *ret, struct rs_error *err)
{
    struct rs_auth_settings s, def;
    rs_auth_settings_defaults(&s);
    rs_auth_settings_defaults(&def);
    struct ctx c = {.s = &s, .def = &def, .err = err, .lenient = true};
    int r = apply_doc(&c, &auth_doc, doc);
    rs_auth_settings_release(&def);
    if (r < 0) {
        rs_auth_settings_release(&s);
        return r;
    }
    *ret = s;
    return 0;
}

/* --- notifications: members --- */

#define NS(c) ((struct rs_notify_settings *)(c)->s)
#define NS_DEF(c) ((const struct rs_notify_settings *)(c)->def)

#define SMTP_URL_MAX 255
#define SMTP_USER_MAX 256
#define SMTP_PASSWORD_MAX 1024
#define FROM_MAX 512

static const char *const security_names[] = {"none", "starttls", "tls"};

const char *rs_smtp_security_name(int security)
{
    return (unsigned)security < RS_ARRAY_LEN(security_names) ? security_names[security] : "none";
}

static void replace_str(char **dst, const char *src)
{
    char *copy = rs_xstrdup(src ? src : "");
    free(*dst);
    *dst = copy;
}

/* A host name (letters, digits, '-', dots; what DNS and IPv4 addresses
 * look like) or an [IPv6] literal, then an optional :port 1..65535. */
static bool smtp_hostport_ok(const char *hp)
{
    const char *port = NULL;
    if (hp[0] == '[') {
        const char *close = strchr(hp, ']');
        if (!close || close - hp - 1 <= 0 || close - hp - 1 > 45)
            return false;
        char lit[48];
        memcpy(lit, hp + 1, (size_t)(close - hp - 1));
        lit[close - hp - 1] = '\0';
        struct rs_ipaddr ip;
        if (!strchr(lit, ':') || rs_ip_parse(lit, &ip) < 0)
            return false;
        if (close[1] == ':')
            port = close + 2;
        else if (close[1] != '\0')
            return false;
    } else {
        size_t hlen = strcspn(hp, ":");
        if (hlen == 0 || hlen > 253)
            return false;
        size_t label = 0;
        for (size_t i = 0; i < hlen; i++) {
            char ch = hp[i];
            if (ch == '.') {
                if (label == 0 || hp[i - 1] == '-')
                    return false;
                label = 0;
                continue;
            }
            bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                      (ch >= '0' && ch <= '9') || (ch == '-' && label > 0);
            if (!ok || ++label > 63)
                return false;
        }
        if (label == 0 || hp[hlen - 1] == '-')
            return false;
        if (hp[hlen] == ':')
            port = hp + hlen + 1;
    }
    if (!port)
        return true;
    size_t n = strlen(port);
    if (n == 0 || n > 5 || port[0] == '0' || strspn(port, "0123456789") != n)
        return false;
    long p = strtol(port, NULL, 10);
    return p >= 1 && p <= 65535;
}

static bool smtp_url_tls(const char *url)
{
    return strncmp(url, "smtps://", 8) == 0;
}

static int m_url(struct ctx *c, json_t *v, int arg)
{
    if (json_is_null(v)) {
        replace_str(&NS(c)->smtp.url, NS_DEF(c)->smtp.url);
        return 0;
    }
    if (!json_is_string(v))
        return type_err(c, c->path, "a string");
    const char *u = json_string_value(v);
    const char *hp = NULL;
    if (strncmp(u, "smtp://", 7) == 0)
        hp = u + 7;
    else if (strncmp(u, "smtps://", 8) == 0)
        hp = u + 8;
    if (!hp || json_string_length(v) > SMTP_URL_MAX || !smtp_hostport_ok(hp))
        return rs_error_field(c->err, RS_EVALIDATION, c->path, "url",
                              "%s must be smtp://host[:port] or smtps://host[:port] (port 1 to "
                              "65535, nothing after it), such as smtp://mail.example.com:587",
                              c->path);
    replace_str(&NS(c)->smtp.url, u);
    return 0;
}

static int m_security(struct ctx *c, json_t *v, int arg)
{
    if (json_is_null(v)) {
        NS(c)->smtp.security = NS_DEF(c)->smtp.security;
        return 0;
    }
    if (!json_is_string(v))
        return type_err(c, c->path, "a string");
    for (size_t i = 0; i < RS_ARRAY_LEN(security_names); i++) {
        if (strcmp(security_names[i], json_string_value(v)) == 0) {
            NS(c)->smtp.security = (int)i;
            return 0;
        }
    }
    return rs_error_field(c->err, RS_EVALIDATION, c->path, "enum",
                          "%s must be one of none, starttls, tls", c->path);
}

static bool has_ctl(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return true;
    }
    return false;
}

static int m_username(struct ctx *c, json_t *v, int arg)
{
    if (json_is_null(v)) {
        replace_str(&NS(c)->smtp.username, NS_DEF(c)->smtp.username);
        return 0;
    }
    if (!json_is_string(v))
        return type_err(c, c->path, "a string");
    if (json_string_length(v) > SMTP_USER_MAX)
        return rs_error_field(c->err, RS_EVALIDATION, c->path, "max_length",
                              "%s must be at most %d bytes", c->path, SMTP_USER_MAX);
    if (has_ctl(json_string_value(v), json_string_length(v)))
        return rs_error_field(c->err, RS_EVALIDATION, c->path, "format",
                              "%s must not contain control characters", c->path);
    replace_str(&NS(c)->smtp.username, json_string_value(v));
    return 0;
}

static void wipe_free(char *s)
{
    if (!s)
        return;
    volatile char *p = s;
    while (*p)
        *p++ = '\0';
    free(s);
}

static int m_password(struct ctx *c, json_t *v, int arg)
{
    if (!json_is_null(v) && !json_is_string(v))
        return type_err(c, c->path, "a string, or null to remove the password");
    const char *text = json_is_string(v) ? json_string_value(v) : "";
    if (c->lenient) { /* the stored (sealed) form */
        replace_str(&NS(c)->smtp.password_stored, text);
        return 0;
    }
    if (json_string_length(v) > SMTP_PASSWORD_MAX)
        return rs_error_field(c->err, RS_EVALIDATION, c->path, "max_length",
                              "%s must be at most %d bytes", c->path, SMTP_PASSWORD_MAX);
    if (json_is_string(v) && strlen(text) != json_string_length(v))
        return rs_error_field(c->err, RS_EVALIDATION, c->path, "format",
                              "%s must not contain NUL characters", c->path);
    wipe_free(NS(c)->smtp.password_new);
    NS(c)->smtp.password_new = rs_xstrdup(text);
    return 0;
}

static int m_password_set(struct ctx *c, json_t *v, int arg)
{
    if (c->lenient || c->resetting)
        return 0;
    return read_only(c, c->path, ": send smtp.password to set it, or null to remove it");
}

static int m_from(struct ctx *c, json_t *v, int arg)
{
    if (json_is_null(v)) {
        replace_str(&NS(c)->smtp.from, NS_DEF(c)->smtp.from);
        return 0;
    }
    if (!json_is_string(v))
        return type_err(c, c->path, "a string");
    char addr[RS_MAIL_ADDR_MAX + 1];
    if (json_string_length(v) > FROM_MAX ||
        rs_mail_addr_spec(json_string_value(v), addr, sizeof(addr)) < 0)
        return rs_error_field(c->err, RS_EVALIDATION, c->path, "mailbox",
                              "%s must be one mailbox on one line: addr@domain or "
                              "Name <addr@domain>",
                              c->path);
    replace_str(&NS(c)->smtp.from, json_string_value(v));
    return 0;
}

static int set_template_part(struct ctx *c, enum rs_mail_kind k, json_t *v, const char *path,
                             bool subject)
{
    char **dst = subject ? &NS(c)->templates[k].subject : &NS(c)->templates[k].body;
    if (json_is_null(v)) {
        replace_str(dst, subject ? rs_mail_default_subject(k) : rs_mail_default_body(k));
        return 0;
    }
    if (!json_is_string(v))
        return type_err(c, path, "a string");
    if (strlen(json_string_value(v)) != json_string_length(v))
        return rs_error_field(c->err, RS_EVALIDATION, path, "format",
                              "%s must not contain NUL characters", path);
    /* A stored subject may hold a body-only variable from before that rule:
     * it still reads (and renders empty there). */
    enum rs_mail_part part = !subject     ? RS_MAIL_PART_BODY
                             : c->lenient ? RS_MAIL_PART_STORED_SUBJECT
                                          : RS_MAIL_PART_SUBJECT;
    int r = rs_mail_template_check(k, path, json_string_value(v), part, c->err);
    if (r < 0)
        return r;
    replace_str(dst, json_string_value(v));
    return 0;
}

static int m_template(struct ctx *c, json_t *v, int arg)
{
    enum rs_mail_kind k = (enum rs_mail_kind)arg;
    char base[128];
    rs_strlcpy(base, c->path, sizeof(base));
    char p[200];
    if (json_is_null(v)) {
        replace_str(&NS(c)->templates[k].subject, rs_mail_default_subject(k));
        replace_str(&NS(c)->templates[k].body, rs_mail_default_body(k));
        return 0;
    }
    if (!json_is_object(v))
        return type_err(c, base, "an object with subject and body");
    int r = 0;
    const char *name;
    json_t *part;
    json_object_foreach(v, name, part)
    {
        snprintf(p, sizeof(p), "%.100s.%.32s", base, name);
        bool listing = strcmp(name, "variables") == 0 || strcmp(name, "body_only_variables") == 0;
        if (strcmp(name, "subject") == 0 || strcmp(name, "body") == 0)
            keep_first(&r, set_template_part(c, k, part, p, name[0] == 's'));
        else if (listing && !c->lenient)
            keep_first(&r, read_only(c, p, ": it lists the variables this mail may use"));
        else if (!c->lenient && !listing)
            keep_first(&r, rs_error_field(c->err, RS_EBADREQUEST, p, "unknown_field",
                                          "unknown setting \"%s\"", p));
    }
    return r;
}

#define N_INT(sec, nm, field, lo, hi)                                                              \
    {                                                                                              \
        sec, nm, M_INT, offsetof(struct rs_notify_settings, field), lo, hi, NULL, 0, NULL          \
    }
#define N_BOOL(sec, nm, field)                                                                     \
    {                                                                                              \
        sec, nm, M_BOOL, offsetof(struct rs_notify_settings, field), 0, 0, NULL, 0, NULL           \
    }
#define N_FN(sec, nm, f, a)                                                                        \
    {                                                                                              \
        sec, nm, M_FN, 0, 0, 0, f, a, NULL                                                         \
    }

static const struct member notify_members[] = {
    N_FN("smtp", "url", m_url, 0),
    N_FN("smtp", "security", m_security, 0),
    N_FN("smtp", "username", m_username, 0),
    N_FN("smtp", "password", m_password, 0),
    N_FN("smtp", "password_set", m_password_set, 0),
    N_FN("smtp", "from", m_from, 0),
    N_INT("smtp", "timeout_seconds", smtp.timeout_seconds, 1, 300),
    N_BOOL("smtp", "verify_tls", smtp.verify_tls),
    N_BOOL("enabled", "invite", enabled[RS_MAIL_INVITE]),
    N_BOOL("enabled", "welcome", enabled[RS_MAIL_WELCOME]),
    N_BOOL("enabled", "reset", enabled[RS_MAIL_RESET]),
    N_BOOL("enabled", "password_changed", enabled[RS_MAIL_PASSWORD_CHANGED]),
    N_BOOL("enabled", "account_locked", enabled[RS_MAIL_ACCOUNT_LOCKED]),
    N_BOOL("enabled", "expiry_notice", enabled[RS_MAIL_EXPIRY_NOTICE]),
    N_BOOL("enabled", "two_factor_changed", enabled[RS_MAIL_TWO_FACTOR_CHANGED]),
    N_BOOL("enabled", "email_changed", enabled[RS_MAIL_EMAIL_CHANGED]),
    N_FN("templates", "invite", m_template, RS_MAIL_INVITE),
    N_FN("templates", "welcome", m_template, RS_MAIL_WELCOME),
    N_FN("templates", "reset", m_template, RS_MAIL_RESET),
    N_FN("templates", "password_changed", m_template, RS_MAIL_PASSWORD_CHANGED),
    N_FN("templates", "account_locked", m_template, RS_MAIL_ACCOUNT_LOCKED),
    N_FN("templates", "expiry_notice", m_template, RS_MAIL_EXPIRY_NOTICE),
    N_FN("templates", "two_factor_changed", m_template, RS_MAIL_TWO_FACTOR_CHANGED),
    N_FN("templates", "email_changed", m_template, RS_MAIL_EMAIL_CHANGED),
    N_FN("templates", "test", m_template, RS_MAIL_TEST),
};

int rs_notify_smtp_auth_check(const struct rs_notify_settings *s, struct rs_error *err)
{
    const char *pw = s->smtp.password_new ? s->smtp.password_new : s->smtp.password_stored;
    bool credentials = (s->smtp.username && s->smtp.username[0]) || (pw && pw[0]);
    if (s->smtp.security != RS_SMTP_NONE || !credentials)
        return 0;
    return rs_error_field(err, RS_EVALIDATION, "smtp.security", "auth_needs_tls",
                          "smtp.security is none but smtp.username or smtp.password is set: SMTP "
                          "AUTH would send the password in the clear; choose starttls (or tls "
                          "with an smtps:// url), or remove the username and password");
}

static int notify_post(struct ctx *c)
{
    const struct rs_notify_settings *s = NS(c);
    bool tls_url = smtp_url_tls(s->smtp.url);
    if (s->smtp.security == RS_SMTP_TLS && !tls_url)
        return rs_error_field(c->err, RS_EVALIDATION, "smtp.security", "security",
                              "smtp.security tls (TLS from the first byte) needs an smtps:// "
                              "url; for STARTTLS on an smtp:// url choose starttls");
    if (s->smtp.security != RS_SMTP_TLS && tls_url)
        return rs_error_field(c->err, RS_EVALIDATION, "smtp.security", "security",
                              "smtp.security must be tls with an smtps:// url");
    /* A stored document from before the rule still reads; the sender refuses it. */
    if (!c->lenient)
        return rs_notify_smtp_auth_check(s, c->err);
    return 0;
}

static const struct doc_desc notify_doc = {
    notify_members,
    RS_ARRAY_LEN(notify_members),
    offsetof(struct rs_notify_settings, version),
    notify_post,
};

/* --- notifications: lifecycle and encoding --- */

void rs_notify_settings_defaults(struct rs_notify_settings *s)
{
    memset(s, 0, sizeof(*s));
    s->smtp.url = rs_xstrdup("smtp://127.0.0.1:25");
    s->smtp.security = RS_SMTP_NONE;
    s->smtp.username = rs_xstrdup("");
    s->smtp.password_stored = rs_xstrdup("");
    s->smtp.password_new = NULL;
    s->smtp.from = rs_xstrdup("roster <noreply@localhost>");
    s->smtp.timeout_seconds = 10;
    s->smtp.verify_tls = true;
    for (int k = 0; k < RS_MAIL_KIND_COUNT; k++) {
        s->enabled[k] = true;
        s->templates[k].subject = rs_xstrdup(rs_mail_default_subject((enum rs_mail_kind)k));
        s->templates[k].body = rs_xstrdup(rs_mail_default_body((enum rs_mail_kind)k));
    }
    s->version = 1;
}

void rs_notify_settings_release(struct rs_notify_settings *s)
{
    free(s->smtp.url);
    free(s->smtp.username);
    free(s->smtp.password_stored);
    wipe_free(s->smtp.password_new);
    free(s->smtp.from);
    for (int k = 0; k < RS_MAIL_KIND_COUNT; k++) {
        free(s->templates[k].subject);
        free(s->templates[k].body);
    }
    memset(s, 0, sizeof(*s));
}

static char *dup_or(const char *s, const char *dflt)
{
    return rs_xstrdup(s ? s : dflt);
}

void rs_notify_settings_copy(struct rs_notify_settings *dst, const struct rs_notify_settings *src)
{
    *dst = *src;
    dst->smtp.url = dup_or(src->smtp.url, "smtp://127.0.0.1:25");
    dst->smtp.username = dup_or(src->smtp.username, "");
    dst->smtp.password_stored = dup_or(src->smtp.password_stored, "");
    dst->smtp.password_new = src->smtp.password_new ? rs_xstrdup(src->smtp.password_new) : NULL;
    dst->smtp.from = dup_or(src->smtp.from, "roster <noreply@localhost>");
    for (int k = 0; k < RS_MAIL_KIND_COUNT; k++) {
        dst->templates[k].subject =
            dup_or(src->templates[k].subject, rs_mail_default_subject((enum rs_mail_kind)k));
        dst->templates[k].body =
            dup_or(src->templates[k].body, rs_mail_default_body((enum rs_mail_kind)k));
    }
}

static json_t *str_json(const char *s)
{
    return json_string(s ? s : "");
}

json_t *rs_notify_settings_to_json(const struct rs_notify_settings *s, bool for_storage)
{
    json_t *smtp = json_object();
    json_object_set_new(smtp, "url", str_json(s->smtp.url));
    json_object_set_new(smtp, "security", json_string(rs_smtp_security_name(s->smtp.security)));
    json_object_set_new(smtp, "username", str_json(s->smtp.username));
    if (for_storage) {
        json_object_set_new(smtp, "password", str_json(s->smtp.password_stored));
    } else {
        const char *pw = s->smtp.password_new ? s->smtp.password_new : s->smtp.password_stored;
        json_object_set_new(smtp, "password_set", json_boolean(pw && pw[0]));
    }
    json_object_set_new(smtp, "from", str_json(s->smtp.from));
    json_object_set_new(smtp, "timeout_seconds", json_integer(s->smtp.timeout_seconds));
    json_object_set_new(smtp, "verify_tls", json_boolean(s->smtp.verify_tls));

    json_t *enabled = json_object();
    json_t *templates = json_object();
    for (int k = 0; k < RS_MAIL_KIND_COUNT; k++) {
        enum rs_mail_kind kind = (enum rs_mail_kind)k;
        if (kind != RS_MAIL_TEST)
            json_object_set_new(enabled, rs_mail_kind_name(kind), json_boolean(s->enabled[k]));
        const char *subj =
            s->templates[k].subject ? s->templates[k].subject : rs_mail_default_subject(kind);
        const char *body = s->templates[k].body ? s->templates[k].body : rs_mail_default_body(kind);
        json_t *t = json_object();
        if (!for_storage || strcmp(subj, rs_mail_default_subject(kind)) != 0)
            json_object_set_new(t, "subject", json_string(subj));
        if (!for_storage || strcmp(body, rs_mail_default_body(kind)) != 0)
            json_object_set_new(t, "body", json_string(body));
        if (!for_storage) {
            json_t *vars = json_array();
            for (const char *const *v = rs_mail_variables(kind); *v; v++)
                json_array_append_new(vars, json_string(*v));
            json_object_set_new(t, "variables", vars);
            json_t *body_only = json_array();
            for (const char *const *v = rs_mail_body_only_variables(kind); *v; v++)
                json_array_append_new(body_only, json_string(*v));
            json_object_set_new(t, "body_only_variables", body_only);
        }
        if (json_object_size(t) > 0)
            json_object_set_new(templates, rs_mail_kind_name(kind), t);
        else
            json_decref(t);
    }
    json_t *doc = json_object();
    json_object_set_new(doc, "smtp", smtp);
    json_object_set_new(doc, "enabled", enabled);
    json_object_set_new(doc, "templates", templates);
    json_object_set_new(doc, "version", json_integer(s->version));
    return doc;
}

int rs_notify_settings_patch(const struct rs_notify_settings *cur, json_t *patch,
                             struct rs_notify_settings *ret, struct rs_error *err)
{
    struct rs_notify_settings s, def;
    rs_notify_settings_copy(&s, cur);
    rs_notify_settings_defaults(&def);
    struct ctx c = {.s = &s, .def = &def, .err = err, .lenient = false};
    int r = apply_doc(&c, &notify_doc, patch);
    rs_notify_settings_release(&def);
    if (r < 0) {
        rs_notify_settings_release(&s);
        return r;
    }
    s.enabled[RS_MAIL_TEST] = true;
    *ret = s;
    return 0;
}

int rs_notify_settings_from_json(json_t *doc, struct rs_notify_settings *ret, struct rs_error *err)
{
    struct rs_notify_settings s, def;
    rs_notify_settings_defaults(&s);
    rs_notify_settings_defaults(&def);
    struct ctx c = {.s = &s, .def = &def, .err = err, .lenient = true};
    int r = apply_doc(&c, &notify_doc, doc);
    rs_notify_settings_release(&def);
    if (r < 0) {
        rs_notify_settings_release(&s);
        return r;
    }
    s.enabled[RS_MAIL_TEST] = true;
    *ret = s;
    return 0;
}
