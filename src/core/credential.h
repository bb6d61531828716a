/* credential.h: what the store keeps about signing in: a user's password
 * and lockout state, sessions, single-use tokens (reset, invite) and queued
 * mail. Plain records; the rules that use them live in service and core
 * (password.h, totp.h). See docs/design/auth-contract.md. */
#ifndef RS_CREDENTIAL_H
#define RS_CREDENTIAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RS_HASH_HEX 65 /* BLAKE2b-256 as lowercase hex + NUL */

struct rs_credential {
    int64_t user_id;
    char *password_hash;        /* argon2id string, "" none */
    int64_t password_changed_at;
    bool must_change;
    int failed_count;
    int64_t failed_first_at;
    int64_t locked_until;       /* 0 none, -1 until an administrator unlocks, else ms */
    char *totp_secret;          /* encrypted (base64), "" none */
    char *totp_pending;         /* encrypted secret awaiting confirmation, "" none */
    int64_t totp_last_step;
    char *ip_ranges;            /* JSON array text, "[]" none */
    int64_t expiry_notice_at;
    /* Bumped by every change of the user's type, roles or groups (and their
     * groups' roles); a session made at another epoch is rotated. Read only:
     * cred_get fills it, cred_put leaves the stored one. */
    int64_t privilege_epoch;
};
/* The state of a user with no stored row: every field zero, strings "" and "[]". */
void rs_credential_init(struct rs_credential *c, int64_t user_id);
void rs_credential_release(struct rs_credential *c);

enum rs_session_flag { RS_SESSION_MUST_CHANGE = 1u << 0, RS_SESSION_MUST_ENROLL = 1u << 1 };

/* A session's CSRF seed: 64 hex characters of random (new sessions), "="
 * followed by the CSRF token itself (a session from before migration 0007
 * that was rotated: its token is kept), or "" (a session from before 0007:
 * the CSRF token derives from the session token). */
#define RS_CSRF_SEED_MAX 72

struct rs_session {
    int64_t id;
    char token_hash[RS_HASH_HEX];
    int64_t user_id;
    int64_t created_at, last_seen_at, expires_at;
    char *ip;         /* owned */
    char *user_agent; /* owned */
    unsigned flags;
    char csrf_seed[RS_CSRF_SEED_MAX];
    int64_t privilege_epoch; /* the user's privilege epoch when the session was made */
    int64_t user_epoch;      /* find and get only: the user's privilege epoch now */
};
void rs_session_release(struct rs_session *s);
void rs_sessions_free(struct rs_session *items, size_t n);

struct rs_auth_token {
    int64_t id;
    char token_hash[RS_HASH_HEX];
    char kind[16]; /* "reset", "invite" */
    int64_t user_id, created_at, expires_at, used_at, pw_changed_at;
};

struct rs_mail {
    int64_t id;
    int64_t created_at;
    char *kind;       /* rs_mail_kind_name() */
    int64_t user_id;  /* 0 none */
    char *to_addr;
    char *subject;
    char *message;    /* the whole RFC 5322 text, CRLF lines */
    char *status;     /* "pending", "sent", "failed" */
    int attempts;
    int64_t next_attempt_at, sent_at;
    char *last_error;
};
void rs_mail_release(struct rs_mail *m);
void rs_mails_free(struct rs_mail *items, size_t n);

/* A row of the work queue: work a request leaves to a background job. */
struct rs_work {
    int64_t id;
    char *kind;    /* the job that does it, e.g. "forgot_password" */
    char *payload; /* a JSON object of the kind's fields */
    int64_t created_at;
};
void rs_work_release(struct rs_work *w);
void rs_works_free(struct rs_work *items, size_t n);

#endif
