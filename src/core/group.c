/* group.c: group records (see group.h). */
#include "access.h"
#include "group.h"
#include "user.h"

void rs_group_init(struct rs_group *g)
{
    memset(g, 0, sizeof(*g));
}

void rs_group_release(struct rs_group *g)
{
    free(g->name);
    free(g->description);
    free(g->email);
    json_decref(g->roles);
    memset(g, 0, sizeof(*g));
}

void rs_group_copy(struct rs_group *dst, const struct rs_group *src)
{
    *dst = *src;
    dst->name = src->name ? rs_xstrdup(src->name) : NULL;
    dst->description = src->description ? rs_xstrdup(src->description) : NULL;
    dst->email = src->email ? rs_xstrdup(src->email) : NULL;
    dst->roles = src->roles ? json_deep_copy(src->roles) : json_array();
}

json_t *rs_group_to_json(const struct rs_group *g)
{
    char ts[RS_TIME_STR_MAX];
    json_t *o = json_object();
    json_object_set_new(o, "id", json_integer(g->id));
    json_object_set_new(o, "name", json_string(g->name));
    json_object_set_new(o, "description", json_string(g->description ? g->description : ""));
    json_object_set_new(o, "email", g->email ? json_string(g->email) : json_null());
    json_object_set_new(o, "roles", g->roles ? json_deep_copy(g->roles) : json_array());
    json_object_set_new(o, "member_count", json_integer(g->member_count));
    rs_time_format(g->created_at, ts);
    json_object_set_new(o, "created_at", json_string(ts));
    rs_time_format(g->updated_at, ts);
    json_object_set_new(o, "updated_at", json_string(ts));
    json_object_set_new(o, "version", json_integer(g->version));
    return o;
}

int rs_group_decode(json_t *obj, const struct rs_group *existing, struct rs_group *ret,
                    struct rs_error *err)
{
    struct rs_group g;
    if (existing) {
        rs_group_copy(&g, existing);
    } else {
        rs_group_init(&g);
        g.roles = json_array();
    }
    int r = 0;
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v)
    {
        int fr = 0;
        if (strcmp(key, "name") == 0 || strcmp(key, "description") == 0) {
            bool is_name = key[0] == 'n';
            char **dst = is_name ? &g.name : &g.description;
            char *clean = json_is_string(v) ? rs_text_clean(json_string_value(v)) : NULL;
            long n = clean ? rs_utf8_length(clean, strlen(clean)) : 0;
            if (!json_is_string(v))
                fr = rs_error_field(err, RS_EBADREQUEST, key, "type", "%s must be a string", key);
            else if (is_name && n == 0)
                fr = rs_error_field(err, RS_EVALIDATION, key, "required", "name is required");
            else if (n > (is_name ? RS_GROUP_NAME_MAX : 1000))
                fr = rs_error_field(err, RS_EVALIDATION, key, "max_length",
                                    "%s must be at most %d characters", key,
                                    is_name ? RS_GROUP_NAME_MAX : 1000);
            else if (is_name)
                fr = rs_text_check(clean, key, 1, RS_GROUP_NAME_MAX, err);
            if (fr == 0) {
                free(*dst);
                *dst = clean ? clean : rs_xstrdup("");
                clean = NULL;
            }
            free(clean);
        } else if (strcmp(key, "email") == 0) {
            if (json_is_null(v)) {
                free(g.email);
                g.email = NULL;
            } else if (!json_is_string(v)) {
                fr = rs_error_field(err, RS_EBADREQUEST, key, "type",
                                    "email must be a string or null");
            } else {
                struct rs_user probe;
                rs_user_init(&probe);
                probe.email = rs_xstrdup(json_string_value(v));
                fr = rs_user_validate(&probe, RS_UF_EMAIL, 0, err);
                if (fr == 0) {
                    free(g.email);
                    g.email = RS_TAKE_PTR(probe.email);
                }
                rs_user_release(&probe);
            }
        } else if (strcmp(key, "roles") == 0) {
            size_t i;
            json_t *k;
            if (!json_is_array(v) || json_array_size(v) > RS_GROUP_ROLES_MAX) {
                fr = rs_error_field(err, RS_EBADREQUEST, key, "type",
                                    "roles must be an array of at most %d role keys",
                                    RS_GROUP_ROLES_MAX);
            } else {
                json_array_foreach(v, i, k)
                {
                    if (!json_is_string(k) || !rs_access_key_ok(json_string_value(k))) {
                        fr = rs_error_field(err, RS_EVALIDATION, "roles", "format",
                                            "roles must hold role keys");
                        break;
                    }
                }
            }
            if (fr == 0) {
                /* A role named twice is held once. */
                json_decref(g.roles);
                g.roles = json_array();
                json_array_foreach(v, i, k)
                {
                    bool dup = false;
                    size_t j;
                    json_t *seen;
                    json_array_foreach(g.roles, j, seen)
                    {
                        if (json_equal(seen, k))
                            dup = true;
                    }
                    if (!dup)
                        json_array_append(g.roles, k);
                }
            }
        } else if (strcmp(key, "id") == 0 || strcmp(key, "member_count") == 0 ||
                   strcmp(key, "created_at") == 0 || strcmp(key, "updated_at") == 0 ||
                   strcmp(key, "version") == 0) {
            fr = rs_error_field(err, RS_EBADREQUEST, key, "read_only",
                                "%s is set by the server", key);
        } else {
            fr = rs_error_field(err, RS_EBADREQUEST, key, "unknown_field",
                                "unknown field \"%.64s\"", key);
        }
        if (fr < 0 && r == 0)
            r = fr;
    }
    if (r == 0 && !g.name)
        r = rs_error_field(err, RS_EVALIDATION, "name", "required", "name is required");
    if (r < 0) {
        rs_group_release(&g);
        return -err->code;
    }
    if (!g.description)
        g.description = rs_xstrdup("");
    *ret = g;
    return 0;
}
