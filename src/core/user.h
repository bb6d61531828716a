/* user.h: the user account record and its rules. Pure: validation,
 * normalisation and the uniqueness keys live here, once, and every entry
 * point (API, CLI, later import and SCIM) goes through them. The rules an
 * administrator can tune (Settings -> Users -> Settings -> Validation) arrive
 * as a struct rs_user_rules; custom fields are checked in custom_field.h. */
#ifndef RS_USER_H
#define RS_USER_H

#include <jansson.h>
#include <stdbool.h>

#include "error.h"

#define RS_USERNAME_MIN 2
#define RS_USERNAME_MAX 64   /* characters (code points) */
#define RS_EMAIL_MAX 254     /* bytes, RFC 5321 path limit */
#define RS_NAME_MAX 100      /* characters */
#define RS_TEXT_FIELD_MAX 100 /* department, position, location: characters */
#define RS_PHONE_MAX 32
#define RS_EMPLOYEE_ID_MAX 64
#define RS_ROLE_MAX 64
#define RS_NOTE_MAX 1000

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
    RS_UF_PHONE = 1u << 5,
    RS_UF_EMPLOYEE_ID = 1u << 6,
    RS_UF_DEPARTMENT = 1u << 7,
    RS_UF_POSITION = 1u << 8,
    RS_UF_MANAGER = 1u << 9,
    RS_UF_LOCATION = 1u << 10,
    RS_UF_ROLE = 1u << 11,
    RS_UF_STATUS = 1u << 12, /* on create only */
    RS_UF_CUSTOM = 1u << 13, /* custom_fields */
};
#define RS_UF_REQUIRED_ON_CREATE (RS_UF_USERNAME | RS_UF_EMAIL | RS_UF_FIRST_NAME | RS_UF_LAST_NAME)
/* Every field a profile change may carry (status changes go through lifecycle). */
#define RS_UF_PROFILE                                                                              \
    (RS_UF_REQUIRED_ON_CREATE | RS_UF_TYPE | RS_UF_PHONE | RS_UF_EMPLOYEE_ID | RS_UF_DEPARTMENT |  \
     RS_UF_POSITION | RS_UF_MANAGER | RS_UF_LOCATION | RS_UF_ROLE | RS_UF_CUSTOM)

/* A user. Strings (NULL when empty) and the custom-field object are owned by
 * the struct: rs_user_release() frees them. Times are ms since the epoch, 0
 * when unset. */
struct rs_user {
    int64_t id;
    char *username;
    char *email;
    char *first_name;
    char *last_name;
    char *phone;
    char *employee_id;
    char *department;
    char *position;
    char *location;
    char *role;          /* primary role reference */
    int64_t manager_id;  /* 0: none */
    enum rs_user_type type;
    enum rs_user_status status;
    char *status_reason; /* of the last transition */
    char *status_note;
    int64_t status_changed_at;
    json_t *custom;      /* custom field values: object key -> value, or NULL */
    int64_t created_at;
    int64_t updated_at;
    int64_t last_login_at;
    int64_t erased_at;
    int64_t version;     /* +1 on every change; the ETag */
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

/* The rules an administrator tunes (Settings -> Users -> Settings ->
 * Validation). Patterns are POSIX extended regular expressions. */
struct rs_user_rules {
    int username_min_length;
    int username_max_length;
    char *username_pattern;      /* NULL: none */
    char **reserved_usernames;   /* compared after case folding */
    size_t nreserved;
    char **email_allowed_domains; /* empty: any */
    size_t ndomains;
    char *phone_pattern;         /* NULL: none */
    char *employee_id_pattern;   /* NULL: none */
    bool require_department;
    bool require_manager;
    bool require_role;
};

/* The built-in rules (what a fresh installation uses). */
void rs_user_rules_defaults(struct rs_user_rules *r);
void rs_user_rules_release(struct rs_user_rules *r);
void rs_user_rules_copy(struct rs_user_rules *dst, const struct rs_user_rules *src);

/* Checks the fields in mask against the built-in rules and that every field in
 * required_mask is present (non-NULL). Reports every fault, not just the first.
 * Call after rs_user_normalize. */
int rs_user_validate(const struct rs_user *u, unsigned mask, unsigned required_mask,
                     struct rs_error *err) RS_WUR;
/* The same against an administrator's rules (NULL: the built-in ones). */
int rs_user_check(const struct rs_user *u, unsigned mask, unsigned required_mask,
                  const struct rs_user_rules *rules, struct rs_error *err) RS_WUR;

/* Whether an administrator's pattern is safe to compile and run: a valid
 * POSIX extended regular expression of at most RS_PATTERN_MAX bytes, with at
 * most 32 quantifiers, none directly after another (glibc's regcomp needs
 * gigabytes for "a++++..."), no back-references (exponential matching),
 * no empty group or alternative, intervals of at most RS_PATTERN_REPEAT_MAX,
 * and no more than RS_PATTERN_NODES_MAX parts once its repetitions are
 * expanded, as regcomp expands them ("((a+)+)+..." doubles with each level).
 * glibc's matcher is not linear: its time grows with the subject's length
 * and the square of the parts live at once, so the bounds are tight: in a
 * search of 1.8 million random patterns within them, none took over ~120 ms
 * to match a 500-character value; before these bounds, some took seconds.
 * RS_PATTERN_RULE says so in an error message. */
#define RS_PATTERN_MAX 256
#define RS_PATTERN_REPEAT_MAX 64
#define RS_PATTERN_NODES_MAX 300
#define RS_PATTERN_RULE                                                                            \
    "a POSIX extended regular expression of at most " RS_STR(RS_PATTERN_MAX) " bytes, without "   \
    "back-references, empty groups or stacked quantifiers, with repeat counts of at most "        \
    RS_STR(RS_PATTERN_REPEAT_MAX) ", expanding to at most " RS_STR(RS_PATTERN_NODES_MAX) " parts"
bool rs_pattern_ok(const char *pattern);
/* Whether v matches pattern: 1 or 0, or -1 if the pattern is not one
 * rs_pattern_ok accepts (it is screened, then compiled once). */
int rs_pattern_match(const char *pattern, const char *v);

/* The fields the rules' require_* settings make required (RS_UF_* bits): a
 * create requires them all, a change may not clear those it touches. */
unsigned rs_user_rules_required(const struct rs_user_rules *rules);

/* "First Last" (a new string). */
char *rs_user_display_name(const struct rs_user *u);

/* Free text as stored: NFC, trimmed of white space. NULL when s is NULL,
 * blank or not valid UTF-8 (callers treat blank as absent). */
char *rs_text_clean(const char *s);
/* 422 naming field unless v is valid UTF-8 of min..max code points without
 * control or format characters (the rule names use: required, min_length,
 * max_length, encoding, characters). */
int rs_text_check(const char *v, const char *field, long min, long max,
                  struct rs_error *err) RS_WUR;

/* The uniqueness key of a username or email: NFKC case fold, so "ÅSA",
 * "åsa" and "a\u030asa" collide. Returns a new string, or NULL if s is not
 * valid UTF-8. */
char *rs_fold_key(const char *s);

/* The search key a user row stores: rs_fold_key of "username email
 * first_name last_name employee_id" (employee_id "" when NULL), built from
 * the row's folded username, email and employee id keys and the folds of
 * the two names. Folding distributes over the single spaces (a space is a
 * starter that composes with nothing, is never reordered and is not
 * ignorable), so the bytes are those of folding the joined string, for a
 * third of the work. A new string; NULL if a key is NULL or a name is not
 * valid UTF-8. */
char *rs_user_search_key(const struct rs_user *u, const char *username_key, const char *email_key,
                         const char *employee_id_key);

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
    RS_SORT_DEPARTMENT,
    RS_SORT_LOCATION,
    RS_SORT_POSITION,
    RS_SORT_EMPLOYEE_ID,
    RS_SORT_TYPE,
    RS_SORT_STATUS,
    RS_SORT_LAST_LOGIN_AT,
    RS_SORT_FIELD_COUNT
};
/* Whether a sort key compares as an integer (else as text, byte order). */
bool rs_sort_is_integer(enum rs_user_sort_field f);

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

#define RS_QUERY_MAX_CF 8

struct rs_user_query {
    char *q;                /* free text over username, email, names, employee id */
    int has_status;
    enum rs_user_status status;
    int has_type;
    enum rs_user_type type;
    char *department;       /* exact-match filters; NULL for none */
    char *location;
    char *position;
    char *role;
    int64_t manager_id;     /* 0 for none */
    int64_t created_after;  /* inclusive bounds, ms; 0 for none */
    int64_t created_before;
    int64_t last_login_after;
    int64_t last_login_before;
    int ncf;                /* custom field equals value (text form) */
    char *cf_keys[RS_QUERY_MAX_CF];
    char *cf_values[RS_QUERY_MAX_CF];
    int64_t offset;         /* page paging: rows to skip (with no cursor) */
    int64_t group_id;       /* members of this group only; 0 for any */
    int nsort;              /* ties are broken by ascending id, whatever the sort */
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
