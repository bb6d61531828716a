/* test_core_apikey.c: unit tests for API key tokens (src/core/apikey.h):
 * making and parsing tokens, refusing malformed ones, and the usability check. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>
#include <sodium.h>

#include "src/core/apikey.h"

#define TOKEN_LEN (4 + RS_APIKEY_ID_LEN + 1 + 43)

static const unsigned char id_bytes[8] = {0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef};

static void make_secret(unsigned char secret[RS_APIKEY_SECRET_BYTES], unsigned char seed)
{
    for (int i = 0; i < RS_APIKEY_SECRET_BYTES; i++)
        secret[i] = (unsigned char)(seed + i * 7);
}

static void make_key(struct rs_apikey *k, char token[RS_APIKEY_TOKEN_MAX], unsigned char seed)
{
    unsigned char secret[RS_APIKEY_SECRET_BYTES];
    make_secret(secret, seed);
    rs_apikey_init(k);
    rs_apikey_make(id_bytes, secret, k, token);
}

static void make_has_token_shape(void **state)
{
    struct rs_apikey k;
    char token[RS_APIKEY_TOKEN_MAX];
    make_key(&k, token, 0);
    assert_int_equal(strlen(token), TOKEN_LEN);
    assert_memory_equal(token, "rsk_0123456789abcdef_", 21);
    assert_string_equal(k.key_id, "0123456789abcdef");
    const char *secret = token + 21;
    assert_int_equal(strspn(secret, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                    "0123456789-_"),
                     43);
    /* The stored hash is BLAKE2b-256 of the secret's text, as presented. */
    unsigned char want[RS_APIKEY_HASH_BYTES];
    crypto_generichash(want, sizeof(want), (const unsigned char *)secret, 43, NULL, 0);
    assert_memory_equal(k.secret_hash, want, RS_APIKEY_HASH_BYTES);
    rs_apikey_release(&k);
}

static void make_parse_round_trip(void **state)
{
    struct rs_apikey k;
    char token[RS_APIKEY_TOKEN_MAX];
    make_key(&k, token, 3);
    char key_id[RS_APIKEY_ID_LEN + 1];
    unsigned char hash[RS_APIKEY_HASH_BYTES];
    assert_int_equal(rs_apikey_parse(token, strlen(token), key_id, hash), 0);
    assert_string_equal(key_id, k.key_id);
    assert_memory_equal(hash, k.secret_hash, RS_APIKEY_HASH_BYTES);

    /* Another secret, same id: another hash. */
    struct rs_apikey k2;
    char token2[RS_APIKEY_TOKEN_MAX];
    make_key(&k2, token2, 4);
    assert_string_equal(k2.key_id, k.key_id);
    assert_memory_not_equal(k2.secret_hash, k.secret_hash, RS_APIKEY_HASH_BYTES);
    rs_apikey_release(&k);
    rs_apikey_release(&k2);
}

static void parse_uses_len_not_terminator(void **state)
{
    struct rs_apikey k;
    char token[RS_APIKEY_TOKEN_MAX];
    make_key(&k, token, 9);
    char buf[RS_APIKEY_TOKEN_MAX + 8];
    memcpy(buf, token, TOKEN_LEN);
    memcpy(buf + TOKEN_LEN, "junk", 5);
    char key_id[RS_APIKEY_ID_LEN + 1];
    unsigned char hash[RS_APIKEY_HASH_BYTES];
    assert_int_equal(rs_apikey_parse(buf, TOKEN_LEN, key_id, hash), 0);
    assert_memory_equal(hash, k.secret_hash, RS_APIKEY_HASH_BYTES);
    assert_int_equal(rs_apikey_parse(buf, TOKEN_LEN + 4, key_id, hash), -RS_EUNAUTHENTICATED);
    rs_apikey_release(&k);
}

/* Parses token (len given) and expects refusal with outputs untouched. */
static void expect_refused(const char *what, const char *token, size_t len)
{
    char key_id[RS_APIKEY_ID_LEN + 1] = "untouched";
    unsigned char hash[RS_APIKEY_HASH_BYTES];
    memset(hash, 0xa5, sizeof(hash));
    int r = rs_apikey_parse(token, len, key_id, hash);
    if (r != -RS_EUNAUTHENTICATED)
        fail_msg("%s: accepted (r=%d)", what, r);
    if (strcmp(key_id, "untouched") != 0 || hash[0] != 0xa5 || hash[31] != 0xa5)
        fail_msg("%s: outputs written on failure", what);
}

/* A copy of a good token with byte at pos replaced by c. */
static void expect_refused_with(const char *what, const char *good, size_t pos, char c)
{
    char t[RS_APIKEY_TOKEN_MAX];
    memcpy(t, good, TOKEN_LEN + 1);
    t[pos] = c;
    expect_refused(what, t, TOKEN_LEN);
}

static void parse_refuses_malformed(void **state)
{
    struct rs_apikey k;
    char good[RS_APIKEY_TOKEN_MAX];
    make_key(&k, good, 1);

    expect_refused("empty", "", 0);
    expect_refused("prefix only", "rsk_", 4);
    expect_refused("one short", good, TOKEN_LEN - 1);
    char longer[RS_APIKEY_TOKEN_MAX + 2];
    snprintf(longer, sizeof(longer), "%sA", good);
    expect_refused("one long", longer, TOKEN_LEN + 1);

    expect_refused_with("prefix rsx_", good, 2, 'x');
    expect_refused_with("prefix RSK_", good, 0, 'R');
    expect_refused_with("prefix rsk-", good, 3, '-');
    expect_refused_with("upper-case hex id", good, 4, 'A');
    expect_refused_with("non-hex id", good, 10, 'g');
    expect_refused_with("space in id", good, 19, ' ');
    expect_refused_with("missing separator", good, 20, '-');
    expect_refused_with("'+' in secret", good, 30, '+');
    expect_refused_with("'/' in secret", good, 40, '/');
    expect_refused_with("'=' in secret", good, TOKEN_LEN - 1, '=');
    expect_refused_with("'.' in secret", good, 25, '.');
    expect_refused_with("NUL in secret", good, 50, '\0');
    expect_refused_with("high byte in secret", good, 21, (char)0xc3);

    /* The same token with "Bearer " in front is not a token. */
    char bearer[RS_APIKEY_TOKEN_MAX + 8];
    snprintf(bearer, sizeof(bearer), "Bearer %s", good);
    expect_refused("with Bearer", bearer, strlen(bearer));
    rs_apikey_release(&k);
}

static void accepts(void **state)
{
    struct rs_apikey k;
    char token[RS_APIKEY_TOKEN_MAX];
    make_key(&k, token, 5);
    const int64_t now = 1800000000000;
    unsigned char hash[RS_APIKEY_HASH_BYTES];
    char key_id[RS_APIKEY_ID_LEN + 1];
    assert_int_equal(rs_apikey_parse(token, strlen(token), key_id, hash), 0);

    assert_true(rs_apikey_accepts(&k, hash, now));

    unsigned char wrong[RS_APIKEY_HASH_BYTES];
    memcpy(wrong, hash, sizeof(wrong));
    wrong[RS_APIKEY_HASH_BYTES - 1] ^= 1;
    assert_false(rs_apikey_accepts(&k, wrong, now));

    k.expires_at = now + 1;
    assert_true(rs_apikey_accepts(&k, hash, now));
    k.expires_at = now; /* expired at the instant it expires */
    assert_false(rs_apikey_accepts(&k, hash, now));
    k.expires_at = now - 1000;
    assert_false(rs_apikey_accepts(&k, hash, now));
    k.expires_at = 0;

    k.revoked_at = now - 1;
    assert_false(rs_apikey_accepts(&k, hash, now));
    k.revoked_at = now + 1000; /* any revocation counts */
    assert_false(rs_apikey_accepts(&k, hash, now));
    assert_false(rs_apikey_accepts(&k, wrong, now));
    rs_apikey_release(&k);
}

static void release_frees_and_resets(void **state)
{
    struct rs_apikey k;
    rs_apikey_init(&k);
    k.name = rs_xstrdup("ci");
    k.username = rs_xstrdup("bob");
    k.id = 3;
    rs_apikey_release(&k);
    assert_null(k.name);
    assert_null(k.username);
    assert_int_equal(k.id, 0);
}

static int setup_sodium(void **state)
{
    return sodium_init() < 0 ? -1 : 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(make_has_token_shape),
        cmocka_unit_test(make_parse_round_trip),
        cmocka_unit_test(parse_uses_len_not_terminator),
        cmocka_unit_test(parse_refuses_malformed),
        cmocka_unit_test(accepts),
        cmocka_unit_test(release_frees_and_resets),
    };
    return cmocka_run_group_tests(tests, setup_sodium, NULL);
}
