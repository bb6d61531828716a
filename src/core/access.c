/* access.c: roles and effective access (see access.h). */
#include <stdio.h>

#include "access.h"

static const char *const resource_names[RS_RES_COUNT] = {
    "users", "roles", "groups", "settings", "audit", "reports", "import", "export", "api_keys",
    "system"};
static const char *const level_names[RS_LEVEL_COUNT] = {"none", "read", "write", "admin"};

const char *rs_resource_name(enum rs_resource r)
{
    return (unsigned)r < RS_RES_COUNT ? resource_names[r] : "unknown";
}

const char *rs_level_name(enum rs_level l)
{
    return (unsigned)l < RS_LEVEL_COUNT ? level_names[l] : "none";
}

int rs_level_parse(const char *s, enum rs_level *ret)
{
    for (int i = 0; i < RS_LEVEL_COUNT; i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *ret = (enum rs_level)i;
            return 0;
        }
    }
    return -1;
}

bool rs_access_key_ok(const char *key)
{
    size_t n = strlen(key);
    if (n < 1 || n > RS_RESOURCE_KEY_MAX || key[0] < 'a' || key[0] > 'z')
        return false;
    for (size_t i = 1; i < n; i++) {
        char c = key[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
              c == '-'))
            return false;
    }
    return true;
}

void rs_resource_def_release(struct rs_resource_def *r)
{
    free(r->key);
    free(r->label);
    free(r->module);
    memset(r, 0, sizeof(*r));
}

json_t *rs_resource_def_to_json(const struct rs_resource_def *r)
{
    json_t *o = json_object();
    json_object_set_new(o, "key", json_string(r->key));
    json_object_set_new(o, "label", json_string(r->label));
    json_object_set_new(o, "module", json_string(r->module ? r->module : ""));
    json_object_set_new(o, "built_in", json_boolean(r->built_in));
    return o;
}

void rs_role_init(struct rs_role *r)
{
    memset(r, 0, sizeof(*r));
    r->active = true;
}

void rs_role_release(struct rs_role *r)
{
    free(r->key);
    free(r->name);
    free(r->description);
    json_decref(r->permissions);
    memset(r, 0, sizeof(*r));
}

static char *dup_or_null(const char *s)
{
    return s ? rs_xstrdup(s) : NULL;
}

void rs_role_copy(struct rs_role *dst, const struct rs_role *src)
{
    *dst = *src;
    dst->key = dup_or_null(src->key);
    dst->name = dup_or_null(src->name);
    dst->description = dup_or_null(src->description);
    dst->permissions = src->permissions ? json_deep_copy(src->permissions) : json_object();
}

json_t *rs_role_to_json(const struct rs_role *r)
{
    char ts[RS_TIME_STR_MAX];
    json_t *o = json_object();
    json_object_set_new(o, "id", json_integer(r->id));
    json_object_set_new(o, "key", json_string(r->key));
    json_object_set_new(o, "name", json_string(r->name));
    json_object_set_new(o, "description", json_string(r->description ? r->description : ""));
    json_object_set_new(o, "permissions",
                        r->permissions ? json_deep_copy(r->permissions) : json_object());
    json_object_set_new(o, "built_in", json_boolean(r->built_in));
    json_object_set_new(o, "active", json_boolean(r->active));
    rs_time_format(r->created_at, ts);
    json_object_set_new(o, "created_at", json_string(ts));
    rs_time_format(r->updated_at, ts);
    json_object_set_new(o, "updated_at", json_string(ts));
    json_object_set_new(o, "version", json_integer(r->version));
    return o;
}

enum rs_level rs_role_level(const struct rs_role *r, const char *resource)
{
    json_t *v = json_object_get(r->permissions, resource);
    if (!v)
        v = json_object_get(r->permissions, "*");
    enum rs_level l = RS_LEVEL_NONE;
    if (json_is_string(v) && rs_level_parse(json_string_value(v), &l) < 0)
        l = RS_LEVEL_NONE;
    return l;
}

/* Roles an administrator writes name catalogue resources only; "*" is the
 * built-in administrator's. */
static bool in_catalogue(const char *key, char *const *resources, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(resources[i], key) == 0)
            return true;
    }
    return false;
}

static int check_permissions(json_t *perms, char *const *resources, size_t nresources,
                             struct rs_error *err)
{
    int before = err->nfields;
    char name[RS_RESOURCE_KEY_MAX + 16];
    if (!json_is_object(perms))
        return rs_error_field(err, RS_EBADREQUEST, "permissions", "type",
                              "permissions must be an object of resource to level");
    const char *key;
    json_t *v;
    json_object_foreach(perms, key, v)
    {
        snprintf(name, sizeof(name), "permissions.%.*s", RS_RESOURCE_KEY_MAX, key);
        enum rs_level l;
        if (!in_catalogue(key, resources, nresources))
            rs_error_field(err, RS_EVALIDATION, name, "unknown", "%s names no resource", name);
        else if (!json_is_string(v) || rs_level_parse(json_string_value(v), &l) < 0)
            rs_error_field(err, RS_EVALIDATION, name, "enum",
                           "%s must be one of none, read, write, admin", name);
    }
    return err->nfields != before ? -err->code : 0;
}

static int take_text(const char *key, json_t *v, size_t max, bool empty_ok, char **dst,
                     struct rs_error *err)
{
    if (!json_is_string(v))
        return rs_error_field(err, RS_EBADREQUEST, key, "type", "%s must be a string", key);
    long n = rs_utf8_length(json_string_value(v), json_string_length(v));
    if (n < 0 || (!empty_ok && n == 0) || (size_t)n > max)
        return rs_error_field(err, RS_EVALIDATION, key, n == 0 ? "required" : "max_length",
                              "%s must be %s1 to %zu characters", key, empty_ok ? "0 or " : "",
                              max);
    free(*dst);
    *dst = rs_xstrdup(json_string_value(v));
    return 0;
}

int rs_role_decode(json_t *obj, const struct rs_role *existing, char *const *resources,
                   size_t nresources, struct rs_role *ret, struct rs_error *err)
{
    struct rs_role r;
    if (existing) {
        rs_role_copy(&r, existing);
    } else {
        rs_role_init(&r);
        r.permissions = json_object();
    }
    int rc = 0;
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v)
    {
        int fr = 0;
        if (strcmp(key, "key") == 0) {
            if (!json_is_string(v))
                fr = rs_error_field(err, RS_EBADREQUEST, key, "type", "key must be a string");
            else if (existing && strcmp(existing->key, json_string_value(v)) != 0)
                fr = rs_error_field(err, RS_EVALIDATION, key, "immutable",
                                    "a role's key cannot change");
            else if (!existing) {
                free(r.key);
                r.key = rs_xstrdup(json_string_value(v));
            }
        } else if (strcmp(key, "name") == 0) {
            fr = take_text(key, v, RS_ROLE_NAME_MAX, false, &r.name, err);
            if (fr == 0)
                fr = rs_text_check(r.name, key, 1, RS_ROLE_NAME_MAX, err);
        } else if (strcmp(key, "description") == 0) {
            fr = take_text(key, v, 1000, true, &r.description, err);
        } else if (strcmp(key, "permissions") == 0) {
            fr = check_permissions(v, resources, nresources, err);
            if (fr == 0) {
                json_decref(r.permissions);
                r.permissions = json_deep_copy(v);
            }
        } else if (strcmp(key, "id") == 0 || strcmp(key, "built_in") == 0 ||
                   strcmp(key, "active") == 0 || strcmp(key, "created_at") == 0 ||
                   strcmp(key, "updated_at") == 0 || strcmp(key, "version") == 0) {
            fr = rs_error_field(err, RS_EBADREQUEST, key, "read_only",
                                "%s is set by the server%s", key,
                                strcmp(key, "active") == 0 ? "; use POST .../retire" : "");
        } else {
            fr = rs_error_field(err, RS_EBADREQUEST, key, "unknown_field",
                                "unknown field \"%.64s\"", key);
        }
        if (fr < 0 && rc == 0)
            rc = fr;
    }
    /* Rule failures are reported together (a malformed body, 400, alone). */
    if (rc != -RS_EBADREQUEST && !existing) {
        int fr = 0;
        if (!r.key)
            fr = rs_error_field(err, RS_EVALIDATION, "key", "required", "key is required");
        else if (!rs_access_key_ok(r.key))
            fr = rs_error_field(err, RS_EVALIDATION, "key", "format",
                                "key must be a lower-case letter then up to 63 lower-case "
                                "letters, digits, '_', '.' or '-'");
        if (!r.name && !json_object_get(obj, "name"))
            fr = rs_error_field(err, RS_EVALIDATION, "name", "required", "name is required");
        if (fr < 0 && rc == 0)
            rc = fr;
    }
    if (rc < 0) {
        rs_role_release(&r);
        return -err->code;
    }
    *ret = r;
    return 0;
}

void rs_access_release(struct rs_access *a)
{
    for (size_t i = 0; i < a->n; i++) {
        struct rs_access_entry *e = &a->items[i];
        free(e->resource);
        for (size_t j = 0; j < e->ngrants; j++) {
            free(e->grants[j].role);
            free(e->grants[j].group);
        }
        free(e->grants);
    }
    free(a->items);
    memset(a, 0, sizeof(*a));
}

static const struct rs_role *find_role(const struct rs_role *roles, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(roles[i].key, key) == 0)
            return &roles[i];
    }
    return NULL;
}

static void add_grant(struct rs_access_entry *e, int via, const char *role, const char *group)
{
    e->grants = rs_xrealloc(e->grants, (e->ngrants + 1) * sizeof(*e->grants));
    struct rs_grant *g = &e->grants[e->ngrants++];
    g->via = (enum rs_role_via)via;
    g->role = role ? rs_xstrdup(role) : NULL;
    g->group = group ? rs_xstrdup(group) : NULL;
}

static void clear_grants(struct rs_access_entry *e)
{
    for (size_t j = 0; j < e->ngrants; j++) {
        free(e->grants[j].role);
        free(e->grants[j].group);
    }
    e->ngrants = 0;
}

void rs_access_resolve(int64_t user_id, enum rs_user_type type, enum rs_user_status status,
                       const struct rs_role *roles, size_t nroles, const struct rs_role_ref *refs,
                       size_t nrefs, char *const *resources, size_t nresources,
                       struct rs_access *ret)
{
    struct rs_access a = {.user_id = user_id, .type = type, .status = status, .n = nresources};
    a.items = rs_xcalloc(nresources ? nresources : 1, sizeof(*a.items));
    for (size_t i = 0; i < nresources; i++) {
        struct rs_access_entry *e = &a.items[i];
        e->resource = rs_xstrdup(resources[i]);
        if (status != RS_STATUS_ACTIVE)
            continue; /* only active users hold anything */
        if (type == RS_USER_ADMIN) {
            e->level = RS_LEVEL_ADMIN;
            add_grant(e, -1, NULL, NULL);
            continue;
        }
        for (size_t j = 0; j < nrefs; j++) {
            const struct rs_role *r = find_role(roles, nroles, refs[j].role_key);
            if (!r || !r->active)
                continue;
            enum rs_level l = rs_role_level(r, resources[i]);
            if (l == RS_LEVEL_NONE || l < e->level)
                continue;
            if (l > e->level) {
                clear_grants(e);
                e->level = l;
            }
            add_grant(e, refs[j].via, r->key, refs[j].via == RS_VIA_GROUP ? refs[j].group_name
                                                                          : NULL);
        }
        if (type == RS_USER_GUEST && e->level > RS_LEVEL_READ) {
            e->level = RS_LEVEL_READ;
            e->capped = true;
        }
    }
    *ret = a;
}

const struct rs_access_entry *rs_access_find(const struct rs_access *a, const char *resource)
{
    for (size_t i = 0; i < a->n; i++) {
        if (strcmp(a->items[i].resource, resource) == 0)
            return &a->items[i];
    }
    return NULL;
}

static const char *const via_names[] = {"primary", "secondary", "group"};

json_t *rs_access_grants_json(const struct rs_access_entry *e)
{
    json_t *arr = json_array();
    for (size_t j = 0; j < e->ngrants; j++) {
        const struct rs_grant *g = &e->grants[j];
        json_t *o = json_object();
        if ((int)g->via < 0) {
            json_object_set_new(o, "kind", json_string("type"));
            json_object_set_new(o, "type", json_string("admin"));
        } else if (g->via == RS_VIA_GROUP) {
            json_object_set_new(o, "kind", json_string("group"));
            json_object_set_new(o, "group", json_string(g->group ? g->group : ""));
            json_object_set_new(o, "role", json_string(g->role));
        } else {
            json_object_set_new(o, "kind", json_string("role"));
            json_object_set_new(o, "role", json_string(g->role));
            json_object_set_new(o, "via", json_string(via_names[g->via]));
        }
        json_array_append_new(arr, o);
    }
    return arr;
}

json_t *rs_access_to_json(const struct rs_access *a)
{
    json_t *o = json_object();
    for (size_t i = 0; i < a->n; i++) {
        const struct rs_access_entry *e = &a->items[i];
        json_t *v = json_object();
        json_object_set_new(v, "level", json_string(rs_level_name(e->level)));
        json_object_set_new(v, "granted_by", rs_access_grants_json(e));
        if (e->capped)
            json_object_set_new(v, "capped_by", json_string("type guest"));
        json_object_set_new(o, e->resource, v);
    }
    return o;
}
