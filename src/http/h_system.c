/* h_system.c: /healthz and /metrics. */
#include "http.h"

int rs_h_healthz(struct rs_call *call)
{
    int r = rs_svc_health(&call->ctx, &call->err);
    if (r < 0) {
        rs_error_set(&call->err, RS_EUNAVAILABLE, "database unreachable");
        return rs_call_fail(call, -RS_EUNAVAILABLE);
    }
    json_t *o = json_object();
    json_object_set_new(o, "status", json_string("ok"));
    json_object_set_new(o, "backend", json_string(call->ctx.store->ops->name));
    rs_call_json(call, 200, o);
    return 0;
}

int rs_h_metrics(struct rs_call *call)
{
    struct rs_store_stats st = {0};
    call->ctx.store->ops->stats(call->ctx.store, &st);
    call->text = rs_metrics_render(&st);
    call->content_type = "text/plain; version=0.0.4; charset=utf-8";
    call->status = 200;
    return 0;
}
