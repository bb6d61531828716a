/* h_auth.c: /api/v1/auth (sign-in, sessions, passwords, 2FA) and the
 * administration of a user's credentials. Tokens and passwords are wiped
 * from memory once used; the session token leaves only in Set-Cookie. */
#include <sodium.h>
#include <stdio.h>

#include "../core/ipnet.h"
#include "codec.h"
#include "http.h"

/* --- small strict bodies --- */

enum ftype { F_STRING, F_BOOL, F_ARRAY };
struct field {
    const char *name;
    enum ftype type;
    void *out;      /* const char ** (borrowed from the body), int * (-1 absent), json_t ** */
};

/* Decodes obj into fields: unknown members and wrong types are 400 naming
 * the member; absent members leave NULL / -1. Strings are borrowed from obj. */
static int decode(json_t *obj, struct field *fields, size_t n, struct rs_error *err)
{
    for (size_t i = 0; i < n; i++) {
        if (fields[i].type == F_BOOL)
            *(int *)fields[i].out = -1;
        else if (fields[i].type == F_STRING)
            *(const char **)fields[i].out = NULL;
        else
            *(json_t **)fields[i].out = NULL;
    }
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v)
    {
        size_t i = 0;
        while (i < n && strcmp(fields[i].name, key) != 0)
            i++;
        if (i == n)
            return rs_error_field(err, RS_EBADREQUEST, key, "unknown", "unknown field %s", key);
        if (json_is_null(v))
            continue;
        switch (fields[i].type) {
        case F_STRING:
            if (!json_is_string(v))
                return rs_error_field(err, RS_EBADREQUEST, key, "type", "%s must be a string",
                                      key);
            *(const char **)fields[i].out = json_string_value(v);
            break;
        case F_BOOL:
            if (!json_is_boolean(v))
                return rs_error_field(err, RS_EBADREQUEST, key, "type", "%s must be true or false",
                                      key);
            *(int *)fields[i].out = json_is_true(v);
            break;
        case F_ARRAY:
            if (!json_is_array(v))
                return rs_error_field(err, RS_EBADREQUEST, key, "type", "%s must be an array",
                                      key);
            *(json_t **)fields[i].out = v;
            break;
        }
    }
    return 0;
}

static int required(struct rs_error *err, const char *name, const char *what)
{
    return rs_error_field(err, RS_EVALIDATION, name, "required", "%s is required: %s", name, what);
}

/* Wipes the strings of a body that carried secrets, then frees it. */
static void body_wipe(json_t *body)
{
    const char *key;
    json_t *v;
    json_object_foreach(body, key, v)
    {
        if (json_is_string(v)) {
            char *s = (char *)json_string_value(v);
            sodium_memzero(s, json_string_length(v));
        }
    }
    json_decref(body);
}

static void set_session_cookie(struct rs_call *call, const char *token)
{
    free(call->set_cookie);
    call->set_cookie = rs_session_cookie(token, call->ctx.secure, 0);
}

static json_t *user_brief(const struct rs_user *u)
{
    return json_pack("{s:I,s:s,s:s?,s:s?,s:s?,s:s}", "id", (json_int_t)u->id, "username",
                     u->username, "email", u->email, "first_name", u->first_name, "last_name",
                     u->last_name, "type", rs_user_type_name(u->type));
}

static json_t *session_json(const struct rs_session *s, int64_t current)
{
    char c[RS_TIME_STR_MAX], l[RS_TIME_STR_MAX], e[RS_TIME_STR_MAX];
    rs_time_format(s->created_at, c);
    rs_time_format(s->last_seen_at, l);
    rs_time_format(s->expires_at, e);
    json_t *o = json_pack("{s:I,s:s,s:s,s:s,s:s,s:s}", "id", (json_int_t)s->id, "created_at", c,
                          "last_seen_at", l, "expires_at", e, "ip", s->ip ? s->ip : "",
                          "user_agent", s->user_agent ? s->user_agent : "");
    if (current >= 0)
        json_object_set_new(o, "current", json_boolean(s->id == current));
    return o;
}

/* --- sign-in --- */

int rs_h_auth_login(struct rs_call *call)
{
    json_t *body = rs_call_body_object(call);
    if (!body)
        return rs_call_fail(call, -RS_EBADREQUEST);
    struct rs_login_in in = {0};
    struct field f[] = {{"username", F_STRING, &in.username}, {"email", F_STRING, &in.email},
                        {"password", F_STRING, &in.password}, {"totp", F_STRING, &in.totp},
                        {"recovery_code", F_STRING, &in.recovery_code}};
    int r = decode(body, f, RS_ARRAY_LEN(f), &call->err);
    if (r == 0 && in.username && in.email)
        r = rs_error_field(&call->err, RS_EBADREQUEST, "email", "conflict",
                           "give username or email, not both");
    else if (r == 0 && !in.username && !in.email)
        r = required(&call->err, "username", "give your username or your email");
    else if (r == 0 && !in.password)
        r = required(&call->err, "password", "your password");
    if (r < 0) {
        body_wipe(body);
        return rs_call_fail(call, r);
    }
    in.user_agent = call->user_agent;
    struct rs_login_out out;
    int retry = 0;
    r = rs_svc_login(&call->ctx, &in, &out, &retry, &call->err);
    body_wipe(body);
    if (r < 0) {
        call->retry_after = retry;
        return rs_call_fail(call, r);
    }
    set_session_cookie(call, out.token);
    json_t *o = json_object();
    json_object_set_new(o, "user", user_brief(&out.user));
    json_object_set_new(o, "session", session_json(&out.session, -1));
    json_object_set_new(o, "csrf_token", json_string(out.csrf));
    json_object_set_new(o, "must_change_password",
                        json_boolean(out.session.flags & RS_SESSION_MUST_CHANGE));
    json_object_set_new(o, "must_enroll_totp",
                        json_boolean(out.session.flags & RS_SESSION_MUST_ENROLL));
    rs_login_out_release(&out);
    rs_call_json(call, 200, o);
    return 0;
}

int rs_h_auth_logout(struct rs_call *call)
{
    int r = rs_svc_logout(&call->ctx, &call->err);
    if (r < 0)
        return rs_call_fail(call, r);
    free(call->set_cookie);
    call->set_cookie = rs_session_cookie(NULL, call->ctx.secure, 0);
    call->status = 204;
    return 0;
}

int rs_h_auth_me(struct rs_call *call)
{
    json_t *o = NULL;
    int r = rs_svc_me(&call->ctx, &o, &call->err);
    if (r < 0)
        return rs_call_fail(call, r);
    rs_call_json(call, 200, o);
    return 0;
}

int rs_h_auth_change_password(struct rs_call *call)
{
    json_t *body = rs_call_body_object(call);
    if (!body)
        return rs_call_fail(call, -RS_EBADREQUEST);
    const char *cur, *nw;
    struct field f[] = {{"current_password", F_STRING, &cur}, {"new_password", F_STRING, &nw}};
    int r = decode(body, f, RS_ARRAY_LEN(f), &call->err);
    if (r == 0 && !nw)
        r = required(&call->err, "new_password", "the password you want");
    char token[48], csrf[RS_HASH_HEX];
    if (r == 0)
        r = rs_svc_change_password(&call->ctx, cur, nw, token, csrf, &call->err);
    body_wipe(body);
    if (r < 0)
        return rs_call_fail(call, r);
    json_t *o = json_pack("{s:s}", "status", "password_changed");
    if (token[0]) {
        set_session_cookie(call, token);
        json_object_set_new(o, "csrf_token", json_string(csrf));
    }
    sodium_memzero(token, sizeof(token));
    rs_call_json(call, 200, o);
    return 0;
}

int rs_h_auth_forgot_password(struct rs_call *call)
{
    json_t *body = rs_call_body_object(call);
    if (!body)
        return rs_call_fail(call, -RS_EBADREQUEST);
    const char *email;
    struct field f[] = {{"email", F_STRING, &email}};
    int r = decode(body, f, RS_ARRAY_LEN(f), &call->err);
    int retry = 0;
    if (r == 0)
        r = rs_svc_forgot_password(&call->ctx, email, &retry, &call->err);
    json_decref(body);
    if (r < 0) {
        call->retry_after = retry;
        return rs_call_fail(call, r);
    }
    rs_call_json(call, 202,
                 json_pack("{s:s,s:s}", "status", "accepted", "detail",
                           "If an account uses that address, a reset link is on its way."));
    return 0;
}

/* reset-password and activate: {"token", "password"}. */
static int token_and_password(struct rs_call *call, bool activate)
{
    json_t *body = rs_call_body_object(call);
    if (!body)
        return rs_call_fail(call, -RS_EBADREQUEST);
    const char *token, *pw;
    struct field f[] = {{"token", F_STRING, &token}, {"password", F_STRING, &pw}};
    int r = decode(body, f, RS_ARRAY_LEN(f), &call->err);
    if (r == 0 && !token)
        r = required(&call->err, "token", "the token from the link in your email");
    if (r == 0)
        r = activate ? rs_svc_activate(&call->ctx, token, pw, &call->err)
                     : rs_svc_reset_password(&call->ctx, token, pw, &call->err);
    body_wipe(body);
    if (r < 0)
        return rs_call_fail(call, r);
    rs_call_json(call, 200,
                 json_pack("{s:s}", "status", activate ? "activated" : "password_changed"));
    return 0;
}

int rs_h_auth_reset_password(struct rs_call *call)
{
    return token_and_password(call, false);
}

int rs_h_auth_activate(struct rs_call *call)
{
    return token_and_password(call, true);
}

/* --- sessions --- */

static int sessions_list(struct rs_call *call, int64_t user_id)
{
    struct rs_session *items = NULL;
    size_t n = 0;
    int r = rs_svc_sessions_list(&call->ctx, user_id, &items, &n, &call->err);
    if (r < 0)
        return rs_call_fail(call, r);
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, session_json(&items[i], user_id ? -1 : call->ctx.session_id));
    rs_sessions_free(items, n);
    rs_call_json(call, 200, json_pack("{s:o}", "items", arr));
    return 0;
}

int rs_h_auth_sessions_list(struct rs_call *call)
{
    return sessions_list(call, 0);
}

int rs_h_user_sessions_list(struct rs_call *call)
{
    return sessions_list(call, call->id);
}

int rs_h_auth_session_delete(struct rs_call *call)
{
    int r = rs_svc_session_end(&call->ctx, 0, call->id, &call->err);
    if (r < 0)
        return rs_call_fail(call, r);
    if (call->id == call->ctx.session_id) {
        free(call->set_cookie);
        call->set_cookie = rs_session_cookie(NULL, call->ctx.secure, 0);
    }
    call->status = 204;
    return 0;
}

int rs_h_user_session_end(struct rs_call *call)
{
    int r = rs_svc_session_end(&call->ctx, call->id, call->id2, &call->err);
    if (r < 0)
        return rs_call_fail(call, r);
    call->status = 204;
    return 0;
}

int rs_h_user_sessions_end_all(struct rs_call *call)
{
    int n = 0;
    int r = rs_svc_sessions_end_all(&call->ctx, call->id, &n, &call->err);
    if (r < 0)
        return rs_call_fail(call, r);
    rs_call_json(call, 200, json_pack("{s:i}", "ended", n));
    return 0;
}

/* --- 2FA --- */

int rs_h_auth_totp_status(struct rs_call *call)
{
    json_t *o = NULL;
    int r = rs_svc_totp_status(&call->ctx, &o, &call->err);
    if (r < 0)
        return rs_call_fail(call, r);
    rs_call_json(call, 200, o);
    return 0;
}

/* Bodies of one or two secret strings. */
static json_t *secret_body(struct rs_call *call, const char *a, const char **va, const char *b,
                           const char **vb)
{
    json_t *body = rs_call_body_object(call);
    if (!body)
        return NULL;
    struct field f[2] = {{a, F_STRING, va}, {b ? b : "", F_STRING, vb}};
    int r = decode(body, f, b ? 2 : 1, &call->err);
    if (r < 0) {
        body_wipe(body);
        return NULL;
    }
    return body;
}

int rs_h_auth_totp_enroll(struct rs_call *call)
{
    const char *pw, *unused;
    json_t *body = secret_body(call, "password", &pw, NULL, &unused);
    if (!body)
        return rs_call_fail(call, -RS_EBADREQUEST);
    json_t *o = NULL;
    int r = rs_svc_totp_enroll(&call->ctx, pw, &o, &call->err);
    body_wipe(body);
    if (r < 0)
        return rs_call_fail(call, r);
    rs_call_json(call, 200, o);
    return 0;
}

int rs_h_auth_totp_confirm(struct rs_call *call)
{
    const char *code, *unused;
    json_t *body = secret_body(call, "code", &code, NULL, &unused);
    if (!body)
        return rs_call_fail(call, -RS_EBADREQUEST);
    json_t *o = NULL;
    char token[48], csrf[RS_HASH_HEX];
    int r = rs_svc_totp_confirm(&call->ctx, code, &o, token, csrf, &call->err);
    body_wipe(body);
    if (r < 0)
        return rs_call_fail(call, r);
    if (token[0]) {
        set_session_cookie(call, token);
        json_object_set_new(o, "csrf_token", json_string(csrf));
    }
    sodium_memzero(token, sizeof(token));
    rs_call_json(call, 200, o);
    return 0;
}

int rs_h_auth_totp_disable(struct rs_call *call)
{
    const char *pw, *code;
    json_t *body = secret_body(call, "password", &pw, "code", &code);
    if (!body)
        return rs_call_fail(call, -RS_EBADREQUEST);
    int r = rs_svc_totp_disable(&call->ctx, pw, code, &call->err);
    body_wipe(body);
    if (r < 0)
        return rs_call_fail(call, r);
    rs_call_json(call, 200, json_pack("{s:b}", "enabled", 0));
    return 0;
}

int rs_h_auth_totp_recovery(struct rs_call *call)
{
    const char *pw, *unused;
    json_t *body = secret_body(call, "password", &pw, NULL, &unused);
    if (!body)
        return rs_call_fail(call, -RS_EBADREQUEST);
    json_t *o = NULL;
    int r = rs_svc_totp_recovery_codes(&call->ctx, pw, &o, &call->err);
    body_wipe(body);
    if (r < 0)
        return rs_call_fail(call, r);
    rs_call_json(call, 200, o);
    return 0;
}

int rs_h_user_totp_reset(struct rs_call *call)
{
    int r = rs_svc_totp_reset(&call->ctx, call->id, &call->err);
    if (r < 0)
        return rs_call_fail(call, r);
    rs_call_json(call, 200, json_pack("{s:I,s:b}", "user_id", (json_int_t)call->id, "enabled", 0));
    return 0;
}

/* --- administering a user's credentials --- */

int rs_h_user_reset_password(struct rs_call *call)
{
    json_t *body = rs_call_body_object(call);
    if (!body)
        return rs_call_fail(call, -RS_EBADREQUEST);
    const char *method, *pw;
    struct field f[] = {{"method", F_STRING, &method}, {"password", F_STRING, &pw}};
    int r = decode(body, f, RS_ARRAY_LEN(f), &call->err);
    if (r == 0 && !method)
        r = required(&call->err, "method", "\"email\" or \"temporary\"");
    char *temp = NULL;
    bool by_email = method && strcmp(method, "email") == 0;
    if (r == 0)
        r = rs_svc_admin_reset_password(&call->ctx, call->id, method, pw, &temp, &call->err);
    body_wipe(body);
    if (r < 0)
        return rs_call_fail(call, r);
    if (by_email) {
        rs_call_json(call, 202, json_pack("{s:s}", "status", "reset_email_queued"));
    } else {
        json_t *o = json_pack("{s:s,s:b}", "status", "temporary_password_set",
                              "must_change_password", 1);
        if (temp) {
            json_object_set_new(o, "temporary_password", json_string(temp));
            sodium_memzero(temp, strlen(temp));
            free(temp);
        }
        rs_call_json(call, 200, o);
    }
    return 0;
}

int rs_h_user_invite(struct rs_call *call)
{
    int r = rs_svc_invite(&call->ctx, call->id, &call->err);
    if (r < 0)
        return rs_call_fail(call, r);
    rs_call_json(call, 202, json_pack("{s:s}", "status", "invite_queued"));
    return 0;
}

int rs_h_user_ip_ranges_get(struct rs_call *call)
{
    json_t *o = NULL;
    int r = rs_svc_ip_ranges_get(&call->ctx, call->id, &o, &call->err);
    if (r < 0)
        return rs_call_fail(call, r);
    rs_call_json(call, 200, o);
    return 0;
}

int rs_h_user_ip_ranges_put(struct rs_call *call)
{
    json_t *body = rs_call_body_object(call);
    if (!body)
        return rs_call_fail(call, -RS_EBADREQUEST);
    json_t *ranges;
    struct field f[] = {{"ranges", F_ARRAY, &ranges}};
    int r = decode(body, f, RS_ARRAY_LEN(f), &call->err);
    if (r == 0 && !ranges)
        r = required(&call->err, "ranges", "a list of address ranges ([] for none)");
    if (r == 0)
        r = rs_svc_ip_ranges_put(&call->ctx, call->id, ranges, &call->err);
    json_decref(body);
    if (r < 0)
        return rs_call_fail(call, r);
    json_t *o = NULL;
    r = rs_svc_ip_ranges_get(&call->ctx, call->id, &o, &call->err);
    if (r < 0)
        return rs_call_fail(call, r);
    rs_call_json(call, 200, o);
    return 0;
}

int rs_h_user_login_diagnosis(struct rs_call *call)
{
    struct rs_query_params p;
    static const char *const allowed[] = {"ip", NULL};
    int r = rs_query_parse(call->query, &p, &call->err);
    if (r < 0)
        return rs_call_fail(call, r);
    r = rs_query_check(&p, allowed, &call->err);
    json_t *o = NULL;
    if (r == 0)
        r = rs_svc_login_diagnosis(&call->ctx, call->id, rs_query_get(&p, "ip"), &o, &call->err);
    rs_query_release(&p);
    if (r < 0)
        return rs_call_fail(call, r);
    rs_call_json(call, 200, o);
    return 0;
}

/* --- tests only --- */

int rs_h_test_jobs(struct rs_call *call)
{
    json_t *body = rs_call_body_object(call);
    if (!body)
        return rs_call_fail(call, -RS_EBADREQUEST);
    json_t *v = json_object_get(body, "paused");
    if (!json_is_boolean(v) || json_object_size(body) != 1) {
        json_decref(body);
        rs_error_field(&call->err, RS_EBADREQUEST, "paused", "type",
                       "body must be {\"paused\": true or false}");
        return rs_call_fail(call, -RS_EBADREQUEST);
    }
    bool paused = json_is_true(v);
    json_decref(body);
    const char *on = getenv("ROSTER_TEST_CLOCK");
    int r = rs_svc_test_jobs_pause(&call->ctx, on && strcmp(on, "1") == 0, paused, &call->err);
    if (r < 0)
        return rs_call_fail(call, r);
    rs_call_json(call, 200, json_pack("{s:b}", "paused", paused));
    return 0;
}

int rs_h_test_clock(struct rs_call *call)
{
    json_t *body = rs_call_body_object(call);
    if (!body)
        return rs_call_fail(call, -RS_EBADREQUEST);
    json_t *v = json_object_get(body, "offset_ms");
    if (!json_is_integer(v) || json_object_size(body) != 1) {
        json_decref(body);
        rs_error_field(&call->err, RS_EBADREQUEST, "offset_ms", "type",
                       "body must be {\"offset_ms\": integer}");
        return rs_call_fail(call, -RS_EBADREQUEST);
    }
    const char *on = getenv("ROSTER_TEST_CLOCK");
    int r = rs_svc_test_clock_set(&call->ctx, on && strcmp(on, "1") == 0,
                                  json_integer_value(v), &call->err);
    json_decref(body);
    if (r < 0)
        return rs_call_fail(call, r);
    rs_call_json(call, 200, json_pack("{s:I}", "offset_ms", (json_int_t)rs_clock_offset_get()));
    return 0;
}
