/* custom_field.c: custom field definitions and value checks (see
 * custom_field.h). */
#include <math.h>
#include <stdio.h>

#include "custom_field.h"
#include "user.h"

static const char *const type_names[RS_CF_TYPE_COUNT] = {"text", "number", "date", "boolean",
                                                          "choice"};

void rs_custom_field_init(struct rs_custom_field *f)
{
    memset(f, 0, sizeof(*f));
    f->active = true;
}

void rs_custom_field_release(struct rs_custom_field *f)
{
    free(f->key);
    free(f->label);
    free(f->pattern);
    json_decref(f->default_value);
    json_decref(f->options);
    memset(f, 0, sizeof(*f));
}

static char *dup_or_null(const char *s)
{
    return s ? rs_xstrdup(s) : NULL;
}

void rs_custom_field_copy(struct rs_custom_field *dst, const struct rs_custom_field *src)
{
    *dst = *src;
    dst->key = dup_or_null(src->key);
    dst->label = dup_or_null(src->label);
    dst->pattern = dup_or_null(src->pattern);
    dst->default_value = src->default_value ? json_deep_copy(src->default_value) : NULL;
    dst->options = src->options ? json_deep_copy(src->options) : NULL;
}

const char *rs_cf_type_name(enum rs_cf_type t)
{
    return (unsigned)t < RS_CF_TYPE_COUNT ? type_names[t] : "text";
}

int rs_cf_type_parse(const char *s, enum rs_cf_type *ret)
{
    for (int i = 0; i < RS_CF_TYPE_COUNT; i++) {
        if (strcmp(s, type_names[i]) == 0) {
            *ret = (enum rs_cf_type)i;
            return 0;
        }
    }
    return -1;
}

static bool key_ok(const char *k)
{
    size_t n = strlen(k);
    if (n < 1 || n > RS_CF_KEY_MAX || k[0] < 'a' || k[0] > 'z')
        return false;
    for (size_t i = 1; i < n; i++) {
        char c = k[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
            return false;
    }
    return true;
}

static bool date_ok(const char *s)
{
    int y, m, d, n = 0;
    if (strlen(s) != 10 || sscanf(s, "%4d-%2d-%2d%n", &y, &m, &d, &n) != 3 || n != 10 ||
        s[4] != '-' || s[7] != '-')
        return false;
    for (int i = 0; i < 10; i++) {
        if (i != 4 && i != 7 && (s[i] < '0' || s[i] > '9'))
            return false;
    }
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m < 1 || m > 12 || d < 1)
        return false;
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return d <= days[m - 1] + (m == 2 && leap ? 1 : 0);
}

/* Checks one value against a definition; name is "custom_fields.<key>" or
 * "default" (when checking a definition's default). */
static int value_check(const struct rs_custom_field *f, const json_t *v, const char *name,
                       struct rs_error *err)
{
    switch (f->type) {
    case RS_CF_TEXT: {
        if (!json_is_string(v))
            return rs_error_field(err, RS_EVALIDATION, name, "type", "%s must be a string", name);
        const char *s = json_string_value(v);
        long len = rs_utf8_length(s, json_string_length(v));
        if (len < 0 || memchr(s, '\0', json_string_length(v)))
            return rs_error_field(err, RS_EVALIDATION, name, "encoding",
                                  "%s must be valid UTF-8 text", name);
        if (len > RS_CF_TEXT_MAX)
            return rs_error_field(err, RS_EVALIDATION, name, "max_length",
                                  "%s must be at most %d characters", name, RS_CF_TEXT_MAX);
        if (f->pattern) {
            int m = rs_pattern_match(f->pattern, s);
            if (m < 0)
                return rs_error_field(err, RS_EVALIDATION, name, "pattern",
                                      "%s has an invalid pattern", name);
            if (m == 0)
                return rs_error_field(err, RS_EVALIDATION, name, "pattern",
                                      "%s does not match the pattern %s", name, f->pattern);
        }
        return 0;
    }
    case RS_CF_NUMBER: {
        if (!json_is_number(v))
            return rs_error_field(err, RS_EVALIDATION, name, "type", "%s must be a number", name);
        double d = json_number_value(v);
        if (!isfinite(d))
            return rs_error_field(err, RS_EVALIDATION, name, "type", "%s must be finite", name);
        /* Bounded so that every backend stores and reads it back exactly. */
        if (fabs(d) > RS_CF_NUMBER_LIMIT)
            return rs_error_field(err, RS_EVALIDATION, name, "range",
                                  "%s must be between -1e15 and 1e15", name);
        if (f->has_min && d < f->min)
            return rs_error_field(err, RS_EVALIDATION, name, "min", "%s must be at least %g",
                                  name, f->min);
        if (f->has_max && d > f->max)
            return rs_error_field(err, RS_EVALIDATION, name, "max", "%s must be at most %g",
                                  name, f->max);
        return 0;
    }
    case RS_CF_DATE:
        if (!json_is_string(v))
            return rs_error_field(err, RS_EVALIDATION, name, "type",
                                  "%s must be a date string such as 2026-01-31", name);
        if (!date_ok(json_string_value(v)))
            return rs_error_field(err, RS_EVALIDATION, name, "format",
                                  "%s must be a date such as 2026-01-31", name);
        return 0;
    case RS_CF_BOOLEAN:
        if (!json_is_boolean(v))
            return rs_error_field(err, RS_EVALIDATION, name, "type", "%s must be true or false",
                                  name);
        return 0;
    case RS_CF_CHOICE: {
        if (!json_is_string(v))
            return rs_error_field(err, RS_EVALIDATION, name, "type", "%s must be a string", name);
        size_t i;
        json_t *o;
        json_array_foreach(f->options, i, o)
        {
            if (json_equal(o, (json_t *)v))
                return 0;
        }
        return rs_error_field(err, RS_EVALIDATION, name, "enum",
                              "%s must be one of the field's options", name);
    }
    default:
        return rs_error_field(err, RS_EVALIDATION, name, "type", "%s has an unknown type", name);
    }
}

static int bad_type(const char *key, const char *want, struct rs_error *err)
{
    return rs_error_field(err, RS_EBADREQUEST, key, "type", "%s must be %s", key, want);
}

/* Checks a whole definition, reporting every fault. */
static int definition_check(const struct rs_custom_field *f, struct rs_error *err)
{
    int before = err->nfields;
    if (!f->key || !key_ok(f->key))
        rs_error_field(err, RS_EVALIDATION, "key", f->key ? "format" : "required",
                       "key must be a lower-case letter then up to %d lower-case letters, "
                       "digits or '_'",
                       RS_CF_KEY_MAX - 1);
    long llen = f->label ? rs_utf8_length(f->label, strlen(f->label)) : 0;
    if (!f->label || llen < 1)
        rs_error_field(err, RS_EVALIDATION, "label", "required", "label is required");
    else if (llen > RS_CF_LABEL_MAX)
        rs_error_field(err, RS_EVALIDATION, "label", "max_length",
                       "label must be at most %d characters", RS_CF_LABEL_MAX);
    if (f->type == RS_CF_CHOICE) {
        size_t n = f->options ? json_array_size(f->options) : 0;
        if (n == 0 || n > RS_CF_OPTIONS_MAX)
            rs_error_field(err, RS_EVALIDATION, "options", "required",
                           "a choice field needs 1 to %d options", RS_CF_OPTIONS_MAX);
        for (size_t i = 0; i < n; i++) {
            json_t *o = json_array_get(f->options, i);
            if (!json_is_string(o) || json_string_length(o) == 0 ||
                json_string_length(o) > RS_CF_TEXT_MAX) {
                rs_error_field(err, RS_EVALIDATION, "options", "type",
                               "options must be non-empty strings");
                break;
            }
            for (size_t j = 0; j < i; j++) {
                if (json_equal(o, json_array_get(f->options, j))) {
                    rs_error_field(err, RS_EVALIDATION, "options", "unique",
                                   "options must not repeat");
                    break;
                }
            }
        }
    } else if (f->options) {
        rs_error_field(err, RS_EVALIDATION, "options", "not_allowed",
                       "only choice fields have options");
    }
    if (f->pattern) {
        if (f->type != RS_CF_TEXT)
            rs_error_field(err, RS_EVALIDATION, "pattern", "not_allowed",
                           "only text fields have a pattern");
        else if (!rs_pattern_ok(f->pattern))
            rs_error_field(err, RS_EVALIDATION, "pattern", "pattern",
                           "pattern must be " RS_PATTERN_RULE);
    }
    if ((f->has_min || f->has_max) && f->type != RS_CF_NUMBER)
        rs_error_field(err, RS_EVALIDATION, f->has_min ? "min" : "max", "not_allowed",
                       "only number fields have min and max");
    if (f->has_min && f->has_max && f->min > f->max)
        rs_error_field(err, RS_EVALIDATION, "max", "range", "max must not be less than min");
    if (err->nfields == before && f->default_value)
        (void)value_check(f, f->default_value, "default", err);
    return err->nfields != before ? -err->code : 0;
}

int rs_custom_field_decode(json_t *obj, const struct rs_custom_field *existing,
                           struct rs_custom_field *ret, struct rs_error *err)
{
    struct rs_custom_field f;
    if (existing)
        rs_custom_field_copy(&f, existing);
    else
        rs_custom_field_init(&f);
    int r = 0;
    const char *key;
    json_t *v;
    if (!existing && !json_object_get(obj, "type"))
        r = rs_error_field(err, RS_EVALIDATION, "type", "required",
                           "type is required: text, number, date, boolean or choice");
    json_object_foreach(obj, key, v)
    {
        int fr = 0;
        if (strcmp(key, "key") == 0 || strcmp(key, "type") == 0) {
            bool is_key = key[0] == 'k';
            if (!json_is_string(v)) {
                fr = bad_type(key, "a string", err);
            } else if (existing) {
                const char *now = is_key ? existing->key : rs_cf_type_name(existing->type);
                if (strcmp(now, json_string_value(v)) != 0)
                    fr = rs_error_field(err, RS_EVALIDATION, key, "immutable",
                                        "a field's %s cannot change; retire it and add another",
                                        key);
            } else if (is_key) {
                free(f.key);
                f.key = rs_xstrdup(json_string_value(v));
            } else if (rs_cf_type_parse(json_string_value(v), &f.type) < 0) {
                fr = rs_error_field(err, RS_EVALIDATION, key, "enum",
                                    "type must be one of text, number, date, boolean, choice");
            }
        } else if (strcmp(key, "label") == 0) {
            if (!json_is_string(v))
                fr = bad_type(key, "a string", err);
            else {
                free(f.label);
                f.label = rs_xstrdup(json_string_value(v));
            }
        } else if (strcmp(key, "required") == 0 || strcmp(key, "active") == 0) {
            if (!json_is_boolean(v))
                fr = bad_type(key, "true or false", err);
            else if (key[0] == 'r')
                f.required = json_is_true(v);
            else
                f.active = json_is_true(v);
        } else if (strcmp(key, "default") == 0) {
            json_decref(f.default_value);
            f.default_value = json_is_null(v) ? NULL : json_deep_copy(v);
        } else if (strcmp(key, "options") == 0) {
            json_decref(f.options);
            f.options = NULL;
            if (json_is_array(v))
                f.options = json_deep_copy(v);
            else if (!json_is_null(v))
                fr = bad_type(key, "an array of strings", err);
        } else if (strcmp(key, "pattern") == 0) {
            free(f.pattern);
            f.pattern = NULL;
            if (json_is_string(v))
                f.pattern = rs_xstrdup(json_string_value(v));
            else if (!json_is_null(v))
                fr = bad_type(key, "a string", err);
        } else if (strcmp(key, "min") == 0 || strcmp(key, "max") == 0) {
            bool is_min = key[1] == 'i';
            if (json_is_null(v)) {
                *(is_min ? &f.has_min : &f.has_max) = false;
            } else if (!json_is_number(v) || !isfinite(json_number_value(v))) {
                fr = bad_type(key, "a number", err);
            } else {
                *(is_min ? &f.has_min : &f.has_max) = true;
                *(is_min ? &f.min : &f.max) = json_number_value(v);
            }
        } else if (strcmp(key, "id") == 0 || strcmp(key, "created_at") == 0 ||
                   strcmp(key, "updated_at") == 0 || strcmp(key, "version") == 0) {
            fr = rs_error_field(err, RS_EBADREQUEST, key, "read_only",
                                "%s is set by the server and cannot be written", key);
        } else {
            fr = rs_error_field(err, RS_EBADREQUEST, key, "unknown_field",
                                "unknown field \"%.64s\"", key);
        }
        if (fr < 0 && r == 0)
            r = fr;
    }
    if (r == 0)
        r = definition_check(&f, err);
    if (r < 0) {
        rs_custom_field_release(&f);
        return err ? -err->code : r;
    }
    *ret = f;
    return 0;
}

json_t *rs_custom_field_to_json(const struct rs_custom_field *f)
{
    json_t *o = json_object();
    char ts[RS_TIME_STR_MAX];
    json_object_set_new(o, "id", json_integer(f->id));
    json_object_set_new(o, "key", json_string(f->key));
    json_object_set_new(o, "label", json_string(f->label));
    json_object_set_new(o, "type", json_string(rs_cf_type_name(f->type)));
    json_object_set_new(o, "required", json_boolean(f->required));
    json_object_set_new(o, "default",
                        f->default_value ? json_deep_copy(f->default_value) : json_null());
    json_object_set_new(o, "options", f->options ? json_deep_copy(f->options) : json_null());
    json_object_set_new(o, "pattern", f->pattern ? json_string(f->pattern) : json_null());
    json_object_set_new(o, "min", f->has_min ? json_real(f->min) : json_null());
    json_object_set_new(o, "max", f->has_max ? json_real(f->max) : json_null());
    json_object_set_new(o, "active", json_boolean(f->active));
    rs_time_format(f->created_at, ts);
    json_object_set_new(o, "created_at", json_string(ts));
    rs_time_format(f->updated_at, ts);
    json_object_set_new(o, "updated_at", json_string(ts));
    json_object_set_new(o, "version", json_integer(f->version));
    return o;
}

static const struct rs_custom_field *find_def(const struct rs_custom_field *defs, size_t n,
                                              const char *key)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(defs[i].key, key) == 0)
            return &defs[i];
    }
    return NULL;
}

int rs_custom_values_check(const struct rs_custom_field *defs, size_t ndefs, json_t *given,
                           const json_t *current, bool creating, json_t **ret_values,
                           struct rs_error *err)
{
    json_t *out = json_object();
    const char *key;
    json_t *v;
    int before = err->nfields;
    char name[RS_CF_KEY_MAX + 32];
    if (given && !json_is_object(given)) {
        json_decref(out);
        return rs_error_field(err, RS_EBADREQUEST, "custom_fields", "type",
                              "custom_fields must be an object of field key to value");
    }
    json_object_foreach(given, key, v)
    {
        snprintf(name, sizeof(name), "custom_fields.%.*s", RS_CF_KEY_MAX + 8, key);
        const struct rs_custom_field *f = find_def(defs, ndefs, key);
        if (!f || !f->active) {
            rs_error_field(err, RS_EVALIDATION, name, "unknown",
                           "%s is not an active custom field", name);
            continue;
        }
        if (json_is_null(v)) {
            if (f->required)
                rs_error_field(err, RS_EVALIDATION, name, "required", "%s is required", name);
            else if (!creating)
                json_object_set_new(out, key, json_null());
            continue;
        }
        if (value_check(f, v, name, err) == 0)
            json_object_set(out, key, v);
    }
    for (size_t i = 0; i < ndefs; i++) {
        const struct rs_custom_field *f = &defs[i];
        if (!f->active || !f->required)
            continue;
        bool present = (given && json_object_get(given, f->key)) ||
                       (current && json_object_get(current, f->key));
        if (present || !creating)
            continue;
        if (f->default_value) {
            json_object_set_new(out, f->key, json_deep_copy(f->default_value));
        } else {
            snprintf(name, sizeof(name), "custom_fields.%s", f->key);
            rs_error_field(err, RS_EVALIDATION, name, "required", "%s is required", name);
        }
    }
    if (creating) {
        /* Optional fields with a default get it on create too. */
        for (size_t i = 0; i < ndefs; i++) {
            const struct rs_custom_field *f = &defs[i];
            if (f->active && !f->required && f->default_value &&
                !(given && json_object_get(given, f->key)))
                json_object_set_new(out, f->key, json_deep_copy(f->default_value));
        }
    }
    if (err->nfields != before) {
        json_decref(out);
        return -err->code;
    }
    *ret_values = out;
    return 0;
}

char *rs_custom_value_text(const json_t *v)
{
    if (json_is_string(v))
        return rs_xstrdup(json_string_value(v));
    if (json_is_true(v))
        return rs_xstrdup("true");
    if (json_is_false(v))
        return rs_xstrdup("false");
    if (json_is_integer(v))
        return rs_xasprintf("%lld", (long long)json_integer_value(v));
    if (json_is_real(v))
        return rs_xasprintf("%.17g", json_real_value(v));
    return NULL;
}
