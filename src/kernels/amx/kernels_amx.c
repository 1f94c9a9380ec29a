/*
 * kernels_amx.c - AMX int8 tiles for prefill. Not implemented yet: the fill
 * reports false, so NTP_ISA=amx runs the AVX-512 kernels and says so.
 */
#include "kernels/isa.h"

bool ntp__kernels_amx_fill(struct ntp_kernels *k)
{
    (void)k;
    return false;
}
