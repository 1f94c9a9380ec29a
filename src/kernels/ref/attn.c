/*
 * attn.c - the reference attention of one query head over the KV cache
 * (kernels.h, struct ntp_attn_args): scores, softmax, weighted sum of values;
 * and the conversion of cache rows to floats.
 */
#include "core/half.h"
#include "kernels/kernels.h"

/* Element i of a cache row of type kv_type. */
static inline float kv_elem(enum ntp_type kv_type, const void *row, int64_t i)
{
    return kv_type == NTP_TYPE_F16 ? ntp__f16_to_f32(((const ntp_f16 *)row)[i])
                                   : ((const float *)row)[i];
}

void ntp__attn_ref(const struct ntp_attn_args *a)
{
    const uint8_t *k = a->k, *v = a->v;
    for (int64_t p = 0; p < a->n_pos; p++) {
        const void *kr = k + (size_t)p * a->kv_stride;
        float d = 0;
        for (int64_t i = 0; i < a->hdk; i++)
            d += a->q[i] * kv_elem(a->kv_type, kr, i);
        a->score[p] = d * a->scale;
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
