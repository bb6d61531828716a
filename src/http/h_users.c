/* h_users.c: /api/v1/users handlers: decode, call one service function,
 * encode. */
#include <errno.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>

#include "../core/user_json.h"
#include "codec.h"
#include "http.h"

static void set_user_headers(struct rs_call *call, const struct rs_user *u, bool location)
{
    snprintf(call->etag, sizeof(call->etag), "\"%" PRId64 "\"", u->version);
    if (location)
        snprintf(call->location, sizeof(call->location), "/api/v1/users/%" PRId64, u->id);
}

int rs_h_users_create(struct rs_call *call)
{
    json_t *body = rs_call_body_object(call);
    if (!body)
        return rs_call_fail(call, -RS_EBADREQUEST);
    /* The creation options (Set Password, Require Reset, Send Invite) are
     * not fields of the record: take them out before decoding it. */
    struct rs_create_opts opts = {NULL, -1, -1};
    char *password = NULL;
    int r = 0;
    json_t *pw = json_object_get(body, "password");
    json_t *inv = json_object_get(body, "send_invite");
    json_t *req = json_object_get(body, "require_reset");
    if (pw && !json_is_null(pw) && !json_is_string(pw))
        r = rs_error_field(&call->err, RS_EBADREQUEST, "password", "type",
                           "password must be a string");
    else if (inv && !json_is_null(inv) && !json_is_boolean(inv))
        r = rs_error_field(&call->err, RS_EBADREQUEST, "send_invite", "type",
                           "send_invite must be true or false");
    else if (req && !json_is_null(req) && !json_is_boolean(req))
        r = rs_error_field(&call->err, RS_EBADREQUEST, "require_reset", "type",
                           "require_reset must be true or false");
    if (r < 0) {
        json_decref(body);
        return rs_call_fail(call, r);
    }
    if (json_is_string(pw)) {
        password = rs_xstrdup(json_string_value(pw));
        sodium_memzero((char *)json_string_value(pw), json_string_length(pw));
    }
    opts.password = password;
    opts.send_invite = json_is_boolean(inv) ? json_is_true(inv) : -1;
    opts.require_reset = json_is_boolean(req) ? json_is_true(req) : -1;
    json_object_del(body, "password");
    json_object_del(body, "send_invite");
    json_object_del(body, "require_reset");
    struct rs_user in, out;
    unsigned mask = 0;
    r = rs_user_decode_create(body, &in, &mask, &call->err);
    json_decref(body);
    if (r == 0) {
        r = rs_svc_user_create_with(&call->ctx, &in, mask, &opts, &out, &call->err);
        rs_user_release(&in);
    }
    if (password) {
        sodium_memzero(password, strlen(password));
        free(password);
    }
    if (r < 0)
        return rs_call_fail(call, r);
    set_user_headers(call, &out, true);
    rs_call_json_text(call, 201, rs_user_to_json_text(&out));
    rs_user_release(&out);
    return 0;
}

/* Leaves out why the user's status changed unless the caller may see it. */
static void redact_status_notes(struct rs_user *u, bool sees)
{
    if (sees)
        return;
    free(u->status_reason);
    free(u->status_note);
    u->status_reason = u->status_note = NULL;
}

int rs_h_users_get(struct rs_call *call)
{
    struct rs_user u;
    int r = rs_svc_user_get(&call->ctx, call->id, &u, &call->err);
    if (r < 0)
        return rs_call_fail(call, r);
    redact_status_notes(&u, rs_svc_sees_status_notes(&call->ctx, u.id));
    set_user_headers(call, &u, false);
    rs_call_json_text(call, 200, rs_user_to_json_text(&u));
    rs_user_release(&u);
    return 0;
}

int rs_h_users_update(struct rs_call *call)
{
    int64_t expected;
    if (rs_call_if_match(call, &expected) < 0)
        return -RS_EPRECONDITION;
    json_t *body = rs_call_body_object(call);
    if (!body)
        return rs_call_fail(call, -RS_EBADREQUEST);
    struct rs_user patch, out;
    unsigned mask = 0;
    int r = rs_user_decode(body, &patch, &mask, &call->err);
    json_decref(body);
    if (r < 0)
        return rs_call_fail(call, r);
    r = rs_svc_user_update(&call->ctx, call->id, &patch, mask, expected, &out, &call->err);
    rs_user_release(&patch);
    if (r < 0)
        return rs_call_fail(call, r);
    set_user_headers(call, &out, false);
    rs_call_json_text(call, 200, rs_user_to_json_text(&out));
    rs_user_release(&out);
    return 0;
}

static const char *const list_params[] = {
    "q",           "status",           "type",          "department",       "location",
    "position",    "manager_id",       "role",          "created_after",    "created_before",
    "last_login_after", "last_login_before", "sort",     "limit",            "cursor",
    "page",        "fields",           "group",         NULL};

/* Fields a list item may be cut down to with fields=. */
static const char *const selectable[] = {
    "id",          "username",   "email",         "first_name",    "last_name",
    "display_name", "phone",     "employee_id",   "department",    "position",
    "manager_id",  "location",   "type",          "status",        "status_reason",
    "status_note", "status_changed_at", "role",   "custom_fields", "created_at",
    "updated_at",  "last_login_at", "erased_at",  "version",       NULL};

static int bad_param(struct rs_call *call, const char *name, const char *rule, const char *msg)
{
    return rs_error_field(&call->err, RS_EBADREQUEST, name, rule, "%s", msg);
}

static int parse_time_param(struct rs_call *call, const char *name, const char *v, int64_t *dst)
{
    if (rs_time_parse(v, dst) < 0)
        return rs_error_field(&call->err, RS_EBADREQUEST, name, "format",
                              "%s must be an RFC 3339 time such as 2026-01-31T00:00:00Z", name);
    if (*dst == 0)
        *dst = 1; /* 0 means "no bound" to the store */
    return 0;
}

static int parse_positive(struct rs_call *call, const char *name, const char *v, long max,
                          int64_t *dst)
{
    char *end = NULL;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    if (errno || !*v || *end || n < 1 || n > max)
        return rs_error_field(&call->err, RS_EBADREQUEST, name, "range",
                              "%s must be a whole number from 1 to %ld", name, max);
    *dst = n;
    return 0;
}

/* Custom field filters: cf.<key>=value. */
static int parse_cf_params(struct rs_call *call, const struct rs_query_params *p,
                           struct rs_user_query *q)
{
    for (int i = 0; i < p->n; i++) {
        if (strncmp(p->keys[i], "cf.", 3) != 0)
            continue;
        const char *key = p->keys[i] + 3;
        bool ok = *key >= 'a' && *key <= 'z' && strlen(key) <= 40;
        for (const char *c = key; ok && *c; c++)
            ok = (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '_';
        if (!ok)
            return rs_error_field(&call->err, RS_EBADREQUEST, p->keys[i], "format",
                                  "custom field filters are cf.<field key>=value");
        if (q->ncf == RS_QUERY_MAX_CF)
            return rs_error_field(&call->err, RS_EBADREQUEST, p->keys[i], "max_items",
                                  "at most %d custom field filters", RS_QUERY_MAX_CF);
        q->cf_keys[q->ncf] = rs_xstrdup(key);
        q->cf_values[q->ncf] = rs_xstrdup(p->values[i]);
        q->ncf++;
    }
    return 0;
}

/* Checks fields= and returns the names (NULL-ended, owned) or NULL for all. */
static int parse_fields(struct rs_call *call, const char *v, char ***ret)
{
    size_t n = 0;
    char **names = rs_xcalloc(strlen(v) + 2, sizeof(char *));
    const char *p = v;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        bool known = false;
        for (const char *const *s = selectable; *s && !known; s++)
            known = strlen(*s) == len && memcmp(*s, p, len) == 0;
        if (!known) {
            for (size_t i = 0; i < n; i++)
                free(names[i]);
            free(names);
            return bad_param(call, "fields", "enum",
                             "fields must list fields of the user record, separated by commas");
        }
        names[n++] = rs_xstrndup(p, len);
        if (!comma)
            break;
        p = comma + 1;
    }
    *ret = names;
    return 0;
}

/* Turns the query string into a core query, naming the parameter at fault. */
/* The export takes the list's filters and sort, not its paging. */
static const char *const export_params[] = {
    "q",           "status",           "type",          "department",       "location",
    "position",    "manager_id",       "role",          "created_after",    "created_before",
    "last_login_after", "last_login_before", "sort",     "group",            "format",
    "sections",    NULL};

/* ret_sections non-NULL: an export (export_params; format and sections). */
static int decode_query(struct rs_call *call, struct rs_user_query *q, int64_t *ret_page,
                        char ***ret_fields, unsigned *ret_sections);

static int decode_list_query(struct rs_call *call, struct rs_user_query *q, int64_t *ret_page,
                             char ***ret_fields)
{
    return decode_query(call, q, ret_page, ret_fields, NULL);
}

static int decode_query(struct rs_call *call, struct rs_user_query *q, int64_t *ret_page,
                        char ***ret_fields, unsigned *ret_sections)
{
    struct rs_query_params p;
    int r = rs_query_parse(call->query, &p, &call->err);
    if (r < 0)
        return r;
    /* cf.* names are checked by parse_cf_params; the rest must be known. */
    struct rs_query_params plain = p;
    plain.n = 0;
    for (int i = 0; i < p.n; i++) {
        if (strncmp(p.keys[i], "cf.", 3) != 0) {
            plain.keys[plain.n] = p.keys[i];
            plain.values[plain.n] = p.values[i];
            plain.n++;
        }
    }
    r = rs_query_check(&plain, ret_sections ? export_params : list_params, &call->err);
    if (r == 0)
        r = parse_cf_params(call, &p, q);
    const char *v;
    if (r == 0 && ret_sections) {
        *ret_sections = RS_EXPORT_ALL;
        if ((v = rs_query_get(&p, "format")) && strcmp(v, "csv") != 0)
            r = bad_param(call, "format", "enum", "format must be csv");
        if (r == 0 && (v = rs_query_get(&p, "sections")))
            r = rs_export_sections_parse(v, ret_sections, &call->err);
    }
    if (r == 0 && (v = rs_query_get(&p, "q")) && *v)
        q->q = rs_xstrdup(v);
    if (r == 0 && (v = rs_query_get(&p, "status"))) {
        if (rs_user_status_parse(v, &q->status) < 0)
            r = bad_param(call, "status", "enum",
                          "status must be one of active, inactive, locked, pending");
        q->has_status = 1;
    }
    if (r == 0 && (v = rs_query_get(&p, "type"))) {
        if (rs_user_type_parse(v, &q->type) < 0)
            r = bad_param(call, "type", "enum", "type must be one of standard, admin, api, guest");
        q->has_type = 1;
    }
    static const struct {
        const char *name;
        size_t offset;
    } text_filters[] = {
        {"department", offsetof(struct rs_user_query, department)},
        {"location", offsetof(struct rs_user_query, location)},
        {"position", offsetof(struct rs_user_query, position)},
        {"role", offsetof(struct rs_user_query, role)},
    };
    for (size_t i = 0; r == 0 && i < RS_ARRAY_LEN(text_filters); i++) {
        if ((v = rs_query_get(&p, text_filters[i].name)))
            *(char **)((char *)q + text_filters[i].offset) = rs_xstrdup(v);
    }
    if (r == 0 && (v = rs_query_get(&p, "manager_id")))
        r = parse_positive(call, "manager_id", v, INT32_MAX, &q->manager_id);
    if (r == 0 && (v = rs_query_get(&p, "group")))
        r = parse_positive(call, "group", v, INT32_MAX, &q->group_id);
    if (call->list_group)
        q->group_id = call->list_group;
    static const struct {
        const char *name;
        size_t offset;
    } time_filters[] = {
        {"created_after", offsetof(struct rs_user_query, created_after)},
        {"created_before", offsetof(struct rs_user_query, created_before)},
        {"last_login_after", offsetof(struct rs_user_query, last_login_after)},
        {"last_login_before", offsetof(struct rs_user_query, last_login_before)},
    };
    for (size_t i = 0; r == 0 && i < RS_ARRAY_LEN(time_filters); i++) {
        if ((v = rs_query_get(&p, time_filters[i].name)))
            r = parse_time_param(call, time_filters[i].name, v,
                                 (int64_t *)((char *)q + time_filters[i].offset));
    }
    if (r == 0 && (v = rs_query_get(&p, "sort")))
        r = rs_sort_parse(v, q, &call->err);
    if (r == 0 && (v = rs_query_get(&p, "limit"))) {
        int64_t n = 0;
        r = parse_positive(call, "limit", v, RS_LIST_LIMIT_MAX, &n);
        q->limit = (int)n;
    }
    if (r == 0 && rs_query_get(&p, "cursor") && rs_query_get(&p, "page"))
        r = bad_param(call, "page", "exclusive", "use either cursor or page, not both");
    if (r == 0 && (v = rs_query_get(&p, "cursor")) && *v)
        r = rs_cursor_decode(v, q, &call->err);
    if (r == 0 && (v = rs_query_get(&p, "page"))) {
        r = parse_positive(call, "page", v, 1000000, ret_page);
        q->offset = (*ret_page - 1) * q->limit;
    }
    if (r == 0 && (v = rs_query_get(&p, "fields")))
        r = parse_fields(call, v, ret_fields);
    rs_query_release(&p);
    return r;
}

static json_t *select_fields(json_t *full, char **fields)
{
    if (!fields)
        return full;
    json_t *o = json_object();
    for (char **f = fields; *f; f++)
        json_object_set(o, *f, json_object_get(full, *f));
    json_decref(full);
    return o;
}

static void free_fields(char **fields)
{
    for (char **f = fields; f && *f; f++)
        free(*f);
    free(fields);
}

int rs_h_users_export(struct rs_call *call)
{
    struct rs_user_query q;
    int64_t page_no = 0, rows = 0;
    char **fields = NULL, *csv = NULL;
    unsigned sections = 0;
    rs_user_query_init(&q);
    int r = decode_query(call, &q, &page_no, &fields, &sections);
    if (r == 0)
        r = rs_svc_user_export(&call->ctx, &q, sections, &csv, &rows, &call->err);
    rs_user_query_release(&q);
    free_fields(fields);
    if (r < 0)
        return rs_call_fail(call, r);
    call->status = 200;
    call->text = csv;
    call->content_type = "text/csv; charset=utf-8";
    snprintf(call->disposition, sizeof(call->disposition), "attachment; filename=\"users.csv\"");
    return 0;
}

int rs_h_users_list(struct rs_call *call)
{
    struct rs_user_query q;
    struct rs_user_page page = {0};
    int64_t page_no = 0;
    char **fields = NULL;
    rs_user_query_init(&q);
    int r = decode_list_query(call, &q, &page_no, &fields);
    if (r == 0 && call->list_group)
        r = rs_svc_group_member_list(&call->ctx, call->list_group, &q, &page, &call->err);
    else if (r == 0)
        r = rs_svc_user_list(&call->ctx, &q, &page, &call->err);
    if (r < 0) {
        rs_user_query_release(&q);
        free_fields(fields);
        return rs_call_fail(call, r);
    }
    json_t *items = json_array();
    bool sees = page.count && rs_svc_sees_status_notes(&call->ctx, 0);
    for (size_t i = 0; i < page.count; i++) {
        redact_status_notes(&page.items[i],
                            sees || page.items[i].id == call->ctx.actor.user_id);
        json_array_append_new(items, select_fields(rs_user_to_json(&page.items[i]), fields));
    }
    json_t *o = json_object();
    json_object_set_new(o, "items", items);
    if (page.has_more && page.count > 0 && page_no == 0) {
        char *c = rs_cursor_encode(&q, &page.items[page.count - 1]);
        json_object_set_new(o, "next_cursor", json_string(c));
        free(c);
    } else {
        json_object_set_new(o, "next_cursor", json_null());
    }
    json_object_set_new(o, "total", json_integer(page.total));
    if (page_no > 0) {
        json_object_set_new(o, "page", json_integer(page_no));
        json_object_set_new(o, "has_more", json_boolean(page.has_more));
    }
    rs_call_json(call, 200, o);
    rs_user_page_release(&page);
    rs_user_query_release(&q);
    free_fields(fields);
    return 0;
}

/* POST /users/{id}/<action>: decodes {"reason"?, "note"?} and runs it. */
static int user_action(struct rs_call *call, int action)
{
    int64_t expected;
    if (rs_call_if_match(call, &expected) < 0)
        return -RS_EPRECONDITION;
    json_t *body = NULL;
    if (call->body && call->body_len > 0) {
        body = rs_call_body_object(call);
        if (!body)
            return rs_call_fail(call, -RS_EBADREQUEST);
    }
    char *reason = NULL, *note = NULL;
    int r = body ? rs_action_decode(body, &reason, &note, &call->err) : 0;
    json_decref(body);
    struct rs_user u;
    if (r == 0 && action < 0 && reason)
        r = rs_error_field(&call->err, RS_EBADREQUEST, "reason", "unknown_field",
                           "erase takes a note (the privacy request), not a reason");
    if (r == 0 && action < 0)
        r = rs_svc_user_erase(&call->ctx, call->id, note, expected, &u, &call->err);
    else if (r == 0)
        r = rs_svc_user_act(&call->ctx, call->id, action, reason, note, expected, &u,
                            &call->err);
    free(reason);
    free(note);
    if (r < 0)
        return rs_call_fail(call, r);
    set_user_headers(call, &u, false);
    rs_call_json_text(call, 200, rs_user_to_json_text(&u));
    rs_user_release(&u);
    return 0;
}

int rs_h_users_activate(struct rs_call *call)
{
    return user_action(call, RS_ACTION_ACTIVATE);
}

int rs_h_users_deactivate(struct rs_call *call)
{
    return user_action(call, RS_ACTION_DEACTIVATE);
}

int rs_h_users_reactivate(struct rs_call *call)
{
    return user_action(call, RS_ACTION_REACTIVATE);
}

int rs_h_users_lock(struct rs_call *call)
{
    return user_action(call, RS_ACTION_LOCK);
}

int rs_h_users_unlock(struct rs_call *call)
{
    return user_action(call, RS_ACTION_UNLOCK);
}

int rs_h_users_erase(struct rs_call *call)
{
    return user_action(call, -1);
}

static json_t *str_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

int rs_h_users_profile(struct rs_call *call)
{
    struct rs_user u, m;
    int r = rs_svc_user_profile(&call->ctx, call->id, &u, &m, &call->err);
    if (r < 0)
        return rs_call_fail(call, r);
    json_t *flat = rs_user_to_json(&u);
    json_t *o = json_object();
    json_object_set_new(o, "id", json_integer(u.id));
    json_object_set_new(o, "username", json_string(u.username));
    json_object_set_new(o, "personal",
                        json_pack("{s:o,s:o,s:o,s:o,s:o}", "first_name",
                                  str_or_null(u.first_name), "last_name", str_or_null(u.last_name),
                                  "email", str_or_null(u.email), "phone", str_or_null(u.phone),
                                  "employee_id", str_or_null(u.employee_id)));
    json_t *manager = json_null();
    if (m.id) {
        char *name = rs_user_display_name(&m);
        manager = json_pack("{s:I,s:s,s:s}", "id", (json_int_t)m.id, "username", m.username,
                            "name", name);
        free(name);
    }
    json_object_set_new(o, "organization",
                        json_pack("{s:o,s:o,s:o,s:o}", "department", str_or_null(u.department),
                                  "position", str_or_null(u.position), "manager", manager,
                                  "location", str_or_null(u.location)));
    json_t *system = json_object();
    json_object_set_new(system, "username", json_string(u.username));
    json_object_set(system, "type", json_object_get(flat, "type"));
    json_object_set(system, "role", json_object_get(flat, "role"));
    json_object_set(system, "status", json_object_get(flat, "status"));
    json_object_set(system, "last_login_at", json_object_get(flat, "last_login_at"));
    json_object_set_new(o, "system", system);
    json_object_set(o, "custom_fields", json_object_get(flat, "custom_fields"));
    json_object_set_new(o, "user", flat);
    set_user_headers(call, &u, false);
    rs_call_json(call, 200, o);
    rs_user_release(&u);
    rs_user_release(&m);
    return 0;
}

int rs_h_group_members_list(struct rs_call *call)
{
    call->list_group = call->id;
    return rs_h_users_list(call);
}

int rs_h_users_history(struct rs_call *call)
{
    char *events = NULL;
    int r = rs_svc_user_history(&call->ctx, call->id, &events, &call->err);
    if (r < 0)
        return rs_call_fail(call, r);
    json_t *arr = json_loads(events, 0, NULL);
    free(events);
    if (!arr)
        return rs_call_fail(call, -RS_EINTERNAL);
    json_t *o = json_object();
    json_object_set_new(o, "items", arr);
    rs_call_json(call, 200, o);
    return 0;
}
