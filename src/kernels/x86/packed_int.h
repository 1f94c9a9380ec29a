/*
 * packed_int.h - what the products with packed legacy weights share:
 * packed.c's AVX-512 VNNI tiles and amx.c's AMX tiles read the same packed
 * groups (packed.h) with the same helpers and order of work, so that both
 * compute every block's integer sum exactly and apply its scales in the
 * same float operations: a prefill on AMX gives the bits a decode on
 * AVX-512 gives.
 */
#ifndef NTP_KERNELS_X86_PACKED_INT_H
#define NTP_KERNELS_X86_PACKED_INT_H

#include "kernels/packed.h"
#include "kernels/x86/legacy.h"
#include "kernels/x86/simd_x86.h"
#include "kernels/x86/x86.h"

#include <stddef.h>
#include <string.h>

/*
 * The AVX-512 library's product with packed weights of any packed type
 * (packed.c): what amx.c runs for the tokens that do not fill a tile.
 */
ntp_status NTP_X86(matmul_packed)(const struct ntp_matmul_args *a);

#define PK_KC 256 /* blocks per chunk of k (the tables of activation scales) */

NTP_INLINE size_t pk_qs_off(enum lg_fmt f)
{
    switch (f) {
    case LG_Q4_0:
        return offsetof(ntp_pack_q4_0, qs);
    case LG_Q4_1:
        return offsetof(ntp_pack_q4_1, qs);
    case LG_Q5_0:
        return offsetof(ntp_pack_q5_0, qs);
    case LG_Q5_1:
        return offsetof(ntp_pack_q5_1, qs);
    default:
        return offsetof(ntp_pack_q8_0, qs);
    }
}

NTP_INLINE size_t pk_qh_off(enum lg_fmt f)
{
    return f == LG_Q5_0   ? offsetof(ntp_pack_q5_0, qh)
           : f == LG_Q5_1 ? offsetof(ntp_pack_q5_1, qh)
                          : 0;
}

NTP_INLINE size_t pk_m_off(enum lg_fmt f)
{
    return f == LG_Q4_1   ? offsetof(ntp_pack_q4_1, m)
           : f == LG_Q5_1 ? offsetof(ntp_pack_q5_1, m)
                          : 0;
}

/* Bit select (a & c) | b, for a fifth bit b already alone at bit 4 and c the nibble mask. */
#define PK_OR_MASKED 0xec

/* The 16-bit shift of v by n bits, left for n > 0 and right for n < 0 (n a constant). */
NTP_INLINE __m512i pk_shift(__m512i v, int n)
{
    return n > 0   ? _mm512_slli_epi16(v, (unsigned)n)
           : n < 0 ? _mm512_srli_epi16(v, (unsigned)-n)
                   : v;
}

/*
 * A code vector v's nibble (the low one when hi is false) with bit `bit` of
 * each byte of qh as the fifth bit: 5-bit codes 0..31. Every bit that moves
 * stays in its byte, so the 16-bit shifts spill nothing.
 */
NTP_INLINE __m512i pk_code5(__m512i v, __m512i qh, int bit, bool hi)
{
    const __m512i m4 = _mm512_set1_epi8(15), b4 = _mm512_set1_epi8(16);
    const __m512i nib = hi ? _mm512_srli_epi16(v, 4) : v;
    return _mm512_ternarylogic_epi32(nib, _mm512_and_si512(pk_shift(qh, 4 - bit), b4), m4,
                                     PK_OR_MASKED);
}

/*
 * Groups per run: packed.c's k-quant driver and amx.c's driver pass every
 * token tile over a run of groups before the next, so that a prefill reads
 * the weights from memory once and from L2 for the other tiles, not once
 * per tile of tokens. PKK_RUN bytes, which x86 L2s (1-2 MiB) hold with room
 * to spare. (packed.c's legacy driver keeps its order: it would tabulate
 * each tile's activations once per run, and measured no gain; AMX, whose
 * tiles go through a group faster than memory delivers it, needs the runs.)
 */
#define PKK_RUN ((size_t)384 << 10)

static inline int64_t pkk_run(size_t gbytes)
{
    return gbytes == 0 || gbytes >= PKK_RUN ? 1 : (int64_t)(PKK_RUN / gbytes);
}

#endif /* NTP_KERNELS_X86_PACKED_INT_H */
