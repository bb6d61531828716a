/* user_json.c: encoding users and API keys as JSON (see user_json.h). */
#include "user_json.h"

static json_t *time_or_null(int64_t ms)
{
    if (ms == 0)
        return json_null();
    char buf[RS_TIME_STR_MAX];
    rs_time_format(ms, buf);
    return json_string(buf);
}

static json_t *str_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

/* The string a text field holds; NULL when it holds none or bit names no
 * text field. */
static const char *text_value(const struct rs_user *u, unsigned bit)
{
    switch (bit) {
    case RS_UF_USERNAME:
        return u->username;
    case RS_UF_EMAIL:
        return u->email;
    case RS_UF_FIRST_NAME:
        return u->first_name;
    case RS_UF_LAST_NAME:
        return u->last_name;
    case RS_UF_PHONE:
        return u->phone;
    case RS_UF_EMPLOYEE_ID:
        return u->employee_id;
    case RS_UF_DEPARTMENT:
        return u->department;
    case RS_UF_POSITION:
        return u->position;
    case RS_UF_LOCATION:
        return u->location;
    case RS_UF_ROLE:
        return u->role;
    default:
        return NULL;
    }
}

static json_t *text_field(const struct rs_user *u, unsigned bit)
{
    switch (bit) {
    case RS_UF_MANAGER:
        return u->manager_id ? json_integer(u->manager_id) : json_null();
    case RS_UF_TYPE:
        return json_string(rs_user_type_name(u->type));
    case RS_UF_STATUS:
        return json_string(rs_user_status_name(u->status));
    case RS_UF_CUSTOM:
        return u->custom ? json_deep_copy(u->custom) : json_object();
    default:
        return str_or_null(text_value(u, bit));
    }
}

static const struct {
    unsigned bit;
    const char *name;
} field_names[] = {
    {RS_UF_USERNAME, "username"},       {RS_UF_EMAIL, "email"},
    {RS_UF_FIRST_NAME, "first_name"},   {RS_UF_LAST_NAME, "last_name"},
    {RS_UF_PHONE, "phone"},             {RS_UF_EMPLOYEE_ID, "employee_id"},
    {RS_UF_DEPARTMENT, "department"},   {RS_UF_POSITION, "position"},
    {RS_UF_MANAGER, "manager_id"},      {RS_UF_LOCATION, "location"},
    {RS_UF_TYPE, "type"},               {RS_UF_STATUS, "status"},
    {RS_UF_ROLE, "role"},               {RS_UF_CUSTOM, "custom_fields"},
};

json_t *rs_user_fields_to_json(const struct rs_user *u, unsigned mask)
{
    json_t *o = json_object();
    for (size_t i = 0; i < RS_ARRAY_LEN(field_names); i++) {
        if (mask & field_names[i].bit)
            json_object_set_new(o, field_names[i].name, text_field(u, field_names[i].bit));
    }
    return o;
}

json_t *rs_user_to_json(const struct rs_user *u)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", json_integer(u->id));
    for (size_t i = 0; i < 4; i++) /* username, email, first and last name */
        json_object_set_new(o, field_names[i].name, text_field(u, field_names[i].bit));
    char *display = rs_user_display_name(u);
    json_object_set_new(o, "display_name", json_string(display));
    free(display);
    for (size_t i = 4; i < RS_ARRAY_LEN(field_names); i++) {
        if (field_names[i].bit == RS_UF_STATUS) {
            json_object_set_new(o, "status", text_field(u, RS_UF_STATUS));
            json_object_set_new(o, "status_reason", str_or_null(u->status_reason));
            json_object_set_new(o, "status_note", str_or_null(u->status_note));
            json_object_set_new(o, "status_changed_at", time_or_null(u->status_changed_at));
            continue;
        }
        json_object_set_new(o, field_names[i].name, text_field(u, field_names[i].bit));
    }
    json_object_set_new(o, "created_at", time_or_null(u->created_at));
    json_object_set_new(o, "updated_at", time_or_null(u->updated_at));
    json_object_set_new(o, "last_login_at", time_or_null(u->last_login_at));
    json_object_set_new(o, "erased_at", time_or_null(u->erased_at));
    json_object_set_new(o, "version", json_integer(u->version));
    return o;
}

/* --- the same record as text, without building a json_t ---
 *
 * GET /users/{id}, create and update answer with one record; building it as
 * a json_t and dumping it cost more than reading the user (a third of a
 * GET's CPU). This writes the exact bytes json_dumps(rs_user_to_json(u),
 * JSON_COMPACT | JSON_PRESERVE_ORDER) would (test_core_user checks it). */

struct text {
    char *s;
    size_t len, cap;
};

static void put(struct text *t, const char *p, size_t n)
{
    if (t->len + n + 1 > t->cap) {
        while (t->len + n + 1 > t->cap)
            t->cap *= 2;
        t->s = rs_xrealloc(t->s, t->cap);
    }
    memcpy(t->s + t->len, p, n);
    t->len += n;
    t->s[t->len] = '\0';
}

static void put_cstr(struct text *t, const char *p)
{
    put(t, p, strlen(p));
}

/* A JSON string as jansson writes it: escapes ", \ and control characters
 * only; UTF-8 passes through. */
static void put_string(struct text *t, const char *v)
{
    put(t, "\"", 1);
    const char *run = v;
    for (const char *p = v; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        put(t, run, (size_t)(p - run));
        char esc[8];
        switch (c) {
        case '"': put(t, "\\\"", 2); break;
        case '\\': put(t, "\\\\", 2); break;
        case '\b': put(t, "\\b", 2); break;
        case '\f': put(t, "\\f", 2); break;
        case '\n': put(t, "\\n", 2); break;
        case '\r': put(t, "\\r", 2); break;
        case '\t': put(t, "\\t", 2); break;
        default:
            snprintf(esc, sizeof(esc), "\\u%04X", c);
            put(t, esc, 6);
        }
        run = p + 1;
    }
    put_cstr(t, run);
    put(t, "\"", 1);
}

static void put_key(struct text *t, const char *key)
{
    put(t, t->len > 1 ? ",\"" : "\"", t->len > 1 ? 2 : 1);
    put_cstr(t, key);
    put(t, "\":", 2);
}

static void put_str_or_null(struct text *t, const char *key, const char *v)
{
    put_key(t, key);
    if (v)
        put_string(t, v);
    else
        put(t, "null", 4);
}

static void put_int(struct text *t, const char *key, int64_t v)
{
    char buf[24];
    put_key(t, key);
    int n = snprintf(buf, sizeof(buf), "%lld", (long long)v);
    put(t, buf, (size_t)n);
}

static void put_time(struct text *t, const char *key, int64_t ms)
{
    if (ms == 0) {
        put_str_or_null(t, key, NULL);
        return;
    }
    char buf[RS_TIME_STR_MAX];
    rs_time_format(ms, buf);
    put_str_or_null(t, key, buf);
}

/* The value text_field(u, bit) gives, as json_dumps writes it. */
static void put_field_value(struct text *t, const struct rs_user *u, unsigned bit)
{
    switch (bit) {
    case RS_UF_MANAGER:
        if (u->manager_id) {
            char buf[24];
            int n = snprintf(buf, sizeof(buf), "%lld", (long long)u->manager_id);
            put(t, buf, (size_t)n);
        } else {
            put(t, "null", 4);
        }
        return;
    case RS_UF_TYPE:
        put_string(t, rs_user_type_name(u->type));
        return;
    case RS_UF_STATUS:
        put_string(t, rs_user_status_name(u->status));
        return;
    case RS_UF_CUSTOM:
        if (u->custom && json_object_size(u->custom)) {
            char *c = json_dumps(u->custom, JSON_COMPACT | JSON_PRESERVE_ORDER);
            put_cstr(t, c ? c : "{}");
            free(c);
        } else {
            put(t, "{}", 2);
        }
        return;
    default:
        if (text_value(u, bit))
            put_string(t, text_value(u, bit));
        else
            put(t, "null", 4);
    }
}

char *rs_user_fields_to_json_text(const struct rs_user *u, unsigned mask)
{
    struct text t = {rs_xmalloc(512), 0, 512};
    put(&t, "{", 1);
    for (size_t i = 0; i < RS_ARRAY_LEN(field_names); i++) {
        if (!(mask & field_names[i].bit))
            continue;
        put_key(&t, field_names[i].name);
        put_field_value(&t, u, field_names[i].bit);
    }
    put(&t, "}", 1);
    return t.s;
}

char *rs_user_to_json_text(const struct rs_user *u)
{
    struct text t = {rs_xmalloc(1024), 0, 1024};
    put(&t, "{", 1);
    put_int(&t, "id", u->id);
    for (size_t i = 0; i < 4; i++) { /* username, email, first and last name */
        put_key(&t, field_names[i].name);
        put_field_value(&t, u, field_names[i].bit);
    }
    char *display = rs_user_display_name(u);
    put_str_or_null(&t, "display_name", display);
    free(display);
    for (size_t i = 4; i < RS_ARRAY_LEN(field_names); i++) {
        put_key(&t, field_names[i].name);
        put_field_value(&t, u, field_names[i].bit);
        if (field_names[i].bit == RS_UF_STATUS) {
            put_str_or_null(&t, "status_reason", u->status_reason);
            put_str_or_null(&t, "status_note", u->status_note);
            put_time(&t, "status_changed_at", u->status_changed_at);
        }
    }
    put_time(&t, "created_at", u->created_at);
    put_time(&t, "updated_at", u->updated_at);
    put_time(&t, "last_login_at", u->last_login_at);
    put_time(&t, "erased_at", u->erased_at);
    put_int(&t, "version", u->version);
    put(&t, "}", 1);
    return t.s;
}

unsigned rs_user_diff(const struct rs_user *a, const struct rs_user *b)
{
    unsigned m = 0;
    for (size_t i = 0; i < RS_ARRAY_LEN(field_names); i++) {
        unsigned bit = field_names[i].bit;
        json_t *x = text_field(a, bit), *y = text_field(b, bit);
        if (!json_equal(x, y))
            m |= bit;
        json_decref(x);
        json_decref(y);
    }
    return m;
}

json_t *rs_apikey_to_json(const struct rs_apikey *k)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", json_integer(k->id));
    json_object_set_new(o, "key_id", json_string(k->key_id));
    json_object_set_new(o, "name", str_or_null(k->name));
    json_object_set_new(o, "user_id", json_integer(k->user_id));
    json_object_set_new(o, "username", str_or_null(k->username));
    json_object_set_new(o, "created_at", time_or_null(k->created_at));
    json_object_set_new(o, "expires_at", time_or_null(k->expires_at));
    json_object_set_new(o, "revoked_at", time_or_null(k->revoked_at));
    json_object_set_new(o, "last_used_at", time_or_null(k->last_used_at));
    return o;
}
