/* routes.c: the route table. Every /api/v1 route declares the resource and
 * level it needs; the server authenticates and checks that level before the
 * handler runs (RS_ROUTE_SELF and RS_ROUTE_OWN leave the caller's own things
 * to the service). */
#include <stdio.h>

#include "http.h"

/* Lifecycle actions take an optional {"reason", "note"} body. */
#define ACTION (RS_ROUTE_WRITES | RS_ROUTE_BODY | RS_ROUTE_BODY_OPTIONAL)
#define WRITE_BODY (RS_ROUTE_WRITES | RS_ROUTE_BODY)

static const struct rs_route routes[] = {
    {"GET", "/healthz", RS_RES_SYSTEM, RS_LEVEL_NONE, RS_ROUTE_PUBLIC, rs_h_healthz},
    {"GET", "/metrics", RS_RES_SYSTEM, RS_LEVEL_NONE, RS_ROUTE_PUBLIC | RS_ROUTE_LOCAL,
     rs_h_metrics},
    {"GET", "/api/v1/users", RS_RES_USERS, RS_LEVEL_READ, 0, rs_h_users_list},
    {"POST", "/api/v1/users", RS_RES_USERS, RS_LEVEL_WRITE, RS_ROUTE_WRITES | RS_ROUTE_BODY,
     rs_h_users_create},
    /* Before {id}, for readability ({id} only matches digits anyway). Runs on
     * the pool: it reads every matching user and writes an audit event. */
    {"GET", "/api/v1/users/export", RS_RES_EXPORT, RS_LEVEL_READ, RS_ROUTE_WRITES,
     rs_h_users_export},
    {"GET", "/api/v1/users/{id}", RS_RES_USERS, RS_LEVEL_READ, RS_ROUTE_SELF, rs_h_users_get},
    {"PATCH", "/api/v1/users/{id}", RS_RES_USERS, RS_LEVEL_WRITE, RS_ROUTE_WRITES | RS_ROUTE_BODY,
     rs_h_users_update},
    {"GET", "/api/v1/users/{id}/history", RS_RES_AUDIT, RS_LEVEL_READ, 0, rs_h_users_history},
    {"GET", "/api/v1/users/{id}/profile", RS_RES_USERS, RS_LEVEL_READ, RS_ROUTE_SELF,
     rs_h_users_profile},
    {"POST", "/api/v1/users/{id}/activate", RS_RES_USERS, RS_LEVEL_WRITE, ACTION, rs_h_users_activate},
    {"POST", "/api/v1/users/{id}/deactivate", RS_RES_USERS, RS_LEVEL_WRITE, ACTION,
     rs_h_users_deactivate},
    {"POST", "/api/v1/users/{id}/reactivate", RS_RES_USERS, RS_LEVEL_WRITE, ACTION,
     rs_h_users_reactivate},
    {"POST", "/api/v1/users/{id}/lock", RS_RES_USERS, RS_LEVEL_WRITE, ACTION, rs_h_users_lock},
    {"POST", "/api/v1/users/{id}/unlock", RS_RES_USERS, RS_LEVEL_WRITE, ACTION, rs_h_users_unlock},
    {"POST", "/api/v1/users/{id}/erase", RS_RES_USERS, RS_LEVEL_ADMIN, ACTION, rs_h_users_erase},
    {"GET", "/api/v1/settings/users", RS_RES_SETTINGS, RS_LEVEL_READ, 0, rs_h_settings_users_get},
    {"PATCH", "/api/v1/settings/users", RS_RES_SETTINGS, RS_LEVEL_ADMIN,
     RS_ROUTE_WRITES | RS_ROUTE_BODY, rs_h_settings_users_patch},
    {"GET", "/api/v1/settings/users/fields", RS_RES_USERS, RS_LEVEL_READ, 0, rs_h_fields_list},
    {"POST", "/api/v1/settings/users/fields", RS_RES_SETTINGS, RS_LEVEL_ADMIN,
     RS_ROUTE_WRITES | RS_ROUTE_BODY, rs_h_fields_create},
    {"GET", "/api/v1/settings/users/fields/{id}", RS_RES_USERS, RS_LEVEL_READ, 0, rs_h_fields_get},
    {"PATCH", "/api/v1/settings/users/fields/{id}", RS_RES_SETTINGS, RS_LEVEL_ADMIN,
     RS_ROUTE_WRITES | RS_ROUTE_BODY, rs_h_fields_update},
    {"GET", "/api/v1/users/{id}/roles", RS_RES_USERS, RS_LEVEL_READ, RS_ROUTE_SELF,
     rs_h_user_roles_get},
    {"PUT", "/api/v1/users/{id}/roles", RS_RES_USERS, RS_LEVEL_WRITE, WRITE_BODY,
     rs_h_user_roles_put},
    {"GET", "/api/v1/users/{id}/permissions", RS_RES_ROLES, RS_LEVEL_READ, RS_ROUTE_SELF,
     rs_h_user_permissions},
    {"GET", "/api/v1/resources", RS_RES_ROLES, RS_LEVEL_READ, 0, rs_h_resources_list},
    {"POST", "/api/v1/resources", RS_RES_ROLES, RS_LEVEL_ADMIN, WRITE_BODY,
     rs_h_resources_register},
    {"GET", "/api/v1/roles", RS_RES_ROLES, RS_LEVEL_READ, 0, rs_h_roles_list},
    {"POST", "/api/v1/roles", RS_RES_ROLES, RS_LEVEL_ADMIN, WRITE_BODY, rs_h_roles_create},
    {"GET", "/api/v1/roles/{id}", RS_RES_ROLES, RS_LEVEL_READ, 0, rs_h_roles_list},
    {"PATCH", "/api/v1/roles/{id}", RS_RES_ROLES, RS_LEVEL_ADMIN, WRITE_BODY, rs_h_roles_update},
    {"POST", "/api/v1/roles/{id}/retire", RS_RES_ROLES, RS_LEVEL_ADMIN, RS_ROUTE_WRITES,
     rs_h_roles_retire},
    {"GET", "/api/v1/access/check", RS_RES_ROLES, RS_LEVEL_READ, 0, rs_h_access_check},
    {"POST", "/api/v1/access/cache/clear", RS_RES_SETTINGS, RS_LEVEL_ADMIN, RS_ROUTE_WRITES,
     rs_h_access_cache_clear},
    {"GET", "/api/v1/groups", RS_RES_GROUPS, RS_LEVEL_READ, 0, rs_h_groups_list},
    {"POST", "/api/v1/groups", RS_RES_GROUPS, RS_LEVEL_WRITE, WRITE_BODY, rs_h_groups_create},
    {"GET", "/api/v1/groups/{id}", RS_RES_GROUPS, RS_LEVEL_READ, 0, rs_h_groups_get},
    {"PATCH", "/api/v1/groups/{id}", RS_RES_GROUPS, RS_LEVEL_WRITE, WRITE_BODY,
     rs_h_groups_update},
    {"DELETE", "/api/v1/groups/{id}", RS_RES_GROUPS, RS_LEVEL_WRITE, RS_ROUTE_WRITES,
     rs_h_groups_delete},
    {"GET", "/api/v1/groups/{id}/members", RS_RES_GROUPS, RS_LEVEL_READ, 0,
     rs_h_group_members_list},
    {"POST", "/api/v1/groups/{id}/members", RS_RES_GROUPS, RS_LEVEL_WRITE, WRITE_BODY,
     rs_h_group_members_add},
    {"DELETE", "/api/v1/groups/{id}/members/{uid}", RS_RES_GROUPS, RS_LEVEL_WRITE,
     RS_ROUTE_WRITES, rs_h_group_member_remove},
    {"GET", "/api/v1/groups/{id}/recipients", RS_RES_GROUPS, RS_LEVEL_READ, 0,
     rs_h_group_recipients},
    {"GET", "/api/v1/groups/{id}/assignees", RS_RES_GROUPS, RS_LEVEL_READ, 0,
     rs_h_group_assignees},
    /* Sign-in (h_auth.c). "Signed in" routes need a caller but no resource. */
    {"POST", "/api/v1/auth/login", RS_RES_SYSTEM, RS_LEVEL_NONE,
     RS_ROUTE_PUBLIC | WRITE_BODY | RS_ROUTE_HASHES, rs_h_auth_login},
    {"POST", "/api/v1/auth/logout", RS_RES_SYSTEM, RS_LEVEL_NONE,
     RS_ROUTE_WRITES | RS_ROUTE_PW_OK | RS_ROUTE_2FA_OK, rs_h_auth_logout},
    {"GET", "/api/v1/auth/me", RS_RES_SYSTEM, RS_LEVEL_NONE, RS_ROUTE_PW_OK | RS_ROUTE_2FA_OK,
     rs_h_auth_me},
    {"POST", "/api/v1/auth/change-password", RS_RES_SYSTEM, RS_LEVEL_NONE,
     WRITE_BODY | RS_ROUTE_HASHES | RS_ROUTE_PW_OK | RS_ROUTE_2FA_OK, rs_h_auth_change_password},
    {"POST", "/api/v1/auth/forgot-password", RS_RES_SYSTEM, RS_LEVEL_NONE,
     RS_ROUTE_PUBLIC | WRITE_BODY, rs_h_auth_forgot_password},
    {"POST", "/api/v1/auth/reset-password", RS_RES_SYSTEM, RS_LEVEL_NONE,
     RS_ROUTE_PUBLIC | WRITE_BODY | RS_ROUTE_HASHES, rs_h_auth_reset_password},
    {"POST", "/api/v1/auth/activate", RS_RES_SYSTEM, RS_LEVEL_NONE,
     RS_ROUTE_PUBLIC | WRITE_BODY | RS_ROUTE_HASHES, rs_h_auth_activate},
    {"GET", "/api/v1/auth/sessions", RS_RES_SYSTEM, RS_LEVEL_NONE, RS_ROUTE_PW_OK,
     rs_h_auth_sessions_list},
    {"DELETE", "/api/v1/auth/sessions/{id}", RS_RES_SYSTEM, RS_LEVEL_NONE,
     RS_ROUTE_WRITES | RS_ROUTE_PW_OK, rs_h_auth_session_delete},
    {"GET", "/api/v1/auth/totp", RS_RES_SYSTEM, RS_LEVEL_NONE, RS_ROUTE_2FA_OK | RS_ROUTE_PW_OK,
     rs_h_auth_totp_status},
    {"POST", "/api/v1/auth/totp/enroll", RS_RES_SYSTEM, RS_LEVEL_NONE,
     WRITE_BODY | RS_ROUTE_HASHES | RS_ROUTE_2FA_OK | RS_ROUTE_PW_OK, rs_h_auth_totp_enroll},
    {"POST", "/api/v1/auth/totp/confirm", RS_RES_SYSTEM, RS_LEVEL_NONE,
     WRITE_BODY | RS_ROUTE_2FA_OK | RS_ROUTE_PW_OK, rs_h_auth_totp_confirm},
    {"POST", "/api/v1/auth/totp/disable", RS_RES_SYSTEM, RS_LEVEL_NONE,
     WRITE_BODY | RS_ROUTE_HASHES, rs_h_auth_totp_disable},
    {"POST", "/api/v1/auth/totp/recovery-codes", RS_RES_SYSTEM, RS_LEVEL_NONE,
     WRITE_BODY | RS_ROUTE_HASHES, rs_h_auth_totp_recovery},
    {"GET", "/api/v1/users/{id}/sessions", RS_RES_USERS, RS_LEVEL_WRITE, 0,
     rs_h_user_sessions_list},
    {"DELETE", "/api/v1/users/{id}/sessions", RS_RES_USERS, RS_LEVEL_WRITE, RS_ROUTE_WRITES,
     rs_h_user_sessions_end_all},
    {"DELETE", "/api/v1/users/{id}/sessions/{uid}", RS_RES_USERS, RS_LEVEL_WRITE, RS_ROUTE_WRITES,
     rs_h_user_session_end},
    {"POST", "/api/v1/users/{id}/reset-password", RS_RES_USERS, RS_LEVEL_WRITE,
     WRITE_BODY | RS_ROUTE_HASHES, rs_h_user_reset_password},
    {"POST", "/api/v1/users/{id}/invite", RS_RES_USERS, RS_LEVEL_WRITE, RS_ROUTE_WRITES,
     rs_h_user_invite},
    {"POST", "/api/v1/users/{id}/totp/reset", RS_RES_USERS, RS_LEVEL_ADMIN, RS_ROUTE_WRITES,
     rs_h_user_totp_reset},
    {"GET", "/api/v1/users/{id}/ip-ranges", RS_RES_USERS, RS_LEVEL_WRITE, 0,
     rs_h_user_ip_ranges_get},
    {"PUT", "/api/v1/users/{id}/ip-ranges", RS_RES_USERS, RS_LEVEL_WRITE, WRITE_BODY,
     rs_h_user_ip_ranges_put},
    {"GET", "/api/v1/users/{id}/login-diagnosis", RS_RES_USERS, RS_LEVEL_WRITE, 0,
     rs_h_user_login_diagnosis},
    /* Authentication and notification settings, the outbox (h_notify.c). */
    {"GET", "/api/v1/settings/auth", RS_RES_SETTINGS, RS_LEVEL_READ, 0, rs_h_settings_auth_get},
    {"PATCH", "/api/v1/settings/auth", RS_RES_SETTINGS, RS_LEVEL_ADMIN, WRITE_BODY,
     rs_h_settings_auth_patch},
    {"GET", "/api/v1/settings/notifications", RS_RES_SETTINGS, RS_LEVEL_READ, 0,
     rs_h_settings_notify_get},
    {"PATCH", "/api/v1/settings/notifications", RS_RES_SETTINGS, RS_LEVEL_ADMIN, WRITE_BODY,
     rs_h_settings_notify_patch},
    {"POST", "/api/v1/settings/notifications/test", RS_RES_SETTINGS, RS_LEVEL_ADMIN, WRITE_BODY,
     rs_h_settings_notify_test},
    {"GET", "/api/v1/outbox", RS_RES_SETTINGS, RS_LEVEL_READ, 0, rs_h_outbox_list},
    /* Tests only: 404 unless the server runs with ROSTER_TEST_CLOCK=1. */
    {"PUT", "/api/v1/test/clock", RS_RES_SETTINGS, RS_LEVEL_ADMIN, WRITE_BODY, rs_h_test_clock},
    {"PUT", "/api/v1/test/jobs", RS_RES_SETTINGS, RS_LEVEL_ADMIN, WRITE_BODY, rs_h_test_jobs},
    {"GET", "/api/v1/api-keys", RS_RES_APIKEYS, RS_LEVEL_READ, RS_ROUTE_OWN, rs_h_apikeys_list},
    {"POST", "/api/v1/api-keys", RS_RES_APIKEYS, RS_LEVEL_WRITE,
     RS_ROUTE_WRITES | RS_ROUTE_BODY | RS_ROUTE_OWN,
     rs_h_apikeys_create},
    {"POST", "/api/v1/api-keys/{id}/revoke", RS_RES_APIKEYS, RS_LEVEL_WRITE,
     RS_ROUTE_WRITES | RS_ROUTE_OWN,
     rs_h_apikeys_revoke},
};

const struct rs_route *rs_routes(size_t *ret_count)
{
    *ret_count = RS_ARRAY_LEN(routes);
    return routes;
}

/* Matches path against pattern; {id} and {uid} take positive decimal integers. */
static bool path_matches(const char *pattern, const char *path, size_t plen, int64_t ret_ids[2])
{
    const char *p = path, *end = path + plen;
    int64_t ids[2] = {0, 0};
    while (*pattern) {
        bool is_id = strncmp(pattern, "{id}", 4) == 0, is_uid = strncmp(pattern, "{uid}", 5) == 0;
        if (is_id || is_uid) {
            const char *start = p;
            int64_t v = 0;
            while (p < end && *p >= '0' && *p <= '9' && p - start < 18)
                v = v * 10 + (*p++ - '0');
            if (p == start || (p < end && *p != '/') || v <= 0)
                return false;
            ids[is_uid ? 1 : 0] = v;
            pattern += is_uid ? 5 : 4;
            continue;
        }
        if (p == end || *p != *pattern)
            return false;
        p++;
        pattern++;
    }
    if (p != end)
        return false;
    ret_ids[0] = ids[0];
    ret_ids[1] = ids[1];
    return true;
}

enum rs_route_match rs_route_find(const char *method, size_t mlen, const char *path, size_t plen,
                                  const struct rs_route **ret, int64_t ret_ids[2], char *allow,
                                  size_t allow_size)
{
    bool path_seen = false;
    size_t used = 0;
    if (allow_size)
        allow[0] = '\0';
    /* A trailing slash names the same resource. */
    if (plen > 1 && path[plen - 1] == '/')
        plen--;
    for (size_t i = 0; i < RS_ARRAY_LEN(routes); i++) {
        int64_t ids[2];
        if (!path_matches(routes[i].pattern, path, plen, ids))
            continue;
        if (strlen(routes[i].method) == mlen && memcmp(routes[i].method, method, mlen) == 0) {
            *ret = &routes[i];
            ret_ids[0] = ids[0];
            ret_ids[1] = ids[1];
            return RS_MATCH_OK;
        }
        path_seen = true;
        if (used < allow_size) {
            int n = snprintf(allow + used, allow_size - used, "%s%s", used ? ", " : "",
                             routes[i].method);
            used += n > 0 ? (size_t)n : 0;
        }
    }
    return path_seen ? RS_MATCH_NO_METHOD : RS_MATCH_NO_PATH;
}
