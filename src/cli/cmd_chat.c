/* cmd_chat.c - being written (inference issue). */
#include "cli/cli.h"

#include <stdio.h>

int ntp_cli_chat(int argc, char **argv)
{
    (void)argc;
    fprintf(stderr, "numatp: %s: not implemented yet\n", argv[0]);
    return 1;
}
