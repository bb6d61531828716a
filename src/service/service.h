/* service.h: the use cases. One call = one transaction = one audit event.
 * Each call checks the actor's permission, validates with core, and writes
 * through the store. Front ends (http, cli) call these and nothing below.
 *
 * Calls marked "writes" acquire the store's writer and may wait: never call
 * them on an event loop thread. Reads may run on a loop when the store's
 * reads_inline is true. Output structs are filled only on success. */
#ifndef RS_SERVICE_H
#define RS_SERVICE_H

#include "../core/custom_field.h"
#include "../core/lifecycle.h"
#include "../core/settings.h"
#include "ctx.h"

/* Authentication: sets ctx->actor from an API key token, or fails with
 * -RS_EUNAUTHENTICATED and one generic message whatever the reason (the
 * reason goes to err->log_detail). *ret_touch is set when the key's last-used
 * time is stale enough to be written (rs_svc_apikey_touch, off the loop). */
int rs_svc_authenticate(struct rs_ctx *ctx, const char *token, size_t len, bool *ret_touch,
                        struct rs_error *err) RS_WUR;
/* writes: records that the actor's API key was used now. */
int rs_svc_apikey_touch(struct rs_ctx *ctx, struct rs_error *err) RS_WUR;

/* Users. create: writes; fields in in_mask of *in; required fields must be
 * present; omitted ones take the settings' defaults. update: writes; applies
 * the fields in mask (status excluded: use rs_svc_user_act); expected_version
 * < 0 skips the If-Match check. */
int rs_svc_user_create(struct rs_ctx *ctx, struct rs_user *in, unsigned in_mask,
                       struct rs_user *ret, struct rs_error *err) RS_WUR;
int rs_svc_user_get(struct rs_ctx *ctx, int64_t id, struct rs_user *ret,
                    struct rs_error *err) RS_WUR;
int rs_svc_user_get_by_username(struct rs_ctx *ctx, const char *username, struct rs_user *ret,
                                struct rs_error *err) RS_WUR;
int rs_svc_user_list(struct rs_ctx *ctx, const struct rs_user_query *q, struct rs_user_page *ret,
                     struct rs_error *err) RS_WUR;
int rs_svc_user_update(struct rs_ctx *ctx, int64_t id, struct rs_user *patch, unsigned mask,
                       int64_t expected_version, struct rs_user *ret,
                       struct rs_error *err) RS_WUR;
/* Lifecycle: writes; moves the user along the state machine (core/lifecycle.h)
 * with a reason (deactivate) and note, checking the licence limit when the
 * user becomes active and refusing to disable the last active administrator. */
int rs_svc_user_act(struct rs_ctx *ctx, int64_t id, int action, const char *reason,
                    const char *note, int64_t expected_version, struct rs_user *ret,
                    struct rs_error *err) RS_WUR;
/* Privacy erase: writes; anonymises personal fields, revokes keys, keeps the
 * audit trail. */
int rs_svc_user_erase(struct rs_ctx *ctx, int64_t id, const char *note, int64_t expected_version,
                      struct rs_user *ret, struct rs_error *err) RS_WUR;
/* A user and their manager (ret_manager->id == 0 when none), for the profile. */
int rs_svc_user_profile(struct rs_ctx *ctx, int64_t id, struct rs_user *ret,
                        struct rs_user *ret_manager, struct rs_error *err) RS_WUR;

/* Settings -> Users -> Settings. */
int rs_svc_settings_get(struct rs_ctx *ctx, struct rs_user_settings *ret,
                        struct rs_error *err) RS_WUR;
/* writes: a merge patch; expected_version < 0 skips the If-Match check. */
int rs_svc_settings_patch(struct rs_ctx *ctx, json_t *patch, int64_t expected_version,
                          struct rs_user_settings *ret, struct rs_error *err) RS_WUR;
/* Custom fields. */
int rs_svc_fields_list(struct rs_ctx *ctx, struct rs_custom_field **ret_items,
                       size_t *ret_count, struct rs_error *err) RS_WUR;
int rs_svc_field_create(struct rs_ctx *ctx, json_t *def, struct rs_custom_field *ret,
                        struct rs_error *err) RS_WUR;
int rs_svc_field_update(struct rs_ctx *ctx, int64_t id, json_t *patch, int64_t expected_version,
                        struct rs_custom_field *ret, struct rs_error *err) RS_WUR;

/* The audit trail of one user, newest first, as a JSON array string. */
int rs_svc_user_history(struct rs_ctx *ctx, int64_t id, char **ret_json,
                        struct rs_error *err) RS_WUR;

/* API keys. create: writes; for the user named username (NULL: the actor),
 * expiring at *expires_at (NULL: never; it must be in the future); returns
 * the token once in token_out. */
int rs_svc_apikey_create(struct rs_ctx *ctx, const char *username, const char *name,
                         const int64_t *expires_at, struct rs_apikey *ret,
                         char token_out[RS_APIKEY_TOKEN_MAX], struct rs_error *err) RS_WUR;
int rs_svc_apikey_list(struct rs_ctx *ctx, const char *username, struct rs_apikey **ret_items,
                       size_t *ret_count, struct rs_error *err) RS_WUR;
/* writes: revokes a key; *ret is the key as it now stands. */
int rs_svc_apikey_revoke(struct rs_ctx *ctx, int64_t id, struct rs_apikey *ret,
                         struct rs_error *err) RS_WUR;

/* First run: on an empty database create the administrator "admin" and an
 * admin API key (writes). *ret_created is false when users already exist. */
int rs_svc_bootstrap(struct rs_ctx *ctx, bool *ret_created, char token_out[RS_APIKEY_TOKEN_MAX],
                     struct rs_error *err) RS_WUR;

/* Access. The watcher polls the access version so this process drops
 * permissions changed by others; start it once when serving. */
int rs_access_watch_start(struct rs_store *store, struct rs_error *err) RS_WUR;
void rs_access_watch_stop(void);
int rs_svc_user_permissions(struct rs_ctx *ctx, int64_t id, char **ret_json,
                            struct rs_error *err) RS_WUR;
int rs_svc_access_check(struct rs_ctx *ctx, int64_t user_id, const char *resource,
                        enum rs_level need, char **ret_json, struct rs_error *err) RS_WUR;
int rs_svc_access_cache_clear(struct rs_ctx *ctx, struct rs_error *err) RS_WUR;

/* Resources and roles (roles.c). */
int rs_svc_resources_list(struct rs_ctx *ctx, struct rs_resource_def **ret, size_t *ret_n,
                          struct rs_error *err) RS_WUR;
int rs_svc_resource_register(struct rs_ctx *ctx, const char *key, const char *label,
                             const char *module, struct rs_resource_def *ret,
                             struct rs_error *err) RS_WUR;
int rs_svc_roles_list(struct rs_ctx *ctx, struct rs_role **ret, size_t *ret_n,
                      struct rs_error *err) RS_WUR;
int rs_svc_role_create(struct rs_ctx *ctx, json_t *body, struct rs_role *ret,
                       struct rs_error *err) RS_WUR;
int rs_svc_role_update(struct rs_ctx *ctx, int64_t id, json_t *body, int64_t expected_version,
                       struct rs_role *ret, struct rs_error *err) RS_WUR;
int rs_svc_role_retire(struct rs_ctx *ctx, int64_t id, int64_t expected_version,
                       struct rs_role *ret, struct rs_error *err) RS_WUR;
/* {"user_id", "primary", "secondary": [...]} */
int rs_svc_user_roles_get(struct rs_ctx *ctx, int64_t user_id, char **ret_json,
                          struct rs_error *err) RS_WUR;
int rs_svc_user_roles_set(struct rs_ctx *ctx, int64_t user_id, const char *primary,
                          char *const *secondary, size_t n, struct rs_error *err) RS_WUR;

/* Groups (groups.c). active_members: up to RS_LIST_LIMIT_MAX active members,
 * for email distribution and workflow assignment. */
int rs_svc_groups_list(struct rs_ctx *ctx, struct rs_group **ret, size_t *ret_n,
                       struct rs_error *err) RS_WUR;
int rs_svc_group_get(struct rs_ctx *ctx, int64_t id, struct rs_group *ret,
                     struct rs_error *err) RS_WUR;
int rs_svc_group_create(struct rs_ctx *ctx, json_t *body, struct rs_group *ret,
                        struct rs_error *err) RS_WUR;
int rs_svc_group_update(struct rs_ctx *ctx, int64_t id, json_t *body, int64_t expected_version,
                        struct rs_group *ret, struct rs_error *err) RS_WUR;
int rs_svc_group_delete(struct rs_ctx *ctx, int64_t id, struct rs_error *err) RS_WUR;
int rs_svc_group_members_add(struct rs_ctx *ctx, int64_t id, const int64_t *user_ids, size_t n,
                             struct rs_error *err) RS_WUR;
int rs_svc_group_member_remove(struct rs_ctx *ctx, int64_t id, int64_t user_id,
                               struct rs_error *err) RS_WUR;
int rs_svc_group_active_members(struct rs_ctx *ctx, int64_t id, struct rs_user_page *ret,
                                struct rs_error *err) RS_WUR;

/* Health: 0 when the database answers. */
int rs_svc_health(struct rs_ctx *ctx, struct rs_error *err) RS_WUR;

#endif
