/* query.c: strict query-string parsing: percent-decoding, a cap on the
 * number of parameters, repeated and unknown parameters refused by name. */
#include "http.h"

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decodes s[0..len) ('+' is a space); NULL on a bad escape or NUL byte. */
static char *pct_decode(const char *s, size_t len)
{
    char *out = rs_xmalloc(len + 1);
    size_t j = 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == '+') {
            c = ' ';
        } else if (c == '%') {
            int a = i + 1 < len ? hexval(s[i + 1]) : -1;
            int b = i + 2 < len ? hexval(s[i + 2]) : -1;
            if (a < 0 || b < 0) {
                free(out);
                return NULL;
            }
            c = (char)(a * 16 + b);
            i += 2;
        }
        if (c == '\0') {
            free(out);
            return NULL;
        }
        out[j++] = c;
    }
    out[j] = '\0';
    return out;
}

void rs_query_release(struct rs_query_params *p)
{
    for (int i = 0; i < p->n; i++) {
        free(p->keys[i]);
        free(p->values[i]);
    }
    p->n = 0;
}

int rs_query_parse(const char *qs, struct rs_query_params *ret, struct rs_error *err)
{
    struct rs_query_params p = {0};
    const char *s = qs ? qs : "";
    while (*s) {
        const char *amp = strchr(s, '&');
        size_t len = amp ? (size_t)(amp - s) : strlen(s);
        if (len > 0) {
            const char *eq = memchr(s, '=', len);
            size_t klen = eq ? (size_t)(eq - s) : len;
            char *k = pct_decode(s, klen);
            char *v = eq ? pct_decode(eq + 1, len - klen - 1) : rs_xstrdup("");
            if (!k || !v) {
                free(k);
                free(v);
                rs_query_release(&p);
                return rs_error_field(err, RS_EBADREQUEST, "query", "format",
                                      "the query string has a malformed %%-escape");
            }
            if (p.n == RS_QUERY_MAX_PARAMS) {
                free(k);
                free(v);
                rs_query_release(&p);
                return rs_error_field(err, RS_EBADREQUEST, "query", "max_items",
                                      "at most %d query parameters", RS_QUERY_MAX_PARAMS);
            }
            for (int i = 0; i < p.n; i++) {
                if (strcmp(p.keys[i], k) == 0) {
                    int r = rs_error_field(err, RS_EBADREQUEST, k, "unique",
                                           "query parameter %.64s is given twice", k);
                    free(k);
                    free(v);
                    rs_query_release(&p);
                    return r;
                }
            }
            p.keys[p.n] = k;
            p.values[p.n] = v;
            p.n++;
        }
        if (!amp)
            break;
        s = amp + 1;
    }
    *ret = p;
    return 0;
}

int rs_query_check(const struct rs_query_params *p, const char *const *allowed,
                   struct rs_error *err)
{
    for (int i = 0; i < p->n; i++) {
        bool ok = false;
        for (const char *const *a = allowed; *a && !ok; a++)
            ok = strcmp(*a, p->keys[i]) == 0;
        if (!ok)
            return rs_error_field(err, RS_EBADREQUEST, p->keys[i], "unknown_parameter",
                                  "unknown query parameter \"%.64s\"", p->keys[i]);
    }
    return 0;
}

const char *rs_query_get(const struct rs_query_params *p, const char *key)
{
    for (int i = 0; i < p->n; i++) {
        if (strcmp(p->keys[i], key) == 0)
            return p->values[i];
    }
    return NULL;
}
