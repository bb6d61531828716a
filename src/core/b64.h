/* b64.h: base64url without padding (RFC 4648 section 5), for tokens and cursors. */
#ifndef RS_B64_H
#define RS_B64_H

#include "../util/util.h"

/* Returns a new NUL-terminated string. */
char *rs_b64url_encode(const unsigned char *bytes, size_t len);
/* Returns new bytes (NUL-terminated for convenience) and *ret_len, or NULL if
 * s is not base64url. */
unsigned char *rs_b64url_decode(const char *s, size_t *ret_len);

#endif
