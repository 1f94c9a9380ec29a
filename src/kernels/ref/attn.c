/*
 * attn.c - the reference attention of one query head over the KV cache
 * (kernels.h, struct ntp_attn_args): scores, softmax, weighted sum of values;
 * the scores of a quantized key cache, which every ISA shares; the
 * conversion of cache rows to floats; and the Hadamard rotation of a
 * quantized cache's heads.
 */
#include "core/half.h"
#include "kernels/blocks.h"
#include "kernels/kernels.h"

#include <math.h>

/* Element i of a cache row of type kv_type, dequantized as ggml does. */
static inline float kv_elem(enum ntp_type kv_type, const void *row, int64_t i)
{
    switch (kv_type) {
    case NTP_TYPE_F16:
        return ntp__f16_to_f32(((const ntp_f16 *)row)[i]);
    case NTP_TYPE_Q8_0: {
        const ntp_block_q8_0 *b = (const ntp_block_q8_0 *)row + i / NTP_QK;
        return b->qs[i % NTP_QK] * ntp__f16_to_f32(b->d);
    }
    case NTP_TYPE_Q4_0: {
        const ntp_block_q4_0 *b = (const ntp_block_q4_0 *)row + i / NTP_QK;
        const int j = (int)(i % NTP_QK);
        const int q = j < NTP_QK / 2 ? b->qs[j] & 15 : b->qs[j - NTP_QK / 2] >> 4;
        return (q - 8) * ntp__f16_to_f32(b->d);
    }
    default:
        return ((const float *)row)[i];
    }
}

void ntp__attn_scores_quant(const struct ntp_attn_args *a)
{
    a->kern->type[a->kv_type].quantize_act(a->q, a->q_dot, a->hdk);
    const struct ntp_matmul_args m = {
        .wtype = a->kv_type,
        .w = a->k,
        .w_stride = a->kv_stride,
        .n_rows = a->n_pos,
        .k = a->hdk,
        .x = a->q_dot,
        .n_tok = 1,
        .y = a->score,
        .ldy = a->n_pos,
        .ith = 0,
        .nth = 1,
    };
    /* Cannot fail: every table multiplies Q8_0 and Q4_0 rows of whole blocks in the file's
       layout, and the reference takes over from a kernel that declines. */
    (void)ntp__kernels_matmul(a->kern, &m);
    for (int64_t p = 0; p < a->n_pos; p++)
        a->score[p] *= a->scale;
}

void ntp__attn_ref(const struct ntp_attn_args *a)
{
    const uint8_t *k = a->k, *v = a->v;
    if (ntp__kv_quantized(a->kv_type)) {
        ntp__attn_scores_quant(a);
    } else {
        for (int64_t p = 0; p < a->n_pos; p++) {
            const void *kr = k + (size_t)p * a->kv_stride;
            float d = 0;
            for (int64_t i = 0; i < a->hdk; i++)
                d += a->q[i] * kv_elem(a->kv_type, kr, i);
            a->score[p] = d * a->scale;
        }
    }
    ntp__softmax_f32(a->score, a->n_pos);
    for (int64_t i = 0; i < a->hdv; i++)
        a->out[i] = 0;
    for (int64_t p = 0; p < a->n_pos; p++) {
        const void *vr = v + (size_t)p * a->kv_stride;
        for (int64_t i = 0; i < a->hdv; i++)
            a->out[i] += a->score[p] * kv_elem(a->kv_type, vr, i);
    }
}

void ntp__kv_to_f32_ref(enum ntp_type kv_type, const void *x, float *y, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        y[i] = kv_elem(kv_type, x, i);
}

void ntp__hadamard_f32(float *x, int64_t n)
{
    /* The fast transform: log2(n) rounds of sums and differences of pairs h apart. */
    for (int64_t h = 1; h < n; h *= 2)
        for (int64_t i = 0; i < n; i += 2 * h)
            for (int64_t j = i; j < i + h; j++) {
                const float a = x[j], b = x[j + h];
                x[j] = a + b;
                x[j + h] = a - b;
            }
    const float scale = 1.0f / sqrtf((float)n);
    for (int64_t i = 0; i < n; i++)
        x[i] *= scale;
}
