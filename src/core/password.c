/* password.c: the password policy (see password.h): NFKC normalisation,
 * length in code points, and no passwords built on the user's own profile.
 * Pure; the dictionary of common passwords is src/ext/pwdict.c. */
#include <stdio.h>
#include <utf8proc.h>

#include "password.h"

/* Profile parts shorter than this (in code points) are too common as
 * substrings ("Li", "Ann") to refuse a password for. */
#define PROFILE_PART_MIN 4

void rs_password_policy_defaults(struct rs_password_policy *p)
{
    memset(p, 0, sizeof(*p));
    p->min_length = 12;
    p->max_length = 256;
    p->blocklist = true;
    p->profile_words = true;
    p->history = 0;
    p->max_age_days = 0;
    p->expiry_notice_days = 14;
}

int rs_password_normalize(const char *pw, const char *field, char **ret, struct rs_error *err)
{
    if (!pw)
        return rs_error_field(err, RS_EVALIDATION, field, "required", "%s is required", field);
    /* NFKC: compatibility forms (full-width letters, ligatures, superscripts)
     * become their plain equivalents, so the same password typed on another
     * keyboard or input method still matches (NIST SP 800-63B 5.1.1.2). */
    utf8proc_uint8_t *out = NULL;
    utf8proc_ssize_t n =
        utf8proc_map((const utf8proc_uint8_t *)pw, 0, &out,
                     UTF8PROC_NULLTERM | UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_COMPAT);
    if (n < 0)
        return rs_error_field(err, RS_EVALIDATION, field, "utf8", "%s is not valid UTF-8", field);
    *ret = (char *)out;
    return 0;
}

/* The part of an email address before its last '@' (a new string), or NULL. */
static char *email_local_part(const char *email)
{
    const char *at = strrchr(email, '@');
    if (!at)
        return rs_xstrdup(email);
    return rs_xstrndup(email, (size_t)(at - email));
}

/* Whether folded_pw contains part, compared as NFKC case folds; parts under
 * PROFILE_PART_MIN code points (as the user typed them) never match. */
static bool contains_part(const char *folded_pw, const char *part)
{
    if (!part)
        return false;
    long len = rs_utf8_length(part, strlen(part));
    if (len < PROFILE_PART_MIN)
        return false;
    _cleanup_free_ char *folded = rs_fold_key(part);
    /* UTF-8 is self-synchronising: a byte match of two valid strings starts
     * and ends on character boundaries. */
    return folded && *folded && strstr(folded_pw, folded) != NULL;
}

/* Adds one "profile_words" error naming every profile part pw contains. */
static int check_profile(const char *field, const char *pw, const struct rs_user *u,
                         struct rs_error *err)
{
    _cleanup_free_ char *folded_pw = rs_fold_key(pw);
    _cleanup_free_ char *local = u->email ? email_local_part(u->email) : NULL;
    if (!folded_pw)
        return rs_error_field(err, RS_EVALIDATION, field, "utf8", "%s is not valid UTF-8", field);
    const struct {
        const char *value, *what;
    } parts[] = {
        {u->username, "username"},   {local, "email address"},        {u->first_name, "first name"},
        {u->last_name, "last name"}, {u->employee_id, "employee id"},
    };
    char names[160] = "";
    size_t used = 0;
    int found = 0;
    for (size_t i = 0; i < RS_ARRAY_LEN(parts); i++) {
        if (!contains_part(folded_pw, parts[i].value))
            continue;
        int w = snprintf(names + used, sizeof(names) - used, "%s%s", found ? " or " : "",
                         parts[i].what);
        if (w > 0 && (size_t)w < sizeof(names) - used)
            used += (size_t)w;
        found++;
    }
    if (!found)
        return 0;
    return rs_error_field(err, RS_EVALIDATION, field, "profile_words",
                          "%s must not contain your %s", field, names);
}

int rs_password_check(const struct rs_password_policy *p, const char *field, const char *pw,
                      const struct rs_user *u, struct rs_error *err)
{
    if (!pw)
        return rs_error_field(err, RS_EVALIDATION, field, "required", "%s is required", field);
    long len = rs_utf8_length(pw, strlen(pw));
    if (len < 0)
        return rs_error_field(err, RS_EVALIDATION, field, "utf8", "%s is not valid UTF-8", field);
    /* Every fault is reported (a short password built on the username gets both). */
    int r = 0;
    if (len < p->min_length)
        r = rs_error_field(err, RS_EVALIDATION, field, "min_length",
                           "%s must be at least %d characters", field, p->min_length);
    /* Too long: refused before folding, so an oversized input costs nothing more. */
    if (len > p->max_length)
        return rs_error_field(err, RS_EVALIDATION, field, "max_length",
                              "%s must be at most %d characters", field, p->max_length);
    if (p->profile_words && u && check_profile(field, pw, u, err) < 0)
        r = -RS_EVALIDATION;
    return r;
}
