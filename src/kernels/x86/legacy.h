/*
 * legacy.h - decoding the 32-element weight blocks (Q4_0, Q4_1, Q5_0, Q5_1,
 * Q8_0; blocks.h) for the legacy engine (legacy.c) and the packed kernels
 * (packed.c). A block becomes 32 unsigned bytes u with a zero point z, so
 * that dot = d_w d_x (sum u x - z sum x) [+ m_w s_x for Q4_1/Q5_1].
 */
#ifndef NTP_KERNELS_X86_LEGACY_H
#define NTP_KERNELS_X86_LEGACY_H

#include "kernels/blocks.h"
#include "kernels/x86/simd_x86.h"

#include <stdbool.h>
#include <stddef.h>

enum lg_fmt { LG_Q4_0, LG_Q4_1, LG_Q5_0, LG_Q5_1, LG_Q8_0 };

/* One decoded weight block: unsigned codes, scale, minimum (0 without). */
struct lg_w {
    __m256i u; /* 32 codes in element order (for Q8_0 without VNNI: the signed codes) */
    __m256 d;  /* scale, in every lane */
    float m;   /* minimum (Q4_1/Q5_1), else 0 */
};

NTP_INLINE size_t lg_wbytes(enum lg_fmt f)
{
    switch (f) {
    case LG_Q4_0:
        return sizeof(ntp_block_q4_0);
    case LG_Q4_1:
        return sizeof(ntp_block_q4_1);
    case LG_Q5_0:
        return sizeof(ntp_block_q5_0);
    case LG_Q5_1:
        return sizeof(ntp_block_q5_1);
    default:
        return sizeof(ntp_block_q8_0);
    }
}

/* Q4_1 and Q5_1 pair with Q8_1 (d, s, qs); the others with Q8_0 (d, qs). */
NTP_INLINE bool lg_q81(enum lg_fmt f)
{
    return f == LG_Q4_1 || f == LG_Q5_1;
}

/* Bytes of the activation block (Q8_1 or Q8_0) and offsets of its codes and sum. */
NTP_INLINE size_t lg_xbytes(enum lg_fmt f)
{
    return lg_q81(f) ? sizeof(ntp_block_q8_1) : sizeof(ntp_block_q8_0);
}

NTP_INLINE size_t lg_xcodes(enum lg_fmt f)
{
    return lg_q81(f) ? offsetof(ntp_block_q8_1, qs) : offsetof(ntp_block_q8_0, qs);
}

#define LG_XSUM offsetof(ntp_block_q8_1, s) /* d * sum of the codes, binary16 */

/* Zero point subtracted from u: the code of 0.0 (128 makes Q8_0 unsigned under VNNI). */
NTP_INLINE int lg_zero(enum lg_fmt f)
{
    switch (f) {
    case LG_Q4_0:
        return 8;
    case LG_Q5_0:
        return 16;
    case LG_Q8_0:
        return NTP_X86_VNNI ? 128 : 0;
    default:
        return 0;
    }
}

/* The binary16 at p converted and broadcast to 8 lanes (two uops, no scalar round trip). */
NTP_INLINE __m256 lg_bcast_h(const uint8_t *p)
{
    uint16_t h;
    memcpy(&h, p, sizeof h);
    return _mm256_cvtph_ps(_mm_set1_epi16((short)h));
}

/*
 * 16 bytes of nibble pairs -> 32 codes: the bytes broadcast to both halves,
 * the upper half shifted right by 4 (per dword: the mask drops the spill-over).
 */
NTP_INLINE __m256i lg_nibbles(const uint8_t *p)
{
    const __m256i v = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)p));
    const __m256i sh = _mm256_srlv_epi32(v, _mm256_setr_epi32(0, 0, 0, 0, 4, 4, 4, 4));
    return _mm256_and_si256(sh, _mm256_set1_epi8(15));
}

NTP_INLINE struct lg_w lg_decode(enum lg_fmt f, const uint8_t *b)
{
    struct lg_w w = {.m = 0};
    const __m256i b4 = _mm256_set1_epi8(16);
    w.d = lg_bcast_h(b);
    switch (f) {
    case LG_Q4_0:
        w.u = lg_nibbles(((const ntp_block_q4_0 *)b)->qs);
        break;
    case LG_Q4_1:
        w.m = ntp__x86_h2f(b + offsetof(ntp_block_q4_1, m));
        w.u = lg_nibbles(((const ntp_block_q4_1 *)b)->qs);
        break;
    case LG_Q5_0:
        w.u = _mm256_or_si256(
            lg_nibbles(((const ntp_block_q5_0 *)b)->qs),
            _mm256_and_si256(ntp__x86_bits_to_bytes(b + offsetof(ntp_block_q5_0, qh)), b4));
        break;
    case LG_Q5_1:
        w.m = ntp__x86_h2f(b + offsetof(ntp_block_q5_1, m));
        w.u = _mm256_or_si256(
            lg_nibbles(((const ntp_block_q5_1 *)b)->qs),
            _mm256_and_si256(ntp__x86_bits_to_bytes(b + offsetof(ntp_block_q5_1, qh)), b4));
        break;
    case LG_Q8_0:
        w.u = _mm256_loadu_si256((const __m256i *)(b + offsetof(ntp_block_q8_0, qs)));
        if (NTP_X86_VNNI)
            w.u = _mm256_xor_si256(w.u, _mm256_set1_epi8((char)0x80));
        break;
    }
    return w;
}

/* Integer dot of one decoded block with activation codes xv; corr = -z * sum(x) per lane. */
NTP_INLINE __m256i lg_idot(enum lg_fmt f, __m256i u, __m256i xv, __m256i corr)
{
    if (f == LG_Q8_0 && !NTP_X86_VNNI)
        return ntp__x86_dot_i8(_mm256_setzero_si256(), u, xv);
    return ntp__x86_dpbusd(corr, u, xv);
}

#endif /* NTP_KERNELS_X86_LEGACY_H */
