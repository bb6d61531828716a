/* http.h: the HTTP front end's internal interface: the route table, the call
 * record a handler fills, and the metrics. Handlers know the service API and
 * JSON, never SQL. */
#ifndef RS_HTTP_H
#define RS_HTTP_H

#include <jansson.h>
#include <stdbool.h>

#include "../core/access.h"
#include "../service/service.h"

struct rs_call;
typedef int (*rs_handler_fn)(struct rs_call *call);

enum rs_route_flags {
    RS_ROUTE_PUBLIC = 1u << 0, /* no API key needed (health, metrics) */
    RS_ROUTE_WRITES = 1u << 1, /* changes data: always runs on the worker pool */
    RS_ROUTE_BODY = 1u << 2,   /* takes a JSON body */
    RS_ROUTE_LOCAL = 1u << 3,  /* answered by the front end itself (metrics) */
    RS_ROUTE_BODY_OPTIONAL = 1u << 4, /* with RS_ROUTE_BODY: an empty body is fine */
    RS_ROUTE_HASHES = 1u << 5,  /* computes password hashes: capped concurrency on the pool */
    RS_ROUTE_PW_OK = 1u << 6,   /* allowed to a session that must change its password */
    RS_ROUTE_2FA_OK = 1u << 7,  /* allowed to a session that must enrol 2FA */
    /* The declared level is not needed when {id} is the caller (their own
     * record, profile, roles, permissions): the service decides. */
    RS_ROUTE_SELF = 1u << 8,
    /* The declared level is what acting for others needs; without it the
     * service narrows the call to the caller's own (their API keys). */
    RS_ROUTE_OWN = 1u << 9,
};

struct rs_route {
    const char *method;  /* "GET", "POST", "PATCH" */
    const char *pattern; /* "/api/v1/users/{id}": segments, {id} a positive integer */
    enum rs_resource resource;
    enum rs_level level; /* what the caller needs on resource */
    unsigned flags;
    rs_handler_fn handler;
};

/* The route table, in match order. */
const struct rs_route *rs_routes(size_t *ret_count);

enum rs_route_match { RS_MATCH_OK, RS_MATCH_NO_PATH, RS_MATCH_NO_METHOD };
/* Finds the route for method and path (no query). On RS_MATCH_OK sets *ret and
 * ret_ids[0] ({id}) and ret_ids[1] ({uid}), 0 when absent; on
 * RS_MATCH_NO_METHOD fills allow (comma list). */
enum rs_route_match rs_route_find(const char *method, size_t mlen, const char *path, size_t plen,
                                  const struct rs_route **ret, int64_t ret_ids[2], char *allow,
                                  size_t allow_size);

/* One API call, copied out of the HTTP request so that it can run on another
 * thread without touching h2o's memory. Owned by the front end. */
struct rs_call {
    struct rs_ctx ctx;
    const struct rs_route *route;
    int64_t id;           /* the {id} path parameter */
    int64_t id2;          /* the {uid} path parameter */
    int64_t list_group;   /* users list limited to a group's members (0: none) */
    char *query;          /* raw query string without '?', or NULL */
    char *body;           /* request body (NUL-terminated copy), or NULL */
    size_t body_len;
    char *if_match;       /* If-Match value, or NULL */
    char *authorization;  /* Authorization value, or NULL */
    char *session_token;  /* the __Host-roster_session cookie's value, or NULL */
    char *csrf_token;     /* X-CSRF-Token value, or NULL */
    char *user_agent;     /* User-Agent (at most 256 bytes), or NULL */
    bool touch_key;       /* the API key's last-used time should be written */
    bool touch_session;   /* the session's last-seen time should be written */

    /* Output. */
    int status;
    json_t *json;         /* body to encode, or NULL */
    char *text;           /* or a preformatted body */
    const char *content_type;
    char location[96];
    char etag[48];
    char *set_cookie;     /* a whole Set-Cookie value, or NULL (freed by the server) */
    char disposition[64]; /* Content-Disposition, or empty */
    int retry_after;      /* seconds; > 0 adds Retry-After */
    struct rs_error err;  /* set when the call failed */
};

/* Handler helpers (respond.c). */
int rs_call_fail(struct rs_call *call, int r);
void rs_call_json(struct rs_call *call, int status, json_t *body);
/* The same with the body already encoded as JSON text (taken; freed later). */
void rs_call_json_text(struct rs_call *call, int status, char *text);
/* Parses the body as a JSON object, or fails the call (400). */
json_t *rs_call_body_object(struct rs_call *call);
/* The version the request's If-Match names into *ret: -1 when absent or
 * "*". A value that names no version (only "*" and a quoted version are
 * understood; weak tags never match) fails the call with 412 and returns
 * -RS_EPRECONDITION. */
int rs_call_if_match(struct rs_call *call, int64_t *ret) RS_WUR;
/* Maps an error code to its HTTP status. */
int rs_http_status(int code);
/* Encodes an RFC 9457 problem body for err (a new string). */
char *rs_problem_encode(const struct rs_error *err, int status, const char *instance,
                        const char *request_id);

/* Query strings (query.c): percent-decoded key/value pairs. */
#define RS_QUERY_MAX_PARAMS 32
struct rs_query_params {
    int n;
    char *keys[RS_QUERY_MAX_PARAMS];
    char *values[RS_QUERY_MAX_PARAMS];
};
int rs_query_parse(const char *qs, struct rs_query_params *ret, struct rs_error *err) RS_WUR;
void rs_query_release(struct rs_query_params *p);
/* Fails (400, naming the parameter) if a key is not in allowed (NULL-ended). */
int rs_query_check(const struct rs_query_params *p, const char *const *allowed,
                   struct rs_error *err) RS_WUR;
const char *rs_query_get(const struct rs_query_params *p, const char *key);

/* Handlers, one file per resource. */
int rs_h_users_list(struct rs_call *call);
int rs_h_users_export(struct rs_call *call);
int rs_h_users_create(struct rs_call *call);
int rs_h_users_get(struct rs_call *call);
int rs_h_users_update(struct rs_call *call);
int rs_h_users_history(struct rs_call *call);
int rs_h_users_profile(struct rs_call *call);
int rs_h_users_activate(struct rs_call *call);
int rs_h_users_deactivate(struct rs_call *call);
int rs_h_users_reactivate(struct rs_call *call);
int rs_h_users_lock(struct rs_call *call);
int rs_h_users_unlock(struct rs_call *call);
int rs_h_users_erase(struct rs_call *call);
int rs_h_settings_users_get(struct rs_call *call);
int rs_h_settings_users_patch(struct rs_call *call);
int rs_h_fields_list(struct rs_call *call);
int rs_h_fields_create(struct rs_call *call);
int rs_h_fields_get(struct rs_call *call);
int rs_h_fields_update(struct rs_call *call);
int rs_h_apikeys_list(struct rs_call *call);
int rs_h_apikeys_create(struct rs_call *call);
int rs_h_apikeys_revoke(struct rs_call *call);
int rs_h_resources_list(struct rs_call *call);
int rs_h_resources_register(struct rs_call *call);
int rs_h_roles_list(struct rs_call *call);
int rs_h_roles_create(struct rs_call *call);
int rs_h_roles_update(struct rs_call *call);
int rs_h_roles_retire(struct rs_call *call);
int rs_h_user_roles_get(struct rs_call *call);
int rs_h_user_roles_put(struct rs_call *call);
int rs_h_user_permissions(struct rs_call *call);
int rs_h_access_check(struct rs_call *call);
int rs_h_access_cache_clear(struct rs_call *call);
int rs_h_groups_list(struct rs_call *call);
int rs_h_groups_get(struct rs_call *call);
int rs_h_groups_create(struct rs_call *call);
int rs_h_groups_update(struct rs_call *call);
int rs_h_groups_delete(struct rs_call *call);
int rs_h_group_members_list(struct rs_call *call);
int rs_h_group_members_add(struct rs_call *call);
int rs_h_group_member_remove(struct rs_call *call);
int rs_h_group_recipients(struct rs_call *call);
int rs_h_group_assignees(struct rs_call *call);
/* h_auth.c */
int rs_h_auth_login(struct rs_call *call);
int rs_h_auth_logout(struct rs_call *call);
int rs_h_auth_me(struct rs_call *call);
int rs_h_auth_change_password(struct rs_call *call);
int rs_h_auth_forgot_password(struct rs_call *call);
int rs_h_auth_reset_password(struct rs_call *call);
int rs_h_auth_activate(struct rs_call *call);
int rs_h_auth_sessions_list(struct rs_call *call);
int rs_h_auth_session_delete(struct rs_call *call);
int rs_h_auth_totp_status(struct rs_call *call);
int rs_h_auth_totp_enroll(struct rs_call *call);
int rs_h_auth_totp_confirm(struct rs_call *call);
int rs_h_auth_totp_disable(struct rs_call *call);
int rs_h_auth_totp_recovery(struct rs_call *call);
int rs_h_user_sessions_list(struct rs_call *call);
int rs_h_user_sessions_end_all(struct rs_call *call);
int rs_h_user_session_end(struct rs_call *call);
int rs_h_user_reset_password(struct rs_call *call);
int rs_h_user_invite(struct rs_call *call);
int rs_h_user_totp_reset(struct rs_call *call);
int rs_h_user_ip_ranges_get(struct rs_call *call);
int rs_h_user_ip_ranges_put(struct rs_call *call);
int rs_h_user_login_diagnosis(struct rs_call *call);
int rs_h_test_clock(struct rs_call *call);
int rs_h_test_jobs(struct rs_call *call);
/* h_notify.c */
int rs_h_settings_auth_get(struct rs_call *call);
int rs_h_settings_auth_patch(struct rs_call *call);
int rs_h_settings_notify_get(struct rs_call *call);
int rs_h_settings_notify_patch(struct rs_call *call);
int rs_h_settings_notify_test(struct rs_call *call);
int rs_h_outbox_list(struct rs_call *call);
/* Builds the session cookie's Set-Cookie value (respond.c): token NULL
 * clears it. */
char *rs_session_cookie(const char *token, bool secure, int max_age_s);
/* After session authentication: when the session was rotated (its user's
 * privileges changed), sets the new session's cookie on the answer and
 * wipes the token from the context. */
void rs_call_session_rotated(struct rs_call *call);
int rs_h_healthz(struct rs_call *call);
int rs_h_metrics(struct rs_call *call);

/* Metrics (metrics.c). Each event-loop thread counts into its own shard;
 * scraping sums the shards. */
#define RS_METRICS_MAX_SHARDS 64
void rs_metrics_init(size_t nroutes, const char *backend);
/* route_idx: index in the route table, or nroutes for unmatched requests. */
void rs_metrics_observe(int shard, size_t route_idx, int status, uint64_t duration_ns);
/* Prometheus text exposition; db stats supplied by the caller. */
char *rs_metrics_render(const struct rs_store_stats *db);

#endif
