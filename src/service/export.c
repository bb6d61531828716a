/* export.c: "How to Export User Data": the users list, with every filter of
 * GET /api/v1/users (a group among them: reporting by group), as CSV, in the
 * spec's field sections. Exporting personal data is itself audited. */
#include <stdio.h>

#include "../core/csv.h"
#include "internal.h"

static const struct {
    unsigned bit;
    const char *name;
} sections[] = {
    {RS_EXPORT_BASIC, "basic"},   {RS_EXPORT_CONTACT, "contact"},
    {RS_EXPORT_ORGANIZATION, "organization"}, {RS_EXPORT_ROLES, "roles"},
    {RS_EXPORT_ACTIVITY, "activity"}, {RS_EXPORT_CUSTOM, "custom"},
};

int rs_export_sections_parse(const char *s, unsigned *ret, struct rs_error *err)
{
    unsigned mask = 0;
    const char *p = s;
    while (*p) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        bool known = false;
        for (size_t i = 0; i < RS_ARRAY_LEN(sections); i++) {
            if (strlen(sections[i].name) == n && memcmp(sections[i].name, p, n) == 0) {
                mask |= sections[i].bit;
                known = true;
            }
        }
        if (!known)
            return rs_error_field(err, RS_EBADREQUEST, "sections", "enum",
                                  "sections takes basic, contact, organization, roles, "
                                  "activity and custom, comma-separated");
        p += n + (e ? 1 : 0);
    }
    if (!mask)
        return rs_error_field(err, RS_EBADREQUEST, "sections", "required",
                              "name at least one section");
    *ret = mask;
    return 0;
}

static void time_field(struct rs_csv *c, int64_t ms)
{
    char buf[RS_TIME_STR_MAX];
    if (!ms) {
        rs_csv_field(c, NULL);
        return;
    }
    rs_time_format(ms, buf);
    rs_csv_field(c, buf);
}

/* A list in one cell, ';'-separated (secondary roles, groups). */
static void joined_field(struct rs_csv *c, const char *const *items, size_t n)
{
    char *joined = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&joined, &len);
    for (size_t i = 0; i < n; i++)
        fprintf(f, "%s%s", i ? ";" : "", items[i]);
    fclose(f);
    rs_csv_field(c, joined);
    free(joined);
}

static void header(struct rs_csv *c, unsigned s, const struct rs_custom_field *cf, size_t ncf)
{
    if (s & RS_EXPORT_BASIC) {
        static const char *const h[] = {"id", "username", "first_name", "last_name",
                                        "display_name", "type", "status"};
        for (size_t i = 0; i < RS_ARRAY_LEN(h); i++)
            rs_csv_field(c, h[i]);
    }
    if (s & RS_EXPORT_CONTACT) {
        rs_csv_field(c, "email");
        rs_csv_field(c, "phone");
    }
    if (s & RS_EXPORT_ORGANIZATION) {
        static const char *const h[] = {"employee_id", "department", "position", "location",
                                        "manager_id", "manager_username"};
        for (size_t i = 0; i < RS_ARRAY_LEN(h); i++)
            rs_csv_field(c, h[i]);
    }
    if (s & RS_EXPORT_ROLES) {
        rs_csv_field(c, "role");
        rs_csv_field(c, "secondary_roles");
        rs_csv_field(c, "groups");
    }
    if (s & RS_EXPORT_ACTIVITY) {
        rs_csv_field(c, "created_at");
        rs_csv_field(c, "updated_at");
        rs_csv_field(c, "status_changed_at");
        rs_csv_field(c, "last_login_at");
    }
    for (size_t i = 0; (s & RS_EXPORT_CUSTOM) && i < ncf; i++) {
        char name[160];
        snprintf(name, sizeof(name), "cf.%s", cf[i].key);
        rs_csv_field(c, name);
    }
    rs_csv_end_row(c);
}

static int row(struct rs_ctx *ctx, struct rs_conn *conn, struct rs_csv *c, unsigned s,
               const struct rs_user *u, const struct rs_custom_field *cf, size_t ncf,
               struct rs_error *err)
{
    char num[32];
    if (s & RS_EXPORT_BASIC) {
        snprintf(num, sizeof(num), "%lld", (long long)u->id);
        rs_csv_field(c, num);
        rs_csv_field(c, u->username);
        rs_csv_field(c, u->first_name);
        rs_csv_field(c, u->last_name);
        char *dn = rs_user_display_name(u);
        rs_csv_field(c, dn);
        free(dn);
        rs_csv_field(c, rs_user_type_name(u->type));
        rs_csv_field(c, rs_user_status_name(u->status));
    }
    if (s & RS_EXPORT_CONTACT) {
        rs_csv_field(c, u->email);
        rs_csv_field(c, u->phone);
    }
    if (s & RS_EXPORT_ORGANIZATION) {
        rs_csv_field(c, u->employee_id);
        rs_csv_field(c, u->department);
        rs_csv_field(c, u->position);
        rs_csv_field(c, u->location);
        struct rs_user m;
        const char *mname = NULL;
        bool have_m = false;
        if (u->manager_id) {
            snprintf(num, sizeof(num), "%lld", (long long)u->manager_id);
            int r = ctx->store->ops->user_get(conn, u->manager_id, &m, err);
            if (r < 0 && r != -RS_ENOTFOUND)
                return r;
            have_m = r == 0;
            mname = have_m ? m.username : NULL;
        }
        rs_csv_field(c, u->manager_id ? num : NULL);
        rs_csv_field(c, mname);
        if (have_m)
            rs_user_release(&m);
    }
    if (s & RS_EXPORT_ROLES) {
        rs_csv_field(c, u->role);
        char **keys = NULL;
        size_t nk = 0;
        int r = ctx->store->ops->user_roles_get(conn, u->id, &keys, &nk, err);
        if (r < 0)
            return r;
        joined_field(c, (const char *const *)keys, nk);
        for (size_t i = 0; i < nk; i++)
            free(keys[i]);
        free(keys);
        struct rs_group *groups = NULL;
        size_t ng = 0;
        r = ctx->store->ops->groups_of_user(conn, u->id, &groups, &ng, err);
        if (r < 0)
            return r;
        const char **names = rs_xcalloc(ng ? ng : 1, sizeof(*names));
        for (size_t i = 0; i < ng; i++)
            names[i] = groups[i].name;
        joined_field(c, names, ng);
        free(names);
        for (size_t i = 0; i < ng; i++)
            rs_group_release(&groups[i]);
        free(groups);
    }
    if (s & RS_EXPORT_ACTIVITY) {
        time_field(c, u->created_at);
        time_field(c, u->updated_at);
        time_field(c, u->status_changed_at);
        time_field(c, u->last_login_at);
    }
    for (size_t i = 0; (s & RS_EXPORT_CUSTOM) && i < ncf; i++) {
        json_t *v = u->custom ? json_object_get(u->custom, cf[i].key) : NULL;
        if (!v || json_is_null(v)) {
            rs_csv_field(c, NULL);
        } else if (json_is_string(v)) {
            rs_csv_field(c, json_string_value(v));
        } else {
            char *t = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
            rs_csv_field(c, t);
            free(t);
        }
    }
    rs_csv_end_row(c);
    return 0;
}

struct export_state {
    struct rs_ctx *ctx;
    struct rs_csv *csv;
    unsigned sections;
    const struct rs_custom_field *cf;
    size_t ncf;
    int64_t rows;
};

static int export_row(void *arg, const struct rs_user *u, struct rs_error *err)
{
    struct export_state *st = arg;
    struct rs_conn *conn = rs_ctx_read_conn(st->ctx, err);
    if (!conn)
        return -RS_EUNAVAILABLE;
    st->rows++;
    return row(st->ctx, conn, st->csv, st->sections, u, st->cf, st->ncf, err);
}

int rs_svc_user_export(struct rs_ctx *ctx, const struct rs_user_query *q, unsigned sections_mask,
                       char **ret_csv, int64_t *ret_count, struct rs_error *err)
{
    int r = rs_svc_require(ctx, RS_RES_EXPORT, RS_LEVEL_READ, err);
    if (r < 0)
        return r;
    struct rs_conn *conn = rs_ctx_read_conn(ctx, err);
    if (!conn)
        return -RS_EUNAVAILABLE;
    struct rs_custom_field *cf = NULL;
    size_t ncf = 0;
    r = ctx->store->ops->cf_list(conn, &cf, &ncf, err);
    if (r < 0)
        return r;
    /* inactive custom fields are kept out, as in the record */
    size_t nact = 0;
    for (size_t i = 0; i < ncf; i++) {
        if (cf[i].active)
            cf[nact++] = cf[i];
        else
            rs_custom_field_release(&cf[i]);
    }
    struct rs_csv c;
    rs_csv_init(&c);
    header(&c, sections_mask, cf, nact);
    struct export_state st = {ctx, &c, sections_mask, cf, nact, 0};
    r = rs_user_each(ctx, q, export_row, &st, err);
    int64_t n = st.rows;
    rs_fields_free(cf, nact);
    if (r < 0) {
        rs_csv_release(&c);
        return r;
    }
    /* Who took which personal data out, in the audit trail. */
    struct rs_tx tx;
    r = rs_tx_begin(ctx, &tx, err);
    if (r == 0) {
        json_t *a = json_object();
        json_object_set_new(a, "format", json_string("csv"));
        json_object_set_new(a, "rows", json_integer(n));
        json_t *secs = json_array();
        for (size_t i = 0; i < RS_ARRAY_LEN(sections); i++) {
            if (sections_mask & sections[i].bit)
                json_array_append_new(secs, json_string(sections[i].name));
        }
        json_object_set_new(a, "sections", secs);
        if (q->group_id)
            json_object_set_new(a, "group", json_integer(q->group_id));
        char *after = rs_json_text(a);
        r = rs_tx_audit(&tx, "user.export", "user", 0, NULL, after, NULL, err);
        free(after);
        if (r == 0)
            r = rs_tx_commit(&tx, err);
        else
            rs_tx_abort(&tx);
    }
    if (r < 0) {
        rs_csv_release(&c);
        return r;
    }
    *ret_csv = rs_csv_take(&c);
    *ret_count = n;
    return 0;
}
