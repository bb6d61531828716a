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

static json_t *text_field(const struct rs_user *u, unsigned bit)
{
    switch (bit) {
    case RS_UF_USERNAME:
        return str_or_null(u->username);
    case RS_UF_EMAIL:
        return str_or_null(u->email);
    case RS_UF_FIRST_NAME:
        return str_or_null(u->first_name);
    case RS_UF_LAST_NAME:
        return str_or_null(u->last_name);
    case RS_UF_PHONE:
        return str_or_null(u->phone);
    case RS_UF_EMPLOYEE_ID:
        return str_or_null(u->employee_id);
    case RS_UF_DEPARTMENT:
        return str_or_null(u->department);
    case RS_UF_POSITION:
        return str_or_null(u->position);
    case RS_UF_LOCATION:
        return str_or_null(u->location);
    case RS_UF_ROLE:
        return str_or_null(u->role);
    case RS_UF_MANAGER:
        return u->manager_id ? json_integer(u->manager_id) : json_null();
    case RS_UF_TYPE:
        return json_string(rs_user_type_name(u->type));
    case RS_UF_STATUS:
        return json_string(rs_user_status_name(u->status));
    case RS_UF_CUSTOM:
        return u->custom ? json_deep_copy(u->custom) : json_object();
    default:
        return json_null();
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
