/*
 * act.c - the activation quantizers: float rows to the Q8_0, Q8_1 and Q8_K
 * blocks the integer engines multiply with, code for code as the reference
 * (src/kernels/ref/quants.c) writes them.
 */
#include "kernels/blocks.h"
#include "kernels/x86/simd_x86.h"
#include "kernels/x86/x86.h"

#include <math.h>

/* Codes of 8 floats times id, rounded to nearest even (ggml's SIMD rounding). */
NTP_INLINE __m256i q8_round8(const float *x, __m256 id)
{
    return _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x), id));
}

NTP_INLINE __m256 absmax8(__m256 m, const float *x)
{
    const __m256 sign = _mm256_set1_ps(-0.0f);
    return _mm256_max_ps(m, _mm256_andnot_ps(sign, _mm256_loadu_ps(x)));
}

/* One block of 32: d = absmax / 127, codes at qs; returns the sum of the codes. */
NTP_INLINE int q8_block32(const float *x, int8_t *qs, float *d_out)
{
    __m256 m = _mm256_setzero_ps();
    for (int j = 0; j < 32; j += 8)
        m = absmax8(m, x + j);
    const float d = ntp__x86_hmax_ps(m) / 127;
    const __m256 id = _mm256_set1_ps(d != 0.0f ? 1.0f / d : 0.0f);
    const __m256i q = ntp__x86_pack_i32_i8(q8_round8(x, id), q8_round8(x + 8, id),
                                           q8_round8(x + 16, id), q8_round8(x + 24, id));
    _mm256_storeu_si256((__m256i *)qs, q);
    *d_out = d;
    const __m256i s16 = _mm256_maddubs_epi16(_mm256_set1_epi8(1), q);
    return ntp__x86_hsum_epi32(_mm256_madd_epi16(s16, _mm256_set1_epi16(1)));
}

void NTP_X86(quantize_q8_0)(const float *x, void *vy, int64_t n)
{
    ntp_block_q8_0 *y = vy;
    for (int64_t b = 0; b < n / NTP_QK; b++) {
        float d;
        (void)q8_block32(x + b * NTP_QK, y[b].qs, &d);
        y[b].d = ntp__f32_to_f16(d);
    }
}

void NTP_X86(quantize_q8_1)(const float *x, void *vy, int64_t n)
{
    ntp_block_q8_1 *y = vy;
    for (int64_t b = 0; b < n / NTP_QK; b++) {
        float d;
        const int sum = q8_block32(x + b * NTP_QK, y[b].qs, &d);
        y[b].d = ntp__f32_to_f16(d);
        y[b].s = ntp__f32_to_f16((float)sum * d);
    }
}

/* Q8_K: the largest magnitude maps to -127 (its sign decides d's), float d, bsums per 16. */
void NTP_X86(quantize_q8_k)(const float *x, void *vy, int64_t n)
{
    ntp_block_q8_K *y = vy;
    for (int64_t b = 0; b < n / NTP_QK_K; b++, x += NTP_QK_K) {
        __m256 mx = _mm256_set1_ps(-INFINITY), mn = _mm256_set1_ps(INFINITY);
        for (int j = 0; j < NTP_QK_K; j += 8) {
            const __m256 v = _mm256_loadu_ps(x + j);
            mx = _mm256_max_ps(mx, v);
            mn = _mm256_min_ps(mn, v);
        }
        const float hi = ntp__x86_hmax_ps(mx),
                    lo = -ntp__x86_hmax_ps(_mm256_sub_ps(_mm256_setzero_ps(), mn));
        const float max = hi >= -lo ? hi : lo;
        const float iscale = max != 0.0f ? -127.0f / max : 0.0f;
        if (iscale == 0.0f || !(fabsf(iscale) <= 3.4e38f)) {
            memset(&y[b], 0, sizeof y[b]);
            continue;
        }
        const __m256 is = _mm256_set1_ps(iscale);
        const __m256i one = _mm256_set1_epi8(1);
        for (int j = 0; j < NTP_QK_K; j += 32) {
            __m256i q = ntp__x86_pack_i32_i8(q8_round8(x + j, is), q8_round8(x + j + 8, is),
                                             q8_round8(x + j + 16, is), q8_round8(x + j + 24, is));
            q = _mm256_max_epi8(q, _mm256_set1_epi8(-127));
            _mm256_storeu_si256((__m256i *)(y[b].qs + j), q);
            /* Sums of 16 codes: pairs, then 8 pairs per group with a horizontal add. */
            const __m256i s16 = _mm256_maddubs_epi16(one, q);
            const __m256i s32 = _mm256_madd_epi16(s16, _mm256_set1_epi16(1));
            const __m128i g =
                _mm_hadd_epi32(_mm256_castsi256_si128(s32), _mm256_extracti128_si256(s32, 1));
            const __m128i gg = _mm_hadd_epi32(g, g);
            y[b].bsums[j / 16] = (int16_t)_mm_extract_epi32(gg, 0);
            y[b].bsums[j / 16 + 1] = (int16_t)_mm_extract_epi32(gg, 1);
        }
        y[b].d = 1 / iscale;
    }
}
