/*
 * test_quants.c - the reference block formats (kernels/ref/quants.c):
 *  1. known bytes -> known values: blocks built by hand here, expected floats
 *     worked out by hand from the format definitions (kernels/blocks.h);
 *  2. quantize -> dequantize error on random data against a per-format bound;
 *  3. edge cases: zeros, constants, tiny and large values, bad sizes, n = 0;
 *  4. F16/BF16 round trips of every representable value;
 *  5. Q8_K bsums.
 */
#include "core/core.h"
#include "core/half.h"
#include "kernels/blocks.h"
#include "kernels/quant.h"
#include "test.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Binary16 encodings of the scales used in the hand-made blocks. */
#define H_0_25 0x3400
#define H_0_5  0x3800
#define H_1    0x3C00
#define H_2    0x4000
#define H_M1   0xBC00

/* Dequantize one hand-made block of type t into out (block_size floats). */
static void deq(enum ntp_type t, const void *blk, float *out)
{
    CHECK_OK(ntp__dequantize_row(t, blk, out, ntp_type_get_traits(t)->block_size));
}

/* Compare y[i] with want(i) for all i; counts mismatches into one CHECK. */
static int count_mismatch(const float *y, const float *want, int n, const char *what)
{
    int bad = 0;
    for (int i = 0; i < n; i++) {
        if (y[i] != want[i]) {
            if (bad < 5)
                fprintf(stderr, "%s: element %d is %g, expected %g\n", what, i, y[i], want[i]);
            bad++;
        }
    }
    return bad;
}

/* ------------------------------------------------------ 1. known bytes */

static void test_known_legacy(void)
{
    float y[32], want[32];

    /* Q4_0, d = 0.5, qs[j] = j | (15 - j) << 4: x[j] = (j - 8) / 2, x[16 + j] = (7 - j) / 2. */
    ntp_block_q4_0 b40 = {.d = H_0_5};
    for (int j = 0; j < 16; j++)
        b40.qs[j] = (uint8_t)(j | (15 - j) << 4);
    deq(NTP_TYPE_Q4_0, &b40, y);
    CHECK(y[0] == -4.0f && y[15] == 3.5f && y[16] == 3.5f && y[31] == -4.0f);
    for (int j = 0; j < 16; j++) {
        want[j] = (j - 8) * 0.5f;
        want[16 + j] = (7 - j) * 0.5f;
    }
    CHECK(count_mismatch(y, want, 32, "Q4_0") == 0);
    /* Negative scale flips signs: d = -1, qs = 0x0F: low nibble 15 -> -7, high 0 -> +8. */
    b40.d = H_M1;
    memset(b40.qs, 0x0F, sizeof b40.qs);
    deq(NTP_TYPE_Q4_0, &b40, y);
    CHECK(y[3] == -7.0f && y[19] == 8.0f);

    /* Q4_1, d = 0.25, m = -1, same nibbles: x[j] = j/4 - 1, x[16 + j] = (15 - j)/4 - 1. */
    ntp_block_q4_1 b41 = {.d = H_0_25, .m = H_M1};
    for (int j = 0; j < 16; j++)
        b41.qs[j] = (uint8_t)(j | (15 - j) << 4);
    deq(NTP_TYPE_Q4_1, &b41, y);
    CHECK(y[0] == -1.0f && y[15] == 2.75f && y[16] == 2.75f && y[31] == -1.0f);
    for (int j = 0; j < 16; j++) {
        want[j] = j * 0.25f - 1.0f;
        want[16 + j] = (15 - j) * 0.25f - 1.0f;
    }
    CHECK(count_mismatch(y, want, 32, "Q4_1") == 0);

    /*
     * Q5_0, d = 1, qs as Q4_0, qh = LE 0xAAAA5555: fifth bit set for even j
     * (bits 0..15 = 0x5555) and for odd j of the upper half (bits 16..31 = 0xAAAA).
     * x[j] = (j | 16*(j even)) - 16, x[16 + j] = ((15 - j) | 16*(j odd)) - 16.
     */
    ntp_block_q5_0 b50 = {.d = H_1, .qh = {0x55, 0x55, 0xAA, 0xAA}};
    for (int j = 0; j < 16; j++)
        b50.qs[j] = (uint8_t)(j | (15 - j) << 4);
    deq(NTP_TYPE_Q5_0, &b50, y);
    CHECK(y[0] == 0.0f && y[1] == -15.0f && y[2] == 2.0f && y[16] == -1.0f && y[17] == 14.0f);
    for (int j = 0; j < 16; j++) {
        want[j] = (float)((j | (j % 2 == 0 ? 16 : 0)) - 16);
        want[16 + j] = (float)(((15 - j) | (j % 2 == 1 ? 16 : 0)) - 16);
    }
    CHECK(count_mismatch(y, want, 32, "Q5_0") == 0);

    /* Q5_1, d = 0.5, m = 2, qh = LE 0x800000FF: fifth bit for j = 0..7 and for element 31. */
    ntp_block_q5_1 b51 = {.d = H_0_5, .m = H_2, .qh = {0xFF, 0x00, 0x00, 0x80}};
    for (int j = 0; j < 16; j++)
        b51.qs[j] = (uint8_t)(j | (15 - j) << 4);
    deq(NTP_TYPE_Q5_1, &b51, y);
    /* x[0] = 16/2 + 2, x[8] = 8/2 + 2, x[31] = (0 | 16)/2 + 2, x[30] = 1/2 + 2. */
    CHECK(y[0] == 10.0f && y[8] == 6.0f && y[31] == 10.0f && y[30] == 2.5f);
    for (int j = 0; j < 16; j++) {
        want[j] = (j | (j < 8 ? 16 : 0)) * 0.5f + 2.0f;
        want[16 + j] = ((15 - j) | (j == 15 ? 16 : 0)) * 0.5f + 2.0f;
    }
    CHECK(count_mismatch(y, want, 32, "Q5_1") == 0);
}

static void test_known_q8(void)
{
    float y[256], want[256];

    /* Q8_0, d = 0.5, qs[j] = 4j - 64 except the extremes -127 and 127. */
    ntp_block_q8_0 b80 = {.d = H_0_5};
    for (int j = 0; j < 32; j++)
        b80.qs[j] = (int8_t)(4 * j - 64);
    b80.qs[0] = -127;
    b80.qs[31] = 127;
    deq(NTP_TYPE_Q8_0, &b80, y);
    CHECK(y[0] == -63.5f && y[1] == -30.0f && y[16] == 0.0f && y[31] == 63.5f);

    /* Q8_1 dequantizes as Q8_0 (s is only for dot products): d = 0.25. */
    ntp_block_q8_1 b81 = {.d = H_0_25, .s = H_2};
    for (int j = 0; j < 32; j++)
        b81.qs[j] = (int8_t)(j - 16);
    deq(NTP_TYPE_Q8_1, &b81, y);
    CHECK(y[0] == -4.0f && y[17] == 0.25f && y[31] == 3.75f);
    /* Quantizing x[j] = j - 16: amax 16, codes are round(x * 127/16) (x = -16 -> -127), the
     * +-k pairs cancel, so sum(qs) = -127 and s = d * -127 = -16. */
    float x[32];
    for (int j = 0; j < 32; j++)
        x[j] = (float)(j - 16);
    CHECK_OK(ntp__quantize_row(NTP_TYPE_Q8_1, x, &b81, 32));
    CHECK(b81.qs[0] == -127 && b81.qs[16] == 0 && b81.qs[1] == -119); /* 15 * 7.9375 */
    CHECK(ntp__f16_to_f32(b81.s) == -16.0f);
    CHECK(ntp__f16_to_f32(b81.d) == ntp__f16_to_f32(ntp__f32_to_f16(16.0f / 127)));

    /* Q8_K, float d = 0.5, qs[j] = j - 128 (the full int8 range). */
    static ntp_block_q8_K b8k;
    b8k.d = 0.5f;
    for (int j = 0; j < 256; j++) {
        b8k.qs[j] = (int8_t)(j - 128);
        want[j] = (j - 128) * 0.5f;
    }
    deq(NTP_TYPE_Q8_K, &b8k, y);
    CHECK(y[0] == -64.0f && y[255] == 63.5f);
    CHECK(count_mismatch(y, want, 256, "Q8_K") == 0);
}

static void test_known_q2_K(void)
{
    float y[256], want[256];
    /*
     * d = 0.5, dmin = 0.25, sub-block s has scale s and min 15 - s
     * (scales[s] = s | (15 - s) << 4). Codes: qs bytes 0xE4 (odd l) hold codes
     * 0,1,2,3 in bit pairs 0..3, 0x1B (even l) hold 3,2,1,0. Element
     * e = 128h + 32k + l has code k (odd l) or 3 - k (even l), and
     * x = 0.5 * (e/16) * code - 0.25 * (15 - e/16).
     */
    ntp_block_q2_K b = {.d = H_0_5, .dmin = H_0_25};
    for (int s = 0; s < 16; s++)
        b.scales[s] = (uint8_t)(s | (15 - s) << 4);
    for (int i = 0; i < 64; i++)
        b.qs[i] = (i % 32) % 2 ? 0xE4 : 0x1B;
    deq(NTP_TYPE_Q2_K, &b, y);
    /* e=0: s 0, l 0 even, k 0 -> code 3: 0 - 3.75. e=41: s 2, l 9 odd, k 1 -> code 1: 1 - 3.25.
     * e=200: s 12, k 2, l 8 even -> code 1: 6 - 0.75. e=255: s 15, k 3, l 31 odd -> 3: 22.5. */
    CHECK(y[0] == -3.75f && y[41] == -2.25f && y[200] == 5.25f && y[255] == 22.5f);
    for (int e = 0; e < 256; e++) {
        const int s = e / 16, k = (e % 128) / 32, l = e % 32;
        const int code = l % 2 ? k : 3 - k;
        want[e] = 0.5f * s * code - 0.25f * (15 - s);
    }
    CHECK(count_mismatch(y, want, 256, "Q2_K") == 0);
}

static void test_known_q3_K(void)
{
    float y[256], want[256];
    /*
     * d = 1. Stored 6-bit scales v_s = 24 + s (signed scale s - 8), except
     * v_3 = 59 (signed 27), which has the same low nibble as 27 but high bits 3.
     * Low nibbles: scales[j] = lo(v_j) | lo(v_{j+8}) << 4 = (8 + j) | j << 4.
     * High bits: scales[8 + i] holds hi(v_i), hi(v_{4+i}), hi(v_{8+i}), hi(v_{12+i}) in bit
     * pairs 0..3 = 1, 1, 2, 2 -> 0xA5; for i = 3 the first pair is 3 -> 0xA7.
     * Codes: low two bits from qs = 0xE4 everywhere -> element e has low bits k = (e%128)/32;
     * hmask[l] = 0x55 for odd l, 0xAA for even l: the high bit of element e = 32m + l is bit m of
     * hmask[l]; set means q - 4 = k, clear means q - 4 = k - 4.
     */
    ntp_block_q3_K b = {.d = H_1};
    for (int j = 0; j < 8; j++)
        b.scales[j] = (uint8_t)((8 + j) | j << 4);
    for (int i = 0; i < 4; i++)
        b.scales[8 + i] = 0xA5;
    b.scales[11] = 0xA7;
    memset(b.qs, 0xE4, sizeof b.qs);
    for (int l = 0; l < 32; l++)
        b.hmask[l] = l % 2 ? 0x55 : 0xAA;
    deq(NTP_TYPE_Q3_K, &b, y);
    /* e=0: scale -8, k 0, l 0 even, bit 0 of 0xAA clear -> -4: 32. e=1: bit set -> 0.
     * e=50: s 3 (27), k 1, l 18 even, bit 1 of 0xAA set -> 1: 27. e=255: s 15 (7), k 3,
     * l 31 odd, bit 7 of 0x55 clear -> -1: -7. */
    CHECK(y[0] == 32.0f && y[1] == 0.0f && y[50] == 27.0f && y[255] == -7.0f);
    for (int e = 0; e < 256; e++) {
        const int s = e / 16, k = (e % 128) / 32, l = e % 32, m = e / 32;
        const int scale = s == 3 ? 27 : s - 8;
        const int hmask = l % 2 ? 0x55 : 0xAA;
        want[e] = (float)(scale * (((hmask >> m) & 1) ? k : k - 4));
    }
    CHECK(count_mismatch(y, want, 256, "Q3_K") == 0);
}

/*
 * Q4_K/Q5_K scales used below: sc = {1, 2, 3, 63, 17, 33, 49, 60},
 * mn = {0, 5, 10, 40, 21, 42, 63, 7}. Packed by hand:
 *   bytes 0-3: sc0..3 | top two bits of sc4..7 (1, 2, 3, 3) << 6
 *   bytes 4-7: mn0..3 | top two bits of mn4..7 (1, 2, 3, 0) << 6
 *   bytes 8-11: low nibble of sc4..7 (1, 1, 1, 12) | low nibble of mn4..7 (5, 10, 15, 7) << 4
 */
static const uint8_t k4_scales[12] = {0x41, 0x82, 0xC3, 0xFF, 0x40, 0x85,
                                      0xCA, 0x28, 0x51, 0xA1, 0xF1, 0x7C};
static const int k4_sc[8] = {1, 2, 3, 63, 17, 33, 49, 60};
static const int k4_mn[8] = {0, 5, 10, 40, 21, 42, 63, 7};

static void test_known_q4_K(void)
{
    float y[256], want[256];
    /*
     * d = 0.5, dmin = 1. qs[32c + l] = (l & 15) | (15 - (l & 15)) << 4: element 64c + l
     * has code l & 15, element 64c + 32 + l has 15 - (l & 15). x = 0.5 * sc * q - mn.
     */
    ntp_block_q4_K b = {.d = H_0_5, .dmin = H_1};
    memcpy(b.scales, k4_scales, 12);
    for (int i = 0; i < 128; i++)
        b.qs[i] = (uint8_t)((i & 15) | (15 - (i & 15)) << 4);
    deq(NTP_TYPE_Q4_K, &b, y);
    /* e=33: s 1, q 14: 14 - 5. e=100: s 3, q 15-4: 0.5*63*11 - 40. e=130: s 4, q 2: 17 - 21.
     * e=200: s 6, q 8: 196 - 63. e=255: s 7, q 0: -7. */
    CHECK(y[0] == 0.0f && y[33] == 9.0f && y[100] == 306.5f && y[130] == -4.0f);
    CHECK(y[200] == 133.0f && y[255] == -7.0f);
    for (int e = 0; e < 256; e++) {
        const int s = e / 32, l = e % 32;
        const int q = s % 2 ? 15 - (l & 15) : l & 15;
        want[e] = 0.5f * k4_sc[s] * q - (float)k4_mn[s];
    }
    CHECK(count_mismatch(y, want, 256, "Q4_K") == 0);
}

static void test_known_q5_K(void)
{
    float y[256], want[256];
    /* As Q4_K plus qh[l] = 0xAA (odd l) or 0x55 (even l): bit s of qh[l] is the fifth bit of
     * element 32s + l, so it is set when s and l are both odd or both even. */
    ntp_block_q5_K b = {.d = H_0_5, .dmin = H_1};
    memcpy(b.scales, k4_scales, 12);
    for (int i = 0; i < 128; i++)
        b.qs[i] = (uint8_t)((i & 15) | (15 - (i & 15)) << 4);
    for (int l = 0; l < 32; l++)
        b.qh[l] = l % 2 ? 0xAA : 0x55;
    deq(NTP_TYPE_Q5_K, &b, y);
    /* e=0: q 16: 8. e=33: q 30: 30 - 5. e=130: s 4, l 2, q 18: 153 - 21. e=255: q 16: 480 - 7. */
    CHECK(y[0] == 8.0f && y[33] == 25.0f && y[130] == 132.0f && y[255] == 473.0f);
    for (int e = 0; e < 256; e++) {
        const int s = e / 32, l = e % 32;
        const int q = (s % 2 ? 15 - (l & 15) : l & 15) + (s % 2 == l % 2 ? 16 : 0);
        want[e] = 0.5f * k4_sc[s] * q - (float)k4_mn[s];
    }
    CHECK(count_mismatch(y, want, 256, "Q5_K") == 0);
}

static void test_known_q6_K(void)
{
    float y[256], want[256];
    /*
     * d = 0.25; scales = -128, 10s - 70 for s = 1..14, 127. ql[i] = i; qh = 0xE4 everywhere so
     * the high two bits of element 128h + 32g + l are g. Low four bits: g = 0: ql[64h + l] & 15,
     * g = 1: ql[64h + 32 + l] & 15, g = 2: ql[64h + l] >> 4, g = 3: ql[64h + 32 + l] >> 4.
     * x = 0.25 * scale * (q - 32).
     */
    ntp_block_q6_K b = {.d = H_0_25};
    int sc[16];
    for (int s = 0; s < 16; s++)
        sc[s] = s == 0 ? -128 : s == 15 ? 127 : 10 * s - 70;
    for (int s = 0; s < 16; s++)
        b.scales[s] = (int8_t)sc[s];
    for (int i = 0; i < 128; i++)
        b.ql[i] = (uint8_t)i;
    memset(b.qh, 0xE4, sizeof b.qh);
    deq(NTP_TYPE_Q6_K, &b, y);
    /* e=0: q 0: 0.25*-128*-32. e=47: ql[47] & 15 = 15, q 31: 0.25*-50*-1.
     * e=200: ql[72] >> 4 = 4, q 36: 0.25*50*4. e=255: ql[127] >> 4 = 7, q 55: 0.25*127*23. */
    CHECK(y[0] == 1024.0f && y[47] == 12.5f && y[200] == 50.0f && y[255] == 730.25f);
    for (int e = 0; e < 256; e++) {
        const int h = e / 128, g = (e % 128) / 32, l = e % 32;
        const int byte = 64 * h + (g % 2 ? 32 : 0) + l;
        const int low = g < 2 ? byte & 15 : byte >> 4;
        want[e] = 0.25f * sc[e / 16] * ((low | g << 4) - 32);
    }
    CHECK(count_mismatch(y, want, 256, "Q6_K") == 0);
}

/* ---------------------------------------------------- 2. random data error */

/* splitmix64: small, seedable, the same on every platform. */
static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double rng_uniform(uint64_t *s)
{
    return ((double)(rng_next(s) >> 11) + 0.5) * 0x1p-53;
}

/* Standard normal samples (Box-Muller) times scale; with outliers, 1 in 64 is 8x larger. */
static void fill_normal(float *x, int n, uint64_t seed, float scale, bool outliers)
{
    uint64_t s = seed;
    for (int i = 0; i < n; i++) {
        const double u1 = rng_uniform(&s), u2 = rng_uniform(&s);
        double v = sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
        if (outliers && rng_next(&s) % 64 == 0)
            v *= 8.0;
        x[i] = (float)(v * scale);
    }
}

/* Quantize x, dequantize into y; returns rmse(y - x) / rms(x). */
static double roundtrip_rel_rmse(enum ntp_type t, const float *x, float *y, int n)
{
    size_t bytes;
    CHECK_OK(ntp_type_row_size(t, n, &bytes));
    void *q = malloc(bytes);
    CHECK_OK(ntp__quantize_row(t, x, q, n));
    CHECK_OK(ntp__dequantize_row(t, q, y, n));
    free(q);
    double se = 0.0, sx = 0.0;
    for (int i = 0; i < n; i++) {
        se += ((double)y[i] - x[i]) * ((double)y[i] - x[i]);
        sx += (double)x[i] * x[i];
    }
    return sx > 0.0 ? sqrt(se / sx) : sqrt(se / n);
}

/*
 * Bounds on rmse(error) / rms(data) for N(0, 1) samples ("normal"; the same
 * bound holds for N(0, 1e4^2)) and for N(0, 1) with 1 in 64 samples 8x larger
 * ("outliers"), 4096 samples per seed, seeds 1-4. Measured worst values are in
 * brackets; the bounds leave about 15-20% margin. A b-bit uniform quantizer
 * over a range R errs by about R / (2^b sqrt(12)), so each bit halves the
 * error; outliers widen the range of their block (hurting absmax formats
 * most, and Q8_K with its 256-element blocks more than Q8_0); formats with a
 * min spend no level on the empty side; the k-quants' searched scales and
 * mins beat plain absmax rounding at the same width.
 */
static const struct {
    enum ntp_type t;
    double normal;   /* bound for normal data */
    double outliers; /* bound for data with outliers */
    const char *why;
} error_bounds[] = {
    {NTP_TYPE_F32, 0.0, 0.0, "exact copy [0, 0]"},
    {NTP_TYPE_F16, 0.0003, 0.0003, "11-bit significand [0.00021, 0.00024]"},
    {NTP_TYPE_BF16, 0.0022, 0.0022, "8-bit significand [0.00168, 0.00176]"},
    {NTP_TYPE_Q8_0, 0.0065, 0.011, "255 levels, absmax of 32 [0.00547, 0.00954]"},
    {NTP_TYPE_Q8_1, 0.0065, 0.011, "same codes as Q8_0 [0.00547, 0.00954]"},
    {NTP_TYPE_Q8_K, 0.009, 0.025, "255 levels, absmax of 256 [0.00742, 0.02098]"},
    {NTP_TYPE_Q6_K, 0.021, 0.033, "64 levels, 8-bit scale per 16 [0.01775, 0.02775]"},
    {NTP_TYPE_Q5_1, 0.045, 0.058, "32 levels over min..max of 32 [0.03837, 0.04941]"},
    {NTP_TYPE_Q5_0, 0.051, 0.090, "32 levels, absmax of 32 [0.04328, 0.07748]"},
    {NTP_TYPE_Q5_K, 0.043, 0.057, "32 levels, searched scale+min per 32 [0.03651, 0.04845]"},
    {NTP_TYPE_Q4_1, 0.092, 0.120, "16 levels over min..max of 32 [0.07879, 0.10358]"},
    {NTP_TYPE_Q4_0, 0.100, 0.175, "16 levels, absmax of 32 [0.08672, 0.14986]"},
    {NTP_TYPE_Q4_K, 0.085, 0.110, "16 levels, searched scale+min per 32 [0.07260, 0.09508]"},
    {NTP_TYPE_Q3_K, 0.180, 0.240, "8 levels, searched signed scale per 16 [0.15257, 0.20405]"},
    {NTP_TYPE_Q2_K, 0.340, 0.400, "4 levels, searched scale+min per 16 [0.29630, 0.34423]"},
};

enum { N_RANDOM = 4096 };

/*
 * The data sets, seeds 1-4 of each: normal, outliers, normal * 1e4 (large values,
 * small enough that binary16 scales and mins stay finite).
 */
static const struct {
    float scale;
    bool outliers;
} datasets[] = {{1.0f, false}, {1.0f, true}, {1e4f, false}};

static void test_random_error(bool verbose)
{
    static float x[N_RANDOM], y[N_RANDOM];
    for (size_t f = 0; f < sizeof error_bounds / sizeof error_bounds[0]; f++) {
        double worst[3] = {0.0, 0.0, 0.0};
        int nonfinite = 0;
        for (int d = 0; d < 3; d++) {
            for (uint64_t seed = 1; seed <= 4; seed++) {
                fill_normal(x, N_RANDOM, seed, datasets[d].scale, datasets[d].outliers);
                const double e = roundtrip_rel_rmse(error_bounds[f].t, x, y, N_RANDOM);
                worst[d] = e > worst[d] ? e : worst[d];
                for (int i = 0; i < N_RANDOM; i++)
                    nonfinite += !isfinite(y[i]);
            }
        }
        const bool ok = fmax(worst[0], worst[2]) <= error_bounds[f].normal &&
                        worst[1] <= error_bounds[f].outliers;
        if (verbose || !ok || nonfinite)
            printf("%-5s relative rmse: normal %.5f, outliers %.5f, normal*1e4 %.5f (bounds "
                   "%.4f, %.4f: %s), %d non-finite\n",
                   ntp_type_name(error_bounds[f].t), worst[0], worst[1], worst[2],
                   error_bounds[f].normal, error_bounds[f].outliers, error_bounds[f].why,
                   nonfinite);
        CHECK(ok);
        CHECK(nonfinite == 0);
    }
}

/* ---------------------------------------------------------- 3. edge cases */

/* Report a failed check with a formatted message. */
static void fail(const char *fmt, const char *name, double a, double b)
{
    fprintf(stderr, fmt, name, a, b);
    ntp_test_failures++;
}

/* Every type with a reference implementation. */
static int supported_types(enum ntp_type *out)
{
    int n = 0;
    for (int t = 0; t < NTP_TYPE_COUNT; t++)
        if (ntp__quant_fns((enum ntp_type)t) != NULL)
            out[n++] = (enum ntp_type)t;
    return n;
}

/* Round trip n elements of x through t; returns the largest |y - x|, and -1 on non-finite y. */
static double roundtrip_max_err(enum ntp_type t, const float *x, float *y, int n)
{
    size_t bytes;
    CHECK_OK(ntp_type_row_size(t, n, &bytes));
    void *q = malloc(bytes);
    CHECK_OK(ntp__quantize_row(t, x, q, n));
    memset(y, 0xFF, (size_t)n * sizeof *y); /* NaN poison: every element must be written */
    CHECK_OK(ntp__dequantize_row(t, q, y, n));
    free(q);
    double worst = 0.0;
    for (int i = 0; i < n; i++) {
        if (!isfinite(y[i]))
            return -1.0;
        const double e = fabs((double)y[i] - x[i]);
        worst = e > worst ? e : worst;
    }
    return worst;
}

static void test_edge_values(void)
{
    enum ntp_type types[NTP_TYPE_COUNT];
    const int nt = supported_types(types);
    static float x[512], y[512];
    for (int i = 0; i < nt; i++) {
        const enum ntp_type t = types[i];
        const char *name = ntp_type_name(t);
        /* All zeros give exact zeros (no 0/0 anywhere). */
        memset(x, 0, sizeof x);
        const double ez = roundtrip_max_err(t, x, y, 512);
        if (ez != 0.0)
            fail("%s: zeros give error %g (%g)\n", name, ez, 0.0);
        /* Constant rows: within 1% (binary16 scales and 4..6-bit sub-scales). */
        const float consts[] = {0.7f, -3.0f, 1e4f};
        for (int c = 0; c < 3; c++) {
            for (int j = 0; j < 512; j++)
                x[j] = consts[c];
            const double e = roundtrip_max_err(t, x, y, 512);
            if (!(e >= 0.0 && e <= 0.01 * fabsf(consts[c])))
                fail("%s: constant %g gives error %g\n", name, consts[c], e);
        }
        /* Tiny values: scales underflow binary16; results stay finite and small. */
        const float tiny[] = {1e-6f, 1e-30f, 1e-40f};
        for (int c = 0; c < 3; c++) {
            fill_normal(x, 512, 7, tiny[c], false);
            const double e = roundtrip_max_err(t, x, y, 512);
            if (!(e >= 0.0 && e <= 10.0 * tiny[c]))
                fail("%s: tiny values %g give error %g\n", name, tiny[c], e);
        }
        /* NaN and infinity in the input must not crash (UBSan checks the conversions). */
        fill_normal(x, 512, 9, 1.0f, false);
        x[3] = NAN;
        x[300] = INFINITY;
        size_t bytes;
        CHECK_OK(ntp_type_row_size(t, 512, &bytes));
        void *q = malloc(bytes);
        CHECK_OK(ntp__quantize_row(t, x, q, 512));
        CHECK_OK(ntp__dequantize_row(t, q, y, 512));
        free(q);
    }
}

static void test_edge_args(void)
{
    static float x[512], y[512];
    static uint8_t q[1024];
    /* A row that is not a whole number of blocks. */
    CHECK_STATUS(ntp__quantize_row(NTP_TYPE_Q4_0, x, q, 33), NTP_E_INVALID_ARG);
    CHECK(strstr(ntp_last_error(), "Q4_0") != NULL && strstr(ntp_last_error(), "33") != NULL);
    CHECK_STATUS(ntp__dequantize_row(NTP_TYPE_Q4_K, q, y, 128), NTP_E_INVALID_ARG);
    CHECK_STATUS(ntp__quantize_row(NTP_TYPE_Q8_K, x, q, 255), NTP_E_INVALID_ARG);
    CHECK_STATUS(ntp__quantize_row(NTP_TYPE_F16, x, q, -1), NTP_E_INVALID_ARG);
    CHECK_STATUS(ntp__quantize_rows(NTP_TYPE_Q8_0, x, q, -1, 32), NTP_E_INVALID_ARG);
    CHECK_STATUS(ntp__quantize_rows(NTP_TYPE_Q8_0, x, q, 2, 48), NTP_E_INVALID_ARG);
    CHECK_STATUS(ntp__quantize_row(NTP_TYPE_Q8_0, NULL, q, 32), NTP_E_INVALID_ARG);
    /* n = 0 is fine and touches nothing. */
    memset(q, 0xA5, sizeof q);
    CHECK_OK(ntp__quantize_row(NTP_TYPE_Q4_K, x, q, 0));
    CHECK_OK(ntp__quantize_row(NTP_TYPE_Q4_K, NULL, NULL, 0));
    CHECK_OK(ntp__dequantize_row(NTP_TYPE_Q2_K, q, y, 0));
    CHECK_OK(ntp__quantize_rows(NTP_TYPE_Q4_0, x, q, 0, 64));
    CHECK(q[0] == 0xA5 && q[1023] == 0xA5);
    /* Types without a reference implementation, named in the message. */
    CHECK_STATUS(ntp__quantize_row(NTP_TYPE_IQ2_XXS, x, q, 256), NTP_E_UNSUPPORTED);
    CHECK(strstr(ntp_last_error(), "IQ2_XXS") != NULL);
    CHECK_STATUS(ntp__dequantize_row(NTP_TYPE_I32, q, y, 4), NTP_E_UNSUPPORTED);
    CHECK(strstr(ntp_last_error(), "I32") != NULL);
    CHECK_STATUS(ntp__quantize_row((enum ntp_type)4, x, q, 32), NTP_E_UNSUPPORTED);
    CHECK_STATUS(ntp__quantize_row((enum ntp_type)NTP_TYPE_COUNT, x, q, 32), NTP_E_UNSUPPORTED);
    CHECK(ntp__quant_fns((enum ntp_type) - 1) == NULL);
}

/* quantize_rows equals quantize_row per row; quantizing is deterministic. */
static void test_rows(void)
{
    static float x[3 * 512];
    static uint8_t a[3 * 512 * 4], b[3 * 512 * 4];
    enum ntp_type types[NTP_TYPE_COUNT];
    const int nt = supported_types(types);
    fill_normal(x, 3 * 512, 11, 1.0f, true);
    for (int i = 0; i < nt; i++) {
        size_t rb;
        CHECK_OK(ntp_type_row_size(types[i], 512, &rb));
        memset(a, 0, sizeof a);
        memset(b, 0xFF, sizeof b);
        CHECK_OK(ntp__quantize_rows(types[i], x, a, 3, 512));
        for (int r = 0; r < 3; r++)
            CHECK_OK(ntp__quantize_row(types[i], x + 512 * r, b + rb * r, 512));
        CHECK(memcmp(a, b, 3 * rb) == 0);
    }
}

/* The type table, the block structs and the function table agree. */
static void test_table(void)
{
    static const struct {
        enum ntp_type t;
        size_t size;
    } sizes[] = {
        {NTP_TYPE_Q4_0, sizeof(ntp_block_q4_0)}, {NTP_TYPE_Q4_1, sizeof(ntp_block_q4_1)},
        {NTP_TYPE_Q5_0, sizeof(ntp_block_q5_0)}, {NTP_TYPE_Q5_1, sizeof(ntp_block_q5_1)},
        {NTP_TYPE_Q8_0, sizeof(ntp_block_q8_0)}, {NTP_TYPE_Q8_1, sizeof(ntp_block_q8_1)},
        {NTP_TYPE_Q2_K, sizeof(ntp_block_q2_K)}, {NTP_TYPE_Q3_K, sizeof(ntp_block_q3_K)},
        {NTP_TYPE_Q4_K, sizeof(ntp_block_q4_K)}, {NTP_TYPE_Q5_K, sizeof(ntp_block_q5_K)},
        {NTP_TYPE_Q6_K, sizeof(ntp_block_q6_K)}, {NTP_TYPE_Q8_K, sizeof(ntp_block_q8_K)},
    };
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        CHECK(ntp_type_get_traits(sizes[i].t)->type_size == sizes[i].size);
    for (int t = 0; t < NTP_TYPE_COUNT; t++) {
        const ntp_type_traits *tt = ntp_type_get_traits(t);
        const bool has_fns = ntp__quant_fns((enum ntp_type)t) != NULL;
        CHECK(has_fns == (tt != NULL && tt->supported));
    }
}

/* ---------------------------------------------------- 4. F16 / BF16 exact */

static void test_half_rows(void)
{
    static float x[65536], y[65536];
    static uint16_t q[65536];
    /* Every binary16 value (NaNs excluded) survives float -> F16 row -> float bit for bit. */
    int n = 0;
    for (uint32_t h = 0; h < 0x10000; h++)
        if ((h & 0x7c00) != 0x7c00 || (h & 0x03ff) == 0)
            x[n++] = ntp__f16_to_f32((ntp_f16)h);
    CHECK_OK(ntp__quantize_row(NTP_TYPE_F16, x, q, n));
    CHECK_OK(ntp__dequantize_row(NTP_TYPE_F16, q, y, n));
    CHECK(memcmp(x, y, (size_t)n * sizeof *x) == 0);
    /* The same for bfloat16 (its values are floats with 16 zero low bits). */
    n = 0;
    for (uint32_t h = 0; h < 0x10000; h++)
        if ((h & 0x7f80) != 0x7f80 || (h & 0x007f) == 0)
            x[n++] = ntp__f32_from_bits(h << 16);
    CHECK_OK(ntp__quantize_row(NTP_TYPE_BF16, x, q, n));
    CHECK_OK(ntp__dequantize_row(NTP_TYPE_BF16, q, y, n));
    CHECK(memcmp(x, y, (size_t)n * sizeof *x) == 0);
    /* Known encodings: 1.0 and -2.5 in binary16 and bfloat16. */
    const float two[2] = {1.0f, -2.5f};
    CHECK_OK(ntp__quantize_row(NTP_TYPE_F16, two, q, 2));
    CHECK(q[0] == 0x3C00 && q[1] == 0xC100);
    CHECK_OK(ntp__quantize_row(NTP_TYPE_BF16, two, q, 2));
    CHECK(q[0] == 0x3F80 && q[1] == 0xC020);
    /* F32 is a copy. */
    CHECK_OK(ntp__quantize_row(NTP_TYPE_F32, x, y, 1000));
    CHECK(memcmp(x, y, 1000 * sizeof *x) == 0);
}

/* ------------------------------------------------------------ 5. Q8_K bsums */

static void test_q8_K_bsums(void)
{
    static float x[1024];
    static ntp_block_q8_K b[4];
    for (uint64_t seed = 1; seed <= 3; seed++) {
        fill_normal(x, 1024, seed, seed == 3 ? 1e4f : 1.0f, seed == 2);
        CHECK_OK(ntp__quantize_row(NTP_TYPE_Q8_K, x, b, 1024));
        for (int i = 0; i < 4; i++) {
            for (int g = 0; g < 16; g++) {
                int sum = 0;
                for (int l = 0; l < 16; l++) {
                    CHECK(b[i].qs[16 * g + l] >= -127);
                    sum += b[i].qs[16 * g + l];
                }
                CHECK(b[i].bsums[g] == sum);
            }
        }
    }
    /* The largest magnitude becomes -127 with d of the opposite sign. */
    fill_normal(x, 256, 5, 1.0f, false);
    x[17] = 9.0f;
    CHECK_OK(ntp__quantize_row(NTP_TYPE_Q8_K, x, b, 256));
    CHECK(b[0].qs[17] == -127 && b[0].d < 0.0f);
}

int main(int argc, char **argv)
{
    test_known_legacy();
    test_known_q8();
    test_known_q2_K();
    test_known_q3_K();
    test_known_q4_K();
    test_known_q5_K();
    test_known_q6_K();
    test_random_error(argc > 1 && strcmp(argv[1], "-v") == 0);
    test_edge_values();
    test_edge_args();
    test_rows();
    test_table();
    test_half_rows();
    test_q8_K_bsums();
    return ntp_test_result("test_quants");
}
