/*
 * attn.c - attention of one head over an F16, F32, Q8_0 or Q4_0 cache
 * (kernels.h), the conversion of cache rows to floats, the softmax's
 * exponentials (exp_sum) and the FFN's SwiGLU and GeGLU, on a vector exp.
 */
#include "kernels/x86/legacy.h"
#include "kernels/x86/simd_x86.h"
#include "kernels/x86/x86.h"

#include <math.h>

/* 8 cache elements from element i of a row (F16 or F32). */
NTP_INLINE __m256 kv_load8(bool f16, const void *row, int64_t i)
{
    if (f16)
        return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)row + i)));
    return _mm256_loadu_ps((const float *)row + i);
}

NTP_INLINE float kv_load1(bool f16, const void *row, int64_t i)
{
    return f16 ? ntp__x86_h2f((const uint16_t *)row + i) : ((const float *)row)[i];
}

/* Bytes of one Q4_0 (q4) or Q8_0 cache block. */
NTP_INLINE size_t kv_block_bytes(bool q4)
{
    return q4 ? sizeof(ntp_block_q4_0) : sizeof(ntp_block_q8_0);
}

/* The 32 codes of a Q4_0 (q4) or Q8_0 block at blk as floats, unscaled, 8 per vector. */
NTP_INLINE void kv_block_ps(bool q4, const uint8_t *blk, __m256 f[4])
{
    if (!q4) {
        const int8_t *qs = (const int8_t *)(blk + offsetof(ntp_block_q8_0, qs));
        for (int j = 0; j < 4; j++)
            f[j] = _mm256_cvtepi32_ps(
                _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(qs + 8 * j))));
        return;
    }
    const __m256i c =
        _mm256_sub_epi8(lg_nibbles(blk + offsetof(ntp_block_q4_0, qs)), _mm256_set1_epi8(8));
    const __m128i lo = _mm256_castsi256_si128(c), hi = _mm256_extracti128_si256(c, 1);
    f[0] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(lo));
    f[1] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(lo, 8)));
    f[2] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(hi));
    f[3] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(hi, 8)));
}

/*
 * exp(x) for x <= 0 (Cephes' expf): x = n ln 2 + r with |r| <= ln 2 / 2,
 * exp(r) by a degree-6 polynomial, 2^n into the exponent field. Within 2
 * ulp of expf; below -87.3 (where expf leaves the normal floats) it is 0.
 */
NTP_INLINE __m256 exp8_neg(__m256 x)
{
    const __m256 lo = _mm256_set1_ps(-87.33654f);
    const __m256 under = _mm256_cmp_ps(x, lo, _CMP_LT_OQ);
    x = _mm256_max_ps(x, lo);
    const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    const __m256 e =
        _mm256_add_ps(_mm256_fmadd_ps(p, _mm256_mul_ps(r, r), r), _mm256_set1_ps(1.0f));
    const __m256i pow2 =
        _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_andnot_ps(under, _mm256_mul_ps(e, _mm256_castsi256_ps(pow2)));
}

static float exp_sum(float *x, int64_t n, float m)
{
    const __m256 vm = _mm256_set1_ps(m);
    __m256 s = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 e = exp8_neg(_mm256_sub_ps(_mm256_loadu_ps(x + i), vm));
        _mm256_storeu_ps(x + i, e);
        s = _mm256_add_ps(s, e);
    }
    float sum = ntp__x86_hsum_ps(s);
    for (; i < n; i++) {
        x[i] = expf(x[i] - m);
        sum += x[i];
    }
    return sum;
}

/*
 * silu(g) u = g u / (1 + exp(-g)), with t = exp(-|g|) <= 1 so that only
 * exp8_neg is needed: g u / (1 + t) for g >= 0, g u t / (1 + t) below.
 */
static void swiglu(float *y, const float *g, const float *u, int64_t n)
{
    const __m256 one = _mm256_set1_ps(1.0f), sign = _mm256_set1_ps(-0.0f);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 vg = _mm256_loadu_ps(g + i);
        const __m256 t = exp8_neg(_mm256_or_ps(vg, sign)); /* exp(-|g|) */
        const __m256 num = _mm256_blendv_ps(one, t, vg);   /* sign of g picks t */
        const __m256 s = _mm256_div_ps(_mm256_mul_ps(vg, num), _mm256_add_ps(one, t));
        _mm256_storeu_ps(y + i, _mm256_mul_ps(s, _mm256_loadu_ps(u + i)));
    }
    ntp__swiglu_f32(y + i, g + i, u + i, n - i);
}

/*
 * gelu(g) u with GELU's tanh form: x/2 (1 + tanh(z)) = x sigmoid(2z) for
 * z = sqrt(2/pi) (x + 0.044715 x^3), so the sigmoid is swiglu's, on w = 2z.
 */
static void geglu(float *y, const float *g, const float *u, int64_t n)
{
    const __m256 one = _mm256_set1_ps(1.0f), sign = _mm256_set1_ps(-0.0f);
    const __m256 c1 = _mm256_set1_ps(2.0f * 0.7978845608028654f), c3 = _mm256_set1_ps(0.044715f);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 vg = _mm256_loadu_ps(g + i);
        const __m256 x2 = _mm256_mul_ps(vg, vg);
        const __m256 w = _mm256_mul_ps(_mm256_mul_ps(c1, vg), _mm256_fmadd_ps(c3, x2, one));
        const __m256 t = exp8_neg(_mm256_or_ps(w, sign)); /* exp(-|w|) */
        const __m256 num = _mm256_blendv_ps(one, t, w);   /* sign of w picks t */
        const __m256 s = _mm256_div_ps(_mm256_mul_ps(vg, num), _mm256_add_ps(one, t));
        _mm256_storeu_ps(y + i, _mm256_mul_ps(s, _mm256_loadu_ps(u + i)));
    }
    ntp__geglu_f32(y + i, g + i, u + i, n - i);
}

/* score[p] = scale * q . K[p] over an F16 or F32 key cache. */
static void scores_float(const struct ntp_attn_args *a)
{
    const bool f16 = a->kv_type == NTP_TYPE_F16;
    const uint8_t *k = a->k;
    for (int64_t p = 0; p < a->n_pos; p++) {
        const void *kr = k + (size_t)p * a->kv_stride;
        __m256 acc = _mm256_setzero_ps();
        int64_t i = 0;
        for (; i + 8 <= a->hdk; i += 8)
            acc = _mm256_fmadd_ps(_mm256_loadu_ps(a->q + i), kv_load8(f16, kr, i), acc);
        float d = ntp__x86_hsum_ps(acc);
        for (; i < a->hdk; i++)
            d += a->q[i] * kv_load1(f16, kr, i);
        a->score[p] = d * a->scale;
    }
}

/* o += s * (32 F16 or F32 cache elements at x). */
NTP_INLINE void values_float32(bool f16, const void *x, float s, __m256 o[4])
{
    const __m256 sp = _mm256_set1_ps(s);
    for (int j = 0; j < 4; j++)
        o[j] = _mm256_fmadd_ps(sp, kv_load8(f16, x, 8 * j), o[j]);
}

/* o += s * (the Q4_0 or Q8_0 block at blk): each code times s * d. */
NTP_INLINE void values_block(bool q4, const uint8_t *blk, float s, __m256 o[4])
{
    const __m256 w = _mm256_mul_ps(_mm256_set1_ps(s), lg_bcast_h(blk));
    __m256 f[4];
    kv_block_ps(q4, blk, f);
    for (int j = 0; j < 4; j++)
        o[j] = _mm256_fmadd_ps(w, f[j], o[j]);
}

/* out = sum_p score[p] V[p] over an F16 or F32 value cache. */
static void values_float(const struct ntp_attn_args *a)
{
    const bool f16 = a->kv_type == NTP_TYPE_F16;
    const uint8_t *v = a->v;
    int64_t i = 0;
    /* 32 value columns at a time over every position, out in registers: even and odd
       positions in two sets of sums, so that an FMA need not wait for the one before. */
    for (; i + 32 <= a->hdv; i += 32) {
        const uint8_t *vi = v + (size_t)i * (f16 ? sizeof(uint16_t) : sizeof(float));
        __m256 o[4], o1[4];
        for (int j = 0; j < 4; j++)
            o[j] = o1[j] = _mm256_setzero_ps();
        int64_t p = 0;
        for (; p + 2 <= a->n_pos; p += 2) {
            values_float32(f16, vi + (size_t)p * a->kv_stride, a->score[p], o);
            values_float32(f16, vi + (size_t)(p + 1) * a->kv_stride, a->score[p + 1], o1);
        }
        if (p < a->n_pos)
            values_float32(f16, vi + (size_t)p * a->kv_stride, a->score[p], o);
        for (int j = 0; j < 4; j++)
            _mm256_storeu_ps(a->out + i + 8 * j, _mm256_add_ps(o[j], o1[j]));
    }
    for (; i + 8 <= a->hdv; i += 8) {
        __m256 o = _mm256_setzero_ps();
        for (int64_t p = 0; p < a->n_pos; p++)
            o = _mm256_fmadd_ps(_mm256_set1_ps(a->score[p]),
                                kv_load8(f16, v + (size_t)p * a->kv_stride, i), o);
        _mm256_storeu_ps(a->out + i, o);
    }
    for (; i < a->hdv; i++) {
        float o = 0;
        for (int64_t p = 0; p < a->n_pos; p++)
            o += a->score[p] * kv_load1(f16, v + (size_t)p * a->kv_stride, i);
        a->out[i] = o;
    }
}

/*
 * out = sum_p score[p] V[p] over a Q4_0 (q4) or Q8_0 value cache: one block
 * of 32 columns at a time over every position, out in registers, each code
 * times score[p] * d (the dequantized row summed in float, as ggml does).
 */
NTP_INLINE void values_quant(const struct ntp_attn_args *a, bool q4)
{
    const uint8_t *v = a->v;
    const size_t bb = kv_block_bytes(q4);
    for (int64_t b = 0; b < a->hdv / NTP_QK; b++) {
        const uint8_t *vb = v + (size_t)b * bb;
        __m256 o[4], o1[4]; /* even and odd positions, as in values_float */
        for (int j = 0; j < 4; j++)
            o[j] = o1[j] = _mm256_setzero_ps();
        int64_t p = 0;
        for (; p + 2 <= a->n_pos; p += 2) {
            values_block(q4, vb + (size_t)p * a->kv_stride, a->score[p], o);
            values_block(q4, vb + (size_t)(p + 1) * a->kv_stride, a->score[p + 1], o1);
        }
        if (p < a->n_pos)
            values_block(q4, vb + (size_t)p * a->kv_stride, a->score[p], o);
        for (int j = 0; j < 4; j++)
            _mm256_storeu_ps(a->out + b * NTP_QK + 8 * j, _mm256_add_ps(o[j], o1[j]));
    }
}

/* The largest of m and x[0, n), 8 at a time (max_ps keeps m when x is NaN, as the
   scalar comparison does), in four chains. */
static float max_f32(const float *x, int64_t n, float m)
{
    __m256 m8[4];
    for (int j = 0; j < 4; j++)
        m8[j] = _mm256_set1_ps(m);
    int64_t p = 0;
    for (; p + 32 <= n; p += 32)
        for (int j = 0; j < 4; j++)
            m8[j] = _mm256_max_ps(_mm256_loadu_ps(x + p + 8 * j), m8[j]);
    for (; p + 8 <= n; p += 8)
        m8[0] = _mm256_max_ps(_mm256_loadu_ps(x + p), m8[0]);
    float max =
        ntp__x86_hmax_ps(_mm256_max_ps(_mm256_max_ps(m8[0], m8[1]), _mm256_max_ps(m8[2], m8[3])));
    for (; p < n; p++)
        max = x[p] > max ? x[p] : max;
    return max;
}

static void attn_head(const struct ntp_attn_args *a)
{
    if (ntp__kv_quantized(a->kv_type))
        ntp__attn_scores_quant(a);
    else
        scores_float(a);
    const float max = max_f32(a->score, a->n_pos, -INFINITY);
    const __m256 inv = _mm256_set1_ps(1.0f / exp_sum(a->score, a->n_pos, max));
    int64_t j = 0;
    for (; j + 8 <= a->n_pos; j += 8)
        _mm256_storeu_ps(a->score + j, _mm256_mul_ps(_mm256_loadu_ps(a->score + j), inv));
    for (; j < a->n_pos; j++)
        a->score[j] *= _mm256_cvtss_f32(inv);
    if (a->kv_type == NTP_TYPE_Q4_0)
        values_quant(a, true);
    else if (a->kv_type == NTP_TYPE_Q8_0)
        values_quant(a, false);
    else
        values_float(a);
}

/* A Q4_0 (q4) or Q8_0 row of n elements to floats, code times d as the reference does. */
NTP_INLINE void kv_quant_to_f32(bool q4, const uint8_t *x, float *y, int64_t n)
{
    for (int64_t b = 0; b < n / NTP_QK; b++, x += kv_block_bytes(q4), y += NTP_QK) {
        const __m256 d = lg_bcast_h(x);
        __m256 f[4];
        kv_block_ps(q4, x, f);
        for (int j = 0; j < 4; j++)
            _mm256_storeu_ps(y + 8 * j, _mm256_mul_ps(f[j], d));
    }
}

static void kv_to_f32(enum ntp_type kv_type, const void *x, float *y, int64_t n)
{
    if (kv_type == NTP_TYPE_Q4_0) {
        kv_quant_to_f32(true, x, y, n);
        return;
    }
    if (kv_type == NTP_TYPE_Q8_0) {
        kv_quant_to_f32(false, x, y, n);
        return;
    }
    const bool f16 = kv_type == NTP_TYPE_F16;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, kv_load8(f16, x, i));
    for (; i < n; i++)
        y[i] = kv_load1(f16, x, i);
}

void NTP_X86(fill_attn)(struct ntp_kernels *k)
{
    k->attn = attn_head;
    k->kv_to_f32 = kv_to_f32;
    k->exp_sum = exp_sum;
    k->max = max_f32;
    k->glu[NTP_FFN_SILU] = swiglu;
    k->glu[NTP_FFN_GELU] = geglu;
}
