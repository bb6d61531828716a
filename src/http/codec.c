/* codec.c: request-body decoding (see codec.h). */
#include "codec.h"

json_t *rs_json_parse_object(const char *body, size_t len, struct rs_error *err)
{
    json_error_t jerr;
    /* DECODE_ANY so that a valid scalar is reported as the wrong type, not as
     * a syntax error. */
    json_t *v = json_loadb(body, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
    if (!v) {
        rs_error_field(err, RS_EBADREQUEST, "body", "syntax",
                       "request body is not valid JSON: %s at line %d, column %d", jerr.text,
                       jerr.line, jerr.column);
        return NULL;
    }
    if (!json_is_object(v)) {
        json_decref(v);
        rs_error_field(err, RS_EBADREQUEST, "body", "type", "request body must be a JSON object");
        return NULL;
    }
    return v;
}

static const char *json_type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "an array";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
    case JSON_REAL:
        return "a number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    default:
        return "null";
    }
}

/* Takes a string (or null) field; anything else is a type error. */
static int take_string(const char *key, json_t *v, char **dst, struct rs_error *err)
{
    if (json_is_null(v)) {
        free(*dst);
        *dst = NULL;
        return 0;
    }
    if (!json_is_string(v))
        return rs_error_field(err, RS_EBADREQUEST, key, "type", "%s must be a string, not %s",
                              key, json_type_name(v));
    if (memchr(json_string_value(v), '\0', json_string_length(v)))
        return rs_error_field(err, RS_EBADREQUEST, key, "characters",
                              "%s must not contain NUL characters", key);
    free(*dst);
    *dst = rs_xstrndup(json_string_value(v), json_string_length(v));
    return 0;
}

static int read_only(const char *key, struct rs_error *err)
{
    return rs_error_field(err, RS_EBADREQUEST, key, "read_only",
                          "%s is set by the server and cannot be written", key);
}

static int unknown(const char *key, struct rs_error *err)
{
    return rs_error_field(err, RS_EBADREQUEST, key, "unknown_field", "unknown field \"%.64s\"",
                          key);
}

static const struct {
    const char *name;
    unsigned bit;
    size_t offset;
} string_members[] = {
    {"username", RS_UF_USERNAME, offsetof(struct rs_user, username)},
    {"email", RS_UF_EMAIL, offsetof(struct rs_user, email)},
    {"first_name", RS_UF_FIRST_NAME, offsetof(struct rs_user, first_name)},
    {"last_name", RS_UF_LAST_NAME, offsetof(struct rs_user, last_name)},
    {"phone", RS_UF_PHONE, offsetof(struct rs_user, phone)},
    {"employee_id", RS_UF_EMPLOYEE_ID, offsetof(struct rs_user, employee_id)},
    {"department", RS_UF_DEPARTMENT, offsetof(struct rs_user, department)},
    {"position", RS_UF_POSITION, offsetof(struct rs_user, position)},
    {"location", RS_UF_LOCATION, offsetof(struct rs_user, location)},
    {"role", RS_UF_ROLE, offsetof(struct rs_user, role)},
};

static const char *const read_only_members[] = {
    "id",         "display_name", "status_reason", "status_note", "status_changed_at",
    "created_at", "updated_at",   "last_login_at", "erased_at",   "version",
};

static int decode_member(const char *key, json_t *v, bool creating, struct rs_user *u,
                         unsigned *mask, struct rs_error *err)
{
    for (size_t i = 0; i < RS_ARRAY_LEN(string_members); i++) {
        if (strcmp(key, string_members[i].name) == 0) {
            *mask |= string_members[i].bit;
            return take_string(key, v, (char **)((char *)u + string_members[i].offset), err);
        }
    }
    if (strcmp(key, "type") == 0 || (creating && strcmp(key, "status") == 0)) {
        bool is_type = key[0] == 't';
        *mask |= is_type ? RS_UF_TYPE : RS_UF_STATUS;
        if (!json_is_string(v))
            return rs_error_field(err, RS_EBADREQUEST, key, "type", "%s must be a string, not %s",
                                  key, json_type_name(v));
        if (is_type && rs_user_type_parse(json_string_value(v), &u->type) < 0)
            return rs_error_field(err, RS_EVALIDATION, key, "enum",
                                  "type must be one of standard, admin, api, guest");
        if (!is_type && rs_user_status_parse(json_string_value(v), &u->status) < 0)
            return rs_error_field(err, RS_EVALIDATION, key, "enum",
                                  "a new user's status must be active or pending");
        return 0;
    }
    if (strcmp(key, "manager_id") == 0) {
        *mask |= RS_UF_MANAGER;
        if (json_is_null(v)) {
            u->manager_id = 0;
            return 0;
        }
        if (!json_is_integer(v))
            return rs_error_field(err, RS_EBADREQUEST, key, "type",
                                  "manager_id must be a user id (an integer) or null, not %s",
                                  json_type_name(v));
        /* Non-positive ids name no user: core reports rule "exists". */
        u->manager_id = json_integer_value(v) > 0 ? json_integer_value(v) : -1;
        return 0;
    }
    if (strcmp(key, "custom_fields") == 0) {
        *mask |= RS_UF_CUSTOM;
        if (!json_is_object(v))
            return rs_error_field(err, RS_EBADREQUEST, key, "type",
                                  "custom_fields must be an object of field key to value");
        json_decref(u->custom);
        u->custom = json_deep_copy(v);
        return 0;
    }
    if (strcmp(key, "status") == 0)
        return rs_error_field(err, RS_EBADREQUEST, key, "read_only",
                              "status changes only through the lifecycle actions (activate, "
                              "deactivate, reactivate, lock, unlock)");
    for (size_t i = 0; i < RS_ARRAY_LEN(read_only_members); i++) {
        if (strcmp(key, read_only_members[i]) == 0)
            return read_only(key, err);
    }
    return unknown(key, err);
}

static int user_decode(json_t *obj, bool creating, struct rs_user *ret, unsigned *ret_mask,
                       struct rs_error *err)
{
    struct rs_user u;
    unsigned mask = 0;
    int r = 0;
    const char *key;
    json_t *v;
    rs_user_init(&u);
    json_object_foreach(obj, key, v)
    {
        int fr = decode_member(key, v, creating, &u, &mask, err);
        if (fr < 0 && r == 0)
            r = fr;
    }
    if (r < 0) {
        rs_user_release(&u);
        return err ? -err->code : r; /* the error's code: 400 outranks 422 */
    }
    *ret = u;
    *ret_mask = mask;
    return 0;
}

int rs_user_decode(json_t *obj, struct rs_user *ret, unsigned *ret_mask, struct rs_error *err)
{
    return user_decode(obj, false, ret, ret_mask, err);
}

int rs_user_decode_create(json_t *obj, struct rs_user *ret, unsigned *ret_mask,
                          struct rs_error *err)
{
    return user_decode(obj, true, ret, ret_mask, err);
}

int rs_action_decode(json_t *obj, char **ret_reason, char **ret_note, struct rs_error *err)
{
    char *reason = NULL, *note = NULL;
    int r = 0;
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v)
    {
        int fr;
        if (strcmp(key, "reason") == 0)
            fr = take_string(key, v, &reason, err);
        else if (strcmp(key, "note") == 0)
            fr = take_string(key, v, &note, err);
        else
            fr = unknown(key, err);
        if (fr < 0 && r == 0)
            r = fr;
    }
    if (r < 0) {
        free(reason);
        free(note);
        return err ? -err->code : r;
    }
    *ret_reason = reason;
    *ret_note = note;
    return 0;
}

void rs_apikey_request_release(struct rs_apikey_request *r)
{
    free(r->name);
    free(r->username);
    memset(r, 0, sizeof(*r));
}

int rs_apikey_request_decode(json_t *obj, struct rs_apikey_request *ret, struct rs_error *err)
{
    struct rs_apikey_request req = {0};
    int r = 0;
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v)
    {
        int fr = 0;
        if (strcmp(key, "name") == 0) {
            fr = take_string(key, v, &req.name, err);
        } else if (strcmp(key, "username") == 0) {
            fr = take_string(key, v, &req.username, err);
        } else if (strcmp(key, "expires_at") == 0) {
            if (json_is_null(v)) {
                req.has_expires_at = false;
            } else if (!json_is_string(v)) {
                fr = rs_error_field(err, RS_EBADREQUEST, key, "type",
                                    "expires_at must be an RFC 3339 time string, not %s",
                                    json_type_name(v));
            } else if (rs_time_parse(json_string_value(v), &req.expires_at) < 0) {
                fr = rs_error_field(err, RS_EVALIDATION, key, "format",
                                    "expires_at must be an RFC 3339 time such as "
                                    "2027-01-31T00:00:00Z");
            } else {
                req.has_expires_at = true;
            }
        } else if (strcmp(key, "id") == 0 || strcmp(key, "key_id") == 0 ||
                   strcmp(key, "token") == 0 || strcmp(key, "created_at") == 0 ||
                   strcmp(key, "revoked_at") == 0 || strcmp(key, "last_used_at") == 0) {
            fr = read_only(key, err);
        } else {
            fr = unknown(key, err);
        }
        if (fr < 0 && r == 0)
            r = fr;
    }
    if (r < 0) {
        rs_apikey_request_release(&req);
        return err ? -err->code : r; /* the error's code: 400 outranks 422 */
    }
    *ret = req;
    return 0;
}
