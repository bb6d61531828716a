/* service.h: the use cases. One call = one transaction = one audit event.
 * Each call checks the actor's permission, validates with core, and writes
 * through the store. Front ends (http, cli) call these and nothing below.
 *
 * Calls marked "writes" acquire the store's writer and may wait: never call
 * them on an event loop thread. Reads may run on a loop when the store's
 * reads_inline is true. Output structs are filled only on success. */
#ifndef RS_SERVICE_H
#define RS_SERVICE_H

#include "../core/credential.h"
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
/* Authentication by session cookie (session.c): sets ctx->actor,
 * ctx->session_id and ctx->session_flags, or fails with -RS_EUNAUTHENTICATED
 * (expired, unknown, user no longer active). With state_changing (any method
 * but GET/HEAD) csrf must equal the session's CSRF token, else -RS_EFORBIDDEN
 * (rule "csrf"). *ret_touch is set when last-seen should be written
 * (rs_svc_session_touch, off the loop). */
int rs_svc_authenticate_session(struct rs_ctx *ctx, const char *token, const char *csrf,
                                bool state_changing, bool *ret_touch,
                                struct rs_error *err) RS_WUR;
/* writes: records that the actor's session was used now. */
int rs_svc_session_touch(struct rs_ctx *ctx, struct rs_error *err) RS_WUR;
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
/* Refuses (403 "you need LEVEL access to RESOURCE") unless the actor holds
 * level on res; the system actor (id 0) passes. The front end's check of
 * what a route declares. */
int rs_svc_authorize(struct rs_ctx *ctx, enum rs_resource res, enum rs_level level,
                     struct rs_error *err) RS_WUR;
int rs_svc_user_permissions(struct rs_ctx *ctx, int64_t id, char **ret_json,
                            struct rs_error *err) RS_WUR;
/* Whether the actor may see why a user's status changed (status_reason,
 * status_note: HR reasons for a deactivation or lock): the user themself,
 * those who may change users (users write) and auditors (audit read). A
 * caller with users read alone sees the status, not the reason. user_id 0:
 * a list (no one user is "themself"). */
bool rs_svc_sees_status_notes(struct rs_ctx *ctx, int64_t user_id);
/* The id of the user named username, for the access check (needs roles
 * read, like the check itself). */
int rs_svc_access_user_id(struct rs_ctx *ctx, const char *username, int64_t *ret,
                          struct rs_error *err) RS_WUR;
int rs_svc_access_check(struct rs_ctx *ctx, int64_t user_id, const char *resource,
                        enum rs_level need, json_t **ret, struct rs_error *err) RS_WUR;
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
/* Export sections ("How to Export User Data" → Export Fields). */
enum {
    RS_EXPORT_BASIC = 1u << 0,        /* id, username, names, type, status */
    RS_EXPORT_CONTACT = 1u << 1,      /* email, phone */
    RS_EXPORT_ORGANIZATION = 1u << 2, /* employee id, department, position, location, manager */
    RS_EXPORT_ROLES = 1u << 3,        /* primary and secondary roles, groups */
    RS_EXPORT_ACTIVITY = 1u << 4,     /* created, updated, status changed, last sign-in */
    RS_EXPORT_CUSTOM = 1u << 5,       /* active custom fields, cf.KEY */
    RS_EXPORT_ALL = (1u << 6) - 1,
};
/* "basic,contact,..." into a mask; 400 naming `sections` otherwise. */
int rs_export_sections_parse(const char *s, unsigned *ret, struct rs_error *err) RS_WUR;
/* Every user the list query q matches (its limit and paging ignored), as
 * CSV (RFC 4180, CRLF rows, a header row, formula cells neutralised), in
 * the list's order; needs export read. Writes a user.export audit event
 * (sections, row count, group). */
int rs_svc_user_export(struct rs_ctx *ctx, const struct rs_user_query *q, unsigned sections,
                       char **ret_csv, int64_t *ret_count, struct rs_error *err) RS_WUR;
/* A group's members, with every filter, sort and paging of the users list;
 * needs groups read (not users read). */
int rs_svc_group_member_list(struct rs_ctx *ctx, int64_t id, const struct rs_user_query *q,
                             struct rs_user_page *ret, struct rs_error *err) RS_WUR;
int rs_svc_group_active_members(struct rs_ctx *ctx, int64_t id, struct rs_user_page *ret,
                                struct rs_error *err) RS_WUR;

/* Health: 0 when the database answers. */
int rs_svc_health(struct rs_ctx *ctx, struct rs_error *err) RS_WUR;

/* --- Sign-in and credentials (session.c, credentials.c). --- */

struct rs_login_in {
    const char *username;      /* one of username and email */
    const char *email;
    const char *password;
    const char *totp;          /* NULL: none */
    const char *recovery_code; /* NULL: none */
    const char *user_agent;
};
struct rs_login_out {
    struct rs_user user;
    struct rs_session session;
    char token[48];            /* the session cookie's value, shown once */
    char csrf[RS_HASH_HEX];
};
void rs_login_out_release(struct rs_login_out *o);
/* Before serving (no access check): makes what sign-in needs ahead of the
 * first request, namely the dummy hash unknown users are checked against,
 * with the stored hashing parameters (returned). rs_svc_auth_settings_patch
 * remakes it when they change. */
int rs_svc_signin_prepare(struct rs_ctx *ctx, int *ret_memory_kib, int *ret_iterations,
                          struct rs_error *err) RS_WUR;
/* writes: signs in. Every refusal is -RS_EUNAUTHENTICATED "invalid
 * credentials" (the reason in the audit log), except: 2FA needed and no code
 * (-RS_EUNAUTHENTICATED with field "totp", rule "required") and the client
 * address over its failure budget (-RS_ETHROTTLED, *ret_retry_after set). */
int rs_svc_login(struct rs_ctx *ctx, const struct rs_login_in *in, struct rs_login_out *ret,
                 int *ret_retry_after, struct rs_error *err) RS_WUR;
/* writes: ends the caller's session (nothing for API keys). */
int rs_svc_logout(struct rs_ctx *ctx, struct rs_error *err) RS_WUR;
/* The caller: user, session (id 0 for API keys), 2FA state, as JSON. */
int rs_svc_me(struct rs_ctx *ctx, json_t **ret, struct rs_error *err) RS_WUR;
/* writes: changes the caller's password; with a session, the session gets a
 * new id (*ret_token, *ret_csrf; ret_token[0] == 0 otherwise). */
int rs_svc_change_password(struct rs_ctx *ctx, const char *current, const char *new_pw,
                           char ret_token[48], char ret_csrf[RS_HASH_HEX],
                           struct rs_error *err) RS_WUR;
/* writes: queues a reset link when the address belongs to an account that
 * may reset; the same answer either way. */
int rs_svc_forgot_password(struct rs_ctx *ctx, const char *email, int *ret_retry_after,
                           struct rs_error *err) RS_WUR;
int rs_svc_reset_password(struct rs_ctx *ctx, const char *token, const char *password,
                          struct rs_error *err) RS_WUR;
int rs_svc_activate(struct rs_ctx *ctx, const char *token, const char *password,
                    struct rs_error *err) RS_WUR;
/* Sessions: of the caller (user_id 0) or of a user (users:read / write). */
int rs_svc_sessions_list(struct rs_ctx *ctx, int64_t user_id, struct rs_session **ret,
                         size_t *ret_n, struct rs_error *err) RS_WUR;
int rs_svc_session_end(struct rs_ctx *ctx, int64_t user_id, int64_t session_id,
                       struct rs_error *err) RS_WUR;
int rs_svc_sessions_end_all(struct rs_ctx *ctx, int64_t user_id, int *ret_n,
                            struct rs_error *err) RS_WUR;
/* 2FA of the caller. */
int rs_svc_totp_status(struct rs_ctx *ctx, json_t **ret, struct rs_error *err) RS_WUR;
int rs_svc_totp_enroll(struct rs_ctx *ctx, const char *password, json_t **ret,
                       struct rs_error *err) RS_WUR;
int rs_svc_totp_confirm(struct rs_ctx *ctx, const char *code, json_t **ret, char ret_token[48],
                        char ret_csrf[RS_HASH_HEX], struct rs_error *err) RS_WUR;
int rs_svc_totp_disable(struct rs_ctx *ctx, const char *password, const char *code,
                        struct rs_error *err) RS_WUR;
int rs_svc_totp_recovery_codes(struct rs_ctx *ctx, const char *password, json_t **ret,
                               struct rs_error *err) RS_WUR;
/* Administration of another user's credentials. */
int rs_svc_totp_reset(struct rs_ctx *ctx, int64_t user_id, struct rs_error *err) RS_WUR;
/* method "email" or "temporary" (password NULL: generated; *ret_password then set). */
int rs_svc_admin_reset_password(struct rs_ctx *ctx, int64_t user_id, const char *method,
                                const char *password, char **ret_password,
                                struct rs_error *err) RS_WUR;
int rs_svc_invite(struct rs_ctx *ctx, int64_t user_id, struct rs_error *err) RS_WUR;
int rs_svc_ip_ranges_get(struct rs_ctx *ctx, int64_t user_id, json_t **ret,
                         struct rs_error *err) RS_WUR;
int rs_svc_ip_ranges_put(struct rs_ctx *ctx, int64_t user_id, json_t *ranges,
                         struct rs_error *err) RS_WUR;
int rs_svc_login_diagnosis(struct rs_ctx *ctx, int64_t user_id, const char *ip, json_t **ret,
                           struct rs_error *err) RS_WUR;
/* writes: a user whose lockout ran out becomes active again (the locks job). */
int rs_svc_lockout_expire(struct rs_ctx *ctx, int64_t user_id, struct rs_error *err) RS_WUR;

/* Tests only: moves this process's business clock by offset_ms
 * (settings:admin); -RS_ENOTFOUND unless enabled (ROSTER_TEST_CLOCK=1). */
/* Test only: pauses (or resumes) this process's background jobs, so a test
 * can see what a request left for them. enabled as for the clock. */
int rs_svc_test_jobs_pause(struct rs_ctx *ctx, bool enabled, bool paused,
                           struct rs_error *err) RS_WUR;
int rs_svc_test_clock_set(struct rs_ctx *ctx, bool enabled, int64_t offset_ms,
                          struct rs_error *err) RS_WUR;

/* Creation options of POST /users (User Creation Options). send_invite: -1
 * takes the users settings' default; likewise require_reset. */
struct rs_create_opts {
    const char *password;
    int send_invite;
    int require_reset;
};
int rs_svc_user_create_with(struct rs_ctx *ctx, struct rs_user *in, unsigned in_mask,
                            const struct rs_create_opts *opts, struct rs_user *ret,
                            struct rs_error *err) RS_WUR;

#endif
