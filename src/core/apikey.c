/* apikey.c: API key token format and checks (see apikey.h). */
#include <sodium.h>
#include <stdio.h>

#include "apikey.h"

void rs_apikey_init(struct rs_apikey *k)
{
    memset(k, 0, sizeof(*k));
}

void rs_apikey_release(struct rs_apikey *k)
{
    free(k->username);
    free(k->name);
    rs_apikey_init(k);
}

static void hash_secret(const unsigned char *secret, size_t len,
                        unsigned char out[RS_APIKEY_HASH_BYTES])
{
    crypto_generichash(out, RS_APIKEY_HASH_BYTES, secret, len, NULL, 0);
}

void rs_apikey_make(const unsigned char id_bytes[8],
                    const unsigned char secret[RS_APIKEY_SECRET_BYTES], struct rs_apikey *k,
                    char token_out[RS_APIKEY_TOKEN_MAX])
{
    rs_hex(id_bytes, 8, k->key_id);
    char secret_b64[sodium_base64_ENCODED_LEN(RS_APIKEY_SECRET_BYTES,
                                              sodium_base64_VARIANT_URLSAFE_NO_PADDING)];
    sodium_bin2base64(secret_b64, sizeof(secret_b64), secret, RS_APIKEY_SECRET_BYTES,
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    /* The hash covers the secret's text form, which is what a client presents. */
    hash_secret((const unsigned char *)secret_b64, strlen(secret_b64), k->secret_hash);
    snprintf(token_out, RS_APIKEY_TOKEN_MAX, "%s%s_%s", RS_APIKEY_PREFIX, k->key_id, secret_b64);
}

int rs_apikey_parse(const char *token, size_t len, char ret_key_id[RS_APIKEY_ID_LEN + 1],
                    unsigned char ret_hash[RS_APIKEY_HASH_BYTES])
{
    const size_t plen = sizeof(RS_APIKEY_PREFIX) - 1;
    const size_t secret_len = 43; /* base64url of 32 bytes, no padding */
    if (len != plen + RS_APIKEY_ID_LEN + 1 + secret_len ||
        memcmp(token, RS_APIKEY_PREFIX, plen) != 0 || token[plen + RS_APIKEY_ID_LEN] != '_')
        return -RS_EUNAUTHENTICATED;
    for (size_t i = 0; i < RS_APIKEY_ID_LEN; i++) {
        char c = token[plen + i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return -RS_EUNAUTHENTICATED;
    }
    const char *secret = token + plen + RS_APIKEY_ID_LEN + 1;
    for (size_t i = 0; i < secret_len; i++) {
        char c = secret[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              c == '-' || c == '_'))
            return -RS_EUNAUTHENTICATED;
    }
    memcpy(ret_key_id, token + plen, RS_APIKEY_ID_LEN);
    ret_key_id[RS_APIKEY_ID_LEN] = '\0';
    hash_secret((const unsigned char *)secret, secret_len, ret_hash);
    return 0;
}

bool rs_apikey_accepts(const struct rs_apikey *k, const unsigned char *presented_hash,
                       int64_t now_ms)
{
    /* Compare first, whatever the key's state, so timing says nothing about it. */
    bool match = sodium_memcmp(k->secret_hash, presented_hash, RS_APIKEY_HASH_BYTES) == 0;
    bool usable = k->revoked_at == 0 && (k->expires_at == 0 || now_ms < k->expires_at);
    return match && usable;
}
