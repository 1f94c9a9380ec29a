/*
 * matmul.c - reference (scalar C) dot products and matrix products for every
 * computable weight type. These define what the SIMD kernels must compute.
 *
 * Legacy formats use ggml's integer dot against Q8 activations: the codes of
 * one block are multiplied as integers and scaled once per block. The
 * k-quants dequantize one 256-element weight block into a stack buffer with
 * the reference dequantizer (src/kernels/quant.h) and dot it with the Q8_K
 * codes, then scale by the activation's d; mathematically that is ggml's sum
 * (only the float rounding order differs), and it keeps this file short.
 */
#include "kernels/blocks.h"
#include "kernels/kernels.h"
#include "kernels/quant.h"

#include <string.h>

static float dot_f32(int64_t k, const void *w, const void *x)
{
    return ntp__dot_f32(w, x, k);
}

static float dot_f16(int64_t k, const void *w, const void *x)
{
    const ntp_f16 *a = w;
    const float *b = x;
    double sum = 0;
    for (int64_t i = 0; i < k; i++)
        sum += (double)(ntp__f16_to_f32(a[i]) * b[i]);
    return (float)sum;
}

static float dot_bf16(int64_t k, const void *w, const void *x)
{
    const ntp_bf16 *a = w;
    const float *b = x;
    double sum = 0;
    for (int64_t i = 0; i < k; i++)
        sum += (double)(ntp__bf16_to_f32(a[i]) * b[i]);
    return (float)sum;
}

static float dot_q4_0(int64_t k, const void *w, const void *x)
{
    const ntp_block_q4_0 *a = w;
    const ntp_block_q8_0 *b = x;
    float sum = 0;
    for (int64_t i = 0; i < k / NTP_QK; i++) {
        int sumi = 0;
        for (int j = 0; j < NTP_QK / 2; j++) {
            sumi += ((a[i].qs[j] & 15) - 8) * b[i].qs[j];
            sumi += ((a[i].qs[j] >> 4) - 8) * b[i].qs[j + NTP_QK / 2];
        }
        sum += (float)sumi * ntp__f16_to_f32(a[i].d) * ntp__f16_to_f32(b[i].d);
    }
    return sum;
}

static float dot_q4_1(int64_t k, const void *w, const void *x)
{
    const ntp_block_q4_1 *a = w;
    const ntp_block_q8_1 *b = x;
    float sum = 0;
    for (int64_t i = 0; i < k / NTP_QK; i++) {
        int sumi = 0;
        for (int j = 0; j < NTP_QK / 2; j++) {
            sumi += (a[i].qs[j] & 15) * b[i].qs[j];
            sumi += (a[i].qs[j] >> 4) * b[i].qs[j + NTP_QK / 2];
        }
        sum += (float)sumi * ntp__f16_to_f32(a[i].d) * ntp__f16_to_f32(b[i].d) +
               ntp__f16_to_f32(a[i].m) * ntp__f16_to_f32(b[i].s);
    }
    return sum;
}

/* Fifth bit of element j of a Q5 block, as 0 or 16. */
static inline int q5_high(const uint8_t qh[4], int j)
{
    const uint32_t bits =
        (uint32_t)qh[0] | (uint32_t)qh[1] << 8 | (uint32_t)qh[2] << 16 | (uint32_t)qh[3] << 24;
    return (int)((bits >> j) & 1) << 4;
}

static float dot_q5_0(int64_t k, const void *w, const void *x)
{
    const ntp_block_q5_0 *a = w;
    const ntp_block_q8_0 *b = x;
    float sum = 0;
    for (int64_t i = 0; i < k / NTP_QK; i++) {
        int sumi = 0;
        for (int j = 0; j < NTP_QK / 2; j++) {
            const int lo = ((a[i].qs[j] & 15) | q5_high(a[i].qh, j)) - 16;
            const int hi = ((a[i].qs[j] >> 4) | q5_high(a[i].qh, j + NTP_QK / 2)) - 16;
            sumi += lo * b[i].qs[j] + hi * b[i].qs[j + NTP_QK / 2];
        }
        sum += (float)sumi * ntp__f16_to_f32(a[i].d) * ntp__f16_to_f32(b[i].d);
    }
    return sum;
}

static float dot_q5_1(int64_t k, const void *w, const void *x)
{
    const ntp_block_q5_1 *a = w;
    const ntp_block_q8_1 *b = x;
    float sum = 0;
    for (int64_t i = 0; i < k / NTP_QK; i++) {
        int sumi = 0;
        for (int j = 0; j < NTP_QK / 2; j++) {
            const int lo = (a[i].qs[j] & 15) | q5_high(a[i].qh, j);
            const int hi = (a[i].qs[j] >> 4) | q5_high(a[i].qh, j + NTP_QK / 2);
            sumi += lo * b[i].qs[j] + hi * b[i].qs[j + NTP_QK / 2];
        }
        sum += (float)sumi * ntp__f16_to_f32(a[i].d) * ntp__f16_to_f32(b[i].d) +
               ntp__f16_to_f32(a[i].m) * ntp__f16_to_f32(b[i].s);
    }
    return sum;
}

static float dot_q8_0(int64_t k, const void *w, const void *x)
{
    const ntp_block_q8_0 *a = w;
    const ntp_block_q8_0 *b = x;
    float sum = 0;
    for (int64_t i = 0; i < k / NTP_QK; i++) {
        int sumi = 0;
        for (int j = 0; j < NTP_QK; j++)
            sumi += a[i].qs[j] * b[i].qs[j];
        sum += (float)sumi * ntp__f16_to_f32(a[i].d) * ntp__f16_to_f32(b[i].d);
    }
    return sum;
}

/* k-quant weight (type t, block bytes bsize) against Q8_K activations. */
static float dot_kquant(enum ntp_type t, size_t bsize, int64_t k, const void *w, const void *x)
{
    const ntp_dequantize_row_fn deq = ntp__quant_fns(t)->dequantize;
    const uint8_t *a = w;
    const ntp_block_q8_K *b = x;
    float wf[NTP_QK_K];
    float sum = 0;
    for (int64_t i = 0; i < k / NTP_QK_K; i++) {
        deq(a + (size_t)i * bsize, wf, NTP_QK_K);
        float s = 0;
        for (int j = 0; j < NTP_QK_K; j++)
            s += wf[j] * (float)b[i].qs[j];
        sum += s * b[i].d;
    }
    return sum;
}

static float dot_q2_k(int64_t k, const void *w, const void *x)
{
    return dot_kquant(NTP_TYPE_Q2_K, sizeof(ntp_block_q2_K), k, w, x);
}
static float dot_q3_k(int64_t k, const void *w, const void *x)
{
    return dot_kquant(NTP_TYPE_Q3_K, sizeof(ntp_block_q3_K), k, w, x);
}
static float dot_q4_k(int64_t k, const void *w, const void *x)
{
    return dot_kquant(NTP_TYPE_Q4_K, sizeof(ntp_block_q4_K), k, w, x);
}
static float dot_q5_k(int64_t k, const void *w, const void *x)
{
    return dot_kquant(NTP_TYPE_Q5_K, sizeof(ntp_block_q5_K), k, w, x);
}
static float dot_q6_k(int64_t k, const void *w, const void *x)
{
    return dot_kquant(NTP_TYPE_Q6_K, sizeof(ntp_block_q6_K), k, w, x);
}

/*
 * The reference matrix product: rows of W outside, tokens inside, so a
 * weight row is read from memory once per call and reused from cache for
 * every token of a prefill batch.
 */
static ntp_status matmul_ref_with(const struct ntp_matmul_args *a, ntp_vec_dot_fn dot)
{
    int64_t r0, r1;
    ntp__slice(a->n_rows, a->ith, a->nth, &r0, &r1);
    const uint8_t *w = a->w;
    const uint8_t *x = a->x;
    for (int64_t r = r0; r < r1; r++)
        for (int64_t t = 0; t < a->n_tok; t++)
            a->y[t * a->ldy + r] =
                dot(a->k, w + (size_t)r * a->w_stride, x + (size_t)t * a->x_stride);
    return NTP_OK;
}

/* One entry per computable type: the activation format and the dot product. */
static const struct {
    enum ntp_type wtype, act_type;
    ntp_vec_dot_fn dot;
} ref_dots[] = {
    {NTP_TYPE_F32, NTP_TYPE_F32, dot_f32},    {NTP_TYPE_F16, NTP_TYPE_F32, dot_f16},
    {NTP_TYPE_BF16, NTP_TYPE_F32, dot_bf16},  {NTP_TYPE_Q4_0, NTP_TYPE_Q8_0, dot_q4_0},
    {NTP_TYPE_Q4_1, NTP_TYPE_Q8_1, dot_q4_1}, {NTP_TYPE_Q5_0, NTP_TYPE_Q8_0, dot_q5_0},
    {NTP_TYPE_Q5_1, NTP_TYPE_Q8_1, dot_q5_1}, {NTP_TYPE_Q8_0, NTP_TYPE_Q8_0, dot_q8_0},
    {NTP_TYPE_Q2_K, NTP_TYPE_Q8_K, dot_q2_k}, {NTP_TYPE_Q3_K, NTP_TYPE_Q8_K, dot_q3_k},
    {NTP_TYPE_Q4_K, NTP_TYPE_Q8_K, dot_q4_k}, {NTP_TYPE_Q5_K, NTP_TYPE_Q8_K, dot_q5_k},
    {NTP_TYPE_Q6_K, NTP_TYPE_Q8_K, dot_q6_k},
};

/*
 * The generic matmul looks its dot product up from the weight type, so one
 * function serves as matvec and matmul of every type.
 */
static ntp_status matmul_ref(const struct ntp_matmul_args *a)
{
    for (size_t i = 0; i < sizeof ref_dots / sizeof ref_dots[0]; i++)
        if (ref_dots[i].wtype == a->wtype)
            return matmul_ref_with(a, ref_dots[i].dot);
    return NTP_E_UNSUPPORTED;
}

void ntp__kernels_ref_fill(struct ntp_kernel_type table[NTP_TYPE_COUNT])
{
    memset(table, 0, sizeof(struct ntp_kernel_type) * NTP_TYPE_COUNT);
    for (size_t i = 0; i < sizeof ref_dots / sizeof ref_dots[0]; i++) {
        struct ntp_kernel_type *e = &table[ref_dots[i].wtype];
        const enum ntp_type at = ref_dots[i].act_type;
        const ntp_quant_fns *qf = at == NTP_TYPE_F32 ? NULL : ntp__quant_fns(at);
        if (at != NTP_TYPE_F32 && (qf == NULL || qf->quantize == NULL))
            continue; /* no activation quantizer: the type stays uncomputable */
        if (at != NTP_TYPE_F32 && at != ref_dots[i].wtype && ref_dots[i].wtype >= NTP_TYPE_Q2_K) {
            const ntp_quant_fns *wf = ntp__quant_fns(ref_dots[i].wtype);
            if (wf == NULL || wf->dequantize == NULL)
                continue; /* the k-quant dot needs the weight dequantizer */
        }
        e->act_type = at;
        e->quantize_act = qf ? qf->quantize : NULL;
        e->vec_dot = ref_dots[i].dot;
        e->matvec = matmul_ref;
        e->matmul = matmul_ref;
    }
}
