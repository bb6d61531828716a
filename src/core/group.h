/* group.h: user groups (Settings -> Users -> Groups): a name, a description,
 * an optional distribution address, and roles its members receive. Pure:
 * decoding, checks and encoding. Members are kept by the store. */
#ifndef RS_GROUP_H
#define RS_GROUP_H

#include <jansson.h>

#include "error.h"

#define RS_GROUP_NAME_MAX 100
#define RS_GROUP_ROLES_MAX 50

struct rs_group {
    int64_t id;
    char *name;
    char *description;
    char *email;        /* distribution address, or NULL */
    json_t *roles;      /* array of role keys */
    int64_t member_count; /* filled by reads */
    int64_t created_at;
    int64_t updated_at;
    int64_t version;
};

void rs_group_init(struct rs_group *g);
void rs_group_release(struct rs_group *g);
void rs_group_copy(struct rs_group *dst, const struct rs_group *src);
json_t *rs_group_to_json(const struct rs_group *g);

/* Decodes name, description, email and roles (merging onto existing on
 * update). Role keys are only checked for syntax here; the service checks
 * that they name active roles. */
int rs_group_decode(json_t *obj, const struct rs_group *existing, struct rs_group *ret,
                    struct rs_error *err) RS_WUR;

#endif
