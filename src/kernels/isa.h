/*
 * isa.h - the kernel ISAs kernels.c chooses from, and the entry points of
 * the per-ISA libraries. On x86 (NTP_HAVE_X86_KERNELS, set by meson) the
 * files of src/kernels/x86 are compiled once per ISA, each time with its own
 * -m flags into its own static library; elsewhere only the reference is
 * built. kernels.c calls a fill only after the entry's supported() said the
 * CPU and OS run it. A fill overwrites the table entries it implements and
 * leaves the others (the reference's) in place; it never changes a type's
 * act_type, so every kernel of a type reads the same activations. A new ISA
 * is a library with its flags in meson.build, its fill declared here and one
 * row of the table in kernels.c (docs/architecture.md, "Kernels").
 */
#ifndef NTP_KERNELS_ISA_H
#define NTP_KERNELS_ISA_H

#include "kernels/cpu_features.h"
#include "kernels/kernels.h"

/* One kernel ISA: what NTP_ISA calls it, whether this CPU runs it, how it fills a table. */
struct ntp_kernel_isa {
    const char *name;                                    /* NTP_ISA value (static) */
    bool (*supported)(const struct ntp_cpu_features *f); /* the CPU and the OS run it */
    void (*fill)(struct ntp_kernels *k);                 /* over the reference; NULL: none */
};

#if NTP_HAVE_X86_KERNELS
void ntp__kernels_avx2_fill(struct ntp_kernels *k);   /* src/kernels/x86, -mavx2 -mfma -mf16c */
void ntp__kernels_avx512_fill(struct ntp_kernels *k); /* the same plus AVX-512 F/BW/VL/DQ/VNNI */
void ntp__kernels_amx_fill(struct ntp_kernels *k);    /* AVX-512's, prefill on AMX (x86/amx.c) */
#endif

#endif /* NTP_KERNELS_ISA_H */
