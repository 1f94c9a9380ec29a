/* cmd_gen.c - being written (foundation issue). */
#include "cli/cli.h"

#include <stdio.h>

int ntp_cli_gen(int argc, char **argv)
{
    (void)argc;
    fprintf(stderr, "numatp: %s: not implemented yet\n", argv[0]);
    return 1;
}
