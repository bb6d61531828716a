/* crypto.c: password hashes, tokens and the server key (see crypto.h). */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crypto.h"

static unsigned char server_key[32];
static bool key_loaded;

static int mkdirs_for(const char *path)
{
    char dir[4096];
    rs_strlcpy(dir, path, sizeof(dir));
    char *slash = strrchr(dir, '/');
    if (!slash || slash == dir)
        return 0;
    *slash = '\0';
    for (char *p = dir + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(dir, 0755) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    return mkdir(dir, 0755) != 0 && errno != EEXIST ? -1 : 0;
}

int rs_keys_load(const char *path, struct rs_error *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT) {
        if (mkdirs_for(path) != 0)
            return rs_error_set(err, RS_EINTERNAL, "cannot create the directory of %s: %s", path,
                                strerror(errno));
        unsigned char k[32];
        randombytes_buf(k, sizeof(k));
        int wfd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (wfd >= 0) {
            ssize_t n = write(wfd, k, sizeof(k));
            int synced = fsync(wfd);
            close(wfd);
            sodium_memzero(k, sizeof(k));
            if (n != (ssize_t)sizeof(k) || synced != 0) {
                unlink(path);
                return rs_error_set(err, RS_EINTERNAL, "cannot write the server key %s", path);
            }
        } else if (errno != EEXIST) {
            return rs_error_set(err, RS_EINTERNAL, "cannot create the server key %s: %s", path,
                                strerror(errno));
        }
        /* Created here or by a process starting beside us: read it back. */
        fd = open(path, O_RDONLY | O_CLOEXEC);
    }
    if (fd < 0)
        return rs_error_set(err, RS_EINTERNAL, "cannot read the server key %s: %s", path,
                            strerror(errno));
    unsigned char buf[33];
    ssize_t n = read(fd, buf, sizeof(buf));
    close(fd);
    if (n != 32) {
        sodium_memzero(buf, sizeof(buf));
        return rs_error_set(err, RS_EINTERNAL, "the server key %s must hold exactly 32 bytes",
                            path);
    }
    memcpy(server_key, buf, 32);
    sodium_memzero(buf, sizeof(buf));
    key_loaded = true;
    return 0;
}

bool rs_keys_loaded(void)
{
    return key_loaded;
}

void rs_keys_ephemeral(void)
{
    randombytes_buf(server_key, sizeof(server_key));
    key_loaded = true;
}

/* A counting semaphore over the hashing itself: the server lets more
 * sign-in calls run than there are cores, so that while one waits on its
 * commit another hashes, but never more hashes than cores. */
static pthread_mutex_t slot_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t slot_free = PTHREAD_COND_INITIALIZER;
static int slots_max, slots_used;

void rs_crypto_hash_slots(int n)
{
    pthread_mutex_lock(&slot_lock);
    slots_max = n > 0 ? n : 1;
    pthread_cond_broadcast(&slot_free);
    pthread_mutex_unlock(&slot_lock);
}

static void slot_take(void)
{
    pthread_mutex_lock(&slot_lock);
    if (slots_max == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        slots_max = n > 0 ? (int)n : 1;
    }
    while (slots_used >= slots_max)
        pthread_cond_wait(&slot_free, &slot_lock);
    slots_used++;
    pthread_mutex_unlock(&slot_lock);
}

static void slot_give(void)
{
    pthread_mutex_lock(&slot_lock);
    slots_used--;
    pthread_cond_signal(&slot_free);
    pthread_mutex_unlock(&slot_lock);
}

int rs_pw_hash(const char *pw, int memory_kib, int iterations, char **ret, struct rs_error *err)
{
    char out[crypto_pwhash_STRBYTES];
    slot_take();
    int r = crypto_pwhash_str_alg(out, pw, strlen(pw), (unsigned long long)iterations,
                                  (size_t)memory_kib * 1024, crypto_pwhash_ALG_ARGON2ID13);
    slot_give();
    if (r != 0)
        return rs_error_set(err, RS_EUNAVAILABLE, "not enough memory to hash the password");
    *ret = rs_xstrdup(out);
    return 0;
}

bool rs_pw_verify(const char *hash, const char *pw)
{
    if (!hash || !hash[0])
        return false;
    slot_take();
    bool ok = crypto_pwhash_str_verify(hash, pw, strlen(pw)) == 0;
    slot_give();
    return ok;
}

bool rs_pw_needs_rehash(const char *hash, int memory_kib, int iterations)
{
    return crypto_pwhash_str_needs_rehash(hash, (unsigned long long)iterations,
                                          (size_t)memory_kib * 1024) != 0;
}

/* The hash an unknown user's password (or a missing one) is checked
 * against, made ahead for the current parameters (rs_pw_dummy_prepare at
 * start and after they change), so that no sign-in pays for making it. */
static pthread_mutex_t dummy_lock = PTHREAD_MUTEX_INITIALIZER;
static char dummy_hash[crypto_pwhash_STRBYTES];
static int dummy_mem, dummy_iter;
static unsigned long dummy_made;

/* Makes the dummy hash for these parameters (no lock held while hashing)
 * and installs it; false when memory ran out. The caller holds a slot. */
static bool dummy_make(int memory_kib, int iterations)
{
    char h[crypto_pwhash_STRBYTES];
    if (crypto_pwhash_str_alg(h, "roster-dummy-password", 21, (unsigned long long)iterations,
                              (size_t)memory_kib * 1024, crypto_pwhash_ALG_ARGON2ID13) != 0)
        return false;
    pthread_mutex_lock(&dummy_lock);
    memcpy(dummy_hash, h, sizeof(h));
    dummy_mem = memory_kib;
    dummy_iter = iterations;
    dummy_made++;
    pthread_mutex_unlock(&dummy_lock);
    return true;
}

/* Copies the dummy hash into out when it was made with these parameters. */
static bool dummy_get(int memory_kib, int iterations, char out[crypto_pwhash_STRBYTES])
{
    pthread_mutex_lock(&dummy_lock);
    bool ready = dummy_mem == memory_kib && dummy_iter == iterations;
    if (ready)
        memcpy(out, dummy_hash, crypto_pwhash_STRBYTES);
    pthread_mutex_unlock(&dummy_lock);
    return ready;
}

int rs_pw_dummy_prepare(int memory_kib, int iterations, struct rs_error *err)
{
    char h[crypto_pwhash_STRBYTES];
    if (dummy_get(memory_kib, iterations, h))
        return 0;
    slot_take();
    bool ok = dummy_make(memory_kib, iterations);
    slot_give();
    if (!ok)
        return rs_error_set(err, RS_EUNAVAILABLE, "not enough memory for a password hash of %d KiB",
                            memory_kib);
    return 0;
}

bool rs_pw_dummy_ready(int memory_kib, int iterations, unsigned long *ret_made)
{
    char h[crypto_pwhash_STRBYTES];
    bool ready = dummy_get(memory_kib, iterations, h);
    if (ret_made) {
        pthread_mutex_lock(&dummy_lock);
        *ret_made = dummy_made;
        pthread_mutex_unlock(&dummy_lock);
    }
    return ready;
}

void rs_pw_dummy_verify(const char *pw, int memory_kib, int iterations)
{
    char h[crypto_pwhash_STRBYTES];
    slot_take();
    if (dummy_get(memory_kib, iterations, h)) {
        volatile int sink = crypto_pwhash_str_verify(h, pw, strlen(pw));
        (void)sink;
    } else {
        /* Parameters this process has not prepared (another process changed
         * them): making the hash is one argon2id computation with them, the
         * cost of the verification it stands for, and readies the next. */
        (void)dummy_make(memory_kib, iterations);
    }
    slot_give();
}

void rs_token_new(char out[RS_TOKEN_CHARS])
{
    unsigned char raw[32];
    randombytes_buf(raw, sizeof(raw));
    sodium_bin2base64(out, RS_TOKEN_CHARS, raw, sizeof(raw),
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_memzero(raw, sizeof(raw));
}

void rs_token_hash(const char *data, size_t len, char out[RS_HASH_HEX])
{
    unsigned char h[32];
    crypto_generichash(h, sizeof(h), (const unsigned char *)data, len, NULL, 0);
    sodium_bin2hex(out, RS_HASH_HEX, h, sizeof(h));
}

void rs_keyed_hash(const char *domain, const char *data, size_t len, char out[RS_HASH_HEX])
{
    unsigned char h[32];
    crypto_generichash_state st;
    crypto_generichash_init(&st, server_key, sizeof(server_key), sizeof(h));
    crypto_generichash_update(&st, (const unsigned char *)domain, strlen(domain) + 1);
    crypto_generichash_update(&st, (const unsigned char *)data, len);
    crypto_generichash_final(&st, h, sizeof(h));
    sodium_bin2hex(out, RS_HASH_HEX, h, sizeof(h));
}

char *rs_secret_seal(const void *data, size_t n)
{
    size_t blen = crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES + n;
    unsigned char *box = rs_xmalloc(blen);
    randombytes_buf(box, crypto_secretbox_NONCEBYTES);
    crypto_secretbox_easy(box + crypto_secretbox_NONCEBYTES, data, n, box, server_key);
    size_t olen = sodium_base64_ENCODED_LEN(blen, sodium_base64_VARIANT_ORIGINAL);
    char *out = rs_xmalloc(olen);
    sodium_bin2base64(out, olen, box, blen, sodium_base64_VARIANT_ORIGINAL);
    free(box);
    return out;
}

int rs_secret_open(const char *sealed, unsigned char *out, size_t cap, size_t *ret_n)
{
    size_t slen = strlen(sealed);
    unsigned char *box = rs_xmalloc(slen + 1);
    size_t blen = 0;
    int r = -1;
    if (sodium_base642bin(box, slen + 1, sealed, slen, NULL, &blen, NULL,
                          sodium_base64_VARIANT_ORIGINAL) != 0 ||
        blen < crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES)
        goto out;
    size_t n = blen - crypto_secretbox_NONCEBYTES - crypto_secretbox_MACBYTES;
    if (n > cap)
        goto out;
    if (crypto_secretbox_open_easy(out, box + crypto_secretbox_NONCEBYTES,
                                   blen - crypto_secretbox_NONCEBYTES, box, server_key) != 0)
        goto out;
    *ret_n = n;
    r = 0;
out:
    free(box);
    return r;
}
