/*
 * kernels_avx512.c - the x86 kernels (x86/kernels_x86.inc) built with
 * AVX-512 F/BW/VL/DQ/VNNI: the integer dots become vpdpbusd/vpdpwssd and the
 * 32 vector registers hold tiles of 4 rows x 8 tokens (two tokens per
 * 512-bit vector, see lg_tile_pairs).
 */
#include "kernels/isa.h"

#define NTP_X86_FILL ntp__kernels_avx512_fill
#define NTP_X86_MR   4
#define NTP_X86_MT   8
#include "kernels/x86/kernels_x86.inc"
