/*
 * isa.h - the entry points of the per-ISA kernel libraries (src/kernels/avx2,
 * avx512). Each is compiled with its own -m flags in its own static
 * library; kernels.c calls one only after cpu_features.c said the CPU and
 * OS run it. A fill overwrites the table entries it implements and leaves
 * the others (the reference, or a lower ISA's) in place; it never changes a
 * type's act_type, so every kernel of a type reads the same activations.
 */
#ifndef NTP_KERNELS_ISA_H
#define NTP_KERNELS_ISA_H

#include "kernels/kernels.h"

void ntp__kernels_avx2_fill(struct ntp_kernels *k);
void ntp__kernels_avx512_fill(struct ntp_kernels *k);

#endif /* NTP_KERNELS_ISA_H */
