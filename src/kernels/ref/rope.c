/*
 * rope.c - rotary position embedding as ggml computes it (ggml_rope_ext):
 * pair i of a head turns by pos * base^(-2i/n_rot), divided by a per-pair
 * frequency factor when the model has one (llama3 rope_freqs), interpolated
 * by freq_scale (linear scaling) and, with YaRN, blended between
 * interpolation and extrapolation by a ramp over the pairs.
 */
#include "kernels/kernels.h"

#include <math.h>

/* The pair index where YaRN's ramp passes n_rot * log(ctx / (beta * 2π)) / (2 log base). */
static float yarn_corr_dim(int64_t n_rot, int64_t n_ctx_orig, float beta, float base)
{
    return (float)n_rot * logf((float)n_ctx_orig / (beta * 2.0f * (float)M_PI)) /
           (2.0f * logf(base));
}

/* 1 below the ramp's start, 0 above its end, linear between (i0 is the element index). */
static float yarn_ramp(float low, float high, int64_t i0)
{
    const float y = ((float)(i0 / 2) - low) / fmaxf(0.001f, high - low);
    return 1.0f - fminf(1.0f, fmaxf(0.0f, y));
}

void ntp__rope_cache_f32(float *cs, int64_t pos, const struct ntp_rope_cfg *c)
{
    const float theta_scale = powf(c->freq_base, -2.0f / (float)c->n_rot);
    float low = 0, high = 0;
    if (c->ext_factor != 0.0f) {
        low =
            fmaxf(0.0f, floorf(yarn_corr_dim(c->n_rot, c->n_ctx_orig, c->beta_fast, c->freq_base)));
        high = fminf((float)(c->n_rot - 1),
                     ceilf(yarn_corr_dim(c->n_rot, c->n_ctx_orig, c->beta_slow, c->freq_base)));
    }
    /* theta is advanced by repeated multiplication, as ggml does, to round the same way. */
    float theta = (float)pos;
    for (int64_t i0 = 0; i0 < c->n_rot; i0 += 2) {
        const float ff = c->freq_factors ? c->freq_factors[i0 / 2] : 1.0f;
        const float theta_extrap = theta / ff;
        float th = c->freq_scale * theta_extrap;
        float mscale = c->attn_factor;
        if (c->ext_factor != 0.0f) {
            const float mix = yarn_ramp(low, high, i0) * c->ext_factor;
            th = th * (1 - mix) + theta_extrap * mix;
            mscale *= 1.0f + 0.1f * logf(1.0f / c->freq_scale);
        }
        cs[i0] = cosf(th) * mscale;
        cs[i0 + 1] = sinf(th) * mscale;
        theta *= theta_scale;
    }
}

void ntp__rope_apply_f32(float *x, const float *cs, int64_t n_rot, bool neox)
{
    /* NeoX pairs element i with i + n_rot/2; the original layout pairs neighbours. */
    const int64_t half = n_rot / 2;
    for (int64_t i = 0; i < half; i++) {
        const int64_t a = neox ? i : 2 * i, b = neox ? i + half : 2 * i + 1;
        const float c = cs[2 * i], s = cs[2 * i + 1];
        const float x0 = x[a], x1 = x[b];
        x[a] = x0 * c - x1 * s;
        x[b] = x0 * s + x1 * c;
    }
}
