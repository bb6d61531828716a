/* fuzz_settings.c: libFuzzer target for the administrator's JSON documents:
 * a settings patch (PATCH /api/v1/settings/users), a custom field definition
 * (POST /api/v1/settings/users/fields) and custom field values checked
 * against it, and lifecycle reasons. Aborts on a broken invariant. */
#include <sodium.h>
#include <stdio.h>

#include "src/core/custom_field.h"
#include "src/core/lifecycle.h"
#include "src/core/settings.h"

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

static void settings_round_trip(json_t *patch)
{
    struct rs_user_settings base, out, back;
    struct rs_error err;
    rs_error_init(&err);
    rs_user_settings_defaults(&base);
    if (rs_user_settings_patch(&base, patch, &out, &err) == 0) {
        /* What is accepted encodes, and reads back to the same document. */
        json_t *doc = rs_user_settings_to_json(&out);
        struct rs_error e2;
        rs_error_init(&e2);
        CHECK(rs_user_settings_from_json(doc, &back, &e2) == 0);
        json_t *doc2 = rs_user_settings_to_json(&back);
        CHECK(json_equal(doc, doc2));
        json_decref(doc);
        json_decref(doc2);
        rs_user_settings_release(&back);
        rs_user_settings_release(&out);
    } else {
        CHECK(err.code == RS_EBADREQUEST || err.code == RS_EVALIDATION);
        CHECK(err.nfields > 0);
    }
    rs_user_settings_release(&base);
}

static void field_and_values(json_t *obj)
{
    struct rs_custom_field f;
    struct rs_error err;
    rs_error_init(&err);
    json_t *def = json_object_get(obj, "def");
    if (!json_is_object(def))
        def = obj;
    if (rs_custom_field_decode(def, NULL, &f, &err) != 0)
        return;
    json_t *enc = rs_custom_field_to_json(&f);
    CHECK(enc != NULL);
    json_decref(enc);
    json_t *values = json_object_get(obj, "values");
    if (json_is_object(values)) {
        json_t *out = NULL;
        struct rs_error e2;
        rs_error_init(&e2);
        if (rs_custom_values_check(&f, 1, values, NULL, true, &out, &e2) == 0) {
            const char *key;
            json_t *v;
            json_object_foreach(out, key, v)
            {
                char *text = rs_custom_value_text(v);
                free(text);
            }
            json_decref(out);
        }
    }
    rs_custom_field_release(&f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *doc = json_loadb((const char *)data, size, 0, NULL);
    if (!json_is_object(doc)) {
        json_decref(doc);
        return 0;
    }
    settings_round_trip(doc);
    field_and_values(doc);
    json_t *reason = json_object_get(doc, "reason"), *note = json_object_get(doc, "note");
    struct rs_error err;
    rs_error_init(&err);
    (void)rs_lifecycle_check_reason(RS_ACTION_DEACTIVATE,
                                    json_is_string(reason) ? json_string_value(reason) : NULL,
                                    json_is_string(note) ? json_string_value(note) : NULL, &err);
    json_decref(doc);
    return 0;
}
