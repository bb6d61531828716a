/* fuzz_user_body.c: libFuzzer target for a user request body, the path every
 * POST/PATCH /api/v1/users takes: JSON parse, strict decode, normalise,
 * validate, then encode back and compute the keys the store would use.
 * Aborts on a broken invariant so libFuzzer reports it like a crash. */
#include <sodium.h>
#include <stdio.h>

#include "src/core/user.h"
#include "src/core/user_json.h"
#include "src/http/codec.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "invariant failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__);          \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    if (sodium_init() < 0)
        abort();
    return 0;
}

static bool same(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static void check_fold(const char *s)
{
    if (!s)
        return;
    char *k = rs_fold_key(s);
    /* Normalised strings are valid UTF-8, so they always have a key. */
    CHECK(k != NULL);
    CHECK(rs_utf8_length(k, strlen(k)) >= 0);
    /* The key of a key is itself, or two spellings could collide only sometimes. */
    char *k2 = rs_fold_key(k);
    CHECK(k2 != NULL && strcmp(k, k2) == 0);
    free(k2);
    free(k);
}

/* A cursor made from u for every single-key sort decodes to u's sort values. */
static void check_cursor(const struct rs_user *u)
{
    for (int f = 0; f < RS_SORT_FIELD_COUNT; f++) {
        struct rs_user_query q;
        struct rs_error err;
        rs_user_query_init(&q);
        rs_error_init(&err);
        q.nsort = 1;
        q.sort[0].field = (enum rs_user_sort_field)f;
        q.sort[0].desc = f % 2;
        char *c = rs_cursor_encode(&q, u);
        CHECK(rs_cursor_decode(c, &q, &err) == 0);
        char *want = rs_user_sort_value(u, (enum rs_user_sort_field)f);
        CHECK(q.cursor.nvalues == 1);
        CHECK(strcmp(q.cursor.values[0], want ? want : "") == 0);
        CHECK(q.cursor.id == u->id);
        free(want);
        free(c);
        rs_user_query_release(&q);
    }
}

static void exercise_user(struct rs_user *u, unsigned mask)
{
    struct rs_error err;
    rs_error_init(&err);
    if (rs_user_normalize(u, mask, &err) < 0) {
        CHECK(err.nfields > 0 && err.code == RS_EVALIDATION);
        return;
    }
    /* Normalisation is idempotent. */
    struct rs_user again;
    rs_user_copy(&again, u);
    CHECK(rs_user_normalize(&again, mask, &err) == 0);
    CHECK(same(again.username, u->username) && same(again.email, u->email) &&
          same(again.first_name, u->first_name) && same(again.last_name, u->last_name));
    rs_user_release(&again);

    bool valid_create = false;
    for (unsigned m = 0; m <= 0x1f; m++) {
        for (int create = 0; create < 2; create++) {
            rs_error_init(&err);
            unsigned required = create ? RS_UF_REQUIRED_ON_CREATE : 0;
            int r = rs_user_validate(u, m, required, &err);
            /* Fails exactly when it reports a fault. */
            CHECK((r < 0) == (err.nfields > 0));
            CHECK(r == 0 || (r == -RS_EVALIDATION && err.code == RS_EVALIDATION));
            if (m == (mask | RS_UF_REQUIRED_ON_CREATE) && create && r == 0)
                valid_create = true;
        }
    }

    json_t *j = rs_user_to_json(u);
    CHECK(j != NULL);
    char *text = json_dumps(j, JSON_COMPACT);
    CHECK(text != NULL);
    free(text);
    json_decref(j);
    j = rs_user_fields_to_json(u, mask);
    json_decref(j);

    check_fold(u->username);
    check_fold(u->email);
    if (valid_create) {
        u->id = 42;
        u->created_at = 1700000000123;
        check_cursor(u);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct rs_error err;
    rs_error_init(&err);
    json_t *obj = rs_json_parse_object((const char *)data, size, &err);
    if (!obj) {
        CHECK(err.code == RS_EBADREQUEST && err.nfields == 1);
        return 0;
    }
    struct rs_user u;
    unsigned mask = 0;
    if (rs_user_decode(obj, &u, &mask, &err) == 0) {
        CHECK(err.nfields == 0);
        CHECK((mask & ~(unsigned)(RS_UF_PROFILE | RS_UF_STATUS)) == 0);
        exercise_user(&u, mask);
        rs_user_release(&u);
    } else {
        CHECK(err.nfields > 0);
    }

    struct rs_apikey_request req;
    rs_error_init(&err);
    if (rs_apikey_request_decode(obj, &req, &err) == 0)
        rs_apikey_request_release(&req);
    json_decref(obj);
    return 0;
}
