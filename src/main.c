/* main.c: the roster binary's entry point: hands argv to the CLI. */
#include <stdio.h>
#include <sodium.h>

#include "src/cli/cli.h"

int main(int argc, char **argv)
{
    if (sodium_init() < 0) {
        fprintf(stderr, "roster: could not initialise libsodium\n");
        return 1;
    }
    /* libuv reads this once, at the first use of its worker pool. Writes,
     * PostgreSQL queries and (later) hashing wait there, so give it room. */
    setenv("UV_THREADPOOL_SIZE", "8", 0);
    return rs_cli_main(argc, argv);
}
