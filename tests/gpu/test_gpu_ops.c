/*
 * test_gpu_ops.c - every CUDA kernel against the CPU reference on random
 * data (needs a GPU; otherwise prints "SKIP: no CUDA device (...)" and exits 77):
 *  - matrix times activations for F32, F16, Q4_0, Q8_0, Q4_K, Q6_K (read
 *    directly) and Q4_1, Q5_0, Q5_K, Q3_K, BF16 (through the F16 copy the
 *    device makes), with 1, 3 and 8 tokens (matrix-vector kernel) and 17
 *    tokens (cuBLAS tiles, several and a ragged one), odd row counts, against
 *    dequantize-with-the-reference then multiply in double;
 *  - RMSNorm, SwiGLU, GeGLU and RoPE (normal and NeoX, partial rotation)
 *    against the reference float ops.
 * Attention, the KV cache and the layer order are covered by test_gpu_layers.
 * Without a GPU (NTP_GPU_STAND_IN=cpu, test 'gpu_ops_host' of the fast suite)
 * only the checks that need none run: the block sizes the kernels assume,
 * and their dequantizers run on the host against the reference.
 *
 * Bounds (normalized mean squared error): the native formats dequantize
 * exactly and differ only by float summation order, so 1e-9; the F16 copies
 * add one binary16 rounding per weight (relative 2^-11), so 1e-6.
 */
#include "gpu_util.h"

#include "kernels/kernels.h"
#include "kernels/quant.h"

#include <stdlib.h>
#include <string.h>

#define MAX_K   1024
#define MAX_R   67
#define MAX_TOK 17

static float wf[MAX_R * MAX_K], xs[MAX_TOK * MAX_K], y[MAX_TOK * MAX_R], yref[MAX_TOK * MAX_R];
static uint8_t wq[MAX_R * MAX_K * 4];

/* y = W x in double from the reference dequantization of the quantized rows. */
static void reference_mm(enum ntp_type t, int64_t rows, int64_t k, int64_t n_tok)
{
    size_t row;
    CHECK_OK(ntp_type_row_size(t, k, &row));
    float deq[MAX_K];
    for (int64_t r = 0; r < rows; r++) {
        CHECK_OK(ntp__dequantize_row(t, wq + (size_t)r * row, deq, k));
        for (int64_t tk = 0; tk < n_tok; tk++) {
            double s = 0;
            for (int64_t i = 0; i < k; i++)
                s += (double)deq[i] * xs[tk * k + i];
            yref[tk * rows + r] = (float)s;
        }
    }
}

static void test_matmul(struct ntp_device *d, enum ntp_type t, int64_t rows, int64_t k,
                        int64_t n_tok, double bound)
{
    for (int64_t i = 0; i < rows * k; i++)
        wf[i] = gpu_rand();
    for (int64_t i = 0; i < n_tok * k; i++)
        xs[i] = gpu_rand();
    CHECK_OK(ntp__quantize_rows(t, wf, wq, rows, k));
    reference_mm(t, rows, k, n_tok);
    memset(y, 0xff, sizeof y); /* NaN: an unwritten result fails the bound */
    const struct ntp_cuda_test_matmul a = {t, wq, rows, k, xs, n_tok, y};
    CHECK_OK(ntp__cuda_test_matmul(d, &a));
    const double e = gpu_nmse(y, yref, (size_t)(rows * n_tok));
    printf("matmul %-5s %3lld x %3lld, %2lld tok: nmse %.2e (bound %.0e)\n", ntp_type_name(t),
           (long long)rows, (long long)k, (long long)n_tok, e, bound);
    CHECK(e <= bound);
}

static void test_matmuls(struct ntp_device *d)
{
    static const enum ntp_type native[] = {NTP_TYPE_F32,  NTP_TYPE_F16,  NTP_TYPE_Q4_0,
                                           NTP_TYPE_Q8_0, NTP_TYPE_Q4_K, NTP_TYPE_Q6_K};
    static const enum ntp_type via_f16[] = {NTP_TYPE_Q4_1, NTP_TYPE_Q5_0, NTP_TYPE_Q5_K,
                                            NTP_TYPE_Q3_K, NTP_TYPE_BF16};
    static const int64_t toks[] = {1, 3, 8, 17};
    for (size_t i = 0; i < sizeof native / sizeof native[0]; i++)
        for (size_t j = 0; j < sizeof toks / sizeof toks[0]; j++) {
            const int64_t k = ntp_type_get_traits(native[i])->block_size == 256 ? 512 : 96;
            /* Quantized weights above 8 tokens: binary16 products (cuda_int.h), 2^-11 apart. */
            const bool half = native[i] != NTP_TYPE_F32 && native[i] != NTP_TYPE_F16;
            test_matmul(d, native[i], 67, k, toks[j], half && toks[j] > 8 ? 1e-6 : 1e-9);
        }
    /* Float rows whose width is not a multiple of 32 take the partial-unit path. */
    test_matmul(d, NTP_TYPE_F32, 5, 70, 1, 1e-9);
    test_matmul(d, NTP_TYPE_F16, 5, 70, 17, 1e-9);
    for (size_t i = 0; i < sizeof via_f16 / sizeof via_f16[0]; i++) {
        const int64_t k = ntp_type_get_traits(via_f16[i])->block_size == 256 ? 256 : 64;
        test_matmul(d, via_f16[i], 33, k, 2, 1e-6);
        test_matmul(d, via_f16[i], 33, k, 17, 1e-6);
    }
}

static void test_rmsnorm(struct ntp_device *d)
{
    enum { N = 200, ROWS = 5 };
    static float x[ROWS * N], w[N], out[ROWS * N], ref[ROWS * N];
    for (int i = 0; i < ROWS * N; i++)
        x[i] = 3.0f * gpu_rand();
    for (int i = 0; i < N; i++)
        w[i] = gpu_rand();
    for (int pass = 0; pass < 2; pass++) {
        const float *wp = pass ? NULL : w;
        for (int r = 0; r < ROWS; r++)
            ntp__rmsnorm_f32(ref + r * N, x + r * N, wp, N, 1e-5f);
        const struct ntp_cuda_test_rows a = {.op = NTP_CUDA_TEST_RMSNORM,
                                             .x = x,
                                             .w = wp,
                                             .n = N,
                                             .n_rows = ROWS,
                                             .eps = 1e-5f,
                                             .y = out};
        CHECK_OK(ntp__cuda_test_rows(d, &a));
        const double e = gpu_nmse(out, ref, ROWS * N);
        printf("rmsnorm %s weight: nmse %.2e\n", wp ? "with" : "without", e);
        CHECK(e <= 1e-11);
    }
}

/* A gated activation (op: SWIGLU or GEGLU) against its reference ref_fn, gates in [-6, 6). */
static void test_glu(struct ntp_device *d, enum ntp_cuda_test_op op,
                     void (*ref_fn)(float *, const float *, const float *, int64_t),
                     const char *name)
{
    enum { N = 1000 };
    static float g[N], u[N], out[N], ref[N];
    for (int i = 0; i < N; i++) {
        g[i] = 6.0f * gpu_rand();
        u[i] = gpu_rand();
    }
    ref_fn(ref, g, u, N);
    const struct ntp_cuda_test_rows a = {.op = op, .x = g, .x2 = u, .n = N, .n_rows = 1, .y = out};
    CHECK_OK(ntp__cuda_test_rows(d, &a));
    const double e = gpu_nmse(out, ref, N);
    printf("%s: nmse %.2e\n", name, e);
    CHECK(e <= 1e-11);
}

/* RoPE of 3 tokens x 4 heads of width 64, rotating n_rot of them, against the reference. */
static void test_rope(struct ntp_device *d, bool neox, int64_t n_rot)
{
    enum { T = 3, H = 4, HD = 64 };
    static float x[T * H * HD], out[T * H * HD], ref[T * H * HD], cs[T * HD];
    const struct ntp_rope_cfg rc = {.n_rot = n_rot,
                                    .neox = neox,
                                    .freq_base = 10000.0f,
                                    .freq_scale = 1.0f,
                                    .attn_factor = 1.0f,
                                    .beta_fast = 32.0f,
                                    .beta_slow = 1.0f,
                                    .n_ctx_orig = 4096};
    for (int i = 0; i < T * H * HD; i++)
        x[i] = gpu_rand();
    memcpy(ref, x, sizeof x);
    for (int t = 0; t < T; t++) {
        ntp__rope_cache_f32(cs + t * n_rot, 17 + 40 * t, &rc);
        for (int h = 0; h < H; h++)
            ntp__rope_apply_f32(ref + (t * H + h) * HD, cs + t * n_rot, n_rot, neox);
    }
    const struct ntp_cuda_test_rows a = {.op = NTP_CUDA_TEST_ROPE,
                                         .x = x,
                                         .cs = cs,
                                         .n = HD,
                                         .n_rows = T * H,
                                         .heads = H,
                                         .n_rot = n_rot,
                                         .neox = neox,
                                         .y = out};
    CHECK_OK(ntp__cuda_test_rows(d, &a));
    const double e = gpu_nmse(out, ref, T * H * HD);
    printf("rope %s n_rot %lld: nmse %.2e\n", neox ? "neox" : "norm", (long long)n_rot, e);
    CHECK(e <= 1e-12);
}

/* The block sizes the kernels hard-code match the type table (runs without a GPU too). */
static void test_block_sizes(void)
{
    static const enum ntp_type native[] = {NTP_TYPE_F32,  NTP_TYPE_F16,  NTP_TYPE_Q4_0,
                                           NTP_TYPE_Q8_0, NTP_TYPE_Q4_K, NTP_TYPE_Q6_K};
    for (size_t i = 0; i < sizeof native / sizeof native[0]; i++) {
        const size_t want = ntp_type_get_traits(native[i])->type_size;
        const size_t got = ntp__cuda_test_block_bytes(native[i]);
        if (got != want) {
            fprintf(stderr, "%s: the CUDA kernels read %zu-byte blocks, the type table says %zu\n",
                    ntp_type_name(native[i]), got, want);
            ntp_test_failures++;
        }
    }
    CHECK(ntp__cuda_test_block_bytes(NTP_TYPE_Q5_K) == 0);
}

/*
 * The kernels' dequantizers, run on the host, against the reference on random
 * rows of every type they read: the same float operations, so equal to a few
 * ulps (the reference never fuses a multiply-add; the compiler may here).
 */
static void test_host_dequant(void)
{
    static const enum ntp_type native[] = {NTP_TYPE_F32,  NTP_TYPE_F16,  NTP_TYPE_Q4_0,
                                           NTP_TYPE_Q8_0, NTP_TYPE_Q4_K, NTP_TYPE_Q6_K};
    enum { K = 1024, ROWS = 8 };
    static float ref[K], got[K];
    for (size_t i = 0; i < sizeof native / sizeof native[0]; i++) {
        size_t row;
        CHECK_OK(ntp_type_row_size(native[i], K, &row));
        for (int j = 0; j < ROWS * K; j++)
            wf[j] = (j % 97 == 0 ? 8.0f : 1.0f) * gpu_rand(); /* some outliers, wide scales */
        CHECK_OK(ntp__quantize_rows(native[i], wf, wq, ROWS, K));
        double worst = 0;
        for (int r = 0; r < ROWS; r++) {
            CHECK_OK(ntp__dequantize_row(native[i], wq + (size_t)r * row, ref, K));
            CHECK_OK(ntp__cuda_test_dequant_host(native[i], wq + (size_t)r * row, K, got));
            const double e = gpu_nmse(got, ref, K);
            worst = e > worst ? e : worst;
        }
        printf("host dequant %-5s: nmse %.2e\n", ntp_type_name(native[i]), worst);
        CHECK(worst <= 1e-12);
    }
}

/*
 * The matrix-vector kernel's lane arithmetic (which weights and which x each
 * of 32 lanes multiplies), run on the host against the reference dot
 * product: rows of several steps and, for Q4_0, Q8_0 and floats, rows that
 * end inside a step (floats: inside a lane's elements).
 */
static void test_host_dot(void)
{
    static const enum ntp_type native[] = {NTP_TYPE_F32,  NTP_TYPE_F16,  NTP_TYPE_Q4_0,
                                           NTP_TYPE_Q8_0, NTP_TYPE_Q4_K, NTP_TYPE_Q6_K};
    static const int64_t ks[] = {768, 96, 70};
    for (size_t i = 0; i < sizeof native / sizeof native[0]; i++) {
        const int64_t bs = ntp_type_get_traits(native[i])->block_size;
        for (size_t j = 0; j < sizeof ks / sizeof ks[0]; j++) {
            const int64_t k = ks[j];
            if (k % bs != 0)
                continue;
            size_t row;
            CHECK_OK(ntp_type_row_size(native[i], k, &row));
            for (int64_t e = 0; e < 4 * k; e++)
                wf[e] = gpu_rand();
            for (int64_t e = 0; e < k; e++)
                xs[e] = gpu_rand();
            CHECK_OK(ntp__quantize_rows(native[i], wf, wq, 4, k));
            float deq[MAX_K], got[4], ref[4];
            for (int r = 0; r < 4; r++) {
                CHECK_OK(ntp__dequantize_row(native[i], wq + (size_t)r * row, deq, k));
                double s = 0;
                for (int64_t e = 0; e < k; e++)
                    s += (double)deq[e] * xs[e];
                ref[r] = (float)s;
                CHECK_OK(ntp__cuda_test_dot_host(native[i], wq + (size_t)r * row, k, xs, &got[r]));
            }
            const double e = gpu_nmse(got, ref, 4);
            printf("host dot %-5s k %3lld: nmse %.2e\n", ntp_type_name(native[i]), (long long)k, e);
            CHECK(e <= 1e-10);
        }
    }
}

int main(void)
{
    if (ntp_cuda_compiled()) {
        CHECK_OK(ntp__cuda_test_cublas()); /* dlopen finds the library the build found */
        test_block_sizes();
        test_host_dequant();
        test_host_dot();
    }
    /* The stand-in run (fast suite) checks only what needs no GPU: the tests above. */
    if (ntp_test_failures || gpu_stand_in())
        return ntp_test_result("gpu_ops");
    gpu_require(false);
    struct ntp_device *d = gpu_open();
    if (d == NULL)
        return ntp_test_result("gpu_ops");
    test_matmuls(d);
    test_rmsnorm(d);
    test_glu(d, NTP_CUDA_TEST_SWIGLU, ntp__swiglu_f32, "swiglu");
    test_glu(d, NTP_CUDA_TEST_GEGLU, ntp__geglu_f32, "geglu");
    test_rope(d, false, 64);
    test_rope(d, true, 64);
    test_rope(d, true, 32);
    d->iface->destroy(d);
    return ntp_test_result("gpu_ops");
}
