/*
 * x86.h - what the files of src/kernels/x86 share. Every file here is
 * compiled once per x86 ISA into that ISA's static library, with its own -m
 * flags (src/kernels/meson.build, never -march=native), which also defines
 *   NTP_X86_ISA               the library's name (avx2, avx512): the suffix
 *                             of every external name, so the builds of one
 *                             file link side by side;
 *   NTP_X86_MR, NTP_X86_MT    the register tile of the matmul engines
 *                             (rows x tokens, tile.h).
 * kernels.c reaches a library only through its fill (fill.c, declared in
 * isa.h), after cpu_features.c said the CPU and OS run it. The design is in
 * docs/architecture.md, section "Kernels".
 */
#ifndef NTP_KERNELS_X86_X86_H
#define NTP_KERNELS_X86_X86_H

#include "kernels/kernels.h"

#define NTP_X86_CAT_(isa, name) ntp__kernels_##isa##_##name
#define NTP_X86_CAT(isa, name)  NTP_X86_CAT_(isa, name)
/* The external name of this ISA's copy of name: NTP_X86(fill) is ntp__kernels_avx2_fill. */
#define NTP_X86(name) NTP_X86_CAT(NTP_X86_ISA, name)

/* The activation quantizers (act.c): float rows to Q8_0, Q8_1 and Q8_K blocks. */
void NTP_X86(quantize_q8_0)(const float *x, void *vy, int64_t n);
void NTP_X86(quantize_q8_1)(const float *x, void *vy, int64_t n);
void NTP_X86(quantize_q8_k)(const float *x, void *vy, int64_t n);

/* Each file's part of the table (fill.c calls them in this order). */
void NTP_X86(fill_attn)(struct ntp_kernels *k);                      /* attn.c */
void NTP_X86(fill_float)(struct ntp_kernel_type t[NTP_TYPE_COUNT]);  /* float.c */
void NTP_X86(fill_legacy)(struct ntp_kernel_type t[NTP_TYPE_COUNT]); /* legacy.c */
void NTP_X86(fill_kquant)(struct ntp_kernel_type t[NTP_TYPE_COUNT]); /* kquant.c */
void NTP_X86(fill_packed)(struct ntp_kernel_type t[NTP_TYPE_COUNT]); /* packed.c, AVX-512 only */

/*
 * One weight type's entry: the activation quantizer (NULL: float
 * activations), dot product and matmul (decode and prefill alike). A type
 * the reference cannot compute is left alone, and act_type never changes
 * (isa.h says why).
 */
static inline void ntp__x86_set(struct ntp_kernel_type *e, ntp_quantize_act_fn quantize,
                                ntp_vec_dot_fn dot, ntp_matmul_fn matmul)
{
    if (e->vec_dot == NULL)
        return;
    if (quantize != NULL)
        e->quantize_act = quantize;
    e->vec_dot = dot;
    e->matvec = matmul;
    e->matmul = matmul;
}

#endif /* NTP_KERNELS_X86_X86_H */
