/* settings.c: Settings -> Users -> Settings (validation, defaults, options,
 * licence) and the custom field definitions, each change audited. */
#include <pthread.h>

#include "internal.h"

#define SETTINGS_KEY "users"

/* The last stored document read, and what it parses to. Parsing it (jansson,
 * then rs_user_settings_from_json's checks) cost ~175k instructions, more
 * than a third of a create's path once an administrator has saved the
 * settings; a copy of the parsed settings costs a dozen allocations. The
 * key is the document's text, read as before in the caller's own
 * transaction and compared byte for byte, so the answer is exactly what
 * parsing would give whoever wrote the row (this process or another), and
 * nothing needs invalidating. */
static struct {
    pthread_mutex_t lock;
    char *text; /* NULL: nothing cached */
    struct rs_user_settings parsed;
} parsed_cache = {.lock = PTHREAD_MUTEX_INITIALIZER};

static bool cache_get(const char *text, struct rs_user_settings *ret)
{
    pthread_mutex_lock(&parsed_cache.lock);
    bool hit = parsed_cache.text && strcmp(parsed_cache.text, text) == 0;
    if (hit)
        rs_user_settings_copy(ret, &parsed_cache.parsed);
    pthread_mutex_unlock(&parsed_cache.lock);
    return hit;
}

static void cache_put(const char *text, const struct rs_user_settings *parsed)
{
    pthread_mutex_lock(&parsed_cache.lock);
    if (parsed_cache.text) {
        free(parsed_cache.text);
        rs_user_settings_release(&parsed_cache.parsed);
    }
    parsed_cache.text = rs_xstrdup(text);
    rs_user_settings_copy(&parsed_cache.parsed, parsed);
    pthread_mutex_unlock(&parsed_cache.lock);
}

static int parse_stored(const char *text, struct rs_user_settings *ret, struct rs_error *err)
{
    if (cache_get(text, ret))
        return 0;
    json_t *doc = json_loads(text, 0, NULL);
    if (!doc) {
        rs_error_log(err, "stored users settings are not JSON");
        return rs_error_set(err, RS_EINTERNAL, "settings are unreadable");
    }
    int r = rs_user_settings_from_json(doc, ret, err);
    json_decref(doc);
    if (r == 0)
        cache_put(text, ret);
    return r;
}

int rs_settings_load(struct rs_ctx *ctx, struct rs_conn *c, struct rs_user_settings *ret,
                     bool *ret_stored, struct rs_error *err)
{
    char *text = NULL;
    int64_t version = 0;
    int r = ctx->store->ops->settings_get(c, SETTINGS_KEY, &text, &version, err);
    if (r == -RS_ENOTFOUND) {
        rs_user_settings_defaults(ret);
        if (ret_stored)
            *ret_stored = false;
        return 0;
    }
    if (r < 0)
        return r;
    r = parse_stored(text, ret, err);
    free(text);
    if (r == 0) {
        ret->version = version;
        if (ret_stored)
            *ret_stored = true;
    }
    return r;
}

void rs_fields_free(struct rs_custom_field *items, size_t n)
{
    for (size_t i = 0; i < n; i++)
        rs_custom_field_release(&items[i]);
    free(items);
}

int rs_svc_settings_get(struct rs_ctx *ctx, struct rs_user_settings *ret, struct rs_error *err)
{
    int r = rs_svc_require(ctx, RS_RES_SETTINGS, RS_LEVEL_READ, err);
    if (r < 0)
        return r;
    struct rs_conn *c = rs_ctx_read_conn(ctx, err);
    if (!c)
        return -RS_EUNAVAILABLE;
    return rs_settings_load(ctx, c, ret, NULL, err);
}

int rs_svc_settings_patch(struct rs_ctx *ctx, json_t *patch, int64_t expected_version,
                          struct rs_user_settings *ret, struct rs_error *err)
{
    int r = rs_svc_require(ctx, RS_RES_SETTINGS, RS_LEVEL_ADMIN, err);
    if (r < 0)
        return r;
    struct rs_tx tx;
    struct rs_user_settings before, after;
    bool have_before = false, have_after = false;
    char *before_json = NULL, *after_json = NULL;
    r = rs_tx_begin(ctx, &tx, err);
    if (r < 0)
        return r;
    bool stored = false;
    r = rs_settings_load(ctx, tx.conn, &before, &stored, err);
    if (r < 0)
        goto abort;
    have_before = true;
    if (expected_version >= 0 && before.version != expected_version) {
        r = rs_error_set(err, RS_EPRECONDITION,
                         "the settings have changed (version %lld, If-Match names %lld); fetch "
                         "them again and retry",
                         (long long)before.version, (long long)expected_version);
        goto abort;
    }
    r = rs_user_settings_patch(&before, patch, &after, err);
    if (r < 0)
        goto abort;
    have_after = true;
    /* A document never stored is version 1 of the defaults; the first write
     * stores version 2 where none existed. */
    after.version = before.version + 1;
    before_json = rs_json_text(rs_user_settings_to_json(&before));
    json_t *doc = rs_user_settings_to_json(&after);
    after_json = rs_json_text(doc);
    r = ctx->store->ops->settings_put(tx.conn, SETTINGS_KEY, after_json, after.version,
                                      stored ? before.version : 0, rs_ctx_now(ctx), err);
    if (r == -RS_EPRECONDITION)
        r = rs_error_set(err, RS_EPRECONDITION, "the settings changed meanwhile; retry");
    if (r < 0)
        goto abort;
    r = rs_tx_audit(&tx, "settings.update", "settings", 0, before_json, after_json, NULL, err);
    if (r < 0)
        goto abort;
    r = rs_tx_commit(&tx, err);
    if (r == 0) {
        *ret = after;
        have_after = false;
    }
    goto out;
abort:
    rs_tx_abort(&tx);
out:
    if (have_before)
        rs_user_settings_release(&before);
    if (have_after)
        rs_user_settings_release(&after);
    free(before_json);
    free(after_json);
    return r;
}

int rs_svc_fields_list(struct rs_ctx *ctx, struct rs_custom_field **ret_items,
                       size_t *ret_count, struct rs_error *err)
{
    int r = rs_svc_require(ctx, RS_RES_USERS, RS_LEVEL_READ, err);
    if (r < 0)
        return r;
    struct rs_conn *c = rs_ctx_read_conn(ctx, err);
    if (!c)
        return -RS_EUNAVAILABLE;
    return ctx->store->ops->cf_list(c, ret_items, ret_count, err);
}

int rs_svc_field_create(struct rs_ctx *ctx, json_t *def, struct rs_custom_field *ret,
                        struct rs_error *err)
{
    int r = rs_svc_require(ctx, RS_RES_SETTINGS, RS_LEVEL_ADMIN, err);
    if (r < 0)
        return r;
    struct rs_custom_field f;
    r = rs_custom_field_decode(def, NULL, &f, err);
    if (r < 0)
        return r;
    struct rs_tx tx;
    struct rs_custom_field *items = NULL;
    size_t n = 0;
    r = rs_tx_begin(ctx, &tx, err);
    if (r < 0)
        goto out;
    r = ctx->store->ops->cf_list(tx.conn, &items, &n, err);
    if (r == 0 && n >= RS_CF_MAX_FIELDS)
        r = rs_error_set(err, RS_ECONFLICT, "at most %d custom fields; retire one first",
                         RS_CF_MAX_FIELDS);
    f.created_at = f.updated_at = rs_ctx_now(ctx);
    f.version = 1;
    if (r == 0)
        r = ctx->store->ops->cf_insert(tx.conn, &f, err);
    if (r == 0) {
        char *after = rs_json_text(rs_custom_field_to_json(&f));
        r = rs_tx_audit(&tx, "field.create", "field", f.id, NULL, after, NULL, err);
        free(after);
    }
    if (r == 0)
        r = rs_tx_commit(&tx, err);
    else
        rs_tx_abort(&tx);
out:
    rs_fields_free(items, n);
    if (r == 0)
        *ret = f;
    else
        rs_custom_field_release(&f);
    return r;
}

int rs_svc_field_update(struct rs_ctx *ctx, int64_t id, json_t *patch, int64_t expected_version,
                        struct rs_custom_field *ret, struct rs_error *err)
{
    int r = rs_svc_require(ctx, RS_RES_SETTINGS, RS_LEVEL_ADMIN, err);
    if (r < 0)
        return r;
    struct rs_tx tx;
    struct rs_custom_field *items = NULL, f;
    size_t n = 0;
    bool have_f = false;
    r = rs_tx_begin(ctx, &tx, err);
    if (r < 0)
        return r;
    r = ctx->store->ops->cf_list(tx.conn, &items, &n, err);
    const struct rs_custom_field *old = NULL;
    for (size_t i = 0; r == 0 && i < n; i++) {
        if (items[i].id == id)
            old = &items[i];
    }
    if (r == 0 && !old)
        r = rs_error_set(err, RS_ENOTFOUND, "no custom field with id %lld", (long long)id);
    if (r == 0 && expected_version >= 0 && old->version != expected_version)
        r = rs_error_set(err, RS_EPRECONDITION,
                         "the field has changed (version %lld); fetch it again and retry",
                         (long long)old->version);
    if (r == 0)
        r = rs_custom_field_decode(patch, old, &f, err);
    if (r == 0) {
        have_f = true;
        f.updated_at = rs_ctx_now(ctx);
        f.version = old->version + 1;
        r = ctx->store->ops->cf_update(tx.conn, &f, old->version, err);
    }
    if (r == 0) {
        char *before = rs_json_text(rs_custom_field_to_json(old));
        char *after = rs_json_text(rs_custom_field_to_json(&f));
        r = rs_tx_audit(&tx, "field.update", "field", id, before, after, NULL, err);
        free(before);
        free(after);
    }
    if (r == 0)
        r = rs_tx_commit(&tx, err);
    else
        rs_tx_abort(&tx);
    rs_fields_free(items, n);
    if (r == 0)
        *ret = f;
    else if (have_f)
        rs_custom_field_release(&f);
    return r;
}
