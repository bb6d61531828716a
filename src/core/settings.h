/* settings.h: Settings -> Users -> Settings: validation rules, defaults for
 * new users, feature toggles and the licence limit, as one JSON document the
 * store keeps under the key "users". Pure: decoding (strict, errors name the
 * path such as "validation.username_min_length"), merging a patch, encoding. */
#ifndef RS_SETTINGS_H
#define RS_SETTINGS_H

#include <jansson.h>

#include "user.h"

/* Feature toggles that later capabilities read (Options). */
struct rs_user_options {
    bool self_service_profile_edit;
    bool send_invite_by_default;
    bool require_reset_by_default;
    bool show_employee_id;
    bool allow_username_change;
};

struct rs_user_defaults {
    enum rs_user_type type;
    enum rs_user_status status; /* active or pending */
    char *department;           /* NULL: none */
    char *location;
    char *role;                 /* primary role of new users; NULL: none */
};

struct rs_user_settings {
    struct rs_user_rules rules;
    struct rs_user_defaults defaults;
    struct rs_user_options options;
    int64_t max_active_users; /* -1: unlimited */
    int64_t version;          /* +1 on every change; the ETag */
};

void rs_user_settings_defaults(struct rs_user_settings *s);
void rs_user_settings_release(struct rs_user_settings *s);
/* A deep copy of src into dst (which is overwritten, not released). */
void rs_user_settings_copy(struct rs_user_settings *dst, const struct rs_user_settings *src);

json_t *rs_user_settings_to_json(const struct rs_user_settings *s);

/* Applies a JSON merge patch (RFC 7396 semantics, arrays replaced whole) to
 * `current` and checks the result: unknown keys 400, wrong types 400, bad
 * values 422, each naming its path. *ret is the new settings (version not
 * changed: the service bumps it). */
int rs_user_settings_patch(const struct rs_user_settings *current, json_t *patch,
                           struct rs_user_settings *ret, struct rs_error *err) RS_WUR;

/* Reads a stored document (as written by rs_user_settings_to_json); missing
 * members keep their defaults, so older documents read under newer code. */
int rs_user_settings_from_json(json_t *doc, struct rs_user_settings *ret,
                               struct rs_error *err) RS_WUR;

#endif
