/* authsettings.h: Settings -> Authentication (the "auth" document: password
 * policy, hashing cost, lockout, throttles, sessions, 2FA policy, IP rules,
 * token lifetimes) and Settings -> Notifications (the "notifications"
 * document: SMTP, which mails are sent, their templates). Pure: decoding
 * (strict, errors name the dotted path such as "lockout.max_failures"),
 * applying a JSON merge patch, encoding. Modelled on settings.h.
 *
 * Status of errors, as for the users document: unknown key, wrong JSON type,
 * read-only member (version, smtp.password_set, templates.KIND.variables,
 * templates.KIND.body_only_variables) 400; a well-formed value that breaks a rule 422.
 *
 * Merge patches (RFC 7396): a member set to null returns to its default; a
 * section set to null returns wholly to its defaults; in ip_rules.types and
 * ip_rules.roles, which are maps, null removes an entry; arrays are replaced
 * whole. */
#ifndef RS_AUTHSETTINGS_H
#define RS_AUTHSETTINGS_H

#include <jansson.h>
#include <stdbool.h>

#include "error.h"
#include "ipnet.h"
#include "mail.h"
#include "password.h"

#define RS_2FA_ROLES_MAX 64 /* entries of two_factor.roles */
#define RS_IP_RULES_MAX 256 /* entries of ip_rules.roles */
#define RS_ISSUER_MAX 64    /* characters of two_factor.issuer */

enum rs_2fa_require { RS_2FA_OFF, RS_2FA_ADMINS, RS_2FA_ROLES, RS_2FA_EVERYONE };
/* "off", "admins", "roles", "everyone". */
const char *rs_2fa_require_name(enum rs_2fa_require r);

/* GET /api/v1/settings/auth:
 * {"password": {"min_length": 12, "max_length": 256, "blocklist": true,
 *               "profile_words": true, "history": 0, "max_age_days": 0,
 *               "expiry_notice_days": 14, "hash_memory_kib": 19456,
 *               "hash_iterations": 2},
 *  "lockout": {"enabled": true, "max_failures": 5, "window_minutes": 15,
 *              "duration_minutes": 15, "notify_user": true},
 *  "throttle": {"ip_max_failures": 50, "ip_window_seconds": 300,
 *               "forgot_per_account_per_hour": 3, "forgot_per_ip_per_hour": 30},
 *  "sessions": {"idle_timeout_minutes": 30, "absolute_timeout_hours": 12,
 *               "max_per_user": 5},
 *  "two_factor": {"require": "off", "roles": [], "issuer": "roster"},
 *  "ip_rules": {"types": {}, "roles": {}},
 *  "tokens": {"reset_minutes": 30, "invite_hours": 72},
 *  "version": 1}
 * Ranges: min_length 8..1024; max_length 64..1024 and >= min_length;
 * history 0..24; max_age_days 0..3650 (0: never expires);
 * expiry_notice_days 0..365; hash_memory_kib 19456..1048576;
 * hash_iterations 2..20; max_failures 1..100; window_minutes 1..1440;
 * duration_minutes 0..525600 (0: until an administrator unlocks); throttle
 * values 1..100000; idle_timeout_minutes 1..1440; absolute_timeout_hours
 * 1..720; max_per_user 0..1000 (0: unlimited); require off|admins|roles|
 * everyone (roles needs at least one role, rule "required"); roles: unique
 * role keys (rules "format", "unique"), at most RS_2FA_ROLES_MAX; issuer 1..64
 * characters without ':' or control characters (it labels the account in
 * authenticator apps); ip_rules.types keys are user type names (rule
 * "user_type"), ip_rules.roles keys role keys (rule "format"), values lists
 * of CIDR (rs_cidr_list_check; an empty list allows every address);
 * reset_minutes 5..1440; invite_hours 1..720. Integer ranges fail with rule
 * "range". */
struct rs_auth_settings {
    struct rs_password_policy password;
    int hash_memory_kib, hash_iterations;
    struct {
        bool enabled;
        int max_failures, window_minutes, duration_minutes;
        bool notify_user;
    } lockout;
    struct {
        int ip_max_failures, ip_window_seconds, forgot_per_account_per_hour, forgot_per_ip_per_hour;
    } throttle;
    struct {
        int idle_timeout_minutes, absolute_timeout_hours, max_per_user;
    } sessions;
    struct {
        enum rs_2fa_require require;
        json_t *roles; /* array of role keys (owned) */
        char *issuer;  /* owned */
    } two_factor;
    json_t *ip_types; /* object: type name -> array of CIDR (owned) */
    json_t *ip_roles; /* object: role key -> array of CIDR (owned) */
    struct {
        int reset_minutes, invite_hours;
    } tokens;
    int64_t version; /* +1 on every change; the ETag */
};

void rs_auth_settings_defaults(struct rs_auth_settings *s);
void rs_auth_settings_release(struct rs_auth_settings *s);
/* A deep copy; release dst after. */
void rs_auth_settings_copy(struct rs_auth_settings *dst, const struct rs_auth_settings *src);

/* The document above (also the stored form). */
json_t *rs_auth_settings_to_json(const struct rs_auth_settings *s);

/* Reads a stored document (as written by rs_auth_settings_to_json): missing
 * members keep their defaults, so older documents read under newer code;
 * unknown members (from newer code) are skipped; present members are checked
 * as a patch's are. */
int rs_auth_settings_from_json(json_t *doc, struct rs_auth_settings *ret,
                               struct rs_error *err) RS_WUR;

/* Applies a JSON merge patch to cur and checks the result. *ret is the new
 * settings (version unchanged: the service bumps it), written only on
 * success. */
int rs_auth_settings_patch(const struct rs_auth_settings *cur, json_t *patch,
                           struct rs_auth_settings *ret, struct rs_error *err) RS_WUR;

/* GET /api/v1/settings/notifications:
 * {"smtp": {"url": "smtp://127.0.0.1:25", "security": "none", "username": "",
 *           "password_set": false, "from": "roster <noreply@localhost>",
 *           "timeout_seconds": 10, "verify_tls": true},
 *  "enabled": {"invite": true, "welcome": true, "reset": true,
 *              "password_changed": true, "account_locked": true,
 *              "expiry_notice": true},
 *  "templates": {"invite": {"subject": "...", "body": "...",
 *                           "variables": ["username", ...],
 *                           "body_only_variables": ["link"]}, ..., "test": {...}},
 *  "version": 1}
 * smtp.url: smtp://host[:port] or smtps://host[:port], host a name, an IPv4
 * address or [IPv6], port 1..65535, nothing after (rule "url"); security
 * none|starttls|tls ("enum"), tls with smtps:// only and the others with
 * smtp:// only (rule "security", naming smtp.security); username at most 256
 * bytes; password write-only (a patch's "password" sets password_new, null or
 * "" clears it; GET shows only password_set); a username or password (SMTP
 * AUTH) with security none is refused (rule "auth_needs_tls", naming
 * smtp.security; see rs_notify_smtp_auth_check); from one mailbox (rule
 * "mailbox"); timeout_seconds 1..300. Templates: rs_mail_template_check,
 * naming templates.KIND.subject or .body (a subject using a body-only
 * variable, such as the secret link: rule "variable_not_allowed"; a stored
 * one from before that rule still reads); null returns a template (or one
 * part) to the default. The test message (RS_MAIL_TEST) has an editable
 * template too, and no "enabled" toggle: it is sent whenever an
 * administrator asks (enabled[RS_MAIL_TEST] is always true). */
enum rs_smtp_security { RS_SMTP_NONE, RS_SMTP_STARTTLS, RS_SMTP_TLS };

struct rs_notify_settings {
    struct {
        char *url;
        int security; /* enum rs_smtp_security: 0 none, 1 starttls, 2 tls */
        char *username;
        char *password_stored; /* as stored (sealed by service), "" none */
        char *password_new; /* set by a patch carrying a password (plaintext), else NULL; "" = clear
                             */
        char *from;
        int timeout_seconds;
        bool verify_tls;
    } smtp;
    bool enabled[RS_MAIL_KIND_COUNT];
    struct {
        char *subject, *body; /* owned, never NULL after defaults */
    } templates[RS_MAIL_KIND_COUNT];
    int64_t version;
};

void rs_notify_settings_defaults(struct rs_notify_settings *s);
/* Frees every member; password_new is wiped before it is freed. */
void rs_notify_settings_release(struct rs_notify_settings *s);
void rs_notify_settings_copy(struct rs_notify_settings *dst, const struct rs_notify_settings *src);
const char *rs_smtp_security_name(int security);
/* SMTP AUTH (PLAIN, LOGIN) sends the password as readable text: credentials
 * (a username, or a password set or being set) need starttls or tls. 0, or
 * -RS_EVALIDATION naming smtp.security, rule "auth_needs_tls". A patch is
 * refused by this rule; a stored document that breaks it (written before the
 * rule) still reads, and the sender refuses to use it (rs_smtp_params_init). */
int rs_notify_smtp_auth_check(const struct rs_notify_settings *s, struct rs_error *err) RS_WUR;

/* for_storage false: the API form above (password_set, variables,
 * body_only_variables). for_storage true: "password" (the stored text)
 * instead of "password_set", no variable lists, and only the templates that
 * differ from the defaults, so improved default texts reach installations
 * that never changed them. */
json_t *rs_notify_settings_to_json(const struct rs_notify_settings *s, bool for_storage);
/* Reads a stored document (for_storage form), lenient as
 * rs_auth_settings_from_json. */
int rs_notify_settings_from_json(json_t *doc, struct rs_notify_settings *ret,
                                 struct rs_error *err) RS_WUR;
/* Applies a JSON merge patch (API form, without password_set and the
 * variable lists, which are read-only) and checks the result. */
int rs_notify_settings_patch(const struct rs_notify_settings *cur, json_t *patch,
                             struct rs_notify_settings *ret, struct rs_error *err) RS_WUR;

#endif
