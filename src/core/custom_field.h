/* custom_field.h: fields an administrator adds to the user record
 * (Settings -> Users -> Settings -> Fields): their definitions and the checks
 * on values. Pure. Values live in a user's `custom` JSON object. */
#ifndef RS_CUSTOM_FIELD_H
#define RS_CUSTOM_FIELD_H

#include <jansson.h>
#include <stdbool.h>

#include "error.h"

#define RS_CF_KEY_MAX 40
#define RS_CF_LABEL_MAX 100
#define RS_CF_TEXT_MAX 500
#define RS_CF_OPTIONS_MAX 100
#define RS_CF_MAX_FIELDS 100
#define RS_CF_NUMBER_LIMIT 1e15 /* |value| of a number field */

enum rs_cf_type { RS_CF_TEXT, RS_CF_NUMBER, RS_CF_DATE, RS_CF_BOOLEAN, RS_CF_CHOICE,
                  RS_CF_TYPE_COUNT };

struct rs_custom_field {
    int64_t id;
    char *key;
    char *label;
    enum rs_cf_type type;
    bool required;
    json_t *default_value; /* NULL: none */
    json_t *options;       /* choice: array of strings; else NULL */
    char *pattern;         /* text: POSIX ERE; else NULL */
    bool has_min, has_max; /* number bounds */
    double min, max;
    bool active;
    int64_t created_at;
    int64_t updated_at;
    int64_t version;
};

void rs_custom_field_init(struct rs_custom_field *f);
void rs_custom_field_release(struct rs_custom_field *f);
void rs_custom_field_copy(struct rs_custom_field *dst, const struct rs_custom_field *src);

const char *rs_cf_type_name(enum rs_cf_type t);
int rs_cf_type_parse(const char *s, enum rs_cf_type *ret) RS_WUR;

/* Decodes a definition from JSON. On create every writable member may be
 * given; on update (existing != NULL) members merge onto a copy of existing,
 * and key and type are immutable (422 rule "immutable"). Then checks the
 * whole definition (key syntax, options for choice, pattern compiles, min <=
 * max, the default satisfies the field). Unknown members: 400. */
int rs_custom_field_decode(json_t *obj, const struct rs_custom_field *existing,
                           struct rs_custom_field *ret, struct rs_error *err) RS_WUR;

json_t *rs_custom_field_to_json(const struct rs_custom_field *f);

/* Checks the values in `given` (an object of key -> value; JSON null means
 * "clear") against the definitions. Unknown or retired keys: 422
 * "custom_fields.<key>" rule "unknown". On create (creating = true), required
 * active fields without a value get their default, or fail with rule
 * "required"; *ret_values is then the values to store (defaults added). On
 * update, `current` is the stored object and required fields may not be
 * cleared. *ret_values: a new object to merge (create: the full set). */
int rs_custom_values_check(const struct rs_custom_field *defs, size_t ndefs, json_t *given,
                           const json_t *current, bool creating, json_t **ret_values,
                           struct rs_error *err) RS_WUR;

/* The text form a filter compares with ("12.5", "true", "2026-01-05"). */
char *rs_custom_value_text(const json_t *v);

#endif
