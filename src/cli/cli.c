/* cli.c: command dispatch and helpers shared by commands. */
#include <errno.h>
#include <stdio.h>
#include <sys/stat.h>

#include "cli.h"

static const struct rs_command commands[] = {
    {"serve", "run the HTTP server", rs_cmd_serve},
    {"migrate", "apply pending database migrations", rs_cmd_migrate},
    {"user", "add, list, show, edit, (de)activate, lock and erase users", rs_cmd_user},
    {"apikey", "create, list and revoke API keys", rs_cmd_apikey},
    {"settings", "show and change Settings -> Users -> Settings", rs_cmd_settings},
    {"routes", "print the HTTP route table", rs_cmd_routes},
    {"version", "print the version", rs_cmd_version},
};

static void usage(FILE *out)
{
    fprintf(out, "usage: roster COMMAND [OPTIONS]\n\ncommands:\n");
    for (size_t i = 0; i < RS_ARRAY_LEN(commands); i++)
        fprintf(out, "  %-9s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\nRun 'roster COMMAND --help' for a command's options.\n"
                 "Every option can also be set by an environment variable ROSTER_<NAME>\n"
                 "(e.g. ROSTER_DB for --db).\n");
}

int rs_cli_main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return RS_EXIT_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return RS_EXIT_OK;
    }
    if (strcmp(argv[1], "--version") == 0)
        return rs_cmd_version(argc - 1, argv + 1);
    for (size_t i = 0; i < RS_ARRAY_LEN(commands); i++) {
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].run(argc - 1, argv + 1);
    }
    fprintf(stderr, "roster: unknown command \"%s\"\n\n", argv[1]);
    usage(stderr);
    return RS_EXIT_USAGE;
}

const char *rs_cli_opt(const char *flag_value, const char *env_name, const char *def)
{
    if (flag_value)
        return flag_value;
    const char *e = env_name ? getenv(env_name) : NULL;
    return e && *e ? e : def;
}

int rs_cli_int(const char *name, const char *value, long min, long max, long *ret)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(value, &end, 10);
    if (errno || !*value || *end || v < min || v > max) {
        fprintf(stderr, "roster: %s must be a whole number from %ld to %ld (got \"%s\")\n", name,
                min, max, value);
        return -1;
    }
    *ret = v;
    return 0;
}

void rs_cli_print_error(const struct rs_error *err)
{
    fprintf(stderr, "roster: %s\n", err->message[0] ? err->message : rs_code_title(err->code));
    for (int i = 0; i < err->nfields; i++)
        fprintf(stderr, "  %s: %s (rule: %s)\n", err->fields[i].field, err->fields[i].message,
                err->fields[i].rule);
    if (err->log_detail[0] && getenv("ROSTER_DEBUG"))
        fprintf(stderr, "  detail: %s\n", err->log_detail);
}

/* Creates the directory that will hold a SQLite file, as `mkdir -p`. */
static void make_parent_dirs(const char *path)
{
    char *copy = rs_xstrdup(path);
    for (char *p = copy + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(copy, 0750) != 0 && errno != EEXIST)
            break;
        *p = '/';
    }
    free(copy);
}

struct rs_store *rs_cli_open_store(const char *db_url, int pool_size)
{
    struct rs_store_config cfg = {.url = db_url, .pool_size = pool_size, .busy_timeout_ms = 5000};
    struct rs_store *store = NULL;
    struct rs_error err;
    rs_error_init(&err);
    if (strncmp(db_url, "sqlite:", 7) == 0)
        make_parent_dirs(db_url + 7);
    if (rs_store_open(&cfg, &store, &err) < 0) {
        rs_cli_print_error(&err);
        if (err.log_detail[0])
            fprintf(stderr, "  detail: %s\n", err.log_detail);
        return NULL;
    }
    int applied = 0;
    if (store->ops->migrate(store, &applied, &err) < 0) {
        fprintf(stderr, "roster: could not migrate the database\n");
        rs_cli_print_error(&err);
        if (err.log_detail[0])
            fprintf(stderr, "  detail: %s\n", err.log_detail);
        store->ops->close(store);
        return NULL;
    }
    return store;
}
