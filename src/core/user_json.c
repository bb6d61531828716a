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

json_t *rs_user_fields_to_json(const struct rs_user *u, unsigned mask)
{
    json_t *o = json_object();
    if (mask & RS_UF_USERNAME)
        json_object_set_new(o, "username", str_or_null(u->username));
    if (mask & RS_UF_EMAIL)
        json_object_set_new(o, "email", str_or_null(u->email));
    if (mask & RS_UF_FIRST_NAME)
        json_object_set_new(o, "first_name", str_or_null(u->first_name));
    if (mask & RS_UF_LAST_NAME)
        json_object_set_new(o, "last_name", str_or_null(u->last_name));
    if (mask & RS_UF_TYPE)
        json_object_set_new(o, "type", json_string(rs_user_type_name(u->type)));
    return o;
}

json_t *rs_user_to_json(const struct rs_user *u)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", json_integer(u->id));
    json_object_set_new(o, "username", str_or_null(u->username));
    json_object_set_new(o, "email", str_or_null(u->email));
    json_object_set_new(o, "first_name", str_or_null(u->first_name));
    json_object_set_new(o, "last_name", str_or_null(u->last_name));
    json_object_set_new(o, "type", json_string(rs_user_type_name(u->type)));
    json_object_set_new(o, "status", json_string(rs_user_status_name(u->status)));
    json_object_set_new(o, "created_at", time_or_null(u->created_at));
    json_object_set_new(o, "updated_at", time_or_null(u->updated_at));
    json_object_set_new(o, "version", json_integer(u->version));
    return o;
}

static bool str_differs(const char *a, const char *b)
{
    if (!a || !b)
        return a != b;
    return strcmp(a, b) != 0;
}

unsigned rs_user_diff(const struct rs_user *a, const struct rs_user *b)
{
    unsigned m = 0;
    if (str_differs(a->username, b->username))
        m |= RS_UF_USERNAME;
    if (str_differs(a->email, b->email))
        m |= RS_UF_EMAIL;
    if (str_differs(a->first_name, b->first_name))
        m |= RS_UF_FIRST_NAME;
    if (str_differs(a->last_name, b->last_name))
        m |= RS_UF_LAST_NAME;
    if (a->type != b->type)
        m |= RS_UF_TYPE;
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
