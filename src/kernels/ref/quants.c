/*
 * quants.c - reference quantize/dequantize of every block format (see
 * kernels/blocks.h for the layouts and kernels/quant.h for the contract);
 * the k-quants are in quants_k.c.
 *
 * Dequantizers do the same float operations in the same order as ggml's
 * dequantize_row_* so their results match bit for bit: the expressions keep
 * ggml's shape (e.g. (d * sc) * q, not d * (sc * q)) and are never contracted
 * into FMAs (GCC does not in -std=c11 mode, clang is told below), so the
 * result does not depend on -march.
 *
 * Quantizers follow ggml's reference rounding rules for the legacy formats
 * and ggml's searches for the k-quant scales (weighted least squares over a
 * range of candidate scales); they are deterministic and use no state.
 * Every float-to-integer conversion goes through a helper that clamps first,
 * so NaN, infinities or huge inputs give garbage codes but never undefined
 * behaviour.
 */
#include "core/core.h"
#include "core/half.h"
#include "kernels/blocks.h"
#include "kernels/quant.h"
#include "kernels/ref/quants_int.h"

#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <string.h>

/* Clang contracts within an expression by default; GCC in ISO C mode never does. */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

/* ------------------------------------------------------------------ helpers */

/* (int)v clamped to [0, hi], for the legacy formats' "add 0.5 and truncate"; NaN gives 0. */
static inline int trunc_code(float v, int hi)
{
    if (!(v >= 0.0f))
        return 0;
    if (v >= (float)hi)
        return hi;
    return (int)v;
}

/* roundf(v) (ties away from zero) clamped to [-127, 127]; NaN gives 0. */
static inline int8_t round_q8(float v)
{
    if (!(v == v))
        return 0;
    if (v > 127.0f)
        v = 127.0f;
    if (v < -127.0f)
        v = -127.0f;
    return (int8_t)roundf(v);
}

/* ------------------------------------------------------------- plain types */

static void quantize_f32(const float *x, void *y, int64_t n)
{
    memmove(y, x, (size_t)n * sizeof(float));
}

static void dequantize_f32(const void *x, float *y, int64_t n)
{
    memmove(y, x, (size_t)n * sizeof(float));
}

static void quantize_f16(const float *x, void *vy, int64_t n)
{
    ntp_f16 *y = vy;
    for (int64_t i = 0; i < n; i++)
        y[i] = ntp__f32_to_f16(x[i]);
}

static void dequantize_f16(const void *vx, float *y, int64_t n)
{
    const ntp_f16 *x = vx;
    for (int64_t i = 0; i < n; i++)
        y[i] = ntp__f16_to_f32(x[i]);
}

static void quantize_bf16(const float *x, void *vy, int64_t n)
{
    ntp_bf16 *y = vy;
    for (int64_t i = 0; i < n; i++)
        y[i] = ntp__f32_to_bf16(x[i]);
}

static void dequantize_bf16(const void *vx, float *y, int64_t n)
{
    const ntp_bf16 *x = vx;
    for (int64_t i = 0; i < n; i++)
        y[i] = ntp__bf16_to_f32(x[i]);
}

/* ---------------------------------------------------------- legacy formats */

/*
 * Q4_0: the element of largest magnitude maps to code 0 (value -8 * d), so
 * d takes the opposite sign of that element; the other side gets 7 levels.
 */
static void quantize_q4_0(const float *x, void *vy, int64_t n)
{
    ntp_block_q4_0 *y = vy;
    for (int64_t b = 0; b < n / NTP_QK; b++, x += NTP_QK) {
        const float d = ntp__signed_absmax(x, NTP_QK) / -8;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[b].d = ntp__f32_to_f16(d);
        for (int j = 0; j < NTP_QK / 2; j++) {
            const int lo = trunc_code(x[j] * id + 8.5f, 15);
            const int hi = trunc_code(x[j + NTP_QK / 2] * id + 8.5f, 15);
            y[b].qs[j] = (uint8_t)(lo | hi << 4);
        }
    }
}

static void dequantize_q4_0(const void *vx, float *y, int64_t n)
{
    const ntp_block_q4_0 *x = vx;
    for (int64_t b = 0; b < n / NTP_QK; b++, y += NTP_QK) {
        const float d = ntp__f16_to_f32(x[b].d);
        for (int j = 0; j < NTP_QK / 2; j++) {
            const int lo = (x[b].qs[j] & 0x0F) - 8;
            const int hi = (x[b].qs[j] >> 4) - 8;
            y[j] = lo * d;
            y[j + NTP_QK / 2] = hi * d;
        }
    }
}

/* Q4_1: 16 levels spread evenly from the block minimum to its maximum. */
static void quantize_q4_1(const float *x, void *vy, int64_t n)
{
    ntp_block_q4_1 *y = vy;
    for (int64_t b = 0; b < n / NTP_QK; b++, x += NTP_QK) {
        float min, max;
        ntp__min_max(x, NTP_QK, &min, &max);
        const float d = (max - min) / 15;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[b].d = ntp__f32_to_f16(d);
        y[b].m = ntp__f32_to_f16(min);
        for (int j = 0; j < NTP_QK / 2; j++) {
            const int lo = trunc_code((x[j] - min) * id + 0.5f, 15);
            const int hi = trunc_code((x[j + NTP_QK / 2] - min) * id + 0.5f, 15);
            y[b].qs[j] = (uint8_t)(lo | hi << 4);
        }
    }
}

static void dequantize_q4_1(const void *vx, float *y, int64_t n)
{
    const ntp_block_q4_1 *x = vx;
    for (int64_t b = 0; b < n / NTP_QK; b++, y += NTP_QK) {
        const float d = ntp__f16_to_f32(x[b].d);
        const float m = ntp__f16_to_f32(x[b].m);
        for (int j = 0; j < NTP_QK / 2; j++) {
            const int lo = x[b].qs[j] & 0x0F;
            const int hi = x[b].qs[j] >> 4;
            y[j] = lo * d + m;
            y[j + NTP_QK / 2] = hi * d + m;
        }
    }
}

/* Store 32 five-bit codes: low nibbles in qs (as Q4_0), fifth bits in the LE word qh. */
static void pack_q5(const uint8_t *q, uint8_t *qs, uint8_t *qh)
{
    uint32_t h = 0;
    for (int j = 0; j < NTP_QK / 2; j++) {
        qs[j] = (uint8_t)((q[j] & 0x0F) | (q[j + NTP_QK / 2] & 0x0F) << 4);
        h |= (uint32_t)(q[j] >> 4) << j;
        h |= (uint32_t)(q[j + NTP_QK / 2] >> 4) << (j + NTP_QK / 2);
    }
    for (int k = 0; k < 4; k++)
        qh[k] = (uint8_t)(h >> (8 * k));
}

static uint32_t load_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Q5_0: as Q4_0 with 32 levels: the largest magnitude maps to code 0 (-16 * d). */
static void quantize_q5_0(const float *x, void *vy, int64_t n)
{
    ntp_block_q5_0 *y = vy;
    uint8_t q[NTP_QK];
    for (int64_t b = 0; b < n / NTP_QK; b++, x += NTP_QK) {
        const float d = ntp__signed_absmax(x, NTP_QK) / -16;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[b].d = ntp__f32_to_f16(d);
        for (int j = 0; j < NTP_QK; j++)
            q[j] = (uint8_t)trunc_code(x[j] * id + 16.5f, 31);
        pack_q5(q, y[b].qs, y[b].qh);
    }
}

static void dequantize_q5_0(const void *vx, float *y, int64_t n)
{
    const ntp_block_q5_0 *x = vx;
    for (int64_t b = 0; b < n / NTP_QK; b++, y += NTP_QK) {
        const float d = ntp__f16_to_f32(x[b].d);
        const uint32_t qh = load_le32(x[b].qh);
        for (int j = 0; j < NTP_QK / 2; j++) {
            const int lo = ((x[b].qs[j] & 0x0F) | ((qh >> j) & 1) << 4) - 16;
            const int hi = ((x[b].qs[j] >> 4) | ((qh >> (j + NTP_QK / 2)) & 1) << 4) - 16;
            y[j] = lo * d;
            y[j + NTP_QK / 2] = hi * d;
        }
    }
}

/* Q5_1: 32 levels from the block minimum to its maximum. */
static void quantize_q5_1(const float *x, void *vy, int64_t n)
{
    ntp_block_q5_1 *y = vy;
    uint8_t q[NTP_QK];
    for (int64_t b = 0; b < n / NTP_QK; b++, x += NTP_QK) {
        float min, max;
        ntp__min_max(x, NTP_QK, &min, &max);
        const float d = (max - min) / 31;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[b].d = ntp__f32_to_f16(d);
        y[b].m = ntp__f32_to_f16(min);
        for (int j = 0; j < NTP_QK; j++)
            q[j] = (uint8_t)trunc_code((x[j] - min) * id + 0.5f, 31);
        pack_q5(q, y[b].qs, y[b].qh);
    }
}

static void dequantize_q5_1(const void *vx, float *y, int64_t n)
{
    const ntp_block_q5_1 *x = vx;
    for (int64_t b = 0; b < n / NTP_QK; b++, y += NTP_QK) {
        const float d = ntp__f16_to_f32(x[b].d);
        const float m = ntp__f16_to_f32(x[b].m);
        const uint32_t qh = load_le32(x[b].qh);
        for (int j = 0; j < NTP_QK / 2; j++) {
            const int lo = (x[b].qs[j] & 0x0F) | ((qh >> j) & 1) << 4;
            const int hi = (x[b].qs[j] >> 4) | ((qh >> (j + NTP_QK / 2)) & 1) << 4;
            y[j] = lo * d + m;
            y[j + NTP_QK / 2] = hi * d + m;
        }
    }
}

/* Q8_0: symmetric, d = absmax / 127, codes rounded half away from zero. */
static void quantize_q8_0(const float *x, void *vy, int64_t n)
{
    ntp_block_q8_0 *y = vy;
    for (int64_t b = 0; b < n / NTP_QK; b++, x += NTP_QK) {
        const float d = fabsf(ntp__signed_absmax(x, NTP_QK)) / 127;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[b].d = ntp__f32_to_f16(d);
        for (int j = 0; j < NTP_QK; j++)
            y[b].qs[j] = round_q8(x[j] * id);
    }
}

static void dequantize_q8_0(const void *vx, float *y, int64_t n)
{
    const ntp_block_q8_0 *x = vx;
    for (int64_t b = 0; b < n / NTP_QK; b++, y += NTP_QK) {
        const float d = ntp__f16_to_f32(x[b].d);
        for (int j = 0; j < NTP_QK; j++)
            y[j] = x[b].qs[j] * d;
    }
}

/* Q8_1: Q8_0 plus s = d * sum(qs), with the unrounded d as ggml does. */
static void quantize_q8_1(const float *x, void *vy, int64_t n)
{
    ntp_block_q8_1 *y = vy;
    for (int64_t b = 0; b < n / NTP_QK; b++, x += NTP_QK) {
        const float d = fabsf(ntp__signed_absmax(x, NTP_QK)) / 127;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        int sum = 0;
        for (int j = 0; j < NTP_QK; j++) {
            y[b].qs[j] = round_q8(x[j] * id);
            sum += y[b].qs[j];
        }
        y[b].d = ntp__f32_to_f16(d);
        y[b].s = ntp__f32_to_f16((float)sum * d);
    }
}

static void dequantize_q8_1(const void *vx, float *y, int64_t n)
{
    const ntp_block_q8_1 *x = vx;
    for (int64_t b = 0; b < n / NTP_QK; b++, y += NTP_QK) {
        const float d = ntp__f16_to_f32(x[b].d);
        for (int j = 0; j < NTP_QK; j++)
            y[j] = x[b].qs[j] * d;
    }
}

/* ---------------------------------------------------------------- dispatch */

static const ntp_quant_fns fns_table[NTP_TYPE_COUNT] = {
    [NTP_TYPE_F32] = {quantize_f32, dequantize_f32},
    [NTP_TYPE_F16] = {quantize_f16, dequantize_f16},
    [NTP_TYPE_BF16] = {quantize_bf16, dequantize_bf16},
    [NTP_TYPE_Q4_0] = {quantize_q4_0, dequantize_q4_0},
    [NTP_TYPE_Q4_1] = {quantize_q4_1, dequantize_q4_1},
    [NTP_TYPE_Q5_0] = {quantize_q5_0, dequantize_q5_0},
    [NTP_TYPE_Q5_1] = {quantize_q5_1, dequantize_q5_1},
    [NTP_TYPE_Q8_0] = {quantize_q8_0, dequantize_q8_0},
    [NTP_TYPE_Q8_1] = {quantize_q8_1, dequantize_q8_1},
    [NTP_TYPE_Q2_K] = {ntp__quantize_row_q2_K, ntp__dequantize_row_q2_K},
    [NTP_TYPE_Q3_K] = {ntp__quantize_row_q3_K, ntp__dequantize_row_q3_K},
    [NTP_TYPE_Q4_K] = {ntp__quantize_row_q4_K, ntp__dequantize_row_q4_K},
    [NTP_TYPE_Q5_K] = {ntp__quantize_row_q5_K, ntp__dequantize_row_q5_K},
    [NTP_TYPE_Q6_K] = {ntp__quantize_row_q6_K, ntp__dequantize_row_q6_K},
    [NTP_TYPE_Q8_K] = {ntp__quantize_row_q8_K, ntp__dequantize_row_q8_K},
};

const ntp_quant_fns *ntp__quant_fns(enum ntp_type t)
{
    if ((int)t < 0 || (int)t >= NTP_TYPE_COUNT || fns_table[t].quantize == NULL)
        return NULL;
    return &fns_table[t];
}

/* Checks shared by the entry points; what is "quantize" or "dequantize" for messages. */
static ntp_status check_row(enum ntp_type t, int64_t n, bool have_ptrs, const char *what,
                            const ntp_quant_fns **out)
{
    const ntp_type_traits *tt = ntp_type_get_traits((int)t);
    if (tt == NULL)
        return ntp__error(NTP_E_UNSUPPORTED, "%s: unknown tensor type %d", what, (int)t);
    *out = ntp__quant_fns(t);
    if (*out == NULL)
        return ntp__error(NTP_E_UNSUPPORTED, "%s: type %s has no reference implementation", what,
                          tt->name);
    if (n < 0 || n % tt->block_size != 0)
        return ntp__error(NTP_E_INVALID_ARG,
                          "%s: %s row of %lld elements is not a whole number of %lld-element "
                          "blocks",
                          what, tt->name, (long long)n, (long long)tt->block_size);
    if (n > 0 && !have_ptrs)
        return ntp__error(NTP_E_INVALID_ARG, "%s: %s row of %lld elements with a NULL buffer", what,
                          tt->name, (long long)n);
    return NTP_OK;
}

ntp_status ntp__quantize_row(enum ntp_type t, const float *x, void *y, int64_t n)
{
    const ntp_quant_fns *f = NULL;
    ntp_status s = check_row(t, n, x != NULL && y != NULL, "quantize", &f);
    if (s != NTP_OK)
        return s;
    if (n > 0)
        f->quantize(x, y, n);
    return NTP_OK;
}

ntp_status ntp__dequantize_row(enum ntp_type t, const void *x, float *y, int64_t n)
{
    const ntp_quant_fns *f = NULL;
    ntp_status s = check_row(t, n, x != NULL && y != NULL, "dequantize", &f);
    if (s != NTP_OK)
        return s;
    if (n > 0)
        f->dequantize(x, y, n);
    return NTP_OK;
}

ntp_status ntp__quantize_rows(enum ntp_type t, const float *x, void *y, int64_t nrows,
                              int64_t n_per_row)
{
    const ntp_quant_fns *f = NULL;
    if (nrows < 0)
        return ntp__error(NTP_E_INVALID_ARG, "quantize: negative row count %lld", (long long)nrows);
    ntp_status s = check_row(t, n_per_row, x != NULL && y != NULL, "quantize", &f);
    if (s != NTP_OK)
        return s;
    size_t row_bytes;
    uint64_t total;
    s = ntp_type_row_size(t, n_per_row, &row_bytes);
    if (s != NTP_OK)
        return s;
    if (!ntp__mul_u64((uint64_t)nrows, row_bytes, &total) || total > SIZE_MAX ||
        !ntp__mul_u64((uint64_t)nrows, (uint64_t)n_per_row, &total) ||
        total > SIZE_MAX / sizeof(float))
        return ntp__error(NTP_E_OVERFLOW, "quantize: %lld rows of %lld elements overflow",
                          (long long)nrows, (long long)n_per_row);
    for (int64_t r = 0; r < nrows && n_per_row > 0; r++)
        f->quantize(x + r * n_per_row, (char *)y + (size_t)r * row_bytes, n_per_row);
    return NTP_OK;
}
