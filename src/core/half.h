/*
 * half.h - IEEE binary16 and bfloat16 conversions, bit-exact with ggml's
 * scalar versions (round to nearest even, NaN kept quiet). static inline: used
 * by kernels of every ISA and by the GGUF tools.
 */
#ifndef NTP_HALF_H
#define NTP_HALF_H

#include <stdint.h>
#include <string.h>

typedef uint16_t ntp_f16; /* IEEE binary16 bits */
typedef uint16_t ntp_bf16; /* upper half of an IEEE binary32 */

static inline uint32_t ntp__f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static inline float ntp__f32_from_bits(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* binary16 -> binary32, exact for every input (subnormals, infinities, NaN). */
static inline float ntp__f16_to_f32(ntp_f16 h)
{
    const uint32_t w = (uint32_t)h << 16;
    const uint32_t sign = w & 0x80000000u;
    const uint32_t two_w = w + w;
    /* Normal numbers: shift the exponent and mantissa into place and rescale. */
    const uint32_t exp_offset = 0xE0u << 23;
    const float exp_scale = 0x1.0p-112f;
    const float normalized = ntp__f32_from_bits((two_w >> 4) + exp_offset) * exp_scale;
    /* Subnormals: build 0.5 + m*2^-24 by bits and subtract 0.5. */
    const uint32_t magic_mask = 126u << 23;
    const float magic_bias = 0.5f;
    const float denormalized = ntp__f32_from_bits((two_w >> 17) | magic_mask) - magic_bias;
    const uint32_t denormalized_cutoff = 1u << 27;
    const uint32_t result =
        sign | (two_w < denormalized_cutoff ? ntp__f32_bits(denormalized)
                                            : ntp__f32_bits(normalized));
    return ntp__f32_from_bits(result);
}

/* binary32 -> binary16, round to nearest even, overflow to infinity, NaN stays NaN. */
static inline ntp_f16 ntp__f32_to_f16(float f)
{
    const float scale_to_inf = 0x1.0p+112f;
    const float scale_to_zero = 0x1.0p-110f;
    float base = (f < 0 ? -f : f) * scale_to_inf;
    base *= scale_to_zero;
    const uint32_t w = ntp__f32_bits(f);
    const uint32_t shl1_w = w + w;
    const uint32_t sign = w & 0x80000000u;
    uint32_t bias = shl1_w & 0xFF000000u;
    if (bias < 0x71000000u)
        bias = 0x71000000u;
    base = ntp__f32_from_bits((bias >> 1) + 0x07800000u) + base;
    const uint32_t bits = ntp__f32_bits(base);
    const uint32_t exp_bits = (bits >> 13) & 0x00007C00u;
    const uint32_t mantissa_bits = bits & 0x00000FFFu;
    const uint32_t nonsign = exp_bits + mantissa_bits;
    return (ntp_f16)((sign >> 16) | (shl1_w > 0xFF000000u ? 0x7E00u : nonsign));
}

static inline float ntp__bf16_to_f32(ntp_bf16 h)
{
    return ntp__f32_from_bits((uint32_t)h << 16);
}

/* Round to nearest even; NaN becomes a quiet NaN (as ggml does). */
static inline ntp_bf16 ntp__f32_to_bf16(float f)
{
    uint32_t u = ntp__f32_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u)
        return (ntp_bf16)((u >> 16) | 64);
    return (ntp_bf16)((u + (0x7fffu + ((u >> 16) & 1))) >> 16);
}

#endif /* NTP_HALF_H */
