/* mail.h: the mail roster sends (invites, resets, notices): kinds, their
 * default templates and variables, rendering "{{ name }}" placeholders, and
 * building the whole RFC 5322 message (UTF-8 text, quoted-printable body,
 * RFC 2047 subject). Pure: sending is src/ext/smtp.h's job. */
#ifndef RS_MAIL_H
#define RS_MAIL_H

#include <stdbool.h>
#include <stdint.h>

#include "error.h"

enum rs_mail_kind {
    RS_MAIL_INVITE,
    RS_MAIL_WELCOME,
    RS_MAIL_RESET,
    RS_MAIL_PASSWORD_CHANGED,
    RS_MAIL_ACCOUNT_LOCKED,
    RS_MAIL_EXPIRY_NOTICE,
    RS_MAIL_TWO_FACTOR_CHANGED,
    RS_MAIL_EMAIL_CHANGED,
    RS_MAIL_TEST,
    RS_MAIL_KIND_COUNT
};

#define RS_MAIL_SUBJECT_MAX 200       /* characters of a subject template */
#define RS_MAIL_BODY_MAX 20000        /* characters of a body template */
#define RS_MAIL_ADDR_MAX 320          /* bytes of an addr-spec (64 + 1 + 255) */
#define RS_MAIL_MESSAGE_MAX (1 << 20) /* bytes of a rendered subject + body */

/* "invite", "welcome", "reset", "password_changed", "account_locked",
 * "expiry_notice", "two_factor_changed", "email_changed", "test"; NULL for a
 * value out of range. */
const char *rs_mail_kind_name(enum rs_mail_kind k);
/* The kind named s; -1 if none. */
int rs_mail_kind_parse(const char *s, enum rs_mail_kind *ret) RS_WUR;

/* NULL-terminated list of the variables a kind may use. Every kind:
 * username, first_name, last_name, email, product, base_url. Plus
 * invite: link, expires_at; welcome: sign_in_url; reset: link,
 * expires_minutes; password_changed: changed_at, ip; account_locked:
 * locked_until, failed_attempts; expiry_notice: expires_at, days_left;
 * two_factor_changed: change (what happened, in words), changed_at, ip;
 * email_changed (sent to the old address): old_email, new_email,
 * changed_at. test: only the common ones. */
const char *const *rs_mail_variables(enum rs_mail_kind k);
/* NULL-terminated list of the kind's variables that may appear only in the
 * body, never in the subject: "link" (invite, reset), which carries a secret
 * token, while subjects are shown in mail lists, in the outbox
 * (GET /api/v1/outbox) and in logs. Empty for kinds without one. */
const char *const *rs_mail_body_only_variables(enum rs_mail_kind k);

/* Which part of a template a text is, for rs_mail_template_check. */
enum rs_mail_part {
    RS_MAIL_PART_BODY,
    RS_MAIL_PART_SUBJECT,
    /* A subject read back from storage: as RS_MAIL_PART_SUBJECT, but a
     * body-only variable (stored before that rule) is let through;
     * rs_mail_render_subject leaves it empty. */
    RS_MAIL_PART_STORED_SUBJECT,
};

/* The built-in templates (static strings). */
const char *rs_mail_default_subject(enum rs_mail_kind k);
const char *rs_mail_default_body(enum rs_mail_kind k);

/* Checks a template an administrator wrote, naming `field` in every error
 * (422): valid UTF-8 (rule "utf8"); not empty (rule "required"); at most
 * RS_MAIL_SUBJECT_MAX / RS_MAIL_BODY_MAX characters (rule "max_length"); a
 * subject without CR or LF (rule "header_injection"); every "{{" opens a
 * placeholder "{{ name }}" (rule "placeholder") naming one of the kind's
 * variables (rule "unknown_variable"), and in a subject none of its
 * body-only ones (rule "variable_not_allowed"). */
int rs_mail_template_check(enum rs_mail_kind k, const char *field, const char *text,
                           enum rs_mail_part part, struct rs_error *err) RS_WUR;

/* Replaces each "{{name}}" (spaces allowed inside the braces) by its value;
 * vars is name, value, name, value, ..., NULL (a NULL value counts as "").
 * Unknown names become ""; a "{{" that opens no placeholder stays as it is.
 * Caller frees. */
char *rs_mail_render(const char *tmpl, const char *const *vars);
/* rs_mail_render for a subject of kind k: its body-only variables render as
 * "" whatever vars holds, so a secret link never reaches a subject (even
 * one stored before the rule). Caller frees. */
char *rs_mail_render_subject(enum rs_mail_kind k, const char *tmpl, const char *const *vars);

/* The whole message with CRLF line ends:
 *   From (display name RFC 2047-encoded when not ASCII, quoted when it holds
 *   specials), To, Subject (RFC 2047 "=?UTF-8?B?...?=" words of at most 75
 *   characters when not printable ASCII), Date (RFC 5322, UTC "+0000", from
 *   now_ms), Message-ID <message_id>, MIME-Version, Content-Type text/plain;
 *   charset=UTF-8, Content-Transfer-Encoding quoted-printable (lines of at
 *   most 76 characters; the body's line ends become CRLF).
 * Refuses with -RS_EVALIDATION, naming the field ("from", "to", "subject",
 * "message_id", "body"): CR or LF in a header value (rule
 * "header_injection"); a `from` that is not one mailbox (rule "mailbox"); a
 * `to` that is not one addr-spec local@domain (rule "addr_spec"); a
 * message_id that is not id@host in printable ASCII (rule "message_id");
 * subject or body not UTF-8 (rule "utf8") or, together, over
 * RS_MAIL_MESSAGE_MAX bytes (rule "max_length"). *ret owned by the caller. */
int rs_mail_build(const char *from, const char *to, const char *subject, const char *body,
                  int64_t now_ms, const char *message_id, char **ret, struct rs_error *err) RS_WUR;

/* The addr-spec of a mailbox ("Name <a@b>", "\"Doe, J\" <a@b>" or "a@b") into
 * out; 0, or -1 if mailbox is not one mailbox or out is too small. */
int rs_mail_addr_spec(const char *mailbox, char *out, size_t cap);

/* Whether s is one addr-spec: local@domain, dot-atom local part of 1..64
 * bytes, domain of dot-separated labels (letters, digits, '-', UTF-8) of at
 * most 255 bytes; no spaces, angle brackets, commas or quotes. */
bool rs_mail_addr_spec_ok(const char *s);

/* The RFC 5322 date of ms since the epoch in UTC ("Thu, 01 Jan 1970
 * 00:00:00 +0000") into out. */
#define RS_MAIL_DATE_MAX 40
void rs_mail_date(int64_t ms, char out[RS_MAIL_DATE_MAX]);

#endif
