/*
 * quants.c - reference quantize/dequantize of every block format (see
 * kernels/blocks.h for the layouts and kernels/quant.h for the contract).
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

#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <string.h>

/* Clang contracts within an expression by default; GCC in ISO C mode never does. */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

/* Below this a group of weights counts as all zero (ggml's GROUP_MAX_EPS). */
#define GROUP_EPS 1e-15f

/* ------------------------------------------------------------------ helpers */

/*
 * Round to nearest, ties to even, as ggml's nearest_int: adding 1.5 * 2^23
 * leaves no fraction bits, so the FPU rounds, and the low mantissa bits hold
 * the integer biased by 2^22. Exact for |v| < 2^22; larger values are
 * clamped first and NaN gives some value in range (no undefined behaviour).
 */
static inline int round_int(float v)
{
    const float lim = 4194303.0f;
    if (v > lim)
        v = lim;
    if (v < -lim)
        v = -lim;
    const uint32_t u = ntp__f32_bits(v + 12582912.0f);
    return (int)(u & 0x007fffffu) - 0x00400000;
}

static inline int clamp_int(int v, int lo, int hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

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

/* The element of x[0, n) with the largest magnitude, sign kept; the first one on ties. */
static float signed_absmax(const float *x, int n)
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

static void min_max(const float *x, int n, float *min, float *max)
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
        const float d = signed_absmax(x, NTP_QK) / -8;
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
        min_max(x, NTP_QK, &min, &max);
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
        const float d = signed_absmax(x, NTP_QK) / -16;
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
        min_max(x, NTP_QK, &min, &max);
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
        const float d = fabsf(signed_absmax(x, NTP_QK)) / 127;
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
        const float d = fabsf(signed_absmax(x, NTP_QK)) / 127;
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

/* ---------------------------------------------------- k-quant scale search */

/*
 * Fit x ~ s * l with integer l in [-nmax, nmax - 1] and weights w = x^2 (big
 * elements matter most): start from s = max / -nmax (largest magnitude at
 * -nmax, which has the extra level), then try 18 nearby scales
 * (nmax +- 0.1k) and keep the one whose rounded codes explain the most
 * weighted energy (sum wxl)^2 / (sum wl^2); s is then the least-squares
 * scale of those codes. Writes L[i] = l + nmax. ggml's make_qx_quants.
 */
static float fit_signed_scale(const float *x, int n, int nmax, int8_t *L)
{
    const float max = signed_absmax(x, n);
    if (fabsf(max) < GROUP_EPS) {
        memset(L, 0, (size_t)n);
        return 0.0f;
    }
    float best = -1.0f, scale = 0.0f;
    for (int k = 0; k <= 18; k++) {
        /* k = 0 is the plain scale, then -9..-1 and 1..9 tenths of a level. */
        const int step = k == 0 ? 0 : k <= 9 ? k - 10 : k - 9;
        const float iscale = -(nmax + 0.1f * step) / max;
        float sumlx = 0.0f, suml2 = 0.0f;
        for (int i = 0; i < n; i++) {
            const int l = clamp_int(round_int(iscale * x[i]), -nmax, nmax - 1);
            const float w = x[i] * x[i];
            sumlx += w * x[i] * l;
            suml2 += w * l * l;
        }
        const bool first = k == 0;
        if (first || (suml2 > 0.0f && sumlx * sumlx > best * suml2)) {
            for (int i = 0; i < n; i++)
                L[i] = (int8_t)(nmax + clamp_int(round_int(iscale * x[i]), -nmax, nmax - 1));
            scale = suml2 > 0.0f ? sumlx / suml2 : 0.0f;
            best = scale * sumlx;
        }
    }
    return scale;
}

/*
 * As fit_signed_scale but refines the codes one at a time (coordinate
 * descent, up to 5 sweeps): each code is re-rounded against the
 * least-squares scale of all the others and kept when the fit improves.
 * ggml's make_q3_quants, except that the refinement runs whatever the sign
 * of the scale (ggml's only runs when the largest element is negative).
 * Writes L[i] = l + nmax.
 */
static float fit_signed_scale_refined(const float *x, int n, int nmax, int8_t *L)
{
    const float max = signed_absmax(x, n);
    if (fabsf(max) < GROUP_EPS) {
        memset(L, 0, (size_t)n);
        return 0.0f;
    }
    const float iscale = -nmax / max;
    float sumlx = 0.0f, suml2 = 0.0f;
    for (int i = 0; i < n; i++) {
        L[i] = (int8_t)clamp_int(round_int(iscale * x[i]), -nmax, nmax - 1);
        const float w = x[i] * x[i];
        sumlx += w * x[i] * L[i];
        suml2 += w * L[i] * L[i];
    }
    for (int sweep = 0; sweep < 5; sweep++) {
        int changed = 0;
        for (int i = 0; i < n; i++) {
            const float w = x[i] * x[i];
            float slx = sumlx - w * x[i] * L[i];
            float sl2 = suml2 - w * L[i] * L[i];
            /* Without element i the scale must keep its sign, else x/scale is meaningless. */
            if (!(slx * sumlx > 0.0f) || !(sl2 > 0.0f))
                continue;
            const int nl = clamp_int(round_int(x[i] * sl2 / slx), -nmax, nmax - 1);
            if (nl == L[i])
                continue;
            slx += w * x[i] * nl;
            sl2 += w * nl * nl;
            if (sl2 > 0.0f && slx * slx * suml2 > sumlx * sumlx * sl2) {
                L[i] = (int8_t)nl;
                sumlx = slx;
                suml2 = sl2;
                changed++;
            }
        }
        if (!changed)
            break;
    }
    for (int i = 0; i < n; i++)
        L[i] = (int8_t)(L[i] + nmax);
    return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
}

/* How fit_scale_min searches: nstep + 1 candidates nmax + rmin + k * rdelta. */
typedef struct scale_min_search {
    int nmax;     /* codes are 0..nmax */
    float rmin;   /* first candidate, in levels relative to nmax */
    float rdelta; /* candidate step, in levels */
    int nstep;    /* candidates after the first */
    bool use_mad; /* minimize weighted |error| instead of weighted error^2 */
} scale_min_search;

/* Weighted error of x ~ scale * L + min: sum of w * |e| or w * e^2. */
static float fit_error(const float *x, const float *w, int n, const uint8_t *L, float scale,
                       float min, bool use_mad)
{
    float err = 0.0f;
    for (int i = 0; i < n; i++) {
        const float diff = scale * L[i] + min - x[i];
        err += w[i] * (use_mad ? fabsf(diff) : diff * diff);
    }
    return err;
}

/*
 * Codes for candidate inverse scale iscale and offset min, with the weighted
 * sums the least-squares fit needs: s[0] = sum wl, s[1] = sum wl^2, s[2] = sum wlx.
 */
static void round_candidate(const float *x, const float *w, int n, int nmax, float iscale,
                            float min, uint8_t *L, float *s)
{
    s[0] = s[1] = s[2] = 0.0f;
    for (int i = 0; i < n; i++) {
        /* The best min so far may lie near max, so v may be huge, infinite or NaN. */
        const float v = iscale * (x[i] - min);
        const int l = v > 0.0f ? round_int(v < (float)nmax ? v : (float)nmax) : 0;
        L[i] = (uint8_t)l;
        s[0] += w[i] * l;
        s[1] += w[i] * l * l;
        s[2] += w[i] * l * x[i];
    }
}

/*
 * Fit x ~ scale * l - mn with l in [0, nmax] and mn >= 0 (the min is never
 * above zero, so zero stays representable), minimizing the weighted error.
 * For each candidate scale the codes are rounded, then the best scale and
 * min for those codes come from the 2x2 weighted least-squares normal
 * equations; the candidate with the lowest error wins. Returns the scale,
 * *mn the (positive) min. ggml's make_qkx2_quants.
 */
static float fit_scale_min(const float *x, const float *w, int n, const scale_min_search *p,
                           uint8_t *L, float *mn)
{
    float min, max, sum_w = 0.0f, sum_x = 0.0f;
    min_max(x, n, &min, &max);
    for (int i = 0; i < n; i++) {
        sum_w += w[i];
        sum_x += w[i] * x[i];
    }
    if (min > 0.0f)
        min = 0.0f;
    if (max == min) {
        memset(L, 0, (size_t)n);
        *mn = -min;
        return 0.0f;
    }
    uint8_t Laux[NTP_QK];
    float s[3];
    const float iscale0 = p->nmax / (max - min);
    float scale = 1 / iscale0;
    round_candidate(x, w, n, p->nmax, iscale0, min, L, s);
    float best = fit_error(x, w, n, L, scale, min, p->use_mad);
    for (int k = 0; k <= p->nstep; k++) {
        const float iscale = (p->rmin + p->rdelta * k + p->nmax) / (max - min);
        round_candidate(x, w, n, p->nmax, iscale, min, Laux, s);
        const float D = sum_w * s[1] - s[0] * s[0];
        if (!(D > 0.0f))
            continue;
        float this_scale = (sum_w * s[2] - sum_x * s[0]) / D;
        float this_min = (s[1] * sum_x - s[0] * s[2]) / D;
        if (this_min > 0.0f) {
            this_min = 0.0f;
            this_scale = s[2] / s[1];
        }
        const float err = fit_error(x, w, n, Laux, this_scale, this_min, p->use_mad);
        if (err < best) {
            memcpy(L, Laux, (size_t)n);
            best = err;
            scale = this_scale;
            min = this_min;
        }
    }
    *mn = -min;
    return scale;
}

/* ------------------------------------------------------------------- Q2_K */

/* Pack 256 two-bit codes: element 128h + 32k + l -> bits 2k of qs[32h + l]. */
static void pack_2bit(const uint8_t *L, uint8_t *qs)
{
    for (int h = 0; h < 2; h++) {
        const uint8_t *l = L + 128 * h;
        for (int j = 0; j < 32; j++)
            qs[32 * h + j] = (uint8_t)(l[j] | l[j + 32] << 2 | l[j + 64] << 4 | l[j + 96] << 6);
    }
}

/* Quantize the 16 sub-block scales (or mins) v to 4 bits against their maximum. */
static float quantize_scales_4bit(const float *v, uint8_t *out, int shift)
{
    float max = 0.0f;
    for (int j = 0; j < NTP_QK_K / 16; j++)
        if (v[j] > max)
            max = v[j];
    if (!(max > 0.0f))
        return 0.0f;
    const float iscale = 15.0f / max;
    for (int j = 0; j < NTP_QK_K / 16; j++)
        out[j] |= (uint8_t)(clamp_int(round_int(iscale * v[j]), 0, 15) << shift);
    return max / 15.0f;
}

static void quantize_q2_K(const float *x, void *vy, int64_t n)
{
    static const scale_min_search search = {3, -0.5f, 0.1f, 15, true};
    ntp_block_q2_K *y = vy;
    uint8_t L[NTP_QK_K];
    float w[16], scales[NTP_QK_K / 16], mins[NTP_QK_K / 16];
    for (int64_t b = 0; b < n / NTP_QK_K; b++, x += NTP_QK_K) {
        for (int j = 0; j < NTP_QK_K / 16; j++) {
            for (int l = 0; l < 16; l++)
                w[l] = fabsf(x[16 * j + l]);
            scales[j] = fit_scale_min(x + 16 * j, w, 16, &search, L + 16 * j, &mins[j]);
        }
        memset(y[b].scales, 0, sizeof y[b].scales);
        y[b].d = ntp__f32_to_f16(quantize_scales_4bit(scales, y[b].scales, 0));
        y[b].dmin = ntp__f32_to_f16(quantize_scales_4bit(mins, y[b].scales, 4));
        /* Re-round every code against the scales as stored (binary16, 4-bit). */
        const float dall = ntp__f16_to_f32(y[b].d), mall = ntp__f16_to_f32(y[b].dmin);
        for (int j = 0; j < NTP_QK_K / 16; j++) {
            const float d = dall * (y[b].scales[j] & 0xF);
            if (d == 0.0f)
                continue;
            const float dm = mall * (y[b].scales[j] >> 4);
            for (int l = 0; l < 16; l++)
                L[16 * j + l] = (uint8_t)clamp_int(round_int((x[16 * j + l] + dm) / d), 0, 3);
        }
        pack_2bit(L, y[b].qs);
    }
}

static void dequantize_q2_K(const void *vx, float *y, int64_t n)
{
    const ntp_block_q2_K *x = vx;
    for (int64_t b = 0; b < n / NTP_QK_K; b++) {
        const float d = ntp__f16_to_f32(x[b].d);
        const float min = ntp__f16_to_f32(x[b].dmin);
        const uint8_t *sc = x[b].scales;
        for (int h = 0; h < 2; h++) {
            const uint8_t *q = x[b].qs + 32 * h;
            for (int k = 0; k < 8; k++) {
                /* Sub-block 8h + k: bits 2(k/2) of q[16(k%2) + l]. */
                const float dl = d * (sc[8 * h + k] & 0xF);
                const float ml = min * (sc[8 * h + k] >> 4);
                const uint8_t *qq = q + 16 * (k % 2);
                const int shift = 2 * (k / 2);
                for (int l = 0; l < 16; l++)
                    *y++ = dl * ((qq[l] >> shift) & 3) - ml;
            }
        }
    }
}

/* ------------------------------------------------------------------- Q3_K */

/* 6-bit scale s (0..63, biased by 32) of a Q3_K block; see blocks.h. */
static int q3_K_scale(const uint8_t *scales, int s)
{
    const int lo = s < 8 ? scales[s] & 0xF : scales[s - 8] >> 4;
    const int hi = (scales[8 + s % 4] >> (2 * (s / 4))) & 3;
    return lo | hi << 4;
}

static void q3_K_set_scale(uint8_t *scales, int s, int v)
{
    if (s < 8)
        scales[s] |= (uint8_t)(v & 0xF);
    else
        scales[s - 8] |= (uint8_t)((v & 0xF) << 4);
    scales[8 + s % 4] |= (uint8_t)((v >> 4) << (2 * (s / 4)));
}

/* Store the 6-bit signed sub-block scales; returns the super-block scale d. */
static float q3_K_store_scales(const float *scales, uint8_t *out)
{
    const float max = signed_absmax(scales, NTP_QK_K / 16);
    memset(out, 0, 12);
    if (max == 0.0f)
        return 0.0f;
    const float iscale = -32.0f / max;
    for (int j = 0; j < NTP_QK_K / 16; j++)
        q3_K_set_scale(out, j, clamp_int(round_int(iscale * scales[j]), -32, 31) + 32);
    return 1 / iscale;
}

static void quantize_q3_K(const float *x, void *vy, int64_t n)
{
    ntp_block_q3_K *y = vy;
    int8_t L[NTP_QK_K];
    float scales[NTP_QK_K / 16];
    for (int64_t b = 0; b < n / NTP_QK_K; b++, x += NTP_QK_K) {
        for (int j = 0; j < NTP_QK_K / 16; j++)
            scales[j] = fit_signed_scale_refined(x + 16 * j, 16, 4, L + 16 * j);
        y[b].d = ntp__f32_to_f16(q3_K_store_scales(scales, y[b].scales));
        const float dall = ntp__f16_to_f32(y[b].d);
        for (int j = 0; j < NTP_QK_K / 16; j++) {
            const float d = dall * (q3_K_scale(y[b].scales, j) - 32);
            if (d == 0.0f)
                continue;
            for (int l = 0; l < 16; l++)
                L[16 * j + l] = (int8_t)(clamp_int(round_int(x[16 * j + l] / d), -4, 3) + 4);
        }
        /* Third bit of element e -> bit e/32 of hmask[e%32]; the low two bits stay in L. */
        uint8_t low[NTP_QK_K];
        memset(y[b].hmask, 0, sizeof y[b].hmask);
        for (int e = 0; e < NTP_QK_K; e++) {
            if (L[e] > 3)
                y[b].hmask[e % 32] |= (uint8_t)(1u << (e / 32));
            low[e] = (uint8_t)(L[e] & 3);
        }
        pack_2bit(low, y[b].qs);
    }
}

static void dequantize_q3_K(const void *vx, float *y, int64_t n)
{
    const ntp_block_q3_K *x = vx;
    for (int64_t b = 0; b < n / NTP_QK_K; b++) {
        const float d_all = ntp__f16_to_f32(x[b].d);
        const uint8_t *hm = x[b].hmask;
        for (int h = 0; h < 2; h++) {
            const uint8_t *q = x[b].qs + 32 * h;
            for (int k = 0; k < 8; k++) {
                const int s = 8 * h + k;
                const float dl = d_all * (q3_K_scale(x[b].scales, s) - 32);
                const uint8_t *qq = q + 16 * (k % 2);
                const uint8_t *hh = hm + 16 * (k % 2);
                const int shift = 2 * (k / 2);
                const uint8_t m = (uint8_t)(1u << (4 * h + k / 2));
                for (int l = 0; l < 16; l++)
                    *y++ = dl * (((qq[l] >> shift) & 3) - ((hh[l] & m) ? 0 : 4));
            }
        }
    }
}

/* ----------------------------------------------------------- Q4_K and Q5_K */

/* 6-bit scale and min of sub-block j (0..7) of a Q4_K/Q5_K block; see blocks.h. */
static void k4_scale_min(const uint8_t *q, int j, int *sc, int *mn)
{
    if (j < 4) {
        *sc = q[j] & 63;
        *mn = q[j + 4] & 63;
    } else {
        *sc = (q[j + 4] & 0xF) | (q[j - 4] >> 6) << 4;
        *mn = (q[j + 4] >> 4) | (q[j] >> 6) << 4;
    }
}

/* Inverse of k4_scale_min; q must start zeroed. */
static void k4_set_scale_min(uint8_t *q, int j, int sc, int mn)
{
    if (j < 4) {
        q[j] |= (uint8_t)sc;
        q[j + 4] |= (uint8_t)mn;
    } else {
        q[j + 4] |= (uint8_t)((sc & 0xF) | (mn & 0xF) << 4);
        q[j - 4] |= (uint8_t)((sc >> 4) << 6);
        q[j] |= (uint8_t)((mn >> 4) << 6);
    }
}

/*
 * The part Q4_K and Q5_K share: fit a scale and min per 32-element
 * sub-block (weights |x| plus the sub-block RMS, so small elements still
 * count), store them as 6-bit fractions of the largest, then re-round every
 * code in 0..p->nmax against the stored values. dm receives d and dmin.
 */
static void quantize_k_scale_min(const float *x, const scale_min_search *p, uint8_t *L,
                                 uint8_t *packed, ntp_f16 *dm)
{
    float w[32], scales[8], mins[8], max_scale = 0.0f, max_min = 0.0f;
    for (int j = 0; j < 8; j++) {
        const float *xs = x + 32 * j;
        float sum_x2 = 0.0f;
        for (int l = 0; l < 32; l++)
            sum_x2 += xs[l] * xs[l];
        const float av_x = sqrtf(sum_x2 / 32);
        for (int l = 0; l < 32; l++)
            w[l] = av_x + fabsf(xs[l]);
        scales[j] = fit_scale_min(xs, w, 32, p, L + 32 * j, &mins[j]);
        max_scale = scales[j] > max_scale ? scales[j] : max_scale;
        max_min = mins[j] > max_min ? mins[j] : max_min;
    }
    const float inv_scale = max_scale > 0.0f ? 63.0f / max_scale : 0.0f;
    const float inv_min = max_min > 0.0f ? 63.0f / max_min : 0.0f;
    memset(packed, 0, 12);
    for (int j = 0; j < 8; j++)
        k4_set_scale_min(packed, j, clamp_int(round_int(inv_scale * scales[j]), 0, 63),
                         clamp_int(round_int(inv_min * mins[j]), 0, 63));
    dm[0] = ntp__f32_to_f16(max_scale / 63.0f);
    dm[1] = ntp__f32_to_f16(max_min / 63.0f);
    const float dall = ntp__f16_to_f32(dm[0]), mall = ntp__f16_to_f32(dm[1]);
    for (int j = 0; j < 8; j++) {
        int sc, mn;
        k4_scale_min(packed, j, &sc, &mn);
        const float d = dall * sc;
        if (d == 0.0f)
            continue;
        const float dmin = mall * mn;
        for (int l = 0; l < 32; l++)
            L[32 * j + l] = (uint8_t)clamp_int(round_int((x[32 * j + l] + dmin) / d), 0, p->nmax);
    }
}

static void quantize_q4_K(const float *x, void *vy, int64_t n)
{
    static const scale_min_search search = {15, -1.0f, 0.1f, 20, false};
    ntp_block_q4_K *y = vy;
    uint8_t L[NTP_QK_K];
    for (int64_t b = 0; b < n / NTP_QK_K; b++, x += NTP_QK_K) {
        ntp_f16 dm[2];
        quantize_k_scale_min(x, &search, L, y[b].scales, dm);
        y[b].d = dm[0];
        y[b].dmin = dm[1];
        for (int c = 0; c < 4; c++)
            for (int l = 0; l < 32; l++)
                y[b].qs[32 * c + l] = (uint8_t)(L[64 * c + l] | L[64 * c + 32 + l] << 4);
    }
}

static void dequantize_q4_K(const void *vx, float *y, int64_t n)
{
    const ntp_block_q4_K *x = vx;
    for (int64_t b = 0; b < n / NTP_QK_K; b++) {
        const float d = ntp__f16_to_f32(x[b].d);
        const float min = ntp__f16_to_f32(x[b].dmin);
        for (int c = 0; c < 4; c++) {
            const uint8_t *q = x[b].qs + 32 * c;
            int sc, mn;
            k4_scale_min(x[b].scales, 2 * c, &sc, &mn);
            const float d1 = d * sc, m1 = min * mn;
            k4_scale_min(x[b].scales, 2 * c + 1, &sc, &mn);
            const float d2 = d * sc, m2 = min * mn;
            for (int l = 0; l < 32; l++)
                *y++ = d1 * (q[l] & 0xF) - m1;
            for (int l = 0; l < 32; l++)
                *y++ = d2 * (q[l] >> 4) - m2;
        }
    }
}

static void quantize_q5_K(const float *x, void *vy, int64_t n)
{
    static const scale_min_search search = {31, -0.5f, 0.1f, 15, false};
    ntp_block_q5_K *y = vy;
    uint8_t L[NTP_QK_K];
    for (int64_t b = 0; b < n / NTP_QK_K; b++, x += NTP_QK_K) {
        ntp_f16 dm[2];
        quantize_k_scale_min(x, &search, L, y[b].scales, dm);
        y[b].d = dm[0];
        y[b].dmin = dm[1];
        memset(y[b].qh, 0, sizeof y[b].qh);
        for (int c = 0; c < 4; c++) {
            for (int l = 0; l < 32; l++) {
                const int lo = L[64 * c + l], hi = L[64 * c + 32 + l];
                y[b].qs[32 * c + l] = (uint8_t)((lo & 0xF) | (hi & 0xF) << 4);
                /* Fifth bit of sub-block s in bit s of qh[l]. */
                y[b].qh[l] |= (uint8_t)((lo >> 4) << (2 * c) | (hi >> 4) << (2 * c + 1));
            }
        }
    }
}

static void dequantize_q5_K(const void *vx, float *y, int64_t n)
{
    const ntp_block_q5_K *x = vx;
    for (int64_t b = 0; b < n / NTP_QK_K; b++) {
        const float d = ntp__f16_to_f32(x[b].d);
        const float min = ntp__f16_to_f32(x[b].dmin);
        const uint8_t *qh = x[b].qh;
        for (int c = 0; c < 4; c++) {
            const uint8_t *ql = x[b].qs + 32 * c;
            const uint8_t u1 = (uint8_t)(1u << (2 * c)), u2 = (uint8_t)(2u << (2 * c));
            int sc, mn;
            k4_scale_min(x[b].scales, 2 * c, &sc, &mn);
            const float d1 = d * sc, m1 = min * mn;
            k4_scale_min(x[b].scales, 2 * c + 1, &sc, &mn);
            const float d2 = d * sc, m2 = min * mn;
            for (int l = 0; l < 32; l++)
                *y++ = d1 * ((ql[l] & 0xF) + (qh[l] & u1 ? 16 : 0)) - m1;
            for (int l = 0; l < 32; l++)
                *y++ = d2 * ((ql[l] >> 4) + (qh[l] & u2 ? 16 : 0)) - m2;
        }
    }
}

/* ------------------------------------------------------------------- Q6_K */

/* Pack 256 six-bit codes (0..63) into ql/qh; see blocks.h. */
static void pack_q6_K(const int8_t *L, uint8_t *ql, uint8_t *qh)
{
    for (int h = 0; h < 2; h++, L += 128, ql += 64, qh += 32) {
        for (int l = 0; l < 32; l++) {
            const int q1 = L[l], q2 = L[l + 32], q3 = L[l + 64], q4 = L[l + 96];
            ql[l] = (uint8_t)((q1 & 0xF) | (q3 & 0xF) << 4);
            ql[l + 32] = (uint8_t)((q2 & 0xF) | (q4 & 0xF) << 4);
            qh[l] = (uint8_t)((q1 >> 4) | (q2 >> 4) << 2 | (q3 >> 4) << 4 | (q4 >> 4) << 6);
        }
    }
}

static void quantize_q6_K(const float *x, void *vy, int64_t n)
{
    ntp_block_q6_K *y = vy;
    int8_t L[NTP_QK_K];
    float scales[NTP_QK_K / 16];
    for (int64_t b = 0; b < n / NTP_QK_K; b++, x += NTP_QK_K) {
        for (int j = 0; j < NTP_QK_K / 16; j++)
            scales[j] = fit_signed_scale(x + 16 * j, 16, 32, L + 16 * j);
        const float max_scale = signed_absmax(scales, NTP_QK_K / 16);
        if (fabsf(max_scale) < GROUP_EPS) {
            memset(&y[b], 0, sizeof y[b]);
            continue;
        }
        /* The largest scale maps to -128 so that it gets the extra level. */
        const float iscale = -128.0f / max_scale;
        y[b].d = ntp__f32_to_f16(1 / iscale);
        for (int j = 0; j < NTP_QK_K / 16; j++)
            y[b].scales[j] = (int8_t)clamp_int(round_int(iscale * scales[j]), -128, 127);
        const float dall = ntp__f16_to_f32(y[b].d);
        for (int j = 0; j < NTP_QK_K / 16; j++) {
            const float d = dall * y[b].scales[j];
            if (d == 0.0f)
                continue;
            for (int l = 0; l < 16; l++)
                L[16 * j + l] = (int8_t)(clamp_int(round_int(x[16 * j + l] / d), -32, 31) + 32);
        }
        pack_q6_K(L, y[b].ql, y[b].qh);
    }
}

static void dequantize_q6_K(const void *vx, float *y, int64_t n)
{
    const ntp_block_q6_K *x = vx;
    for (int64_t b = 0; b < n / NTP_QK_K; b++) {
        const float d = ntp__f16_to_f32(x[b].d);
        for (int h = 0; h < 2; h++, y += 128) {
            const uint8_t *ql = x[b].ql + 64 * h, *qh = x[b].qh + 32 * h;
            const int8_t *sc = x[b].scales + 8 * h;
            for (int l = 0; l < 32; l++) {
                const int is = l / 16;
                const int q1 = ((ql[l] & 0xF) | ((qh[l] >> 0) & 3) << 4) - 32;
                const int q2 = ((ql[l + 32] & 0xF) | ((qh[l] >> 2) & 3) << 4) - 32;
                const int q3 = ((ql[l] >> 4) | ((qh[l] >> 4) & 3) << 4) - 32;
                const int q4 = ((ql[l + 32] >> 4) | ((qh[l] >> 6) & 3) << 4) - 32;
                y[l] = d * sc[is] * q1;
                y[l + 32] = d * sc[is + 2] * q2;
                y[l + 64] = d * sc[is + 4] * q3;
                y[l + 96] = d * sc[is + 6] * q4;
            }
        }
    }
}

/* ------------------------------------------------------------------- Q8_K */

/* Symmetric 8-bit with a float scale; the largest magnitude maps to -127. */
static void quantize_q8_K(const float *x, void *vy, int64_t n)
{
    ntp_block_q8_K *y = vy;
    for (int64_t b = 0; b < n / NTP_QK_K; b++, x += NTP_QK_K) {
        const float max = signed_absmax(x, NTP_QK_K);
        const float iscale = max != 0.0f ? -127.0f / max : 0.0f;
        /* A max so tiny that 127/max overflows is stored as zeros, like an all-zero block. */
        if (iscale == 0.0f || !(fabsf(iscale) <= FLT_MAX)) {
            memset(&y[b], 0, sizeof y[b]);
            continue;
        }
        for (int j = 0; j < NTP_QK_K; j++)
            y[b].qs[j] = (int8_t)clamp_int(round_int(iscale * x[j]), -127, 127);
        for (int g = 0; g < NTP_QK_K / 16; g++) {
            int sum = 0;
            for (int l = 0; l < 16; l++)
                sum += y[b].qs[16 * g + l];
            y[b].bsums[g] = (int16_t)sum;
        }
        y[b].d = 1 / iscale;
    }
}

static void dequantize_q8_K(const void *vx, float *y, int64_t n)
{
    const ntp_block_q8_K *x = vx;
    for (int64_t b = 0; b < n / NTP_QK_K; b++, y += NTP_QK_K)
        for (int j = 0; j < NTP_QK_K; j++)
            y[j] = x[b].d * x[b].qs[j];
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
    [NTP_TYPE_Q2_K] = {quantize_q2_K, dequantize_q2_K},
    [NTP_TYPE_Q3_K] = {quantize_q3_K, dequantize_q3_K},
    [NTP_TYPE_Q4_K] = {quantize_q4_K, dequantize_q4_K},
    [NTP_TYPE_Q5_K] = {quantize_q5_K, dequantize_q5_K},
    [NTP_TYPE_Q6_K] = {quantize_q6_K, dequantize_q6_K},
    [NTP_TYPE_Q8_K] = {quantize_q8_K, dequantize_q8_K},
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
