/* csv.c: see csv.h. */
#include "csv.h"

#include <stdlib.h>
#include <string.h>

#include "../util/util.h"

void rs_csv_init(struct rs_csv *c)
{
    c->cap = 4096;
    c->buf = rs_xmalloc(c->cap);
    c->buf[0] = '\0';
    c->len = 0;
    c->row_open = false;
}

static void put(struct rs_csv *c, const char *p, size_t n)
{
    if (c->len + n + 1 > c->cap) {
        while (c->len + n + 1 > c->cap)
            c->cap *= 2;
        c->buf = rs_xrealloc(c->buf, c->cap);
    }
    memcpy(c->buf + c->len, p, n);
    c->len += n;
    c->buf[c->len] = '\0';
}

void rs_csv_field(struct rs_csv *c, const char *v)
{
    if (c->row_open)
        put(c, ",", 1);
    c->row_open = true;
    if (!v || !*v)
        return;
    /* CSV injection (OWASP): a spreadsheet runs a cell starting with these
     * as a formula; a leading apostrophe makes it text. */
    bool formula = strchr("=+-@\t\r", v[0]) != NULL;
    bool quote = formula || strpbrk(v, ",\"\r\n") != NULL || v[0] == ' ' ||
                 v[strlen(v) - 1] == ' ';
    if (quote)
        put(c, "\"", 1);
    if (formula)
        put(c, "'", 1);
    for (const char *p = v; *p;) {
        const char *q = strchr(p, '"');
        if (!q) {
            put(c, p, strlen(p));
            break;
        }
        put(c, p, (size_t)(q - p) + 1);
        put(c, "\"", 1);
        p = q + 1;
    }
    if (quote)
        put(c, "\"", 1);
}

void rs_csv_end_row(struct rs_csv *c)
{
    put(c, "\r\n", 2);
    c->row_open = false;
}

char *rs_csv_take(struct rs_csv *c)
{
    char *s = c->buf;
    c->buf = NULL;
    c->len = c->cap = 0;
    return s;
}

void rs_csv_release(struct rs_csv *c)
{
    free(c->buf);
    c->buf = NULL;
    c->len = c->cap = 0;
}
