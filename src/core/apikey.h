/* apikey.h: API key tokens. A token is "rsk_" + a 16-hex-digit public key id +
 * "_" + 43 base64url characters of 256-bit secret. The store keeps only the id
 * and a BLAKE2b hash of the secret; checks compare hashes in constant time. */
#ifndef RS_APIKEY_H
#define RS_APIKEY_H

#include <stdbool.h>

#include "error.h"

#define RS_APIKEY_PREFIX "rsk_"
#define RS_APIKEY_ID_LEN 16
#define RS_APIKEY_SECRET_BYTES 32
#define RS_APIKEY_HASH_BYTES 32
#define RS_APIKEY_TOKEN_MAX 96
#define RS_APIKEY_NAME_MAX 100

struct rs_apikey {
    int64_t id;
    char key_id[RS_APIKEY_ID_LEN + 1];
    unsigned char secret_hash[RS_APIKEY_HASH_BYTES];
    int64_t user_id;
    char *username;      /* the owner's, filled by lookups and lists, not stored */
    int owner_type;      /* enum rs_user_type of the owner, filled likewise */
    int owner_status;    /* enum rs_user_status of the owner, filled likewise */
    char *name;
    int64_t created_at;
    int64_t expires_at;  /* 0: never */
    int64_t revoked_at;  /* 0: not revoked */
    int64_t last_used_at;/* 0: never used */
};

void rs_apikey_init(struct rs_apikey *k);
void rs_apikey_release(struct rs_apikey *k);

/* Makes a token from random bytes the caller supplies (core does no I/O):
 * id_bytes (8) and secret (32). Fills k->key_id and k->secret_hash and writes
 * the token into token_out (RS_APIKEY_TOKEN_MAX bytes). */
void rs_apikey_make(const unsigned char id_bytes[8],
                    const unsigned char secret[RS_APIKEY_SECRET_BYTES], struct rs_apikey *k,
                    char token_out[RS_APIKEY_TOKEN_MAX]);

/* Splits a presented token into its key id and the hash of its secret.
 * Returns 0, or -RS_EUNAUTHENTICATED if it is not of the token's shape. */
int rs_apikey_parse(const char *token, size_t len, char ret_key_id[RS_APIKEY_ID_LEN + 1],
                    unsigned char ret_hash[RS_APIKEY_HASH_BYTES]) RS_WUR;

/* Whether presented_hash matches k (constant time) and k is usable at now_ms
 * (not revoked, not expired). */
bool rs_apikey_accepts(const struct rs_apikey *k, const unsigned char *presented_hash,
                       int64_t now_ms);

#endif
