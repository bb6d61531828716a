/* cmd_misc.c: `roster migrate`, `roster version`, `roster routes`. */
#include <getopt.h>
#include <stdio.h>

#include "../http/http.h"
#include "cli.h"
#include "rs_version.h"

static bool wants_help(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            return true;
    }
    return false;
}

int rs_cmd_migrate(int argc, char **argv)
{
    static const struct option opts[] = {{"db", required_argument, NULL, 'd'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *db = NULL;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c == 'd') {
            db = optarg;
        } else if (c == 'h') {
            printf("usage: roster migrate [--db URL]\n\n"
                   "Applies pending numbered migrations (roster serve also does at start).\n"
                   "  --db URL   sqlite:PATH or postgres://... (ROSTER_DB; %s)\n",
                   RS_DEFAULT_DB);
            return RS_EXIT_OK;
        } else {
            return RS_EXIT_USAGE;
        }
    }
    db = rs_cli_opt(db, "ROSTER_DB", RS_DEFAULT_DB);
    struct rs_store_config cfg = {.url = db, .pool_size = 1, .busy_timeout_ms = 5000};
    struct rs_store *store = NULL;
    struct rs_error err;
    rs_error_init(&err);
    if (rs_store_open(&cfg, &store, &err) < 0) {
        rs_cli_print_error(&err);
        return RS_EXIT_ERROR;
    }
    int applied = 0, version = 0;
    int r = store->ops->migrate(store, &applied, &err);
    if (r == 0)
        r = store->ops->schema_version(store, &version, &err);
    store->ops->close(store);
    if (r < 0) {
        rs_cli_print_error(&err);
        if (err.log_detail[0])
            fprintf(stderr, "  detail: %s\n", err.log_detail);
        return RS_EXIT_ERROR;
    }
    printf("applied %d migration%s; schema version %d\n", applied, applied == 1 ? "" : "s",
           version);
    return RS_EXIT_OK;
}

int rs_cmd_version(int argc, char **argv)
{
    if (wants_help(argc, argv)) {
        printf("usage: roster version\n\nPrints the version of this binary.\n");
        return RS_EXIT_OK;
    }
    printf("roster %s\n", RS_VERSION);
    return RS_EXIT_OK;
}

int rs_cmd_routes(int argc, char **argv)
{
    if (wants_help(argc, argv)) {
        printf("usage: roster routes\n\nPrints the HTTP route table: METHOD PATH RESOURCE "
               "LEVEL.\n");
        return RS_EXIT_OK;
    }
    size_t n = 0;
    const struct rs_route *routes = rs_routes(&n);
    for (size_t i = 0; i < n; i++)
        printf("%s %s %s %s\n", routes[i].method, routes[i].pattern,
               rs_resource_name(routes[i].resource),
               routes[i].flags & RS_ROUTE_PUBLIC ? "public" : rs_level_name(routes[i].level));
    return RS_EXIT_OK;
}
