/*
 * fill.c - this x86 library's table fill (isa.h): every file's part, over
 * the reference. Only the AVX-512 library has the packed kernels.
 */
#include "kernels/isa.h"
#include "kernels/x86/simd_x86.h"
#include "kernels/x86/x86.h"

void NTP_X86(fill)(struct ntp_kernels *k)
{
    NTP_X86(fill_attn)(k);
    NTP_X86(fill_float)(k->type);
    NTP_X86(fill_legacy)(k->type);
    NTP_X86(fill_kquant)(k->type);
#if NTP_X86_PAIRS
    NTP_X86(fill_packed)(k->type);
#endif
}
