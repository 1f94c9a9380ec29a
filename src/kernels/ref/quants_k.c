/*
 * quants_k.c - reference quantize/dequantize of the k-quants (Q2_K .. Q6_K
 * and Q8_K), the other half of quants.c and under its rules: the
 * dequantizers repeat ggml's operations in ggml's order with no FMA
 * contraction, the quantizers run ggml's weighted least-squares searches for
 * the scales, and every float-to-integer conversion clamps first.
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
    const float max = ntp__signed_absmax(x, n);
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
    const float max = ntp__signed_absmax(x, n);
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
    /* Sums in locals, not through s, which may alias x and w as far as the compiler knows. */
    float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f;
    for (int i = 0; i < n; i++) {
        /* The best min so far may lie near max, so v may be huge, infinite or NaN. */
        const float v = iscale * (x[i] - min);
        const int l = v > 0.0f ? round_int(v < (float)nmax ? v : (float)nmax) : 0;
        L[i] = (uint8_t)l;
        s0 += w[i] * l;
        s1 += w[i] * l * l;
        s2 += w[i] * l * x[i];
    }
    s[0] = s0;
    s[1] = s1;
    s[2] = s2;
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
    ntp__min_max(x, n, &min, &max);
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

void ntp__quantize_row_q2_K(const float *x, void *vy, int64_t n)
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

void ntp__dequantize_row_q2_K(const void *vx, float *y, int64_t n)
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
    const float max = ntp__signed_absmax(scales, NTP_QK_K / 16);
    memset(out, 0, 12);
    if (max == 0.0f)
        return 0.0f;
    const float iscale = -32.0f / max;
    for (int j = 0; j < NTP_QK_K / 16; j++)
        q3_K_set_scale(out, j, clamp_int(round_int(iscale * scales[j]), -32, 31) + 32);
    return 1 / iscale;
}

void ntp__quantize_row_q3_K(const float *x, void *vy, int64_t n)
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

void ntp__dequantize_row_q3_K(const void *vx, float *y, int64_t n)
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

void ntp__quantize_row_q4_K(const float *x, void *vy, int64_t n)
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

void ntp__dequantize_row_q4_K(const void *vx, float *y, int64_t n)
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

void ntp__quantize_row_q5_K(const float *x, void *vy, int64_t n)
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

void ntp__dequantize_row_q5_K(const void *vx, float *y, int64_t n)
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

void ntp__quantize_row_q6_K(const float *x, void *vy, int64_t n)
{
    ntp_block_q6_K *y = vy;
    int8_t L[NTP_QK_K];
    float scales[NTP_QK_K / 16];
    for (int64_t b = 0; b < n / NTP_QK_K; b++, x += NTP_QK_K) {
        for (int j = 0; j < NTP_QK_K / 16; j++)
            scales[j] = fit_signed_scale(x + 16 * j, 16, 32, L + 16 * j);
        const float max_scale = ntp__signed_absmax(scales, NTP_QK_K / 16);
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

void ntp__dequantize_row_q6_K(const void *vx, float *y, int64_t n)
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
void ntp__quantize_row_q8_K(const float *x, void *vy, int64_t n)
{
    ntp_block_q8_K *y = vy;
    for (int64_t b = 0; b < n / NTP_QK_K; b++, x += NTP_QK_K) {
        const float max = ntp__signed_absmax(x, NTP_QK_K);
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

void ntp__dequantize_row_q8_K(const void *vx, float *y, int64_t n)
{
    const ntp_block_q8_K *x = vx;
    for (int64_t b = 0; b < n / NTP_QK_K; b++, y += NTP_QK_K)
        for (int j = 0; j < NTP_QK_K; j++)
            y[j] = x[b].d * x[b].qs[j];
}
