/* cli.h: the roster command line: a table of commands, each in its own file,
 * sharing option and output helpers. Commands call the service layer only. */
#ifndef RS_CLI_H
#define RS_CLI_H

#include "../service/service.h"

struct rs_command {
    const char *name;    /* "serve", "user", "apikey", ... */
    const char *summary;
    int (*run)(int argc, char **argv); /* argv[0] is the command name */
};

/* Exit codes. */
#define RS_EXIT_OK 0
#define RS_EXIT_ERROR 1
#define RS_EXIT_USAGE 2

int rs_cli_main(int argc, char **argv);

int rs_cmd_serve(int argc, char **argv);
int rs_cmd_migrate(int argc, char **argv);
int rs_cmd_user(int argc, char **argv);
int rs_cmd_apikey(int argc, char **argv);
int rs_cmd_settings(int argc, char **argv);
int rs_cmd_version(int argc, char **argv);
int rs_cmd_routes(int argc, char **argv);

/* Shared helpers (cli.c). */
#define RS_DEFAULT_DB "sqlite:var/roster.db"

/* An option's value: the flag if given, else the environment variable, else
 * the default. */
const char *rs_cli_opt(const char *flag_value, const char *env_name, const char *def);
/* Parses a positive integer option; prints an error naming it on failure. */
int rs_cli_int(const char *name, const char *value, long min, long max, long *ret) RS_WUR;

/* Opens the store the --db URL names and applies migrations (printing
 * nothing). Prints the error and returns NULL on failure. */
struct rs_store *rs_cli_open_store(const char *db_url, int pool_size);
/* Prints err to stderr: the message, then each field error. */
void rs_cli_print_error(const struct rs_error *err);

#endif
