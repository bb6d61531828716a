/* cmd_user.c: `roster user add | list | show | edit | activate | deactivate |
 * reactivate | lock | unlock | erase | reset-password | invite | diagnose`:
 * the same service calls, rules and messages as the API. */
#include <getopt.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>

#include "../core/user_json.h"
#include "../service/notify.h"
#include "cli.h"

static void user_usage(FILE *out)
{
    fprintf(out,
            "usage: roster user add --username U --email E --first-name F --last-name L\n"
            "                       [FIELD OPTIONS] [--status active|pending] [--json]\n"
            "       roster user list [--q TEXT] [--status S] [--type T] [--department D]\n"
            "                        [--location L] [--position P] [--role R] [--manager USER]\n"
            "                        [--cf KEY=VALUE]... [--sort FIELDS] [--limit N] [--json]\n"
            "       roster user show USER [--json | --profile]\n"
            "       roster user edit USER [FIELD OPTIONS] [--clear FIELD]... [--json]\n"
            "       roster user activate|reactivate|lock|unlock USER [--note TEXT]\n"
            "       roster user deactivate USER --reason left_company|temporary_leave|\n"
            "                                   security_concern|other [--note TEXT]\n"
            "       roster user erase USER --note TEXT --yes\n"
            "       roster user reset-password USER --temporary [--password-stdin] | --email-link\n"
            "       roster user invite USER\n"
            "       roster user diagnose USER [--ip ADDRESS] [--json]\n\n"
            "add also takes the creation options --password-stdin (Set Password, one line\n"
            "read from standard input), --require-reset and --send-invite. Mail links start\n"
            "with --base-url (ROSTER_BASE_URL; default http://127.0.0.1:8080).\n"
            "USER is an id or a username. FIELD OPTIONS: --username --email --first-name\n"
            "--last-name --phone --employee-id --department --position --location --role\n"
            "--type standard|admin|api|guest --manager USER --cf KEY=VALUE (repeatable).\n"
            "--clear takes phone, employee-id, department, position, location, role, manager\n"
            "or cf.KEY.  All take --db URL: sqlite:PATH or postgres://... (ROSTER_DB; %s)\n",
            RS_DEFAULT_DB);
}

enum {
    U_DB = 1, U_USERNAME, U_EMAIL, U_FIRST, U_LAST, U_PHONE, U_EMPLOYEE, U_DEPARTMENT,
    U_POSITION, U_LOCATION, U_ROLE, U_TYPE, U_STATUS, U_MANAGER, U_CF, U_CLEAR, U_Q, U_SORT,
    U_LIMIT, U_JSON, U_PROFILE, U_REASON, U_NOTE, U_YES, U_HELP, U_PASSWORD_STDIN,
    U_REQUIRE_RESET, U_SEND_INVITE, U_TEMPORARY, U_EMAIL_LINK, U_IP, U_BASE_URL, U_COUNT
};

static const struct option user_opts[] = {
    {"db", required_argument, NULL, U_DB},
    {"username", required_argument, NULL, U_USERNAME},
    {"email", required_argument, NULL, U_EMAIL},
    {"first-name", required_argument, NULL, U_FIRST},
    {"last-name", required_argument, NULL, U_LAST},
    {"phone", required_argument, NULL, U_PHONE},
    {"employee-id", required_argument, NULL, U_EMPLOYEE},
    {"department", required_argument, NULL, U_DEPARTMENT},
    {"position", required_argument, NULL, U_POSITION},
    {"location", required_argument, NULL, U_LOCATION},
    {"role", required_argument, NULL, U_ROLE},
    {"type", required_argument, NULL, U_TYPE},
    {"status", required_argument, NULL, U_STATUS},
    {"manager", required_argument, NULL, U_MANAGER},
    {"cf", required_argument, NULL, U_CF},
    {"clear", required_argument, NULL, U_CLEAR},
    {"q", required_argument, NULL, U_Q},
    {"sort", required_argument, NULL, U_SORT},
    {"limit", required_argument, NULL, U_LIMIT},
    {"json", no_argument, NULL, U_JSON},
    {"profile", no_argument, NULL, U_PROFILE},
    {"reason", required_argument, NULL, U_REASON},
    {"note", required_argument, NULL, U_NOTE},
    {"yes", no_argument, NULL, U_YES},
    {"help", no_argument, NULL, U_HELP},
    {"password-stdin", no_argument, NULL, U_PASSWORD_STDIN},
    {"require-reset", no_argument, NULL, U_REQUIRE_RESET},
    {"send-invite", no_argument, NULL, U_SEND_INVITE},
    {"temporary", no_argument, NULL, U_TEMPORARY},
    {"email-link", no_argument, NULL, U_EMAIL_LINK},
    {"ip", required_argument, NULL, U_IP},
    {"base-url", required_argument, NULL, U_BASE_URL},
    {NULL, 0, NULL, 0},
};

#define MAX_REPEAT 16

/* Parsed options: single values, and the repeatable --cf and --clear. */
struct opts {
    const char *v[U_COUNT];
    const char *cf[MAX_REPEAT];
    int ncf;
    const char *clear[MAX_REPEAT];
    int nclear;
};

/* The CLI acts as the system, named "cli" in the audit trail. */
static void cli_ctx(struct rs_ctx *ctx, struct rs_store *store)
{
    rs_ctx_init(ctx, store);
    rs_strlcpy(ctx->actor.username, "cli", sizeof(ctx->actor.username));
}

static void print_json(json_t *j)
{
    char *s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    printf("%s\n", s);
    free(s);
    json_decref(j);
}

static void print_user(const struct rs_user *u, bool as_json)
{
    if (as_json) {
        print_json(rs_user_to_json(u));
        return;
    }
    json_t *o = rs_user_to_json(u);
    const char *key;
    json_t *v;
    json_object_foreach(o, key, v)
    {
        char *text = json_is_string(v) ? NULL : json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        printf("%-18s %s\n", key, text ? text : json_string_value(v));
        free(text);
    }
    json_decref(o);
}

static int fail(struct rs_error *err)
{
    rs_cli_print_error(err);
    return RS_EXIT_ERROR;
}

/* Finds a user by id or username. */
static int find_user(struct rs_ctx *ctx, const char *which, struct rs_user *ret,
                     struct rs_error *err)
{
    char *end = NULL;
    long long id = strtoll(which, &end, 10);
    if (*which && *end == '\0' && id > 0)
        return rs_svc_user_get(ctx, id, ret, err);
    return rs_svc_user_get_by_username(ctx, which, ret, err);
}

/* A --cf value as JSON, typed by the field's definition. */
static json_t *cf_value(const struct rs_custom_field *defs, size_t n, const char *key,
                        const char *text)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(defs[i].key, key) != 0)
            continue;
        if (defs[i].type == RS_CF_NUMBER) {
            char *end = NULL;
            double d = strtod(text, &end);
            return *text && *end == '\0' ? json_real(d) : json_string(text);
        }
        if (defs[i].type == RS_CF_BOOLEAN && (strcmp(text, "true") == 0 ||
                                               strcmp(text, "false") == 0))
            return json_boolean(text[0] == 't');
    }
    return json_string(text);
}

/* Builds a user and mask from the field options; resolves --manager. */
static int build_input(struct rs_ctx *ctx, const struct opts *o, struct rs_user *in,
                       unsigned *mask, struct rs_error *err)
{
    static const struct {
        int opt;
        unsigned bit;
        size_t off;
        const char *clear_name;
    } map[] = {
        {U_USERNAME, RS_UF_USERNAME, offsetof(struct rs_user, username), NULL},
        {U_EMAIL, RS_UF_EMAIL, offsetof(struct rs_user, email), NULL},
        {U_FIRST, RS_UF_FIRST_NAME, offsetof(struct rs_user, first_name), NULL},
        {U_LAST, RS_UF_LAST_NAME, offsetof(struct rs_user, last_name), NULL},
        {U_PHONE, RS_UF_PHONE, offsetof(struct rs_user, phone), "phone"},
        {U_EMPLOYEE, RS_UF_EMPLOYEE_ID, offsetof(struct rs_user, employee_id), "employee-id"},
        {U_DEPARTMENT, RS_UF_DEPARTMENT, offsetof(struct rs_user, department), "department"},
        {U_POSITION, RS_UF_POSITION, offsetof(struct rs_user, position), "position"},
        {U_LOCATION, RS_UF_LOCATION, offsetof(struct rs_user, location), "location"},
        {U_ROLE, RS_UF_ROLE, offsetof(struct rs_user, role), "role"},
    };
    rs_user_init(in);
    *mask = 0;
    for (size_t i = 0; i < RS_ARRAY_LEN(map); i++) {
        if (o->v[map[i].opt]) {
            *(char **)((char *)in + map[i].off) = rs_xstrdup(o->v[map[i].opt]);
            *mask |= map[i].bit;
        }
    }
    for (int c = 0; c < o->nclear; c++) {
        const char *name = o->clear[c];
        bool done = false;
        for (size_t i = 0; i < RS_ARRAY_LEN(map) && !done; i++) {
            if (map[i].clear_name && strcmp(map[i].clear_name, name) == 0) {
                *mask |= map[i].bit;
                done = true;
            }
        }
        if (!done && strcmp(name, "manager") == 0) {
            in->manager_id = 0;
            *mask |= RS_UF_MANAGER;
            done = true;
        }
        if (!done && strncmp(name, "cf.", 3) == 0 && name[3]) {
            if (!in->custom)
                in->custom = json_object();
            json_object_set_new(in->custom, name + 3, json_null());
            *mask |= RS_UF_CUSTOM;
            done = true;
        }
        if (!done)
            return rs_error_field(err, RS_EVALIDATION, "clear", "enum",
                                  "--clear takes phone, employee-id, department, position, "
                                  "location, role, manager or cf.KEY (got \"%s\")",
                                  name);
    }
    if (o->v[U_TYPE]) {
        if (rs_user_type_parse(o->v[U_TYPE], &in->type) < 0)
            return rs_error_field(err, RS_EVALIDATION, "type", "enum",
                                  "type must be one of standard, admin, api, guest");
        *mask |= RS_UF_TYPE;
    }
    if (o->v[U_STATUS]) {
        if (rs_user_status_parse(o->v[U_STATUS], &in->status) < 0)
            return rs_error_field(err, RS_EVALIDATION, "status", "enum",
                                  "a new user's status must be active or pending");
        *mask |= RS_UF_STATUS;
    }
    char *mend = NULL;
    long long mid = o->v[U_MANAGER] ? strtoll(o->v[U_MANAGER], &mend, 10) : 0;
    if (o->v[U_MANAGER] && *o->v[U_MANAGER] && *mend == '\0') {
        /* An id goes to the service as it is, for the API's own checks. */
        in->manager_id = mid > 0 ? mid : -1;
        *mask |= RS_UF_MANAGER;
    } else if (o->v[U_MANAGER]) {
        struct rs_user m;
        struct rs_error lookup;
        rs_error_init(&lookup);
        int r = rs_svc_user_get_by_username(ctx, o->v[U_MANAGER], &m, &lookup);
        if (r == -RS_ENOTFOUND)
            return rs_error_field(err, RS_EVALIDATION, "manager_id", "exists",
                                  "--manager %s names no user", o->v[U_MANAGER]);
        if (r < 0) {
            *err = lookup;
            return r;
        }
        in->manager_id = m.id;
        rs_user_release(&m);
        *mask |= RS_UF_MANAGER;
    }
    if (o->ncf > 0) {
        struct rs_custom_field *defs = NULL;
        size_t n = 0;
        int r = rs_svc_fields_list(ctx, &defs, &n, err);
        if (r < 0)
            return r;
        if (!in->custom)
            in->custom = json_object();
        for (int i = 0; i < o->ncf && r == 0; i++) {
            const char *eq = strchr(o->cf[i], '=');
            if (!eq || eq == o->cf[i]) {
                r = rs_error_field(err, RS_EVALIDATION, "cf", "format",
                                   "--cf takes KEY=VALUE (got \"%s\")", o->cf[i]);
                break;
            }
            char *key = rs_xstrndup(o->cf[i], (size_t)(eq - o->cf[i]));
            json_object_set_new(in->custom, key, cf_value(defs, n, key, eq + 1));
            free(key);
        }
        for (size_t i = 0; i < n; i++)
            rs_custom_field_release(&defs[i]);
        free(defs);
        if (r < 0)
            return r;
        *mask |= RS_UF_CUSTOM;
    }
    return 0;
}

static void wipe_free(char *s)
{
    if (s) {
        sodium_memzero(s, strlen(s));
        free(s);
    }
}

/* One line from standard input (a secret: never an argument, which `ps`
 * shows); NULL with a message when there is none. */
static char *read_secret_line(const char *what)
{
    char buf[4096];
    if (!fgets(buf, sizeof(buf), stdin)) {
        fprintf(stderr, "roster user: --%s-stdin: nothing on standard input\n", what);
        return NULL;
    }
    size_t n = strcspn(buf, "\r\n");
    buf[n] = '\0';
    char *s = rs_xstrdup(buf);
    sodium_memzero(buf, sizeof(buf));
    return s;
}

static int user_add(struct rs_ctx *ctx, const struct opts *o)
{
    struct rs_user in, out;
    unsigned mask = 0;
    struct rs_error err;
    rs_error_init(&err);
    char *password = NULL;
    if (o->v[U_PASSWORD_STDIN] && !(password = read_secret_line("password")))
        return RS_EXIT_USAGE;
    struct rs_create_opts copts = {password, o->v[U_SEND_INVITE] ? 1 : -1,
                                   o->v[U_REQUIRE_RESET] ? 1 : -1};
    int r = build_input(ctx, o, &in, &mask, &err);
    if (r == 0)
        r = rs_svc_user_create_with(ctx, &in, mask, &copts, &out, &err);
    rs_user_release(&in);
    wipe_free(password);
    if (r < 0)
        return fail(&err);
    print_user(&out, o->v[U_JSON] != NULL);
    rs_user_release(&out);
    return RS_EXIT_OK;
}

static int user_reset_password(struct rs_ctx *ctx, const char *which, const struct opts *o)
{
    if (!o->v[U_TEMPORARY] == !o->v[U_EMAIL_LINK]) {
        fprintf(stderr, "roster user reset-password: give --temporary or --email-link\n");
        return RS_EXIT_USAGE;
    }
    char *password = NULL;
    if (o->v[U_PASSWORD_STDIN] && !(password = read_secret_line("password")))
        return RS_EXIT_USAGE;
    struct rs_user u;
    struct rs_error err;
    rs_error_init(&err);
    char *temp = NULL;
    int r = find_user(ctx, which, &u, &err);
    if (r < 0) {
        wipe_free(password);
        return fail(&err);
    }
    r = rs_svc_admin_reset_password(ctx, u.id, o->v[U_TEMPORARY] ? "temporary" : "email",
                                    password, &temp, &err);
    wipe_free(password);
    if (r < 0) {
        rs_user_release(&u);
        return fail(&err);
    }
    if (temp)
        printf("temporary password for %s (shown once; must be changed at the next sign-in):\n"
               "%s\n",
               u.username, temp);
    else if (o->v[U_TEMPORARY])
        printf("%s: password set; must be changed at the next sign-in\n", u.username);
    else
        printf("%s: reset link queued for %s\n", u.username, u.email);
    wipe_free(temp);
    rs_user_release(&u);
    return RS_EXIT_OK;
}

static int user_invite(struct rs_ctx *ctx, const char *which)
{
    struct rs_user u;
    struct rs_error err;
    rs_error_init(&err);
    int r = find_user(ctx, which, &u, &err);
    if (r < 0)
        return fail(&err);
    r = rs_svc_invite(ctx, u.id, &err);
    if (r < 0) {
        rs_user_release(&u);
        return fail(&err);
    }
    printf("%s: invite queued for %s\n", u.username, u.email);
    rs_user_release(&u);
    return RS_EXIT_OK;
}

/* "User cannot log in": the checklist, one line per check. */
static int user_diagnose(struct rs_ctx *ctx, const char *which, const struct opts *o)
{
    struct rs_user u;
    struct rs_error err;
    rs_error_init(&err);
    json_t *d = NULL;
    int r = find_user(ctx, which, &u, &err);
    if (r < 0)
        return fail(&err);
    r = rs_svc_login_diagnosis(ctx, u.id, o->v[U_IP], &d, &err);
    rs_user_release(&u);
    if (r < 0)
        return fail(&err);
    if (o->v[U_JSON]) {
        print_json(d);
        return RS_EXIT_OK;
    }
    printf("%s: %s\n", json_string_value(json_object_get(d, "username")),
           json_is_true(json_object_get(d, "can_sign_in")) ? "can sign in" : "cannot sign in");
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(d, "checks"), i, c)
    {
        printf("  %-4s %-20s %s\n", json_is_true(json_object_get(c, "ok")) ? "ok" : "FAIL",
               json_string_value(json_object_get(c, "check")),
               json_string_value(json_object_get(c, "detail")));
    }
    json_decref(d);
    return RS_EXIT_OK;
}

static int user_edit(struct rs_ctx *ctx, const char *which, const struct opts *o)
{
    struct rs_user in, out, target;
    unsigned mask = 0;
    struct rs_error err;
    rs_error_init(&err);
    int r = find_user(ctx, which, &target, &err);
    if (r < 0)
        return fail(&err);
    if (o->v[U_STATUS]) {
        rs_user_release(&target);
        rs_error_field(&err, RS_EBADREQUEST, "status", "read_only",
                       "status changes only through activate, deactivate, reactivate, lock "
                       "and unlock");
        return fail(&err);
    }
    r = build_input(ctx, o, &in, &mask, &err);
    if (r == 0 && mask == 0)
        r = rs_error_set(&err, RS_EVALIDATION, "nothing to change: give a field option or --clear");
    if (r == 0)
        r = rs_svc_user_update(ctx, target.id, &in, mask, -1, &out, &err);
    rs_user_release(&in);
    rs_user_release(&target);
    if (r < 0)
        return fail(&err);
    print_user(&out, o->v[U_JSON] != NULL);
    rs_user_release(&out);
    return RS_EXIT_OK;
}

static int user_list(struct rs_ctx *ctx, const struct opts *o)
{
    struct rs_user_query q;
    struct rs_error err;
    rs_error_init(&err);
    rs_user_query_init(&q);
    int r = 0;
    const char *const *v = o->v;
    if (v[U_Q])
        q.q = rs_xstrdup(v[U_Q]);
    if (v[U_STATUS]) {
        q.has_status = 1;
        if (rs_user_status_parse(v[U_STATUS], &q.status) < 0)
            r = rs_error_field(&err, RS_EBADREQUEST, "status", "enum",
                               "status must be one of active, inactive, locked, pending");
    }
    if (r == 0 && v[U_TYPE]) {
        q.has_type = 1;
        if (rs_user_type_parse(v[U_TYPE], &q.type) < 0)
            r = rs_error_field(&err, RS_EBADREQUEST, "type", "enum",
                               "type must be one of standard, admin, api, guest");
    }
    q.department = v[U_DEPARTMENT] ? rs_xstrdup(v[U_DEPARTMENT]) : NULL;
    q.location = v[U_LOCATION] ? rs_xstrdup(v[U_LOCATION]) : NULL;
    q.position = v[U_POSITION] ? rs_xstrdup(v[U_POSITION]) : NULL;
    q.role = v[U_ROLE] ? rs_xstrdup(v[U_ROLE]) : NULL;
    if (r == 0 && v[U_MANAGER]) {
        struct rs_user m;
        r = find_user(ctx, v[U_MANAGER], &m, &err);
        if (r == 0) {
            q.manager_id = m.id;
            rs_user_release(&m);
        }
    }
    for (int i = 0; r == 0 && i < o->ncf && q.ncf < RS_QUERY_MAX_CF; i++) {
        const char *eq = strchr(o->cf[i], '=');
        if (!eq || eq == o->cf[i]) {
            r = rs_error_field(&err, RS_EBADREQUEST, "cf", "format", "--cf takes KEY=VALUE");
            break;
        }
        q.cf_keys[q.ncf] = rs_xstrndup(o->cf[i], (size_t)(eq - o->cf[i]));
        q.cf_values[q.ncf] = rs_xstrdup(eq + 1);
        q.ncf++;
    }
    if (r == 0 && v[U_SORT])
        r = rs_sort_parse(v[U_SORT], &q, &err);
    long limit = 100;
    if (r == 0 && v[U_LIMIT] && rs_cli_int("--limit", v[U_LIMIT], 1, RS_LIST_LIMIT_MAX, &limit) < 0) {
        rs_user_query_release(&q);
        return RS_EXIT_USAGE;
    }
    q.limit = (int)limit;
    struct rs_user_page page = {0};
    if (r == 0)
        r = rs_svc_user_list(ctx, &q, &page, &err);
    rs_user_query_release(&q);
    if (r < 0)
        return fail(&err);
    if (v[U_JSON]) {
        json_t *out = json_object();
        json_t *items = json_array();
        for (size_t i = 0; i < page.count; i++)
            json_array_append_new(items, rs_user_to_json(&page.items[i]));
        json_object_set_new(out, "items", items);
        json_object_set_new(out, "total", json_integer(page.total));
        print_json(out);
    } else {
        printf("%-8s %-24s %-30s %-26s %-14s %-8s %s\n", "ID", "USERNAME", "EMAIL", "NAME",
               "DEPARTMENT", "TYPE", "STATUS");
        for (size_t i = 0; i < page.count; i++) {
            const struct rs_user *u = &page.items[i];
            char *name = rs_user_display_name(u);
            printf("%-8" PRId64 " %-24s %-30s %-26s %-14s %-8s %s\n", u->id, u->username,
                   u->email, name, u->department ? u->department : "-",
                   rs_user_type_name(u->type), rs_user_status_name(u->status));
            free(name);
        }
        printf("(%zu of %" PRId64 " users)\n", page.count, page.total);
    }
    rs_user_page_release(&page);
    return RS_EXIT_OK;
}

static int user_show(struct rs_ctx *ctx, const char *which, const struct opts *o)
{
    struct rs_user u;
    struct rs_error err;
    rs_error_init(&err);
    int r = find_user(ctx, which, &u, &err);
    if (r < 0)
        return fail(&err);
    if (o->v[U_PROFILE]) {
        struct rs_user full, m;
        r = rs_svc_user_profile(ctx, u.id, &full, &m, &err);
        rs_user_release(&u);
        if (r < 0)
            return fail(&err);
        char *mdisplay = m.id ? rs_user_display_name(&m) : NULL;
        char *mname = m.id ? rs_xasprintf("%s (%s)", mdisplay, m.username) : NULL;
        free(mdisplay);
        printf("User Profile: %s\n\nPersonal Information:\n", full.username);
        printf("  First Name:  %s\n  Last Name:   %s\n  Email:       %s\n  Phone:       %s\n"
               "  Employee ID: %s\n\nOrganization:\n",
               full.first_name, full.last_name, full.email, full.phone ? full.phone : "-",
               full.employee_id ? full.employee_id : "-");
        printf("  Department:  %s\n  Position:    %s\n  Manager:     %s\n  Location:    %s\n\n"
               "System:\n",
               full.department ? full.department : "-", full.position ? full.position : "-",
               mname ? mname : "-", full.location ? full.location : "-");
        char last[RS_TIME_STR_MAX] = "never";
        if (full.last_login_at)
            rs_time_format(full.last_login_at, last);
        printf("  Username:    %s\n  Role:        %s\n  Status:      %s\n  Last Login:  %s\n",
               full.username, full.role ? full.role : "-", rs_user_status_name(full.status),
               last);
        free(mname);
        rs_user_release(&full);
        rs_user_release(&m);
        return RS_EXIT_OK;
    }
    print_user(&u, o->v[U_JSON] != NULL);
    rs_user_release(&u);
    return RS_EXIT_OK;
}

static int user_act(struct rs_ctx *ctx, const char *sub, const char *which, const struct opts *o)
{
    struct rs_user u, out;
    struct rs_error err;
    rs_error_init(&err);
    int r = find_user(ctx, which, &u, &err);
    if (r < 0)
        return fail(&err);
    if (strcmp(sub, "erase") == 0) {
        if (!o->v[U_YES]) {
            rs_user_release(&u);
            fprintf(stderr, "roster user erase: this anonymises %s for good; add --yes\n", which);
            return RS_EXIT_USAGE;
        }
        r = rs_svc_user_erase(ctx, u.id, o->v[U_NOTE], -1, &out, &err);
    } else {
        enum rs_user_action a;
        if (rs_action_parse(sub, &a) < 0) {
            rs_user_release(&u);
            return RS_EXIT_USAGE;
        }
        r = rs_svc_user_act(ctx, u.id, (int)a, o->v[U_REASON], o->v[U_NOTE], -1, &out, &err);
    }
    rs_user_release(&u);
    if (r < 0)
        return fail(&err);
    printf("%s: %s (%s)\n", out.username, rs_user_status_name(out.status),
           out.status_reason ? out.status_reason : sub);
    rs_user_release(&out);
    return RS_EXIT_OK;
}

static const char *const subcommands[] = {
    "add",   "list",           "show",   "edit",     "activate", "deactivate", "reactivate",
    "lock",  "unlock",         "erase",  "reset-password", "invite", "diagnose", NULL};

int rs_cmd_user(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        user_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? RS_EXIT_USAGE : RS_EXIT_OK;
    }
    const char *sub = argv[1];
    bool known = false;
    for (const char *const *s = subcommands; *s && !known; s++)
        known = strcmp(*s, sub) == 0;
    if (!known) {
        fprintf(stderr, "roster user: unknown subcommand \"%s\"\n", sub);
        user_usage(stderr);
        return RS_EXIT_USAGE;
    }
    struct opts o = {0};
    int c;
    optind = 1;
    while ((c = getopt_long(argc - 1, argv + 1, "", user_opts, NULL)) != -1) {
        if (c == U_HELP) {
            user_usage(stdout);
            return RS_EXIT_OK;
        }
        if (c <= 0 || c >= U_COUNT) {
            user_usage(stderr);
            return RS_EXIT_USAGE;
        }
        /* A value that is itself an option means the value was left out. */
        if (optarg && strncmp(optarg, "--", 2) == 0) {
            fprintf(stderr, "roster user: --%s needs a value (got \"%s\")\n",
                    user_opts[c - 1].name, optarg);
            return RS_EXIT_USAGE;
        }
        if (c == U_CF && (!strchr(optarg, '=') || optarg[0] == '=')) {
            fprintf(stderr, "roster user: --cf takes KEY=VALUE (got \"%s\")\n", optarg);
            return RS_EXIT_USAGE;
        }
        if (c == U_CF || c == U_CLEAR) {
            int *n = c == U_CF ? &o.ncf : &o.nclear;
            if (*n == MAX_REPEAT) {
                fprintf(stderr, "roster user: at most %d --%s options\n", MAX_REPEAT,
                        c == U_CF ? "cf" : "clear");
                return RS_EXIT_USAGE;
            }
            (c == U_CF ? o.cf : o.clear)[(*n)++] = optarg;
            continue;
        }
        o.v[c] = optarg ? optarg : "1";
    }
    const char *positional = optind < argc - 1 ? argv[1 + optind] : NULL;
    bool needs_user = strcmp(sub, "add") != 0 && strcmp(sub, "list") != 0;
    if (needs_user && !positional) {
        fprintf(stderr, "roster user %s: name a user by id or username\n", sub);
        return RS_EXIT_USAGE;
    }
    int extra = (argc - 1 - optind) - (needs_user ? 1 : 0);
    if (extra > 0) {
        fprintf(stderr, "roster user %s: unexpected argument \"%s\"\n", sub,
                argv[argc - extra]);
        return RS_EXIT_USAGE;
    }
    struct rs_store *store = rs_cli_open_store(rs_cli_opt(o.v[U_DB], "ROSTER_DB", RS_DEFAULT_DB), 2);
    if (!store)
        return RS_EXIT_ERROR;
    struct rs_ctx ctx;
    cli_ctx(&ctx, store);
    rs_outbox_set_base_url(rs_cli_opt(o.v[U_BASE_URL], "ROSTER_BASE_URL",
                                      "http://127.0.0.1:8080"));
    int rc;
    if (strcmp(sub, "add") == 0)
        rc = user_add(&ctx, &o);
    else if (strcmp(sub, "list") == 0)
        rc = user_list(&ctx, &o);
    else if (strcmp(sub, "show") == 0)
        rc = user_show(&ctx, positional, &o);
    else if (strcmp(sub, "edit") == 0)
        rc = user_edit(&ctx, positional, &o);
    else if (strcmp(sub, "reset-password") == 0)
        rc = user_reset_password(&ctx, positional, &o);
    else if (strcmp(sub, "invite") == 0)
        rc = user_invite(&ctx, positional);
    else if (strcmp(sub, "diagnose") == 0)
        rc = user_diagnose(&ctx, positional, &o);
    else
        rc = user_act(&ctx, sub, positional, &o);
    rs_ctx_release(&ctx);
    store->ops->close(store);
    return rc;
}
