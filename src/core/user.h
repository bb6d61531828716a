/* user.h: the user account record and its rules (first slice: identity and
 * name). Pure: validation, normalisation and the uniqueness keys live here, once,
 * and every entry point (API, CLI, later import and SCIM) goes through them. */
#ifndef RS_USER_H
#define RS_USER_H

#include <stdbool.h>

#include "error.h"

#define RS_USERNAME_MIN 2
#define RS_USERNAME_MAX 64   /* characters (code points) */
#define RS_EMAIL_MAX 254     /* bytes, RFC 5321 path limit */
#define RS_NAME_MAX 100      /* characters */

enum rs_user_type { RS_USER_STANDARD, RS_USER_ADMIN, RS_USER_API, RS_USER_GUEST, RS_USER_TYPE_COUNT };
enum rs_user_status {
    RS_STATUS_ACTIVE,
    RS_STATUS_INACTIVE,
    RS_STATUS_LOCKED,
    RS_STATUS_PENDING,
    RS_STATUS_COUNT
};

/* Which fields a create or patch carries (bit per field). */
enum rs_user_field {
    RS_UF_USERNAME = 1u << 0,
    RS_UF_EMAIL = 1u << 1,
    RS_UF_FIRST_NAME = 1u << 2,
    RS_UF_LAST_NAME = 1u << 3,
    RS_UF_TYPE = 1u << 4,
};
#define RS_UF_REQUIRED_ON_CREATE (RS_UF_USERNAME | RS_UF_EMAIL | RS_UF_FIRST_NAME | RS_UF_LAST_NAME)

/* A user. Strings are heap-owned by the struct: rs_user_release() frees them. */
struct rs_user {
    int64_t id;
    char *username;
    char *email;
    char *first_name;
    char *last_name;
    enum rs_user_type type;
    enum rs_user_status status;
    int64_t created_at; /* ms since the epoch */
    int64_t updated_at;
    int64_t version;    /* +1 on every change; the ETag */
};

void rs_user_init(struct rs_user *u);
void rs_user_release(struct rs_user *u);
/* Deep copy of src into dst (dst must be released or fresh). */
void rs_user_copy(struct rs_user *dst, const struct rs_user *src);
/* Replaces the fields named in mask with src's values (deep copies). */
void rs_user_apply(struct rs_user *dst, const struct rs_user *src, unsigned mask);

const char *rs_user_type_name(enum rs_user_type t);
int rs_user_type_parse(const char *s, enum rs_user_type *ret) RS_WUR;
const char *rs_user_status_name(enum rs_user_status s);
int rs_user_status_parse(const char *s, enum rs_user_status *ret) RS_WUR;

/* Normalises the fields in mask in place: Unicode NFC, surrounding white space
 * trimmed. Returns 0, or adds a field error (invalid UTF-8) and returns -code. */
int rs_user_normalize(struct rs_user *u, unsigned mask, struct rs_error *err) RS_WUR;

/* Checks the fields in mask against the rules and that every field in
 * required_mask is present (non-NULL). Reports every fault, not just the first.
 * Call after rs_user_normalize. */
int rs_user_validate(const struct rs_user *u, unsigned mask, unsigned required_mask,
                     struct rs_error *err) RS_WUR;

/* The uniqueness key of a username or email: NFKC case fold, so "ÅSA",
 * "åsa" and "a\u030asa" collide. Returns a new string, or NULL if s is not
 * valid UTF-8. */
char *rs_fold_key(const char *s);

/* Counts code points of valid UTF-8; -1 if invalid. */
long rs_utf8_length(const char *s, size_t len);

/* Sort keys a list may use. */
enum rs_user_sort_field {
    RS_SORT_ID,
    RS_SORT_USERNAME,
    RS_SORT_EMAIL,
    RS_SORT_FIRST_NAME,
    RS_SORT_LAST_NAME,
    RS_SORT_CREATED_AT,
    RS_SORT_UPDATED_AT,
    RS_SORT_FIELD_COUNT
};

#define RS_SORT_MAX_KEYS 3
#define RS_LIST_LIMIT_DEFAULT 50
#define RS_LIST_LIMIT_MAX 500
#define RS_QUERY_TEXT_MAX 200

struct rs_sort_key {
    enum rs_user_sort_field field;
    bool desc;
};

/* Where a page starts: the previous page's last row's sort values and id. */
struct rs_cursor {
    int nvalues;
    char *values[RS_SORT_MAX_KEYS]; /* text form; NULL for SQL NULL */
    int64_t id;
};

struct rs_user_query {
    char *q;                /* free text over username, email and names; NULL for none */
    int has_status;
    enum rs_user_status status;
    int has_type;
    enum rs_user_type type;
    int nsort;              /* the id is always the final tie-breaker */
    struct rs_sort_key sort[RS_SORT_MAX_KEYS];
    int limit;
    bool has_cursor;
    struct rs_cursor cursor;
};

void rs_user_query_init(struct rs_user_query *q);
void rs_user_query_release(struct rs_user_query *q);

const char *rs_sort_field_name(enum rs_user_sort_field f);
/* Parses "last_name,-created_at" into q->sort. Field errors name "sort". */
int rs_sort_parse(const char *s, struct rs_user_query *q, struct rs_error *err) RS_WUR;
/* The sort value of u for f, as text (new string; NULL for none). */
char *rs_user_sort_value(const struct rs_user *u, enum rs_user_sort_field f);

/* Opaque cursor: base64url text bound to the sort it was made for, so a cursor
 * from another sort order is refused rather than silently misread. */
char *rs_cursor_encode(const struct rs_user_query *q, const struct rs_user *last);
int rs_cursor_decode(const char *s, struct rs_user_query *q, struct rs_error *err) RS_WUR;

struct rs_user_page {
    struct rs_user *items;
    size_t count;
    int64_t total;          /* rows matching the filter, ignoring the cursor */
    bool has_more;
};
void rs_user_page_release(struct rs_user_page *p);

#endif
