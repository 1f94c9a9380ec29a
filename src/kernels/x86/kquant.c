/*
 * kquant.c - the engine of the k-quants (Q2_K .. Q6_K against Q8_K
 * activations): a 256-element super-block becomes eight vectors of 32
 * unsigned codes, int16 scales per 16 elements, and int16 coefficients
 * that, dotted with Q8_K's bsums, give the mins/offsets; register tiles as
 * in tile.h.
 */
#include "kernels/blocks.h"
#include "kernels/x86/simd_x86.h"
#include "kernels/x86/tile.h"
#include "kernels/x86/x86.h"

#include <stddef.h>

_Static_assert(offsetof(ntp_block_q5_K, d) == offsetof(ntp_block_q4_K, d) &&
                   offsetof(ntp_block_q5_K, dmin) == offsetof(ntp_block_q4_K, dmin) &&
                   offsetof(ntp_block_q5_K, scales) == offsetof(ntp_block_q4_K, scales),
               "Q5_K's scales are where Q4_K's are");

enum kq_fmt { KQ_Q2_K, KQ_Q3_K, KQ_Q4_K, KQ_Q5_K, KQ_Q6_K };

/* One decoded super-block: sum = d * sum_j u_j . (x_j scaled by sc_j) + dm * (mn . bsums). */
struct kq_w {
    __m256i u[8];  /* codes of elements 32j .. 32j+31, unsigned */
    __m256i sc[8]; /* int16 scale of each code pair: lanes 0-7 elements 0-15 of u[j], 8-15 rest */
    __m256i mn;    /* int16 coefficient of each of Q8_K's 16 bsums */
    float d, dm;   /* float scales of the two sums */
};

NTP_INLINE size_t kq_wbytes(enum kq_fmt f)
{
    switch (f) {
    case KQ_Q2_K:
        return sizeof(ntp_block_q2_K);
    case KQ_Q3_K:
        return sizeof(ntp_block_q3_K);
    case KQ_Q4_K:
        return sizeof(ntp_block_q4_K);
    case KQ_Q5_K:
        return sizeof(ntp_block_q5_K);
    default:
        return sizeof(ntp_block_q6_K);
    }
}

/* Byte-shuffle indices that repeat int16 word w of each 128-bit lane (w may differ per lane). */
NTP_INLINE __m256i kq_word_idx(int lo, int hi)
{
    return _mm256_set_m128i(_mm_set1_epi16((short)(2 * hi | (2 * hi + 1) << 8)),
                            _mm_set1_epi16((short)(2 * lo | (2 * lo + 1) << 8)));
}

/*
 * Scales of the 16 groups of 16 elements (int16 s16[g]) as the eight pair
 * vectors of struct kq_w: sc[j] lanes 0-7 = s16[2j], lanes 8-15 = s16[2j+1].
 */
NTP_INLINE void kq_pairs16(__m256i s16, __m256i sc[8])
{
    const __m256i lo = _mm256_permute4x64_epi64(s16, 0x44),
                  hi = _mm256_permute4x64_epi64(s16, 0xee);
    for (int j = 0; j < 4; j++) {
        sc[j] = _mm256_shuffle_epi8(lo, kq_word_idx(2 * j, 2 * j + 1));
        sc[j + 4] = _mm256_shuffle_epi8(hi, kq_word_idx(2 * j, 2 * j + 1));
    }
}

/*
 * Q4_K/Q5_K: the 6-bit scales and mins of the 8 sub-blocks (layout in
 * blocks.h), unpacked four at a time in 32-bit words: sc[j] is a sub-block's
 * scale in all 16 lanes, *mn the min of group g (= sub-block g / 2) in lane g.
 */
NTP_INLINE void kq_scales_k4(const uint8_t *s, __m256i sc[8], __m256i *mn)
{
    uint32_t u[3];
    memcpy(u, s, sizeof u);
    const uint32_t m6 = 0x3f3f3f3f, m4 = 0x0f0f0f0f, m2 = 0x03030303;
    const uint32_t sc03 = u[0] & m6, mn03 = u[1] & m6;
    const uint32_t sc47 = (u[2] & m4) | ((u[0] >> 6) & m2) << 4;
    const uint32_t mn47 = ((u[2] >> 4) & m4) | ((u[1] >> 6) & m2) << 4;
    const __m128i sc8 = _mm_cvtepu8_epi16(_mm_set_epi32(0, 0, (int)sc47, (int)sc03));
    const __m128i mn8 = _mm_cvtepu8_epi16(_mm_set_epi32(0, 0, (int)mn47, (int)mn03));
    *mn = _mm256_set_m128i(_mm_unpackhi_epi16(mn8, mn8), _mm_unpacklo_epi16(mn8, mn8));
    const __m256i all = _mm256_broadcastsi128_si256(sc8);
    for (int j = 0; j < 8; j++)
        sc[j] = _mm256_shuffle_epi8(all, kq_word_idx(j, j));
}

NTP_INLINE void kq_decode_q4k(const uint8_t *b, struct kq_w *w, bool five)
{
    const uint8_t *qs;
    __m256i qh = _mm256_setzero_si256();
    if (five) {
        const ntp_block_q5_K *p = (const ntp_block_q5_K *)b;
        qs = p->qs;
        qh = _mm256_loadu_si256((const __m256i *)p->qh);
    } else {
        qs = ((const ntp_block_q4_K *)b)->qs;
    }
    /* Q5_K starts as Q4_K does (asserted below). */
    kq_scales_k4(b + offsetof(ntp_block_q4_K, scales), w->sc, &w->mn);
    w->d = ntp__x86_h2f(b + offsetof(ntp_block_q4_K, d));
    w->dm = -ntp__x86_h2f(b + offsetof(ntp_block_q4_K, dmin));
    const __m256i m4 = _mm256_set1_epi8(15), one = _mm256_set1_epi8(1);
    for (int c = 0; c < 4; c++) {
        const __m256i q = _mm256_loadu_si256((const __m256i *)(qs + 32 * c));
        w->u[2 * c] = _mm256_and_si256(q, m4);
        w->u[2 * c + 1] = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
        if (five) {
            const __m256i h0 = _mm256_and_si256(_mm256_srli_epi16(qh, 2 * c), one);
            const __m256i h1 = _mm256_and_si256(_mm256_srli_epi16(qh, 2 * c + 1), one);
            w->u[2 * c] = _mm256_or_si256(w->u[2 * c], _mm256_slli_epi16(h0, 4));
            w->u[2 * c + 1] = _mm256_or_si256(w->u[2 * c + 1], _mm256_slli_epi16(h1, 4));
        }
    }
}

NTP_INLINE void kq_decode_q6k(const uint8_t *b, struct kq_w *w)
{
    const ntp_block_q6_K *p = (const ntp_block_q6_K *)b;
    const __m256i m4 = _mm256_set1_epi8(15), m2 = _mm256_set1_epi8(3 << 4);
    const __m256i s16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)p->scales));
    w->d = w->dm = ntp__x86_h2f(&p->d);
    w->mn = _mm256_sub_epi16(_mm256_setzero_si256(), _mm256_slli_epi16(s16, 5));
    kq_pairs16(s16, w->sc);
    for (int h = 0; h < 2; h++) {
        const __m256i l0 = _mm256_loadu_si256((const __m256i *)(p->ql + 64 * h));
        const __m256i l1 = _mm256_loadu_si256((const __m256i *)(p->ql + 64 * h + 32));
        const __m256i qh = _mm256_loadu_si256((const __m256i *)(p->qh + 32 * h));
        /* High bits moved to bits 4-5 of each byte (16-bit shifts; the mask drops spill-over). */
        w->u[4 * h] = _mm256_or_si256(_mm256_and_si256(l0, m4),
                                      _mm256_and_si256(_mm256_slli_epi16(qh, 4), m2));
        w->u[4 * h + 1] = _mm256_or_si256(_mm256_and_si256(l1, m4),
                                          _mm256_and_si256(_mm256_slli_epi16(qh, 2), m2));
        w->u[4 * h + 2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4),
                                          _mm256_and_si256(qh, m2));
        w->u[4 * h + 3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                                          _mm256_and_si256(_mm256_srli_epi16(qh, 2), m2));
    }
}

/* Q2_K and Q3_K share the 2-bit packing: u[4h + k] = bits 2k..2k+1 of qs[32h ..]. */
NTP_INLINE void kq_low2(const uint8_t *qs, __m256i u[8])
{
    const __m256i m2 = _mm256_set1_epi8(3);
    for (int h = 0; h < 2; h++) {
        const __m256i q = _mm256_loadu_si256((const __m256i *)(qs + 32 * h));
        for (int k = 0; k < 4; k++)
            u[4 * h + k] = _mm256_and_si256(_mm256_srli_epi16(q, 2 * k), m2);
    }
}

NTP_INLINE void kq_decode_q2k(const uint8_t *b, struct kq_w *w)
{
    const ntp_block_q2_K *p = (const ntp_block_q2_K *)b;
    const __m256i s16 = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)p->scales));
    kq_low2(p->qs, w->u);
    w->d = ntp__x86_h2f(&p->d);
    w->dm = -ntp__x86_h2f(&p->dmin);
    w->mn = _mm256_srli_epi16(s16, 4);
    kq_pairs16(_mm256_and_si256(s16, _mm256_set1_epi16(15)), w->sc);
}

NTP_INLINE void kq_decode_q3k(const uint8_t *b, struct kq_w *w)
{
    const ntp_block_q3_K *p = (const ntp_block_q3_K *)b;
    /* The sixteen 6-bit scales, four per 32-bit word (layout in blocks.h), offset 32 removed. */
    uint32_t u[3];
    memcpy(u, p->scales, sizeof u);
    const uint32_t m4 = 0x0f0f0f0f, m2 = 0x03030303;
    const uint32_t w0 = (u[0] & m4) | (u[2] & m2) << 4;
    const uint32_t w1 = (u[1] & m4) | ((u[2] >> 2) & m2) << 4;
    const uint32_t w2 = ((u[0] >> 4) & m4) | ((u[2] >> 4) & m2) << 4;
    const uint32_t w3 = ((u[1] >> 4) & m4) | ((u[2] >> 6) & m2) << 4;
    const __m256i s16 =
        _mm256_sub_epi16(_mm256_cvtepu8_epi16(_mm_setr_epi32((int)w0, (int)w1, (int)w2, (int)w3)),
                         _mm256_set1_epi16(32));
    kq_low2(p->qs, w->u);
    const __m256i hm = _mm256_loadu_si256((const __m256i *)p->hmask);
    const __m256i one = _mm256_set1_epi8(1);
    for (int j = 0; j < 8; j++) {
        const __m256i h = _mm256_and_si256(_mm256_srli_epi16(hm, j), one);
        w->u[j] = _mm256_or_si256(w->u[j], _mm256_slli_epi16(h, 2));
    }
    kq_pairs16(s16, w->sc);
    w->d = w->dm = ntp__x86_h2f(&p->d);
    w->mn = _mm256_sub_epi16(_mm256_setzero_si256(), _mm256_slli_epi16(s16, 2));
}

NTP_INLINE void kq_decode(enum kq_fmt f, const uint8_t *b, struct kq_w *w)
{
    switch (f) {
    case KQ_Q2_K:
        kq_decode_q2k(b, w);
        break;
    case KQ_Q3_K:
        kq_decode_q3k(b, w);
        break;
    case KQ_Q4_K:
        kq_decode_q4k(b, w, false);
        break;
    case KQ_Q5_K:
        kq_decode_q4k(b, w, true);
        break;
    case KQ_Q6_K:
        kq_decode_q6k(b, w);
        break;
    }
}

#if NTP_X86_PAIRS
/* The k-quant tile with token pairs (see lg_tile_pairs); weights broadcast once per super-block. */
NTP_INLINE void kq_tile_pairs(enum kq_fmt f, int R, int T, const uint8_t *w, size_t ws,
                              const uint8_t *x, size_t xs, int64_t k, float *y, int64_t ldy)
{
    const size_t wb = kq_wbytes(f);
    __m512 acc[MR][MT / 2];
    for (int r = 0; r < R; r++)
        for (int t = 0; t < T / 2; t++)
            acc[r][t] = _mm512_setzero_ps();
    for (int64_t i = 0; i < k / NTP_QK_K; i++) {
        __m512i u[MR][8], sc[MR][8], mn[MR];
        float d[MR], dm[MR];
        for (int r = 0; r < R; r++) {
            struct kq_w wv;
            kq_decode(f, w + r * ws + (size_t)i * wb, &wv);
            for (int j = 0; j < 8; j++) {
                u[r][j] = ntp__x86_pair_i(wv.u[j], wv.u[j]);
                sc[r][j] = ntp__x86_pair_i(wv.sc[j], wv.sc[j]);
            }
            mn[r] = ntp__x86_pair_i(wv.mn, wv.mn);
            d[r] = wv.d;
            dm[r] = wv.dm;
        }
        for (int t = 0; t < T / 2; t++) {
            const ntp_block_q8_K *x0 = (const ntp_block_q8_K *)(x + (2 * t) * xs) + i;
            const ntp_block_q8_K *x1 = (const ntp_block_q8_K *)(x + (2 * t + 1) * xs) + i;
            const __m512i bs = ntp__x86_pair_i(_mm256_loadu_si256((const __m256i *)x0->bsums),
                                               _mm256_loadu_si256((const __m256i *)x1->bsums));
            __m512i is[MR];
            for (int r = 0; r < R; r++)
                is[r] = _mm512_setzero_si512();
            for (int j = 0; j < 8; j++) {
                const __m512i xv =
                    ntp__x86_pair_i(_mm256_loadu_si256((const __m256i *)(x0->qs + 32 * j)),
                                    _mm256_loadu_si256((const __m256i *)(x1->qs + 32 * j)));
                for (int r = 0; r < R; r++)
                    is[r] = _mm512_dpwssd_epi32(is[r], _mm512_maddubs_epi16(u[r][j], xv), sc[r][j]);
            }
            for (int r = 0; r < R; r++) {
                const __m512i im = _mm512_madd_epi16(bs, mn[r]);
                const __m512 sd =
                    ntp__x86_pair_f(_mm256_set1_ps(d[r] * x0->d), _mm256_set1_ps(d[r] * x1->d));
                const __m512 sm =
                    ntp__x86_pair_f(_mm256_set1_ps(dm[r] * x0->d), _mm256_set1_ps(dm[r] * x1->d));
                acc[r][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(is[r]), sd, acc[r][t]);
                acc[r][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(im), sm, acc[r][t]);
            }
        }
    }
    for (int r = 0; r < R; r++)
        for (int t = 0; t < T / 2; t++)
            ntp__x86_store_pair(&y[(2 * t) * ldy + r], &y[(2 * t + 1) * ldy + r], acc[r][t], 0, 0);
}
#endif

#if NTP_X86_PAIRS
/*
 * Q4_K decode with 512-bit vectors: one 64-element chunk (sub-blocks 2c and
 * 2c + 1: low and high nibbles of the same 32 bytes) per instruction. Fills
 * only d, dm and mn of *w; returns the integer sum folded to the eight lanes
 * the 256-bit path produces (integer additions regroup exactly, so decode
 * stays bit-identical to the token-pair prefill path).
 */
NTP_INLINE __m256i q4k_isum512(const uint8_t *b, const ntp_block_q8_K *xb, struct kq_w *w)
{
    const ntp_block_q4_K *p = (const ntp_block_q4_K *)b;
    uint32_t u[3];
    memcpy(u, p->scales, sizeof u);
    const uint32_t m6 = 0x3f3f3f3f, m4 = 0x0f0f0f0f, m2 = 0x03030303;
    const uint32_t sc03 = u[0] & m6, mn03 = u[1] & m6;
    const uint32_t sc47 = (u[2] & m4) | ((u[0] >> 6) & m2) << 4;
    const uint32_t mn47 = ((u[2] >> 4) & m4) | ((u[1] >> 6) & m2) << 4;
    const __m512i sc =
        _mm512_castsi128_si512(_mm_cvtepu8_epi16(_mm_set_epi32(0, 0, (int)sc47, (int)sc03)));
    const __m128i mn8 = _mm_cvtepu8_epi16(_mm_set_epi32(0, 0, (int)mn47, (int)mn03));
    w->mn = _mm256_set_m128i(_mm_unpackhi_epi16(mn8, mn8), _mm_unpacklo_epi16(mn8, mn8));
    w->d = ntp__x86_h2f(&p->d);
    w->dm = -ntp__x86_h2f(&p->dmin);
    const __m512i shift = _mm512_setr_epi64(0, 0, 0, 0, 4, 4, 4, 4);
    const __m512i mask = _mm512_set1_epi8(15);
    __m512i is = _mm512_setzero_si512();
    for (int c = 0; c < 4; c++) {
        const __m512i q = _mm512_and_si512(
            _mm512_srlv_epi64(
                _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(p->qs + 32 * c))),
                shift),
            mask);
        const __m512i xv = _mm512_loadu_si512((const void *)(xb->qs + 64 * c));
        /* Scale of sub-block 2c in the low 16 words, of 2c + 1 in the high 16. */
        const __m512i idx = _mm512_inserti64x4(_mm512_set1_epi16((short)(2 * c)),
                                               _mm256_set1_epi16((short)(2 * c + 1)), 1);
        is =
            _mm512_dpwssd_epi32(is, _mm512_maddubs_epi16(q, xv), _mm512_permutexvar_epi16(idx, sc));
    }
    return _mm256_add_epi32(_mm512_castsi512_si256(is), _mm512_extracti64x4_epi64(is, 1));
}
#endif

/* acc + one super-block of one row times one token (the decode step of kq_tile). */
NTP_INLINE __m256 kq_decode_dot(enum kq_fmt f, const uint8_t *b, const ntp_block_q8_K *xb,
                                __m256i bs, __m256 acc)
{
    struct kq_w wv;
    __m256i is;
    for (size_t o = 0; NTP_X86_PF > 0 && o < kq_wbytes(f); o += 64)
        _mm_prefetch((const char *)b + NTP_X86_PF + o, _MM_HINT_T0);
#if NTP_X86_PAIRS
    if (f == KQ_Q4_K) {
        is = q4k_isum512(b, xb, &wv);
    } else
#endif
    {
        kq_decode(f, b, &wv);
        is = _mm256_setzero_si256();
        for (int j = 0; j < 8; j++) {
            const __m256i xv = _mm256_loadu_si256((const __m256i *)(xb->qs + 32 * j));
            is = ntp__x86_dpwssd(is, _mm256_maddubs_epi16(wv.u[j], xv), wv.sc[j]);
        }
    }
    const __m256i im = _mm256_madd_epi16(bs, wv.mn);
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(is), _mm256_set1_ps(wv.d * xb->d), acc);
    return _mm256_fmadd_ps(_mm256_cvtepi32_ps(im), _mm256_set1_ps(wv.dm * xb->d), acc);
}

NTP_INLINE void kq_tile(enum kq_fmt f, int R, int T, const uint8_t *w, size_t ws, const uint8_t *x,
                        size_t xs, int64_t k, float *y, int64_t ldy)
{
#if NTP_X86_PAIRS
    if (T >= 2 && T % 2 == 0) {
        kq_tile_pairs(f, R, T, w, ws, x, xs, k, y, ldy);
        return;
    }
#endif
    const size_t wb = kq_wbytes(f);
    __m256 acc[MR][MT];
    for (int r = 0; r < R; r++)
        for (int t = 0; t < T; t++)
            acc[r][t] = _mm256_setzero_ps();
    for (int64_t i = 0; i < k / NTP_QK_K; i++) {
        if (T == 1) {
            /* Decode: each row's super-block used at once, kept in registers. */
            const ntp_block_q8_K *xb = (const ntp_block_q8_K *)x + i;
            const __m256i bs = _mm256_loadu_si256((const __m256i *)xb->bsums);
            for (int r = 0; r < R; r++)
                acc[r][0] = kq_decode_dot(f, w + r * ws + (size_t)i * wb, xb, bs, acc[r][0]);
            continue;
        }
        struct kq_w wr[MR];
        for (int r = 0; r < R; r++)
            kq_decode(f, w + r * ws + (size_t)i * wb, &wr[r]);
        for (int t = 0; t < T; t++) {
            const ntp_block_q8_K *xb = (const ntp_block_q8_K *)(x + t * xs) + i;
            const __m256i bs = _mm256_loadu_si256((const __m256i *)xb->bsums);
            __m256i is[MR];
            for (int r = 0; r < R; r++)
                is[r] = _mm256_setzero_si256();
            for (int j = 0; j < 8; j++) {
                const __m256i xv = _mm256_loadu_si256((const __m256i *)(xb->qs + 32 * j));
                for (int r = 0; r < R; r++)
                    is[r] =
                        ntp__x86_dpwssd(is[r], _mm256_maddubs_epi16(wr[r].u[j], xv), wr[r].sc[j]);
            }
            for (int r = 0; r < R; r++) {
                const __m256i im = _mm256_madd_epi16(bs, wr[r].mn);
                acc[r][t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(is[r]),
                                            _mm256_set1_ps(wr[r].d * xb->d), acc[r][t]);
                acc[r][t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(im),
                                            _mm256_set1_ps(wr[r].dm * xb->d), acc[r][t]);
            }
        }
    }
    for (int r = 0; r < R; r++)
        for (int t = 0; t < T; t++)
            y[t * ldy + r] = ntp__x86_hsum_ps(acc[r][t]);
}

NTP_X86_FORMAT(q2_k, kq_tile, KQ_Q2_K, NTP_QK_K)
NTP_X86_FORMAT(q3_k, kq_tile, KQ_Q3_K, NTP_QK_K)
NTP_X86_FORMAT(q4_k, kq_tile, KQ_Q4_K, NTP_QK_K)
NTP_X86_FORMAT(q5_k, kq_tile, KQ_Q5_K, NTP_QK_K)
NTP_X86_FORMAT(q6_k, kq_tile, KQ_Q6_K, NTP_QK_K)

void NTP_X86(fill_kquant)(struct ntp_kernel_type t[NTP_TYPE_COUNT])
{
    ntp__x86_set(&t[NTP_TYPE_Q2_K], NTP_X86(quantize_q8_k), q2_k_dot, q2_k_matmul);
    ntp__x86_set(&t[NTP_TYPE_Q3_K], NTP_X86(quantize_q8_k), q3_k_dot, q3_k_matmul);
    ntp__x86_set(&t[NTP_TYPE_Q4_K], NTP_X86(quantize_q8_k), q4_k_dot, q4_k_matmul);
    ntp__x86_set(&t[NTP_TYPE_Q5_K], NTP_X86(quantize_q8_k), q5_k_dot, q5_k_matmul);
    ntp__x86_set(&t[NTP_TYPE_Q6_K], NTP_X86(quantize_q8_k), q6_k_dot, q6_k_matmul);
}
