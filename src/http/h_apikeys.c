/* h_apikeys.c: /api/v1/api-keys handlers. The token appears only in the
 * create response. */
#include <sodium.h>
#include <stdio.h>

#include "../core/user_json.h"
#include "codec.h"
#include "http.h"

int rs_h_apikeys_create(struct rs_call *call)
{
    json_t *body = rs_call_body_object(call);
    if (!body)
        return rs_call_fail(call, -RS_EBADREQUEST);
    struct rs_apikey_request req;
    int r = rs_apikey_request_decode(body, &req, &call->err);
    json_decref(body);
    if (r < 0)
        return rs_call_fail(call, r);
    struct rs_apikey k;
    char token[RS_APIKEY_TOKEN_MAX];
    r = rs_svc_apikey_create(&call->ctx, req.username, req.name,
                             req.has_expires_at ? &req.expires_at : NULL, &k, token,
                             &call->err);
    rs_apikey_request_release(&req);
    if (r < 0)
        return rs_call_fail(call, r);
    json_t *o = rs_apikey_to_json(&k);
    json_object_set_new(o, "token", json_string(token));
    snprintf(call->location, sizeof(call->location), "/api/v1/api-keys/%lld", (long long)k.id);
    sodium_memzero(token, sizeof(token));
    rs_apikey_release(&k);
    rs_call_json(call, 201, o);
    return 0;
}

int rs_h_apikeys_list(struct rs_call *call)
{
    struct rs_query_params p;
    static const char *const allowed[] = {"username", NULL};
    int r = rs_query_parse(call->query, &p, &call->err);
    if (r < 0)
        return rs_call_fail(call, r);
    r = rs_query_check(&p, allowed, &call->err);
    struct rs_apikey *items = NULL;
    size_t n = 0;
    if (r == 0)
        r = rs_svc_apikey_list(&call->ctx, rs_query_get(&p, "username"), &items, &n, &call->err);
    rs_query_release(&p);
    if (r < 0)
        return rs_call_fail(call, r);
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        json_array_append_new(arr, rs_apikey_to_json(&items[i]));
        rs_apikey_release(&items[i]);
    }
    free(items);
    json_t *o = json_object();
    json_object_set_new(o, "items", arr);
    rs_call_json(call, 200, o);
    return 0;
}

int rs_h_apikeys_revoke(struct rs_call *call)
{
    struct rs_apikey k;
    int r = rs_svc_apikey_revoke(&call->ctx, call->id, &k, &call->err);
    if (r < 0)
        return rs_call_fail(call, r);
    rs_call_json(call, 200, rs_apikey_to_json(&k));
    rs_apikey_release(&k);
    return 0;
}
