/* sqlite.c: the embedded SQLite backend (see store.h).
 *
 * One file in WAL mode, foreign keys on, synchronous=FULL (an acknowledged
 * commit survives power loss). Each thread that reads gets its own read
 * connection (thread-local), so event loops read side by side without locks;
 * all writes share one writer connection behind a mutex, which is SQLite's
 * own rule (one writer at a time) made explicit. Statements are prepared once
 * per connection and reused.
 *
 * Checkpoints run on a thread of their own: the writer's WAL hook wakes it
 * when the log passes CHECKPOINT_PAGES, and it copies the log back into the
 * database with a PASSIVE checkpoint, which waits for no one, then holds the
 * writer just long enough to copy the remainder and restart the log. A commit
 * never pays for a checkpoint's bulk copying and fsync, and the log stays
 * bounded. */
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../util/log.h"
#include "sqlite_vfs.h"
#include "store.h"

enum stmt_id {
    ST_USER_INSERT,
    ST_USER_GET,
    ST_USER_GET_BY_USERNAME,
    ST_USER_UPDATE,
    ST_USER_EXISTS,
    ST_USER_COUNT,
    ST_AUDIT_INSERT,
    ST_AUDIT_LIST,
    ST_KEY_INSERT,
    ST_KEY_FIND,
    ST_KEY_GET,
    ST_KEY_LIST_ALL,
    ST_KEY_LIST_USER,
    ST_KEY_REVOKE,
    ST_KEY_TOUCH,
    ST_MANAGER_OF,
    ST_COUNT_STATUS,
    ST_COUNT_STATUS_TYPE,
    ST_KEY_REVOKE_USER,
    ST_SETTINGS_GET,
    ST_SETTINGS_INSERT,
    ST_SETTINGS_UPDATE,
    ST_CF_LIST,
    ST_CF_INSERT,
    ST_CF_UPDATE,
    ST_AV_GET,
    ST_AV_BUMP,
    ST_RES_LIST,
    ST_RES_INSERT,
    ST_ROLE_LIST,
    ST_ROLE_INSERT,
    ST_ROLE_UPDATE,
    ST_UROLES_GET,
    ST_UROLES_DELETE,
    ST_UROLES_INSERT,
    ST_GROUP_LIST,
    ST_GROUP_GET,
    ST_GROUP_INSERT,
    ST_GROUP_UPDATE,
    ST_GROUP_DELETE,
    ST_GROUP_MEMBERS_DELETE,
    ST_MEMBER_ADD,
    ST_MEMBER_REMOVE,
    ST_GROUPS_OF_USER,
    ST_ROLE_HELD,
    ST_USER_GET_BY_EMAIL,
    ST_USER_SET_LAST_LOGIN,
    ST_CRED_GET,
    ST_CRED_PUT,
    ST_CRED_EXPIRING,
    ST_CRED_LOCK_EXPIRED,
    ST_PWHIST_INSERT,
    ST_PWHIST_TRIM,
    ST_PWHIST_LIST,
    ST_RECOVERY_DELETE,
    ST_RECOVERY_INSERT,
    ST_RECOVERY_USE,
    ST_RECOVERY_COUNT,
    ST_SESSION_INSERT,
    ST_SESSION_FIND,
    ST_SESSION_GET,
    ST_SESSION_TOUCH,
    ST_SESSION_FLAGS,
    ST_SESSION_DELETE,
    ST_SESSION_DELETE_USER,
    ST_SESSION_LIST_USER,
    ST_SESSION_PURGE,
    ST_SESSION_SUCC_PURGE,
    ST_SESSION_SUCC_MOVE,
    ST_SESSION_SUCC_INSERT,
    ST_SESSION_SUCC_FIND,
    ST_CRED_PRIV_BUMP,
    ST_CRED_PRIV_BUMP_GROUP,
    ST_CRED_PRIV_BUMP_ROLE,
    ST_CRED_PRIV_BUMP_ALL,
    ST_TOKEN_INSERT,
    ST_TOKEN_FIND,
    ST_TOKEN_USE,
    ST_TOKEN_VOID_USER,
    ST_TOKEN_VOID_USER_KIND,
    ST_RATE_HIT,
    ST_RATE_GET,
    ST_RATE_RESET,
    ST_RATE_PURGE,
    ST_MAIL_INSERT,
    ST_MAIL_DUE,
    ST_MAIL_SENT,
    ST_MAIL_RETRY,
    ST_MAIL_LIST_ALL,
    ST_MAIL_LIST_STATUS,
    ST_MAIL_LIST_USER,
    ST_MAIL_LIST_USER_STATUS,
    ST_LEASE_ACQUIRE,
    ST_LEASE_RELEASE,
    ST_WORK_INSERT,
    ST_WORK_DUE,
    ST_WORK_TAKE,
    ST_IDX_ANY,
    ST_IDX_BATCH,
    ST_IDX_DELETE,
    ST_IDX_ADD,
    ST_IDX_DONE,
    ST_IDX_COUNT,
    ST_BEGIN,
    ST_BEGIN_READ,
    ST_COMMIT,
    ST_ROLLBACK,
    ST_PING,
    ST_COUNT
};

#define USER_COLS "id, " USER_COLS_AFTER_ID
#define USER_COLS_AFTER_ID                                                                         \
    "username, email, first_name, last_name, type, status, created_at, updated_at, version, "     \
    "phone, employee_id, department, position, location, role, manager_id, status_reason, "       \
    "status_note, status_changed_at, custom_json, last_login_at, erased_at"
#define USER_WRITE_COLS                                                                            \
    "username, username_key, email, email_key, first_name, last_name, search_key, type, status, " \
    "phone, employee_id, employee_id_key, department, position, location, role, manager_id, "     \
    "status_reason, status_note, status_changed_at, custom_json, last_login_at, erased_at, "      \
    "updated_at, version"
#define GROUP_COLS                                                                                 \
    "g.id, g.name, g.description, g.email, g.roles, g.created_at, g.updated_at, g.version, "     \
    "(SELECT count(*) FROM group_members m WHERE m.group_id = g.id)"
#define CF_COLS                                                                                    \
    "id, key, label, type, required, default_json, options_json, pattern, min, max, active, "    \
    "created_at, updated_at, version"
#define KEY_COLS                                                                                   \
    "k.id, k.key_id, k.secret_hash, k.user_id, u.username, k.name, k.created_at, "                \
    "k.expires_at, k.revoked_at, k.last_used_at, u.type, u.status"

#define CRED_COLS                                                                                  \
    "user_id, password_hash, password_changed_at, must_change, failed_count, failed_first_at, "   \
    "locked_until, totp_secret, totp_pending, totp_last_step, ip_ranges, expiry_notice_at"
#define SESSION_COLS                                                                               \
    "s.id, s.token_hash, s.user_id, s.created_at, s.last_seen_at, s.expires_at, s.ip, "            \
    "s.user_agent, s.flags, s.csrf_seed, s.privilege_epoch, coalesce(c.privilege_epoch, 0)"
/* The user's credential beside each session: its privilege epoch now. */
#define SESSION_FROM "sessions s LEFT JOIN credentials c ON c.user_id = s.user_id"
#define TOKEN_COLS                                                                                 \
    "id, token_hash, kind, user_id, created_at, expires_at, used_at, pw_changed_at"
#define MAIL_COLS                                                                                  \
    "id, created_at, kind, user_id, to_addr, subject, message, status, attempts, "               \
    "next_attempt_at, sent_at, last_error"

static const char *const stmt_sql[ST_COUNT] = {
    [ST_USER_INSERT] = "INSERT INTO users (" USER_WRITE_COLS ", created_at) "
                       "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
    [ST_USER_GET] = "SELECT " USER_COLS " FROM users WHERE id = ?",
    [ST_USER_GET_BY_USERNAME] = "SELECT " USER_COLS " FROM users WHERE username_key = ?",
    [ST_USER_UPDATE] = "UPDATE users SET (" USER_WRITE_COLS ") = "
                       "(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) "
                       "WHERE id = ? AND version = ?",
    [ST_USER_EXISTS] = "SELECT 1 FROM users WHERE id = ?",
    [ST_USER_COUNT] = "SELECT EXISTS (SELECT 1 FROM users)",
    [ST_AUDIT_INSERT] = "INSERT INTO audit_events (at, actor_id, actor_name, action, target_type, "
                        "target_id, request_id, before_json, after_json, reason) "
                        "VALUES (?,?,?,?,?,?,?,?,?,?)",
    [ST_AUDIT_LIST] = "SELECT id, at, actor_id, actor_name, action, target_type, target_id, "
                      "request_id, before_json, after_json, reason FROM audit_events "
                      "WHERE target_type = ? AND target_id = ? ORDER BY id DESC LIMIT ?",
    [ST_KEY_INSERT] = "INSERT INTO api_keys (key_id, secret_hash, user_id, name, created_at, "
                      "expires_at, revoked_at, last_used_at) VALUES (?,?,?,?,?,?,NULL,NULL)",
    [ST_KEY_FIND] = "SELECT " KEY_COLS " FROM api_keys k JOIN users u ON u.id = k.user_id "
                    "WHERE k.key_id = ?",
    [ST_KEY_GET] = "SELECT " KEY_COLS " FROM api_keys k JOIN users u ON u.id = k.user_id "
                   "WHERE k.id = ?",
    [ST_KEY_LIST_ALL] = "SELECT " KEY_COLS " FROM api_keys k JOIN users u ON u.id = k.user_id "
                        "ORDER BY k.id DESC",
    [ST_KEY_LIST_USER] = "SELECT " KEY_COLS " FROM api_keys k JOIN users u ON u.id = k.user_id "
                         "WHERE k.user_id = ? ORDER BY k.id DESC",
    [ST_KEY_REVOKE] = "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
    [ST_KEY_TOUCH] = "UPDATE api_keys SET last_used_at = ? WHERE id = ?",
    [ST_MANAGER_OF] = "SELECT m.id, m.username FROM users u JOIN users m ON m.id = u.manager_id "
                      "WHERE u.id = ?",
    [ST_COUNT_STATUS] = "SELECT coalesce(sum(n), 0) FROM user_counts WHERE status = ?",
    [ST_COUNT_STATUS_TYPE] = "SELECT coalesce(sum(n), 0) FROM user_counts "
                             "WHERE status = ? AND type = ?",
    [ST_KEY_REVOKE_USER] = "UPDATE api_keys SET revoked_at = ? WHERE user_id = ? "
                           "AND revoked_at IS NULL",
    [ST_SETTINGS_GET] = "SELECT value, version FROM settings WHERE key = ?",
    [ST_SETTINGS_INSERT] = "INSERT INTO settings (key, value, version, updated_at) "
                           "VALUES (?,?,?,?) ON CONFLICT (key) DO NOTHING",
    [ST_SETTINGS_UPDATE] = "UPDATE settings SET value = ?, version = ?, updated_at = ? "
                           "WHERE key = ? AND version = ?",
    [ST_CF_LIST] = "SELECT " CF_COLS " FROM custom_fields ORDER BY id",
    [ST_CF_INSERT] = "INSERT INTO custom_fields (key, label, type, required, default_json, "
                     "options_json, pattern, min, max, active, created_at, updated_at, version) "
                     "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
    [ST_CF_UPDATE] = "UPDATE custom_fields SET label = ?, required = ?, default_json = ?, "
                     "options_json = ?, pattern = ?, min = ?, max = ?, active = ?, "
                     "updated_at = ?, version = ? WHERE id = ? AND version = ?",
    [ST_AV_GET] = "SELECT version FROM access_version WHERE id = 1",
    [ST_AV_BUMP] = "UPDATE access_version SET version = version + 1 WHERE id = 1",
    [ST_RES_LIST] = "SELECT key, label, module, built_in, created_at FROM resources ORDER BY key",
    [ST_RES_INSERT] = "INSERT INTO resources (key, label, module, built_in, created_at) "
                      "VALUES (?,?,?,0,?)",
    [ST_ROLE_LIST] = "SELECT id, key, name, description, permissions, built_in, active, "
                     "created_at, updated_at, version FROM roles ORDER BY id",
    [ST_ROLE_INSERT] = "INSERT INTO roles (key, name, description, permissions, built_in, active, "
                       "created_at, updated_at, version) VALUES (?,?,?,?,0,?,?,?,?)",
    [ST_ROLE_UPDATE] = "UPDATE roles SET name = ?, description = ?, permissions = ?, active = ?, "
                       "updated_at = ?, version = ? WHERE id = ? AND version = ?",
    [ST_UROLES_GET] = "SELECT role_key FROM user_roles WHERE user_id = ? ORDER BY role_key",
    [ST_UROLES_DELETE] = "DELETE FROM user_roles WHERE user_id = ?",
    [ST_UROLES_INSERT] = "INSERT OR IGNORE INTO user_roles (user_id, role_key) VALUES (?,?)",
    [ST_GROUP_LIST] = "SELECT " GROUP_COLS " FROM groups g ORDER BY g.name_key",
    [ST_GROUP_GET] = "SELECT " GROUP_COLS " FROM groups g WHERE g.id = ?",
    [ST_GROUP_INSERT] = "INSERT INTO groups (name, name_key, description, email, roles, "
                        "created_at, updated_at, version) VALUES (?,?,?,?,?,?,?,?)",
    [ST_GROUP_UPDATE] = "UPDATE groups SET name = ?, name_key = ?, description = ?, email = ?, "
                        "roles = ?, updated_at = ?, version = ? WHERE id = ? AND version = ?",
    [ST_GROUP_DELETE] = "DELETE FROM groups WHERE id = ?",
    [ST_GROUP_MEMBERS_DELETE] = "DELETE FROM group_members WHERE group_id = ?",
    [ST_MEMBER_ADD] = "INSERT OR IGNORE INTO group_members (group_id, user_id, added_at) "
                      "VALUES (?,?,?)",
    [ST_MEMBER_REMOVE] = "DELETE FROM group_members WHERE group_id = ? AND user_id = ?",
    [ST_GROUPS_OF_USER] = "SELECT " GROUP_COLS " FROM groups g JOIN group_members gm "
                          "ON gm.group_id = g.id WHERE gm.user_id = ? ORDER BY g.name_key",
    [ST_ROLE_HELD] =
        "SELECT EXISTS (SELECT 1 FROM users u WHERE u.status = 'active' AND u.type <> 'guest' "
        "AND (u.role = ?1 "
        "OR u.id IN (SELECT user_id FROM user_roles WHERE role_key = ?1) "
        "OR u.id IN (SELECT m.user_id FROM group_members m JOIN groups g ON g.id = m.group_id "
        "WHERE EXISTS (SELECT 1 FROM json_each(g.roles) WHERE json_each.value = ?1))))",
    /* --- sign-in (0004_auth) --- */
    [ST_USER_GET_BY_EMAIL] = "SELECT " USER_COLS " FROM users WHERE email_key = ?",
    /* Neither the user_counts nor the FTS trigger fires for this column. */
    [ST_USER_SET_LAST_LOGIN] = "UPDATE users SET last_login_at = ? WHERE id = ?",
    [ST_CRED_GET] = "SELECT " CRED_COLS ", privilege_epoch FROM credentials WHERE user_id = ?",
    [ST_CRED_PUT] = "INSERT INTO credentials (" CRED_COLS ") VALUES (?,?,?,?,?,?,?,?,?,?,?,?) "
                    "ON CONFLICT (user_id) DO UPDATE SET password_hash = excluded.password_hash, "
                    "password_changed_at = excluded.password_changed_at, "
                    "must_change = excluded.must_change, failed_count = excluded.failed_count, "
                    "failed_first_at = excluded.failed_first_at, "
                    "locked_until = excluded.locked_until, totp_secret = excluded.totp_secret, "
                    "totp_pending = excluded.totp_pending, "
                    "totp_last_step = excluded.totp_last_step, ip_ranges = excluded.ip_ranges, "
                    "expiry_notice_at = excluded.expiry_notice_at",
    /* The first two terms are the partial index's condition, written out so
     * the planner uses it; CROSS JOIN keeps credentials the outer loop. */
    [ST_CRED_EXPIRING] = "SELECT c.user_id FROM credentials c CROSS JOIN users u "
                         "ON u.id = c.user_id WHERE c.password_hash <> '' "
                         "AND c.expiry_notice_at < c.password_changed_at "
                         "AND c.password_changed_at <= ? AND u.status = 'active' "
                         "ORDER BY c.user_id LIMIT ?",
    [ST_CRED_LOCK_EXPIRED] = "SELECT c.user_id FROM credentials c CROSS JOIN users u "
                             "ON u.id = c.user_id WHERE c.locked_until > 0 "
                             "AND c.locked_until <= ? AND u.status = 'locked' "
                             "ORDER BY c.user_id LIMIT ?",
    [ST_PWHIST_INSERT] = "INSERT INTO password_history (user_id, hash, created_at) VALUES (?,?,?)",
    [ST_PWHIST_TRIM] = "DELETE FROM password_history WHERE user_id = ?1 AND id NOT IN "
                       "(SELECT id FROM password_history WHERE user_id = ?1 "
                       "ORDER BY id DESC LIMIT ?2)",
    [ST_PWHIST_LIST] = "SELECT hash FROM password_history WHERE user_id = ? "
                       "ORDER BY id DESC LIMIT ?",
    [ST_RECOVERY_DELETE] = "DELETE FROM recovery_codes WHERE user_id = ?",
    [ST_RECOVERY_INSERT] = "INSERT INTO recovery_codes (user_id, code_hash, used_at) "
                           "VALUES (?,?,0)",
    [ST_RECOVERY_USE] = "UPDATE recovery_codes SET used_at = ? WHERE user_id = ? "
                        "AND code_hash = ? AND used_at = 0",
    [ST_RECOVERY_COUNT] = "SELECT count(*) FROM recovery_codes WHERE user_id = ? AND used_at = 0",
    [ST_SESSION_INSERT] = "INSERT INTO sessions (token_hash, user_id, created_at, last_seen_at, "
                          "expires_at, ip, user_agent, flags, csrf_seed, privilege_epoch) "
                          "VALUES (?,?,?,?,?,?,?,?,?,?)",
    [ST_SESSION_FIND] = "SELECT " SESSION_COLS " FROM " SESSION_FROM " WHERE s.token_hash = ?",
    [ST_SESSION_GET] = "SELECT " SESSION_COLS " FROM " SESSION_FROM " WHERE s.id = ?",
    [ST_SESSION_TOUCH] = "UPDATE sessions SET last_seen_at = ? WHERE id = ?",
    [ST_SESSION_FLAGS] = "UPDATE sessions SET flags = ? WHERE id = ?",
    [ST_SESSION_DELETE] = "DELETE FROM sessions WHERE id = ?",
    [ST_SESSION_DELETE_USER] = "DELETE FROM sessions WHERE user_id = ? AND id <> ?",
    [ST_SESSION_LIST_USER] = "SELECT " SESSION_COLS " FROM " SESSION_FROM " WHERE s.user_id = ? "
                             "ORDER BY s.created_at DESC, s.id DESC",
    [ST_SESSION_PURGE] = "DELETE FROM sessions WHERE expires_at <= ? OR last_seen_at <= ?",
    [ST_SESSION_SUCC_PURGE] = "DELETE FROM session_successors WHERE until <= ?",
    [ST_SESSION_SUCC_MOVE] = "UPDATE session_successors SET session_id = ? WHERE session_id = ?",
    [ST_SESSION_SUCC_INSERT] = "INSERT INTO session_successors (token_hash, session_id, until) "
                               "VALUES (?,?,?) ON CONFLICT (token_hash) DO UPDATE SET "
                               "session_id = excluded.session_id, until = excluded.until",
    [ST_SESSION_SUCC_FIND] = "SELECT session_id FROM session_successors "
                             "WHERE token_hash = ? AND until > ?",
    [ST_CRED_PRIV_BUMP] = "UPDATE credentials SET privilege_epoch = privilege_epoch + 1 "
                          "WHERE user_id = ?",
    [ST_CRED_PRIV_BUMP_GROUP] = "UPDATE credentials SET privilege_epoch = privilege_epoch + 1 "
                                "WHERE user_id IN (SELECT user_id FROM group_members "
                                "WHERE group_id = ?)",
    /* The holders as ST_ROLE_HELD finds them, whatever their status. */
    [ST_CRED_PRIV_BUMP_ROLE] =
        "UPDATE credentials SET privilege_epoch = privilege_epoch + 1 WHERE user_id IN ("
        "SELECT id FROM users WHERE role = ?1 "
        "UNION SELECT user_id FROM user_roles WHERE role_key = ?1 "
        "UNION SELECT m.user_id FROM group_members m JOIN groups g ON g.id = m.group_id "
        "WHERE EXISTS (SELECT 1 FROM json_each(g.roles) WHERE json_each.value = ?1))",
    [ST_CRED_PRIV_BUMP_ALL] = "UPDATE credentials SET privilege_epoch = privilege_epoch + 1",
    [ST_TOKEN_INSERT] = "INSERT INTO auth_tokens (token_hash, kind, user_id, created_at, "
                        "expires_at, used_at, pw_changed_at) VALUES (?,?,?,?,?,?,?)",
    [ST_TOKEN_FIND] = "SELECT " TOKEN_COLS " FROM auth_tokens WHERE token_hash = ?",
    [ST_TOKEN_USE] = "UPDATE auth_tokens SET used_at = ? WHERE id = ? AND used_at = 0",
    [ST_TOKEN_VOID_USER] = "UPDATE auth_tokens SET used_at = ? WHERE user_id = ? AND used_at = 0",
    [ST_TOKEN_VOID_USER_KIND] = "UPDATE auth_tokens SET used_at = ? WHERE user_id = ? "
                                "AND used_at = 0 AND kind = ?",
    /* One statement, so concurrent hits from several processes each count:
     * the SET expressions all see the row as it was before this hit. */
    [ST_RATE_HIT] = "INSERT INTO rate_limits (key, window_start, count) VALUES (?1, ?2, ?4) "
                    "ON CONFLICT (key) DO UPDATE SET "
                    "window_start = CASE WHEN rate_limits.window_start < ?2 - ?3 THEN ?2 "
                    "ELSE rate_limits.window_start END, "
                    "count = CASE WHEN rate_limits.window_start < ?2 - ?3 THEN ?4 "
                    "ELSE rate_limits.count + ?4 END "
                    "RETURNING count, window_start",
    [ST_RATE_GET] = "SELECT count, window_start FROM rate_limits WHERE key = ?",
    [ST_RATE_RESET] = "DELETE FROM rate_limits WHERE key = ?",
    [ST_RATE_PURGE] = "DELETE FROM rate_limits WHERE window_start < ?",
    [ST_MAIL_INSERT] = "INSERT INTO outbox (created_at, kind, user_id, to_addr, subject, message, "
                       "status, attempts, next_attempt_at, sent_at, last_error) "
                       "VALUES (?,?,?,?,?,?,'pending',0,?,0,'')",
    [ST_MAIL_DUE] = "SELECT " MAIL_COLS " FROM outbox WHERE status = 'pending' "
                    "AND next_attempt_at <= ? ORDER BY id LIMIT ?",
    /* The message goes once sent or given up: it may carry live links. */
    [ST_MAIL_SENT] = "UPDATE outbox SET status = 'sent', sent_at = ?, attempts = attempts + 1, "
                     "message = '' WHERE id = ?",
    [ST_MAIL_RETRY] = "UPDATE outbox SET attempts = ?1, next_attempt_at = ?2, last_error = ?3, "
                      "status = CASE WHEN ?4 THEN 'failed' ELSE status END, "
                      "message = CASE WHEN ?4 THEN '' ELSE message END WHERE id = ?5",
    [ST_MAIL_LIST_ALL] = "SELECT " MAIL_COLS " FROM outbox ORDER BY id DESC LIMIT ?",
    [ST_MAIL_LIST_STATUS] = "SELECT " MAIL_COLS " FROM outbox WHERE status = ? "
                            "ORDER BY id DESC LIMIT ?",
    [ST_MAIL_LIST_USER] = "SELECT " MAIL_COLS " FROM outbox WHERE user_id = ? "
                          "ORDER BY id DESC LIMIT ?",
    [ST_MAIL_LIST_USER_STATUS] = "SELECT " MAIL_COLS " FROM outbox WHERE user_id = ? "
                                 "AND status = ? ORDER BY id DESC LIMIT ?",
    /* Taken when free, expired or already the caller's; otherwise the WHERE
     * leaves the row alone and changes() is 0. */
    [ST_LEASE_ACQUIRE] = "INSERT INTO leases (name, owner, until) VALUES (?1, ?2, ?4) "
                         "ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, "
                         "until = excluded.until "
                         "WHERE leases.until <= ?3 OR leases.owner = excluded.owner",
    [ST_LEASE_RELEASE] = "DELETE FROM leases WHERE name = ? AND owner = ?",
    [ST_WORK_INSERT] = "INSERT INTO work_queue (kind, payload, created_at) VALUES (?,?,?)",
    [ST_WORK_DUE] = "SELECT id, kind, payload, created_at FROM work_queue WHERE kind = ? "
                    "ORDER BY id LIMIT ?",
    [ST_WORK_TAKE] = "DELETE FROM work_queue WHERE id = ?",
    /* The search indexer (see "the search indexer" below). */
    [ST_IDX_ANY] = "SELECT EXISTS (SELECT 1 FROM users_fts_pending)",
    [ST_IDX_BATCH] = "SELECT p.user_id, p.indexed_key, u.search_key FROM users_fts_pending p "
                     "LEFT JOIN users u ON u.id = p.user_id ORDER BY p.user_id LIMIT ?",
    [ST_IDX_DELETE] = "INSERT INTO users_fts (users_fts, rowid, search_key) VALUES ('delete', ?, ?)",
    [ST_IDX_ADD] = "INSERT INTO users_fts (rowid, search_key) VALUES (?, ?)",
    [ST_IDX_DONE] = "DELETE FROM users_fts_pending WHERE user_id = ?",
    [ST_IDX_COUNT] = "SELECT count(*) FROM users_fts_pending",
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_BEGIN_READ] = "BEGIN DEFERRED",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_PING] = "SELECT 1",
};

struct sq_conn {
    sqlite3 *db;
    sqlite3_stmt *stmts[ST_COUNT];
    struct sq_store *store;
    bool is_writer;
    int read_depth;           /* nested acquires of a thread's reader */
    struct sq_conn *next_all; /* every connection, for close */
    /* A reader kept open between acquires (sq_read_keep): its transaction,
     * the WAL index header seen just before it began, and the store's
     * snap_epoch then. */
    bool kept;
    struct rs_wal_stamp stamp;
    unsigned epoch;
};

#define CHECKPOINT_PAGES 4000

/* The page size of a database this backend creates. Every write commits
 * whole pages to the log: a create changes 16 b-tree pages (the user row, its
 * eleven indexes, the audit event and its index, the counts, the search
 * queue), one page each wherever the key lands, so the log's bytes, their
 * checksums, the kernel's page-cache copy and writeback, and the checkpoint's
 * copying all scale with the page size, not with the ~1 KiB that changed.
 * 2 KiB pages halve that work against SQLite's default 4 KiB; measured on
 * this project's 2-core benchmark machine (A/B, three rounds each),
 * single-client creates went from about 2,150/s to 2,270/s while GET
 * /users/{id} stayed where it was, and the 1M-user list and search got no
 * slower (bench/README.md). Smaller still (1 KiB) deepened the b-trees
 * enough to slow reads. */
#define NEW_DB_PAGE_SIZE 2048

struct sq_store {
    struct rs_store base;
    char *path;
    pthread_t checkpointer;
    pthread_mutex_t ckpt_lock;
    pthread_cond_t ckpt_cond;
    bool ckpt_wanted, ckpt_stop, ckpt_running;
    pthread_t indexer;
    struct sq_conn *indexer_conn; /* the indexer thread's own (index_conn) */
    pthread_mutex_t idx_lock;
    pthread_cond_t idx_cond; /* on CLOCK_MONOTONIC */
    bool idx_wanted, idx_stop, idx_running;
    atomic_llong idx_done;    /* users folded into the search index by this process */
    atomic_llong idx_pending; /* users pending after the indexer's last pass */
    int busy_timeout_ms;
    pthread_mutex_t writer_lock;
    struct sq_conn *writer;
    pthread_key_t reader_key;
    pthread_mutex_t all_lock;
    struct sq_conn *all;
    atomic_int open_count;
    atomic_int in_use;
    atomic_uint snap_epoch; /* bumped when kept read snapshots must end (checkpointer) */
    atomic_bool restarting; /* the checkpointer is restarting the log: keep no snapshot */
};

/* On this thread, a reader's transaction may stay open after its last
 * release (sq_read_keep). */
static _Thread_local bool keep_reads;

#define CONN(c) ((struct sq_conn *)(c))

static int db_error(struct sq_conn *c, int rc, const char *what, struct rs_error *err)
{
    int ext = sqlite3_extended_errcode(c->db);
    const char *msg = sqlite3_errmsg(c->db);
    if (ext == SQLITE_CONSTRAINT_FOREIGNKEY)
        return rs_error_field(err, RS_EVALIDATION, "manager_id", "exists",
                              "manager_id must name an existing user");
    if (ext == SQLITE_CONSTRAINT_UNIQUE || ext == SQLITE_CONSTRAINT_PRIMARYKEY) {
        if (strstr(msg, "username_key"))
            return rs_error_field(err, RS_ECONFLICT, "username", "unique",
                                  "username is already taken");
        if (strstr(msg, "email_key"))
            return rs_error_field(err, RS_ECONFLICT, "email", "unique",
                                  "email is already in use");
        if (strstr(msg, "employee_id_key"))
            return rs_error_field(err, RS_ECONFLICT, "employee_id", "unique",
                                  "employee_id is already in use");
        if (strstr(msg, "roles.key") || strstr(msg, "resources.key"))
            return rs_error_field(err, RS_ECONFLICT, "key", "unique", "this key is taken");
        if (strstr(msg, "groups.name_key"))
            return rs_error_field(err, RS_ECONFLICT, "name", "unique",
                                  "a group with this name exists");
        if (strstr(msg, "custom_fields.key"))
            return rs_error_field(err, RS_ECONFLICT, "key", "unique",
                                  "a custom field with this key exists");
        rs_error_log(err, "%s: %s", what, msg);
        return rs_error_set(err, RS_ECONFLICT, "a record with these values already exists");
    }
    rs_error_log(err, "sqlite %s: %s (%d)", what, msg, rc);
    if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED || rc == SQLITE_CANTOPEN || rc == SQLITE_IOERR ||
        rc == SQLITE_FULL)
        return rs_error_set(err, RS_EUNAVAILABLE, "database unavailable");
    return rs_error_set(err, RS_EINTERNAL, "database error");
}

static sqlite3_stmt *stmt(struct sq_conn *c, enum stmt_id id, struct rs_error *err)
{
    if (!c->stmts[id]) {
        int rc = sqlite3_prepare_v3(c->db, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT,
                                    &c->stmts[id], NULL);
        if (rc != SQLITE_OK) {
            db_error(c, rc, "prepare", err);
            return NULL;
        }
    }
    return c->stmts[id];
}

static void done(sqlite3_stmt *s)
{
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
}

static int exec_sql(struct sq_conn *c, const char *sql, struct rs_error *err)
{
    char *msg = NULL;
    int rc = sqlite3_exec(c->db, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        rs_error_log(err, "sqlite exec: %s", msg ? msg : sqlite3_errstr(rc));
        sqlite3_free(msg);
        return rs_error_set(err, RS_EINTERNAL, "database error");
    }
    return 0;
}

static int conn_open(struct sq_store *s, bool writer, struct sq_conn **ret, struct rs_error *err)
{
    sqlite3 *db = NULL;
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
    int rc = sqlite3_open_v2(s->path, &db, flags, rs_sqlite_vfs());
    if (rc != SQLITE_OK) {
        rs_error_log(err, "sqlite open %s: %s", s->path, db ? sqlite3_errmsg(db) : "");
        sqlite3_close(db);
        return rs_error_set(err, RS_EUNAVAILABLE, "could not open database \"%s\": %s", s->path,
                            sqlite3_errstr(rc));
    }
    struct sq_conn *c = rs_xcalloc(1, sizeof(*c));
    c->db = db;
    c->store = s;
    c->is_writer = writer;
    sqlite3_busy_timeout(db, s->busy_timeout_ms);
    /* The page size takes effect only on a file not yet written (it comes
     * before journal_mode, which writes the header); an existing database
     * keeps its own. */
    char *pragmas = rs_xasprintf("%sPRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; "
                                 "PRAGMA foreign_keys=ON; PRAGMA temp_store=MEMORY;%s",
                                 writer ? "PRAGMA page_size=" RS_STR(NEW_DB_PAGE_SIZE) "; " : "",
                                 writer ? "" : " PRAGMA query_only=ON;");
    int r = exec_sql(c, pragmas, err);
    free(pragmas);
    if (r < 0) {
        sqlite3_close(db);
        free(c);
        return rs_error_set(err, RS_EUNAVAILABLE, "could not configure database \"%s\"", s->path);
    }
    pthread_mutex_lock(&s->all_lock);
    c->next_all = s->all;
    s->all = c;
    pthread_mutex_unlock(&s->all_lock);
    atomic_fetch_add(&s->open_count, 1);
    *ret = c;
    return 0;
}

static void conn_close(struct sq_conn *c)
{
    for (int i = 0; i < ST_COUNT; i++)
        sqlite3_finalize(c->stmts[i]);
    sqlite3_close(c->db);
    free(c);
}

static int on_wal_commit(void *arg, sqlite3 *db, const char *name, int pages)
{
    struct sq_store *s = arg;
    /* Any commit may have noted users for the search index. */
    pthread_mutex_lock(&s->idx_lock);
    if (!s->idx_wanted) {
        s->idx_wanted = true;
        pthread_cond_signal(&s->idx_cond);
    }
    pthread_mutex_unlock(&s->idx_lock);
    if (pages >= CHECKPOINT_PAGES) {
        pthread_mutex_lock(&s->ckpt_lock);
        s->ckpt_wanted = true;
        pthread_cond_signal(&s->ckpt_cond);
        pthread_mutex_unlock(&s->ckpt_lock);
    }
    return SQLITE_OK;
}

/* The checkpointer's busy handler. SQLite's own (sqlite3_busy_timeout)
 * sleeps 1, 2, 5, 10 ms... between tries, and the RESTART step, which holds
 * the writer, waits for readers whose read transactions last microseconds
 * (the access watcher, a GET): sleeping a whole millisecond or more there
 * stalled every create. Retry every 50 us instead, for up to ~busy_timeout. */
static int ckpt_busy(void *arg, int count)
{
    const struct sq_store *s = arg;
    if ((int64_t)count * 50 >= (int64_t)s->busy_timeout_ms * 1000)
        return 0;
    usleep(50);
    return 1;
}

static void *checkpointer_main(void *arg)
{
    struct sq_store *s = arg;
    pthread_setname_np(pthread_self(), "roster-ckpt");
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(s->path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) !=
        SQLITE_OK) {
        sqlite3_close(db);
        return NULL;
    }
    sqlite3_busy_handler(db, ckpt_busy, s);
    /* Until it reads the header a connection does not know the file is in WAL
     * mode, and a checkpoint would silently do nothing. */
    (void)sqlite3_exec(db, "PRAGMA journal_mode=WAL", NULL, NULL, NULL);
    pthread_mutex_lock(&s->ckpt_lock);
    for (;;) {
        while (!s->ckpt_wanted && !s->ckpt_stop)
            pthread_cond_wait(&s->ckpt_cond, &s->ckpt_lock);
        if (s->ckpt_stop)
            break;
        s->ckpt_wanted = false;
        pthread_mutex_unlock(&s->ckpt_lock);
        int log = 0, done = 0;
        (void)sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_PASSIVE, &log, &done);
        /* The writes made during that copy: copy them too while writes go
         * on, so what is left for the writer-held step below is small (a
         * create waits for that step; waits grow with its square). */
        if (log - done > CHECKPOINT_PAGES / 16)
            (void)sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_PASSIVE, &log, &done);
        /* Under a steady stream of writes a passive checkpoint never quite
         * catches up, so the log would never restart and would grow without
         * bound. Holding the writer briefly, finish the few frames written
         * meanwhile and restart the log from its beginning. */
        pthread_mutex_lock(&s->writer_lock);
        /* Restarting waits for every reader to leave the log: kept read
         * snapshots in this process end at their next acquire. */
        atomic_store(&s->restarting, true);
        atomic_fetch_add(&s->snap_epoch, 1);
        (void)sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_RESTART, &log, &done);
        atomic_store(&s->restarting, false);
        pthread_mutex_unlock(&s->writer_lock);
        pthread_mutex_lock(&s->ckpt_lock);
        /* Commits during the copy asked again while the log was still long;
         * it has just restarted, so that request is answered. */
        s->ckpt_wanted = false;
    }
    pthread_mutex_unlock(&s->ckpt_lock);
    sqlite3_close(db);
    return NULL;
}

/* --- the search indexer ---
 *
 * A write notes the users whose search_key changed in users_fts_pending
 * (triggers, migration 0006); this thread folds them into the trigram index
 * a batch at a time, each batch one transaction on the writer. Woken by
 * commits, it first waits INDEX_DELAY_MS so a stream of writes shares a few
 * batches (one new FTS5 segment per batch instead of per write; at 100 ms
 * the batches' writer time still showed in a single client's creates/s), and it polls
 * every INDEX_POLL_MS for users noted by other processes (the CLI). The writer
 * is given back between batches, so writes wait for one batch at most. Search
 * never depends on it having run: see "text search". */

#define INDEX_BATCH 64
#define INDEX_DELAY_MS 1000
#define INDEX_POLL_MS 1000

static int step_simple(struct sq_conn *c, enum stmt_id id, const char *what,
                       struct rs_error *err);
static void bind_text(sqlite3_stmt *st, int i, const char *v);
static char *col_optional(sqlite3_stmt *st, int i);

/* Folds up to INDEX_BATCH pending users into the index; *ret_n says how many. */
/* Runs one of the indexer's statements for a user: ?1 = id, ?2 = key
 * (unless NULL). */
static int index_step(struct sq_conn *c, sqlite3_stmt *st, int64_t id, const char *key,
                      const char *what, struct rs_error *err)
{
    sqlite3_bind_int64(st, 1, id);
    if (key)
        bind_text(st, 2, key);
    int rc = sqlite3_step(st);
    done(st);
    return rc == SQLITE_DONE ? 0 : db_error(c, rc, what, err);
}

static int index_batch(struct sq_conn *c, int *ret_n, struct rs_error *err)
{
    *ret_n = 0;
    sqlite3_stmt *st = stmt(c, ST_IDX_ANY, err);
    if (!st)
        return -RS_EINTERNAL;
    int rc = sqlite3_step(st);
    bool any = rc == SQLITE_ROW && sqlite3_column_int(st, 0);
    done(st);
    if (rc != SQLITE_ROW)
        return db_error(c, rc, "search index: pending", err);
    if (!any)
        return 0;
    int r = step_simple(c, ST_BEGIN, "search index: begin", err);
    if (r < 0)
        return r;
    sqlite3_stmt *batch = stmt(c, ST_IDX_BATCH, err), *del = stmt(c, ST_IDX_DELETE, err),
                 *add = stmt(c, ST_IDX_ADD, err), *fin = stmt(c, ST_IDX_DONE, err);
    if (!batch || !del || !add || !fin) {
        (void)step_simple(c, ST_ROLLBACK, "search index: rollback", NULL);
        return -RS_EINTERNAL;
    }
    /* Read the batch first: the statements below change the table it reads. */
    struct item {
        int64_t id;
        char *old_key, *new_key;
    } items[INDEX_BATCH];
    int n = 0;
    sqlite3_bind_int(batch, 1, INDEX_BATCH);
    while ((rc = sqlite3_step(batch)) == SQLITE_ROW && n < INDEX_BATCH) {
        items[n].id = sqlite3_column_int64(batch, 0);
        items[n].old_key = col_optional(batch, 1);
        items[n].new_key = col_optional(batch, 2);
        n++;
    }
    done(batch);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW)
        r = db_error(c, rc, "search index: batch", err);
    for (int i = 0; r == 0 && i < n; i++) {
        if (items[i].old_key)
            r = index_step(c, del, items[i].id, items[i].old_key, "search index: delete", err);
        if (r == 0 && items[i].new_key)
            r = index_step(c, add, items[i].id, items[i].new_key, "search index: add", err);
        if (r == 0)
            r = index_step(c, fin, items[i].id, NULL, "search index: done", err);
    }
    for (int i = 0; i < n; i++) {
        free(items[i].old_key);
        free(items[i].new_key);
    }
    if (r == 0)
        r = step_simple(c, ST_COMMIT, "search index: commit", err);
    if (r < 0 && !sqlite3_get_autocommit(c->db))
        (void)step_simple(c, ST_ROLLBACK, "search index: rollback", NULL);
    if (r < 0)
        return r;
    *ret_n = n;
    return 0;
}

static bool index_stopping(struct sq_store *s)
{
    pthread_mutex_lock(&s->idx_lock);
    bool stop = s->idx_stop;
    pthread_mutex_unlock(&s->idx_lock);
    return stop;
}

/* The indexer's own connection, opened on first use. Its batches commit
 * without an fsync of their own (synchronous=NORMAL, WAL's documented safe
 * mode): the index is derived data, and after a power loss a batch is lost
 * whole, index rows and pending deletions together, and is redone; the next
 * create's fsync, or the checkpoint's, makes it durable. The WAL-gathering
 * VFS passes this thread's writes straight through, since gathering is safe
 * only for commits that sync (sqlite_vfs.c). Writes still go one at a time:
 * the indexer holds writer_lock for each batch. */
static struct sq_conn *index_conn(struct sq_store *s, struct rs_error *err)
{
    if (s->indexer_conn)
        return s->indexer_conn;
    struct sq_conn *c = NULL;
    if (conn_open(s, true, &c, err) < 0)
        return NULL;
    if (exec_sql(c, "PRAGMA synchronous=NORMAL; PRAGMA wal_autocheckpoint=0", err) < 0)
        return NULL; /* closed with the others at sq_close */
    rs_sqlite_vfs_gather(false);
    s->indexer_conn = c;
    return c;
}

static void index_pass(struct sq_store *s)
{
    static int64_t logged_at; /* this thread's own: one failure line a minute */
    struct sq_conn *c = NULL;
    for (;;) {
        struct rs_error err;
        rs_error_init(&err);
        int n = 0, r = -RS_EUNAVAILABLE;
        pthread_mutex_lock(&s->writer_lock);
        c = index_conn(s, &err);
        if (c)
            r = index_batch(c, &n, &err);
        pthread_mutex_unlock(&s->writer_lock);
        if (r < 0) {
            /* Retried at the next wake (a busy file passes); search is exact
             * meanwhile, only slower as the pending list grows. */
            int64_t now = rs_wall_ms();
            if (now - logged_at >= 60000) {
                logged_at = now;
                rs_log(RS_LOG_ERROR, "search indexer failed; retrying", "error", err.message,
                       "detail", err.log_detail, NULL);
            }
            break;
        }
        atomic_fetch_add(&s->idx_done, n);
        /* A large backlog must not hold up shutdown: the rest waits. */
        if (n < INDEX_BATCH || index_stopping(s))
            break;
    }
    if (!c)
        return;
    int64_t left = 0;
    sqlite3_stmt *st = stmt(c, ST_IDX_COUNT, NULL);
    if (st && sqlite3_step(st) == SQLITE_ROW)
        left = sqlite3_column_int64(st, 0);
    if (st)
        done(st);
    atomic_store(&s->idx_pending, left);
}

static void *indexer_main(void *arg)
{
    struct sq_store *s = arg;
    pthread_setname_np(pthread_self(), "roster-index");
    struct timespec until;
    pthread_mutex_lock(&s->idx_lock);
    s->idx_wanted = true; /* a first pass at start: users noted while no server ran */
    for (;;) {
        if (!s->idx_wanted && !s->idx_stop) {
            rs_deadline_ms(&until, INDEX_POLL_MS);
            while (!s->idx_wanted && !s->idx_stop &&
                   pthread_cond_timedwait(&s->idx_cond, &s->idx_lock, &until) == 0)
                ;
        }
        if (s->idx_stop)
            break;
        /* Let the writes that follow this one join its batch. */
        rs_deadline_ms(&until, INDEX_DELAY_MS);
        while (!s->idx_stop && pthread_cond_timedwait(&s->idx_cond, &s->idx_lock, &until) == 0)
            ;
        if (s->idx_stop)
            break;
        s->idx_wanted = false;
        pthread_mutex_unlock(&s->idx_lock);
        index_pass(s);
        /* The pass's own commits wake us once more: the next pass finds
         * nothing to do unless writes came meanwhile. */
        pthread_mutex_lock(&s->idx_lock);
    }
    pthread_mutex_unlock(&s->idx_lock);
    return NULL;
}

static void sq_close(struct rs_store *base)
{
    struct sq_store *s = (struct sq_store *)base;
    if (s->idx_running) {
        pthread_mutex_lock(&s->idx_lock);
        s->idx_stop = true;
        pthread_cond_signal(&s->idx_cond);
        pthread_mutex_unlock(&s->idx_lock);
        pthread_join(s->indexer, NULL);
    }
    if (s->ckpt_running) {
        pthread_mutex_lock(&s->ckpt_lock);
        s->ckpt_stop = true;
        pthread_cond_signal(&s->ckpt_cond);
        pthread_mutex_unlock(&s->ckpt_lock);
        pthread_join(s->checkpointer, NULL);
    }
    struct sq_conn *c = s->all;
    while (c) {
        struct sq_conn *next = c->next_all;
        conn_close(c);
        c = next;
    }
    pthread_key_delete(s->reader_key);
    pthread_mutex_destroy(&s->writer_lock);
    pthread_mutex_destroy(&s->all_lock);
    pthread_mutex_destroy(&s->ckpt_lock);
    pthread_cond_destroy(&s->ckpt_cond);
    pthread_mutex_destroy(&s->idx_lock);
    pthread_cond_destroy(&s->idx_cond);
    free(s->path);
    free(s);
}

static bool read_reuse(struct sq_conn *c);
static int read_begin(struct sq_conn *c, struct rs_error *err);
static void read_end(struct sq_conn *c);
static void read_drop(struct sq_conn *c);

static struct rs_conn *sq_acquire(struct rs_store *base, enum rs_conn_kind kind,
                                  struct rs_error *err)
{
    struct sq_store *s = (struct sq_store *)base;
    if (kind == RS_CONN_WRITE) {
        /* Loops never write (store.h), but were one to, its kept snapshot
         * and a checkpointer restarting the log while holding the writer
         * would wait on each other. */
        read_drop(pthread_getspecific(s->reader_key));
        pthread_mutex_lock(&s->writer_lock);
        atomic_fetch_add(&s->in_use, 1);
        return (struct rs_conn *)s->writer;
    }
    struct sq_conn *c = pthread_getspecific(s->reader_key);
    if (!c) {
        if (conn_open(s, false, &c, err) < 0)
            return NULL;
        pthread_setspecific(s->reader_key, c);
    }
    /* One read transaction per acquire: the reads of one call share a
     * snapshot (a page and its total agree) and take WAL's read lock once
     * instead of once per statement. */
    if (c->read_depth == 0 && !read_reuse(c) && read_begin(c, err) < 0)
        return NULL;
    c->read_depth++;
    atomic_fetch_add(&s->in_use, 1);
    return (struct rs_conn *)c;
}

/* Kept read snapshots.
 *
 * Beginning a read transaction in WAL mode costs more than a lookup by id:
 * SQLite takes a process-wide mutex and fcntl locks on the WAL index to pin
 * a snapshot, and gives them back at the end; with two event loops reading
 * at once the mutex is contended too (a tenth of a GET's CPU, measured with
 * perf). On a thread that asked for it (an event loop, sq_read_keep), the
 * reader's transaction stays open after the call that used it, and the next
 * call reuses it when no transaction has committed since, in this process or
 * any other: the WAL index header, read just before the snapshot was taken,
 * still reads the same (rs_sqlite_vfs_wal_stamp). The snapshot is then the
 * database as it is now, so the call sees exactly what a fresh transaction
 * would; after any commit it gets a fresh one. A kept snapshot ends at the
 * loop's next idle moment (sq_read_drop, at most a couple of milliseconds
 * later), and sooner while the checkpointer restarts the log, which waits
 * for every reader to leave it (with the writer held): a snapshot from
 * before the restart began is not reused (snap_epoch), none is kept while it
 * runs (restarting), and the loop drops one it holds before it polls again
 * (sq_read_kept). */
static bool read_reuse(struct sq_conn *c)
{
    if (!c->kept)
        return false;
    c->kept = false;
    struct rs_wal_stamp now;
    if (!sqlite3_get_autocommit(c->db)) {
        if (c->epoch == atomic_load(&c->store->snap_epoch) &&
            rs_sqlite_vfs_wal_stamp(c->db, &now) &&
            memcmp(now.hdr, c->stamp.hdr, sizeof(now.hdr)) == 0)
            return true;
        read_end(c);
    }
    return false;
}

static int read_begin(struct sq_conn *c, struct rs_error *err)
{
    /* The stamp is read before the snapshot is taken (at the transaction's
     * first read), so the snapshot is never older than the stamp: a commit
     * in between only makes the next reuse check fail. */
    c->epoch = atomic_load(&c->store->snap_epoch);
    bool stamped = keep_reads && rs_sqlite_vfs_wal_stamp(c->db, &c->stamp);
    if (!stamped)
        memset(&c->stamp, 0, sizeof(c->stamp));
    return step_simple(c, ST_BEGIN_READ, "begin read", err);
}

/* Ends a reader's transaction; should COMMIT fail, rolls back, so the
 * reader is never left inside a transaction that BEGIN would then refuse. */
static void read_end(struct sq_conn *c)
{
    if (sqlite3_get_autocommit(c->db))
        return;
    if (step_simple(c, ST_COMMIT, "end read", NULL) < 0 && !sqlite3_get_autocommit(c->db))
        (void)sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
}

static void sq_release(struct rs_conn *base)
{
    struct sq_conn *c = CONN(base);
    atomic_fetch_sub(&c->store->in_use, 1);
    if (c->is_writer) {
        pthread_mutex_unlock(&c->store->writer_lock);
    } else if (--c->read_depth == 0 && !sqlite3_get_autocommit(c->db)) {
        /* An unstamped snapshot (index not mapped yet) is never kept. */
        if (keep_reads && c->stamp.hdr[12] != 0 && !atomic_load(&c->store->restarting))
            c->kept = true;
        else
            read_end(c);
    }
}

static void sq_read_keep(struct rs_store *base, bool on)
{
    (void)base;
    keep_reads = on;
}

static void read_drop(struct sq_conn *c)
{
    if (!c || !c->kept)
        return;
    c->kept = false;
    read_end(c);
}

/* Whether this thread keeps a snapshot; one the checkpointer is waiting for
 * is dropped here, before the loop polls, rather than at its next acquire. */
static bool sq_read_kept(struct rs_store *base)
{
    struct sq_store *s = (struct sq_store *)base;
    struct sq_conn *c = pthread_getspecific(s->reader_key);
    if (c && c->kept && (atomic_load(&s->restarting) || c->epoch != atomic_load(&s->snap_epoch)))
        read_drop(c);
    return c && c->kept;
}

static void sq_read_drop(struct rs_store *base)
{
    struct sq_store *s = (struct sq_store *)base;
    read_drop(pthread_getspecific(s->reader_key));
}

static void sq_stats(struct rs_store *base, struct rs_store_stats *ret)
{
    struct sq_store *s = (struct sq_store *)base;
    ret->conns_open = atomic_load(&s->open_count);
    ret->conns_in_use = atomic_load(&s->in_use);
    ret->search_pending = atomic_load(&s->idx_pending);
    ret->search_indexed = atomic_load(&s->idx_done);
}

static int step_simple(struct sq_conn *c, enum stmt_id id, const char *what, struct rs_error *err)
{
    sqlite3_stmt *st = stmt(c, id, err);
    if (!st)
        return -RS_EINTERNAL;
    int rc = sqlite3_step(st);
    int r = (rc == SQLITE_DONE || rc == SQLITE_ROW) ? 0 : db_error(c, rc, what, err);
    done(st);
    return r;
}

/* Steps st to the end, reading each row into a growing array of items of
 * `size` bytes; on failure releases what was read. Resets st. */
static int collect_rows(struct sq_conn *c, sqlite3_stmt *st, size_t size,
                        void (*read)(sqlite3_stmt *, void *), void (*release)(void *),
                        const char *what, void **ret_items, size_t *ret_count,
                        struct rs_error *err)
{
    char *items = NULL;
    size_t n = 0, cap = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (n == cap) {
            cap = cap ? cap * 2 : 8;
            items = rs_xrealloc(items, cap * size);
        }
        read(st, items + n++ * size);
    }
    done(st);
    if (rc != SQLITE_DONE) {
        for (size_t i = 0; i < n; i++)
            release(items + i * size);
        free(items);
        return db_error(c, rc, what, err);
    }
    *ret_items = items;
    *ret_count = n;
    return 0;
}

static int sq_ping(struct rs_conn *c, struct rs_error *err)
{
    return step_simple(CONN(c), ST_PING, "ping", err);
}

static int sq_begin(struct rs_conn *c, struct rs_error *err)
{
    return step_simple(CONN(c), ST_BEGIN, "begin", err);
}

static int sq_commit(struct rs_conn *c, struct rs_error *err)
{
    return step_simple(CONN(c), ST_COMMIT, "commit", err);
}

static void sq_rollback(struct rs_conn *c)
{
    if (!sqlite3_get_autocommit(CONN(c)->db))
        (void)step_simple(CONN(c), ST_ROLLBACK, "rollback", NULL);
}

/* Migrations run on the writer in one transaction each, with their row in
 * schema_migrations. */
static int sq_schema_version_conn(struct sq_conn *c, int *ret, struct rs_error *err)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(c->db, "SELECT coalesce(max(version), 0) FROM schema_migrations",
                                -1, &st, NULL);
    if (rc != SQLITE_OK) {
        sqlite3_finalize(st);
        return db_error(c, rc, "schema version", err);
    }
    rc = sqlite3_step(st);
    int v = rc == SQLITE_ROW ? sqlite3_column_int(st, 0) : 0;
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW)
        return db_error(c, rc, "schema version", err);
    *ret = v;
    return 0;
}

static int sq_migrate(struct rs_store *base, int *ret_applied, struct rs_error *err)
{
    struct sq_store *s = (struct sq_store *)base;
    struct sq_conn *c = (struct sq_conn *)sq_acquire(base, RS_CONN_WRITE, err);
    int applied = 0, current = 0, r;
    r = exec_sql(c,
                 "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
                 "name TEXT NOT NULL, applied_at INTEGER NOT NULL)",
                 err);
    if (r < 0)
        goto out;
    r = sq_schema_version_conn(c, &current, err);
    if (r < 0)
        goto out;
    size_t n = 0;
    const struct rs_migration *m = rs_migrations("sqlite", &n);
    for (size_t i = 0; i < n; i++) {
        if (m[i].version <= current)
            continue;
        char *record = rs_xasprintf("INSERT INTO schema_migrations VALUES (%d, '%s', %" PRId64 ")",
                                    m[i].version, m[i].name, rs_wall_ms());
        r = exec_sql(c, "BEGIN IMMEDIATE", err);
        if (r == 0)
            r = exec_sql(c, m[i].sql, err);
        if (r == 0)
            r = exec_sql(c, record, err);
        if (r == 0)
            r = exec_sql(c, "COMMIT", err);
        free(record);
        if (r < 0) {
            sq_rollback((struct rs_conn *)c);
            rs_error_log(err, "migration %04d_%s", m[i].version, m[i].name);
            goto out;
        }
        applied++;
    }
    *ret_applied = applied;
out:
    sq_release((struct rs_conn *)c);
    /* The indexer needs the schema this binary knows: start it once the
     * migrations are in (every command that serves or writes runs them). */
    if (r == 0 && !s->idx_running && pthread_create(&s->indexer, NULL, indexer_main, s) == 0)
        s->idx_running = true;
    return r;
}

static int sq_schema_version(struct rs_store *base, int *ret, struct rs_error *err)
{
    struct rs_conn *c = sq_acquire(base, RS_CONN_READ, err);
    if (!c)
        return -RS_EUNAVAILABLE;
    int r = sq_schema_version_conn(CONN(c), ret, err);
    sq_release(c);
    return r;
}

/* --- users --- */

static void bind_text(sqlite3_stmt *st, int i, const char *v)
{
    if (v)
        sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, i);
}

static char *col_text(sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    return t ? rs_xstrdup((const char *)t) : NULL;
}

/* Optional text: '' in the table is "none". */
static char *col_optional(sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    return t && *t ? rs_xstrdup((const char *)t) : NULL;
}

static void read_user(sqlite3_stmt *st, struct rs_user *u)
{
    rs_user_init(u);
    u->id = sqlite3_column_int64(st, 0);
    u->username = col_text(st, 1);
    u->email = col_text(st, 2);
    u->first_name = col_text(st, 3);
    u->last_name = col_text(st, 4);
    const char *t = (const char *)sqlite3_column_text(st, 5);
    if (!t || rs_user_type_parse(t, &u->type) < 0)
        u->type = RS_USER_STANDARD;
    const char *s = (const char *)sqlite3_column_text(st, 6);
    if (!s || rs_user_status_parse(s, &u->status) < 0)
        u->status = RS_STATUS_ACTIVE;
    u->created_at = sqlite3_column_int64(st, 7);
    u->updated_at = sqlite3_column_int64(st, 8);
    u->version = sqlite3_column_int64(st, 9);
    u->phone = col_optional(st, 10);
    u->employee_id = col_optional(st, 11);
    u->department = col_optional(st, 12);
    u->position = col_optional(st, 13);
    u->location = col_optional(st, 14);
    u->role = col_optional(st, 15);
    u->manager_id = sqlite3_column_int64(st, 16);
    u->status_reason = col_text(st, 17);
    u->status_note = col_text(st, 18);
    u->status_changed_at = sqlite3_column_int64(st, 19);
    const char *custom = (const char *)sqlite3_column_text(st, 20);
    u->custom = custom ? json_loads(custom, 0, NULL) : NULL;
    u->last_login_at = sqlite3_column_int64(st, 21);
    u->erased_at = sqlite3_column_int64(st, 22);
}

/* The folded keys a user row stores; freed by keys_release. */
struct user_keys {
    char *username;
    char *email;
    char *employee_id;
    char *search;
    char *custom;
};

static int keys_make(const struct rs_user *u, struct user_keys *k, struct rs_error *err)
{
    k->username = rs_fold_key(u->username);
    k->email = rs_fold_key(u->email);
    k->employee_id = rs_fold_key(u->employee_id ? u->employee_id : "");
    k->search = rs_user_search_key(u, k->username, k->email, k->employee_id);
    k->custom = u->custom && json_object_size(u->custom)
                    ? json_dumps(u->custom, JSON_COMPACT | JSON_SORT_KEYS)
                    : NULL;
    if (!k->username || !k->email || !k->employee_id || !k->search)
        return rs_error_set(err, RS_EVALIDATION, "user fields are not valid UTF-8");
    return 0;
}

static void keys_release(struct user_keys *k)
{
    free(k->username);
    free(k->email);
    free(k->employee_id);
    free(k->search);
    free(k->custom);
}

static void bind_optional(sqlite3_stmt *st, int i, const char *v)
{
    sqlite3_bind_text(st, i, v ? v : "", -1, SQLITE_STATIC);
}

/* Binds the USER_WRITE_COLS values, from index 1; returns the next index. */
static int bind_user_write(sqlite3_stmt *st, const struct rs_user *u, const struct user_keys *k)
{
    int i = 1;
    bind_text(st, i++, u->username);
    bind_text(st, i++, k->username);
    bind_text(st, i++, u->email);
    bind_text(st, i++, k->email);
    bind_text(st, i++, u->first_name);
    bind_text(st, i++, u->last_name);
    bind_text(st, i++, k->search);
    bind_text(st, i++, rs_user_type_name(u->type));
    bind_text(st, i++, rs_user_status_name(u->status));
    bind_optional(st, i++, u->phone);
    bind_optional(st, i++, u->employee_id);
    bind_text(st, i++, k->employee_id);
    bind_optional(st, i++, u->department);
    bind_optional(st, i++, u->position);
    bind_optional(st, i++, u->location);
    bind_optional(st, i++, u->role);
    if (u->manager_id)
        sqlite3_bind_int64(st, i++, u->manager_id);
    else
        sqlite3_bind_null(st, i++);
    bind_text(st, i++, u->status_reason);
    bind_text(st, i++, u->status_note);
    sqlite3_bind_int64(st, i++, u->status_changed_at);
    bind_text(st, i++, k->custom);
    sqlite3_bind_int64(st, i++, u->last_login_at);
    sqlite3_bind_int64(st, i++, u->erased_at);
    sqlite3_bind_int64(st, i++, u->updated_at);
    sqlite3_bind_int64(st, i++, u->version);
    return i;
}

static int sq_user_insert(struct rs_conn *cb, struct rs_user *u, struct rs_error *err)
{
    struct sq_conn *c = CONN(cb);
    struct user_keys k = {0};
    int r = keys_make(u, &k, err);
    if (r < 0)
        goto out;
    sqlite3_stmt *st = stmt(c, ST_USER_INSERT, err);
    if (!st) {
        r = -RS_EINTERNAL;
        goto out;
    }
    int next = bind_user_write(st, u, &k);
    sqlite3_bind_int64(st, next, u->created_at);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE)
        u->id = sqlite3_last_insert_rowid(c->db);
    else
        r = db_error(c, rc, "insert user", err);
    done(st);
out:
    keys_release(&k);
    return r;
}

static int get_one_user(struct sq_conn *c, sqlite3_stmt *st, struct rs_user *ret,
                        struct rs_error *err)
{
    int rc = sqlite3_step(st);
    int r = 0;
    if (rc == SQLITE_ROW)
        read_user(st, ret);
    else if (rc == SQLITE_DONE)
        r = -RS_ENOTFOUND;
    else
        r = db_error(c, rc, "get user", err);
    done(st);
    return r;
}

static int sq_user_get(struct rs_conn *cb, int64_t id, struct rs_user *ret, struct rs_error *err)
{
    struct sq_conn *c = CONN(cb);
    sqlite3_stmt *st = stmt(c, ST_USER_GET, err);
    if (!st)
        return -RS_EINTERNAL;
    sqlite3_bind_int64(st, 1, id);
    return get_one_user(c, st, ret, err);
}

static int sq_user_get_by_username(struct rs_conn *cb, const char *key, struct rs_user *ret,
                                   struct rs_error *err)
{
    struct sq_conn *c = CONN(cb);
    sqlite3_stmt *st = stmt(c, ST_USER_GET_BY_USERNAME, err);
    if (!st)
        return -RS_EINTERNAL;
    bind_text(st, 1, key);
    return get_one_user(c, st, ret, err);
}

static int user_exists(struct sq_conn *c, int64_t id, struct rs_error *err)
{
    sqlite3_stmt *st = stmt(c, ST_USER_EXISTS, err);
    if (!st)
        return -RS_EINTERNAL;
    sqlite3_bind_int64(st, 1, id);
    int rc = sqlite3_step(st);
    done(st);
    if (rc == SQLITE_ROW)
        return 1;
    if (rc == SQLITE_DONE)
        return 0;
    return db_error(c, rc, "user exists", err);
}

static int sq_user_update(struct rs_conn *cb, const struct rs_user *u, int64_t expected_version,
                          struct rs_error *err)
{
    struct sq_conn *c = CONN(cb);
    struct user_keys k = {0};
    int r = keys_make(u, &k, err);
    if (r < 0)
        goto out;
    sqlite3_stmt *st = stmt(c, ST_USER_UPDATE, err);
    if (!st) {
        r = -RS_EINTERNAL;
        goto out;
    }
    int next = bind_user_write(st, u, &k);
    sqlite3_bind_int64(st, next, u->id);
    sqlite3_bind_int64(st, next + 1, expected_version);
    int rc = sqlite3_step(st);
    int changes = sqlite3_changes(c->db);
    if (rc != SQLITE_DONE)
        r = db_error(c, rc, "update user", err);
    done(st);
    if (r == 0 && changes == 0) {
        int e = user_exists(c, u->id, err);
        r = e < 0 ? e : (e ? -RS_EPRECONDITION : -RS_ENOTFOUND);
    }
out:
    keys_release(&k);
    return r;
}

static int sq_users_exist(struct rs_conn *cb, bool *ret, struct rs_error *err)
{
    struct sq_conn *c = CONN(cb);
    sqlite3_stmt *st = stmt(c, ST_USER_COUNT, err);
    if (!st)
        return -RS_EINTERNAL;
    int rc = sqlite3_step(st);
    int r = 0;
    if (rc == SQLITE_ROW)
        *ret = sqlite3_column_int(st, 0) != 0;
    else
        r = db_error(c, rc, "any users", err);
    done(st);
    return r;
}

/* --- user lists: dynamic SQL from a fixed vocabulary, values always bound --- */

static const char *const sort_cols[RS_SORT_FIELD_COUNT] = {
    [RS_SORT_ID] = "id",
    [RS_SORT_USERNAME] = "username_key",
    [RS_SORT_EMAIL] = "email_key",
    [RS_SORT_FIRST_NAME] = "first_name",
    [RS_SORT_LAST_NAME] = "last_name",
    [RS_SORT_CREATED_AT] = "created_at",
    [RS_SORT_UPDATED_AT] = "updated_at",
    [RS_SORT_DEPARTMENT] = "department",
    [RS_SORT_LOCATION] = "location",
    [RS_SORT_POSITION] = "position",
    [RS_SORT_EMPLOYEE_ID] = "employee_id",
    [RS_SORT_TYPE] = "type",
    [RS_SORT_STATUS] = "status",
    [RS_SORT_LAST_LOGIN_AT] = "last_login_at",
};

struct sqlbuf {
    char *s;
    size_t len, cap;
};

static void sb_add(struct sqlbuf *b, const char *text)
{
    size_t n = strlen(text);
    if (b->len + n + 1 > b->cap) {
        b->cap = (b->len + n + 1) * 2;
        b->s = rs_xrealloc(b->s, b->cap);
    }
    memcpy(b->s + b->len, text, n + 1);
    b->len += n;
}

/* Binds are collected as text or integers in order of appearance. */
struct binds {
    int n;
    struct {
        bool is_int;
        int64_t i;
        const char *t;
    } v[128]; /* a page query binds its filter twice (text search), 2 x 41 at most */
};

static void bind_push_text(struct binds *b, const char *t)
{
    b->v[b->n].is_int = false;
    b->v[b->n].t = t;
    b->n++;
}

static void bind_push_int(struct binds *b, int64_t i)
{
    b->v[b->n].is_int = true;
    b->v[b->n].i = i;
    b->n++;
}

/* The FTS5 query for a substring: one quoted phrase ("" doubles a quote). */
static char *fts_phrase(const char *text)
{
    size_t n = strlen(text);
    char *out = rs_xmalloc(n * 2 + 3);
    size_t j = 0;
    out[j++] = '"';
    for (size_t i = 0; i < n; i++) {
        if (text[i] == '"')
            out[j++] = '"';
        out[j++] = text[i];
    }
    out[j++] = '"';
    out[j] = '\0';
    return out;
}

static void filter_eq(struct sqlbuf *sql, struct binds *b, const char *col, const char *v)
{
    if (!v)
        return;
    sb_add(sql, " AND ");
    sb_add(sql, col);
    sb_add(sql, " = ?");
    bind_push_text(b, v);
}

static void filter_range(struct sqlbuf *sql, struct binds *b, const char *cond, int64_t v)
{
    if (!v)
        return;
    sb_add(sql, cond);
    bind_push_int(b, v);
}

/* Values the filter binds that must outlive it (freed by the caller). */
struct filter_owned {
    char *like;
    char *cf_paths[RS_QUERY_MAX_CF];
};

static void filter_owned_release(struct filter_owned *o)
{
    free(o->like);
    for (int i = 0; i < RS_QUERY_MAX_CF; i++)
        free(o->cf_paths[i]);
}

static bool query_uses_fts(const struct rs_user_query *q);

/* --- text search ---
 *
 * Three characters or more are looked up in the trigram index, which may lag
 * the table by the users in users_fts_pending (see "the search indexer"). So
 * every text query is two parts: the index's matches among users not
 * pending, and the pending users whose current search_key contains the text.
 * Both keys and query are already folded (rs_fold_key), so instr() on the
 * key matches what the case-insensitive trigram index would. The CROSS JOINs
 * keep the index (or the short pending list) in the outer loop. */
#define FTS_NOT_PENDING " AND users_fts.rowid NOT IN (SELECT user_id FROM users_fts_pending)"
#define FTS_IDS                                                                                   \
    "SELECT users_fts.rowid FROM users_fts WHERE users_fts MATCH ?" FTS_NOT_PENDING              \
    " UNION ALL SELECT p.user_id FROM users_fts_pending p CROSS JOIN users pu "                   \
    "ON pu.id = p.user_id WHERE instr(pu.search_key, ?) > 0"

static void build_filter(const struct rs_user_query *q, struct sqlbuf *sql, struct binds *b,
                         struct filter_owned *owned)
{
    sb_add(sql, " WHERE 1=1");
    /* Three or more characters: the trigram index finds the rows. */
    if (query_uses_fts(q)) {
        owned->like = fts_phrase(q->q);
        sb_add(sql, " AND id IN (" FTS_IDS ")");
        bind_push_text(b, owned->like);
        bind_push_text(b, q->q);
    } else if (q->q && q->q[0]) {
        /* Escape LIKE's wildcards so the text matches literally. */
        size_t n = strlen(q->q);
        char *like = rs_xmalloc(n * 2 + 3);
        size_t j = 0;
        like[j++] = '%';
        for (size_t i = 0; i < n; i++) {
            if (q->q[i] == '%' || q->q[i] == '_' || q->q[i] == '\\')
                like[j++] = '\\';
            like[j++] = q->q[i];
        }
        like[j++] = '%';
        like[j] = '\0';
        owned->like = like;
        sb_add(sql, " AND search_key LIKE ? ESCAPE '\\'");
        bind_push_text(b, like);
    }
    filter_eq(sql, b, "department", q->department);
    filter_eq(sql, b, "location", q->location);
    filter_eq(sql, b, "position", q->position);
    filter_eq(sql, b, "role", q->role);
    if (q->manager_id) {
        sb_add(sql, " AND manager_id = ?");
        bind_push_int(b, q->manager_id);
    }
    if (q->group_id) {
        sb_add(sql, " AND id IN (SELECT user_id FROM group_members WHERE group_id = ?)");
        bind_push_int(b, q->group_id);
    }
    filter_range(sql, b, " AND created_at >= ?", q->created_after);
    filter_range(sql, b, " AND created_at <= ?", q->created_before);
    filter_range(sql, b, " AND last_login_at >= ?", q->last_login_after);
    filter_range(sql, b, " AND last_login_at <= ? AND last_login_at > 0", q->last_login_before);
    for (int i = 0; i < q->ncf; i++) {
        /* Compare the value's text form (see rs_custom_value_text). */
        owned->cf_paths[i] = rs_xasprintf("$.\"%s\"", q->cf_keys[i]);
        sb_add(sql, " AND (CASE json_type(custom_json, ?) WHEN 'true' THEN 'true' "
                    "WHEN 'false' THEN 'false' ELSE CAST(json_extract(custom_json, ?) AS TEXT) "
                    "END) = ?");
        bind_push_text(b, owned->cf_paths[i]);
        bind_push_text(b, owned->cf_paths[i]);
        bind_push_text(b, q->cf_values[i]);
    }
    if (q->has_status) {
        sb_add(sql, " AND status = ?");
        bind_push_text(b, rs_user_status_name(q->status));
    }
    if (q->has_type) {
        sb_add(sql, " AND type = ?");
        bind_push_text(b, rs_user_type_name(q->type));
    }
}

static void push_sort_value(struct binds *b, enum rs_user_sort_field f, const char *v)
{
    if (rs_sort_is_integer(f))
        bind_push_int(b, v ? strtoll(v, NULL, 10) : 0);
    else
        bind_push_text(b, v ? v : "");
}

/* Keyset condition after the cursor row: (k1, ..., id) > (v1, ..., last_id)
 * when every key ascends, else the expanded OR form, which handles mixed
 * sort directions: (k1 > v1) OR (k1 = v1 AND k2 < v2) OR ... OR
 * (all equal AND id > last_id). */
static void build_cursor(const struct rs_user_query *q, struct sqlbuf *sql, struct binds *b)
{
    bool ascending = true;
    for (int i = 0; i < q->nsort; i++)
        ascending = ascending && !q->sort[i].desc;
    if (ascending) {
        /* Every key ascends, as the id that breaks ties does: one row-value
         * comparison, which the index on the sort keys answers as a range
         * (a cursor half-way through Sales at a million users: 8.6 ms ->
         * 0.15 ms). */
        sb_add(sql, " AND (");
        for (int i = 0; i < q->nsort; i++) {
            sb_add(sql, sort_cols[q->sort[i].field]);
            sb_add(sql, ", ");
            push_sort_value(b, q->sort[i].field, q->cursor.values[i]);
        }
        sb_add(sql, "id) > (");
        for (int i = 0; i < q->nsort; i++)
            sb_add(sql, "?, ");
        sb_add(sql, "?)");
        bind_push_int(b, q->cursor.id);
        return;
    }
    sb_add(sql, " AND (");
    for (int i = 0; i <= q->nsort; i++) {
        if (i > 0)
            sb_add(sql, " OR ");
        sb_add(sql, "(");
        for (int j = 0; j < i; j++) {
            sb_add(sql, sort_cols[q->sort[j].field]);
            sb_add(sql, " = ? AND ");
            push_sort_value(b, q->sort[j].field, q->cursor.values[j]);
        }
        if (i < q->nsort) {
            sb_add(sql, sort_cols[q->sort[i].field]);
            sb_add(sql, q->sort[i].desc ? " < ?" : " > ?");
            push_sort_value(b, q->sort[i].field, q->cursor.values[i]);
        } else {
            sb_add(sql, "id > ?"); /* ties: ascending id, whatever the sort */
            bind_push_int(b, q->cursor.id);
        }
        sb_add(sql, ")");
    }
    sb_add(sql, ")");
}

static int run_bound(struct sq_conn *c, const char *sql, const struct binds *b,
                     sqlite3_stmt **ret, struct rs_error *err)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(c->db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK) {
        sqlite3_finalize(st);
        return db_error(c, rc, "prepare list", err);
    }
    for (int i = 0; i < b->n; i++) {
        if (b->v[i].is_int)
            sqlite3_bind_int64(st, i + 1, b->v[i].i);
        else
            sqlite3_bind_text(st, i + 1, b->v[i].t, -1, SQLITE_STATIC);
    }
    *ret = st;
    return 0;
}

/* Whether q uses the trigram index (three characters or more). */
static bool query_uses_fts(const struct rs_user_query *q)
{
    return q->q && q->q[0] && rs_utf8_length(q->q, strlen(q->q)) >= 3;
}

/* Whether q filters by nothing but its text. */
static bool query_text_only(const struct rs_user_query *q)
{
    return !q->department && !q->location && !q->position && !q->role && !q->manager_id &&
           !q->group_id && !q->created_after && !q->created_before && !q->last_login_after &&
           !q->last_login_before && q->ncf == 0 && !q->has_status && !q->has_type;
}

/* Whether the order is by id alone (the default, or sort=id / sort=-id);
 * *ret_desc says which way. */
static bool sort_by_id_only(const struct rs_user_query *q, bool *ret_desc)
{
    bool desc = false;
    for (int i = 0; i < q->nsort; i++) {
        if (q->sort[i].field != RS_SORT_ID)
            return false;
        if (i == 0)
            desc = q->sort[i].desc;
    }
    *ret_desc = desc;
    return true;
}

/* The page query of a text search in id order, driven by the trigram index:
 * FTS5 hands out matching rowids in order, so the scan stops after the page
 * instead of collecting every match first (q=exa, in every row: 136 ms ->
 * 0.2 ms at a million users). The other filters still apply to the joined
 * row. */
static void build_fts_page(const struct rs_user_query *q, bool desc, struct sqlbuf *sql,
                           struct binds *b, struct filter_owned *owned,
                           struct filter_owned *owned2)
{
    struct rs_user_query rest = *q;
    rest.q = NULL; /* the MATCH below replaces build_filter's text condition */
    bool cursor = q->has_cursor && q->cursor.nvalues == q->nsort;
    /* Two parts (see "text search"), merged by id: SQLite runs them side by
     * side and stops at the page's end. The index part selects the index's
     * rowid as id, which the index already yields in order. */
    owned->like = fts_phrase(q->q);
    sb_add(sql, "SELECT users_fts.rowid AS id, " USER_COLS_AFTER_ID " FROM users_fts "
                "CROSS JOIN users ON users.id = users_fts.rowid WHERE users_fts MATCH ?"
                FTS_NOT_PENDING);
    bind_push_text(b, owned->like);
    struct sqlbuf filter = {0};
    build_filter(&rest, &filter, b, owned);
    sb_add(sql, filter.s + strlen(" WHERE 1=1"));
    free(filter.s);
    if (cursor) {
        sb_add(sql, desc ? " AND users_fts.rowid < ?" : " AND users_fts.rowid > ?");
        bind_push_int(b, q->cursor.id);
    }
    sb_add(sql, " UNION ALL SELECT users.id AS id, " USER_COLS_AFTER_ID " FROM users_fts_pending p "
                "CROSS JOIN users ON users.id = p.user_id WHERE instr(users.search_key, ?) > 0");
    bind_push_text(b, q->q);
    filter = (struct sqlbuf){0};
    build_filter(&rest, &filter, b, owned2);
    sb_add(sql, filter.s + strlen(" WHERE 1=1"));
    free(filter.s);
    if (cursor) {
        sb_add(sql, desc ? " AND users.id < ?" : " AND users.id > ?");
        bind_push_int(b, q->cursor.id);
    }
    sb_add(sql, desc ? " ORDER BY id DESC" : " ORDER BY id");
}

static int sq_user_list(struct rs_conn *cb, const struct rs_user_query *q,
                        struct rs_user_page *ret, struct rs_error *err)
{
    struct sq_conn *c = CONN(cb);
    struct sqlbuf sql = {0}, count_sql = {0};
    struct binds b = {0}, cb_binds = {0};
    struct filter_owned own1 = {0}, own2 = {0}, own3 = {0};
    sqlite3_stmt *st = NULL;
    struct rs_user_page page = {0};
    int r = 0;
    bool fts = query_uses_fts(q), desc = false;

    if (fts && query_text_only(q)) {
        /* The matches of the trigram index are exactly the rows the page
         * query filters for: count them there, without touching users
         * (q=And, 28,654 matches: 38 ms -> 0.9 ms). */
        own2.like = fts_phrase(q->q);
        sb_add(&count_sql, "SELECT (SELECT count(*) FROM users_fts WHERE users_fts MATCH ?"
                           FTS_NOT_PENDING ") + (SELECT count(*) FROM users_fts_pending p "
                           "CROSS JOIN users pu ON pu.id = p.user_id "
                           "WHERE instr(pu.search_key, ?) > 0)");
        bind_push_text(&cb_binds, own2.like);
        bind_push_text(&cb_binds, q->q);
    } else {
        sb_add(&count_sql, "SELECT count(*) FROM users");
        build_filter(q, &count_sql, &cb_binds, &own2);
    }
    /* A group's members are few: let them drive the page, not the index. */
    if (fts && sort_by_id_only(q, &desc) && !q->group_id) {
        build_fts_page(q, desc, &sql, &b, &own1, &own3);
    } else {
        sb_add(&sql, "SELECT " USER_COLS " FROM users");
        build_filter(q, &sql, &b, &own1);
        if (q->has_cursor && q->cursor.nvalues == q->nsort)
            build_cursor(q, &sql, &b);
        sb_add(&sql, " ORDER BY ");
        for (int i = 0; i < q->nsort; i++) {
            sb_add(&sql, sort_cols[q->sort[i].field]);
            sb_add(&sql, q->sort[i].desc ? " DESC, " : ", ");
        }
        sb_add(&sql, "id");
    }
    char lim[32];
    snprintf(lim, sizeof(lim), " LIMIT %d", q->limit + 1);
    sb_add(&sql, lim);
    if (q->offset > 0 && !q->has_cursor) {
        snprintf(lim, sizeof(lim), " OFFSET %lld", (long long)q->offset);
        sb_add(&sql, lim);
    }

    r = run_bound(c, sql.s, &b, &st, err);
    if (r < 0)
        goto out;
    size_t cap = (size_t)q->limit;
    page.items = rs_xcalloc(cap ? cap : 1, sizeof(struct rs_user));
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (page.count == cap) {
            page.has_more = true;
            break;
        }
        read_user(st, &page.items[page.count++]);
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        r = db_error(c, rc, "list users", err);
        goto out;
    }
    sqlite3_finalize(st);
    st = NULL;
    r = run_bound(c, count_sql.s, &cb_binds, &st, err);
    if (r < 0)
        goto out;
    rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        r = db_error(c, rc, "count users", err);
        goto out;
    }
    page.total = sqlite3_column_int64(st, 0);
    *ret = page;
    memset(&page, 0, sizeof(page));
out:
    sqlite3_finalize(st);
    rs_user_page_release(&page);
    free(sql.s);
    free(count_sql.s);
    filter_owned_release(&own1);
    filter_owned_release(&own2);
    filter_owned_release(&own3);
    return r;
}

/* --- audit --- */

static void bind_nullable_int(sqlite3_stmt *st, int i, int64_t v)
{
    if (v)
        sqlite3_bind_int64(st, i, v);
    else
        sqlite3_bind_null(st, i);
}

static int sq_audit_insert(struct rs_conn *cb, struct rs_audit_event *ev, struct rs_error *err)
{
    struct sq_conn *c = CONN(cb);
    sqlite3_stmt *st = stmt(c, ST_AUDIT_INSERT, err);
    if (!st)
        return -RS_EINTERNAL;
    sqlite3_bind_int64(st, 1, ev->at);
    bind_nullable_int(st, 2, ev->actor_id);
    bind_text(st, 3, ev->actor_name);
    bind_text(st, 4, ev->action);
    bind_text(st, 5, ev->target_type);
    sqlite3_bind_int64(st, 6, ev->target_id);
    bind_text(st, 7, ev->request_id);
    bind_text(st, 8, ev->before_json);
    bind_text(st, 9, ev->after_json);
    bind_text(st, 10, ev->reason);
    int rc = sqlite3_step(st);
    int r = 0;
    if (rc == SQLITE_DONE)
        ev->id = sqlite3_last_insert_rowid(c->db);
    else
        r = db_error(c, rc, "insert audit event", err);
    done(st);
    return r;
}

static json_t *json_col(sqlite3_stmt *st, int i)
{
    const char *t = (const char *)sqlite3_column_text(st, i);
    if (!t)
        return json_null();
    json_t *v = json_loads(t, 0, NULL);
    return v ? v : json_null();
}

static json_t *text_col_json(sqlite3_stmt *st, int i)
{
    const char *t = (const char *)sqlite3_column_text(st, i);
    return t ? json_string(t) : json_null();
}

static int sq_audit_list_target(struct rs_conn *cb, const char *target_type, int64_t target_id,
                                int limit, char **ret_json, struct rs_error *err)
{
    struct sq_conn *c = CONN(cb);
    sqlite3_stmt *st = stmt(c, ST_AUDIT_LIST, err);
    if (!st)
        return -RS_EINTERNAL;
    bind_text(st, 1, target_type);
    sqlite3_bind_int64(st, 2, target_id);
    sqlite3_bind_int(st, 3, limit);
    json_t *arr = json_array();
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        json_t *o = json_object();
        char at[RS_TIME_STR_MAX];
        rs_time_format(sqlite3_column_int64(st, 1), at);
        json_object_set_new(o, "id", json_integer(sqlite3_column_int64(st, 0)));
        json_object_set_new(o, "at", json_string(at));
        json_object_set_new(o, "actor_id", sqlite3_column_type(st, 2) == SQLITE_NULL
                                               ? json_null()
                                               : json_integer(sqlite3_column_int64(st, 2)));
        json_object_set_new(o, "actor_name", text_col_json(st, 3));
        json_object_set_new(o, "action", text_col_json(st, 4));
        json_object_set_new(o, "target_type", text_col_json(st, 5));
        json_object_set_new(o, "target_id", json_integer(sqlite3_column_int64(st, 6)));
        json_object_set_new(o, "request_id", text_col_json(st, 7));
        json_object_set_new(o, "before", json_col(st, 8));
        json_object_set_new(o, "after", json_col(st, 9));
        json_object_set_new(o, "reason", text_col_json(st, 10));
        json_array_append_new(arr, o);
    }
    int r = 0;
    if (rc != SQLITE_DONE)
        r = db_error(c, rc, "list audit events", err);
    done(st);
    if (r == 0)
        *ret_json = json_dumps(arr, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(arr);
    return r;
}

/* --- API keys --- */

static void read_key(sqlite3_stmt *st, struct rs_apikey *k)
{
    rs_apikey_init(k);
    k->id = sqlite3_column_int64(st, 0);
    const char *kid = (const char *)sqlite3_column_text(st, 1);
    rs_strlcpy(k->key_id, kid ? kid : "", sizeof(k->key_id));
    if (sqlite3_column_bytes(st, 2) == RS_APIKEY_HASH_BYTES)
        memcpy(k->secret_hash, sqlite3_column_blob(st, 2), RS_APIKEY_HASH_BYTES);
    k->user_id = sqlite3_column_int64(st, 3);
    k->username = col_text(st, 4);
    k->name = col_text(st, 5);
    k->created_at = sqlite3_column_int64(st, 6);
    k->expires_at = sqlite3_column_int64(st, 7);
    k->revoked_at = sqlite3_column_int64(st, 8);
    k->last_used_at = sqlite3_column_int64(st, 9);
    enum rs_user_type t = RS_USER_STANDARD;
    enum rs_user_status s = RS_STATUS_INACTIVE;
    const char *tv = (const char *)sqlite3_column_text(st, 10);
    const char *sv = (const char *)sqlite3_column_text(st, 11);
    if (!tv || rs_user_type_parse(tv, &t) < 0)
        t = RS_USER_GUEST;
    if (!sv || rs_user_status_parse(sv, &s) < 0)
        s = RS_STATUS_INACTIVE;
    k->owner_type = (int)t;
    k->owner_status = (int)s;
}

static void read_key_item(sqlite3_stmt *st, void *item)
{
    read_key(st, item);
}

static void release_key_item(void *item)
{
    rs_apikey_release(item);
}

static int sq_apikey_insert(struct rs_conn *cb, struct rs_apikey *k, struct rs_error *err)
{
    struct sq_conn *c = CONN(cb);
    sqlite3_stmt *st = stmt(c, ST_KEY_INSERT, err);
    if (!st)
        return -RS_EINTERNAL;
    bind_text(st, 1, k->key_id);
    sqlite3_bind_blob(st, 2, k->secret_hash, RS_APIKEY_HASH_BYTES, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, k->user_id);
    bind_text(st, 4, k->name);
    sqlite3_bind_int64(st, 5, k->created_at);
    bind_nullable_int(st, 6, k->expires_at);
    int rc = sqlite3_step(st);
    int r = 0;
    if (rc == SQLITE_DONE)
        k->id = sqlite3_last_insert_rowid(c->db);
    else
        r = db_error(c, rc, "insert api key", err);
    done(st);
    return r;
}

static int get_one_key(struct sq_conn *c, sqlite3_stmt *st, struct rs_apikey *ret,
                       struct rs_error *err)
{
    int rc = sqlite3_step(st);
    int r = 0;
    if (rc == SQLITE_ROW)
        read_key(st, ret);
    else if (rc == SQLITE_DONE)
        r = -RS_ENOTFOUND;
    else
        r = db_error(c, rc, "get api key", err);
    done(st);
    return r;
}

static int sq_apikey_find(struct rs_conn *cb, const char *key_id, struct rs_apikey *ret,
                          struct rs_error *err)
{
    struct sq_conn *c = CONN(cb);
    sqlite3_stmt *st = stmt(c, ST_KEY_FIND, err);
    if (!st)
        return -RS_EINTERNAL;
    bind_text(st, 1, key_id);
    return get_one_key(c, st, ret, err);
}

static int sq_apikey_get(struct rs_conn *cb, int64_t id, struct rs_apikey *ret,
                         struct rs_error *err)
{
    struct sq_conn *c = CONN(cb);
    sqlite3_stmt *st = stmt(c, ST_KEY_GET, err);
    if (!st)
        return -RS_EINTERNAL;
    sqlite3_bind_int64(st, 1, id);
    return get_one_key(c, st, ret, err);
}

static int sq_apikey_list(struct rs_conn *cb, int64_t user_id, struct rs_apikey **ret_items,
                          size_t *ret_count, struct rs_error *err)
{
    struct sq_conn *c = CONN(cb);
    sqlite3_stmt *st = stmt(c, user_id > 0 ? ST_KEY_LIST_USER : ST_KEY_LIST_ALL, err);
    if (!st)
        return -RS_EINTERNAL;
    if (user_id > 0)
        sqlite3_bind_int64(st, 1, user_id);
    return collect_rows(c, st, sizeof(struct rs_apikey), read_key_item, release_key_item,
                        "list api keys", (void **)ret_items, ret_count, err);
}

static int key_update(struct sq_conn *c, enum stmt_id id, int64_t key, int64_t at,
                      struct rs_error *err)
{
    sqlite3_stmt *st = stmt(c, id, err);
    if (!st)
        return -RS_EINTERNAL;
    sqlite3_bind_int64(st, 1, at);
    sqlite3_bind_int64(st, 2, key);
    int rc = sqlite3_step(st);
    int changes = sqlite3_changes(c->db);
    done(st);
    if (rc != SQLITE_DONE)
        return db_error(c, rc, "update api key", err);
    return changes;
}

static int sq_apikey_revoke(struct rs_conn *cb, int64_t id, int64_t at, struct rs_error *err)
{
    struct sq_conn *c = CONN(cb);
    int changes = key_update(c, ST_KEY_REVOKE, id, at, err);
    if (changes < 0)
        return changes;
    if (changes == 0) {
        struct rs_apikey k;
        int r = sq_apikey_get(cb, id, &k, err);
        if (r < 0)
            return r;
        rs_apikey_release(&k);
        return rs_error_set(err, RS_ECONFLICT, "api key %" PRId64 " is already revoked", id);
    }
    return 0;
}

static int sq_apikey_touch(struct rs_conn *cb, int64_t id, int64_t at, struct rs_error *err)
{
    int changes = key_update(CONN(cb), ST_KEY_TOUCH, id, at, err);
    return changes < 0 ? changes : 0;
}

/* --- managers, counts, settings, custom fields --- */

static int sq_user_manager_chain(struct rs_conn *cb, int64_t from_id, int max, int64_t *ret_ids,
                                 char **ret_names, int *ret_n, struct rs_error *err)
{
    struct sq_conn *c = CONN(cb);
    int n = 0, r = 0;
    int64_t at = from_id;
    while (n < max) {
        sqlite3_stmt *st = stmt(c, ST_MANAGER_OF, err);
        if (!st) {
            r = -RS_EINTERNAL;
            break;
        }
        sqlite3_bind_int64(st, 1, at);
        int rc = sqlite3_step(st);
        if (rc == SQLITE_DONE) {
            done(st);
            break;
        }
        if (rc != SQLITE_ROW) {
            r = db_error(c, rc, "manager chain", err);
            done(st);
            break;
        }
        int64_t m = sqlite3_column_int64(st, 0);
        char *name = col_text(st, 1);
        done(st);
        bool seen = false;
        for (int i = 0; i < n; i++)
            seen = seen || ret_ids[i] == m;
        ret_ids[n] = m;
        ret_names[n] = name;
        n++;
        if (seen)
            break;
        at = m;
    }
    if (r < 0) {
        for (int i = 0; i < n; i++)
            free(ret_names[i]);
        return r;
    }
    *ret_n = n;
    return 0;
}

static int sq_user_count_status(struct rs_conn *cb, enum rs_user_status status, int type,
                                int64_t *ret, struct rs_error *err)
{
    struct sq_conn *c = CONN(cb);
    sqlite3_stmt *st = stmt(c, type < 0 ? ST_COUNT_STATUS : ST_COUNT_STATUS_TYPE, err);
    if (!st)
        return -RS_EINTERNAL;
    bind_text(st, 1, rs_user_status_name(status));
    if (type >= 0)
        bind_text(st, 2, rs_user_type_name((enum rs_user_type)type));
    int rc = sqlite3_step(st);
    int r = 0;
    if (rc == SQLITE_ROW)
        *ret = sqlite3_column_int64(st, 0);
    else
        r = db_error(c, rc, "count users", err);
    done(st);
    return r;
}

static int sq_apikey_revoke_user(struct rs_conn *cb, int64_t user_id, int64_t at,
                                 struct rs_error *err)
{
    int changes = key_update(CONN(cb), ST_KEY_REVOKE_USER, user_id, at, err);
    return changes < 0 ? changes : 0;
}

static int sq_settings_get(struct rs_conn *cb, const char *key, char **ret_json,
                           int64_t *ret_version, struct rs_error *err)
{
    struct sq_conn *c = CONN(cb);
    sqlite3_stmt *st = stmt(c, ST_SETTINGS_GET, err);
    if (!st)
        return -RS_EINTERNAL;
    bind_text(st, 1, key);
    int rc = sqlite3_step(st);
    int r = 0;
    if (rc == SQLITE_ROW) {
        *ret_json = col_text(st, 0);
        *ret_version = sqlite3_column_int64(st, 1);
    } else if (rc == SQLITE_DONE) {
        r = -RS_ENOTFOUND;
    } else {
        r = db_error(c, rc, "get settings", err);
    }
    done(st);
    return r;
}

static int sq_settings_put(struct rs_conn *cb, const char *key, const char *json, int64_t version,
                           int64_t expected_version, int64_t at, struct rs_error *err)
{
    struct sq_conn *c = CONN(cb);
    sqlite3_stmt *st = stmt(c, expected_version == 0 ? ST_SETTINGS_INSERT : ST_SETTINGS_UPDATE,
                            err);
    if (!st)
        return -RS_EINTERNAL;
    if (expected_version == 0) {
        bind_text(st, 1, key);
        bind_text(st, 2, json);
        sqlite3_bind_int64(st, 3, version);
        sqlite3_bind_int64(st, 4, at);
    } else {
        bind_text(st, 1, json);
        sqlite3_bind_int64(st, 2, version);
        sqlite3_bind_int64(st, 3, at);
        bind_text(st, 4, key);
        sqlite3_bind_int64(st, 5, expected_version);
    }
    int rc = sqlite3_step(st);
    int changes = sqlite3_changes(c->db);
    done(st);
    if (rc != SQLITE_DONE)
        return db_error(c, rc, "put settings", err);
    return changes == 1 ? 0 : -RS_EPRECONDITION;
}

static json_t *col_json(sqlite3_stmt *st, int i)
{
    const char *t = (const char *)sqlite3_column_text(st, i);
    return t ? json_loads(t, JSON_DECODE_ANY, NULL) : NULL;
}

static void read_cf(sqlite3_stmt *st, struct rs_custom_field *f)
{
    rs_custom_field_init(f);
    f->id = sqlite3_column_int64(st, 0);
    f->key = col_text(st, 1);
    f->label = col_text(st, 2);
    const char *t = (const char *)sqlite3_column_text(st, 3);
    if (!t || rs_cf_type_parse(t, &f->type) < 0)
        f->type = RS_CF_TEXT;
    f->required = sqlite3_column_int(st, 4) != 0;
    f->default_value = col_json(st, 5);
    f->options = col_json(st, 6);
    f->pattern = col_text(st, 7);
    f->has_min = sqlite3_column_type(st, 8) != SQLITE_NULL;
    f->min = sqlite3_column_double(st, 8);
    f->has_max = sqlite3_column_type(st, 9) != SQLITE_NULL;
    f->max = sqlite3_column_double(st, 9);
    f->active = sqlite3_column_int(st, 10) != 0;
    f->created_at = sqlite3_column_int64(st, 11);
    f->updated_at = sqlite3_column_int64(st, 12);
    f->version = sqlite3_column_int64(st, 13);
}

static void read_cf_item(sqlite3_stmt *st, void *item)
{
    read_cf(st, item);
}

static void release_cf_item(void *item)
{
    rs_custom_field_release(item);
}

static int sq_cf_list(struct rs_conn *cb, struct rs_custom_field **ret_items, size_t *ret_count,
                      struct rs_error *err)
{
    struct sq_conn *c = CONN(cb);
    sqlite3_stmt *st = stmt(c, ST_CF_LIST, err);
    if (!st)
        return -RS_EINTERNAL;
    return collect_rows(c, st, sizeof(struct rs_custom_field), read_cf_item, release_cf_item,
                        "list custom fields", (void **)ret_items, ret_count, err);
}

static char *json_text_or_null(const json_t *v)
{
    return v ? json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
}

static int sq_cf_insert(struct rs_conn *cb, struct rs_custom_field *f, struct rs_error *err)
{
    struct sq_conn *c = CONN(cb);
    sqlite3_stmt *st = stmt(c, ST_CF_INSERT, err);
    if (!st)
        return -RS_EINTERNAL;
    char *def = json_text_or_null(f->default_value), *opts = json_text_or_null(f->options);
    bind_text(st, 1, f->key);
    bind_text(st, 2, f->label);
    bind_text(st, 3, rs_cf_type_name(f->type));
    sqlite3_bind_int(st, 4, f->required);
    bind_text(st, 5, def);
    bind_text(st, 6, opts);
    bind_text(st, 7, f->pattern);
    if (f->has_min)
        sqlite3_bind_double(st, 8, f->min);
    else
        sqlite3_bind_null(st, 8);
    if (f->has_max)
        sqlite3_bind_double(st, 9, f->max);
    else
        sqlite3_bind_null(st, 9);
    sqlite3_bind_int(st, 10, f->active);
    sqlite3_bind_int64(st, 11, f->created_at);
    sqlite3_bind_int64(st, 12, f->updated_at);
    sqlite3_bind_int64(st, 13, f->version);
    int rc = sqlite3_step(st);
    int r = 0;
    if (rc == SQLITE_DONE)
        f->id = sqlite3_last_insert_rowid(c->db);
    else
        r = db_error(c, rc, "insert custom field", err);
    done(st);
    free(def);
    free(opts);
    return r;
}

static int sq_cf_update(struct rs_conn *cb, const struct rs_custom_field *f,
                        int64_t expected_version, struct rs_error *err)
{
    struct sq_conn *c = CONN(cb);
    sqlite3_stmt *st = stmt(c, ST_CF_UPDATE, err);
    if (!st)
        return -RS_EINTERNAL;
    char *def = json_text_or_null(f->default_value), *opts = json_text_or_null(f->options);
    bind_text(st, 1, f->label);
    sqlite3_bind_int(st, 2, f->required);
    bind_text(st, 3, def);
    bind_text(st, 4, opts);
    bind_text(st, 5, f->pattern);
    if (f->has_min)
        sqlite3_bind_double(st, 6, f->min);
    else
        sqlite3_bind_null(st, 6);
    if (f->has_max)
        sqlite3_bind_double(st, 7, f->max);
    else
        sqlite3_bind_null(st, 7);
    sqlite3_bind_int(st, 8, f->active);
    sqlite3_bind_int64(st, 9, f->updated_at);
    sqlite3_bind_int64(st, 10, f->version);
    sqlite3_bind_int64(st, 11, f->id);
    sqlite3_bind_int64(st, 12, expected_version);
    int rc = sqlite3_step(st);
    int changes = sqlite3_changes(c->db);
    done(st);
    free(def);
    free(opts);
    if (rc != SQLITE_DONE)
        return db_error(c, rc, "update custom field", err);
    return changes == 1 ? 0 : -RS_EPRECONDITION;
}

/* --- access: version, resources, roles, groups --- */

static int one_int(struct sq_conn *c, enum stmt_id id, int64_t *ret, struct rs_error *err)
{
    sqlite3_stmt *st = stmt(c, id, err);
    if (!st)
        return -RS_EINTERNAL;
    int rc = sqlite3_step(st);
    int r = 0;
    if (rc == SQLITE_ROW)
        *ret = sqlite3_column_int64(st, 0);
    else
        r = db_error(c, rc, "read", err);
    done(st);
    return r;
}

static int sq_access_version_get(struct rs_conn *cb, int64_t *ret, struct rs_error *err)
{
    return one_int(CONN(cb), ST_AV_GET, ret, err);
}

static int sq_access_version_bump(struct rs_conn *cb, struct rs_error *err)
{
    return step_simple(CONN(cb), ST_AV_BUMP, "bump access version", err);
}

static void read_resource_item(sqlite3_stmt *st, void *item)
{
    struct rs_resource_def *r = item;
    r->key = col_text(st, 0);
    r->label = col_text(st, 1);
    r->module = col_text(st, 2);
    r->built_in = sqlite3_column_int(st, 3) != 0;
    r->created_at = sqlite3_column_int64(st, 4);
}

static void release_resource_item(void *item)
{
    rs_resource_def_release(item);
}

static int sq_resource_list(struct rs_conn *cb, struct rs_resource_def **ret_items,
                            size_t *ret_count, struct rs_error *err)
{
    struct sq_conn *c = CONN(cb);
    sqlite3_stmt *st = stmt(c, ST_RES_LIST, err);
    if (!st)
        return -RS_EINTERNAL;
    return collect_rows(c, st, sizeof(struct rs_resource_def), read_resource_item,
                        release_resource_item, "list resources", (void **)ret_items, ret_count,
                        err);
}

static int sq_resource_insert(struct rs_conn *cb, const struct rs_resource_def *r,
                              struct rs_error *err)
{
    struct sq_conn *c = CONN(cb);
    sqlite3_stmt *st = stmt(c, ST_RES_INSERT, err);
    if (!st)
        return -RS_EINTERNAL;
    bind_text(st, 1, r->key);
    bind_text(st, 2, r->label);
    bind_text(st, 3, r->module ? r->module : "");
    sqlite3_bind_int64(st, 4, r->created_at);
    int rc = sqlite3_step(st);
    int res = rc == SQLITE_DONE ? 0 : db_error(c, rc, "insert resource", err);
    done(st);
    return res;
}

static void read_role_item(sqlite3_stmt *st, void *item)
{
    struct rs_role *r = item;
    rs_role_init(r);
    r->id = sqlite3_column_int64(st, 0);
    r->key = col_text(st, 1);
    r->name = col_text(st, 2);
    r->description = col_text(st, 3);
    r->permissions = col_json(st, 4);
    if (!r->permissions)
        r->permissions = json_object();
    r->built_in = sqlite3_column_int(st, 5) != 0;
    r->active = sqlite3_column_int(st, 6) != 0;
    r->created_at = sqlite3_column_int64(st, 7);
    r->updated_at = sqlite3_column_int64(st, 8);
    r->version = sqlite3_column_int64(st, 9);
}

static void release_role_item(void *item)
{
    rs_role_release(item);
}

static int sq_role_list(struct rs_conn *cb, struct rs_role **ret_items, size_t *ret_count,
                        struct rs_error *err)
{
    struct sq_conn *c = CONN(cb);
    sqlite3_stmt *st = stmt(c, ST_ROLE_LIST, err);
    if (!st)
        return -RS_EINTERNAL;
    return collect_rows(c, st, sizeof(struct rs_role), read_role_item, release_role_item,
                        "list roles", (void **)ret_items, ret_count, err);
}

static int sq_role_insert(struct rs_conn *cb, struct rs_role *r, struct rs_error *err)
{
    struct sq_conn *c = CONN(cb);
    sqlite3_stmt *st = stmt(c, ST_ROLE_INSERT, err);
    if (!st)
        return -RS_EINTERNAL;
    char *perms = json_dumps(r->permissions, JSON_COMPACT | JSON_SORT_KEYS);
    bind_text(st, 1, r->key);
    bind_text(st, 2, r->name);
    bind_text(st, 3, r->description ? r->description : "");
    bind_text(st, 4, perms);
    sqlite3_bind_int(st, 5, r->active);
    sqlite3_bind_int64(st, 6, r->created_at);
    sqlite3_bind_int64(st, 7, r->updated_at);
    sqlite3_bind_int64(st, 8, r->version);
    int rc = sqlite3_step(st);
    int res = 0;
    if (rc == SQLITE_DONE)
        r->id = sqlite3_last_insert_rowid(c->db);
    else
        res = db_error(c, rc, "insert role", err);
    done(st);
    free(perms);
    return res;
}

static int sq_role_update(struct rs_conn *cb, const struct rs_role *r, int64_t expected_version,
                          struct rs_error *err)
{
    struct sq_conn *c = CONN(cb);
    sqlite3_stmt *st = stmt(c, ST_ROLE_UPDATE, err);
    if (!st)
        return -RS_EINTERNAL;
    char *perms = json_dumps(r->permissions, JSON_COMPACT | JSON_SORT_KEYS);
    bind_text(st, 1, r->name);
    bind_text(st, 2, r->description ? r->description : "");
    bind_text(st, 3, perms);
    sqlite3_bind_int(st, 4, r->active);
    sqlite3_bind_int64(st, 5, r->updated_at);
    sqlite3_bind_int64(st, 6, r->version);
    sqlite3_bind_int64(st, 7, r->id);
    sqlite3_bind_int64(st, 8, expected_version);
    int rc = sqlite3_step(st);
    int changes = sqlite3_changes(c->db);
    done(st);
    free(perms);
    if (rc != SQLITE_DONE)
        return db_error(c, rc, "update role", err);
    return changes == 1 ? 0 : -RS_EPRECONDITION;
}

static void read_text_item(sqlite3_stmt *st, void *item)
{
    *(char **)item = col_text(st, 0);
}

static void release_text_item(void *item)
{
    free(*(char **)item);
}

static int sq_user_roles_get(struct rs_conn *cb, int64_t user_id, char ***ret_keys,
                             size_t *ret_count, struct rs_error *err)
{
    struct sq_conn *c = CONN(cb);
    sqlite3_stmt *st = stmt(c, ST_UROLES_GET, err);
    if (!st)
        return -RS_EINTERNAL;
    sqlite3_bind_int64(st, 1, user_id);
    return collect_rows(c, st, sizeof(char *), read_text_item, release_text_item,
                        "list user roles", (void **)ret_keys, ret_count, err);
}

static int sq_user_roles_set(struct rs_conn *cb, int64_t user_id, char *const *keys, size_t n,
                             struct rs_error *err)
{
    struct sq_conn *c = CONN(cb);
    sqlite3_stmt *st = stmt(c, ST_UROLES_DELETE, err);
    if (!st)
        return -RS_EINTERNAL;
    sqlite3_bind_int64(st, 1, user_id);
    int rc = sqlite3_step(st);
    done(st);
    if (rc != SQLITE_DONE)
        return db_error(c, rc, "clear user roles", err);
    for (size_t i = 0; i < n; i++) {
        st = stmt(c, ST_UROLES_INSERT, err);
        if (!st)
            return -RS_EINTERNAL;
        sqlite3_bind_int64(st, 1, user_id);
        bind_text(st, 2, keys[i]);
        rc = sqlite3_step(st);
        done(st);
        if (rc != SQLITE_DONE)
            return db_error(c, rc, "add user role", err);
    }
    return 0;
}

static void read_group_item(sqlite3_stmt *st, void *item)
{
    struct rs_group *g = item;
    rs_group_init(g);
    g->id = sqlite3_column_int64(st, 0);
    g->name = col_text(st, 1);
    g->description = col_text(st, 2);
    g->email = col_text(st, 3);
    g->roles = col_json(st, 4);
    if (!json_is_array(g->roles)) {
        json_decref(g->roles);
        g->roles = json_array();
    }
    g->created_at = sqlite3_column_int64(st, 5);
    g->updated_at = sqlite3_column_int64(st, 6);
    g->version = sqlite3_column_int64(st, 7);
    g->member_count = sqlite3_column_int64(st, 8);
}

static void release_group_item(void *item)
{
    rs_group_release(item);
}

static int sq_group_list(struct rs_conn *cb, struct rs_group **ret_items, size_t *ret_count,
                         struct rs_error *err)
{
    struct sq_conn *c = CONN(cb);
    sqlite3_stmt *st = stmt(c, ST_GROUP_LIST, err);
    if (!st)
        return -RS_EINTERNAL;
    return collect_rows(c, st, sizeof(struct rs_group), read_group_item, release_group_item,
                        "list groups", (void **)ret_items, ret_count, err);
}

static int sq_group_get(struct rs_conn *cb, int64_t id, struct rs_group *ret,
                        struct rs_error *err)
{
    struct sq_conn *c = CONN(cb);
    sqlite3_stmt *st = stmt(c, ST_GROUP_GET, err);
    if (!st)
        return -RS_EINTERNAL;
    sqlite3_bind_int64(st, 1, id);
    int rc = sqlite3_step(st);
    int r = 0;
    if (rc == SQLITE_ROW)
        read_group_item(st, ret);
    else if (rc == SQLITE_DONE)
        r = -RS_ENOTFOUND;
    else
        r = db_error(c, rc, "get group", err);
    done(st);
    return r;
}

/* Binds name .. roles of a group from index i (name, name_key, description,
 * email, roles); returns the next index. *ret_owned holds what to free. */
static int bind_group(sqlite3_stmt *st, int i, const struct rs_group *g, char **owned)
{
    owned[0] = rs_fold_key(g->name);
    owned[1] = json_dumps(g->roles ? g->roles : json_array(), JSON_COMPACT);
    bind_text(st, i++, g->name);
    bind_text(st, i++, owned[0] ? owned[0] : g->name);
    bind_text(st, i++, g->description ? g->description : "");
    bind_text(st, i++, g->email);
    bind_text(st, i++, owned[1]);
    return i;
}

static int sq_group_insert(struct rs_conn *cb, struct rs_group *g, struct rs_error *err)
{
    struct sq_conn *c = CONN(cb);
    sqlite3_stmt *st = stmt(c, ST_GROUP_INSERT, err);
    if (!st)
        return -RS_EINTERNAL;
    char *owned[2] = {0};
    int i = bind_group(st, 1, g, owned);
    sqlite3_bind_int64(st, i++, g->created_at);
    sqlite3_bind_int64(st, i++, g->updated_at);
    sqlite3_bind_int64(st, i, g->version);
    int rc = sqlite3_step(st);
    int r = 0;
    if (rc == SQLITE_DONE)
        g->id = sqlite3_last_insert_rowid(c->db);
    else
        r = db_error(c, rc, "insert group", err);
    done(st);
    free(owned[0]);
    free(owned[1]);
    return r;
}

static int sq_group_update(struct rs_conn *cb, const struct rs_group *g,
                           int64_t expected_version, struct rs_error *err)
{
    struct sq_conn *c = CONN(cb);
    sqlite3_stmt *st = stmt(c, ST_GROUP_UPDATE, err);
    if (!st)
        return -RS_EINTERNAL;
    char *owned[2] = {0};
    int i = bind_group(st, 1, g, owned);
    sqlite3_bind_int64(st, i++, g->updated_at);
    sqlite3_bind_int64(st, i++, g->version);
    sqlite3_bind_int64(st, i++, g->id);
    sqlite3_bind_int64(st, i, expected_version);
    int rc = sqlite3_step(st);
    int changes = sqlite3_changes(c->db);
    done(st);
    free(owned[0]);
    free(owned[1]);
    if (rc != SQLITE_DONE)
        return db_error(c, rc, "update group", err);
    return changes == 1 ? 0 : -RS_EPRECONDITION;
}

static int sq_group_delete(struct rs_conn *cb, int64_t id, struct rs_error *err)
{
    struct sq_conn *c = CONN(cb);
    int r = 0;
    static const enum stmt_id steps[] = {ST_GROUP_MEMBERS_DELETE, ST_GROUP_DELETE};
    for (size_t i = 0; i < RS_ARRAY_LEN(steps) && r == 0; i++) {
        sqlite3_stmt *st = stmt(c, steps[i], err);
        if (!st)
            return -RS_EINTERNAL;
        sqlite3_bind_int64(st, 1, id);
        int rc = sqlite3_step(st);
        done(st);
        if (rc != SQLITE_DONE)
            r = db_error(c, rc, "delete group", err);
    }
    return r;
}

static int sq_group_members_add(struct rs_conn *cb, int64_t group_id, const int64_t *user_ids,
                                size_t n, int64_t at, struct rs_error *err)
{
    struct sq_conn *c = CONN(cb);
    for (size_t i = 0; i < n; i++) {
        int e = user_exists(c, user_ids[i], err);
        if (e < 0)
            return e;
        if (!e)
            return rs_error_field(err, RS_EVALIDATION, "user_ids", "exists",
                                  "user_ids: %lld names no user", (long long)user_ids[i]);
        sqlite3_stmt *st = stmt(c, ST_MEMBER_ADD, err);
        if (!st)
            return -RS_EINTERNAL;
        sqlite3_bind_int64(st, 1, group_id);
        sqlite3_bind_int64(st, 2, user_ids[i]);
        sqlite3_bind_int64(st, 3, at);
        int rc = sqlite3_step(st);
        done(st);
        if (rc != SQLITE_DONE)
            return db_error(c, rc, "add group member", err);
    }
    return 0;
}

static int sq_group_member_remove(struct rs_conn *cb, int64_t group_id, int64_t user_id,
                                  struct rs_error *err)
{
    struct sq_conn *c = CONN(cb);
    sqlite3_stmt *st = stmt(c, ST_MEMBER_REMOVE, err);
    if (!st)
        return -RS_EINTERNAL;
    sqlite3_bind_int64(st, 1, group_id);
    sqlite3_bind_int64(st, 2, user_id);
    int rc = sqlite3_step(st);
    int changes = sqlite3_changes(c->db);
    done(st);
    if (rc != SQLITE_DONE)
        return db_error(c, rc, "remove group member", err);
    return changes ? 0 : -RS_ENOTFOUND;
}

static int sq_groups_of_user(struct rs_conn *cb, int64_t user_id, struct rs_group **ret_items,
                             size_t *ret_count, struct rs_error *err)
{
    struct sq_conn *c = CONN(cb);
    sqlite3_stmt *st = stmt(c, ST_GROUPS_OF_USER, err);
    if (!st)
        return -RS_EINTERNAL;
    sqlite3_bind_int64(st, 1, user_id);
    return collect_rows(c, st, sizeof(struct rs_group), read_group_item, release_group_item,
                        "list user's groups", (void **)ret_items, ret_count, err);
}

static int sq_role_held(struct rs_conn *cb, const char *role_key, bool *ret,
                        struct rs_error *err)
{
    struct sq_conn *c = CONN(cb);
    sqlite3_stmt *st = stmt(c, ST_ROLE_HELD, err);
    if (!st)
        return -RS_EINTERNAL;
    bind_text(st, 1, role_key);
    int rc = sqlite3_step(st);
    int r = 0;
    if (rc == SQLITE_ROW)
        *ret = sqlite3_column_int(st, 0) != 0;
    else
        r = db_error(c, rc, "role held", err);
    done(st);
    return r;
}

/* --- sign-in: credentials, history, recovery codes, sessions, tokens,
 * rate limits, the outbox, leases (docs/design/auth-contract.md) --- */

/* Like db_error, but every foreign key in 0004_auth is a user id: a write
 * for a user that does not exist is "not found", not a manager_id error. */
static int auth_error(struct sq_conn *c, int rc, const char *what, struct rs_error *err)
{
    if (sqlite3_extended_errcode(c->db) == SQLITE_CONSTRAINT_FOREIGNKEY) {
        rs_error_log(err, "sqlite %s: %s", what, sqlite3_errmsg(c->db));
        return rs_error_set(err, RS_ENOTFOUND, "no such user");
    }
    return db_error(c, rc, what, err);
}

/* Steps a statement that writes; returns how many rows it changed, or -code.
 * Resets st. */
static int step_write(struct sq_conn *c, sqlite3_stmt *st, const char *what, struct rs_error *err)
{
    int rc = sqlite3_step(st);
    int r = rc == SQLITE_DONE ? sqlite3_changes(c->db) : auth_error(c, rc, what, err);
    done(st);
    return r;
}

/* Text that is never NULL: NOT NULL columns, defended anyway. */
static char *col_string(sqlite3_stmt *st, int i, const char *none)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    return rs_xstrdup(t ? (const char *)t : none);
}

static void col_copy(sqlite3_stmt *st, int i, char *out, size_t cap)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    rs_strlcpy(out, t ? (const char *)t : "", cap);
}

static void bind_or(sqlite3_stmt *st, int i, const char *v, const char *none)
{
    sqlite3_bind_text(st, i, v ? v : none, -1, SQLITE_STATIC);
}

static void read_int_item(sqlite3_stmt *st, void *item)
{
    *(int64_t *)item = sqlite3_column_int64(st, 0);
}

static void release_nothing(void *item)
{
    (void)item;
}

static int sq_user_get_by_email(struct rs_conn *cb, const char *key, struct rs_user *ret,
                                struct rs_error *err)
{
    struct sq_conn *c = CONN(cb);
    sqlite3_stmt *st = stmt(c, ST_USER_GET_BY_EMAIL, err);
    if (!st)
        return -RS_EINTERNAL;
    bind_text(st, 1, key);
    return get_one_user(c, st, ret, err);
}

static int sq_user_set_last_login(struct rs_conn *cb, int64_t user_id, int64_t at,
                                  struct rs_error *err)
{
    struct sq_conn *c = CONN(cb);
    sqlite3_stmt *st = stmt(c, ST_USER_SET_LAST_LOGIN, err);
    if (!st)
        return -RS_EINTERNAL;
    sqlite3_bind_int64(st, 1, at);
    sqlite3_bind_int64(st, 2, user_id);
    int n = step_write(c, st, "set last login", err);
    return n < 0 ? n : (n ? 0 : -RS_ENOTFOUND);
}

static void read_cred(sqlite3_stmt *st, struct rs_credential *cr)
{
    memset(cr, 0, sizeof(*cr));
    cr->user_id = sqlite3_column_int64(st, 0);
    cr->password_hash = col_string(st, 1, "");
    cr->password_changed_at = sqlite3_column_int64(st, 2);
    cr->must_change = sqlite3_column_int(st, 3) != 0;
    cr->failed_count = sqlite3_column_int(st, 4);
    cr->failed_first_at = sqlite3_column_int64(st, 5);
    cr->locked_until = sqlite3_column_int64(st, 6);
    cr->totp_secret = col_string(st, 7, "");
    cr->totp_pending = col_string(st, 8, "");
    cr->totp_last_step = sqlite3_column_int64(st, 9);
    cr->ip_ranges = col_string(st, 10, "[]");
    cr->expiry_notice_at = sqlite3_column_int64(st, 11);
    cr->privilege_epoch = sqlite3_column_int64(st, 12);
}

/* On SQLite also cred_get_for_update: the one writer connection already
 * serialises read-modify-write. */
static int sq_cred_get(struct rs_conn *cb, int64_t user_id, struct rs_credential *ret,
                       struct rs_error *err)
{
    struct sq_conn *c = CONN(cb);
    sqlite3_stmt *st = stmt(c, ST_CRED_GET, err);
    if (!st)
        return -RS_EINTERNAL;
    sqlite3_bind_int64(st, 1, user_id);
    int rc = sqlite3_step(st);
    int r = 0;
    if (rc == SQLITE_ROW)
        read_cred(st, ret);
    else if (rc == SQLITE_DONE)
        r = -RS_ENOTFOUND;
    else
        r = db_error(c, rc, "get credential", err);
    done(st);
    return r;
}

static int sq_cred_put(struct rs_conn *cb, const struct rs_credential *cr, struct rs_error *err)
{
    struct sq_conn *c = CONN(cb);
    sqlite3_stmt *st = stmt(c, ST_CRED_PUT, err);
    if (!st)
        return -RS_EINTERNAL;
    sqlite3_bind_int64(st, 1, cr->user_id);
    bind_or(st, 2, cr->password_hash, "");
    sqlite3_bind_int64(st, 3, cr->password_changed_at);
    sqlite3_bind_int(st, 4, cr->must_change ? 1 : 0);
    sqlite3_bind_int(st, 5, cr->failed_count);
    sqlite3_bind_int64(st, 6, cr->failed_first_at);
    sqlite3_bind_int64(st, 7, cr->locked_until);
    bind_or(st, 8, cr->totp_secret, "");
    bind_or(st, 9, cr->totp_pending, "");
    sqlite3_bind_int64(st, 10, cr->totp_last_step);
    bind_or(st, 11, cr->ip_ranges, "[]");
    sqlite3_bind_int64(st, 12, cr->expiry_notice_at);
    int n = step_write(c, st, "put credential", err);
    return n < 0 ? n : 0;
}

static int user_ids(struct sq_conn *c, enum stmt_id id, int64_t at, int limit, int64_t **ret_ids,
                    size_t *ret_n, const char *what, struct rs_error *err)
{
    sqlite3_stmt *st = stmt(c, id, err);
    if (!st)
        return -RS_EINTERNAL;
    sqlite3_bind_int64(st, 1, at);
    sqlite3_bind_int(st, 2, limit > 0 ? limit : 0);
    return collect_rows(c, st, sizeof(int64_t), read_int_item, release_nothing, what,
                        (void **)ret_ids, ret_n, err);
}

static int sq_cred_expiring(struct rs_conn *cb, int64_t changed_before, int limit,
                            int64_t **ret_ids, size_t *ret_n, struct rs_error *err)
{
    return user_ids(CONN(cb), ST_CRED_EXPIRING, changed_before, limit, ret_ids, ret_n,
                    "list expiring passwords", err);
}

static int sq_cred_lock_expired(struct rs_conn *cb, int64_t now, int limit, int64_t **ret_ids,
                                size_t *ret_n, struct rs_error *err)
{
    return user_ids(CONN(cb), ST_CRED_LOCK_EXPIRED, now, limit, ret_ids, ret_n,
                    "list expired locks", err);
}

static int sq_pwhist_add(struct rs_conn *cb, int64_t user_id, const char *hash, int64_t at,
                         int keep, struct rs_error *err)
{
    struct sq_conn *c = CONN(cb);
    sqlite3_stmt *st = stmt(c, ST_PWHIST_INSERT, err);
    if (!st)
        return -RS_EINTERNAL;
    sqlite3_bind_int64(st, 1, user_id);
    bind_or(st, 2, hash, "");
    sqlite3_bind_int64(st, 3, at);
    int n = step_write(c, st, "add password history", err);
    if (n < 0)
        return n;
    st = stmt(c, ST_PWHIST_TRIM, err);
    if (!st)
        return -RS_EINTERNAL;
    sqlite3_bind_int64(st, 1, user_id);
    sqlite3_bind_int(st, 2, keep > 0 ? keep : 0);
    n = step_write(c, st, "trim password history", err);
    return n < 0 ? n : 0;
}

static int sq_pwhist_list(struct rs_conn *cb, int64_t user_id, int limit, char ***ret_hashes,
                          size_t *ret_n, struct rs_error *err)
{
    struct sq_conn *c = CONN(cb);
    sqlite3_stmt *st = stmt(c, ST_PWHIST_LIST, err);
    if (!st)
        return -RS_EINTERNAL;
    sqlite3_bind_int64(st, 1, user_id);
    sqlite3_bind_int(st, 2, limit > 0 ? limit : 0);
    return collect_rows(c, st, sizeof(char *), read_text_item, release_text_item,
                        "list password history", (void **)ret_hashes, ret_n, err);
}

static int sq_recovery_set(struct rs_conn *cb, int64_t user_id, char *const *code_hashes, size_t n,
                           struct rs_error *err)
{
    struct sq_conn *c = CONN(cb);
    sqlite3_stmt *st = stmt(c, ST_RECOVERY_DELETE, err);
    if (!st)
        return -RS_EINTERNAL;
    sqlite3_bind_int64(st, 1, user_id);
    int r = step_write(c, st, "clear recovery codes", err);
    for (size_t i = 0; i < n && r >= 0; i++) {
        st = stmt(c, ST_RECOVERY_INSERT, err);
        if (!st)
            return -RS_EINTERNAL;
        sqlite3_bind_int64(st, 1, user_id);
        bind_text(st, 2, code_hashes[i]);
        r = step_write(c, st, "add recovery code", err);
    }
    return r < 0 ? r : 0;
}

static int sq_recovery_use(struct rs_conn *cb, int64_t user_id, const char *code_hash, int64_t at,
                           bool *ret_used, struct rs_error *err)
{
    struct sq_conn *c = CONN(cb);
    sqlite3_stmt *st = stmt(c, ST_RECOVERY_USE, err);
    if (!st)
        return -RS_EINTERNAL;
    sqlite3_bind_int64(st, 1, at);
    sqlite3_bind_int64(st, 2, user_id);
    bind_or(st, 3, code_hash, "");
    int n = step_write(c, st, "use recovery code", err);
    if (n < 0)
        return n;
    *ret_used = n > 0;
    return 0;
}

static int sq_recovery_count(struct rs_conn *cb, int64_t user_id, int *ret, struct rs_error *err)
{
    struct sq_conn *c = CONN(cb);
    sqlite3_stmt *st = stmt(c, ST_RECOVERY_COUNT, err);
    if (!st)
        return -RS_EINTERNAL;
    sqlite3_bind_int64(st, 1, user_id);
    int rc = sqlite3_step(st);
    int r = 0;
    if (rc == SQLITE_ROW)
        *ret = sqlite3_column_int(st, 0);
    else
        r = db_error(c, rc, "count recovery codes", err);
    done(st);
    return r;
}

static void read_session_item(sqlite3_stmt *st, void *item)
{
    struct rs_session *s = item;
    memset(s, 0, sizeof(*s));
    s->id = sqlite3_column_int64(st, 0);
    col_copy(st, 1, s->token_hash, sizeof(s->token_hash));
    s->user_id = sqlite3_column_int64(st, 2);
    s->created_at = sqlite3_column_int64(st, 3);
    s->last_seen_at = sqlite3_column_int64(st, 4);
    s->expires_at = sqlite3_column_int64(st, 5);
    s->ip = col_string(st, 6, "");
    s->user_agent = col_string(st, 7, "");
    s->flags = (unsigned)sqlite3_column_int64(st, 8);
    col_copy(st, 9, s->csrf_seed, sizeof(s->csrf_seed));
    s->privilege_epoch = sqlite3_column_int64(st, 10);
    s->user_epoch = sqlite3_column_int64(st, 11);
}

static void release_session_item(void *item)
{
    rs_session_release(item);
}

static int sq_session_insert(struct rs_conn *cb, struct rs_session *s, struct rs_error *err)
{
    struct sq_conn *c = CONN(cb);
    sqlite3_stmt *st = stmt(c, ST_SESSION_INSERT, err);
    if (!st)
        return -RS_EINTERNAL;
    bind_text(st, 1, s->token_hash);
    sqlite3_bind_int64(st, 2, s->user_id);
    sqlite3_bind_int64(st, 3, s->created_at);
    sqlite3_bind_int64(st, 4, s->last_seen_at);
    sqlite3_bind_int64(st, 5, s->expires_at);
    bind_or(st, 6, s->ip, "");
    bind_or(st, 7, s->user_agent, "");
    sqlite3_bind_int64(st, 8, s->flags);
    bind_or(st, 9, s->csrf_seed, "");
    sqlite3_bind_int64(st, 10, s->privilege_epoch);
    int n = step_write(c, st, "insert session", err);
    if (n < 0)
        return n;
    s->id = sqlite3_last_insert_rowid(c->db);
    return 0;
}

static int get_one_session(struct sq_conn *c, sqlite3_stmt *st, struct rs_session *ret,
                           struct rs_error *err)
{
    int rc = sqlite3_step(st);
    int r = 0;
    if (rc == SQLITE_ROW)
        read_session_item(st, ret);
    else if (rc == SQLITE_DONE)
        r = -RS_ENOTFOUND;
    else
        r = db_error(c, rc, "get session", err);
    done(st);
    return r;
}

static int sq_session_find(struct rs_conn *cb, const char *token_hash, struct rs_session *ret,
                           struct rs_error *err)
{
    struct sq_conn *c = CONN(cb);
    sqlite3_stmt *st = stmt(c, ST_SESSION_FIND, err);
    if (!st)
        return -RS_EINTERNAL;
    bind_or(st, 1, token_hash, "");
    return get_one_session(c, st, ret, err);
}

static int sq_session_get(struct rs_conn *cb, int64_t id, struct rs_session *ret,
                          struct rs_error *err)
{
    struct sq_conn *c = CONN(cb);
    sqlite3_stmt *st = stmt(c, ST_SESSION_GET, err);
    if (!st)
        return -RS_EINTERNAL;
    sqlite3_bind_int64(st, 1, id);
    return get_one_session(c, st, ret, err);
}

/* Binds (value, id) to a one-row UPDATE or DELETE by id; returns rows changed or -code. */
static int update_by_id(struct sq_conn *c, enum stmt_id id, int64_t value, bool has_value,
                        int64_t row, const char *what, struct rs_error *err)
{
    sqlite3_stmt *st = stmt(c, id, err);
    if (!st)
        return -RS_EINTERNAL;
    int i = 1;
    if (has_value)
        sqlite3_bind_int64(st, i++, value);
    sqlite3_bind_int64(st, i, row);
    return step_write(c, st, what, err);
}

/* A session ended meanwhile is not an error: there is nothing to touch. */
static int sq_session_touch(struct rs_conn *cb, int64_t id, int64_t at, struct rs_error *err)
{
    int n = update_by_id(CONN(cb), ST_SESSION_TOUCH, at, true, id, "touch session", err);
    return n < 0 ? n : 0;
}

static int sq_session_set_flags(struct rs_conn *cb, int64_t id, unsigned flags,
                                struct rs_error *err)
{
    int n = update_by_id(CONN(cb), ST_SESSION_FLAGS, flags, true, id, "set session flags", err);
    return n < 0 ? n : (n ? 0 : -RS_ENOTFOUND);
}

static int sq_session_delete(struct rs_conn *cb, int64_t id, struct rs_error *err)
{
    int n = update_by_id(CONN(cb), ST_SESSION_DELETE, 0, false, id, "delete session", err);
    return n < 0 ? n : (n ? 0 : -RS_ENOTFOUND);
}

static int sq_session_delete_user(struct rs_conn *cb, int64_t user_id, int64_t except_id,
                                  int *ret_n, struct rs_error *err)
{
    struct sq_conn *c = CONN(cb);
    sqlite3_stmt *st = stmt(c, ST_SESSION_DELETE_USER, err);
    if (!st)
        return -RS_EINTERNAL;
    sqlite3_bind_int64(st, 1, user_id);
    sqlite3_bind_int64(st, 2, except_id); /* 0 is no session's id */
    int n = step_write(c, st, "delete user's sessions", err);
    if (n < 0)
        return n;
    *ret_n = n;
    return 0;
}

static int sq_session_list_user(struct rs_conn *cb, int64_t user_id, struct rs_session **ret,
                                size_t *ret_n, struct rs_error *err)
{
    struct sq_conn *c = CONN(cb);
    sqlite3_stmt *st = stmt(c, ST_SESSION_LIST_USER, err);
    if (!st)
        return -RS_EINTERNAL;
    sqlite3_bind_int64(st, 1, user_id);
    return collect_rows(c, st, sizeof(struct rs_session), read_session_item, release_session_item,
                        "list sessions", (void **)ret, ret_n, err);
}

static int sq_session_purge(struct rs_conn *cb, int64_t now, int64_t idle_before, int *ret_n,
                            struct rs_error *err)
{
    struct sq_conn *c = CONN(cb);
    sqlite3_stmt *st = stmt(c, ST_SESSION_PURGE, err);
    if (!st)
        return -RS_EINTERNAL;
    sqlite3_bind_int64(st, 1, now);
    sqlite3_bind_int64(st, 2, idle_before);
    int n = step_write(c, st, "purge sessions", err);
    if (n < 0)
        return n;
    st = stmt(c, ST_SESSION_SUCC_PURGE, err);
    if (!st)
        return -RS_EINTERNAL;
    sqlite3_bind_int64(st, 1, now);
    int m = step_write(c, st, "purge session successors", err);
    if (m < 0)
        return m;
    *ret_n = n;
    return 0;
}

static int sq_session_successor_put(struct rs_conn *cb, const char *token_hash, int64_t old_id,
                                    int64_t new_id, int64_t until, struct rs_error *err)
{
    struct sq_conn *c = CONN(cb);
    sqlite3_stmt *st = stmt(c, ST_SESSION_SUCC_MOVE, err);
    if (!st)
        return -RS_EINTERNAL;
    sqlite3_bind_int64(st, 1, new_id);
    sqlite3_bind_int64(st, 2, old_id);
    int n = step_write(c, st, "move session successors", err);
    if (n < 0)
        return n;
    st = stmt(c, ST_SESSION_SUCC_INSERT, err);
    if (!st)
        return -RS_EINTERNAL;
    bind_text(st, 1, token_hash);
    sqlite3_bind_int64(st, 2, new_id);
    sqlite3_bind_int64(st, 3, until);
    n = step_write(c, st, "insert session successor", err);
    return n < 0 ? n : 0;
}

static int sq_session_successor_find(struct rs_conn *cb, const char *token_hash, int64_t now,
                                     int64_t *ret_id, struct rs_error *err)
{
    struct sq_conn *c = CONN(cb);
    sqlite3_stmt *st = stmt(c, ST_SESSION_SUCC_FIND, err);
    if (!st)
        return -RS_EINTERNAL;
    bind_or(st, 1, token_hash, "");
    sqlite3_bind_int64(st, 2, now);
    int rc = sqlite3_step(st);
    int r = 0;
    if (rc == SQLITE_ROW)
        *ret_id = sqlite3_column_int64(st, 0);
    else if (rc == SQLITE_DONE)
        r = -RS_ENOTFOUND;
    else
        r = db_error(c, rc, "find session successor", err);
    done(st);
    return r;
}

static int sq_cred_privilege_bump(struct rs_conn *cb, const int64_t *user_ids, size_t n,
                                  struct rs_error *err)
{
    struct sq_conn *c = CONN(cb);
    for (size_t i = 0; i < n; i++) {
        sqlite3_stmt *st = stmt(c, ST_CRED_PRIV_BUMP, err);
        if (!st)
            return -RS_EINTERNAL;
        sqlite3_bind_int64(st, 1, user_ids[i]);
        int k = step_write(c, st, "bump privilege epoch", err);
        if (k < 0)
            return k;
    }
    return 0;
}

static int sq_cred_privilege_bump_group(struct rs_conn *cb, int64_t group_id,
                                        struct rs_error *err)
{
    struct sq_conn *c = CONN(cb);
    sqlite3_stmt *st = stmt(c, ST_CRED_PRIV_BUMP_GROUP, err);
    if (!st)
        return -RS_EINTERNAL;
    sqlite3_bind_int64(st, 1, group_id);
    int k = step_write(c, st, "bump privilege epoch of group members", err);
    return k < 0 ? k : 0;
}

static int sq_cred_privilege_bump_role(struct rs_conn *cb, const char *role_key,
                                       struct rs_error *err)
{
    struct sq_conn *c = CONN(cb);
    sqlite3_stmt *st = stmt(c, ST_CRED_PRIV_BUMP_ROLE, err);
    if (!st)
        return -RS_EINTERNAL;
    bind_text(st, 1, role_key);
    int k = step_write(c, st, "bump privilege epoch of role holders", err);
    return k < 0 ? k : 0;
}

static int sq_cred_privilege_bump_all(struct rs_conn *cb, struct rs_error *err)
{
    struct sq_conn *c = CONN(cb);
    sqlite3_stmt *st = stmt(c, ST_CRED_PRIV_BUMP_ALL, err);
    if (!st)
        return -RS_EINTERNAL;
    int k = step_write(c, st, "bump privilege epoch of every user", err);
    return k < 0 ? k : 0;
}

static int sq_token_insert(struct rs_conn *cb, struct rs_auth_token *t, struct rs_error *err)
{
    struct sq_conn *c = CONN(cb);
    sqlite3_stmt *st = stmt(c, ST_TOKEN_INSERT, err);
    if (!st)
        return -RS_EINTERNAL;
    bind_text(st, 1, t->token_hash);
    bind_text(st, 2, t->kind);
    sqlite3_bind_int64(st, 3, t->user_id);
    sqlite3_bind_int64(st, 4, t->created_at);
    sqlite3_bind_int64(st, 5, t->expires_at);
    sqlite3_bind_int64(st, 6, t->used_at);
    sqlite3_bind_int64(st, 7, t->pw_changed_at);
    int n = step_write(c, st, "insert token", err);
    if (n < 0)
        return n;
    t->id = sqlite3_last_insert_rowid(c->db);
    return 0;
}

static int sq_token_find(struct rs_conn *cb, const char *token_hash, struct rs_auth_token *ret,
                         struct rs_error *err)
{
    struct sq_conn *c = CONN(cb);
    sqlite3_stmt *st = stmt(c, ST_TOKEN_FIND, err);
    if (!st)
        return -RS_EINTERNAL;
    bind_or(st, 1, token_hash, "");
    int rc = sqlite3_step(st);
    int r = 0;
    if (rc == SQLITE_ROW) {
        memset(ret, 0, sizeof(*ret));
        ret->id = sqlite3_column_int64(st, 0);
        col_copy(st, 1, ret->token_hash, sizeof(ret->token_hash));
        col_copy(st, 2, ret->kind, sizeof(ret->kind));
        ret->user_id = sqlite3_column_int64(st, 3);
        ret->created_at = sqlite3_column_int64(st, 4);
        ret->expires_at = sqlite3_column_int64(st, 5);
        ret->used_at = sqlite3_column_int64(st, 6);
        ret->pw_changed_at = sqlite3_column_int64(st, 7);
    } else if (rc == SQLITE_DONE) {
        r = -RS_ENOTFOUND;
    } else {
        r = db_error(c, rc, "find token", err);
    }
    done(st);
    return r;
}

/* 0 rows: already used (or gone), so the caller lost a race for it. */
static int sq_token_use(struct rs_conn *cb, int64_t id, int64_t at, struct rs_error *err)
{
    int n = update_by_id(CONN(cb), ST_TOKEN_USE, at, true, id, "use token", err);
    return n < 0 ? n : (n ? 0 : -RS_ENOTFOUND);
}

static int sq_token_void_user(struct rs_conn *cb, int64_t user_id, const char *kind, int64_t at,
                              struct rs_error *err)
{
    struct sq_conn *c = CONN(cb);
    sqlite3_stmt *st = stmt(c, kind ? ST_TOKEN_VOID_USER_KIND : ST_TOKEN_VOID_USER, err);
    if (!st)
        return -RS_EINTERNAL;
    sqlite3_bind_int64(st, 1, at);
    sqlite3_bind_int64(st, 2, user_id);
    if (kind)
        bind_text(st, 3, kind);
    int n = step_write(c, st, "void tokens", err);
    return n < 0 ? n : 0;
}

/* add 0 reads on any connection and writes nothing; add > 0 is one upsert,
 * which is atomic with every other hit on the key, in this process or not. */
static int sq_rate_hit(struct rs_conn *cb, const char *key, int64_t now, int64_t window_ms, int add,
                       int64_t *ret_count, int64_t *ret_window_start, struct rs_error *err)
{
    struct sq_conn *c = CONN(cb);
    sqlite3_stmt *st = stmt(c, add ? ST_RATE_HIT : ST_RATE_GET, err);
    if (!st)
        return -RS_EINTERNAL;
    bind_text(st, 1, key);
    if (add) {
        sqlite3_bind_int64(st, 2, now);
        sqlite3_bind_int64(st, 3, window_ms);
        sqlite3_bind_int(st, 4, add);
    }
    int64_t count = 0, start = now;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        int64_t stored_count = sqlite3_column_int64(st, 0);
        int64_t stored_start = sqlite3_column_int64(st, 1);
        /* A read applies the same rule as the upsert: an old window is gone. */
        if (add || stored_start >= now - window_ms) {
            count = stored_count;
            start = stored_start;
        }
        rc = sqlite3_step(st); /* RETURNING: finish the statement */
    }
    int r = rc == SQLITE_DONE ? 0 : auth_error(c, rc, "rate limit", err);
    done(st);
    if (r < 0)
        return r;
    *ret_count = count;
    *ret_window_start = start;
    return 0;
}

static int sq_rate_reset(struct rs_conn *cb, const char *key, struct rs_error *err)
{
    struct sq_conn *c = CONN(cb);
    sqlite3_stmt *st = stmt(c, ST_RATE_RESET, err);
    if (!st)
        return -RS_EINTERNAL;
    bind_text(st, 1, key);
    int n = step_write(c, st, "reset rate limit", err);
    return n < 0 ? n : 0;
}

static int sq_rate_purge(struct rs_conn *cb, int64_t before, struct rs_error *err)
{
    struct sq_conn *c = CONN(cb);
    sqlite3_stmt *st = stmt(c, ST_RATE_PURGE, err);
    if (!st)
        return -RS_EINTERNAL;
    sqlite3_bind_int64(st, 1, before);
    int n = step_write(c, st, "purge rate limits", err);
    return n < 0 ? n : 0;
}

static void read_mail_item(sqlite3_stmt *st, void *item)
{
    struct rs_mail *m = item;
    memset(m, 0, sizeof(*m));
    m->id = sqlite3_column_int64(st, 0);
    m->created_at = sqlite3_column_int64(st, 1);
    m->kind = col_string(st, 2, "");
    m->user_id = sqlite3_column_int64(st, 3);
    m->to_addr = col_string(st, 4, "");
    m->subject = col_string(st, 5, "");
    m->message = col_string(st, 6, "");
    m->status = col_string(st, 7, "");
    m->attempts = sqlite3_column_int(st, 8);
    m->next_attempt_at = sqlite3_column_int64(st, 9);
    m->sent_at = sqlite3_column_int64(st, 10);
    m->last_error = col_string(st, 11, "");
}

static void release_mail_item(void *item)
{
    rs_mail_release(item);
}

static int sq_mail_insert(struct rs_conn *cb, struct rs_mail *m, struct rs_error *err)
{
    struct sq_conn *c = CONN(cb);
    sqlite3_stmt *st = stmt(c, ST_MAIL_INSERT, err);
    if (!st)
        return -RS_EINTERNAL;
    sqlite3_bind_int64(st, 1, m->created_at);
    bind_text(st, 2, m->kind);
    sqlite3_bind_int64(st, 3, m->user_id);
    bind_text(st, 4, m->to_addr);
    bind_text(st, 5, m->subject);
    bind_text(st, 6, m->message);
    sqlite3_bind_int64(st, 7, m->next_attempt_at);
    int n = step_write(c, st, "queue mail", err);
    if (n < 0)
        return n;
    m->id = sqlite3_last_insert_rowid(c->db);
    return 0;
}

static int sq_mail_due(struct rs_conn *cb, int64_t now, int max, struct rs_mail **ret,
                       size_t *ret_n, struct rs_error *err)
{
    struct sq_conn *c = CONN(cb);
    sqlite3_stmt *st = stmt(c, ST_MAIL_DUE, err);
    if (!st)
        return -RS_EINTERNAL;
    sqlite3_bind_int64(st, 1, now);
    sqlite3_bind_int(st, 2, max > 0 ? max : 0);
    return collect_rows(c, st, sizeof(struct rs_mail), read_mail_item, release_mail_item,
                        "list due mail", (void **)ret, ret_n, err);
}

static int sq_mail_mark_sent(struct rs_conn *cb, int64_t id, int64_t at, struct rs_error *err)
{
    int n = update_by_id(CONN(cb), ST_MAIL_SENT, at, true, id, "mark mail sent", err);
    return n < 0 ? n : (n ? 0 : -RS_ENOTFOUND);
}

static int sq_mail_mark_retry(struct rs_conn *cb, int64_t id, int attempts, int64_t next_attempt_at,
                              const char *last_error, bool give_up, struct rs_error *err)
{
    struct sq_conn *c = CONN(cb);
    sqlite3_stmt *st = stmt(c, ST_MAIL_RETRY, err);
    if (!st)
        return -RS_EINTERNAL;
    sqlite3_bind_int(st, 1, attempts);
    sqlite3_bind_int64(st, 2, next_attempt_at);
    bind_or(st, 3, last_error, "");
    sqlite3_bind_int(st, 4, give_up ? 1 : 0);
    sqlite3_bind_int64(st, 5, id);
    int n = step_write(c, st, "mark mail for retry", err);
    return n < 0 ? n : (n ? 0 : -RS_ENOTFOUND);
}

static int sq_mail_list(struct rs_conn *cb, const char *status, int64_t user_id, int limit,
                        struct rs_mail **ret, size_t *ret_n, struct rs_error *err)
{
    struct sq_conn *c = CONN(cb);
    enum stmt_id id = user_id ? (status ? ST_MAIL_LIST_USER_STATUS : ST_MAIL_LIST_USER)
                              : (status ? ST_MAIL_LIST_STATUS : ST_MAIL_LIST_ALL);
    sqlite3_stmt *st = stmt(c, id, err);
    if (!st)
        return -RS_EINTERNAL;
    int i = 1;
    if (user_id)
        sqlite3_bind_int64(st, i++, user_id);
    if (status)
        bind_text(st, i++, status);
    sqlite3_bind_int(st, i, limit > 0 ? limit : 0);
    return collect_rows(c, st, sizeof(struct rs_mail), read_mail_item, release_mail_item,
                        "list mail", (void **)ret, ret_n, err);
}

/* Called on the writer without begin(): the one statement is its own
 * transaction, and SQLite's write lock makes it atomic across processes. */
static int sq_lease_acquire(struct rs_conn *cb, const char *name, const char *owner, int64_t now,
                            int64_t until, bool *ret_got, struct rs_error *err)
{
    struct sq_conn *c = CONN(cb);
    sqlite3_stmt *st = stmt(c, ST_LEASE_ACQUIRE, err);
    if (!st)
        return -RS_EINTERNAL;
    bind_text(st, 1, name);
    bind_text(st, 2, owner);
    sqlite3_bind_int64(st, 3, now);
    sqlite3_bind_int64(st, 4, until);
    int n = step_write(c, st, "acquire lease", err);
    if (n < 0)
        return n;
    *ret_got = n > 0;
    return 0;
}

static int sq_lease_release(struct rs_conn *cb, const char *name, const char *owner,
                            struct rs_error *err)
{
    struct sq_conn *c = CONN(cb);
    sqlite3_stmt *st = stmt(c, ST_LEASE_RELEASE, err);
    if (!st)
        return -RS_EINTERNAL;
    bind_text(st, 1, name);
    bind_text(st, 2, owner);
    int n = step_write(c, st, "release lease", err);
    return n < 0 ? n : 0;
}

static int sq_work_insert(struct rs_conn *cb, struct rs_work *w, struct rs_error *err)
{
    struct sq_conn *c = CONN(cb);
    sqlite3_stmt *st = stmt(c, ST_WORK_INSERT, err);
    if (!st)
        return -RS_EINTERNAL;
    bind_text(st, 1, w->kind);
    bind_text(st, 2, w->payload);
    sqlite3_bind_int64(st, 3, w->created_at);
    int n = step_write(c, st, "queue work", err);
    if (n < 0)
        return n;
    w->id = sqlite3_last_insert_rowid(c->db);
    return 0;
}

static void read_work_item(sqlite3_stmt *st, void *item)
{
    struct rs_work *w = item;
    w->id = sqlite3_column_int64(st, 0);
    w->kind = col_string(st, 1, "");
    w->payload = col_string(st, 2, "");
    w->created_at = sqlite3_column_int64(st, 3);
}

static void release_work_item(void *item)
{
    rs_work_release(item);
}

static int sq_work_due(struct rs_conn *cb, const char *kind, int max, struct rs_work **ret,
                       size_t *ret_n, struct rs_error *err)
{
    struct sq_conn *c = CONN(cb);
    sqlite3_stmt *st = stmt(c, ST_WORK_DUE, err);
    if (!st)
        return -RS_EINTERNAL;
    bind_text(st, 1, kind);
    sqlite3_bind_int(st, 2, max > 0 ? max : 0);
    return collect_rows(c, st, sizeof(struct rs_work), read_work_item, release_work_item,
                        "list queued work", (void **)ret, ret_n, err);
}

static int sq_work_take(struct rs_conn *cb, int64_t id, struct rs_error *err)
{
    int n = update_by_id(CONN(cb), ST_WORK_TAKE, 0, false, id, "take queued work", err);
    return n < 0 ? n : (n ? 0 : -RS_ENOTFOUND);
}

static const struct rs_store_ops sqlite_ops = {
    .name = "sqlite",
    .reads_inline = true,
    .read_keep = sq_read_keep,
    .read_kept = sq_read_kept,
    .read_drop = sq_read_drop,
    .close = sq_close,
    .migrate = sq_migrate,
    .schema_version = sq_schema_version,
    .stats = sq_stats,
    .acquire = sq_acquire,
    .release = sq_release,
    .ping = sq_ping,
    .begin = sq_begin,
    .commit = sq_commit,
    .rollback = sq_rollback,
    .user_insert = sq_user_insert,
    .user_get = sq_user_get,
    .user_get_by_username = sq_user_get_by_username,
    .user_update = sq_user_update,
    /* The one writer connection already serialises read-modify-write. */
    .user_get_for_update = sq_user_get,
    .user_list = sq_user_list,
    .users_exist = sq_users_exist,
    .user_manager_chain = sq_user_manager_chain,
    .user_count_status = sq_user_count_status,
    .apikey_revoke_user = sq_apikey_revoke_user,
    .settings_get = sq_settings_get,
    .settings_put = sq_settings_put,
    .access_version_get = sq_access_version_get,
    .access_version_bump = sq_access_version_bump,
    .resource_list = sq_resource_list,
    .resource_insert = sq_resource_insert,
    .role_list = sq_role_list,
    .role_insert = sq_role_insert,
    .role_update = sq_role_update,
    .user_roles_get = sq_user_roles_get,
    .user_roles_set = sq_user_roles_set,
    .group_list = sq_group_list,
    .group_get = sq_group_get,
    .group_insert = sq_group_insert,
    .group_update = sq_group_update,
    .group_delete = sq_group_delete,
    .group_members_add = sq_group_members_add,
    .group_member_remove = sq_group_member_remove,
    .groups_of_user = sq_groups_of_user,
    .role_held = sq_role_held,
    .cf_list = sq_cf_list,
    .cf_insert = sq_cf_insert,
    .cf_update = sq_cf_update,
    .audit_insert = sq_audit_insert,
    .audit_list_target = sq_audit_list_target,
    .apikey_insert = sq_apikey_insert,
    .apikey_find = sq_apikey_find,
    .apikey_list = sq_apikey_list,
    .apikey_get = sq_apikey_get,
    .apikey_revoke = sq_apikey_revoke,
    .apikey_touch = sq_apikey_touch,
    .user_get_by_email = sq_user_get_by_email,
    .user_set_last_login = sq_user_set_last_login,
    .cred_get = sq_cred_get,
    /* As for users: the one writer connection already serialises. */
    .cred_get_for_update = sq_cred_get,
    .cred_put = sq_cred_put,
    .cred_expiring = sq_cred_expiring,
    .cred_lock_expired = sq_cred_lock_expired,
    .pwhist_add = sq_pwhist_add,
    .pwhist_list = sq_pwhist_list,
    .recovery_set = sq_recovery_set,
    .recovery_use = sq_recovery_use,
    .recovery_count = sq_recovery_count,
    .session_insert = sq_session_insert,
    .session_find = sq_session_find,
    .session_get = sq_session_get,
    .session_touch = sq_session_touch,
    .session_set_flags = sq_session_set_flags,
    .session_delete = sq_session_delete,
    .session_delete_user = sq_session_delete_user,
    .session_list_user = sq_session_list_user,
    .session_purge = sq_session_purge,
    .session_successor_put = sq_session_successor_put,
    .session_successor_find = sq_session_successor_find,
    .cred_privilege_bump = sq_cred_privilege_bump,
    .cred_privilege_bump_group = sq_cred_privilege_bump_group,
    .cred_privilege_bump_role = sq_cred_privilege_bump_role,
    .cred_privilege_bump_all = sq_cred_privilege_bump_all,
    .token_insert = sq_token_insert,
    .token_find = sq_token_find,
    .token_use = sq_token_use,
    .token_void_user = sq_token_void_user,
    .rate_hit = sq_rate_hit,
    .rate_reset = sq_rate_reset,
    .rate_purge = sq_rate_purge,
    .mail_insert = sq_mail_insert,
    .mail_due = sq_mail_due,
    .mail_mark_sent = sq_mail_mark_sent,
    .mail_mark_retry = sq_mail_mark_retry,
    .mail_list = sq_mail_list,
    .work_insert = sq_work_insert,
    .work_due = sq_work_due,
    .work_take = sq_work_take,
    .lease_acquire = sq_lease_acquire,
    .lease_release = sq_lease_release,
};

/* With memory statistics on (SQLite's default, and Debian's), every
 * allocation and free takes a process-wide mutex to count itself; roster
 * reads no statistics and sets no heap limit, and a create makes ~350 of
 * them. The setting must come before SQLite initialises (the first open or
 * VFS lookup); in a process that used SQLite earlier it is refused, which
 * changes nothing else. */
static pthread_once_t sq_config_once = PTHREAD_ONCE_INIT;

static void sq_config(void)
{
    (void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

int rs_sqlite_open(const struct rs_store_config *cfg, const char *path, struct rs_store **ret,
                   struct rs_error *err)
{
    if (!sqlite3_threadsafe())
        return rs_error_set(err, RS_EINTERNAL, "SQLite was built without thread support");
    pthread_once(&sq_config_once, sq_config);
    struct sq_store *s = rs_xcalloc(1, sizeof(*s));
    s->base.ops = &sqlite_ops;
    s->path = rs_xstrdup(path);
    s->busy_timeout_ms = cfg->busy_timeout_ms > 0 ? cfg->busy_timeout_ms : 5000;
    pthread_mutex_init(&s->writer_lock, NULL);
    pthread_mutex_init(&s->all_lock, NULL);
    pthread_key_create(&s->reader_key, NULL);
    pthread_mutex_init(&s->ckpt_lock, NULL);
    pthread_cond_init(&s->ckpt_cond, NULL);
    pthread_mutex_init(&s->idx_lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->idx_cond, &ca);
    pthread_condattr_destroy(&ca);
    int r = conn_open(s, true, &s->writer, err);
    if (r < 0) {
        sq_close(&s->base);
        return r;
    }
    /* The writer no longer checkpoints inline (see the file comment). */
    r = exec_sql(s->writer, "PRAGMA wal_autocheckpoint=0", err);
    if (r < 0) {
        sq_close(&s->base);
        return r;
    }
    sqlite3_wal_hook(s->writer->db, on_wal_commit, s);
    if (pthread_create(&s->checkpointer, NULL, checkpointer_main, s) == 0)
        s->ckpt_running = true;
    *ret = &s->base;
    return 0;
}
