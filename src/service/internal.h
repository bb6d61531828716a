/* internal.h: helpers shared by the service files; not for front ends. */
#ifndef RS_SERVICE_INTERNAL_H
#define RS_SERVICE_INTERNAL_H

#include <jansson.h>

#include "../core/access.h"
#include "service.h"

/* Refuses with 403 unless the actor holds level on res (the system actor,
 * user id 0, holds everything). */
int rs_svc_require(struct rs_ctx *ctx, enum rs_resource res, enum rs_level level,
                   struct rs_error *err) RS_WUR;
int rs_svc_require_named(struct rs_ctx *ctx, const char *resource, enum rs_level level,
                         struct rs_error *err) RS_WUR;
/* The level user_id holds on resource, through the cache. */
int rs_svc_level(struct rs_ctx *ctx, int64_t user_id, const char *resource, enum rs_level *ret,
                 struct rs_error *err) RS_WUR;
/* Resolves a user's access from the store (no cache). */
int rs_access_compute(struct rs_ctx *ctx, struct rs_conn *c, const struct rs_user *u,
                      struct rs_access *ret, struct rs_error *err) RS_WUR;
/* Refuses (403, rule "escalation", naming the resource) unless the actor
 * holds every level role grants; field names what is being granted. */
int rs_svc_check_grant(struct rs_ctx *ctx, struct rs_tx *tx, const struct rs_role *role,
                       const char *field, struct rs_error *err) RS_WUR;
/* The users list without the users:read check (the caller checked what its
 * own route needs: a group's members need groups:read). */
int rs_user_list_in(struct rs_ctx *ctx, const struct rs_user_query *q, struct rs_user_page *ret,
                    struct rs_error *err) RS_WUR;
/* Calls fn on every user q matches, in q's sort, a page of
 * RS_LIST_LIMIT_MAX at a time through a cursor (q's limit and paging are
 * ignored); stops at fn's first error. No access check. */
int rs_user_each(struct rs_ctx *ctx, const struct rs_user_query *q,
                 int (*fn)(void *arg, const struct rs_user *u, struct rs_error *err), void *arg,
                 struct rs_error *err) RS_WUR;
/* The user named username (folded as the uniqueness rule folds), without an
 * access check: 404 naming the username when there is none. */
int rs_user_get_by_username_in(struct rs_ctx *ctx, const char *username, struct rs_user *ret,
                               struct rs_error *err) RS_WUR;
/* The same rule for taking role key away (from a group, or with a group
 * from its members): refused (403 escalation) unless the actor holds every
 * level it grants. A retired or unknown key passes (it grants nothing). */
int rs_svc_check_revoke(struct rs_ctx *ctx, struct rs_tx *tx, const char *key,
                        const char *field, struct rs_error *err) RS_WUR;
/* A role key given for assignment (a user's primary role): 422 (rule
 * "exists") unless it names an active role, then rs_svc_check_grant. NULL
 * passes. Reads the role catalogue through its cache. */
int rs_svc_check_role_assignable(struct rs_ctx *ctx, struct rs_tx *tx, const char *key,
                                 const char *field, struct rs_error *err) RS_WUR;
/* After a change is written in tx: refuses (409 last_admin, naming who) if
 * no active administrator remains (admin type, or the administrator role
 * held as primary, secondary or through a group). */
int rs_svc_check_admin_remains(struct rs_ctx *ctx, struct rs_tx *tx, const char *who,
                               struct rs_error *err) RS_WUR;
/* Refuses (403 escalation) a change to a user that would raise their level
 * on any resource above what the actor holds (e.g. a type change lifting
 * the guest cap). before and after are the user around the change. */
int rs_svc_check_no_gain(struct rs_ctx *ctx, struct rs_tx *tx, const struct rs_user *before,
                         const struct rs_user *after, struct rs_error *err) RS_WUR;
/* Refuses (403, field "user", rule "escalation") an action on another
 * user's account or credentials (reset, 2FA reset, address ranges, ending
 * sessions, email change, lifecycle) unless the actor holds at least every
 * level the target holds: a user manager cannot take over an administrator.
 * The system actor and the user themself pass. Reads on c. */
int rs_svc_check_outranks(struct rs_ctx *ctx, struct rs_conn *c, const struct rs_user *target,
                          const char *what, struct rs_error *err) RS_WUR;
/* Within tx: bumps the access version; the commit then drops this
 * process's cached permissions (other processes follow within 50 ms). */
int rs_tx_access_changed(struct rs_tx *tx, struct rs_error *err) RS_WUR;

/* Encodes j (stealing the reference) as compact JSON text; caller frees. */
char *rs_json_text(json_t *j);

/* The users settings as stored, read on c; the defaults (version 1) when
 * never written, with *ret_stored false (ret_stored may be NULL). */
int rs_settings_load(struct rs_ctx *ctx, struct rs_conn *c, struct rs_user_settings *ret,
                     bool *ret_stored, struct rs_error *err) RS_WUR;
/* Frees a list of custom field definitions. */
void rs_fields_free(struct rs_custom_field *items, size_t n);

/* A lifecycle transition inside tx, without the access check (users.c). */
int rs_user_act_tx(struct rs_ctx *ctx, struct rs_tx *tx, int64_t id, int action,
                   const char *reason, const char *note, int64_t expected_version,
                   struct rs_user *ret, struct rs_error *err) RS_WUR;

/* Credentials beside the user record (credentials.c). */
struct rs_new_credential {
    char *hash;        /* argon2id of the Set Password option, or NULL */
    bool must_change;  /* Require Reset */
    bool invite;       /* Send Invite */
    int send_invite;   /* as asked: -1 default, 0, 1 */
    int require_reset;
};
void rs_new_credential_release(struct rs_new_credential *nc);
/* Before the transaction: checks and hashes the Set Password option. */
int rs_cred_prepare_create(struct rs_ctx *ctx, const struct rs_user *in, unsigned in_mask,
                           const struct rs_create_opts *opts, struct rs_new_credential *ret,
                           struct rs_error *err) RS_WUR;
/* Inside the create transaction, with the users options: resolves the
 * defaults (invite, require reset) and the status an invite implies, and
 * checks the options together: an invite is pending and not for API users;
 * require_reset needs a password or an invite (422 field password, rule
 * required). */
int rs_cred_resolve_create(struct rs_new_credential *nc, const struct rs_user_options *o,
                           struct rs_user *in, unsigned *in_mask, struct rs_error *err) RS_WUR;
/* After the user row is written: password, invite token and mail. */
int rs_cred_created(struct rs_ctx *ctx, struct rs_tx *tx, const struct rs_user *u,
                    const struct rs_new_credential *nc, struct rs_error *err) RS_WUR;
/* After a status change: sessions end unless active; an unlock clears the lockout. */
int rs_cred_status_changed(struct rs_ctx *ctx, struct rs_tx *tx, const struct rs_user *before,
                           const struct rs_user *after, struct rs_error *err) RS_WUR;
/* Within tx, beside rs_tx_access_changed: the user's privileges (type,
 * primary or secondary roles, groups, a group's roles, the permissions of a
 * role they hold) or the sign-in policy that applies to them change, so
 * each of their sessions gets a new id on its next request, with the
 * sign-in policy (2FA) applied again. _users: each listed user; _group:
 * every member of the group (call it before members or the group are
 * removed); _role: every holder of the role (primary, secondary, through a
 * group); _all: every user (the 2FA policy changed). One statement each. */
int rs_cred_privilege_changed(struct rs_tx *tx, int64_t user_id, struct rs_error *err) RS_WUR;
int rs_cred_privilege_changed_users(struct rs_tx *tx, const int64_t *user_ids, size_t n,
                                    struct rs_error *err) RS_WUR;
int rs_cred_privilege_changed_group(struct rs_tx *tx, int64_t group_id,
                                    struct rs_error *err) RS_WUR;
int rs_cred_privilege_changed_role(struct rs_tx *tx, const char *role_key,
                                   struct rs_error *err) RS_WUR;
int rs_cred_privilege_changed_all(struct rs_tx *tx, struct rs_error *err) RS_WUR;
/* Within tx, after a user's email changed: the email_changed notice to the
 * old address (none when there was none). */
int rs_cred_email_changed(struct rs_ctx *ctx, struct rs_tx *tx, const struct rs_user *before,
                          const struct rs_user *after, struct rs_error *err) RS_WUR;
/* Erase: sessions, tokens, password, 2FA, recovery codes go. */
int rs_cred_erased(struct rs_ctx *ctx, struct rs_tx *tx, int64_t user_id,
                   struct rs_error *err) RS_WUR;
/* Every role key u holds: the primary role, secondary roles and the roles
 * of each group u belongs to (a key may repeat), read on c. Free with
 * rs_strv_free. The 2FA "roles" policy and the address rules both use it. */
int rs_roles_held(struct rs_ctx *ctx, struct rs_conn *c, const struct rs_user *u, char ***ret,
                  size_t *ret_n, struct rs_error *err) RS_WUR;
void rs_strv_free(char **v, size_t n);
/* The IP allow-lists that apply to a user (their own, their type's, each
 * held role's), as a JSON array of arrays; for the access cache. */
int rs_ip_lists_for(struct rs_ctx *ctx, struct rs_conn *c, const struct rs_user *u,
                    json_t **ret, struct rs_error *err) RS_WUR;
/* Whether ip passes every list (through the access cache). */
int rs_svc_ip_allowed(struct rs_ctx *ctx, int64_t user_id, const char *ip, bool *ret,
                      struct rs_error *err) RS_WUR;

/* API keys as authentication last read them from the store (keycache.c):
 * per process, 1024 slots chosen by key id (a newer key replaces an older
 * one), thread-safe. An entry answers only under the access stamp
 * (rs_access_stamp) taken before the store read, so revoking a key (which
 * bumps the access version), a change of its owner's type or status, or a
 * cache clear drops it: in this process at once, in others within the
 * watcher's 50 ms. It also answers for at most RS_KEYCACHE_MAX_AGE_MS,
 * which bounds how long an owner's old username (a rename bumps nothing)
 * goes on reaching audit events. It holds the stored secret hash, not a
 * verdict: the caller still compares the presented secret (constant time)
 * and checks expiry and the owner's status on every request. */
#define RS_KEYCACHE_MAX_AGE_MS 5000
struct rs_cached_key {
    int64_t id;
    char key_id[RS_APIKEY_ID_LEN + 1];
    unsigned char secret_hash[RS_APIKEY_HASH_BYTES];
    int64_t user_id;
    char username[RS_USERNAME_MAX * 4 + 1];
    int owner_type;   /* enum rs_user_type */
    int owner_status; /* enum rs_user_status */
    int64_t expires_at;   /* 0: never */
    int64_t revoked_at;   /* 0: not revoked */
    int64_t last_used_at; /* as stored, or as a touch this process scheduled */
};
/* Copies into ret the entry for key_id if it was made under stamp and less
 * than the maximum age before now; false (ret untouched) otherwise. */
bool rs_keycache_get(const char *key_id, const int64_t stamp[2], int64_t now,
                     struct rs_cached_key *ret);
/* Stores k, read from the store at now after stamp was taken. */
void rs_keycache_put(const struct rs_cached_key *k, const int64_t stamp[2], int64_t now);
/* Records that a write of key id's last-used time `at` was scheduled. */
void rs_keycache_touched(const char *key_id, int64_t id, int64_t at);

#endif
