/* cmd_user.c: `roster user add | list | show`: the same service calls, rules
 * and messages as the API. */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>

#include "../core/user_json.h"
#include "cli.h"

static void user_usage(FILE *out)
{
    fprintf(out,
            "usage: roster user add --username U --email E --first-name F --last-name L\n"
            "                       [--type standard|admin|api|guest] [--db URL]\n"
            "       roster user list [--q TEXT] [--status S] [--type T] [--sort FIELDS]\n"
            "                        [--limit N] [--json] [--db URL]\n"
            "       roster user show ID|USERNAME [--json] [--db URL]\n\n"
            "  --db URL   sqlite:PATH or postgres://... (ROSTER_DB; %s)\n",
            RS_DEFAULT_DB);
}

enum { U_DB = 1, U_USERNAME, U_EMAIL, U_FIRST, U_LAST, U_TYPE, U_Q, U_STATUS, U_SORT, U_LIMIT,
       U_JSON, U_HELP };

static const struct option user_opts[] = {
    {"db", required_argument, NULL, U_DB},
    {"username", required_argument, NULL, U_USERNAME},
    {"email", required_argument, NULL, U_EMAIL},
    {"first-name", required_argument, NULL, U_FIRST},
    {"last-name", required_argument, NULL, U_LAST},
    {"type", required_argument, NULL, U_TYPE},
    {"q", required_argument, NULL, U_Q},
    {"status", required_argument, NULL, U_STATUS},
    {"sort", required_argument, NULL, U_SORT},
    {"limit", required_argument, NULL, U_LIMIT},
    {"json", no_argument, NULL, U_JSON},
    {"help", no_argument, NULL, U_HELP},
    {NULL, 0, NULL, 0},
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
    char created[RS_TIME_STR_MAX], updated[RS_TIME_STR_MAX];
    rs_time_format(u->created_at, created);
    rs_time_format(u->updated_at, updated);
    printf("id:          %" PRId64 "\nusername:    %s\nemail:       %s\nfirst name:  %s\n"
           "last name:   %s\ntype:        %s\nstatus:      %s\ncreated:     %s\n"
           "updated:     %s\nversion:     %" PRId64 "\n",
           u->id, u->username, u->email, u->first_name, u->last_name, rs_user_type_name(u->type),
           rs_user_status_name(u->status), created, updated, u->version);
}

static int fail(struct rs_error *err)
{
    rs_cli_print_error(err);
    return RS_EXIT_ERROR;
}

static int user_add(struct rs_store *store, const char *const *v)
{
    struct rs_user in, out;
    unsigned mask = 0;
    struct rs_error err;
    rs_error_init(&err);
    rs_user_init(&in);
    static const struct {
        int opt;
        unsigned bit;
        size_t off;
    } map[] = {
        {U_USERNAME, RS_UF_USERNAME, offsetof(struct rs_user, username)},
        {U_EMAIL, RS_UF_EMAIL, offsetof(struct rs_user, email)},
        {U_FIRST, RS_UF_FIRST_NAME, offsetof(struct rs_user, first_name)},
        {U_LAST, RS_UF_LAST_NAME, offsetof(struct rs_user, last_name)},
    };
    for (size_t i = 0; i < RS_ARRAY_LEN(map); i++) {
        if (v[map[i].opt]) {
            *(char **)((char *)&in + map[i].off) = rs_xstrdup(v[map[i].opt]);
            mask |= map[i].bit;
        }
    }
    if (v[U_TYPE]) {
        if (rs_user_type_parse(v[U_TYPE], &in.type) < 0) {
            rs_error_field(&err, RS_EVALIDATION, "type", "enum",
                           "type must be one of standard, admin, api, guest");
            rs_user_release(&in);
            return fail(&err);
        }
        mask |= RS_UF_TYPE;
    }
    struct rs_ctx ctx;
    cli_ctx(&ctx, store);
    int r = rs_svc_user_create(&ctx, &in, mask, &out, &err);
    rs_ctx_release(&ctx);
    rs_user_release(&in);
    if (r < 0)
        return fail(&err);
    print_user(&out, v[U_JSON] != NULL);
    rs_user_release(&out);
    return RS_EXIT_OK;
}

static int user_list(struct rs_store *store, const char *const *v)
{
    struct rs_user_query q;
    struct rs_error err;
    rs_error_init(&err);
    rs_user_query_init(&q);
    int r = 0;
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
    if (r == 0 && v[U_SORT])
        r = rs_sort_parse(v[U_SORT], &q, &err);
    long limit = 100;
    if (r == 0 && v[U_LIMIT] && rs_cli_int("--limit", v[U_LIMIT], 1, RS_LIST_LIMIT_MAX, &limit) < 0) {
        rs_user_query_release(&q);
        return RS_EXIT_USAGE;
    }
    q.limit = (int)limit;
    struct rs_user_page page = {0};
    struct rs_ctx ctx;
    cli_ctx(&ctx, store);
    if (r == 0)
        r = rs_svc_user_list(&ctx, &q, &page, &err);
    rs_ctx_release(&ctx);
    rs_user_query_release(&q);
    if (r < 0)
        return fail(&err);
    if (v[U_JSON]) {
        json_t *o = json_object();
        json_t *items = json_array();
        for (size_t i = 0; i < page.count; i++)
            json_array_append_new(items, rs_user_to_json(&page.items[i]));
        json_object_set_new(o, "items", items);
        json_object_set_new(o, "total", json_integer(page.total));
        print_json(o);
    } else {
        printf("%-8s %-24s %-32s %-30s %-8s %s\n", "ID", "USERNAME", "EMAIL", "NAME", "TYPE",
               "STATUS");
        for (size_t i = 0; i < page.count; i++) {
            const struct rs_user *u = &page.items[i];
            char *name = rs_xasprintf("%s %s", u->first_name, u->last_name);
            printf("%-8" PRId64 " %-24s %-32s %-30s %-8s %s\n", u->id, u->username, u->email,
                   name, rs_user_type_name(u->type), rs_user_status_name(u->status));
            free(name);
        }
        printf("(%zu of %" PRId64 " users)\n", page.count, page.total);
    }
    rs_user_page_release(&page);
    return RS_EXIT_OK;
}

static int user_show(struct rs_store *store, const char *which, bool as_json)
{
    struct rs_ctx ctx;
    struct rs_user u;
    struct rs_error err;
    rs_error_init(&err);
    cli_ctx(&ctx, store);
    char *end = NULL;
    long long id = strtoll(which, &end, 10);
    int r;
    if (*which && *end == '\0' && id > 0)
        r = rs_svc_user_get(&ctx, id, &u, &err);
    else
        r = rs_svc_user_get_by_username(&ctx, which, &u, &err);
    rs_ctx_release(&ctx);
    if (r < 0)
        return fail(&err);
    print_user(&u, as_json);
    rs_user_release(&u);
    return RS_EXIT_OK;
}

int rs_cmd_user(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        user_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? RS_EXIT_USAGE : RS_EXIT_OK;
    }
    const char *sub = argv[1];
    if (strcmp(sub, "add") != 0 && strcmp(sub, "list") != 0 && strcmp(sub, "show") != 0) {
        fprintf(stderr, "roster user: unknown subcommand \"%s\"\n", sub);
        user_usage(stderr);
        return RS_EXIT_USAGE;
    }
    const char *v[U_HELP + 1] = {0};
    int c;
    optind = 1;
    while ((c = getopt_long(argc - 1, argv + 1, "", user_opts, NULL)) != -1) {
        if (c == U_HELP) {
            user_usage(stdout);
            return RS_EXIT_OK;
        }
        if (c <= 0 || c > U_HELP) {
            user_usage(stderr);
            return RS_EXIT_USAGE;
        }
        v[c] = optarg ? optarg : "1";
    }
    const char *positional = optind < argc - 1 ? argv[1 + optind] : NULL;
    if (strcmp(sub, "show") == 0 && !positional) {
        fprintf(stderr, "roster user show: name a user by id or username\n");
        return RS_EXIT_USAGE;
    }
    struct rs_store *store = rs_cli_open_store(rs_cli_opt(v[U_DB], "ROSTER_DB", RS_DEFAULT_DB), 2);
    if (!store)
        return RS_EXIT_ERROR;
    int rc;
    if (strcmp(sub, "add") == 0)
        rc = user_add(store, v);
    else if (strcmp(sub, "list") == 0)
        rc = user_list(store, v);
    else
        rc = user_show(store, positional, v[U_JSON] != NULL);
    store->ops->close(store);
    return rc;
}
