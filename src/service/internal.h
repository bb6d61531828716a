/* internal.h: helpers shared by the service files; not for front ends. */
#ifndef RS_SERVICE_INTERNAL_H
#define RS_SERVICE_INTERNAL_H

#include <jansson.h>

#include "../core/access.h"
#include "service.h"

/* Refuses with 403 unless the actor holds level on res. */
int rs_svc_require(struct rs_ctx *ctx, enum rs_resource res, enum rs_level level,
                   struct rs_error *err) RS_WUR;

/* Encodes j (stealing the reference) as compact JSON text; caller frees. */
char *rs_json_text(json_t *j);

/* The users settings as stored, read on c; the defaults (version 1) when
 * never written, with *ret_stored false (ret_stored may be NULL). */
int rs_settings_load(struct rs_ctx *ctx, struct rs_conn *c, struct rs_user_settings *ret,
                     bool *ret_stored, struct rs_error *err) RS_WUR;
/* Frees a list of custom field definitions. */
void rs_fields_free(struct rs_custom_field *items, size_t n);

#endif
