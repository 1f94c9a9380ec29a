/*
 * legacy.c - the engine of the 32-element formats (Q4_0, Q4_1, Q5_0, Q5_1,
 * Q8_0 against Q8_0/Q8_1 activations): each weight block decoded once per
 * row (legacy.h), each activation block loaded once per token, in register
 * tiles (tile.h).
 */
#include "kernels/x86/legacy.h"
#include "kernels/x86/tile.h"
#include "kernels/x86/x86.h"

#if NTP_X86_PAIRS
/* The legacy tile with token pairs (simd_x86.h): T even, weights broadcast to both halves. */
NTP_INLINE void lg_tile_pairs(enum lg_fmt f, int R, int T, const uint8_t *w, size_t ws,
                              const uint8_t *x, size_t xs, int64_t k, float *y, int64_t ldy)
{
    const size_t wb = lg_wbytes(f), xb = lg_xbytes(f), xq = lg_xcodes(f);
    const int z = lg_zero(f);
    __m512 acc[MR][MT / 2];
    float ms[MR][MT];
    for (int r = 0; r < R; r++) {
        for (int t = 0; t < T / 2; t++)
            acc[r][t] = _mm512_setzero_ps();
        for (int t = 0; t < T; t++)
            ms[r][t] = 0;
    }
    for (int64_t i = 0; i < k / NTP_QK; i++) {
        __m512i u[MR];
        __m512 d[MR];
        float m[MR];
        for (int r = 0; r < R; r++) {
            const struct lg_w wv = lg_decode(f, w + r * ws + (size_t)i * wb);
            u[r] = ntp__x86_pair_i(wv.u, wv.u);
            d[r] = ntp__x86_pair_f(wv.d, wv.d);
            m[r] = wv.m;
        }
        for (int t = 0; t < T / 2; t++) {
            const uint8_t *x0 = x + (2 * t) * xs + (size_t)i * xb, *x1 = x0 + xs;
            const __m512 dx = ntp__x86_pair_f(lg_bcast_h(x0), lg_bcast_h(x1));
            const __m512i xv = ntp__x86_pair_i(_mm256_loadu_si256((const __m256i *)(x0 + xq)),
                                               _mm256_loadu_si256((const __m256i *)(x1 + xq)));
            __m512i corr = _mm512_setzero_si512();
            if (z != 0)
                corr = _mm512_sub_epi32(corr,
                                        _mm512_dpbusd_epi32(corr, _mm512_set1_epi8((char)z), xv));
            for (int r = 0; r < R; r++) {
                const __m512i is = _mm512_dpbusd_epi32(corr, u[r], xv);
                acc[r][t] =
                    _mm512_fmadd_ps(_mm512_cvtepi32_ps(is), _mm512_mul_ps(d[r], dx), acc[r][t]);
                if (lg_q81(f)) {
                    ms[r][2 * t] += m[r] * ntp__x86_h2f(x0 + LG_XSUM);
                    ms[r][2 * t + 1] += m[r] * ntp__x86_h2f(x1 + LG_XSUM);
                }
            }
        }
    }
    for (int r = 0; r < R; r++)
        for (int t = 0; t < T / 2; t++)
            ntp__x86_store_pair(&y[(2 * t) * ldy + r], &y[(2 * t + 1) * ldy + r], acc[r][t],
                                ms[r][2 * t], ms[r][2 * t + 1]);
}
#endif

NTP_INLINE void lg_tile(enum lg_fmt f, int R, int T, const uint8_t *w, size_t ws, const uint8_t *x,
                        size_t xs, int64_t k, float *y, int64_t ldy)
{
    const size_t wb = lg_wbytes(f), xb = lg_xbytes(f), xq = lg_xcodes(f);
#if NTP_X86_PAIRS
    if (T >= 2 && T % 2 == 0) {
        lg_tile_pairs(f, R, T, w, ws, x, xs, k, y, ldy);
        return;
    }
#endif
    const int z = lg_zero(f);
    __m256 acc[MR][MT];
    float ms[MR][MT];
    for (int r = 0; r < R; r++)
        for (int t = 0; t < T; t++) {
            acc[r][t] = _mm256_setzero_ps();
            ms[r][t] = 0;
        }
    for (int64_t i = 0; i < k / NTP_QK; i++) {
        struct lg_w wr[MR];
        for (int r = 0; r < R; r++) {
            if (T == 1 && NTP_X86_PF > 0)
                _mm_prefetch((const char *)(w + r * ws + (size_t)i * wb) + NTP_X86_PF, _MM_HINT_T0);
            wr[r] = lg_decode(f, w + r * ws + (size_t)i * wb);
        }
        for (int t = 0; t < T; t++) {
            const uint8_t *xp = x + t * xs + (size_t)i * xb;
            const __m256 dx = lg_bcast_h(xp);
            const __m256i xv = _mm256_loadu_si256((const __m256i *)(xp + xq));
            __m256i corr = _mm256_setzero_si256();
            if (z != 0)
                corr = _mm256_sub_epi32(corr, ntp__x86_dpbusd(corr, _mm256_set1_epi8((char)z), xv));
            for (int r = 0; r < R; r++) {
                const __m256i is = lg_idot(f, wr[r].u, xv, corr);
                acc[r][t] =
                    _mm256_fmadd_ps(_mm256_cvtepi32_ps(is), _mm256_mul_ps(wr[r].d, dx), acc[r][t]);
                if (lg_q81(f))
                    ms[r][t] += wr[r].m * ntp__x86_h2f(xp + LG_XSUM);
            }
        }
    }
    for (int r = 0; r < R; r++)
        for (int t = 0; t < T; t++)
            y[t * ldy + r] = ntp__x86_hsum_ps(acc[r][t]) + ms[r][t];
}

NTP_X86_FORMAT(q4_0, lg_tile, LG_Q4_0, NTP_QK)
NTP_X86_FORMAT(q4_1, lg_tile, LG_Q4_1, NTP_QK)
NTP_X86_FORMAT(q5_0, lg_tile, LG_Q5_0, NTP_QK)
NTP_X86_FORMAT(q5_1, lg_tile, LG_Q5_1, NTP_QK)
NTP_X86_FORMAT(q8_0, lg_tile, LG_Q8_0, NTP_QK)

void NTP_X86(fill_legacy)(struct ntp_kernel_type t[NTP_TYPE_COUNT])
{
    ntp__x86_set(&t[NTP_TYPE_Q4_0], NTP_X86(quantize_q8_0), q4_0_dot, q4_0_matmul);
    ntp__x86_set(&t[NTP_TYPE_Q4_1], NTP_X86(quantize_q8_1), q4_1_dot, q4_1_matmul);
    ntp__x86_set(&t[NTP_TYPE_Q5_0], NTP_X86(quantize_q8_0), q5_0_dot, q5_0_matmul);
    ntp__x86_set(&t[NTP_TYPE_Q5_1], NTP_X86(quantize_q8_1), q5_1_dot, q5_1_matmul);
    ntp__x86_set(&t[NTP_TYPE_Q8_0], NTP_X86(quantize_q8_0), q8_0_dot, q8_0_matmul);
}
