/* test_core_csv.c: RFC 4180 fields and formula neutralisation (core/csv.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "src/core/csv.h"

static char *one_row(const char *const *fields, size_t n)
{
    struct rs_csv c;
    rs_csv_init(&c);
    for (size_t i = 0; i < n; i++)
        rs_csv_field(&c, fields[i]);
    rs_csv_end_row(&c);
    return rs_csv_take(&c);
}

static void test_plain_fields_are_bare_and_rows_end_with_crlf(void **state)
{
    (void)state;
    const char *f[] = {"1", "anna", NULL, "Åsa"};
    char *s = one_row(f, 4);
    assert_string_equal(s, "1,anna,,Åsa\r\n");
    free(s);
}

static void test_commas_quotes_newlines_and_edge_spaces_are_quoted(void **state)
{
    (void)state;
    const char *f[] = {"a,b", "say \"hi\"", "two\nlines", " lead", "trail ", "\"\""};
    char *s = one_row(f, 6);
    assert_string_equal(s, "\"a,b\",\"say \"\"hi\"\"\",\"two\nlines\",\" lead\",\"trail \","
                           "\"\"\"\"\"\"\r\n");
    free(s);
}

static void test_formula_cells_get_an_apostrophe(void **state)
{
    (void)state;
    const char *f[] = {"=1+1", "+49 30 1", "-2", "@SUM(A1)", "\tx", "\rx", "a=b"};
    char *s = one_row(f, 7);
    assert_string_equal(s, "\"'=1+1\",\"'+49 30 1\",\"'-2\",\"'@SUM(A1)\",\"'\tx\",\"'\rx\",a=b\r\n");
    free(s);
}

static void test_two_rows_and_a_large_field(void **state)
{
    (void)state;
    struct rs_csv c;
    rs_csv_init(&c);
    char *big = malloc(10001);
    memset(big, 'x', 10000);
    big[10000] = '\0';
    rs_csv_field(&c, "h");
    rs_csv_end_row(&c);
    rs_csv_field(&c, big);
    rs_csv_field(&c, "");
    rs_csv_end_row(&c);
    char *s = rs_csv_take(&c);
    assert_int_equal(strlen(s), 3 + 10000 + 1 + 2);
    assert_memory_equal(s, "h\r\nxxx", 6);
    assert_string_equal(s + 3 + 10000, ",\r\n");
    free(s);
    free(big);
    rs_csv_release(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_fields_are_bare_and_rows_end_with_crlf),
        cmocka_unit_test(test_commas_quotes_newlines_and_edge_spaces_are_quoted),
        cmocka_unit_test(test_formula_cells_get_an_apostrophe),
        cmocka_unit_test(test_two_rows_and_a_large_field),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
