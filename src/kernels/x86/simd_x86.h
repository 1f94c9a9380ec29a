/*
 * simd_x86.h - static inline helpers shared by the files of src/kernels/x86.
 * Most use 256-bit vectors only; what a helper compiles to depends on the
 * flags of the library including it: with AVX-512 VNNI + VL the u8 x s8 dot
 * products become one vpdpbusd and the s16 x s16 ones one vpdpwssd,
 * otherwise the AVX2 pair vpmaddubsw + vpmaddwd. The token-pair helpers at
 * the end exist only with AVX-512 (NTP_X86_PAIRS).
 */
#ifndef NTP_KERNELS_X86_SIMD_X86_H
#define NTP_KERNELS_X86_SIMD_X86_H

#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#if defined(__AVX512VNNI__) && defined(__AVX512VL__)
#define NTP_X86_VNNI 1
#else
#define NTP_X86_VNNI 0
#endif

#define NTP_INLINE static inline __attribute__((always_inline))

/*
 * Decode (one token) streams every weight byte once from DRAM; the hardware
 * prefetchers alone left Q4_0/Q4_K matvec at ~55% of the read bandwidth of
 * one core here, asking for the bytes 8 KiB ahead brought them to ~90%
 * (bench/RESULTS.md, "Kernels"). Prefetches never fault, so running past the
 * end of the matrix is harmless. -DNTP_X86_PF=0 turns it off.
 */
#ifndef NTP_X86_PF
#define NTP_X86_PF 8192
#endif

/* binary16 bits at p (any alignment) to float, exact (F16C). */
NTP_INLINE float ntp__x86_h2f(const void *p)
{
    uint16_t h;
    memcpy(&h, p, sizeof h);
    return _cvtsh_ss(h);
}

NTP_INLINE float ntp__x86_hsum_ps(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

NTP_INLINE float ntp__x86_hmax_ps(__m256 v)
{
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    return _mm_cvtss_f32(m);
}

NTP_INLINE int ntp__x86_hsum_epi32(__m256i v)
{
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
    return _mm_cvtsi128_si32(s);
}

/*
 * acc + sums of 4 adjacent u8 * s8 products per int32 lane. Without VNNI the
 * pairs go through int16 (vpmaddubsw saturates): callers keep u <= 127 there.
 */
NTP_INLINE __m256i ntp__x86_dpbusd(__m256i acc, __m256i u, __m256i s)
{
#if NTP_X86_VNNI
    return _mm256_dpbusd_epi32(acc, u, s);
#else
    const __m256i p = _mm256_maddubs_epi16(u, s);
    return _mm256_add_epi32(acc, _mm256_madd_epi16(p, _mm256_set1_epi16(1)));
#endif
}

/* acc + pairwise s16 * s16 products (vpmaddwd), fused with the add under VNNI. */
NTP_INLINE __m256i ntp__x86_dpwssd(__m256i acc, __m256i a, __m256i b)
{
#if NTP_X86_VNNI
    return _mm256_dpwssd_epi32(acc, a, b);
#else
    return _mm256_add_epi32(acc, _mm256_madd_epi16(a, b));
#endif
}

/* acc + sums of 4 adjacent s8 * s8 products: |a| is unsigned, b takes a's sign (a != -128). */
NTP_INLINE __m256i ntp__x86_dot_i8(__m256i acc, __m256i a, __m256i b)
{
    return ntp__x86_dpbusd(acc, _mm256_sign_epi8(a, a), _mm256_sign_epi8(b, a));
}

/* The 32 bits of a little-endian word at p -> 32 bytes, 0xFF where the bit is set. */
NTP_INLINE __m256i ntp__x86_bits_to_bytes(const uint8_t *p)
{
    uint32_t x;
    memcpy(&x, p, sizeof x);
    /* Byte k gets byte k / 8 of x, ORed with all bits but bit k % 8: all ones iff it was set. */
    const __m256i sel = _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202,
                                          0x0101010101010101, 0x0000000000000000);
    __m256i v = _mm256_shuffle_epi8(_mm256_set1_epi32((int)x), sel);
    v = _mm256_or_si256(v, _mm256_set1_epi64x(0x7fbfdfeff7fbfdfe));
    return _mm256_cmpeq_epi8(v, _mm256_set1_epi64x(-1));
}

/* 32 int32 lanes (four vectors) -> 32 int8 in element order, saturating. */
NTP_INLINE __m256i ntp__x86_pack_i32_i8(__m256i a, __m256i b, __m256i c, __m256i d)
{
    const __m256i ab = _mm256_packs_epi32(a, b);
    const __m256i cd = _mm256_packs_epi32(c, d);
    const __m256i abcd = _mm256_packs_epi16(ab, cd);
    /* The packs work per 128-bit lane: put the 32-bit groups back in order. */
    return _mm256_permutevar8x32_epi32(abcd, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

#if defined(__AVX512F__) && NTP_X86_VNNI
/*
 * AVX-512 prefill: two tokens share one 512-bit vector (token 2p in the low
 * half, 2p + 1 in the high half) against a weight vector broadcast to both
 * halves, so each vpdpbusd/convert/multiply/FMA serves two (row, token)
 * pairs. Every lane computes exactly what the 256-bit path computes for its
 * token, and the halves are reduced in the same order, so results are
 * bit-identical to decode (T = 1).
 */
#define NTP_X86_PAIRS 1

NTP_INLINE __m512i ntp__x86_pair_i(__m256i lo, __m256i hi)
{
    return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
}

NTP_INLINE __m512 ntp__x86_pair_f(__m256 lo, __m256 hi)
{
    return _mm512_insertf32x8(_mm512_castps256_ps512(lo), hi, 1);
}

/* The two halves of acc summed into *y0 (token 2p) and *y1 (2p + 1), plus m0 and m1. */
NTP_INLINE void ntp__x86_store_pair(float *y0, float *y1, __m512 acc, float m0, float m1)
{
    *y0 = ntp__x86_hsum_ps(_mm512_castps512_ps256(acc)) + m0;
    *y1 = ntp__x86_hsum_ps(_mm512_extractf32x8_ps(acc, 1)) + m1;
}
#else
#define NTP_X86_PAIRS 0
#endif

#endif /* NTP_KERNELS_X86_SIMD_X86_H */
