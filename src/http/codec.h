/* codec.h: strict decoding of request bodies into core structs. Unknown
 * fields, read-only fields and mistyped values are refused by name (400);
 * rule checks (required, formats) are core's, not the codec's. Links without
 * h2o so fuzz targets can drive it alone. */
#ifndef RS_CODEC_H
#define RS_CODEC_H

#include <jansson.h>

#include "../core/error.h"
#include "../core/user.h"

/* Parses body as a JSON object. Returns a new reference, or NULL with err
 * (400, field "body", rule "syntax" or "type"). */
json_t *rs_json_parse_object(const char *body, size_t len, struct rs_error *err);

/* Decodes a user change (PATCH) body into *ret (owned by ret) and the mask of
 * fields present; null for a field counts as present-but-null (core reports
 * "required" for fields that may not be cleared). status is read-only here:
 * it changes only through lifecycle actions. */
int rs_user_decode(json_t *obj, struct rs_user *ret, unsigned *ret_mask,
                   struct rs_error *err) RS_WUR;
/* The same for a create body, where status (active or pending) may be set. */
int rs_user_decode_create(json_t *obj, struct rs_user *ret, unsigned *ret_mask,
                          struct rs_error *err) RS_WUR;

/* Decodes a lifecycle action body {"reason"?, "note"?} (obj may be NULL). */
int rs_action_decode(json_t *obj, char **ret_reason, char **ret_note,
                     struct rs_error *err) RS_WUR;

/* Decodes {"name", "username"?, "expires_at"?} for API key creation. */
struct rs_apikey_request {
    char *name;
    char *username;
    bool has_expires_at; /* false: never expires */
    int64_t expires_at;
};
void rs_apikey_request_release(struct rs_apikey_request *r);
int rs_apikey_request_decode(json_t *obj, struct rs_apikey_request *ret,
                             struct rs_error *err) RS_WUR;

#endif
