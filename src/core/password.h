/* password.h: the password policy (Authentication Settings -> Password
 * Policy), after NIST SP 800-63B: a minimum length, no composition rules, no
 * passwords built on the user's own profile; the dictionary of common and
 * breached passwords is checked by src/ext/pwdict.h. Pure. */
#ifndef RS_PASSWORD_H
#define RS_PASSWORD_H

#include <stdbool.h>

#include "error.h"
#include "user.h"

struct rs_password_policy {
    int min_length;         /* code points; default 12; 8..1024 */
    int max_length;         /* default 256; >= 64 and >= min_length; <= 1024 */
    bool blocklist;         /* check the common-password dictionary (default true) */
    bool profile_words;     /* refuse passwords built on the user's profile (default true) */
    int history;            /* 0..24: no reuse of the last N (default 0) */
    int max_age_days;       /* 0: never expires (default 0) */
    int expiry_notice_days; /* notice this many days before expiry (default 14) */
};

void rs_password_policy_defaults(struct rs_password_policy *p);

/* NFKC-normalises a password (NIST SP 800-63B 5.1.1.2). -RS_EVALIDATION
 * (field, rule "utf8") on invalid UTF-8 or a NUL. *ret owned by the caller. */
int rs_password_normalize(const char *pw, const char *field, char **ret,
                          struct rs_error *err) RS_WUR;

/* Checks a normalised password against length (rules "min_length",
 * "max_length", counted in code points) and, when p->profile_words, the
 * user's profile (rule "profile_words": contains, case-insensitively, the
 * username, the email's local part, the first or last name or the employee
 * id, each when at least 4 characters long). u may be NULL. Field errors
 * name `field`. */
int rs_password_check(const struct rs_password_policy *p, const char *field, const char *pw,
                      const struct rs_user *u, struct rs_error *err) RS_WUR;

#endif
