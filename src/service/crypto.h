/* crypto.h: the secrets of signing in. Passwords as argon2id strings
 * (libsodium), tokens as 256-bit random values stored as BLAKE2b-256 hashes,
 * and the server key (a 32-byte file) that encrypts TOTP secrets and the SMTP
 * password and keys the CSRF and recovery-code hashes. */
#ifndef RS_CRYPTO_H
#define RS_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>

#include "../core/credential.h"
#include "../core/error.h"

/* Loads the server key from path, creating it (32 random bytes, mode 0600)
 * when missing. Every process sharing a database needs the same key. */
int rs_keys_load(const char *path, struct rs_error *err) RS_WUR;
bool rs_keys_loaded(void);
/* For tests and tools that run without a key file: a random key. */
void rs_keys_ephemeral(void);

/* At most n argon2id computations at once in the process (default: the
 * number of CPUs). Calls beyond wait; each holds no database connection
 * while it waits or hashes. */
void rs_crypto_hash_slots(int n);

/* argon2id with memory_kib KiB and iterations passes (parallelism 1). */
int rs_pw_hash(const char *pw, int memory_kib, int iterations, char **ret,
               struct rs_error *err) RS_WUR;
/* true when pw matches the stored hash (constant time inside libsodium). */
bool rs_pw_verify(const char *hash, const char *pw);
/* Whether hash was made with other parameters than these. */
bool rs_pw_needs_rehash(const char *hash, int memory_kib, int iterations);
/* Makes the dummy hash for these parameters now unless it is made already:
 * at server start and whenever the hashing parameters change, so that no
 * sign-in pays for it. Takes a hashing slot; thread-safe. */
int rs_pw_dummy_prepare(int memory_kib, int iterations, struct rs_error *err) RS_WUR;
/* Whether the dummy hash is made for these parameters; *ret_made (may be
 * NULL) how many dummy hashes the process has made (tests, logs). */
bool rs_pw_dummy_ready(int memory_kib, int iterations, unsigned long *ret_made);
/* Spends the time of one verification (unknown users, no password): a
 * verification against the prepared dummy hash or, for parameters not
 * prepared here (changed by another process), making it, which costs the
 * same one argon2id computation. */
void rs_pw_dummy_verify(const char *pw, int memory_kib, int iterations);

#define RS_TOKEN_CHARS 44 /* 43 base64url characters + NUL */
/* A new 256-bit token, base64url without padding. */
void rs_token_new(char out[RS_TOKEN_CHARS]);
/* BLAKE2b-256 of data as lowercase hex. */
void rs_token_hash(const char *data, size_t len, char out[RS_HASH_HEX]);
/* BLAKE2b-256 keyed with the server key (domain-separated), as hex. */
void rs_keyed_hash(const char *domain, const char *data, size_t len, char out[RS_HASH_HEX]);

/* Authenticated encryption with the server key: base64(nonce || box). */
char *rs_secret_seal(const void *data, size_t n);
/* Opens a sealed value into out (at most cap bytes); -1 when it does not open. */
int rs_secret_open(const char *sealed, unsigned char *out, size_t cap, size_t *ret_n);

#endif
