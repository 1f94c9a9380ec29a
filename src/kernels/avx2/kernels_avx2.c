/*
 * kernels_avx2.c - the x86 kernels (x86/kernels_x86.inc) built for AVX2 +
 * FMA + F16C: 16 vector registers, so tiles of 2 rows x 4 tokens.
 */
#include "kernels/isa.h"

#define NTP_X86_FILL ntp__kernels_avx2_fill
#define NTP_X86_MR   2
#define NTP_X86_MT   4
#include "kernels/x86/kernels_x86.inc"
