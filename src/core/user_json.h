/* user_json.h: a user as a JSON object (jansson), the one encoding the API,
 * the CLI and audit events share. Pure. */
#ifndef RS_USER_JSON_H
#define RS_USER_JSON_H

#include <jansson.h>

#include "apikey.h"
#include "user.h"

/* New reference to {"id", "username", ..., "version"}. */
json_t *rs_user_to_json(const struct rs_user *u);
/* The same record as compact JSON text, byte for byte what json_dumps of
 * rs_user_to_json gives (JSON_COMPACT | JSON_PRESERVE_ORDER), written
 * directly. Caller frees. */
char *rs_user_to_json_text(const struct rs_user *u);
/* New reference to an object with only the fields in mask (audit diffs). */
json_t *rs_user_fields_to_json(const struct rs_user *u, unsigned mask);
/* The same object as compact JSON text, byte for byte what json_dumps of
 * rs_user_fields_to_json gives (JSON_COMPACT | JSON_PRESERVE_ORDER), written
 * directly (a create's audit event: a quarter of the cost of building and
 * dumping the object). Caller frees. */
char *rs_user_fields_to_json_text(const struct rs_user *u, unsigned mask);
/* Which fields differ between a and b (RS_UF_* bits). */
unsigned rs_user_diff(const struct rs_user *a, const struct rs_user *b);
/* An API key without its secret. */
json_t *rs_apikey_to_json(const struct rs_apikey *k);

#endif
