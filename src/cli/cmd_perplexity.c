/* cmd_perplexity.c - being written (inference issue). */
#include "cli/cli.h"

#include <stdio.h>

int ntp_cli_perplexity(int argc, char **argv)
{
    (void)argc;
    fprintf(stderr, "numatp: %s: not implemented yet\n", argv[0]);
    return 1;
}
