/* session_internal.h: what session.c and credentials.c share. */
#ifndef RS_SESSION_INTERNAL_H
#define RS_SESSION_INTERNAL_H

#include "../core/authsettings.h"
#include "internal.h"

/* The access cache's validity stamp (database version, process epoch):
 * anything cached under an older stamp may be stale. */
void rs_access_stamp(int64_t ret[2]);

/* The CSRF token of a session with this seed, presented with token. */
void rs_session_csrf(const char *seed, const char *token, char out[RS_HASH_HEX]);
bool rs_password_expired(const struct rs_auth_settings *s, const struct rs_credential *cr,
                         int64_t now);
bool rs_totp_required(struct rs_ctx *ctx, struct rs_conn *c, const struct rs_auth_settings *s,
                      const struct rs_user *u);
/* expires_at 0: the absolute timeout from now; else kept (a rotated
 * session). csrf_seed NULL or "": a new one (the CSRF token changes), else
 * kept. epoch: the user's privilege epoch the flags were decided at. */
int rs_session_create(struct rs_ctx *ctx, struct rs_tx *tx, const struct rs_auth_settings *s,
                      const struct rs_user *u, unsigned flags, const char *user_agent,
                      int64_t expires_at, const char *csrf_seed, int64_t epoch,
                      struct rs_session *ret, char token[48], char csrf[RS_HASH_HEX],
                      struct rs_error *err) RS_WUR;
/* "prefix:address" (IPv6: its /64), the key of a failure budget. Caller frees. */
char *rs_throttle_key(const char *prefix, const char *ip);
/* Ends a user's sessions but except_id, with one audit event naming why. */
int rs_sessions_end_user(struct rs_ctx *ctx, struct rs_tx *tx, int64_t user_id,
                         int64_t except_id, const char *why, int *ret_n,
                         struct rs_error *err) RS_WUR;
/* The idle timeout in minutes, cached against the access stamp (a change of
 * the auth settings bumps it). */
int rs_session_idle_minutes(struct rs_ctx *ctx, struct rs_conn *c);
/* -RS_ETHROTTLED when the client address has spent its failure budget. */
int rs_auth_budget_check(struct rs_ctx *ctx, struct rs_error *err) RS_WUR;
/* A wrong password or code given to re-authenticate: counted toward the
 * lockout and the client's budget like a failed sign-in, and audited
 * (auth.login_failed with reason). Never fails the caller. */
void rs_reauth_failed(struct rs_ctx *ctx, const struct rs_user *u, const char *reason);
/* A recovery code as typed ("abcd-efgh ...") in canonical form. Caller frees. */
char *rs_recovery_normalize(const char *code);

#endif
