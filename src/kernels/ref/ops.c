/*
 * ops.c - reference float operations of a transformer layer (norms,
 * activation, softmax). Accumulations are in double where a long sum would
 * otherwise lose digits against the numpy reference.
 */
#include "kernels/kernels.h"

#include <math.h>

/*
 * Eight partial sums, so that the compiler keeps them in vector lanes: one
 * chain of dependent adds made this a visible share of prefill (2.4 % of
 * pp512's samples, TinyLlama Q4_K_M on AMX).
 */
void ntp__rmsnorm_f32(float *y, const float *x, const float *w, int64_t n, float eps)
{
    double part[8] = {0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++)
            part[j] += (double)x[i + j] * x[i + j];
    double ss = 0;
    for (; i < n; i++)
        ss += (double)x[i] * x[i];
    for (int j = 0; j < 8; j++)
        ss += part[j];
    const float scale = (float)(1.0 / sqrt(ss / (double)n + eps));
    for (i = 0; i < n; i++)
        y[i] = w ? x[i] * scale * w[i] : x[i] * scale;
}

void ntp__swiglu_f32(float *y, const float *g, const float *u, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        y[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

/*
 * gelu(x) = x/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), the tanh form
 * that ggml's GELU and Gemma's gelu_pytorch_tanh use.
 */
void ntp__geglu_f32(float *y, const float *g, const float *u, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        const float x = g[i];
        y[i] =
            0.5f * x * (1.0f + tanhf(0.7978845608028654f * x * (1.0f + 0.044715f * x * x))) * u[i];
    }
}

/* x[i] = exp(x[i] - m), summed in double. */
static double exp_sum(float *x, int64_t n, float m)
{
    double sum = 0;
    for (int64_t i = 0; i < n; i++) {
        x[i] = expf(x[i] - m);
        sum += x[i];
    }
    return sum;
}

float ntp__exp_sum_ref(float *x, int64_t n, float m)
{
    return (float)exp_sum(x, n, m);
}

float ntp__max_f32_ref(const float *x, int64_t n, float m)
{
    for (int64_t i = 0; i < n; i++)
        m = x[i] > m ? x[i] : m;
    return m;
}

void ntp__softmax_f32(float *x, int64_t n)
{
    const float max = ntp__max_f32_ref(x, n, -INFINITY);
    const float inv = (float)(1.0 / exp_sum(x, n, max));
    for (int64_t i = 0; i < n; i++)
        x[i] *= inv;
}

void ntp__add_f32(float *y, const float *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        y[i] += x[i];
}

float ntp__dot_f32(const float *a, const float *b, int64_t n)
{
    double sum = 0;
    for (int64_t i = 0; i < n; i++)
        sum += (double)a[i] * b[i];
    return (float)sum;
}
