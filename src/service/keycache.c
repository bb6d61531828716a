/* keycache.c: API keys this process has looked up recently, so that a
 * request authenticates without a store query (see internal.h).
 *
 * Direct-mapped: a key id picks one of KEYCACHE_SLOTS slots and a newer key
 * replaces an older one there, so the cache never grows. Slots are plain data
 * (no heap) behind one rwlock: requests only read; a miss, or a scheduled
 * last-used write, takes the write lock for a copy. */
#include <pthread.h>

#include "internal.h"

#define KEYCACHE_SLOTS 1024 /* a power of two */

struct slot {
    bool used;
    int64_t stamp[2]; /* rs_access_stamp when the key was read */
    int64_t read_at;  /* the request's time when it was read */
    struct rs_cached_key key;
};

static pthread_rwlock_t lock = PTHREAD_RWLOCK_INITIALIZER;
static struct slot slots[KEYCACHE_SLOTS];

/* FNV-1a over the key id (random hex chosen by the server). */
static size_t slot_of(const char *key_id)
{
    uint32_t h = 2166136261u;
    for (const unsigned char *p = (const unsigned char *)key_id; *p; p++) {
        h ^= *p;
        h *= 16777619u;
    }
    return h & (KEYCACHE_SLOTS - 1);
}

static bool fresh(const struct slot *s, const char *key_id, const int64_t stamp[2], int64_t now)
{
    return s->used && strcmp(s->key.key_id, key_id) == 0 && s->stamp[0] == stamp[0] &&
           s->stamp[1] == stamp[1] && now >= s->read_at &&
           now - s->read_at < RS_KEYCACHE_MAX_AGE_MS;
}

bool rs_keycache_get(const char *key_id, const int64_t stamp[2], int64_t now,
                     struct rs_cached_key *ret)
{
    const struct slot *s = &slots[slot_of(key_id)];
    pthread_rwlock_rdlock(&lock);
    bool hit = fresh(s, key_id, stamp, now);
    if (hit)
        *ret = s->key;
    pthread_rwlock_unlock(&lock);
    return hit;
}

void rs_keycache_put(const struct rs_cached_key *k, const int64_t stamp[2], int64_t now)
{
    struct slot *s = &slots[slot_of(k->key_id)];
    pthread_rwlock_wrlock(&lock);
    /* A touch this process scheduled may not have reached the store yet. */
    int64_t last_used = k->last_used_at;
    if (s->used && s->key.id == k->id && s->key.last_used_at > last_used)
        last_used = s->key.last_used_at;
    s->used = true;
    s->stamp[0] = stamp[0];
    s->stamp[1] = stamp[1];
    s->read_at = now;
    s->key = *k;
    s->key.last_used_at = last_used;
    pthread_rwlock_unlock(&lock);
}

void rs_keycache_touched(const char *key_id, int64_t id, int64_t at)
{
    struct slot *s = &slots[slot_of(key_id)];
    pthread_rwlock_wrlock(&lock);
    if (s->used && s->key.id == id && s->key.last_used_at < at)
        s->key.last_used_at = at;
    pthread_rwlock_unlock(&lock);
}
