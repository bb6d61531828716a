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

int rs_user_decode(json_t *obj, struct rs_user *ret, unsigned *ret_mask, struct rs_error *err)
{
    struct rs_user u;
    unsigned mask = 0;
    int r = 0;
    const char *key;
    json_t *v;
    rs_user_init(&u);
    json_object_foreach(obj, key, v)
    {
        int fr = 0;
        if (strcmp(key, "username") == 0) {
            fr = take_string(key, v, &u.username, err);
            mask |= RS_UF_USERNAME;
        } else if (strcmp(key, "email") == 0) {
            fr = take_string(key, v, &u.email, err);
            mask |= RS_UF_EMAIL;
        } else if (strcmp(key, "first_name") == 0) {
            fr = take_string(key, v, &u.first_name, err);
            mask |= RS_UF_FIRST_NAME;
        } else if (strcmp(key, "last_name") == 0) {
            fr = take_string(key, v, &u.last_name, err);
            mask |= RS_UF_LAST_NAME;
        } else if (strcmp(key, "type") == 0) {
            if (!json_is_string(v))
                fr = rs_error_field(err, RS_EBADREQUEST, key, "type",
                                    "type must be a string, not %s", json_type_name(v));
            else if (rs_user_type_parse(json_string_value(v), &u.type) < 0)
                fr = rs_error_field(err, RS_EVALIDATION, key, "enum",
                                    "type must be one of standard, admin, api, guest");
            mask |= RS_UF_TYPE;
        } else if (strcmp(key, "id") == 0 || strcmp(key, "created_at") == 0 ||
                   strcmp(key, "updated_at") == 0 || strcmp(key, "version") == 0 ||
                   strcmp(key, "status") == 0) {
            fr = read_only(key, err);
        } else {
            fr = unknown(key, err);
        }
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
