/*
 * test_gpu_layers.c - the CUDA device against the CPU device, layer by layer
 * (needs a GPU; otherwise "SKIP: no CUDA device (...)", exit 77).
 *
 * A small model is generated (ntp__model_gen) and loaded on the CPU; its
 * weights are then copied as they are into GPU memory, and both devices run
 * the same batches through run_layers and run_output: a prefill of 20 tokens
 * (above the matrix-vector limit, so the cuBLAS path) and then 16 single
 * tokens (the matrix-vector kernels, the KV cache read back; from position
 * 32 on, attention splits each head's positions over two blocks, which a
 * second kernel merges). After every
 * call the hidden states and the logits must agree:
 *  - float weights: the two devices compute the same float operations in
 *    another order, so max |gpu - cpu| / max |cpu| <= 1e-4 (1e-3 with an
 *    F16 KV cache, whose roundings may fall differently);
 *  - quantized weights: the CPU quantizes activations to Q8 before each
 *    product and the GPU keeps them float, which moves the logits by about
 *    as much as the CPU differs from the float reference (2e-2 RMS on
 *    qwen3 Q4_K_M on an H200). Against the CPU the bounds only catch a
 *    broken run (max |diff| / max |cpu| <= 0.15, RMS relative difference,
 *    the square root of the NMSE, <= 5e-2); the GPU's logits of all 36
 *    positions are then held against the numpy reference, which multiplies
 *    as the GPU does: max <= 5e-3, RMS <= 2e-3. The CPU device's weights
 *    are packed for its kernels (kernels/packed.h): the CUDA device must
 *    refuse them as they are, and they are unpacked into the file's rows
 *    before they go to the GPU.
 *  - greedy tokens: every row whose top two CPU logits are further apart
 *    than twice the row's largest difference (so that no rounding could swap
 *    them) has the same argmax on both; rows closer than that are counted.
 * Covered: llama (normal RoPE), qwen2 (biases, NeoX), qwen3 (q/k norm),
 * gemma3 (post-norms, GeGLU, five local layers with their own RoPE base and
 * windows of 3, 5 and 7 positions, shorter than the prompt, then a global
 * one), GQA, F16 and F32 KV caches, Q4_0, Q8_0, Q4_K_M (Q4_K + Q6_K), Q5_K
 * (F16 copies), a tied output head, the widest head the kernels take (256).
 * gemma3 runs with float weights only: quantized, the CPU's Q8 activations
 * move its logits by 2.5-3.5e-2 (RMS) from float activations (measured
 * against the numpy reference, which multiplies as the GPU does), beyond
 * the bounds above; the quantized kernels are those the others cover.
 * The context is longer than twice the local layers' ring (window + BATCH -
 * 1, config.h ntp__kv_ring), so the CPU keeps those in its ring layout while
 * the GPU keeps its plain one: the two layouts are held against each other.
 */
#include "gpu_util.h"

#include "../model/forward_util.h"
#include "kernels/packed.h"
#include "model/model.h"

#define N_PRE  20
#define N_DEC  16
#define N_CTX  80
#define BATCH  32
#define MAX_NV 300

/* The GPU's copy of the CPU device's weights. */
struct gpu_copy {
    struct ntp_dev_weights w;
    void *bufs[512];
    int n;
};

/*
 * src into GPU memory in the file's row layout: the CPU device packs its
 * matrices (kernels/packed.h) for its own kernels, so packed groups are
 * unpacked on the host first.
 */
static ntp_status copy_tensor(struct ntp_device *g, struct gpu_copy *gc,
                              const struct ntp_dev_tensor *src, struct ntp_dev_tensor *dst)
{
    *dst = *src;
    dst->layout = NTP_PACK_NONE;
    if (src->data == NULL)
        return NTP_OK;
    const size_t bytes = src->row_stride * (size_t)src->ne[1];
    uint8_t *rows = src->data;
    if (src->layout != NTP_PACK_NONE) {
        rows = malloc(bytes);
        if (rows == NULL)
            return NTP_E_NOMEM;
        const size_t group = src->row_stride * NTP_PACK_ROWS;
        for (int64_t r = 0; r < src->ne[1]; r += NTP_PACK_ROWS)
            ntp__unpack_group(
                src->layout, src->type, rows + (size_t)r * src->row_stride, src->row_stride,
                (const uint8_t *)src->data + (size_t)r / NTP_PACK_ROWS * group, src->ne[0]);
    }
    ntp_status s = g->iface->buffer_alloc(g, bytes, &dst->data);
    if (s == NTP_OK) {
        gc->bufs[gc->n++] = dst->data;
        s = g->iface->upload_2d(g, dst->data, src->row_stride, rows, src->row_stride,
                                src->row_stride, (size_t)src->ne[1]);
    }
    if (rows != src->data)
        free(rows);
    return s;
}

static ntp_status copy_weights(struct ntp_device *g, const struct ntp_model_device *md,
                               struct gpu_copy *gc)
{
    const size_t n = (size_t)md->shard.n_layer * NTP_T_COUNT;
    gc->w.layer = calloc(n, sizeof *gc->w.layer);
    if (gc->w.layer == NULL)
        return NTP_E_NOMEM;
    ntp_status s = NTP_OK;
    for (size_t i = 0; i < n && s == NTP_OK; i++)
        s = copy_tensor(g, gc, &md->w.layer[i], &gc->w.layer[i]);
    for (int id = 0; id < NTP_T_COUNT && s == NTP_OK; id++)
        s = copy_tensor(g, gc, &md->w.global[id], &gc->w.global[id]);
    return s;
}

/* Accepted differences between the devices. */
struct bound {
    double max_rel; /* max |gpu - cpu| / max |cpu| */
    double rms_rel; /* sqrt(sum (gpu - cpu)^2 / sum cpu^2) */
};

/* Rows whose argmax differ although the CPU's margin rules out a rounding flip. */
static int greedy_mismatches(const float *lg, const float *lc, int64_t n, int64_t nv, int *close)
{
    int bad = 0;
    for (int64_t t = 0; t < n; t++) {
        const float *a = lg + t * nv, *b = lc + t * nv;
        const int32_t ib = fwd_argmax(b, (int32_t)nv);
        float second = -INFINITY, diff = 0;
        for (int64_t i = 0; i < nv; i++) {
            if (i != ib && b[i] > second)
                second = b[i];
            diff = fmaxf(diff, fabsf(a[i] - b[i]));
        }
        if (b[ib] - second <= 2 * diff) {
            (*close)++;
            continue;
        }
        bad += fwd_argmax(a, (int32_t)nv) != ib;
    }
    return bad;
}

static void compare(const char *name, const char *what, const float *g, const float *c, size_t n,
                    struct bound b)
{
    const double mx = fwd_rel_err(g, c, n), rms = sqrt(gpu_nmse(g, c, n));
    printf("  %-7s max %.2e rms %.2e\n", what, mx, rms);
    if (!(mx <= b.max_rel && rms <= b.rms_rel)) {
        fprintf(stderr, "%s: %s differ: max %.2e (bound %.0e), rms %.2e (bound %.0e)\n", name, what,
                mx, b.max_rel, rms, b.rms_rel);
        ntp_test_failures++;
    }
}

/* One batch on both devices; compares hidden states, logits and greedy tokens. */
static void step(struct ntp_model *m, struct ntp_device *g, struct ntp_dev_state *sc,
                 struct ntp_dev_state *sg, const int32_t *toks, int64_t n, int64_t pos,
                 struct bound b, const char *name, float *keep)
{
    static float hin[BATCH * 512], hc[BATCH * 512], hg[BATCH * 512];
    static float lc[BATCH * MAX_NV], lg[BATCH * MAX_NV];
    struct ntp_device *c = m->dev[0].dev;
    const int64_t e = m->cfg.hp.n_embd, nv = m->cfg.hp.n_vocab;
    for (int64_t t = 0; t < n; t++)
        ntp__model_embed(m, toks[t], hin + t * e);
    const struct ntp_dev_run run = {
        .pos = pos, .n_tok = n, .layer0 = 0, .layer1 = m->cfg.hp.n_layer};
    const struct ntp_dev_output_run oc = {.tok0 = 0, .n_tok = n, .logits = lc, .ld = nv};
    const struct ntp_dev_output_run og = {.tok0 = 0, .n_tok = n, .logits = lg, .ld = nv};
    CHECK_OK(c->iface->hidden_write(c, sc, hin, n));
    CHECK_OK(g->iface->hidden_write(g, sg, hin, n));
    CHECK_OK(c->iface->run_layers(c, sc, &run));
    CHECK_OK(g->iface->run_layers(g, sg, &run));
    CHECK_OK(c->iface->hidden_read(c, sc, hc, n));
    CHECK_OK(g->iface->hidden_read(g, sg, hg, n));
    CHECK_OK(c->iface->run_output(c, sc, &oc));
    CHECK_OK(g->iface->run_output(g, sg, &og));
    printf("%s pos %lld, %lld tokens:\n", name, (long long)pos, (long long)n);
    compare(name, "hidden", hg, hc, (size_t)(n * e), b);
    compare(name, "logits", lg, lc, (size_t)(n * nv), b);
    int close = 0;
    const int bad = greedy_mismatches(lg, lc, n, nv, &close);
    printf("  greedy: %d decisive rows differ, %d rows too close to call\n", bad, close);
    CHECK(bad == 0);
    if (keep)
        memcpy(keep, lg, sizeof(float) * (size_t)(n * nv));
}

/*
 * Quantized models: the GPU's logits of every position against the numpy
 * reference, which multiplies float activations by the dequantized weights
 * as the GPU does (F16 cache on both): only the GPU's own roundings (float
 * sums in another order, F16 copies of types it does not read directly)
 * remain.
 */
static void check_reference(const char *name, const char *path, const int32_t *toks,
                            const float *got, int64_t nv)
{
    static float ref[(N_PRE + N_DEC) * MAX_NV];
    int32_t gen[1];
    const size_t n = (size_t)(N_PRE + N_DEC) * (size_t)nv;
    if (fwd_reference(path, toks, N_PRE + N_DEC, "f16", 0, ref, n, gen) != 0) {
        fprintf(stderr, "%s: the reference failed\n", name);
        ntp_test_failures++;
        return;
    }
    const double mx = fwd_rel_err(got, ref, n), rms = sqrt(gpu_nmse(got, ref, n));
    printf("%s: logits vs the reference: max %.2e rms %.2e\n", name, mx, rms);
    if (!(mx <= 5e-3 && rms <= 2e-3)) {
        fprintf(stderr,
                "%s: logits differ from the reference: max %.2e (bound 5e-3), rms %.2e "
                "(bound 2e-3)\n",
                name, mx, rms);
        ntp_test_failures++;
    }
}

/*
 * The CPU device's own weights, packed for its kernels: the CUDA device must
 * refuse them, naming the tensor, rather than read packed groups as rows.
 */
static void check_packed_refused(struct ntp_device *g, const struct ntp_model_device *md,
                                 const struct ntp_dev_state_params *sp, const char *name)
{
    bool packed = false;
    for (int64_t i = 0; i < md->shard.n_layer * NTP_T_COUNT; i++)
        packed |= md->w.layer[i].data != NULL && md->w.layer[i].layout != NTP_PACK_NONE;
    if (!packed)
        return;
    struct ntp_dev_state *s = NULL;
    CHECK_STATUS(g->iface->state_new(g, sp, &s), NTP_E_INTERNAL);
    CHECK(s == NULL);
    CHECK(strstr(ntp_last_error(), "packed layout") != NULL);
    printf("%s: packed weights refused: %s\n", name, ntp_last_error());
}

static void run_model(struct ntp_device *g, const struct ntp_gen_params *p, enum ntp_type kv,
                      struct bound bound, bool quantized, const char *name)
{
    char path[300];
    if (fwd_gen(p, name, path, sizeof path) != 0)
        return;
    ntp_model *m = NULL;
    ntp_model_params mp = ntp_model_default_params();
    mp.n_threads = 2;
    CHECK_OK(ntp_model_load(path, mp, &m));
    if (m == NULL)
        return;
    struct gpu_copy gc = {0};
    struct ntp_dev_state *sc = NULL, *sg = NULL;
    struct ntp_model_device *md = &m->dev[0];
    CHECK_OK(copy_weights(g, md, &gc));
    struct ntp_dev_state_params sp = {.cfg = &m->cfg,
                                      .shard = &md->shard,
                                      .w = &md->w,
                                      .n_ctx = N_CTX,
                                      .n_batch = BATCH,
                                      .kv_type = kv};
    CHECK_OK(md->dev->iface->state_new(md->dev, &sp, &sc));
    if (!gpu_stand_in())
        check_packed_refused(g, md, &sp, name);
    sp.w = &gc.w;
    CHECK_OK(g->iface->state_new(g, &sp, &sg));
    int32_t toks[N_PRE + N_DEC];
    fwd_tokens(toks, N_PRE + N_DEC, (int32_t)m->cfg.hp.n_vocab, 11);
    static float got[(N_PRE + N_DEC) * MAX_NV];
    const int64_t nv = m->cfg.hp.n_vocab;
    if (sc && sg) {
        step(m, g, sc, sg, toks, N_PRE, 0, bound, name, got);
        for (int i = 0; i < N_DEC; i++)
            step(m, g, sc, sg, toks + N_PRE + i, 1, N_PRE + i, bound, name, got + (N_PRE + i) * nv);
        if (quantized && !gpu_stand_in()) /* a CPU stand-in quantizes as the CPU does */
            check_reference(name, path, toks, got, nv);
    }
    g->iface->state_free(g, sg);
    md->dev->iface->state_free(md->dev, sc);
    for (int i = 0; i < gc.n; i++)
        g->iface->buffer_free(g, gc.bufs[i]);
    free(gc.w.layer);
    ntp_model_free(m);
}

/* gemma3 of six blocks (five local, then one global) with a window of n_swa < N_PRE positions. */
static struct ntp_gen_params gemma3(int64_t n_swa)
{
    struct ntp_gen_params p = fwd_small("gemma3");
    p.n_layer = 6;
    p.n_swa = n_swa;
    p.head_dim = 32; /* q/k width 128, not n_embd: key_length sets the attention scale */
    p.tied_output = true;
    return p;
}

int main(void)
{
    gpu_require(true);
    struct ntp_device *g = gpu_open();
    if (g == NULL)
        return ntp_test_result("gpu_layers");
    fwd_init();
    const struct bound exact = {1e-4, 1e-4}, exact_kv16 = {1e-3, 1e-3}, quant = {1.5e-1, 5e-2};
    struct ntp_gen_params p = fwd_small("llama");
    run_model(g, &p, NTP_TYPE_F32, exact, false, "llama-f32-kv32");
    run_model(g, &p, NTP_TYPE_F16, exact_kv16, false, "llama-f32-kv16");
    p = fwd_small("qwen2");
    p.type = NTP_TYPE_F16;
    run_model(g, &p, NTP_TYPE_F32, exact, false, "qwen2-f16");
    p = fwd_small("qwen3");
    run_model(g, &p, NTP_TYPE_F32, exact, false, "qwen3-f32");
    p = gemma3(5);
    run_model(g, &p, NTP_TYPE_F32, exact, false, "gemma3-f32-kv32");
    p = gemma3(3); /* fewer positions than the attention kernel has warps */
    run_model(g, &p, NTP_TYPE_F16, exact_kv16, false, "gemma3-f32-kv16");
    p = gemma3(7);
    p.n_embd = 256;
    p.head_dim = 256; /* the widest head the kernels take, as real gemma3 has */
    run_model(g, &p, NTP_TYPE_F32, exact, false, "gemma3-f32-hd256");
    /* Quantized: rows of whole 256-element blocks so that the k-quants apply. */
    static const char *const quants[][2] = {
        {"qwen2", "q8_0"}, {"llama", "q4_0"}, {"qwen3", "q4_k_m"}, {"llama", "q5_k"}};
    for (size_t i = 0; i < sizeof quants / sizeof quants[0]; i++) {
        p = fwd_small(quants[i][0]);
        p.n_embd = 256;
        p.n_ff = 512;
        p.head_dim = 64;
        p.tied_output = i == 1;
        CHECK_OK(ntp__gen_parse_mix(quants[i][1], &p));
        char name[64];
        snprintf(name, sizeof name, "%s-%s%s", quants[i][0], quants[i][1], i == 1 ? "-tied" : "");
        run_model(g, &p, NTP_TYPE_F16, quant, true, name);
    }
    fwd_cleanup();
    g->iface->destroy(g);
    return ntp_test_result("gpu_layers");
}
