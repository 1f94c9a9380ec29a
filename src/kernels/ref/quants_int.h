/*
 * quants_int.h - what the two files of the reference quantizers share:
 * quants.c (plain and legacy formats, the dispatch table) and quants_k.c
 * (the k-quants). Same rules as there: no FMA contraction (clang is told in
 * each file), ggml's operations in ggml's order.
 */
#ifndef NTP_KERNELS_REF_QUANTS_INT_H
#define NTP_KERNELS_REF_QUANTS_INT_H

#include <math.h>
#include <stdint.h>

/* The element of x[0, n) with the largest magnitude, sign kept; the first one on ties. */
static inline float ntp__signed_absmax(const float *x, int n)
{
    float amax = 0.0f, max = 0.0f;
    for (int i = 0; i < n; i++) {
        if (fabsf(x[i]) > amax) {
            amax = fabsf(x[i]);
            max = x[i];
        }
    }
    return max;
}

static inline void ntp__min_max(const float *x, int n, float *min, float *max)
{
    float lo = x[0], hi = x[0];
    for (int i = 1; i < n; i++) {
        if (x[i] < lo)
            lo = x[i];
        if (x[i] > hi)
            hi = x[i];
    }
    *min = lo;
    *max = hi;
}

/* The k-quant rows (quants_k.c), as kernels/quant.h's ntp_quantize_row_fn / ntp_dequantize_row_fn.
 */
void ntp__quantize_row_q2_K(const float *x, void *vy, int64_t n);
void ntp__dequantize_row_q2_K(const void *vx, float *y, int64_t n);
void ntp__quantize_row_q3_K(const float *x, void *vy, int64_t n);
void ntp__dequantize_row_q3_K(const void *vx, float *y, int64_t n);
void ntp__quantize_row_q4_K(const float *x, void *vy, int64_t n);
void ntp__dequantize_row_q4_K(const void *vx, float *y, int64_t n);
void ntp__quantize_row_q5_K(const float *x, void *vy, int64_t n);
void ntp__dequantize_row_q5_K(const void *vx, float *y, int64_t n);
void ntp__quantize_row_q6_K(const float *x, void *vy, int64_t n);
void ntp__dequantize_row_q6_K(const void *vx, float *y, int64_t n);
void ntp__quantize_row_q8_K(const float *x, void *vy, int64_t n);
void ntp__dequantize_row_q8_K(const void *vx, float *y, int64_t n);

#endif /* NTP_KERNELS_REF_QUANTS_INT_H */
