/* access.c: effective access, its cache, and the authorisation check every
 * call makes.
 *
 * The cache holds each user's resolved access. An entry is valid while both
 * versions it was made under still hold: the database's access version
 * (bumped in the same transaction as any change that can change someone's
 * access, in any process; a watcher thread polls it every 50 ms) and this
 * process's epoch (bumped when such a change commits here, so this process
 * sees its own changes at once). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <unistd.h>

#include "../core/ipnet.h"
#include "internal.h"
#include "session_internal.h"

#define CACHE_SLOTS 4096 /* a power of two; collisions replace */
#define WATCH_INTERVAL_US 50000

struct entry {
    int64_t user_id;
    int64_t db_version;
    int64_t epoch;
    struct rs_access access;
    json_t *ip_lists; /* rs_ip_lists_for: the address ranges the user is held to */
};

static pthread_rwlock_t cache_lock = PTHREAD_RWLOCK_INITIALIZER;
static struct entry cache[CACHE_SLOTS];
static _Atomic int64_t db_version;
static _Atomic int64_t epoch;

static pthread_t watcher;
static _Atomic bool watching;
static struct rs_store *watched;

static void catalogue_forget(void);

void rs_access_stamp(int64_t ret[2])
{
    ret[0] = atomic_load(&db_version);
    ret[1] = atomic_load(&epoch);
}

void rs_access_changed_here(void)
{
    atomic_fetch_add(&epoch, 1);
}

static void *watch_main(void *arg)
{
    pthread_setname_np(pthread_self(), "roster-access");
    struct rs_ctx ctx;
    rs_ctx_init(&ctx, watched);
    while (atomic_load(&watching)) {
        struct rs_error err;
        rs_error_init(&err);
        struct rs_conn *c = rs_ctx_read_conn(&ctx, &err);
        int64_t v = 0;
        if (c && ctx.store->ops->access_version_get(c, &v, &err) == 0)
            atomic_store(&db_version, v);
        rs_ctx_release(&ctx);
        usleep(WATCH_INTERVAL_US);
    }
    return NULL;
}

int rs_access_watch_start(struct rs_store *store, struct rs_error *err)
{
    struct rs_ctx ctx;
    rs_ctx_init(&ctx, store);
    struct rs_conn *c = rs_ctx_read_conn(&ctx, err);
    int64_t v = 0;
    int r = c ? store->ops->access_version_get(c, &v, err) : -RS_EUNAVAILABLE;
    rs_ctx_release(&ctx);
    if (r < 0)
        return r;
    atomic_store(&db_version, v);
    watched = store;
    atomic_store(&watching, true);
    if (pthread_create(&watcher, NULL, watch_main, NULL) != 0) {
        atomic_store(&watching, false);
        return rs_error_set(err, RS_EINTERNAL, "could not start the access watcher");
    }
    return 0;
}

void rs_access_watch_stop(void)
{
    if (!atomic_exchange(&watching, false))
        return;
    pthread_join(watcher, NULL);
    catalogue_forget();
    pthread_rwlock_wrlock(&cache_lock);
    for (size_t i = 0; i < CACHE_SLOTS; i++) {
        if (cache[i].user_id) {
            rs_access_release(&cache[i].access);
            json_decref(cache[i].ip_lists);
            cache[i].ip_lists = NULL;
        }
        cache[i].user_id = 0;
    }
    pthread_rwlock_unlock(&cache_lock);
}

/* --- the role catalogue, cached ---
 *
 * Every role and resource, as of one access version. Any change to either
 * bumps the version in its own transaction, so a catalogue loaded in a
 * snapshot that read version v is exactly what any later snapshot reading v
 * sees. Checks read the version on their own connection (one tiny query)
 * and reuse the catalogue when it matches, instead of reading and parsing
 * every role's permissions each time. Shared read-only, counted references. */
struct catalogue {
    atomic_int refs;
    int64_t version;
    struct rs_role *roles;
    size_t nroles;
    struct rs_resource_def *res;
    size_t nres;
};

static pthread_mutex_t cat_lock = PTHREAD_MUTEX_INITIALIZER;
static struct catalogue *cat_cached;

static void cat_unref(struct catalogue *k)
{
    if (!k || atomic_fetch_sub(&k->refs, 1) != 1)
        return;
    for (size_t i = 0; i < k->nroles; i++)
        rs_role_release(&k->roles[i]);
    free(k->roles);
    for (size_t i = 0; i < k->nres; i++)
        rs_resource_def_release(&k->res[i]);
    free(k->res);
    free(k);
}

/* The catalogue as c's snapshot or transaction sees it. */
static int catalogue_get(struct rs_ctx *ctx, struct rs_conn *c, struct catalogue **ret,
                         struct rs_error *err)
{
    const struct rs_store_ops *ops = ctx->store->ops;
    int64_t v = 0;
    int r = ops->access_version_get(c, &v, err);
    if (r < 0)
        return r;
    pthread_mutex_lock(&cat_lock);
    struct catalogue *k = cat_cached;
    if (k && k->version == v) {
        atomic_fetch_add(&k->refs, 1);
        pthread_mutex_unlock(&cat_lock);
        *ret = k;
        return 0;
    }
    pthread_mutex_unlock(&cat_lock);
    k = rs_xcalloc(1, sizeof(*k));
    atomic_init(&k->refs, 1);
    k->version = v;
    r = ops->role_list(c, &k->roles, &k->nroles, err);
    if (r == 0)
        r = ops->resource_list(c, &k->res, &k->nres, err);
    if (r < 0) {
        cat_unref(k);
        return r;
    }
    struct catalogue *old = NULL;
    pthread_mutex_lock(&cat_lock);
    if (!cat_cached || cat_cached->version != v) {
        old = cat_cached;
        cat_cached = k;
        atomic_fetch_add(&k->refs, 1);
    }
    pthread_mutex_unlock(&cat_lock);
    cat_unref(old);
    *ret = k;
    return 0;
}

static const struct rs_role *catalogue_role(const struct catalogue *k, const char *key)
{
    for (size_t i = 0; i < k->nroles; i++) {
        if (strcmp(k->roles[i].key, key) == 0)
            return &k->roles[i];
    }
    return NULL;
}

void rs_access_tx_aborted(void)
{
    /* A transaction that bumped the version read (and may have cached) a
     * catalogue at a version number that now never commits, and a later
     * commit will reuse that number for other contents. */
    catalogue_forget();
}

static void catalogue_forget(void)
{
    pthread_mutex_lock(&cat_lock);
    struct catalogue *k = cat_cached;
    cat_cached = NULL;
    pthread_mutex_unlock(&cat_lock);
    cat_unref(k);
}

/* Reads what resolution needs and resolves over catalogue k (no cache). */
static int compute_with(struct rs_ctx *ctx, struct rs_conn *c, const struct catalogue *k,
                        const struct rs_user *u, struct rs_access *ret, struct rs_error *err)
{
    const struct rs_store_ops *ops = ctx->store->ops;
    struct rs_group *groups = NULL;
    char **secondary = NULL;
    size_t ngroups = 0, nsec = 0;
    int r = ops->user_roles_get(c, u->id, &secondary, &nsec, err);
    if (r == 0)
        r = ops->groups_of_user(c, u->id, &groups, &ngroups, err);
    if (r == 0) {
        size_t nrefs = 1 + nsec;
        for (size_t i = 0; i < ngroups; i++)
            nrefs += json_array_size(groups[i].roles);
        struct rs_role_ref *refs = rs_xcalloc(nrefs, sizeof(*refs));
        size_t n = 0;
        if (u->role)
            refs[n++] = (struct rs_role_ref){u->role, RS_VIA_PRIMARY, NULL};
        for (size_t i = 0; i < nsec; i++)
            refs[n++] = (struct rs_role_ref){secondary[i], RS_VIA_SECONDARY, NULL};
        for (size_t i = 0; i < ngroups; i++) {
            size_t j;
            json_t *key;
            json_array_foreach(groups[i].roles, j, key)
            {
                refs[n++] = (struct rs_role_ref){json_string_value(key), RS_VIA_GROUP,
                                                 groups[i].name};
            }
        }
        char **keys = rs_xcalloc(k->nres ? k->nres : 1, sizeof(char *));
        for (size_t i = 0; i < k->nres; i++)
            keys[i] = k->res[i].key;
        rs_access_resolve(u->id, u->type, u->status, k->roles, k->nroles, refs, n, keys,
                          k->nres, ret);
        free(keys);
        free(refs);
    }
    for (size_t i = 0; i < ngroups; i++)
        rs_group_release(&groups[i]);
    free(groups);
    for (size_t i = 0; i < nsec; i++)
        free(secondary[i]);
    free(secondary);
    return r;
}

int rs_access_compute(struct rs_ctx *ctx, struct rs_conn *c, const struct rs_user *u,
                      struct rs_access *ret, struct rs_error *err)
{
    struct catalogue *k = NULL;
    int r = catalogue_get(ctx, c, &k, err);
    if (r < 0)
        return r;
    r = compute_with(ctx, c, k, u, ret, err);
    cat_unref(k);
    return r;
}

/* What one cached lookup answers. */
struct lookup {
    bool user_exists;
    bool resource_known;
    enum rs_level level;
    enum rs_user_status status;
    json_t *grants; /* when asked for: a new reference */
    const char *ip; /* when set: is this address allowed? */
    bool ip_ok;
};

static bool ip_passes(json_t *lists, const char *ip)
{
    size_t i;
    json_t *list;
    json_array_foreach(lists, i, list)
    {
        if (!rs_cidr_list_allows(json_object_get(list, "ranges"), ip))
            return false;
    }
    return true;
}

static void answer(const struct rs_access *a, const char *resource, bool want_grants,
                   struct lookup *ret)
{
    const struct rs_access_entry *e = rs_access_find(a, resource);
    ret->user_exists = true;
    ret->resource_known = e != NULL;
    ret->level = e ? e->level : RS_LEVEL_NONE;
    ret->status = a->status;
    if (want_grants)
        ret->grants = e ? rs_access_grants_json(e) : json_array();
}

static void answer_ip(json_t *ip_lists, struct lookup *ret)
{
    if (ret->ip)
        ret->ip_ok = ip_passes(ip_lists, ret->ip);
}

/* The level user_id holds on resource, through the cache. */
static int lookup(struct rs_ctx *ctx, int64_t user_id, const char *resource, bool want_grants,
                  struct lookup *ret, struct rs_error *err)
{
    const char *ip = ret->ip;
    memset(ret, 0, sizeof(*ret));
    ret->ip = ip;
    size_t slot = (size_t)user_id & (CACHE_SLOTS - 1);
    int64_t dbv = atomic_load(&db_version), ep = atomic_load(&epoch);
    pthread_rwlock_rdlock(&cache_lock);
    struct entry *e = &cache[slot];
    if (e->user_id == user_id && e->db_version == dbv && e->epoch == ep) {
        answer(&e->access, resource, want_grants, ret);
        answer_ip(e->ip_lists, ret);
        pthread_rwlock_unlock(&cache_lock);
        return 0;
    }
    pthread_rwlock_unlock(&cache_lock);

    struct rs_conn *c = rs_ctx_read_conn(ctx, err);
    if (!c)
        return -RS_EUNAVAILABLE;
    struct rs_user u;
    int r = ctx->store->ops->user_get(c, user_id, &u, err);
    if (r == -RS_ENOTFOUND) {
        if (want_grants)
            ret->grants = json_array();
        return 0; /* user_exists stays false */
    }
    if (r < 0)
        return r;
    /* The entry is labelled with the version its own snapshot read, not the
     * watcher's (which may be newer than a snapshot taken earlier in this
     * call): check_grant_in trusts an entry whose label matches the version
     * a transaction reads. */
    int64_t snap_version = 0;
    struct rs_access access;
    json_t *ip_lists = NULL;
    r = ctx->store->ops->access_version_get(c, &snap_version, err);
    if (r < 0) {
        rs_user_release(&u);
        return r;
    }
    r = rs_access_compute(ctx, c, &u, &access, err);
    if (r == 0) {
        r = rs_ip_lists_for(ctx, c, &u, &ip_lists, err);
        if (r < 0)
            rs_access_release(&access);
    }
    rs_user_release(&u);
    if (r < 0)
        return r;
    answer(&access, resource, want_grants, ret);
    answer_ip(ip_lists, ret);
    pthread_rwlock_wrlock(&cache_lock);
    e = &cache[slot];
    if (e->user_id) {
        rs_access_release(&e->access);
        json_decref(e->ip_lists);
    }
    e->user_id = user_id;
    e->db_version = snap_version;
    e->epoch = ep;
    e->access = access;
    e->ip_lists = ip_lists;
    pthread_rwlock_unlock(&cache_lock);
    return 0;
}

int rs_svc_level(struct rs_ctx *ctx, int64_t user_id, const char *resource, enum rs_level *ret,
                 struct rs_error *err)
{
    struct lookup l = {0};
    int r = lookup(ctx, user_id, resource, false, &l, err);
    if (r == 0)
        *ret = l.level;
    return r;
}

int rs_svc_ip_allowed(struct rs_ctx *ctx, int64_t user_id, const char *ip, bool *ret,
                      struct rs_error *err)
{
    struct lookup l = {0};
    l.ip = ip;
    int r = lookup(ctx, user_id, "users", false, &l, err);
    if (r == 0)
        *ret = !l.user_exists || l.ip_ok;
    return r;
}

int rs_svc_require_named(struct rs_ctx *ctx, const char *resource, enum rs_level need,
                         struct rs_error *err)
{
    if (ctx->actor.user_id == 0)
        return 0; /* the system itself (first run, CLI) */
    enum rs_level have = RS_LEVEL_NONE;
    int r = rs_svc_level(ctx, ctx->actor.user_id, resource, &have, err);
    if (r < 0)
        return r;
    if (have >= need)
        return 0;
    return rs_error_set(err, RS_EFORBIDDEN, "you need %s access to %s", rs_level_name(need),
                        resource);
}

int rs_svc_require(struct rs_ctx *ctx, enum rs_resource res, enum rs_level level,
                   struct rs_error *err)
{
    return rs_svc_require_named(ctx, rs_resource_name(res), level, err);
}

int rs_svc_access_user_id(struct rs_ctx *ctx, const char *username, int64_t *ret,
                          struct rs_error *err)
{
    /* What the access check itself needs: naming the user by username
     * tells no more than naming them by id. */
    int r = rs_svc_require(ctx, RS_RES_ROLES, RS_LEVEL_READ, err);
    struct rs_user u;
    if (r == 0)
        r = rs_user_get_by_username_in(ctx, username, &u, err);
    if (r < 0)
        return r;
    *ret = u.id;
    rs_user_release(&u);
    return 0;
}

bool rs_svc_sees_status_notes(struct rs_ctx *ctx, int64_t user_id)
{
    if (ctx->actor.user_id == 0 || ctx->actor.user_id == user_id)
        return true;
    struct rs_error err;
    rs_error_init(&err);
    enum rs_level users = RS_LEVEL_NONE, audit = RS_LEVEL_NONE;
    if (rs_svc_level(ctx, ctx->actor.user_id, rs_resource_name(RS_RES_USERS), &users, &err) < 0 ||
        rs_svc_level(ctx, ctx->actor.user_id, rs_resource_name(RS_RES_AUDIT), &audit, &err) < 0)
        return false;
    return users >= RS_LEVEL_WRITE || audit >= RS_LEVEL_READ;
}

int rs_svc_authorize(struct rs_ctx *ctx, enum rs_resource res, enum rs_level level,
                     struct rs_error *err)
{
    return rs_svc_require(ctx, res, level, err);
}

char *rs_json_text(json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(j);
    return s;
}

int rs_tx_access_changed(struct rs_tx *tx, struct rs_error *err)
{
    int r = tx->ctx->store->ops->access_version_bump(tx->conn, err);
    if (r == 0)
        tx->access_changed = true;
    return r;
}

int rs_svc_user_permissions(struct rs_ctx *ctx, int64_t id, char **ret_json, struct rs_error *err)
{
    if (id != ctx->actor.user_id) {
        int r = rs_svc_require(ctx, RS_RES_ROLES, RS_LEVEL_READ, err);
        if (r < 0)
            return r;
    }
    struct rs_conn *c = rs_ctx_read_conn(ctx, err);
    if (!c)
        return -RS_EUNAVAILABLE;
    struct rs_user u;
    int r = ctx->store->ops->user_get(c, id, &u, err);
    if (r == -RS_ENOTFOUND)
        return rs_error_set(err, RS_ENOTFOUND, "no user with id %lld", (long long)id);
    if (r < 0)
        return r;
    struct rs_access a;
    r = rs_access_compute(ctx, c, &u, &a, err);
    if (r == 0) {
        json_t *o = json_object();
        json_object_set_new(o, "user_id", json_integer(u.id));
        json_object_set_new(o, "username", json_string(u.username));
        json_object_set_new(o, "type", json_string(rs_user_type_name(u.type)));
        json_object_set_new(o, "status", json_string(rs_user_status_name(u.status)));
        json_object_set_new(o, "permissions", rs_access_to_json(&a));
        *ret_json = rs_json_text(o);
        rs_access_release(&a);
    }
    rs_user_release(&u);
    return r;
}

int rs_svc_access_check(struct rs_ctx *ctx, int64_t user_id, const char *resource,
                        enum rs_level need, json_t **ret, struct rs_error *err)
{
    int r = rs_svc_require(ctx, RS_RES_ROLES, RS_LEVEL_READ, err);
    if (r < 0)
        return r;
    /* The hot path: answered from the cache, which knows the catalogue. */
    struct lookup l = {0};
    r = lookup(ctx, user_id, resource, true, &l, err);
    if (r < 0)
        return r;
    if (!l.user_exists || !l.resource_known) {
        json_decref(l.grants);
        if (!l.user_exists)
            return rs_error_set(err, RS_ENOTFOUND, "no user with id %lld", (long long)user_id);
        return rs_error_set(err, RS_ENOTFOUND, "no resource \"%s\"", resource);
    }
    json_t *o = json_object();
    json_object_set_new(o, "user_id", json_integer(user_id));
    json_object_set_new(o, "resource", json_string(resource));
    json_object_set_new(o, "requested", json_string(rs_level_name(need)));
    json_object_set_new(o, "allowed", json_boolean(l.level >= need));
    json_object_set_new(o, "level", json_string(rs_level_name(l.level)));
    json_object_set_new(o, "granted_by", l.grants);
    if (l.level < need) {
        char reason[200];
        if (l.status != RS_STATUS_ACTIVE)
            snprintf(reason, sizeof(reason), "the user is %s", rs_user_status_name(l.status));
        else
            snprintf(reason, sizeof(reason), "highest level held on %s is %s", resource,
                     rs_level_name(l.level));
        json_object_set_new(o, "reason", json_string(reason));
    }
    *ret = o; /* the hot path: no text round trip */
    return 0;
}

int rs_svc_access_cache_clear(struct rs_ctx *ctx, struct rs_error *err)
{
    int r = rs_svc_require(ctx, RS_RES_SETTINGS, RS_LEVEL_ADMIN, err);
    if (r < 0)
        return r;
    struct rs_tx tx;
    r = rs_tx_begin(ctx, &tx, err);
    if (r < 0)
        return r;
    r = rs_tx_access_changed(&tx, err);
    if (r == 0)
        r = rs_tx_audit(&tx, "access.cache_clear", "access", 0, NULL, NULL, NULL, err);
    if (r < 0) {
        rs_tx_abort(&tx);
        return r;
    }
    return rs_tx_commit(&tx, err);
}

/* Whether `mine` holds every level role grants (no escalation). revoke:
 * the role is being taken away, which is bound by the same rule (what you
 * could not give, you may not take). */
static int grant_within(const struct rs_access *mine, const struct rs_role *role,
                        const char *field, bool revoke, struct rs_error *err)
{
    for (size_t i = 0; i < mine->n; i++) {
        const char *key = mine->items[i].resource;
        enum rs_level grants = rs_role_level(role, key), have = mine->items[i].level;
        if (grants == RS_LEVEL_NONE || have >= grants)
            continue;
        if (revoke)
            return rs_error_field(err, RS_EFORBIDDEN, field, "escalation",
                                  "taking away %s would remove %s on %s, which you do not hold "
                                  "(you have %s)",
                                  role->key, rs_level_name(grants), key, rs_level_name(have));
        return rs_error_field(err, RS_EFORBIDDEN, field, "escalation",
                              "%s would grant %s on %s, which you do not hold (you have %s)",
                              role->key, rs_level_name(grants), key, rs_level_name(have));
    }
    return 0;
}

/* The grant check against the actor's access as the transaction sees it
 * (catalogue k, read in the transaction). The cached entry serves when it
 * was made at the access version the transaction reads: nothing that could
 * change anyone's access has committed since. */
static int check_grant_in(struct rs_ctx *ctx, struct rs_tx *tx, const struct catalogue *k,
                          const struct rs_role *role, const char *field, bool revoke,
                          struct rs_error *err)
{
    int64_t actor = ctx->actor.user_id;
    size_t slot = (size_t)actor & (CACHE_SLOTS - 1);
    pthread_rwlock_rdlock(&cache_lock);
    const struct entry *e = &cache[slot];
    if (e->user_id == actor && e->db_version == k->version) {
        int r = grant_within(&e->access, role, field, revoke, err);
        pthread_rwlock_unlock(&cache_lock);
        return r;
    }
    pthread_rwlock_unlock(&cache_lock);
    /* Resolved on the transaction's own connection: a call holds one
     * connection at a time (a pooled second one could deadlock). */
    struct rs_user me;
    struct rs_access mine;
    int r = ctx->store->ops->user_get(tx->conn, actor, &me, err);
    if (r < 0)
        return r;
    r = compute_with(ctx, tx->conn, k, &me, &mine, err);
    rs_user_release(&me);
    if (r < 0)
        return r;
    r = grant_within(&mine, role, field, revoke, err);
    rs_access_release(&mine);
    return r;
}

int rs_svc_check_grant(struct rs_ctx *ctx, struct rs_tx *tx, const struct rs_role *role,
                       const char *field, struct rs_error *err)
{
    if (ctx->actor.user_id == 0 || !role)
        return 0;
    struct catalogue *k = NULL;
    int r = catalogue_get(ctx, tx->conn, &k, err);
    if (r == 0)
        r = check_grant_in(ctx, tx, k, role, field, false, err);
    cat_unref(k);
    return r;
}

int rs_svc_check_revoke(struct rs_ctx *ctx, struct rs_tx *tx, const char *key,
                        const char *field, struct rs_error *err)
{
    if (ctx->actor.user_id == 0 || !key)
        return 0;
    struct catalogue *k = NULL;
    int r = catalogue_get(ctx, tx->conn, &k, err);
    if (r < 0)
        return r;
    const struct rs_role *role = catalogue_role(k, key);
    /* A retired or unknown role grants nothing: nothing is taken away. */
    if (role && role->active)
        r = check_grant_in(ctx, tx, k, role, field, true, err);
    cat_unref(k);
    return r;
}

int rs_svc_check_role_assignable(struct rs_ctx *ctx, struct rs_tx *tx, const char *key,
                                 const char *field, struct rs_error *err)
{
    if (!key)
        return 0;
    struct catalogue *k = NULL;
    int r = catalogue_get(ctx, tx->conn, &k, err);
    if (r < 0)
        return r;
    const struct rs_role *role = catalogue_role(k, key);
    if (!role || !role->active)
        r = rs_error_field(err, RS_EVALIDATION, field, "exists", "%s \"%s\" names no active role",
                           field, key);
    else if (ctx->actor.user_id != 0)
        r = check_grant_in(ctx, tx, k, role, field, false, err);
    cat_unref(k);
    return r;
}

int rs_svc_check_no_gain(struct rs_ctx *ctx, struct rs_tx *tx, const struct rs_user *before,
                         const struct rs_user *after, struct rs_error *err)
{
    if (ctx->actor.user_id == 0)
        return 0;
    struct rs_access was, will, mine;
    struct rs_user actor;
    int r = rs_access_compute(ctx, tx->conn, before, &was, err);
    if (r < 0)
        return r;
    r = rs_access_compute(ctx, tx->conn, after, &will, err);
    if (r < 0) {
        rs_access_release(&was);
        return r;
    }
    r = ctx->store->ops->user_get(tx->conn, ctx->actor.user_id, &actor, err);
    if (r == 0) {
        r = rs_access_compute(ctx, tx->conn, &actor, &mine, err);
        rs_user_release(&actor);
    }
    for (size_t i = 0; r == 0 && i < will.n; i++) {
        const struct rs_access_entry *w = &will.items[i];
        const struct rs_access_entry *b = rs_access_find(&was, w->resource);
        const struct rs_access_entry *m = rs_access_find(&mine, w->resource);
        enum rs_level had = b ? b->level : RS_LEVEL_NONE, held = m ? m->level : RS_LEVEL_NONE;
        if (w->level > had && w->level > held)
            r = rs_error_field(err, RS_EFORBIDDEN, "type", "escalation",
                               "the change would give %s %s on %s, which you do not hold (you "
                               "have %s)",
                               after->username, rs_level_name(w->level), w->resource,
                               rs_level_name(held));
    }
    if (r == 0 || r == -RS_EFORBIDDEN)
        rs_access_release(&mine);
    rs_access_release(&was);
    rs_access_release(&will);
    return r;
}

int rs_svc_check_outranks(struct rs_ctx *ctx, struct rs_conn *c, const struct rs_user *target,
                          const char *what, struct rs_error *err)
{
    if (ctx->actor.user_id == 0 || ctx->actor.user_id == target->id)
        return 0;
    struct rs_access theirs, mine;
    struct rs_user actor;
    /* What they hold when active: unlocking or reactivating an administrator
     * gives them back everything. */
    struct rs_user as_active = *target;
    as_active.status = RS_STATUS_ACTIVE;
    int r = rs_access_compute(ctx, c, &as_active, &theirs, err);
    if (r < 0)
        return r;
    r = ctx->store->ops->user_get(c, ctx->actor.user_id, &actor, err);
    if (r == 0) {
        r = rs_access_compute(ctx, c, &actor, &mine, err);
        rs_user_release(&actor);
        if (r < 0) {
            rs_access_release(&theirs);
            return r;
        }
    } else {
        rs_access_release(&theirs);
        return r;
    }
    for (size_t i = 0; r == 0 && i < theirs.n; i++) {
        const struct rs_access_entry *t = &theirs.items[i];
        const struct rs_access_entry *m = rs_access_find(&mine, t->resource);
        enum rs_level held = m ? m->level : RS_LEVEL_NONE;
        if (t->level > held)
            r = rs_error_field(err, RS_EFORBIDDEN, "user", "escalation",
                               "you cannot %s %s: they hold %s on %s, which you do not (you have "
                               "%s)",
                               what, target->username, rs_level_name(t->level), t->resource,
                               rs_level_name(held));
    }
    rs_access_release(&mine);
    rs_access_release(&theirs);
    return r;
}
