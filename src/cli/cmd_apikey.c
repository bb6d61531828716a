/* cmd_apikey.c: `roster apikey create | list | revoke`. The token is printed
 * once, at creation. */
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>

#include "cli.h"

static void apikey_usage(FILE *out)
{
    fprintf(out,
            "usage: roster apikey create --user USERNAME [--name NAME] [--expires RFC3339]\n"
            "       roster apikey list [--user USERNAME]\n"
            "       roster apikey revoke ID\n"
            "all take [--db URL]: sqlite:PATH or postgres://... (ROSTER_DB; %s)\n",
            RS_DEFAULT_DB);
}

enum { K_DB = 1, K_USER, K_NAME, K_EXPIRES, K_HELP };

static void key_row(const struct rs_apikey *k)
{
    char created[RS_TIME_STR_MAX], used[RS_TIME_STR_MAX] = "never", state[48] = "active";
    rs_time_format(k->created_at, created);
    if (k->last_used_at)
        rs_time_format(k->last_used_at, used);
    if (k->revoked_at)
        snprintf(state, sizeof(state), "revoked");
    else if (k->expires_at && k->expires_at <= rs_wall_ms())
        snprintf(state, sizeof(state), "expired");
    printf("%-6" PRId64 " %-18s %-20s %-24s %-8s %-25s %s\n", k->id, k->key_id, k->username,
           k->name, state, created, used);
}

int rs_cmd_apikey(int argc, char **argv)
{
    static const struct option opts[] = {
        {"db", required_argument, NULL, K_DB},
        {"user", required_argument, NULL, K_USER},
        {"name", required_argument, NULL, K_NAME},
        {"expires", required_argument, NULL, K_EXPIRES},
        {"help", no_argument, NULL, K_HELP},
        {NULL, 0, NULL, 0},
    };
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        apikey_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? RS_EXIT_USAGE : RS_EXIT_OK;
    }
    const char *sub = argv[1];
    if (strcmp(sub, "create") != 0 && strcmp(sub, "list") != 0 && strcmp(sub, "revoke") != 0) {
        fprintf(stderr, "roster apikey: unknown subcommand \"%s\"\n", sub);
        apikey_usage(stderr);
        return RS_EXIT_USAGE;
    }
    const char *v[K_HELP + 1] = {0};
    int c;
    optind = 1;
    while ((c = getopt_long(argc - 1, argv + 1, "", opts, NULL)) != -1) {
        if (c == K_HELP) {
            apikey_usage(stdout);
            return RS_EXIT_OK;
        }
        if (c <= 0 || c > K_HELP) {
            apikey_usage(stderr);
            return RS_EXIT_USAGE;
        }
        v[c] = optarg;
    }
    const char *positional = optind < argc - 1 ? argv[1 + optind] : NULL;
    int64_t expires = 0;
    long id = 0;
    if (strcmp(sub, "create") == 0 && !v[K_USER]) {
        fprintf(stderr, "roster apikey create: --user is required\n");
        return RS_EXIT_USAGE;
    }
    if (v[K_EXPIRES] && rs_time_parse(v[K_EXPIRES], &expires) < 0) {
        fprintf(stderr, "roster: --expires must be an RFC 3339 time such as 2027-01-31T00:00:00Z\n");
        return RS_EXIT_USAGE;
    }
    if (strcmp(sub, "revoke") == 0 && !positional) {
        fprintf(stderr, "roster apikey revoke: name the key to revoke by its ID "
                        "(see roster apikey list)\n");
        return RS_EXIT_USAGE;
    }
    if (strcmp(sub, "revoke") == 0 && rs_cli_int("ID", positional, 1, LONG_MAX, &id) < 0)
        return RS_EXIT_USAGE;

    struct rs_store *store = rs_cli_open_store(rs_cli_opt(v[K_DB], "ROSTER_DB", RS_DEFAULT_DB), 2);
    if (!store)
        return RS_EXIT_ERROR;
    struct rs_ctx ctx;
    struct rs_error err;
    rs_error_init(&err);
    rs_ctx_init(&ctx, store);
    rs_strlcpy(ctx.actor.username, "cli", sizeof(ctx.actor.username));
    int r;
    if (strcmp(sub, "create") == 0) {
        struct rs_apikey k;
        char token[RS_APIKEY_TOKEN_MAX];
        r = rs_svc_apikey_create(&ctx, v[K_USER], v[K_NAME], v[K_EXPIRES] ? &expires : NULL, &k,
                                 token, &err);
        if (r == 0) {
            printf("%s\n", token);
            fprintf(stderr, "api key %" PRId64 " (%s) for %s; the token is shown only once\n",
                    k.id, k.key_id, k.username);
            rs_apikey_release(&k);
        }
    } else if (strcmp(sub, "list") == 0) {
        struct rs_apikey *items = NULL;
        size_t n = 0;
        r = rs_svc_apikey_list(&ctx, v[K_USER], &items, &n, &err);
        if (r == 0) {
            printf("%-6s %-18s %-20s %-24s %-8s %-25s %s\n", "ID", "KEY ID", "USER", "NAME",
                   "STATE", "CREATED", "LAST USED");
            for (size_t i = 0; i < n; i++) {
                key_row(&items[i]);
                rs_apikey_release(&items[i]);
            }
            free(items);
        }
    } else {
        struct rs_apikey k;
        r = rs_svc_apikey_revoke(&ctx, id, &k, &err);
        if (r == 0) {
            printf("revoked api key %" PRId64 " (%s) of %s\n", k.id, k.key_id, k.username);
            rs_apikey_release(&k);
        }
    }
    rs_ctx_release(&ctx);
    store->ops->close(store);
    if (r < 0) {
        rs_cli_print_error(&err);
        return RS_EXIT_ERROR;
    }
    return RS_EXIT_OK;
}
