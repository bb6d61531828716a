/* store.h: the one storage interface. Each backend (sqlite.c, postgres.c)
 * fills a struct rs_store_ops; nothing above src/store sees SQL.
 *
 * Connections: a caller acquires a connection for reading or for writing, uses
 * it on one thread, and releases it. Read connections may be used for
 * autocommit reads without begin(); writes always run between begin() and
 * commit()/rollback(). Acquiring RS_CONN_WRITE may wait (SQLite has one
 * writer), so it is never done on an event loop thread. For backends whose
 * reads_inline is true, a read connection is local to the calling thread and
 * cheap enough to use on an event loop.
 *
 * Errors: every method returns 0 or -code and fills err (which may be NULL)
 * with a user-facing message and log-only detail. Uniqueness violations return
 * -RS_ECONFLICT with a field error naming the field ("username", "email",
 * "employee_id", "key");
 * lookups that find nothing return -RS_ENOTFOUND without a message;
 * an unreachable database returns -RS_EUNAVAILABLE.
 *
 * Ownership: output structs are filled only on success and then owned by the
 * caller (release them with their *_release function). */
#ifndef RS_STORE_H
#define RS_STORE_H

#include <stdbool.h>

#include "../core/access.h"
#include "../core/apikey.h"
#include "../core/group.h"
#include "../core/audit.h"
#include "../core/credential.h"
#include "../core/custom_field.h"
#include "../core/error.h"
#include "../core/user.h"

struct rs_store;
struct rs_conn;

enum rs_conn_kind { RS_CONN_READ, RS_CONN_WRITE };

struct rs_store_config {
    const char *url;     /* "sqlite:PATH" or "postgres://..." */
    int pool_size;       /* PostgreSQL connections; ignored by SQLite */
    int busy_timeout_ms; /* SQLite busy timeout */
};

struct rs_store_stats {
    int conns_open;
    int conns_in_use;
    int64_t search_pending; /* users the search index has yet to take in (SQLite) */
    int64_t search_indexed; /* users this process folded into it so far */
};

struct rs_store_ops {
    const char *name; /* "sqlite", "postgres" */
    bool reads_inline;
    /* Optional (NULL when the backend has nothing to keep). An event loop
     * thread that reads inline calls read_keep(s, true) once: its reader's
     * snapshot may then outlive a release, to be reused by the next acquire
     * when nothing has been committed since (reads stay as fresh as with a
     * new transaction). The loop calls read_kept before each poll (which
     * may end the snapshot there and then) and must call read_drop soon
     * after it answers true (within a few milliseconds, and before blocking
     * idle): a kept snapshot holds back the WAL's restart. */
    void (*read_keep)(struct rs_store *s, bool on);
    bool (*read_kept)(struct rs_store *s);
    void (*read_drop)(struct rs_store *s);

    void (*close)(struct rs_store *s);
    /* Applies pending numbered migrations; reports how many in *ret_applied. */
    int (*migrate)(struct rs_store *s, int *ret_applied, struct rs_error *err);
    /* Current schema version (highest applied migration). */
    int (*schema_version)(struct rs_store *s, int *ret_version, struct rs_error *err);
    void (*stats)(struct rs_store *s, struct rs_store_stats *ret);

    /* NULL with err filled (-RS_EUNAVAILABLE) if no connection can be had. */
    struct rs_conn *(*acquire)(struct rs_store *s, enum rs_conn_kind kind, struct rs_error *err);
    void (*release)(struct rs_conn *c);
    /* Cheap round trip: is the database reachable? */
    int (*ping)(struct rs_conn *c, struct rs_error *err);

    int (*begin)(struct rs_conn *c, struct rs_error *err);
    int (*commit)(struct rs_conn *c, struct rs_error *err);
    void (*rollback)(struct rs_conn *c);

    /* Users. insert sets u->id and keeps the caller's created_at, updated_at,
     * version. update writes every field of u where id = u->id and
     * version = expected_version, returning -RS_EPRECONDITION if the version
     * moved and -RS_ENOTFOUND if there is no such user. */
    int (*user_insert)(struct rs_conn *c, struct rs_user *u, struct rs_error *err);
    int (*user_get)(struct rs_conn *c, int64_t id, struct rs_user *ret, struct rs_error *err);
    int (*user_get_by_username)(struct rs_conn *c, const char *username_key, struct rs_user *ret,
                                struct rs_error *err);
    int (*user_update)(struct rs_conn *c, const struct rs_user *u, int64_t expected_version,
                       struct rs_error *err);
    /* Inside a write transaction: reads a user and locks the row until the
     * transaction ends, so a read-modify-write cannot lose a concurrent one. */
    int (*user_get_for_update)(struct rs_conn *c, int64_t id, struct rs_user *ret,
                               struct rs_error *err);
    int (*user_list)(struct rs_conn *c, const struct rs_user_query *q, struct rs_user_page *ret,
                     struct rs_error *err);
    /* Whether any user exists (cheap at any size: no count). */
    int (*users_exist)(struct rs_conn *c, bool *ret, struct rs_error *err);
    /* The chain of managers above from_id, nearest first: at most max ids and
     * usernames (*ret_names[i] owned by the caller). Stops at a repeat. Inside
     * a write transaction it serialises with other manager changes until the
     * transaction ends, so two concurrent changes cannot together make a loop. */
    int (*user_manager_chain)(struct rs_conn *c, int64_t from_id, int max, int64_t *ret_ids,
                              char **ret_names, int *ret_n, struct rs_error *err);
    /* How many users have status (and type, unless type < 0), from counts the
     * store maintains. Inside a write transaction the counted rows are locked
     * until it ends, so concurrent activations cannot both pass a limit. */
    int (*user_count_status)(struct rs_conn *c, enum rs_user_status status, int type,
                             int64_t *ret, struct rs_error *err);
    /* Revokes every unrevoked key of a user (erase). */
    int (*apikey_revoke_user)(struct rs_conn *c, int64_t user_id, int64_t at,
                              struct rs_error *err);

    /* Settings documents (JSON text) by key. get: -RS_ENOTFOUND if never
     * written. put: writes version where the stored version is
     * expected_version (0: none stored yet), else -RS_EPRECONDITION. */
    int (*settings_get)(struct rs_conn *c, const char *key, char **ret_json,
                        int64_t *ret_version, struct rs_error *err);
    int (*settings_put)(struct rs_conn *c, const char *key, const char *json, int64_t version,
                        int64_t expected_version, int64_t at, struct rs_error *err);

    /* Access. The version changes in the same transaction as anything that
     * can change someone's access; caches compare it to drop stale entries. */
    int (*access_version_get)(struct rs_conn *c, int64_t *ret, struct rs_error *err);
    int (*access_version_bump)(struct rs_conn *c, struct rs_error *err);
    int (*resource_list)(struct rs_conn *c, struct rs_resource_def **ret_items,
                         size_t *ret_count, struct rs_error *err);
    /* -RS_ECONFLICT naming "key" when taken. */
    int (*resource_insert)(struct rs_conn *c, const struct rs_resource_def *r,
                           struct rs_error *err);
    /* Roles in id order. insert sets r->id (-RS_ECONFLICT naming "key" when
     * taken); update writes name, description, permissions, active,
     * updated_at, version where the version is expected_version. */
    int (*role_list)(struct rs_conn *c, struct rs_role **ret_items, size_t *ret_count,
                     struct rs_error *err);
    int (*role_insert)(struct rs_conn *c, struct rs_role *r, struct rs_error *err);
    int (*role_update)(struct rs_conn *c, const struct rs_role *r, int64_t expected_version,
                       struct rs_error *err);
    /* A user's secondary role keys (sorted); set replaces them. */
    int (*user_roles_get)(struct rs_conn *c, int64_t user_id, char ***ret_keys,
                          size_t *ret_count, struct rs_error *err);
    int (*user_roles_set)(struct rs_conn *c, int64_t user_id, char *const *keys, size_t n,
                          struct rs_error *err);
    /* Groups (with member_count) by name; insert sets g->id (-RS_ECONFLICT
     * naming "name" when the folded name is taken). */
    int (*group_list)(struct rs_conn *c, struct rs_group **ret_items, size_t *ret_count,
                      struct rs_error *err);
    int (*group_get)(struct rs_conn *c, int64_t id, struct rs_group *ret, struct rs_error *err);
    int (*group_insert)(struct rs_conn *c, struct rs_group *g, struct rs_error *err);
    int (*group_update)(struct rs_conn *c, const struct rs_group *g, int64_t expected_version,
                        struct rs_error *err);
    int (*group_delete)(struct rs_conn *c, int64_t id, struct rs_error *err);
    /* Adds members (existing ones are kept); -RS_EVALIDATION naming
     * "user_ids" if an id names no user. */
    int (*group_members_add)(struct rs_conn *c, int64_t group_id, const int64_t *user_ids,
                             size_t n, int64_t at, struct rs_error *err);
    /* -RS_ENOTFOUND when the user is not a member. */
    int (*group_member_remove)(struct rs_conn *c, int64_t group_id, int64_t user_id,
                               struct rs_error *err);
    int (*groups_of_user)(struct rs_conn *c, int64_t user_id, struct rs_group **ret_items,
                          size_t *ret_count, struct rs_error *err);
    /* Whether any active user who is not of type guest (capped at read)
     * holds role_key as primary or secondary role or through a group (the
     * last-administrator rule). */
    int (*role_held)(struct rs_conn *c, const char *role_key, bool *ret, struct rs_error *err);

    /* Custom field definitions, in id order. insert sets f->id; a taken key is
     * -RS_ECONFLICT naming "key". update writes f where version matches. */
    int (*cf_list)(struct rs_conn *c, struct rs_custom_field **ret_items, size_t *ret_count,
                   struct rs_error *err);
    int (*cf_insert)(struct rs_conn *c, struct rs_custom_field *f, struct rs_error *err);
    int (*cf_update)(struct rs_conn *c, const struct rs_custom_field *f, int64_t expected_version,
                     struct rs_error *err);

    /* Audit: sets ev->id. */
    int (*audit_insert)(struct rs_conn *c, struct rs_audit_event *ev, struct rs_error *err);
    /* Events about one target, newest first (rows as JSON text objects, for
     * tests and history views): fills *ret_json with a JSON array string. */
    int (*audit_list_target)(struct rs_conn *c, const char *target_type, int64_t target_id,
                             int limit, char **ret_json, struct rs_error *err);

    /* API keys. find fills ret (with username) by public key id. */
    int (*apikey_insert)(struct rs_conn *c, struct rs_apikey *k, struct rs_error *err);
    int (*apikey_find)(struct rs_conn *c, const char *key_id, struct rs_apikey *ret,
                       struct rs_error *err);
    /* Lists keys, of one user when user_id > 0, newest first. */
    int (*apikey_list)(struct rs_conn *c, int64_t user_id, struct rs_apikey **ret_items,
                       size_t *ret_count, struct rs_error *err);
    int (*apikey_get)(struct rs_conn *c, int64_t id, struct rs_apikey *ret, struct rs_error *err);
    int (*apikey_revoke)(struct rs_conn *c, int64_t id, int64_t at, struct rs_error *err);
    int (*apikey_touch)(struct rs_conn *c, int64_t id, int64_t at, struct rs_error *err);

    /* --- Sign-in (docs/design/auth-contract.md). Writes run inside a
     * transaction unless marked "autocommit allowed". --- */

    /* Users by folded email (rs_fold_key), like user_get_by_username. */
    int (*user_get_by_email)(struct rs_conn *c, const char *email_key, struct rs_user *ret,
                             struct rs_error *err);
    /* Sets last_login_at without touching version or updated_at. */
    int (*user_set_last_login)(struct rs_conn *c, int64_t user_id, int64_t at,
                               struct rs_error *err);

    /* -RS_ENOTFOUND when the user has no row (callers then use rs_credential_init). */
    int (*cred_get)(struct rs_conn *c, int64_t user_id, struct rs_credential *ret,
                    struct rs_error *err);
    /* In a write tx: like cred_get, and locks the row until the tx ends. */
    int (*cred_get_for_update)(struct rs_conn *c, int64_t user_id, struct rs_credential *ret,
                               struct rs_error *err);
    /* Inserts or replaces every field. */
    int (*cred_put)(struct rs_conn *c, const struct rs_credential *cr, struct rs_error *err);
    /* Users due an expiry notice: status active, a password set,
     * password_changed_at <= changed_before, expiry_notice_at <
     * password_changed_at; at most limit ids, ascending. */
    int (*cred_expiring)(struct rs_conn *c, int64_t changed_before, int limit, int64_t **ret_ids,
                         size_t *ret_n, struct rs_error *err);
    /* Users whose lockout ran out: status locked, 0 < locked_until <= now. */
    int (*cred_lock_expired)(struct rs_conn *c, int64_t now, int limit, int64_t **ret_ids,
                             size_t *ret_n, struct rs_error *err);
    /* In a write tx: privilege_epoch + 1 for each listed user, or for every
     * member of a group (call before the group or membership goes). Users
     * without a credential row are skipped: they have no session. */
    int (*cred_privilege_bump)(struct rs_conn *c, const int64_t *user_ids, size_t n,
                               struct rs_error *err);
    int (*cred_privilege_bump_group)(struct rs_conn *c, int64_t group_id, struct rs_error *err);
    /* In a write tx, one statement each: privilege_epoch + 1 for every
     * holder of role role_key (primary, secondary, or through a group's
     * roles; whatever their status), or for every user (a sign-in policy
     * that may concern anyone changed). */
    int (*cred_privilege_bump_role)(struct rs_conn *c, const char *role_key, struct rs_error *err);
    int (*cred_privilege_bump_all)(struct rs_conn *c, struct rs_error *err);

    /* Adds hash to a user's history and keeps only the newest `keep`. */
    int (*pwhist_add)(struct rs_conn *c, int64_t user_id, const char *hash, int64_t at, int keep,
                      struct rs_error *err);
    /* Newest first, at most limit; each string and the array owned by the caller. */
    int (*pwhist_list)(struct rs_conn *c, int64_t user_id, int limit, char ***ret_hashes,
                       size_t *ret_n, struct rs_error *err);

    /* Replaces a user's recovery codes (n 0 removes them). */
    int (*recovery_set)(struct rs_conn *c, int64_t user_id, char *const *code_hashes, size_t n,
                        struct rs_error *err);
    /* Marks the user's unused code with this hash used; *ret_used false when none matched. */
    int (*recovery_use)(struct rs_conn *c, int64_t user_id, const char *code_hash, int64_t at,
                        bool *ret_used, struct rs_error *err);
    int (*recovery_count)(struct rs_conn *c, int64_t user_id, int *ret, struct rs_error *err);

    /* Sessions. insert sets s->id; find by token hash (-RS_ENOTFOUND; no
     * expiry check); touch sets last_seen_at (autocommit allowed). find, get
     * and list fill user_epoch with the user's privilege epoch now. */
    int (*session_insert)(struct rs_conn *c, struct rs_session *s, struct rs_error *err);
    int (*session_find)(struct rs_conn *c, const char *token_hash, struct rs_session *ret,
                        struct rs_error *err);
    int (*session_get)(struct rs_conn *c, int64_t id, struct rs_session *ret,
                       struct rs_error *err);
    int (*session_touch)(struct rs_conn *c, int64_t id, int64_t at, struct rs_error *err);
    int (*session_set_flags)(struct rs_conn *c, int64_t id, unsigned flags, struct rs_error *err);
    /* -RS_ENOTFOUND when absent. */
    int (*session_delete)(struct rs_conn *c, int64_t id, struct rs_error *err);
    /* Deletes every session of a user except except_id (0: none). */
    int (*session_delete_user)(struct rs_conn *c, int64_t user_id, int64_t except_id, int *ret_n,
                               struct rs_error *err);
    /* Newest (created_at, then id) first. */
    int (*session_list_user)(struct rs_conn *c, int64_t user_id, struct rs_session **ret,
                             size_t *ret_n, struct rs_error *err);
    /* Deletes sessions with expires_at <= now or last_seen_at <= idle_before,
     * and successor mappings whose grace ended (until <= now). */
    int (*session_purge)(struct rs_conn *c, int64_t now, int64_t idle_before, int *ret_n,
                         struct rs_error *err);
    /* In a write tx, before session old_id is deleted: a request presenting
     * the replaced session's token (token_hash) is mapped to new_id until
     * `until`; mappings to old_id move to new_id (keeping their until). A
     * mapping goes with the session it maps to. */
    int (*session_successor_put)(struct rs_conn *c, const char *token_hash, int64_t old_id,
                                 int64_t new_id, int64_t until, struct rs_error *err);
    /* The session replacing the one with token_hash while until > now;
     * -RS_ENOTFOUND otherwise. */
    int (*session_successor_find)(struct rs_conn *c, const char *token_hash, int64_t now,
                                  int64_t *ret_id, struct rs_error *err);

    /* Single-use tokens. insert sets t->id; use sets used_at where it is 0
     * (-RS_ENOTFOUND when already used); void_user marks every unused token of
     * the user (of kind, or any when NULL) used. */
    int (*token_insert)(struct rs_conn *c, struct rs_auth_token *t, struct rs_error *err);
    int (*token_find)(struct rs_conn *c, const char *token_hash, struct rs_auth_token *ret,
                      struct rs_error *err);
    int (*token_use)(struct rs_conn *c, int64_t id, int64_t at, struct rs_error *err);
    int (*token_void_user)(struct rs_conn *c, int64_t user_id, const char *kind, int64_t at,
                           struct rs_error *err);

    /* Fixed-window counters: a window older than window_ms (or none) restarts
     * at now with count 0, then count += add; returns the count and window
     * start. add 0 only reads. */
    int (*rate_hit)(struct rs_conn *c, const char *key, int64_t now, int64_t window_ms, int add,
                    int64_t *ret_count, int64_t *ret_window_start, struct rs_error *err);
    int (*rate_reset)(struct rs_conn *c, const char *key, struct rs_error *err);
    /* Deletes counters whose window started before `before` (housekeeping). */
    int (*rate_purge)(struct rs_conn *c, int64_t before, struct rs_error *err);

    /* The outbox. insert sets m->id (status pending). due: pending with
     * next_attempt_at <= now, oldest first. mark_*: autocommit allowed. */
    int (*mail_insert)(struct rs_conn *c, struct rs_mail *m, struct rs_error *err);
    int (*mail_due)(struct rs_conn *c, int64_t now, int max, struct rs_mail **ret, size_t *ret_n,
                    struct rs_error *err);
    int (*mail_mark_sent)(struct rs_conn *c, int64_t id, int64_t at, struct rs_error *err);
    int (*mail_mark_retry)(struct rs_conn *c, int64_t id, int attempts, int64_t next_attempt_at,
                           const char *last_error, bool give_up, struct rs_error *err);
    /* Newest first; status NULL: any; user_id 0: any. */
    int (*mail_list)(struct rs_conn *c, const char *status, int64_t user_id, int limit,
                     struct rs_mail **ret, size_t *ret_n, struct rs_error *err);

    /* The work queue. insert sets w->id. due: rows of kind, oldest first.
     * take deletes row id inside the caller's transaction, so the work it
     * commits with is done once: -RS_ENOTFOUND when already taken. */
    int (*work_insert)(struct rs_conn *c, struct rs_work *w, struct rs_error *err);
    int (*work_due)(struct rs_conn *c, const char *kind, int max, struct rs_work **ret,
                    size_t *ret_n, struct rs_error *err);
    int (*work_take)(struct rs_conn *c, int64_t id, struct rs_error *err);

    /* Leases for background jobs (autocommit, never inside another tx):
     * takes name for owner until `until` when free, expired (until <= now) or
     * already owner's; *ret_got whether owner holds it. Atomic across processes. */
    int (*lease_acquire)(struct rs_conn *c, const char *name, const char *owner, int64_t now,
                         int64_t until, bool *ret_got, struct rs_error *err);
    int (*lease_release)(struct rs_conn *c, const char *name, const char *owner,
                         struct rs_error *err);
};

struct rs_store {
    const struct rs_store_ops *ops;
};

/* Opens the backend the URL names. Returns 0 and *ret, or -code with err. */
int rs_store_open(const struct rs_store_config *cfg, struct rs_store **ret,
                  struct rs_error *err) RS_WUR;

/* Backend constructors (one file each). */
int rs_sqlite_open(const struct rs_store_config *cfg, const char *path, struct rs_store **ret,
                   struct rs_error *err) RS_WUR;
int rs_postgres_open(const struct rs_store_config *cfg, struct rs_store **ret,
                     struct rs_error *err) RS_WUR;

/* Embedded migrations for a dialect ("sqlite", "postgres"), in order.
 * Generated at build time from migrations/DIALECT/NNNN_*.sql. */
struct rs_migration {
    int version;
    const char *name;
    const char *sql;
};
const struct rs_migration *rs_migrations(const char *dialect, size_t *ret_count);

#endif
