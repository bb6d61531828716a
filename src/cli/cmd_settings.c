/* cmd_settings.c: `roster settings users show | set PATH=VALUE... | fields`:
 * Settings -> Users -> Settings from the command line, through the same
 * service calls and checks as PATCH /api/v1/settings/users. */
#include <getopt.h>
#include <stdio.h>

#include "../core/custom_field.h"
#include "cli.h"

static void settings_usage(FILE *out)
{
    fprintf(out,
            "usage: roster settings users show [--db URL]\n"
            "       roster settings users set PATH=VALUE... [--db URL]\n"
            "       roster settings users fields [--db URL]\n\n"
            "PATH is section.name, e.g. validation.require_department=true,\n"
            "licence.max_active_users=250, defaults.department=Sales,\n"
            "validation.email_allowed_domains='[\"example.com\"]'. VALUE is read as JSON\n"
            "when it parses as JSON, else as a string; null clears.\n"
            "--db URL: sqlite:PATH or postgres://... (ROSTER_DB; %s)\n",
            RS_DEFAULT_DB);
}

static void print_json(json_t *j)
{
    char *s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    printf("%s\n", s);
    free(s);
    json_decref(j);
}

/* Builds {"section": {"name": value}, ...} from PATH=VALUE arguments. */
static json_t *build_patch(char **args, int n)
{
    json_t *patch = json_object();
    for (int i = 0; i < n; i++) {
        const char *eq = strchr(args[i], '=');
        const char *dot = strchr(args[i], '.');
        if (!eq || !dot || dot > eq || dot == args[i] || dot + 1 == eq) {
            fprintf(stderr, "roster settings: \"%s\" is not PATH=VALUE with PATH section.name\n",
                    args[i]);
            json_decref(patch);
            return NULL;
        }
        char *section = rs_xstrndup(args[i], (size_t)(dot - args[i]));
        char *name = rs_xstrndup(dot + 1, (size_t)(eq - dot - 1));
        json_t *value = json_loads(eq + 1, JSON_DECODE_ANY, NULL);
        if (!value)
            value = json_string(eq + 1);
        json_t *sec = json_object_get(patch, section);
        if (!sec) {
            sec = json_object();
            json_object_set_new(patch, section, sec);
        }
        json_object_set_new(sec, name, value);
        free(section);
        free(name);
    }
    return patch;
}

int rs_cmd_settings(int argc, char **argv)
{
    static const struct option opts[] = {{"db", required_argument, NULL, 'd'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    bool help = false;
    for (int i = 1; i < argc; i++)
        help = help || strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0;
    if (help) {
        settings_usage(stdout);
        return RS_EXIT_OK;
    }
    if (argc < 3 || strcmp(argv[1], "users") != 0) {
        settings_usage(help ? stdout : stderr);
        return help ? RS_EXIT_OK : RS_EXIT_USAGE;
    }
    const char *sub = argv[2];
    const char *db = NULL;
    int c;
    optind = 1;
    while ((c = getopt_long(argc - 2, argv + 2, "", opts, NULL)) != -1) {
        if (c == 'd') {
            db = optarg;
        } else if (c == 'h') {
            settings_usage(stdout);
            return RS_EXIT_OK;
        } else {
            return RS_EXIT_USAGE;
        }
    }
    char **rest = argv + 2 + optind;
    int nrest = argc - 2 - optind;
    if (strcmp(sub, "show") != 0 && strcmp(sub, "set") != 0 && strcmp(sub, "fields") != 0) {
        fprintf(stderr, "roster settings users: unknown subcommand \"%s\"\n", sub);
        return RS_EXIT_USAGE;
    }
    json_t *patch = NULL;
    if (strcmp(sub, "set") == 0) {
        if (nrest == 0) {
            fprintf(stderr, "roster settings users set: give at least one PATH=VALUE\n");
            return RS_EXIT_USAGE;
        }
        patch = build_patch(rest, nrest);
        if (!patch)
            return RS_EXIT_USAGE;
    }
    struct rs_store *store = rs_cli_open_store(rs_cli_opt(db, "ROSTER_DB", RS_DEFAULT_DB), 2);
    if (!store) {
        json_decref(patch);
        return RS_EXIT_ERROR;
    }
    struct rs_ctx ctx;
    struct rs_error err;
    rs_error_init(&err);
    rs_ctx_init(&ctx, store);
    rs_strlcpy(ctx.actor.username, "cli", sizeof(ctx.actor.username));
    int r;
    if (strcmp(sub, "fields") == 0) {
        struct rs_custom_field *items = NULL;
        size_t n = 0;
        r = rs_svc_fields_list(&ctx, &items, &n, &err);
        if (r == 0) {
            json_t *arr = json_array();
            for (size_t i = 0; i < n; i++) {
                json_array_append_new(arr, rs_custom_field_to_json(&items[i]));
                rs_custom_field_release(&items[i]);
            }
            free(items);
            print_json(arr);
        }
    } else {
        struct rs_user_settings s;
        r = patch ? rs_svc_settings_patch(&ctx, patch, -1, &s, &err)
                  : rs_svc_settings_get(&ctx, &s, &err);
        if (r == 0) {
            print_json(rs_user_settings_to_json(&s));
            rs_user_settings_release(&s);
        }
    }
    json_decref(patch);
    rs_ctx_release(&ctx);
    store->ops->close(store);
    if (r < 0) {
        rs_cli_print_error(&err);
        return RS_EXIT_ERROR;
    }
    return RS_EXIT_OK;
}
