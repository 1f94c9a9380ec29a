/*
 * test_kernels_isa.c - every SIMD kernel (avx2, avx512) of every weight
 * format against the reference, on random data with sizes that are not
 * multiples of the tiles (rows 1..37, tokens 1..13, k of 1 and several
 * blocks), NaN-poisoned outputs (elements outside a thread's slice, and the
 * ldy padding, must stay NaN) and uneven (ith, nth) slicings; attention over
 * every KV cache type likewise (test_attention), and the reference's Hadamard
 * rotation against its matrix. An ISA this CPU lacks is skipped with a
 * message.
 *
 * Tolerances. Both sides use the same (reference-quantized) activations, so
 * they compute the same mathematical sum and differ only in float rounding
 * order: |y - y_ref| <= TOL * S with S = sum |w_j x_j| over the dequantized
 * operands. TOL = 1e-4 for the quantized formats (the reference k-quant dot
 * sums 256 float products per block, the SIMD one exact integers; 1e-4 is
 * ~1000 ulp of S, far below one quantization step) and 2e-4 for F16/BF16/F32
 * (the reference accumulates in double, the SIMD in 8 float lanes over up to
 * 1000 elements). Activation quantizers are compared code by code: the SIMD
 * rounds ties to even where the reference (Q8_0/Q8_1) rounds them away from
 * zero, so a code may differ by 1, scales must match exactly (Q8_K's d may
 * flip sign with the codes when +max and -max tie).
 */
#include "test.h"

#include "core/half.h"
#include "kernels/kernels.h"
#include "kernels/packed.h"
#include "kernels/quant.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static float frand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)((rng >> 40) * (1.0 / 16777216.0)) * 2.0f - 1.0f;
}

/* Random row data: mostly uniform, some blocks scaled up or down, one all-zero block. */
static void fill_random(float *x, int64_t n, int64_t blk)
{
    for (int64_t i = 0; i < n; i++)
        x[i] = frand();
    for (int64_t b = 0; b * blk < n; b++) {
        const float s = b % 5 == 1 ? 30.0f : b % 5 == 3 ? 0.01f : 1.0f;
        for (int64_t i = b * blk; i < (b + 1) * blk && i < n; i++)
            x[i] = b % 7 == 6 ? 0.0f : x[i] * s;
    }
}

static const enum ntp_type types[] = {
    NTP_TYPE_F32,  NTP_TYPE_F16,  NTP_TYPE_BF16, NTP_TYPE_Q4_0, NTP_TYPE_Q4_1,
    NTP_TYPE_Q5_0, NTP_TYPE_Q5_1, NTP_TYPE_Q8_0, NTP_TYPE_Q2_K, NTP_TYPE_Q3_K,
    NTP_TYPE_Q4_K, NTP_TYPE_Q5_K, NTP_TYPE_Q6_K,
};

/* Rows x tokens shapes: decode and prefill, around and off the tile sizes. */
static const int shapes[][2] = {{1, 1}, {2, 1}, {3, 1}, {5, 1},   {37, 1},  {1, 13}, {4, 4},
                                {5, 5}, {7, 3}, {9, 8}, {37, 13}, {16, 12}, {13, 7}, {3, 2}};

/* Float row x of type t (row of n elements) dequantized into out. */
static void to_float(enum ntp_type t, const void *row, float *out, int64_t n)
{
    if (t == NTP_TYPE_F32)
        memcpy(out, row, (size_t)n * sizeof(float));
    else
        CHECK_OK(ntp__dequantize_row(t, row, out, n));
}

struct kcase {
    enum ntp_type t;
    int64_t k, rows, toks;
    uint8_t *w, *x; /* quantized weights (rows) and activations (toks) */
    size_t wrow, xrow;
    float *wf, *xf; /* their dequantized values */
    float *yref;    /* reference result, toks x rows */
};

static void case_make(const struct ntp_kernels *ref, struct kcase *c)
{
    const enum ntp_type at = ref->ref[c->t].act_type;
    CHECK_OK(ntp_type_row_size(c->t, c->k, &c->wrow));
    CHECK_OK(ntp_type_row_size(at, c->k, &c->xrow));
    float *src = malloc((size_t)(c->rows > c->toks ? c->rows : c->toks) * c->k * sizeof(float));
    c->w = malloc(c->wrow * c->rows);
    c->x = malloc(c->xrow * c->toks);
    c->wf = malloc((size_t)(c->rows * c->k) * sizeof(float));
    c->xf = malloc((size_t)(c->toks * c->k) * sizeof(float));
    c->yref = malloc((size_t)(c->rows * c->toks) * sizeof(float));
    fill_random(src, c->rows * c->k, 32);
    if (c->t == NTP_TYPE_F32)
        memcpy(c->w, src, c->wrow * c->rows);
    else
        CHECK_OK(ntp__quantize_rows(c->t, src, c->w, c->rows, c->k));
    fill_random(src, c->toks * c->k, 64);
    for (int64_t t = 0; t < c->toks; t++) {
        if (at == NTP_TYPE_F32)
            memcpy(c->x + t * c->xrow, src + t * c->k, c->xrow);
        else
            ref->ref[c->t].quantize_act(src + t * c->k, c->x + t * c->xrow, c->k);
        to_float(at, c->x + t * c->xrow, c->xf + t * c->k, c->k);
    }
    for (int64_t r = 0; r < c->rows; r++)
        to_float(c->t, c->w + r * c->wrow, c->wf + r * c->k, c->k);
    struct ntp_matmul_args a = {c->t, c->w,    c->wrow,       c->rows, c->k,
                                c->x, c->xrow, c->toks,       c->yref, c->rows,
                                0,    1,       NTP_PACK_NONE, NULL,    NULL};
    CHECK_OK(ref->ref[c->t].matmul(&a));
    free(src);
}

static void case_free(struct kcase *c)
{
    free(c->w);
    free(c->x);
    free(c->wf);
    free(c->xf);
    free(c->yref);
}

/* S = sum |w_j x_j| of row r, token t: the scale of the rounding error. */
static double abs_sum(const struct kcase *c, int64_t r, int64_t t)
{
    double s = 0;
    for (int64_t j = 0; j < c->k; j++)
        s += fabs((double)c->wf[r * c->k + j] * c->xf[t * c->k + j]);
    return s;
}

static bool close_enough(const struct kcase *c, float y, float yr, int64_t r, int64_t t)
{
    const double tol = (c->t <= NTP_TYPE_F16 || c->t == NTP_TYPE_BF16) ? 2e-4 : 1e-4;
    return isfinite(y) && fabs((double)y - yr) <= tol * abs_sum(c, r, t) + 1e-30;
}

/* Run the ISA's matmul over every slice of nth threads into a NaN-poisoned y; compare. */
static int check_sliced(const struct ntp_kernels *k, const struct kcase *c, int nth)
{
    const int64_t ldy = c->rows + 3;
    float *y = malloc((size_t)(ldy * c->toks) * sizeof(float));
    int bad = 0;
    for (int ith = 0; ith < nth; ith++) {
        for (int64_t i = 0; i < ldy * c->toks; i++)
            y[i] = NAN;
        struct ntp_matmul_args a = {c->t, c->w,    c->wrow,       c->rows, c->k,
                                    c->x, c->xrow, c->toks,       y,       ldy,
                                    ith,  nth,     NTP_PACK_NONE, NULL,    NULL};
        const struct ntp_kernel_type *kt = &k->type[c->t];
        CHECK_OK((c->toks == 1 ? kt->matvec : kt->matmul)(&a));
        int64_t r0, r1;
        ntp__slice(c->rows, ith, nth, &r0, &r1);
        for (int64_t t = 0; t < c->toks; t++)
            for (int64_t r = 0; r < ldy; r++) {
                const float v = y[t * ldy + r];
                const bool in = r >= r0 && r < r1;
                if (in ? !close_enough(c, v, c->yref[t * c->rows + r], r, t) : !isnan(v)) {
                    if (bad++ < 3)
                        fprintf(stderr,
                                "  %s %s k=%lld rows=%lld toks=%lld slice %d/%d: "
                                "y[%lld][%lld] = %g, ref %g%s\n",
                                k->isa, ntp_type_name(c->t), (long long)c->k, (long long)c->rows,
                                (long long)c->toks, ith, nth, (long long)t, (long long)r, v,
                                in ? c->yref[t * c->rows + r] : NAN, in ? "" : " (outside)");
                }
            }
    }
    free(y);
    return bad;
}

/*
 * Prefill and decode must agree bit for bit (a model gives the same logits
 * for a prompt fed at once or token by token): the matmul of all tokens
 * against one matvec per token.
 */
static int check_consistent(const struct ntp_kernels *k, const struct kcase *c)
{
    float *y = malloc((size_t)(c->rows * c->toks) * sizeof(float));
    float *y1 = malloc((size_t)c->rows * sizeof(float));
    const struct ntp_kernel_type *kt = &k->type[c->t];
    struct ntp_matmul_args a = {c->t, c->w,    c->wrow,       c->rows, c->k,
                                c->x, c->xrow, c->toks,       y,       c->rows,
                                0,    1,       NTP_PACK_NONE, NULL,    NULL};
    CHECK_OK(kt->matmul(&a));
    int bad = 0;
    for (int64_t t = 0; t < c->toks; t++) {
        struct ntp_matmul_args b = {c->t,          c->w, c->wrow, c->rows, c->k, c->x + t * c->xrow,
                                    c->xrow,       1,    y1,      c->rows, 0,    1,
                                    NTP_PACK_NONE, NULL, NULL};
        CHECK_OK(kt->matvec(&b));
        bad += memcmp(y1, y + t * c->rows, (size_t)c->rows * sizeof(float)) != 0;
    }
    free(y);
    free(y1);
    return bad;
}

/* The ISA's vec_dot on each (row, token) of a case. */
static int check_dots(const struct ntp_kernels *k, const struct kcase *c)
{
    int bad = 0;
    for (int64_t r = 0; r < c->rows; r++)
        for (int64_t t = 0; t < c->toks; t++) {
            const float v = k->type[c->t].vec_dot(c->k, c->w + r * c->wrow, c->x + t * c->xrow);
            bad += !close_enough(c, v, c->yref[t * c->rows + r], r, t);
        }
    return bad;
}

static void test_products(const struct ntp_kernels *ref, const struct ntp_kernels *k)
{
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
        const enum ntp_type t = types[ti];
        const int64_t blk = ntp_type_get_traits(t)->block_size;
        /* One block, a few, many; floats get lengths off the 8-lane width. */
        const int64_t ks[3] = {blk == 1 ? 13 : blk, blk == 1 ? 37 : 3 * blk,
                               blk == 1 ? 301 : (blk == 32 ? 23 : 5) * blk};
        int bad = 0;
        for (int ki = 0; ki < 3; ki++)
            for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
                struct kcase c = {
                    .t = t, .k = ks[ki], .rows = shapes[si][0], .toks = shapes[si][1]};
                case_make(ref, &c);
                bad += check_dots(k, &c);
                bad += check_consistent(k, &c);
                for (int nth = 1; nth <= 4; nth += (nth == 1 ? 2 : 1))
                    bad += check_sliced(k, &c, nth);
                case_free(&c);
            }
        if (bad)
            fprintf(stderr, "%s %s: %d mismatches\n", k->isa, ntp_type_name(t), bad);
        CHECK(bad == 0);
    }
}

/*
 * Packed weights (packed.h), for the formats this ISA packs: pack and unpack
 * give the rows back byte for byte; the packed product matches the reference
 * on every (ith, nth) slicing (groups of 16 rows, so some threads get none)
 * and NaN-poisoned y, including k = 0 and k longer than one tabulated chunk
 * (256 blocks); prefill and decode agree bit for bit (on AMX too, whose
 * whole tiles of 16 tokens and the AVX-512 remainder both run from 16
 * tokens on).
 */
/*
 * The gated form (ntp_matmul_args.glu) of the product a, which gave y: over
 * two threads' slices, g must become glu(g, y) bit for bit, for either
 * activation, and nothing else of g change. Returns the mismatches.
 */
static int gated_mismatches(const struct ntp_kernels *k, struct ntp_matmul_args a, const float *y)
{
    const size_t n = (size_t)(a.ldy * a.n_tok);
    float *g = malloc(n * sizeof(float)), *want = malloc(n * sizeof(float));
    float *scratch = malloc(n * sizeof(float));
    int bad = 0;
    for (int act = 0; act < NTP_FFN_ACT_COUNT; act++) {
        for (size_t i = 0; i < n; i++)
            g[i] = want[i] = 4.0f * sinf(0.37f * (float)i);
        for (int64_t t = 0; t < a.n_tok; t++)
            k->glu[act](want + t * a.ldy, want + t * a.ldy, y + t * a.ldy, a.n_rows);
        a.glu = k->glu[act];
        a.g = g;
        a.y = scratch;
        a.nth = 2;
        for (a.ith = 0; a.ith < a.nth; a.ith++)
            CHECK_OK(ntp__kernels_matmul(k, &a));
        bad += memcmp(g, want, n * sizeof(float)) != 0;
    }
    free(g);
    free(want);
    free(scratch);
    return bad;
}

static void test_packed(const struct ntp_kernels *ref, const struct ntp_kernels *k)
{
    static const int64_t kblocks[] = {0, 1, 3, 23, 300}; /* 0: an empty column shard */
    /* 112 rows: more than one run of groups (packed.c, pkk_run) for Q5_K/Q6_K at 23 super-blocks;
       16 tokens and more: AMX's whole tiles, 37 its tiles and a remainder on AVX-512; for the
       k-quants 29 one pair of tiles padded, 45 a pair and a padded one, 150 more than one block
       of tokens (amx.c, AMX_KQ_TOK) and a padded pair */
    static const int shp[][2] = {{16, 1},   {16, 2},  {48, 1},  {32, 3},  {48, 8},
                                 {16, 9},   {32, 13}, {112, 9}, {32, 16}, {48, 37},
                                 {16, 150}, {32, 29}, {16, 45}};
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
        const enum ntp_type t = types[ti];
        const enum ntp_pack_layout l = k->type[t].pack;
        if (l == NTP_PACK_NONE)
            continue;
        CHECK(ntp__pack_supported(l, t) && k->type[t].matmul_packed != NULL);
        int bad = 0;
        for (size_t ki = 0; ki < sizeof kblocks / sizeof kblocks[0]; ki++)
            for (size_t si = 0; si < sizeof shp / sizeof shp[0]; si++) {
                /* k-quants (256 per block): 0, 1, 3 and 23 super-blocks */
                const int64_t blk = ntp_type_get_traits(t)->block_size;
                const int64_t kk = (blk == 32 ? kblocks[ki] : kblocks[ki] % 100) * blk;
                struct kcase c = {.t = t, .k = kk, .rows = shp[si][0], .toks = shp[si][1]};
                case_make(ref, &c);
                uint8_t *wp = malloc(c.wrow * c.rows), *wu = malloc(c.wrow * c.rows);
                const size_t gbytes = c.wrow * NTP_PACK_ROWS;
                memset(wp, 0xa5, c.wrow * c.rows); /* packing must write every byte */
                for (int64_t g = 0; g < c.rows / NTP_PACK_ROWS; g++) {
                    ntp__pack_group(l, t, wp + g * gbytes, c.w + g * gbytes, c.wrow, c.k);
                    ntp__unpack_group(l, t, wu + g * gbytes, c.wrow, wp + g * gbytes, c.k);
                }
                bad += memcmp(wu, c.w, c.wrow * c.rows) != 0;
                const int64_t ldy = c.rows + 5;
                float *y = malloc((size_t)(ldy * c.toks) * sizeof(float));
                for (int nth = 1; nth <= 4; nth += 2 - (nth > 1))
                    for (int ith = 0; ith < nth; ith++) {
                        for (int64_t i = 0; i < ldy * c.toks; i++)
                            y[i] = NAN;
                        struct ntp_matmul_args a = {t,   wp,     c.wrow, c.rows, c.k,
                                                    c.x, c.xrow, c.toks, y,      ldy,
                                                    ith, nth,    l,      NULL,   NULL};
                        CHECK_OK(ntp__kernels_matmul(k, &a));
                        int64_t g0, g1;
                        ntp__slice(c.rows / NTP_PACK_ROWS, ith, nth, &g0, &g1);
                        for (int64_t tt = 0; tt < c.toks; tt++)
                            for (int64_t r = 0; r < ldy; r++) {
                                const float v = y[tt * ldy + r];
                                const bool in = r >= g0 * NTP_PACK_ROWS && r < g1 * NTP_PACK_ROWS;
                                const float yr = in ? c.yref[tt * c.rows + r] : NAN;
                                if (in ? !close_enough(&c, v, yr, r, tt) : !isnan(v))
                                    if (bad++ < 3)
                                        fprintf(stderr,
                                                "  %s packed %s k=%lld rows=%lld toks=%lld "
                                                "slice %d/%d: y[%lld][%lld] = %g, ref %g\n",
                                                k->isa, ntp_type_name(t), (long long)c.k,
                                                (long long)c.rows, (long long)c.toks, ith, nth,
                                                (long long)tt, (long long)r, v, yr);
                            }
                    }
                /* Decode, token by token, against one whole-matrix prefill (nth = 1). */
                struct ntp_matmul_args a = {t, wp,  c.wrow, c.rows, c.k, c.x,  c.xrow, c.toks,
                                            y, ldy, 0,      1,      l,   NULL, NULL};
                CHECK_OK(ntp__kernels_matmul(k, &a));
                float *y1 = malloc((size_t)c.rows * sizeof(float));
                for (int64_t tt = 0; tt < c.toks; tt++) {
                    struct ntp_matmul_args b = {
                        t, wp, c.wrow, c.rows, c.k, c.x + tt * c.xrow, c.xrow, 1, y1, c.rows,
                        0, 1,  l,      NULL,   NULL};
                    CHECK_OK(ntp__kernels_matmul(k, &b));
                    bad += memcmp(y1, y + tt * ldy, (size_t)c.rows * sizeof(float)) != 0;
                }
                if (k->type[t].packed_glu)
                    bad += gated_mismatches(k, a, y);
                free(y1);
                free(y);
                free(wp);
                free(wu);
                case_free(&c);
            }
        if (bad)
            fprintf(stderr, "%s packed %s: %d mismatches\n", k->isa, ntp_type_name(t), bad);
        CHECK(bad == 0);
    }
    /* AVX-512 (and AMX on it) packs every format with the layout: Q4_0/1, Q5_0/1, Q8_0, Q2_K ..
     * Q6_K. */
    const bool packs = strcmp(k->isa, "avx512") == 0 || strcmp(k->isa, "amx") == 0;
    for (size_t ti = 0; packs && ti < sizeof types / sizeof types[0]; ti++)
        CHECK((k->type[types[ti]].pack == NTP_PACK_R16) ==
              ntp__pack_supported(NTP_PACK_R16, types[ti]));
    CHECK(ntp__pack_supported(NTP_PACK_R16, NTP_TYPE_Q5_K) &&
          ntp__pack_supported(NTP_PACK_R16, NTP_TYPE_Q4_1) &&
          !ntp__pack_supported(NTP_PACK_R16, NTP_TYPE_F16));
    /* A table without packed kernels refuses packed weights instead of misreading them. */
    struct ntp_matmul_args a = {NTP_TYPE_Q4_0, NULL, 18, 16, 32,           NULL, 34,  1,
                                NULL,          16,   0,  1,  NTP_PACK_R16, NULL, NULL};
    CHECK_STATUS(ntp__kernels_matmul(ref, &a), NTP_E_UNSUPPORTED);
    /* ... and a gate where its product cannot take one. */
    a.glu = ref->glu[NTP_FFN_SILU];
    CHECK_STATUS(ntp__kernels_matmul(ref, &a), NTP_E_INTERNAL);
}

/* The ISA's activation quantizer against the reference's, code by code. */
static void test_quantize_act(const struct ntp_kernels *ref, const struct ntp_kernels *k)
{
    const enum ntp_type wts[] = {NTP_TYPE_Q4_0, NTP_TYPE_Q4_1, NTP_TYPE_Q4_K};
    for (size_t i = 0; i < sizeof wts / sizeof wts[0]; i++) {
        const struct ntp_kernel_type *kt = &k->type[wts[i]], *rt = &ref->ref[wts[i]];
        const enum ntp_type at = rt->act_type;
        const int64_t n = 3 * 256;
        float x[3 * 256], fa[3 * 256], fb[3 * 256];
        uint8_t qa[3 * 256 * 4], qb[3 * 256 * 4];
        fill_random(x, n, 32);
        x[5] = 100.0f;
        x[300] = -100.0f; /* a magnitude tie between +max and -max in one Q8_K block */
        x[400] = 100.0f;
        kt->quantize_act(x, qa, n);
        rt->quantize_act(x, qb, n);
        to_float(at, qa, fa, n);
        to_float(at, qb, fb, n);
        int bad = 0;
        const int64_t blk = ntp_type_get_traits(at)->block_size;
        for (int64_t j = 0; j < n; j++) {
            /* One code step of the block: its largest magnitude / 127. */
            float amax = 0;
            for (int64_t l = j / blk * blk; l < (j / blk + 1) * blk; l++)
                amax = fmaxf(amax, fabsf(x[l]));
            const float step = amax / 127 * 1.01f;
            bad += !(fabsf(fa[j] - fb[j]) <= step && fabsf(fa[j] - x[j]) <= step);
        }
        if (at == NTP_TYPE_Q8_K)
            for (int b = 0; b < 3; b++) {
                const int8_t *qs = (const int8_t *)(qa + b * 292 + 4);
                const int16_t *bs = (const int16_t *)(qa + b * 292 + 4 + 256);
                for (int g = 0; g < 16; g++) {
                    int s = 0;
                    for (int l = 0; l < 16; l++)
                        s += qs[16 * g + l];
                    bad += s != bs[g];
                }
            }
        if (bad)
            fprintf(stderr, "%s quantize %s: %d mismatches\n", k->isa, ntp_type_name(at), bad);
        CHECK(bad == 0);
    }
}

/* One head's attention against the reference: F16 and F32 caches, odd widths, 1..100 positions. */
/*
 * The softmax exponentials against expf: within 3 ulp where the result is a
 * normal float (2 for the approximation, 1 for the rounding of x - m), 0 or
 * subnormal below; the sum to 1e-6. Lengths that are not a multiple of the
 * vector width; scores down to -120 (past expf's normal range).
 */
/* max: the reference's value on lengths around the vector widths, NaNs passed over. */
static void test_max(const struct ntp_kernels *k)
{
    static const int64_t lens[] = {0, 1, 7, 8, 9, 31, 32, 33, 100, 1000};
    static float x[1000];
    int bad = 0;
    uint32_t r = 5;
    for (int64_t i = 0; i < 1000; i++) {
        r = r * 1664525u + 1013904223u;
        x[i] = (float)(r >> 8) / 16777216.0f * 200.0f - 100.0f;
    }
    x[17] = NAN;
    for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++)
        for (int at = 0; at < 3; at++) { /* the maximum first, last, or inside */
            const int64_t n = lens[li], j = at == 0 ? 0 : at == 1 ? n - 1 : n / 2;
            const float keep = n > 0 ? x[j] : 0;
            if (n > 0)
                x[j] = 150.0f + (float)li;
            static const float ms[3] = {-INFINITY, 0.0f, 1000.0f};
            for (int mi = 0; mi < 3; mi++)
                bad += k->max(x, n, ms[mi]) != ntp__max_f32_ref(x, n, ms[mi]);
            if (n > 0)
                x[j] = keep;
        }
    if (bad)
        fprintf(stderr, "%s max: %d mismatches\n", k->isa, bad);
    CHECK(bad == 0);
}

static void test_exp_sum(const struct ntp_kernels *k)
{
    static const int64_t lens[] = {1, 7, 8, 9, 33, 1000};
    int bad = 0;
    for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++) {
        const int64_t n = lens[li];
        float *x = malloc((size_t)n * sizeof *x), *want = malloc((size_t)n * sizeof *want);
        uint32_t r = 99 + (uint32_t)n;
        const float m = 3.5f;
        double sum = 0;
        for (int64_t i = 0; i < n; i++) {
            r = r * 1664525u + 1013904223u;
            x[i] = m - (float)(r >> 8) / 16777216.0f * (i % 5 == 0 ? 124.0f : 12.0f);
            want[i] = expf(x[i] - m);
            sum += want[i];
        }
        x[n / 2] = m; /* the maximum itself: exactly 1 */
        sum += 1.0 - want[n / 2];
        want[n / 2] = 1.0f;
        const float got = k->exp_sum(x, n, m);
        for (int64_t i = 0; i < n; i++) {
            const float tol = want[i] >= 1.2e-38f ? 3.6e-7f * want[i] : 1.2e-38f;
            bad += !(fabsf(x[i] - want[i]) <= tol);
        }
        bad += !(fabs(got - sum) <= 1e-6 * sum);
        free(x);
        free(want);
    }
    if (bad)
        fprintf(stderr, "%s exp_sum: %d mismatches\n", k->isa, bad);
    CHECK(bad == 0);
}

/*
 * The FFN gates against the reference (expf, tanhf): 4 ulp of the larger of
 * the result and 1e-30, plus for GeGLU an ulp of |g u| (the reference's
 * 1 + tanh cancels for negative g, where the vector form is the exact one);
 * y aliasing g.
 */
static void test_glu(const struct ntp_kernels *k)
{
    static const int64_t lens[] = {1, 7, 8, 9, 1000};
    static const ntp_glu_fn refs[NTP_FFN_ACT_COUNT] = {ntp__swiglu_f32, ntp__geglu_f32};
    static const char *const names[NTP_FFN_ACT_COUNT] = {"swiglu", "geglu"};
    for (int act = 0; act < NTP_FFN_ACT_COUNT; act++) {
        int bad = 0;
        for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++) {
            const int64_t n = lens[li];
            float *g = malloc((size_t)n * sizeof *g), *u = malloc((size_t)n * sizeof *u);
            float *want = malloc((size_t)n * sizeof *want), *g0 = malloc((size_t)n * sizeof *g0);
            uint32_t r = 7 + (uint32_t)n;
            for (int64_t i = 0; i < n; i++) {
                r = r * 1664525u + 1013904223u;
                g[i] = ((float)(r >> 8) / 16777216.0f - 0.5f) * (i % 7 == 0 ? 240.0f : 16.0f);
                r = r * 1664525u + 1013904223u;
                u[i] = (float)(r >> 8) / 16777216.0f - 0.5f;
            }
            g[0] = -0.0f;
            memcpy(g0, g, (size_t)n * sizeof *g);
            refs[act](want, g, u, n);
            k->glu[act](g, g, u, n);
            for (int64_t i = 0; i < n; i++) {
                const float a = fabsf(want[i]) > 1e-30f ? fabsf(want[i]) : 1e-30f;
                const float tol =
                    4.8e-7f * a + (act == NTP_FFN_GELU ? 1.2e-7f * fabsf(g0[i] * u[i]) : 0);
                bad += !(fabsf(g[i] - want[i]) <= tol);
            }
            free(g);
            free(g0);
            free(u);
            free(want);
        }
        if (bad)
            fprintf(stderr, "%s %s: %d mismatches\n", k->isa, names[act], bad);
        CHECK(bad == 0);
    }
}

/*
 * One head's attention over a cache of n positions of type kt, each row
 * holding 3 head slots (the device's layout, kernels.h) with this head in
 * the middle: keys in [-2, 2), values in [-1, 1), q in [-1, 1). The same
 * floats in an F32 cache give want (the rounding of the cache aside).
 */
struct attn_case {
    enum ntp_type kt;
    int64_t hd, n;
    size_t slot, stride; /* bytes of one head slot and of one cache row */
    uint8_t *kc, *vc;    /* the cache in kt */
    float *kf, *vf;      /* the same cache in floats */
    float q[256], want[256];
};

static void attn_case_make(struct attn_case *c, enum ntp_type kt, int64_t hd, int64_t n)
{
    const int64_t slots = 3;
    c->kt = kt;
    c->hd = hd;
    c->n = n;
    CHECK_OK(ntp_type_row_size(kt, hd, &c->slot));
    c->stride = (size_t)slots * c->slot;
    c->kc = malloc(c->stride * (size_t)n);
    c->vc = malloc(c->stride * (size_t)n);
    c->kf = malloc((size_t)(n * slots * hd) * sizeof(float));
    c->vf = malloc((size_t)(n * slots * hd) * sizeof(float));
    for (int64_t i = 0; i < n * slots * hd; i++) {
        c->kf[i] = frand() * 2;
        c->vf[i] = frand();
    }
    for (int64_t r = 0; r < n * slots; r++) {
        CHECK_OK(ntp__quantize_row(kt, c->kf + r * hd, c->kc + (size_t)r * c->slot, hd));
        CHECK_OK(ntp__quantize_row(kt, c->vf + r * hd, c->vc + (size_t)r * c->slot, hd));
    }
    for (int64_t i = 0; i < hd; i++)
        c->q[i] = frand();
    float score[300];
    const struct ntp_attn_args a = {
        .q = c->q,
        .k = c->kf + hd,
        .v = c->vf + hd,
        .kv_stride = (size_t)(slots * hd) * sizeof(float),
        .kv_type = NTP_TYPE_F32,
        .hdk = hd,
        .hdv = hd,
        .n_pos = n,
        .scale = 0.125f,
        .score = score,
        .out = c->want,
    };
    ntp__attn_ref(&a);
}

static void attn_case_free(struct attn_case *c)
{
    free(c->kc);
    free(c->vc);
    free(c->kf);
    free(c->vf);
}

/* Attention over the case's cache with the kernels of table t into out. */
static void attn_run(const struct ntp_kernels *t, ntp_attn_fn fn, const struct attn_case *c,
                     float *out)
{
    float score[300], q_dot[256];
    const struct ntp_attn_args a = {
        .q = c->q,
        .k = c->kc + c->slot,
        .v = c->vc + c->slot,
        .kv_stride = c->stride,
        .kv_type = c->kt,
        .hdk = c->hd,
        .hdv = c->hd,
        .n_pos = c->n,
        .scale = 0.125f,
        .score = score,
        .out = out,
        .q_dot = q_dot,
        .kern = t,
    };
    fn(&a);
}

/*
 * Attention and kv_to_f32 of every cache type against the reference: head
 * widths 13 and 40 (float caches only) and 32 .. 256, 1 .. 300 positions;
 * out[hd] must stay NaN. Outputs are convex mixes of values in [-1, 1], so
 * errors are absolute. Against the reference on the same cache: 1e-5 (float
 * rounding order; a quantized cache's q . k is an exact integer sum per block
 * on both sides). Against the F32 cache of the same floats: the rounding of
 * the cache and, for Q8_0 and Q4_0, of q: 1e-3 for F16 (values rounded by
 * 2^-11 relative), 1e-2 for Q8_0 (by at most 1/254, scores by a few 1e-3)
 * and 0.2 for Q4_0 (by up to d = 1/8: ggml's Q4_0 maps the largest
 * magnitude to -8, so +8 on the other side is clamped to 7). kv_to_f32 must
 * equal the reference bit for bit.
 */
static void test_attention(const struct ntp_kernels *ref, const struct ntp_kernels *k)
{
    static const enum ntp_type kts[] = {NTP_TYPE_F16, NTP_TYPE_F32, NTP_TYPE_Q8_0, NTP_TYPE_Q4_0};
    static const double vs_f32[] = {1e-3, 1e-6, 1e-2, 0.2};
    static const int64_t hds[] = {13, 40, 32, 64, 96, 128, 256}, npos[] = {1, 7, 100, 300};
    for (size_t ti = 0; ti < sizeof kts / sizeof kts[0]; ti++) {
        int bad = 0, bad_f32 = 0, bad_conv = 0;
        double worst = 0, worst_f32 = 0;
        for (size_t hi = 0; hi < sizeof hds / sizeof hds[0]; hi++)
            for (size_t pi = 0; pi < sizeof npos / sizeof npos[0]; pi++) {
                const int64_t hd = hds[hi];
                if (ntp__kv_quantized(kts[ti]) && hd % 32 != 0)
                    continue;
                struct attn_case c;
                attn_case_make(&c, kts[ti], hd, npos[pi]);
                float out[256 + 1], ref_out[256], conv[256], ref_conv[256];
                out[hd] = NAN;
                attn_run(k, k->attn, &c, out);
                attn_run(ref, ntp__attn_ref, &c, ref_out);
                for (int64_t i = 0; i < hd; i++) {
                    const double e = fabs(out[i] - ref_out[i]), ef = fabs(out[i] - c.want[i]);
                    worst = e > worst ? e : worst;
                    worst_f32 = ef > worst_f32 ? ef : worst_f32;
                    bad += !(e <= 1e-5);
                    bad_f32 += !(ef <= vs_f32[ti]);
                }
                bad += !isnan(out[hd]);
                k->kv_to_f32(kts[ti], c.vc + c.slot, conv, hd);
                ntp__kv_to_f32_ref(kts[ti], c.vc + c.slot, ref_conv, hd);
                bad_conv += memcmp(conv, ref_conv, (size_t)hd * sizeof(float)) != 0;
                attn_case_free(&c);
            }
        printf("%s attention %s: max |diff| %.2e vs reference, %.2e vs an F32 cache\n", k->isa,
               ntp_type_name(kts[ti]), worst, worst_f32);
        if (bad || bad_f32 || bad_conv)
            fprintf(stderr, "%s attention %s: %d mismatches, %d off the F32 cache, %d kv_to_f32\n",
                    k->isa, ntp_type_name(kts[ti]), bad, bad_f32, bad_conv);
        CHECK(bad == 0 && bad_f32 == 0 && bad_conv == 0);
    }
}

/*
 * The rotation of a quantized cache (ntp__hadamard_f32, reference only)
 * against the explicit matrix llama.cpp builds, Sylvester's H_2s = [[H_s,
 * H_s], [H_s, -H_s]] scaled by 1/sqrt(n), for n = 1 .. 256, to 1e-6 of the
 * inputs' size; a second rotation gives the input back (H H = I).
 */
static void test_hadamard(void)
{
    static float h[256 * 256];
    int bad = 0;
    for (int64_t n = 1; n <= 256; n *= 2) {
        h[0] = 1;
        for (int64_t sz = 1; sz < n; sz *= 2)
            for (int64_t i = 0; i < sz; i++)
                for (int64_t j = 0; j < sz; j++) {
                    const float v = h[i * n + j];
                    h[(i + sz) * n + j] = h[i * n + j + sz] = v;
                    h[(i + sz) * n + j + sz] = -v;
                }
        float x[256], y[256];
        for (int64_t i = 0; i < n; i++)
            x[i] = y[i] = frand();
        ntp__hadamard_f32(y, n);
        for (int64_t i = 0; i < n; i++) {
            double want = 0;
            for (int64_t j = 0; j < n; j++)
                want += h[i * n + j] * x[j] / sqrt((double)n);
            bad += !(fabs(y[i] - want) <= 1e-6);
        }
        ntp__hadamard_f32(y, n);
        for (int64_t i = 0; i < n; i++)
            bad += !(fabsf(y[i] - x[i]) <= 1e-6f);
    }
    if (bad)
        fprintf(stderr, "hadamard: %d mismatches\n", bad);
    CHECK(bad == 0);
}

int main(void)
{
    struct ntp_kernels ref, k;
    CHECK_OK(ntp__kernels_init(&ref, "ref"));
    CHECK_STATUS(ntp__kernels_init(&k, "sse9"), NTP_E_UNSUPPORTED);
    test_hadamard();
    const char *isas[] = {"avx2", "avx512", "amx"};
    int ran = 0;
    for (size_t i = 0; i < sizeof isas / sizeof isas[0]; i++) {
        if (!ntp__kernels_isa_ok(isas[i])) {
            printf("%s: skipped, this CPU lacks it\n", isas[i]);
            CHECK_STATUS(ntp__kernels_init(&k, isas[i]), NTP_E_UNSUPPORTED);
            continue;
        }
        CHECK_OK(ntp__kernels_init(&k, isas[i]));
        printf("%s: testing table '%s'\n", isas[i], k.isa);
        test_quantize_act(&ref, &k);
        test_exp_sum(&k);
        test_max(&k);
        test_glu(&k);
        test_attention(&ref, &k);
        test_products(&ref, &k);
        test_packed(&ref, &k);
        if (strcmp(k.isa, "amx") == 0) { /* every packed format's prefill: AMX's */
            struct ntp_kernels v;
            CHECK_OK(ntp__kernels_init(&v, "avx512"));
            for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++)
                if (v.type[types[ti]].pack == NTP_PACK_R16)
                    CHECK(k.type[types[ti]].matmul_packed != v.type[types[ti]].matmul_packed);
        }
        ran++;
    }
    if (ran == 0 && ntp_test_failures == 0)
        NTP_TEST_SKIP("this CPU has none of avx2, avx512, amx");
    return ntp_test_result("kernels_isa");
}
