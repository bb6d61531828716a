/* settings.c: the users settings document (see settings.h). */
#include <regex.h>
#include <stdio.h>

#include "access.h"
#include "settings.h"

void rs_user_settings_defaults(struct rs_user_settings *s)
{
    memset(s, 0, sizeof(*s));
    rs_user_rules_defaults(&s->rules);
    s->defaults.type = RS_USER_STANDARD;
    s->defaults.status = RS_STATUS_ACTIVE;
    s->defaults.role = rs_xstrdup("standard_user");
    s->options.self_service_profile_edit = true;
    s->options.show_employee_id = true;
    s->options.allow_username_change = true;
    s->max_active_users = -1;
    s->version = 1;
}

void rs_user_settings_release(struct rs_user_settings *s)
{
    rs_user_rules_release(&s->rules);
    free(s->defaults.department);
    free(s->defaults.location);
    free(s->defaults.role);
    memset(s, 0, sizeof(*s));
}

static char *dup_or_null(const char *s)
{
    return s ? rs_xstrdup(s) : NULL;
}

void rs_user_settings_copy(struct rs_user_settings *dst, const struct rs_user_settings *src)
{
    *dst = *src;
    rs_user_rules_copy(&dst->rules, &src->rules);
    dst->defaults.department = dup_or_null(src->defaults.department);
    dst->defaults.location = dup_or_null(src->defaults.location);
    dst->defaults.role = dup_or_null(src->defaults.role);
}

static json_t *str_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

static json_t *list_json(char **items, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, json_string(items[i]));
    return a;
}

json_t *rs_user_settings_to_json(const struct rs_user_settings *s)
{
    const struct rs_user_rules *r = &s->rules;
    json_t *v = json_object();
    json_object_set_new(v, "username_min_length", json_integer(r->username_min_length));
    json_object_set_new(v, "username_max_length", json_integer(r->username_max_length));
    json_object_set_new(v, "username_pattern", str_or_null(r->username_pattern));
    json_object_set_new(v, "reserved_usernames", list_json(r->reserved_usernames, r->nreserved));
    json_object_set_new(v, "email_allowed_domains",
                        list_json(r->email_allowed_domains, r->ndomains));
    json_object_set_new(v, "phone_pattern", str_or_null(r->phone_pattern));
    json_object_set_new(v, "employee_id_pattern", str_or_null(r->employee_id_pattern));
    json_object_set_new(v, "require_department", json_boolean(r->require_department));
    json_object_set_new(v, "require_manager", json_boolean(r->require_manager));
    json_object_set_new(v, "require_role", json_boolean(r->require_role));
    json_t *d = json_object();
    json_object_set_new(d, "type", json_string(rs_user_type_name(s->defaults.type)));
    json_object_set_new(d, "status", json_string(rs_user_status_name(s->defaults.status)));
    json_object_set_new(d, "department", str_or_null(s->defaults.department));
    json_object_set_new(d, "location", str_or_null(s->defaults.location));
    json_object_set_new(d, "role", str_or_null(s->defaults.role));
    json_t *o = json_object();
    json_object_set_new(o, "self_service_profile_edit",
                        json_boolean(s->options.self_service_profile_edit));
    json_object_set_new(o, "send_invite_by_default",
                        json_boolean(s->options.send_invite_by_default));
    json_object_set_new(o, "require_reset_by_default",
                        json_boolean(s->options.require_reset_by_default));
    json_object_set_new(o, "show_employee_id", json_boolean(s->options.show_employee_id));
    json_object_set_new(o, "allow_username_change",
                        json_boolean(s->options.allow_username_change));
    json_t *l = json_object();
    json_object_set_new(l, "max_active_users",
                        s->max_active_users < 0 ? json_null() : json_integer(s->max_active_users));
    json_t *doc = json_object();
    json_object_set_new(doc, "validation", v);
    json_object_set_new(doc, "defaults", d);
    json_object_set_new(doc, "options", o);
    json_object_set_new(doc, "licence", l);
    json_object_set_new(doc, "version", json_integer(s->version));
    return doc;
}

/* --- decoding: one setter per member, each naming its path --- */

struct ctx {
    struct rs_user_settings *s;
    struct rs_error *err;
    char path[96];
    bool stored; /* reading the stored document, not a change */
};

static int type_err(struct ctx *c, const char *want)
{
    return rs_error_field(c->err, RS_EBADREQUEST, c->path, "type", "%s must be %s", c->path,
                          want);
}

static int want_bool(struct ctx *c, json_t *v, bool *dst)
{
    if (!json_is_boolean(v))
        return type_err(c, "true or false");
    *dst = json_is_true(v);
    return 0;
}

static int want_pattern(struct ctx *c, json_t *v, char **dst)
{
    if (json_is_null(v)) {
        free(*dst);
        *dst = NULL;
        return 0;
    }
    if (!json_is_string(v))
        return type_err(c, "a string or null");
    /* A stored pattern was screened when it was set. One a later, stricter
     * screen refuses is kept rather than making the settings unreadable:
     * values checked against it fail with rule "pattern" until an
     * administrator replaces it (matching screens it again). */
    if (!c->stored && !rs_pattern_ok(json_string_value(v)))
        return rs_error_field(c->err, RS_EVALIDATION, c->path, "pattern",
                              "%s must be " RS_PATTERN_RULE, c->path);
    free(*dst);
    *dst = rs_xstrdup(json_string_value(v));
    return 0;
}

static int want_text(struct ctx *c, json_t *v, char **dst)
{
    if (json_is_null(v)) {
        free(*dst);
        *dst = NULL;
        return 0;
    }
    if (!json_is_string(v))
        return type_err(c, "a string or null");
    long n = rs_utf8_length(json_string_value(v), json_string_length(v));
    if (n < 1 || n > RS_TEXT_FIELD_MAX)
        return rs_error_field(c->err, RS_EVALIDATION, c->path, "max_length",
                              "%s must be 1 to %d characters", c->path, RS_TEXT_FIELD_MAX);
    free(*dst);
    *dst = rs_xstrdup(json_string_value(v));
    return 0;
}

static int want_list(struct ctx *c, json_t *v, char ***dst, size_t *n, bool domains)
{
    if (!json_is_array(v))
        return type_err(c, "an array of strings");
    size_t count = json_array_size(v);
    if (count > 1000)
        return rs_error_field(c->err, RS_EVALIDATION, c->path, "max_items",
                              "%s may hold at most 1000 entries", c->path);
    for (size_t i = 0; i < count; i++) {
        json_t *e = json_array_get(v, i);
        if (!json_is_string(e) || json_string_length(e) == 0 || json_string_length(e) > 254 ||
            rs_utf8_length(json_string_value(e), json_string_length(e)) < 0)
            return type_err(c, "an array of non-empty strings");
        if (domains && (strchr(json_string_value(e), '@') || !strchr(json_string_value(e), '.')))
            return rs_error_field(c->err, RS_EVALIDATION, c->path, "format",
                                  "%s must hold domains such as example.com", c->path);
    }
    for (size_t i = 0; i < *n; i++)
        free((*dst)[i]);
    free(*dst);
    *dst = rs_xcalloc(count ? count : 1, sizeof(char *));
    for (size_t i = 0; i < count; i++)
        (*dst)[i] = rs_xstrdup(json_string_value(json_array_get(v, i)));
    *n = count;
    return 0;
}

static int want_int(struct ctx *c, json_t *v, long min, long max, int *dst)
{
    if (!json_is_integer(v))
        return type_err(c, "a whole number");
    json_int_t n = json_integer_value(v);
    if (n < min || n > max)
        return rs_error_field(c->err, RS_EVALIDATION, c->path, "range",
                              "%s must be from %ld to %ld", c->path, min, max);
    *dst = (int)n;
    return 0;
}

typedef int (*member_fn)(struct ctx *c, json_t *v);

static int m_umin(struct ctx *c, json_t *v)
{
    return want_int(c, v, 1, RS_USERNAME_MAX, &c->s->rules.username_min_length);
}
static int m_umax(struct ctx *c, json_t *v)
{
    return want_int(c, v, 1, RS_USERNAME_MAX, &c->s->rules.username_max_length);
}
static int m_upat(struct ctx *c, json_t *v)
{
    return want_pattern(c, v, &c->s->rules.username_pattern);
}
static int m_reserved(struct ctx *c, json_t *v)
{
    return want_list(c, v, &c->s->rules.reserved_usernames, &c->s->rules.nreserved, false);
}
static int m_domains(struct ctx *c, json_t *v)
{
    return want_list(c, v, &c->s->rules.email_allowed_domains, &c->s->rules.ndomains, true);
}
static int m_phone(struct ctx *c, json_t *v)
{
    return want_pattern(c, v, &c->s->rules.phone_pattern);
}
static int m_empid(struct ctx *c, json_t *v)
{
    return want_pattern(c, v, &c->s->rules.employee_id_pattern);
}
static int m_rdept(struct ctx *c, json_t *v)
{
    return want_bool(c, v, &c->s->rules.require_department);
}
static int m_rmgr(struct ctx *c, json_t *v)
{
    return want_bool(c, v, &c->s->rules.require_manager);
}
static int m_rrole(struct ctx *c, json_t *v)
{
    return want_bool(c, v, &c->s->rules.require_role);
}
static int m_dtype(struct ctx *c, json_t *v)
{
    if (!json_is_string(v))
        return type_err(c, "a string");
    if (rs_user_type_parse(json_string_value(v), &c->s->defaults.type) < 0)
        return rs_error_field(c->err, RS_EVALIDATION, c->path, "enum",
                              "%s must be one of standard, admin, api, guest", c->path);
    return 0;
}
static int m_dstatus(struct ctx *c, json_t *v)
{
    if (!json_is_string(v))
        return type_err(c, "a string");
    enum rs_user_status st;
    if (rs_user_status_parse(json_string_value(v), &st) < 0 ||
        (st != RS_STATUS_ACTIVE && st != RS_STATUS_PENDING))
        return rs_error_field(c->err, RS_EVALIDATION, c->path, "enum",
                              "%s must be active or pending", c->path);
    c->s->defaults.status = st;
    return 0;
}
static int m_ddept(struct ctx *c, json_t *v)
{
    return want_text(c, v, &c->s->defaults.department);
}
static int m_dloc(struct ctx *c, json_t *v)
{
    return want_text(c, v, &c->s->defaults.location);
}
static int m_drole(struct ctx *c, json_t *v)
{
    if (json_is_string(v) && !rs_access_key_ok(json_string_value(v)))
        return rs_error_field(c->err, RS_EVALIDATION, c->path, "format",
                              "%s must be a role key", c->path);
    return want_text(c, v, &c->s->defaults.role);
}
static int m_o1(struct ctx *c, json_t *v)
{
    return want_bool(c, v, &c->s->options.self_service_profile_edit);
}
static int m_o2(struct ctx *c, json_t *v)
{
    return want_bool(c, v, &c->s->options.send_invite_by_default);
}
static int m_o3(struct ctx *c, json_t *v)
{
    return want_bool(c, v, &c->s->options.require_reset_by_default);
}
static int m_o4(struct ctx *c, json_t *v)
{
    return want_bool(c, v, &c->s->options.show_employee_id);
}
static int m_o5(struct ctx *c, json_t *v)
{
    return want_bool(c, v, &c->s->options.allow_username_change);
}
static int m_licence(struct ctx *c, json_t *v)
{
    if (json_is_null(v)) {
        c->s->max_active_users = -1;
        return 0;
    }
    if (!json_is_integer(v))
        return type_err(c, "a whole number or null");
    if (json_integer_value(v) < 1 || json_integer_value(v) > 100000000)
        return rs_error_field(c->err, RS_EVALIDATION, c->path, "range",
                              "%s must be from 1 to 100000000, or null for no limit", c->path);
    c->s->max_active_users = json_integer_value(v);
    return 0;
}

static const struct member {
    const char *section;
    const char *name;
    member_fn set;
} members[] = {
    {"validation", "username_min_length", m_umin},
    {"validation", "username_max_length", m_umax},
    {"validation", "username_pattern", m_upat},
    {"validation", "reserved_usernames", m_reserved},
    {"validation", "email_allowed_domains", m_domains},
    {"validation", "phone_pattern", m_phone},
    {"validation", "employee_id_pattern", m_empid},
    {"validation", "require_department", m_rdept},
    {"validation", "require_manager", m_rmgr},
    {"validation", "require_role", m_rrole},
    {"defaults", "type", m_dtype},
    {"defaults", "status", m_dstatus},
    {"defaults", "department", m_ddept},
    {"defaults", "location", m_dloc},
    {"defaults", "role", m_drole},
    {"options", "self_service_profile_edit", m_o1},
    {"options", "send_invite_by_default", m_o2},
    {"options", "require_reset_by_default", m_o3},
    {"options", "show_employee_id", m_o4},
    {"options", "allow_username_change", m_o5},
    {"licence", "max_active_users", m_licence},
};

static bool known_section(const char *name)
{
    for (size_t i = 0; i < RS_ARRAY_LEN(members); i++) {
        if (strcmp(members[i].section, name) == 0)
            return true;
    }
    return false;
}

/* Applies doc onto c->s; strict about unknown keys unless lenient (stored
 * documents from newer versions). */
static int apply_doc(struct ctx *c, json_t *doc, bool lenient)
{
    int r = 0;
    const char *section;
    json_t *sv;
    json_object_foreach(doc, section, sv)
    {
        if (strcmp(section, "version") == 0) {
            if (lenient && json_is_integer(sv))
                c->s->version = json_integer_value(sv);
            else if (!lenient)
                r = rs_error_field(c->err, RS_EBADREQUEST, "version", "read_only",
                                   "version is set by the server; send If-Match to guard a "
                                   "change");
            continue;
        }
        if (!known_section(section)) {
            if (!lenient)
                r = rs_error_field(c->err, RS_EBADREQUEST, section, "unknown_field",
                                   "unknown settings section \"%.64s\"", section);
            continue;
        }
        if (!json_is_object(sv)) {
            r = rs_error_field(c->err, RS_EBADREQUEST, section, "type", "%s must be an object",
                               section);
            continue;
        }
        const char *name;
        json_t *v;
        json_object_foreach(sv, name, v)
        {
            const struct member *m = NULL;
            for (size_t i = 0; i < RS_ARRAY_LEN(members); i++) {
                if (strcmp(members[i].section, section) == 0 && strcmp(members[i].name, name) == 0)
                    m = &members[i];
            }
            snprintf(c->path, sizeof(c->path), "%s.%.64s", section, name);
            if (!m) {
                if (!lenient)
                    r = rs_error_field(c->err, RS_EBADREQUEST, c->path, "unknown_field",
                                       "unknown setting \"%s\"", c->path);
                continue;
            }
            int mr = m->set(c, v);
            if (mr < 0 && r == 0)
                r = mr;
        }
    }
    if (r == 0 && c->s->rules.username_min_length > c->s->rules.username_max_length)
        r = rs_error_field(c->err, RS_EVALIDATION, "validation.username_min_length", "range",
                           "validation.username_min_length must not exceed "
                           "validation.username_max_length");
    return r < 0 ? -c->err->code : 0;
}

static void copy_settings(struct rs_user_settings *dst, const struct rs_user_settings *src)
{
    *dst = *src;
    rs_user_rules_copy(&dst->rules, &src->rules);
    dst->defaults.department = src->defaults.department ? rs_xstrdup(src->defaults.department) : NULL;
    dst->defaults.location = src->defaults.location ? rs_xstrdup(src->defaults.location) : NULL;
    dst->defaults.role = src->defaults.role ? rs_xstrdup(src->defaults.role) : NULL;
}

int rs_user_settings_patch(const struct rs_user_settings *current, json_t *patch,
                           struct rs_user_settings *ret, struct rs_error *err)
{
    struct rs_user_settings s;
    copy_settings(&s, current);
    struct ctx c = {.s = &s, .err = err};
    int r = apply_doc(&c, patch, false);
    if (r < 0) {
        rs_user_settings_release(&s);
        return r;
    }
    *ret = s;
    return 0;
}

int rs_user_settings_from_json(json_t *doc, struct rs_user_settings *ret, struct rs_error *err)
{
    struct rs_user_settings s;
    rs_user_settings_defaults(&s);
    struct ctx c = {.s = &s, .err = err, .stored = true};
    int r = apply_doc(&c, doc, true);
    if (r < 0) {
        rs_user_settings_release(&s);
        return r;
    }
    *ret = s;
    return 0;
}
