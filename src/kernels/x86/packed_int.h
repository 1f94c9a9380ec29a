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

/* ---- the k-quants against Q8_K (packed.c, and amx.c's Q4_K and Q5_K) ---- */

/* 16 unsigned bytes (one per row) -> each row's lane holding the value twice as int16. */
NTP_INLINE __m512i pkk_dup(__m128i b)
{
    const __m512i v = _mm512_cvtepu8_epi32(b);
    return _mm512_or_si512(v, _mm512_slli_epi32(v, 16));
}

/* Q4_K: the 6-bit scale and min of sub-block j of the 16 rows, from the packed scale bytes. */
NTP_INLINE void pkk_scales_q4k(const ntp_pack_q4_K *p, __m128i sc[8], __m128i mn[8])
{
    __m128i b[12];
    for (int i = 0; i < 12; i++)
        b[i] = _mm_loadu_si128((const __m128i *)p->sc[i]);
    const __m128i m6 = _mm_set1_epi8(63), m4 = _mm_set1_epi8(15), top = _mm_set1_epi8(0x30);
    for (int j = 0; j < 4; j++) {
        sc[j] = _mm_and_si128(b[j], m6);
        mn[j] = _mm_and_si128(b[j + 4], m6);
        /* sub-block j + 4: low nibble from byte j + 8, top two bits from bytes j and j + 4 */
        sc[j + 4] =
            _mm_or_si128(_mm_and_si128(b[j + 8], m4), _mm_and_si128(_mm_srli_epi16(b[j], 2), top));
        mn[j + 4] = _mm_or_si128(_mm_and_si128(_mm_srli_epi16(b[j + 8], 4), m4),
                                 _mm_and_si128(_mm_srli_epi16(b[j + 4], 2), top));
    }
}

/* Dword e of the Q8_K block's codes (or, from offset 260, of its bsums) broadcast. */
NTP_INLINE __m512i pkk_x4(const uint8_t *xb, size_t off, int e)
{
    int32_t v;
    memcpy(&v, xb + off + 4 * e, sizeof v);
    return _mm512_set1_epi32(v);
}

/* The Q8_K block's scale broadcast. */
NTP_INLINE __m512 pkk_dx(const uint8_t *xb)
{
    float d;
    memcpy(&d, xb, sizeof d);
    return _mm512_set1_ps(d);
}

#define PKK_QS    offsetof(ntp_block_q8_K, qs)
#define PKK_BSUMS offsetof(ntp_block_q8_K, bsums)
#define PKK_XB    sizeof(ntp_block_q8_K)

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
