/* access.h: who may do what. Resources (built-in and registered by other ERP
 * modules) and ordered levels none < read < write < admin; roles map
 * resources to levels ("*" meaning every resource); a user's effective level
 * on a resource is the highest that any of their active roles grants
 * (primary, secondary, and the roles of their groups: "permissions combine,
 * highest access wins"), bounded by the user type (admin: everything; guest:
 * at most read) and status (only active users hold anything). Pure. */
#ifndef RS_ACCESS_H
#define RS_ACCESS_H

#include <jansson.h>
#include <stdbool.h>

#include "user.h"

/* Built-in resources that routes declare. */
enum rs_resource {
    RS_RES_USERS,
    RS_RES_ROLES,
    RS_RES_GROUPS,
    RS_RES_SETTINGS,
    RS_RES_AUDIT,
    RS_RES_REPORTS,
    RS_RES_IMPORT,
    RS_RES_EXPORT,
    RS_RES_APIKEYS,
    RS_RES_SYSTEM, /* public routes (health, metrics): no resource checked */
    RS_RES_COUNT
};
enum rs_level { RS_LEVEL_NONE, RS_LEVEL_READ, RS_LEVEL_WRITE, RS_LEVEL_ADMIN, RS_LEVEL_COUNT };

#define RS_RESOURCE_KEY_MAX 64
#define RS_ROLE_NAME_MAX 100

const char *rs_resource_name(enum rs_resource r);
const char *rs_level_name(enum rs_level l);
int rs_level_parse(const char *s, enum rs_level *ret) RS_WUR;
/* Resource and role keys: ^[a-z][a-z0-9_.-]{0,63}$ */
bool rs_access_key_ok(const char *key);

struct rs_role {
    int64_t id;
    char *key;
    char *name;
    char *description;
    json_t *permissions; /* object: resource key (or "*") -> level name */
    bool built_in;
    bool active;
    int64_t created_at;
    int64_t updated_at;
    int64_t version;
};

/* A resource in the catalogue. */
struct rs_resource_def {
    char *key;
    char *label;
    char *module;
    bool built_in;
    int64_t created_at;
};
void rs_resource_def_release(struct rs_resource_def *r);
json_t *rs_resource_def_to_json(const struct rs_resource_def *r);

void rs_role_init(struct rs_role *r);
void rs_role_release(struct rs_role *r);
void rs_role_copy(struct rs_role *dst, const struct rs_role *src);
json_t *rs_role_to_json(const struct rs_role *r);
/* The level a role grants on a resource (its own entry, else "*"). */
enum rs_level rs_role_level(const struct rs_role *r, const char *resource);

/* Decodes a role from JSON: on create all of key, name, description?,
 * permissions; on update (existing != NULL) name, description and
 * permissions merge onto a copy and key is immutable. Permission keys must
 * be in the catalogue ("*" is reserved for the built-in administrator): 422
 * "permissions.<key>" rule "unknown". */
int rs_role_decode(json_t *obj, const struct rs_role *existing, char *const *resources,
                   size_t nresources, struct rs_role *ret, struct rs_error *err) RS_WUR;

/* Where a role comes from for one user. */
enum rs_role_via { RS_VIA_PRIMARY, RS_VIA_SECONDARY, RS_VIA_GROUP };
struct rs_role_ref {
    const char *role_key;
    enum rs_role_via via;
    const char *group_name; /* RS_VIA_GROUP only */
};

/* A user's effective access: one entry per catalogue resource. */
struct rs_grant {
    enum rs_role_via via; /* or -1 for the user type */
    char *role;           /* NULL for the type */
    char *group;          /* RS_VIA_GROUP only */
};
struct rs_access_entry {
    char *resource;
    enum rs_level level;
    size_t ngrants;       /* the sources that grant `level` */
    struct rs_grant *grants;
    bool capped;          /* the type (guest) lowered it */
};
struct rs_access {
    int64_t user_id;
    enum rs_user_type type;
    enum rs_user_status status;
    size_t n;
    struct rs_access_entry *items;
};

void rs_access_release(struct rs_access *a);

/* Resolves effective access over the catalogue from the role definitions
 * (all of them; retired ones grant nothing) and the user's role references. */
void rs_access_resolve(int64_t user_id, enum rs_user_type type, enum rs_user_status status,
                       const struct rs_role *roles, size_t nroles, const struct rs_role_ref *refs,
                       size_t nrefs, char *const *resources, size_t nresources,
                       struct rs_access *ret);

/* The entry for a resource, or NULL if it is not in the catalogue. */
const struct rs_access_entry *rs_access_find(const struct rs_access *a, const char *resource);

/* {"users": {"level": "write", "granted_by": [...]}, ...} */
json_t *rs_access_to_json(const struct rs_access *a);
json_t *rs_access_grants_json(const struct rs_access_entry *e);

#endif
