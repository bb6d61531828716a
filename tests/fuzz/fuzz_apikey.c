/* fuzz_apikey.c: libFuzzer target for the two strings a client hands the
 * API key path: the bearer token (rs_apikey_parse, on the raw bytes with their
 * length, as auth does) and an RFC 3339 time (rs_time_parse, as expires_at). */
#include <sodium.h>
#include <stdio.h>

#include "src/core/apikey.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "invariant failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__);          \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* 0000-01-01T00:00:00Z and 9999-12-31T23:59:59.999Z: what rs_time_format can write. */
#define MIN_FORMATTABLE_MS (-62167219200000LL)
#define MAX_FORMATTABLE_MS 253402300799999LL

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    if (sodium_init() < 0)
        abort();
    return 0;
}

static void check_token(const uint8_t *data, size_t size)
{
    char key_id[RS_APIKEY_ID_LEN + 1];
    unsigned char hash[RS_APIKEY_HASH_BYTES];
    if (rs_apikey_parse((const char *)data, size, key_id, hash) < 0)
        return;
    CHECK(strlen(key_id) == RS_APIKEY_ID_LEN);
    CHECK(strspn(key_id, "0123456789abcdef") == RS_APIKEY_ID_LEN);
    /* A token that parses is accepted by a key holding its hash. */
    struct rs_apikey k;
    rs_apikey_init(&k);
    memcpy(k.secret_hash, hash, sizeof(hash));
    CHECK(rs_apikey_accepts(&k, hash, 1));
    k.revoked_at = 1;
    CHECK(!rs_apikey_accepts(&k, hash, 1));
}

static void check_time(const uint8_t *data, size_t size)
{
    char *s = rs_xmalloc(size + 1);
    memcpy(s, data, size);
    s[size] = '\0';
    int64_t ms = 0;
    if (rs_time_parse(s, &ms) == 0) {
        /* util.h: only instants rs_time_format can write are accepted ... */
        CHECK(ms >= MIN_FORMATTABLE_MS && ms <= MAX_FORMATTABLE_MS);
        /* ... and what it writes parses back to the same instant. */
        char out[RS_TIME_STR_MAX];
        rs_time_format(ms, out);
        int64_t back = 0;
        CHECK(rs_time_parse(out, &back) == 0);
        CHECK(back == ms);
    }
    free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_token(data, size);
    check_time(data, size);
    return 0;
}
