/*
 * cuda_layer.c - the transformer block and the output head on the GPU, in
 * the same order of operations as the CPU device (src/backend/cpu/cpu_layer.c):
 * RMSNorm; Q, K, V (+ bias); per-head q/k norm (qwen3, gemma3); RoPE; K and
 * V into the cache; causal GQA attention, over a sliding window in the local
 * layers (gemma3); O; post-norm (gemma3); residual; RMSNorm; gate, up; SwiGLU
 * or GeGLU; down; post-norm; residual. All kernels go to the default stream
 * in order, so each sees the previous one's results; the host waits only at
 * the end of a call.
 *
 * A GPU is never part of a tensor-parallel group (state_new refuses one), so
 * the two all-reduce points of a layer are plain residual additions here.
 * RoPE's cos/sin come from the reference ntp__rope_cache_f32 on the host
 * (n_tok * n_rot floats per table and call), so linear, YaRN and
 * per-frequency scaling are exactly the CPU's.
 *
 * Each sequence of the state has its own cache rows, and a run names each
 * token's position and row (positions_upload).
 * Sliding-window layers keep the plain cache layout (row p for position p)
 * and the attention kernel starts each token at the first position of its
 * window; the CPU device's ring (config.h, ntp__kv_ring) is a memory saving
 * that the GPU does without.
 */
#include "backend/cuda/cuda_int.h"

#include "core/core.h"

/* A run of kernels: the first failure is kept and later work is skipped. */
struct cu_run {
    struct cuda_state *s;
    struct cuda_device *c;
    ntp_status st;       /* NTP_OK until something fails */
    const float *cs_swa; /* cos/sin of the batch for the sliding-window layers (in rope_cs) */
    int64_t max_pos;     /* the run's last position */
    const float *xh_of;  /* the activations whose binary16 copy s->xh holds (cuda_mm.xh_of);
                            NULL after xn is rewritten */
};

static void ck(struct cu_run *r, cudaError_t e, const char *what)
{
    if (r->st == NTP_OK && e != cudaSuccess)
        r->st = ntp__cu_status(e, what);
}

static const struct ntp_dev_tensor *lw(const struct cu_run *r, int64_t il, enum ntp_tensor_id id)
{
    return &r->s->wl[(il - r->s->p.shard->layer0) * NTP_T_COUNT + id];
}

static const float *fdata(const struct ntp_dev_tensor *t)
{
    return t->data;
}

/* Whether w's cuBLAS products run in binary16 (quantized weights; see cuda_int.h). */
static bool half_product(const struct ntp_dev_tensor *w)
{
    return w->type != NTP_TYPE_F32 && w->type != NTP_TYPE_F16;
}

/*
 * Rows [r0, r0 + nr) of W times x with cuBLAS: y(nr x n_tok) = W_tile^T-view
 * times x, from a float tile and x, or a binary16 tile and a->xh.
 */
static ntp_status gemm_tile(struct cuda_device *c, const struct cuda_mm *a, int64_t r0, int64_t nr)
{
    const struct ntp_dev_tensor *w = a->w;
    const struct ntp_cu_mat m = {w->type, w->data, w->row_stride, w->ne[0], w->ne[1]};
    const bool half = half_product(w);
    ntp_status s = ntp__cu_status(half ? ntp__cu_dequant_f16(&m, r0, nr, a->wtile, 0)
                                       : ntp__cu_dequant_f32(&m, r0, nr, a->wtile, 0),
                                  "dequantize tile");
    if (s != NTP_OK)
        return s;
    /*
     * Column-major view: the tile is a k x nr matrix (ld k), x a k x n_tok
     * matrix (ld ldx; xh: ld k) and y an ldy x n_tok one; y[r0 + i][t] = tile^T x.
     */
    const float one = 1.0f, zero = 0.0f;
    const int k = (int)w->ne[0];
    if (half)
        return ntp__cublas_status(
            ntp__cublas.gemm_ex(c->blas, CUBLAS_OP_T, CUBLAS_OP_N, (int)nr, (int)a->n_tok, k, &one,
                                a->wtile, CUDA_R_16F, k, a->xh, CUDA_R_16F, k, &zero, a->y + r0,
                                CUDA_R_32F, (int)a->ldy, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
            "cublasGemmEx");
    return ntp__cublas_status(ntp__cublas.sgemm(c->blas, CUBLAS_OP_T, CUBLAS_OP_N, (int)nr,
                                                (int)a->n_tok, k, &one, a->wtile, k, a->x,
                                                (int)a->ldx, &zero, a->y + r0, (int)a->ldy),
                              "cublasSgemm");
}

ntp_status ntp__cuda_mm(struct cuda_device *c, const struct cuda_mm *a)
{
    const struct ntp_dev_tensor *w = a->w;
    if (a->n_tok <= NTP_CU_MATVEC_MAX_TOK || a->wtile == NULL) {
        const struct ntp_cu_mat m = {w->type, w->data, w->row_stride, w->ne[0], w->ne[1]};
        for (int64_t t = 0; t < a->n_tok; t += NTP_CU_MATVEC_MAX_TOK) {
            const int64_t n =
                a->n_tok - t < NTP_CU_MATVEC_MAX_TOK ? a->n_tok - t : NTP_CU_MATVEC_MAX_TOK;
            ntp_status s = ntp__cu_status(
                ntp__cu_matvec(&m, a->x + t * a->ldx, a->ldx, n, a->y + t * a->ldy, a->ldy, 0),
                "matvec");
            if (s != NTP_OK)
                return s;
        }
        return NTP_OK;
    }
    const bool half = half_product(w);
    /* A binary16 tile holds twice the rows of a float one. */
    const int64_t per = (half ? 2 * a->wtile_floats : a->wtile_floats) / w->ne[0];
    if (per < 1)
        return ntp__error(NTP_E_INTERNAL, "cuda: weight tile of %lld floats < one row of %lld",
                          (long long)a->wtile_floats, (long long)w->ne[0]);
    if (half && (a->xh_of == NULL || *a->xh_of != a->x)) {
        ntp_status s = ntp__cu_status(ntp__cu_to_f16(a->xh, a->x, a->ldx, w->ne[0], a->n_tok, 0),
                                      "activations to binary16");
        if (s != NTP_OK)
            return s;
        if (a->xh_of)
            *a->xh_of = a->x;
    }
    for (int64_t r0 = 0; r0 < w->ne[1]; r0 += per) {
        const int64_t nr = w->ne[1] - r0 < per ? w->ne[1] - r0 : per;
        ntp_status s = gemm_tile(c, a, r0, nr);
        if (s != NTP_OK)
            return s;
    }
    return NTP_OK;
}

/* y[t][0, w rows) = W x[t] for the run's tokens. */
static void mm(struct cu_run *r, const struct ntp_dev_tensor *w, const float *x, int64_t ldx,
               int64_t n_tok, float *y, int64_t ldy)
{
    if (r->st != NTP_OK)
        return;
    const struct cuda_mm a = {
        w, x, ldx, n_tok, y, ldy, r->s->wtile, r->s->wtile_floats, r->s->xh, &r->xh_of};
    r->st = ntp__cuda_mm(r->c, &a);
}

/* Layer li's (index in the shard) K or V cache, rows of width elements of el bytes. */
static uint8_t *layer_cache(const struct cuda_state *s, void *cache, int64_t li, int64_t width,
                            size_t el)
{
    return (uint8_t *)cache + (size_t)li * (size_t)(s->p.n_seq * s->p.n_ctx) * (size_t)width * el;
}

/* K and V of the batch into the cache of layer li, at each token's row. */
static void kv_store(struct cu_run *r, int64_t li, const struct ntp_dev_run *run)
{
    struct cuda_state *s = r->s;
    const bool f16 = s->p.kv_type == NTP_TYPE_F16;
    const size_t el = f16 ? 2 : 4;
    const int64_t kw = s->nkv * s->hdk, vw = s->nkv * s->hdv;
    const int32_t *row = s->tok_dev + s->p.n_batch;
    ck(r,
       ntp__cu_kv_store(layer_cache(s, s->k_cache, li, kw, el), f16, s->kx, run->n_tok, kw, row, 0),
       "kv_store K");
    ck(r,
       ntp__cu_kv_store(layer_cache(s, s->v_cache, li, vw, el), f16, s->vx, run->n_tok, vw, row, 0),
       "kv_store V");
}

/*
 * Biases, q/k norms and RoPE of the new q and k; v's bias. A sliding-window
 * layer rotates with cfg->rope_swa, which differs from cfg->rope only in its
 * frequencies (model/load.c): same n_rot, same pairing.
 */
static void qkv_post(struct cu_run *r, int64_t il, int64_t n)
{
    struct cuda_state *s = r->s;
    const struct ntp_model_cfg *cfg = s->p.cfg;
    const float *cs = ntp__layer_swa(cfg, il) ? r->cs_swa : s->rope_cs;
    if (cfg->qkv_bias) {
        ck(r, ntp__cu_add_bias(s->q, fdata(lw(r, il, NTP_T_ATTN_Q_BIAS)), s->nh * s->hdk, n, 0),
           "q bias");
        ck(r, ntp__cu_add_bias(s->kx, fdata(lw(r, il, NTP_T_ATTN_K_BIAS)), s->nkv * s->hdk, n, 0),
           "k bias");
        ck(r, ntp__cu_add_bias(s->vx, fdata(lw(r, il, NTP_T_ATTN_V_BIAS)), s->nkv * s->hdv, n, 0),
           "v bias");
    }
    if (cfg->qk_norm) {
        const float eps = cfg->hp.rms_eps;
        ck(r,
           ntp__cu_rmsnorm(s->q, s->q, fdata(lw(r, il, NTP_T_ATTN_Q_NORM)), s->hdk, n * s->nh, eps,
                           0),
           "q norm");
        ck(r,
           ntp__cu_rmsnorm(s->kx, s->kx, fdata(lw(r, il, NTP_T_ATTN_K_NORM)), s->hdk, n * s->nkv,
                           eps, 0),
           "k norm");
    }
    ck(r, ntp__cu_rope(s->q, cs, n, s->nh, s->hdk, s->n_rot, cfg->rope.neox, 0), "rope q");
    ck(r, ntp__cu_rope(s->kx, cs, n, s->nkv, s->hdk, s->n_rot, cfg->rope.neox, 0), "rope k");
}

/*
 * part (O's or down's output) into the residual stream: x += part, or with
 * post-norms (gemma3) x += rmsnorm(part) with the layer's weight post.
 */
static void residual(struct cu_run *r, int64_t il, enum ntp_tensor_id post, int64_t n,
                     const char *what)
{
    struct cuda_state *s = r->s;
    if (s->p.cfg->post_norm)
        ck(r,
           ntp__cu_rmsnorm(s->part, s->part, fdata(lw(r, il, post)), s->n_embd, n,
                           s->p.cfg->hp.rms_eps, 0),
           what);
    ck(r, ntp__cu_add(s->x, s->part, n * s->n_embd, 0), what);
}

/*
 * Blocks per (head, token) of attention: one when the heads and tokens fill
 * the GPU (attn_blocks), else enough to fill it, each at least a chunk of 32
 * of the positions a token attends to (decode at depth: 32 heads, 1 token,
 * thousands of positions).
 */
static int64_t attn_splits(const struct cu_run *r, int64_t n_tok, int64_t window)
{
    const struct cuda_state *s = r->s;
    const int64_t blocks = s->nh * n_tok;
    int64_t n_pos = r->max_pos + 1;
    n_pos = window > 0 && window < n_pos ? window : n_pos;
    if (blocks >= s->attn_blocks)
        return 1;
    int64_t n = (s->attn_blocks + blocks - 1) / blocks;
    n = n < (n_pos + 31) / 32 ? n : (n_pos + 31) / 32;
    return n < NTP_CU_ATTN_MAX_SPLIT ? n : NTP_CU_ATTN_MAX_SPLIT;
}

/* The attention half of block il: norm, QKV, RoPE, cache, attention, O, residual. */
static void block_attn(struct cu_run *r, int64_t il, const struct ntp_dev_run *run)
{
    struct cuda_state *s = r->s;
    const struct ntp_shard *sh = s->p.shard;
    const int64_t n = run->n_tok, e = s->n_embd;
    ck(r,
       ntp__cu_rmsnorm(s->xn, s->x, fdata(lw(r, il, NTP_T_ATTN_NORM)), e, n, s->p.cfg->hp.rms_eps,
                       0),
       "attn norm");
    r->xh_of = NULL; /* xn is new: its binary16 copy must be made again */
    mm(r, lw(r, il, NTP_T_ATTN_Q), s->xn, e, n, s->q, s->nh * s->hdk);
    mm(r, lw(r, il, NTP_T_ATTN_K), s->xn, e, n, s->kx, s->nkv * s->hdk);
    mm(r, lw(r, il, NTP_T_ATTN_V), s->xn, e, n, s->vx, s->nkv * s->hdv);
    qkv_post(r, il, n);
    kv_store(r, il - sh->layer0, run);
    const size_t el = s->p.kv_type == NTP_TYPE_F16 ? 2 : 4;
    struct ntp_cu_attn a = {
        .q = s->q,
        .k = layer_cache(s, s->k_cache, il - sh->layer0, s->nkv * s->hdk, el),
        .v = layer_cache(s, s->v_cache, il - sh->layer0, s->nkv * s->hdv, el),
        .f16 = s->p.kv_type == NTP_TYPE_F16,
        .out = s->att,
        .n_tok = n,
        .pos = s->tok_dev,
        .row = s->tok_dev + s->p.n_batch,
        .window = ntp__layer_swa(s->p.cfg, il) ? s->p.cfg->hp.n_swa : 0,
        .n_head = s->nh,
        .n_head_kv = s->nkv,
        .head0 = sh->head0,
        .head_kv0 = sh->head_kv0,
        .group = s->p.cfg->hp.n_head / s->p.cfg->hp.n_head_kv,
        .hdk = s->hdk,
        .hdv = s->hdv,
        .scale = s->p.cfg->attn_scale,
    };
    a.n_split = attn_splits(r, n, a.window);
    a.part = s->attn_part;
    if (r->st == NTP_OK)
        ck(r, ntp__cu_attention(&a, 0), "attention");
    mm(r, lw(r, il, NTP_T_ATTN_OUTPUT), s->att, s->nh * s->hdv, n, s->part, e);
    residual(r, il, NTP_T_ATTN_POST_NORM, n, "residual (attention)");
}

/*
 * g = act(g) * u, the FFN's gate. Every activation of the enum has its case,
 * so that one added to config.h without a kernel here fails to compile
 * (-Wswitch) instead of running the wrong one.
 */
static cudaError_t glu(enum ntp_ffn_act act, float *g, const float *u, int64_t n)
{
    switch (act) {
    case NTP_FFN_SILU:
        return ntp__cu_swiglu(g, u, n, 0);
    case NTP_FFN_GELU:
        return ntp__cu_geglu(g, u, n, 0);
    case NTP_FFN_ACT_COUNT:
        break;
    }
    return cudaErrorInvalidValue;
}

/* The FFN half of block il: norm, gate/up, SwiGLU or GeGLU, down, residual. */
static void block_ffn(struct cu_run *r, int64_t il, const struct ntp_dev_run *run)
{
    struct cuda_state *s = r->s;
    const int64_t n = run->n_tok, e = s->n_embd, ff = s->nff;
    ck(r,
       ntp__cu_rmsnorm(s->xn, s->x, fdata(lw(r, il, NTP_T_FFN_NORM)), e, n, s->p.cfg->hp.rms_eps,
                       0),
       "ffn norm");
    r->xh_of = NULL; /* xn is new: its binary16 copy must be made again */
    mm(r, lw(r, il, NTP_T_FFN_GATE), s->xn, e, n, s->gate, ff);
    mm(r, lw(r, il, NTP_T_FFN_UP), s->xn, e, n, s->up, ff);
    ck(r, glu(s->p.cfg->ffn_act, s->gate, s->up, n * ff), "ffn activation");
    mm(r, lw(r, il, NTP_T_FFN_DOWN), s->gate, ff, n, s->part, e);
    residual(r, il, NTP_T_FFN_POST_NORM, n, "residual (ffn)");
}

/*
 * Each token's position and cache row (tok_dev), then cos/sin of the
 * positions, computed on the host as the CPU does and uploaded in one copy:
 * n_tok rows of cfg->rope and, with sliding-window layers, n_tok rows of
 * cfg->rope_swa after them.
 */
static void positions_upload(struct cu_run *r, const struct ntp_dev_run *run)
{
    struct cuda_state *s = r->s;
    const int64_t rows = run->n_tok * s->n_rot, nb = s->p.n_batch;
    for (int64_t t = 0; t < run->n_tok; t++) {
        s->tok_host[t] = (int32_t)ntp__run_pos(run, t);
        s->tok_host[nb + t] = (int32_t)(ntp__run_seq(run, t) * s->p.n_ctx + s->tok_host[t]);
        r->max_pos = s->tok_host[t] > r->max_pos ? s->tok_host[t] : r->max_pos;
    }
    ck(r,
       cudaMemcpy(s->tok_dev, s->tok_host, (size_t)(2 * nb) * sizeof(int32_t),
                  cudaMemcpyHostToDevice),
       "cudaMemcpy (positions)");
    r->cs_swa = s->rope_cs + rows;
    if (s->n_rot == 0)
        return;
    for (int64_t t = 0; t < run->n_tok; t++) {
        ntp__rope_cache_f32(s->cs_host + t * s->n_rot, s->tok_host[t], &s->p.cfg->rope);
        if (s->rope_tables == 2)
            ntp__rope_cache_f32(s->cs_host + rows + t * s->n_rot, s->tok_host[t],
                                &s->p.cfg->rope_swa);
    }
    ck(r,
       cudaMemcpy(s->rope_cs, s->cs_host, (size_t)(s->rope_tables * rows) * sizeof(float),
                  cudaMemcpyHostToDevice),
       "cudaMemcpy (rope cache)");
}

ntp_status ntp__cuda_run_layers(struct cuda_state *s, const struct ntp_dev_run *run)
{
    struct cu_run r = {s, s->dev->impl, NTP_OK, NULL, 0, NULL};
    positions_upload(&r, run);
    for (int64_t il = run->layer0; il < run->layer1 && r.st == NTP_OK; il++) {
        if (ntp__shard_attn(s->p.shard, il))
            block_attn(&r, il, run);
        if (ntp__shard_ffn(s->p.shard, il) && r.st == NTP_OK)
            block_ffn(&r, il, run);
    }
    /* Wait here so that a failing kernel is reported by the call that queued it. */
    ck(&r, cudaDeviceSynchronize(), "run_layers");
    return r.st;
}

ntp_status ntp__cuda_run_output(struct cuda_state *s, const struct ntp_dev_output_run *run)
{
    const struct ntp_dev_tensor *out = &s->wg[NTP_T_OUTPUT];
    const int64_t nv = s->p.shard->n_vocab, e = s->n_embd;
    if (out->data == NULL || nv == 0)
        return NTP_OK;
    struct cu_run r = {s, s->dev->impl, NTP_OK, NULL, 0, NULL};
    ck(&r,
       ntp__cu_rmsnorm(s->xn, s->x + run->tok0 * e, fdata(&s->wg[NTP_T_OUTPUT_NORM]), e, run->n_tok,
                       s->p.cfg->hp.rms_eps, 0),
       "output norm");
    r.xh_of = NULL; /* xn is new: its binary16 copy must be made again */
    for (int64_t t = 0; t < run->n_tok && r.st == NTP_OK; t += s->logit_rows) {
        const int64_t n = run->n_tok - t < s->logit_rows ? run->n_tok - t : s->logit_rows;
        mm(&r, out, s->xn + t * e, e, n, s->logits, nv);
        float *dst = run->logits + t * run->ld + s->p.shard->vocab0;
        if (r.st == NTP_OK)
            ck(&r,
               cudaMemcpy2D(dst, (size_t)run->ld * sizeof(float), s->logits,
                            (size_t)nv * sizeof(float), (size_t)nv * sizeof(float), (size_t)n,
                            cudaMemcpyDeviceToHost),
               "cudaMemcpy2D (logits)");
    }
    ck(&r, cudaDeviceSynchronize(), "run_output");
    return r.st;
}
