/* csv.h: RFC 4180 text, for exports: fields quoted when they need it, and
 * neutralised when a spreadsheet would run them as a formula (a cell that
 * starts with = + - @ or a tab or carriage return gets a leading '). Pure:
 * no I/O. */
#ifndef RS_CSV_H
#define RS_CSV_H

#include <stdbool.h>
#include <stddef.h>

struct rs_csv {
    char *buf; /* NUL-terminated; owned */
    size_t len, cap;
    bool row_open; /* a field was written on the current row */
};

void rs_csv_init(struct rs_csv *c);
/* One field (NULL: empty) on the current row. */
void rs_csv_field(struct rs_csv *c, const char *v);
/* Ends the row with CRLF. */
void rs_csv_end_row(struct rs_csv *c);
/* Hands over the text (the writer is empty afterwards). */
char *rs_csv_take(struct rs_csv *c);
void rs_csv_release(struct rs_csv *c);

#endif
