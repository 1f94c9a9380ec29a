/*
 * test_kernels_moe.c - the mixture-of-experts kernels (src/kernels/moe.c):
 *  - routing: the largest logits in order, the lower index on a tie, and
 *    weights equal to the softmax over all experts renormalised over the
 *    chosen ones (computed here in double);
 *  - the grouped expert product of every ISA this CPU runs (ref, avx2,
 *    avx512) and every weight format, packed where the ISA packs, against
 *    one reference product per token and expert: every output of every
 *    group written once by exactly one thread of 1, 2, 3 or 7, nothing else
 *    touched (NaN-poisoned rows of experts without tokens, slots and padding
 *    stay NaN), values within the dense kernel tests' bound (TOL * sum
 *    |w_j x_j|, tests/kernels/test_kernels_isa.c), and the same bits
 *    whatever the number of threads.
 */
#include "test.h"

#include "kernels/kernels.h"
#include "kernels/packed.h"
#include "kernels/quant.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

static uint64_t rng = 0x243f6a8885a308d3ull;

static float frand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)((rng >> 40) * (1.0 / 16777216.0)) * 2.0f - 1.0f;
}

static void test_route(void)
{
    int32_t sel[4];
    float w[4];
    /* ties: the lower index first, and the lower index kept */
    const float a[] = {0.0f, 2.0f, 1.0f, 2.0f, -1.0f};
    ntp__moe_route(a, 5, 2, sel, w);
    CHECK(sel[0] == 1 && sel[1] == 3);
    CHECK(fabsf(w[0] - 0.5f) < 1e-7f && fabsf(w[1] - 0.5f) < 1e-7f);
    const float b[] = {1.0f, 1.0f, 1.0f};
    ntp__moe_route(b, 3, 2, sel, w);
    CHECK(sel[0] == 0 && sel[1] == 1);
    /* the last expert, and one expert per token: weight 1 */
    const float c[] = {-3.0f, -2.0f, 5.0f};
    ntp__moe_route(c, 3, 1, sel, w);
    CHECK(sel[0] == 2 && w[0] == 1.0f);
    /* random logits: order, and the renormalised softmax of all experts */
    for (int rep = 0; rep < 200; rep++) {
        float l[64];
        const int n = 1 + rep % 64, k = 1 + rep % (n < 4 ? n : 4);
        for (int e = 0; e < n; e++)
            l[e] = 4.0f * frand();
        ntp__moe_route(l, n, k, sel, w);
        double mx = -INFINITY, z = 0, zk = 0;
        for (int e = 0; e < n; e++)
            mx = l[e] > mx ? l[e] : mx;
        for (int e = 0; e < n; e++)
            z += exp(l[e] - mx);
        for (int i = 0; i < k; i++)
            zk += exp(l[sel[i]] - mx) / z;
        for (int i = 0; i < k; i++) {
            CHECK(i == 0 || l[sel[i]] <= l[sel[i - 1]]);
            int above = 0; /* experts above the i-th chosen one: exactly i */
            for (int e = 0; e < n; e++)
                above += l[e] > l[sel[i]] || (l[e] == l[sel[i]] && e < sel[i]);
            CHECK(above == i);
            const double want = exp(l[sel[i]] - mx) / z / zk;
            CHECK(fabs(w[i] - want) <= 1e-6 * want + 1e-7);
        }
    }
}

/* Experts (rows x k each), their tokens in groups, and one reference product per token. */
struct moe_case {
    enum ntp_type t;
    int64_t n_exp, rows, k, n_slot, ldy;
    struct ntp_moe_group group[4];
    int64_t n_group;
    uint8_t *w, *x; /* weights (all experts, the file's layout) and slot activations */
    size_t wrow, xrow;
    float *wf, *xf, *yref; /* dequantized operands; yref [n_slot][rows] */
};

static void moe_case_make(const struct ntp_kernels *ref, struct moe_case *c)
{
    const enum ntp_type at = ref->ref[c->t].act_type;
    const int64_t nw = c->n_exp * c->rows;
    CHECK_OK(ntp_type_row_size(c->t, c->k, &c->wrow));
    CHECK_OK(ntp_type_row_size(at, c->k, &c->xrow));
    float *src = malloc((size_t)((nw > c->n_slot ? nw : c->n_slot) * c->k) * sizeof(float));
    c->w = malloc(c->wrow * (size_t)nw);
    c->x = malloc(c->xrow * (size_t)c->n_slot);
    c->wf = malloc((size_t)(nw * c->k) * sizeof(float));
    c->xf = malloc((size_t)(c->n_slot * c->k) * sizeof(float));
    c->yref = malloc((size_t)(c->n_slot * c->rows) * sizeof(float));
    for (int64_t i = 0; i < nw * c->k; i++)
        src[i] = frand() * (i / 32 % 5 == 1 ? 20.0f : 1.0f);
    if (c->t == NTP_TYPE_F32)
        memcpy(c->w, src, c->wrow * (size_t)nw);
    else
        CHECK_OK(ntp__quantize_rows(c->t, src, c->w, nw, c->k));
    for (int64_t r = 0; r < nw; r++)
        if (c->t == NTP_TYPE_F32)
            memcpy(c->wf + r * c->k, c->w + r * c->wrow, c->wrow);
        else
            CHECK_OK(ntp__dequantize_row(c->t, c->w + r * c->wrow, c->wf + r * c->k, c->k));
    for (int64_t i = 0; i < c->n_slot * c->k; i++)
        src[i] = frand();
    for (int64_t s = 0; s < c->n_slot; s++) {
        if (at == NTP_TYPE_F32)
            memcpy(c->x + s * c->xrow, src + s * c->k, c->xrow);
        else
            ref->ref[c->t].quantize_act(src + s * c->k, c->x + s * c->xrow, c->k);
        if (at == NTP_TYPE_F32)
            memcpy(c->xf + s * c->k, src + s * c->k, (size_t)c->k * sizeof(float));
        else
            CHECK_OK(ntp__dequantize_row(at, c->x + s * c->xrow, c->xf + s * c->k, c->k));
    }
    /* the reference: each slot alone against its expert's whole matrix */
    for (int64_t g = 0; g < c->n_group; g++)
        for (int64_t s = c->group[g].slot0; s < c->group[g].slot0 + c->group[g].n_tok; s++) {
            const struct ntp_matmul_args a = {
                .wtype = c->t,
                .w = c->w + (size_t)(c->group[g].expert * c->rows) * c->wrow,
                .w_stride = c->wrow,
                .n_rows = c->rows,
                .k = c->k,
                .x = c->x + s * c->xrow,
                .x_stride = c->xrow,
                .n_tok = 1,
                .y = c->yref + s * c->rows,
                .ldy = c->rows,
                .ith = 0,
                .nth = 1,
            };
            CHECK_OK(ref->ref[c->t].matmul(&a));
        }
    free(src);
}

static void moe_case_free(struct moe_case *c)
{
    free(c->w);
    free(c->x);
    free(c->wf);
    free(c->xf);
    free(c->yref);
}

/* The group of slot s, or -1 (a slot no group covers: must stay untouched). */
static int64_t group_of(const struct moe_case *c, int64_t s)
{
    for (int64_t g = 0; g < c->n_group; g++)
        if (s >= c->group[g].slot0 && s < c->group[g].slot0 + c->group[g].n_tok)
            return g;
    return -1;
}

/* Check y against the reference; returns the mismatches. */
static int moe_compare(const struct moe_case *c, const float *y, const char *what)
{
    const double tol = (c->t <= NTP_TYPE_F16 || c->t == NTP_TYPE_BF16) ? 2e-4 : 1e-4;
    int bad = 0;
    for (int64_t s = 0; s < c->n_slot; s++) {
        const int64_t g = group_of(c, s);
        for (int64_t r = 0; r < c->ldy; r++) {
            const float v = y[s * c->ldy + r];
            bool ok;
            if (g < 0 || r >= c->rows) {
                ok = isnan(v);
            } else {
                const float *wr = c->wf + (c->group[g].expert * c->rows + r) * c->k;
                double sum = 0;
                for (int64_t j = 0; j < c->k; j++)
                    sum += fabs((double)wr[j] * c->xf[s * c->k + j]);
                ok = isfinite(v) && fabs((double)v - c->yref[s * c->rows + r]) <= tol * sum + 1e-30;
            }
            if (!ok && bad++ < 3)
                fprintf(stderr, "  %s: slot %lld row %lld: %g, reference %g\n", what, (long long)s,
                        (long long)r, v, g < 0 || r >= c->rows ? NAN : c->yref[s * c->rows + r]);
        }
    }
    return bad;
}

static const enum ntp_type types[] = {
    NTP_TYPE_F32,  NTP_TYPE_F16,  NTP_TYPE_BF16, NTP_TYPE_Q4_0, NTP_TYPE_Q4_1,
    NTP_TYPE_Q5_0, NTP_TYPE_Q5_1, NTP_TYPE_Q8_0, NTP_TYPE_Q2_K, NTP_TYPE_Q3_K,
    NTP_TYPE_Q4_K, NTP_TYPE_Q5_K, NTP_TYPE_Q6_K,
};

/* One shape: n_exp experts of rows x kblocks blocks, the groups given as (expert, tokens). */
static void run_shape(const struct ntp_kernels *ref, const struct ntp_kernels *k, enum ntp_type t,
                      int64_t rows, int64_t kblocks, const int64_t (*grp)[2], int64_t n_group)
{
    struct moe_case c = {.t = t, .n_exp = 6, .rows = rows, .n_group = n_group};
    c.k = kblocks * ntp_type_get_traits(t)->block_size;
    int64_t slot = 1; /* slot 0 belongs to no group: it must stay NaN */
    for (int64_t g = 0; g < n_group; g++) {
        c.group[g] = (struct ntp_moe_group){grp[g][0], slot, grp[g][1]};
        slot += grp[g][1];
    }
    c.n_slot = slot;
    c.ldy = rows + 3;
    moe_case_make(ref, &c);
    /* the ISA's layout when it packs this type and the experts fill whole groups */
    const enum ntp_pack_layout l = rows % NTP_PACK_ROWS == 0 ? k->type[t].pack : NTP_PACK_NONE;
    uint8_t *w = malloc(c.wrow * (size_t)(c.n_exp * rows));
    memcpy(w, c.w, c.wrow * (size_t)(c.n_exp * rows));
    for (int64_t g = 0; l != NTP_PACK_NONE && g < c.n_exp * rows / NTP_PACK_ROWS; g++)
        ntp__pack_group(l, t, w + (size_t)g * c.wrow * NTP_PACK_ROWS,
                        c.w + (size_t)g * c.wrow * NTP_PACK_ROWS, c.wrow, c.k);
    const size_t ny = (size_t)(c.n_slot * c.ldy);
    float *y = malloc(ny * sizeof(float)), *y1 = malloc(ny * sizeof(float));
    int bad = 0;
    static const int nths[] = {1, 2, 3, 7};
    for (size_t ni = 0; ni < sizeof nths / sizeof nths[0]; ni++) {
        const int nth = nths[ni];
        for (size_t i = 0; i < ny; i++)
            y[i] = NAN;
        for (int ith = 0; ith < nth; ith++) {
            /* each thread on its own poisoned copy: its share must not overlap another's */
            float *yt = malloc(ny * sizeof(float));
            for (size_t i = 0; i < ny; i++)
                yt[i] = NAN;
            const struct ntp_moe_matmul_args a = {
                .wtype = t,
                .w = w,
                .w_stride = c.wrow,
                .layout = l,
                .rows = rows,
                .k = c.k,
                .group = c.group,
                .n_group = c.n_group,
                .x = c.x,
                .x_stride = c.xrow,
                .y = yt,
                .ldy = c.ldy,
                .ith = ith,
                .nth = nth,
            };
            CHECK_OK(ntp__kernels_matmul_experts(k, &a));
            for (size_t i = 0; i < ny; i++)
                if (!isnan(yt[i])) {
                    bad += !isnan(y[i]); /* written twice */
                    y[i] = yt[i];
                }
            free(yt);
        }
        char what[96];
        snprintf(what, sizeof what, "%s %s%s rows %lld k %lld, %d threads", k->isa,
                 ntp_type_name(t), l != NTP_PACK_NONE ? " packed" : "", (long long)rows,
                 (long long)c.k, nth);
        bad += moe_compare(&c, y, what);
        if (nth == 1)
            memcpy(y1, y, ny * sizeof(float));
        else
            bad += memcmp(y, y1, ny * sizeof(float)) != 0; /* NaN bits alike: same poison */
    }
    if (bad)
        fprintf(stderr, "%s %s rows %lld: %d mismatches\n", k->isa, ntp_type_name(t),
                (long long)rows, bad);
    CHECK(bad == 0);
    free(y);
    free(y1);
    free(w);
    moe_case_free(&c);
}

static void test_experts(const struct ntp_kernels *ref, const struct ntp_kernels *k)
{
    /* decode: two experts of one token; prefill: uneven groups, the last expert included, one
       of 36 tokens (the AMX tiles and the AVX-512 planes' drivers) */
    static const int64_t decode[][2] = {{4, 1}, {1, 1}};
    static const int64_t prefill[][2] = {{0, 5}, {2, 1}, {3, 36}, {5, 2}};
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
        const enum ntp_type t = types[ti];
        const int64_t kb = ntp_type_get_traits(t)->block_size == 256 ? 2 : 5;
        run_shape(ref, k, t, 48, kb, decode, 2);
        run_shape(ref, k, t, 48, kb, prefill, 4);
        run_shape(ref, k, t, 37, 1, prefill, 4); /* rows in no whole runs, never packed */
        run_shape(ref, k, t, 16, kb, prefill + 1, 3);
    }
}

/*
 * deepseek2's routing (ntp__moe_route_gated) on crafted logits: softmax
 * probabilities without renormalisation; a selection bias that changes the
 * choice but not the weights; groups that exclude a globally strong expert;
 * sigmoid, normalised and scaled weights.
 */
static void test_route_gated(void)
{
    int32_t sel[4];
    float w[4], scratch[16];
    const float l[] = {2.0f, 1.0f, 0.0f, -1.0f};
    struct ntp_moe_gating g = {NTP_MOE_SOFTMAX, false, 1.0f, 0, 0};
    ntp__moe_route_gated(l, 4, 2, &g, NULL, scratch, sel, w);
    double z = exp(2.0) + exp(1.0) + exp(0.0) + exp(-1.0);
    CHECK(sel[0] == 0 && sel[1] == 1);
    CHECK(fabs(w[0] - exp(2.0) / z) < 1e-6 && fabs(w[1] - exp(1.0) / z) < 1e-6);
    /* the bias lifts expert 3 above expert 1; its weight stays its probability */
    const float bias[] = {0.0f, 0.0f, 0.0f, 0.5f};
    ntp__moe_route_gated(l, 4, 2, &g, bias, scratch, sel, w);
    CHECK(sel[0] == 0 && sel[1] == 3);
    CHECK(fabs(w[1] - exp(-1.0) / z) < 1e-6);
    /* groups {0,1} {2,3} {4,5} {6,7}, best two of each summed; one group used: expert 0's
       group scores 5 + 0 while group {2,3} scores 4 + 3, so expert 0 (the best) is out */
    const float m[] = {5.0f, 0.0f, 4.0f, 3.0f, 1.0f, 1.0f, 0.0f, 0.0f};
    g = (struct ntp_moe_gating){NTP_MOE_SIGMOID, true, 2.5f, 4, 1};
    ntp__moe_route_gated(m, 8, 2, &g, NULL, scratch, sel, w);
    CHECK(sel[0] == 2 && sel[1] == 3);
    const double s2 = 1 / (1 + exp(-4.0)), s3 = 1 / (1 + exp(-3.0));
    CHECK(fabs(w[0] - 2.5 * s2 / (s2 + s3)) < 1e-6 && fabs(w[1] - 2.5 * s3 / (s2 + s3)) < 1e-6);
    /* two groups used: expert 0 is back */
    g.n_group_used = 2;
    ntp__moe_route_gated(m, 8, 2, &g, NULL, scratch, sel, w);
    CHECK(sel[0] == 0 && sel[1] == 2);
    /* qwen3moe's gate is ntp__moe_route */
    g = (struct ntp_moe_gating){NTP_MOE_SOFTMAX_TOPK, false, 1.0f, 0, 0};
    ntp__moe_route_gated(l, 4, 2, &g, NULL, scratch, sel, w);
    CHECK(sel[0] == 0 && sel[1] == 1 && fabs(w[0] + w[1] - 1.0) < 1e-6);
}

int main(void)
{
    test_route();
    test_route_gated();
    struct ntp_kernels ref, k;
    CHECK_OK(ntp__kernels_init(&ref, "ref"));
    const char *isas[] = {"ref", "avx2", "avx512", "amx"};
    for (size_t i = 0; i < sizeof isas / sizeof isas[0]; i++) {
        if (!ntp__kernels_isa_ok(isas[i])) {
            printf("%s: skipped, this CPU lacks it\n", isas[i]);
            continue;
        }
        CHECK_OK(ntp__kernels_init(&k, isas[i]));
        printf("%s: grouped expert products\n", k.isa);
        test_experts(&ref, &k);
    }
    return ntp_test_result("kernels_moe");
}
