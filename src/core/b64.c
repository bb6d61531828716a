/* b64.c: base64url through libsodium's constant-time codec (see b64.h). */
#include <sodium.h>

#include "b64.h"

char *rs_b64url_encode(const unsigned char *bytes, size_t len)
{
    size_t cap = sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    char *out = rs_xmalloc(cap);
    sodium_bin2base64(out, cap, bytes, len, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    return out;
}

unsigned char *rs_b64url_decode(const char *s, size_t *ret_len)
{
    size_t slen = strlen(s);
    unsigned char *out = rs_xmalloc(slen + 1);
    size_t len = 0;
    const char *end = NULL;
    if (sodium_base642bin(out, slen, s, slen, NULL, &len, &end,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
        end != s + slen) {
        free(out);
        return NULL;
    }
    out[len] = '\0';
    *ret_len = len;
    return out;
}
