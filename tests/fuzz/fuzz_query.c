/* fuzz_query.c: libFuzzer target for what GET /api/v1/users reads from the
 * query string: rs_query_parse/check/get, then the sort list and the cursor.
 * The whole input is also tried as a sort list and as a cursor on its own. */
#include <sodium.h>
#include <stdio.h>

#include "src/core/user.h"
#include "src/http/http.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "invariant failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__);          \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static const char *const list_params[] = {"q", "status", "type", "sort", "limit", "cursor", NULL};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    if (sodium_init() < 0)
        abort();
    return 0;
}

/* The list handler's order: sort first, then a cursor bound to that sort. */
static void sort_and_cursor(const char *sort, const char *cursor)
{
    struct rs_user_query q;
    struct rs_error err;
    rs_user_query_init(&q);
    rs_error_init(&err);
    int r = sort ? rs_sort_parse(sort, &q, &err) : 0;
    if (r < 0) {
        CHECK(err.code == RS_EBADREQUEST && strcmp(err.fields[0].field, "sort") == 0);
    } else {
        CHECK(q.nsort >= 0 && q.nsort <= RS_SORT_MAX_KEYS);
        for (int i = 0; i < q.nsort; i++)
            CHECK((unsigned)q.sort[i].field < RS_SORT_FIELD_COUNT);
        if (cursor && rs_cursor_decode(cursor, &q, &err) == 0) {
            CHECK(q.has_cursor && q.cursor.nvalues == q.nsort);
            for (int i = 0; i < q.cursor.nvalues; i++)
                CHECK(q.cursor.values[i] != NULL);
        }
    }
    rs_user_query_release(&q);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = rs_xmalloc(size + 1);
    memcpy(s, data, size);
    s[size] = '\0';

    struct rs_query_params p;
    struct rs_error err;
    rs_error_init(&err);
    if (rs_query_parse(s, &p, &err) == 0) {
        CHECK(p.n >= 0 && p.n <= RS_QUERY_MAX_PARAMS);
        for (int i = 0; i < p.n; i++) {
            /* Keys are unique and each finds its own value. */
            CHECK(rs_query_get(&p, p.keys[i]) == p.values[i]);
        }
        struct rs_error cerr;
        rs_error_init(&cerr);
        if (rs_query_check(&p, list_params, &cerr) == 0)
            sort_and_cursor(rs_query_get(&p, "sort"), rs_query_get(&p, "cursor"));
        else
            CHECK(cerr.nfields == 1 && strcmp(cerr.fields[0].rule, "unknown_parameter") == 0);
        rs_query_release(&p);
    } else {
        CHECK(err.code == RS_EBADREQUEST && err.nfields == 1);
    }

    /* The raw input as a sort list, and as a cursor for a few sort orders. */
    sort_and_cursor(s, NULL);
    static const char *const sorts[] = {"", "last_name,-created_at", "username,-email,id"};
    for (size_t i = 0; i < RS_ARRAY_LEN(sorts); i++)
        sort_and_cursor(sorts[i], s);

    free(s);
    return 0;
}
