/*
 * isa_exec.c - `isa_exec ISA PROGRAM [ARGS...]` runs PROGRAM with NTP_ISA=ISA,
 * or exits 77 (meson's "skipped") with a reason when this CPU lacks ISA. Lets
 * meson run the whole-model tests once per kernel ISA on any machine.
 */
#include "kernels/kernels.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: isa_exec ISA PROGRAM [ARGS...]\n");
        return 2;
    }
    if (!ntp__kernels_isa_ok(argv[1])) {
        printf("SKIP: this CPU (or its OS) lacks %s\n", argv[1]);
        return 77;
    }
    setenv("NTP_ISA", argv[1], 1);
    execv(argv[2], argv + 2);
    perror(argv[2]);
    return 1;
}
