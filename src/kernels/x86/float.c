/*
 * float.c - the engine of the float weights (F32, F16, BF16 against float
 * activations): FMA over 8 floats in register tiles (tile.h).
 */
#include "kernels/x86/simd_x86.h"
#include "kernels/x86/tile.h"
#include "kernels/x86/x86.h"

enum fl_fmt { FL_F32, FL_F16, FL_BF16 };

/* 8 weights from element i of a row, as floats. */
NTP_INLINE __m256 fl_load8(enum fl_fmt f, const uint8_t *row, int64_t i)
{
    switch (f) {
    case FL_F32:
        return _mm256_loadu_ps((const float *)row + i);
    case FL_F16:
        return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)row + i)));
    default: {
        const __m128i h = _mm_loadu_si128((const __m128i *)((const uint16_t *)row + i));
        return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
    }
    }
}

NTP_INLINE float fl_load1(enum fl_fmt f, const uint8_t *row, int64_t i)
{
    switch (f) {
    case FL_F32:
        return ((const float *)row)[i];
    case FL_F16:
        return ntp__x86_h2f((const uint16_t *)row + i);
    default: {
        uint16_t h;
        memcpy(&h, (const uint16_t *)row + i, 2);
        const uint32_t u = (uint32_t)h << 16;
        float v;
        memcpy(&v, &u, 4);
        return v;
    }
    }
}

NTP_INLINE void fl_tile(enum fl_fmt f, int R, int T, const uint8_t *w, size_t ws, const uint8_t *x,
                        size_t xs, int64_t k, float *y, int64_t ldy)
{
    __m256 acc[MR][MT];
    for (int r = 0; r < R; r++)
        for (int t = 0; t < T; t++)
            acc[r][t] = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= k; i += 8) {
        __m256 wv[MR];
        for (int r = 0; r < R; r++)
            wv[r] = fl_load8(f, w + r * ws, i);
        for (int t = 0; t < T; t++) {
            const __m256 xv = _mm256_loadu_ps((const float *)(x + t * xs) + i);
            for (int r = 0; r < R; r++)
                acc[r][t] = _mm256_fmadd_ps(wv[r], xv, acc[r][t]);
        }
    }
    for (int r = 0; r < R; r++)
        for (int t = 0; t < T; t++) {
            float s = ntp__x86_hsum_ps(acc[r][t]);
            for (int64_t j = i; j < k; j++)
                s += fl_load1(f, w + r * ws, j) * ((const float *)(x + t * xs))[j];
            y[t * ldy + r] = s;
        }
}

NTP_X86_FORMAT(f32, fl_tile, FL_F32, 1)
NTP_X86_FORMAT(f16, fl_tile, FL_F16, 1)
NTP_X86_FORMAT(bf16, fl_tile, FL_BF16, 1)

void NTP_X86(fill_float)(struct ntp_kernel_type t[NTP_TYPE_COUNT])
{
    ntp__x86_set(&t[NTP_TYPE_F32], NULL, f32_dot, f32_matmul);
    ntp__x86_set(&t[NTP_TYPE_F16], NULL, f16_dot, f16_matmul);
    ntp__x86_set(&t[NTP_TYPE_BF16], NULL, bf16_dot, bf16_matmul);
}
