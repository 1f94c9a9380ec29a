/*
 * cpu_layer.c - the transformer block on one CPU device, run by the device's
 * persistent thread team (src/numa/team.h). Every thread executes the same
 * sequence of phases on its own slice of the work and meets the others at
 * barriers; the two all-reduce points per layer (after O and after down) are
 * explicit calls, no-ops for a group of one device.
 *
 * Activations for a matmul are quantized once into the shared act buffer
 * (each thread quantizes a slice of the tokens), then every thread multiplies
 * its slice of the weight rows (docs/architecture.md "Kernels").
 */
#include "backend/cpu/cpu_int.h"

#include "backend/cpu/cpu_moe.h"

#include "core/core.h"
#include "kernels/quant.h"

#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#if NTP_HAVE_OPENBLAS
#include <cblas.h>
#endif

/* One thread's view of a team call. */
struct thr {
    struct ntp_dev_state *s;     /* shared state */
    const struct ntp_kernels *k; /* the device's kernel table */
    int ith, nth;                /* this thread, team size */
    const float *act_src;        /* the float rows the act buffer now holds, or NULL */
    enum ntp_type act_type;      /* their format there */
    float *scratch;              /* thr_floats floats private to this thread */
    struct ntp_team *team;       /* the device's team (for barriers) */
};

static void team_barrier(struct thr *th)
{
    ntp__team_barrier(th->team);
}

/*
 * Record a failure of this thread's part of the job: the first one wins and
 * keeps its message (this thread's ntp_last_error), which run_wait hands to
 * the caller's thread. The thread goes on with the job's phases, so that the
 * team still meets at every barrier.
 */
static void fail(struct thr *th, ntp_status st)
{
    struct cpu_job *j = &th->s->job;
    int expected = NTP_OK;
    if (atomic_compare_exchange_strong(&j->err, &expected, (int)st))
        snprintf(j->msg, sizeof j->msg, "%s", ntp_last_error());
}

static const struct ntp_dev_tensor *layer_w(const struct thr *th, int64_t il, enum ntp_tensor_id id)
{
    return &th->s->p.w->layer[(il - th->s->p.shard->layer0) * NTP_T_COUNT + id];
}

/*
 * Put n_tok rows of src (ld floats apart) in the activation format of weight
 * type wtype. Float weights use src as it is. Otherwise the rows are quantized
 * into the shared act buffer unless it already holds them (Q, K and V share
 * one quantization, as do gate and up). Either way the team meets at a
 * barrier when the source is new, so callers need none between writing the
 * source rows of their own token slice (norm_rows) and this call. Callers
 * reach this only after a barrier that follows any earlier reader of the
 * buffer (see act_release).
 */
static void prep_act(struct thr *th, const float *src, int64_t ld, int64_t n_tok, int64_t k,
                     enum ntp_type wtype, const void **x, size_t *x_stride)
{
    const struct ntp_kernel_type *kt = &th->k->type[wtype];
    struct ntp_dev_state *s = th->s;
    if (kt->act_type == NTP_TYPE_F32) {
        if (th->act_src != src || th->act_type != NTP_TYPE_F32) {
            team_barrier(th);
            th->act_src = src;
            th->act_type = NTP_TYPE_F32;
        }
        *x = src;
        *x_stride = (size_t)ld * sizeof(float);
        return;
    }
    if (th->act_src != src || th->act_type != kt->act_type) {
        int64_t t0, t1;
        ntp__slice(n_tok, th->ith, th->nth, &t0, &t1);
        for (int64_t t = t0; t < t1; t++)
            kt->quantize_act(src + t * ld, (uint8_t *)s->act + (size_t)t * s->act_row, k);
        team_barrier(th);
        th->act_src = src;
        th->act_type = kt->act_type;
    }
    *x = s->act;
    *x_stride = s->act_row;
}

/* The act buffer's rows are stale from here on (their source is rewritten next). */
static void act_release(struct thr *th)
{
    th->act_src = NULL;
}

/* dst[t][0, w.ne[1]) = W · src[t] for t < n_tok: this thread's slice of W's rows. */
static void mm_gated(struct thr *th, const struct ntp_dev_tensor *w, const float *src,
                     int64_t ld_src, int64_t n_tok, float *dst, int64_t ld_dst, ntp_glu_fn glu,
                     float *g)
{
    struct ntp_matmul_args a = {
        .wtype = w->type,
        .w = w->data,
        .w_stride = w->row_stride,
        .n_rows = w->ne[1],
        .k = w->ne[0],
        .n_tok = n_tok,
        .y = dst,
        .ldy = ld_dst,
        .ith = th->ith,
        .nth = th->nth,
        .layout = w->layout,
        .glu = glu,
        .g = g,
    };
    prep_act(th, src, ld_src, n_tok, w->ne[0], w->type, &a.x, &a.x_stride);
    ntp_status st = ntp__kernels_matmul(th->k, &a);
    if (st != NTP_OK)
        fail(th, st);
}

static void mm(struct thr *th, const struct ntp_dev_tensor *w, const float *src, int64_t ld_src,
               int64_t n_tok, float *dst, int64_t ld_dst)
{
    mm_gated(th, w, src, ld_src, n_tok, dst, ld_dst, NULL, NULL);
}

/* RMS-normalize rows [0, n_tok) of s->x into s->xn with weight w (this thread's tokens). */
static void norm_rows(struct thr *th, const struct ntp_dev_tensor *w, int64_t n_tok)
{
    struct ntp_dev_state *s = th->s;
    int64_t t0, t1;
    ntp__slice(n_tok, th->ith, th->nth, &t0, &t1);
    for (int64_t t = t0; t < t1; t++)
        ntp__rmsnorm_f32(s->xn + t * s->n_embd, s->x + t * s->n_embd, w->data, s->n_embd,
                         s->p.cfg->hp.rms_eps);
}

/*
 * Sum the partials across the group's devices and add the sum to the
 * residual stream. A collective that spreads a call over the team also does
 * the add, on each thread's own share, so no barrier is needed between the
 * two; one called once per device runs on thread 0 while the others wait.
 * With a post-norm (gemma3) the whole sum is needed first: each thread then
 * normalizes its tokens' rows of the sum and adds them.
 */
static void reduce_residual(struct thr *th, int64_t n_tok, const struct ntp_dev_tensor *post)
{
    struct ntp_dev_state *s = th->s;
    const int64_t n = n_tok * s->n_embd;
    const struct ntp_comm_member *m = &s->p.comm;
    ntp_status st = NTP_OK;
    if (post && post->data) {
        if (m->comm && m->comm->iface->allreduce_team)
            st = m->comm->iface->allreduce_team(m->comm, m->rank, s->part, n, NULL, th->ith,
                                                th->nth);
        else if (m->comm && th->ith == 0)
            st = m->comm->iface->allreduce(m->comm, m->rank, s->part, n);
        if (m->comm)
            team_barrier(th);
        int64_t t0, t1;
        ntp__slice(n_tok, th->ith, th->nth, &t0, &t1);
        for (int64_t t = t0; t < t1; t++) {
            float *row = s->part + t * s->n_embd;
            ntp__rmsnorm_f32(row, row, post->data, s->n_embd, s->p.cfg->hp.rms_eps);
            ntp__add_f32(s->x + t * s->n_embd, row, s->n_embd);
        }
    } else if (m->comm && m->comm->iface->allreduce_team) {
        st = m->comm->iface->allreduce_team(m->comm, m->rank, s->part, n, s->x, th->ith, th->nth);
    } else {
        if (m->comm) {
            if (th->ith == 0)
                st = m->comm->iface->allreduce(m->comm, m->rank, s->part, n);
            team_barrier(th);
        }
        int64_t i0, i1;
        ntp__slice(n, th->ith, th->nth, &i0, &i1);
        ntp__add_f32(s->x + i0, s->part + i0, i1 - i0);
    }
    if (st != NTP_OK)
        fail(th, st);
}

/*
 * Where sequence seq's position p is in layer li's (index in the shard)
 * cache: row p, or p % ring in a ring, of that sequence's rows.
 */
static size_t kv_at(const struct ntp_dev_state *s, int64_t li, int32_t seq, int64_t p)
{
    const int64_t ring = s->kv_ring[li];
    return (size_t)seq * s->kv_seq + s->kv_off[li] + (size_t)(ring ? p % ring : p) * s->kv_row;
}

/*
 * Store head g's key or value row (hd floats, head bytes in kv_type) for
 * position p of sequence seq: at its row, and in a ring once more one ring
 * further on (config.h, ntp__kv_ring). Q8_0 and Q4_0 rows come from ggml's
 * reference quantizers, so the cache is the same whichever kernels run.
 */
static void kv_store(const struct ntp_dev_state *s, uint8_t *cache, int64_t li, int32_t seq,
                     int64_t p, int64_t g, size_t head, int64_t hd, const float *src)
{
    uint8_t *row = cache + kv_at(s, li, seq, p) + (size_t)g * head;
    ntp__quant_fns(s->p.kv_type)->quantize(src, row, hd);
    if (s->kv_ring[li])
        memcpy(row + (size_t)s->kv_ring[li] * s->kv_row, row, head);
}

/* x = H x in blocks of n over hd floats (ntp__hadamard_f32; n 0: no rotation). */
static void kv_rotate(float *x, int64_t hd, int64_t n)
{
    for (int64_t i = 0; n > 0 && i < hd; i += n)
        ntp__hadamard_f32(x + i, n);
}

/* The first position token position p attends to: 0, or the start of its sliding window. */
static int64_t attn_lo(const struct ntp_dev_state *s, int64_t il, int64_t p)
{
    const int64_t w = s->p.cfg->hp.n_swa;
    return ntp__layer_swa(s->p.cfg, il) && p >= w ? p - w + 1 : 0;
}

/* Bias, per-head norm and rotation of one q or k head row x of width hd. */
static void qk_head(const struct thr *th, float *x, const struct ntp_dev_tensor *bias, int64_t head,
                    const struct ntp_dev_tensor *norm, const float *cs)
{
    const struct ntp_model_cfg *cfg = th->s->p.cfg;
    const int64_t hd = th->s->hdk;
    if (bias && bias->data)
        ntp__add_f32(x, (const float *)bias->data + head * hd, hd);
    if (norm && norm->data)
        ntp__rmsnorm_f32(x, x, norm->data, hd, cfg->hp.rms_eps);
    ntp__rope_apply_f32(x, cs, cfg->rope.n_rot, cfg->rope.neox);
}

/*
 * After the Q/K/V projections: biases, q/k norms and RoPE on every head of
 * every token (then a quantized cache's rotation), and the new keys and
 * values written into the cache. Units are (token, head) pairs over the
 * shard's query heads then its KV heads.
 */
static void qkv_post(struct thr *th, int64_t il, const struct ntp_dev_run *run)
{
    struct ntp_dev_state *s = th->s;
    const struct ntp_shard *sh = s->p.shard;
    const struct ntp_model_cfg *cfg = s->p.cfg;
    const int64_t nh = sh->n_head, nkv = sh->n_head_kv, per = nh + nkv;
    const int64_t li = il - sh->layer0;
    const float *cs0 = ntp__layer_swa(cfg, il) ? s->rope_cs_swa : s->rope_cs;
    int64_t u0, u1;
    ntp__slice(run->n_tok * per, th->ith, th->nth, &u0, &u1);
    for (int64_t u = u0; u < u1; u++) {
        const int64_t t = u / per, j = u % per, p = ntp__run_pos(run, t);
        const float *cs = cs0 + t * cfg->rope.n_rot;
        if (j < nh) {
            float *q = s->q + (t * nh + j) * s->hdk;
            qk_head(th, q, cfg->qkv_bias ? layer_w(th, il, NTP_T_ATTN_Q_BIAS) : NULL, j,
                    cfg->qk_norm ? layer_w(th, il, NTP_T_ATTN_Q_NORM) : NULL, cs);
            kv_rotate(q, s->hdk, s->rot_k);
            continue;
        }
        const int64_t g = j - nh;
        float *k = s->kx + (t * nkv + g) * s->hdk;
        float *v = s->vx + (t * nkv + g) * s->hdv;
        qk_head(th, k, cfg->qkv_bias ? layer_w(th, il, NTP_T_ATTN_K_BIAS) : NULL, g,
                cfg->qk_norm ? layer_w(th, il, NTP_T_ATTN_K_NORM) : NULL, cs);
        if (cfg->qkv_bias)
            ntp__add_f32(v, (const float *)layer_w(th, il, NTP_T_ATTN_V_BIAS)->data + g * s->hdv,
                         s->hdv);
        kv_rotate(k, s->hdk, s->rot_k);
        kv_rotate(v, s->hdv, s->rot_v);
        const int32_t seq = ntp__run_seq(run, t);
        kv_store(s, s->k_cache, li, seq, p, g, s->k_head, s->hdk, k);
        kv_store(s, s->v_cache, li, seq, p, g, s->v_head, s->hdv, v);
    }
}

/* The value cache: latent attention's values are the first hdv elements of its keys. */
static const uint8_t *v_cache(const struct ntp_dev_state *s)
{
    return ntp__cfg_mla(s->p.cfg) ? s->k_cache : s->v_cache;
}

/* The shard's KV head (index in the shard) that query head h (index in the shard) reads. */
static int64_t kv_head(const struct ntp_dev_state *s, int64_t h)
{
    const struct ntp_shard *sh = s->p.shard;
    return (sh->head0 + h) / (s->p.cfg->hp.n_head / s->p.cfg->hp.n_head_kv) - sh->head_kv0;
}

/*
 * Causal attention of token t's query head h over its sequence's cached
 * positions lo .. its own (lo = 0, or the start of a sliding window); query
 * head h reads KV head h / (n_head / n_head_kv) (GQA).
 */
static void attend_token(struct thr *th, int64_t il, const struct ntp_dev_run *run, int64_t t,
                         int64_t h)
{
    struct ntp_dev_state *s = th->s;
    const int64_t nh = s->p.shard->n_head, g = kv_head(s, h);
    const int64_t p = ntp__run_pos(run, t), lo = attn_lo(s, il, p);
    const size_t row0 = kv_at(s, il - s->p.shard->layer0, ntp__run_seq(run, t), lo);
    const struct ntp_attn_args a = {
        .q = s->q + (t * nh + h) * s->hdk,
        .k = s->k_cache + row0 + (size_t)g * s->k_head,
        .v = v_cache(s) + row0 + (size_t)g * s->v_head,
        .kv_stride = s->kv_row,
        .kv_type = s->p.kv_type,
        .hdk = s->hdk,
        .hdv = s->hdv,
        .n_pos = p + 1 - lo,
        .scale = s->p.cfg->attn_scale,
        .score = th->scratch,
        .out = s->att + (t * nh + h) * s->hdv,
        .q_dot = th->scratch + s->p.n_ctx,
        .kern = th->k,
    };
    th->k->attn(&a);
    kv_rotate(a.out, s->hdv, s->rot_v); /* back from the rotated values */
}

#if NTP_HAVE_OPENBLAS
/*
 * Prefill attention with OpenBLAS (one thread per call: ntp__cpu_device_new
 * sets OpenBLAS to one thread, the team supplies the parallelism) of the
 * query heads h0 .. h0 + ng - 1, which share KV head g, over a block of
 * nt <= NTP_ATT_TB consecutive tokens t0 .. of one sequence. Row r of the
 * block's matrices is head h0 + r / nt, token t0 + r % nt. The cached
 * positions are taken in chunks of NTP_ATT_P: the chunk's keys and values
 * become floats once for all the heads, S = scale Q K^T and O += P V are one
 * sgemm each, and the softmax runs online (a running maximum and sum per row
 * rescale O as chunks arrive). A block reads positions lo .. its last token's
 * (lo: its first token's window start, or 0), each row masking what lies
 * outside its token's range. Scratch: NTP_ATT_SCRATCH floats per thread
 * (cpu_int.h).
 */
static void attend_block_blas(struct thr *th, int64_t il, const struct ntp_dev_run *run, int64_t t0,
                              int64_t nt, int64_t h0, int64_t ng)
{
    struct ntp_dev_state *s = th->s;
    const struct ntp_shard *sh = s->p.shard;
    const int64_t nh = sh->n_head, hdk = s->hdk, hdv = s->hdv, nr = ng * nt;
    float *kf = th->scratch, *vf = kf + NTP_ATT_P * hdk, *qg = vf + NTP_ATT_P * hdv;
    float *sc = qg + nr * hdk, *o = sc + nr * NTP_ATT_P, *mx = o + nr * hdv, *sum = mx + nr;
    const int64_t pos0 = ntp__run_pos(run, t0); /* token t0 + i is at pos0 + i */
    const int64_t g = kv_head(s, h0), lo = attn_lo(s, il, pos0);
    const size_t row0 = kv_at(s, il - sh->layer0, ntp__run_seq(run, t0), lo);
    const uint8_t *kc = s->k_cache + row0 + (size_t)g * s->k_head;
    const uint8_t *vc = v_cache(s) + row0 + (size_t)g * s->v_head;
    const int64_t n_pos = pos0 + nt - lo; /* lo .. the block's last token */
    for (int64_t r = 0; r < nr; r++) {
        memcpy(qg + r * hdk, s->q + ((t0 + r % nt) * nh + h0 + r / nt) * hdk,
               (size_t)hdk * sizeof *qg);
        mx[r] = -INFINITY;
        sum[r] = 0;
    }
    memset(o, 0, (size_t)(nr * hdv) * sizeof(float));
    for (int64_t p0 = 0; p0 < n_pos; p0 += NTP_ATT_P) {
        const int64_t np = n_pos - p0 < NTP_ATT_P ? n_pos - p0 : NTP_ATT_P;
        for (int64_t p = 0; p < np; p++) {
            th->k->kv_to_f32(s->p.kv_type, kc + (size_t)(p0 + p) * s->kv_row, kf + p * hdk, hdk);
            th->k->kv_to_f32(s->p.kv_type, vc + (size_t)(p0 + p) * s->kv_row, vf + p * hdv, hdv);
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nr, (int)np, (int)hdk,
                    s->p.cfg->attn_scale, qg, (int)hdk, kf, (int)hdk, 0.0f, sc, NTP_ATT_P);
        for (int64_t r = 0; r < nr; r++) {
            float *row = sc + r * NTP_ATT_P;
            /* its token sees positions attn_lo .. its own (causal, windowed): row[jlo, jhi)
               of this chunk; the rest is masked out */
            const int64_t p = pos0 + r % nt, q0 = lo + p0;
            const int64_t jlo = attn_lo(s, il, p) > q0 ? attn_lo(s, il, p) - q0 : 0;
            const int64_t jhi = p - q0 + 1 < np ? p - q0 + 1 : np;
            if (jhi <= jlo) {
                memset(row, 0, (size_t)np * sizeof *row);
                continue;
            }
            const float m = th->k->max(row + jlo, jhi - jlo, mx[r]);
            const float rescale = mx[r] != -INFINITY ? expf(mx[r] - m) : 1.0f;
            const float add = th->k->exp_sum(row + jlo, jhi - jlo, m);
            memset(row, 0, (size_t)jlo * sizeof *row);
            memset(row + jhi, 0, (size_t)(np - jhi) * sizeof *row);
            for (int64_t d = 0; d < hdv; d++)
                o[r * hdv + d] *= rescale;
            sum[r] = sum[r] * rescale + add;
            mx[r] = m;
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)nr, (int)hdv, (int)np, 1.0f, sc,
                    NTP_ATT_P, vf, (int)hdv, 1.0f, o, (int)hdv);
    }
    for (int64_t r = 0; r < nr; r++) {
        float *out = s->att + ((t0 + r % nt) * nh + h0 + r / nt) * hdv;
        for (int64_t d = 0; d < hdv; d++)
            out[d] = o[r * hdv + d] / sum[r];
        kv_rotate(out, hdv, s->rot_v);
    }
}
#endif

/*
 * Attention of every token of the run, over the run's blocks (cpu_int.h,
 * blk): first the OpenBLAS blocks, in units of (block, up to NTP_ATT_G query
 * heads of one KV head), then the single tokens with the attention kernel,
 * in units of (token, query head) so that one token's heads spread over the
 * team. The two share no output, so no barrier lies between them.
 */
static void attention(struct thr *th, int64_t il, const struct ntp_dev_run *run)
{
    const struct ntp_dev_state *s = th->s;
    const int64_t nh = s->p.shard->n_head;
    int64_t u0, u1;
#if NTP_HAVE_OPENBLAS
    /* the shard's query heads in runs of at most ng sharing a KV head */
    const int64_t ng = att_heads(s->p.cfg), group = s->p.cfg->hp.n_head / s->p.cfg->hp.n_head_kv;
    const int64_t per_kv = (group + ng - 1) / ng, n_sets = s->p.shard->n_head_kv * per_kv;
    ntp__slice(s->n_blk_blas * n_sets, th->ith, th->nth, &u0, &u1);
    for (int64_t u = u0; u < u1; u++) {
        const int32_t *b = s->blk + 2 * (u / n_sets);
        const int64_t set = u % n_sets, gl = set / per_kv; /* the shard's KV head gl */
        /* its query heads are first .. first + group - 1 (the shard's numbering) */
        const int64_t first = (s->p.shard->head_kv0 + gl) * group - s->p.shard->head0;
        int64_t h0 = first + set % per_kv * ng, h1 = h0 + ng;
        h1 = h1 < first + group ? h1 : first + group;
        h0 = h0 > 0 ? h0 : 0;
        h1 = h1 < nh ? h1 : nh;
        if (h1 > h0)
            attend_block_blas(th, il, run, b[0], b[1], h0, h1 - h0);
    }
#endif
    const int64_t n_tok_blk = s->n_blk - s->n_blk_blas;
    ntp__slice(n_tok_blk * nh, th->ith, th->nth, &u0, &u1);
    for (int64_t u = u0; u < u1; u++)
        attend_token(th, il, run, s->blk[2 * (s->n_blk_blas + u / nh)], u % nh);
}

/* The attention half of block il: norm, QKV, RoPE, cache, attention, O, all-reduce #1. */
static void block_attn(struct thr *th, int64_t il, const struct ntp_dev_run *run)
{
    struct ntp_dev_state *s = th->s;
    const struct ntp_shard *sh = s->p.shard;
    const int64_t n = run->n_tok, e = s->n_embd;
    norm_rows(th, layer_w(th, il, NTP_T_ATTN_NORM), n); /* prep_act meets the team */
    mm(th, layer_w(th, il, NTP_T_ATTN_Q), s->xn, e, n, s->q, sh->n_head * s->hdk);
    mm(th, layer_w(th, il, NTP_T_ATTN_K), s->xn, e, n, s->kx, sh->n_head_kv * s->hdk);
    mm(th, layer_w(th, il, NTP_T_ATTN_V), s->xn, e, n, s->vx, sh->n_head_kv * s->hdv);
    team_barrier(th);
    act_release(th);
    qkv_post(th, il, run);
    team_barrier(th);
    attention(th, il, run);
    team_barrier(th);
    mm(th, layer_w(th, il, NTP_T_ATTN_OUTPUT), s->att, sh->n_head * s->hdv, n, s->part, e);
    team_barrier(th);
    act_release(th);
    reduce_residual(th, n, layer_w(th, il, NTP_T_ATTN_POST_NORM));
    team_barrier(th);
}

/* Head h's matrix of a per-head tensor (attn_k_b, attn_v_b): rows [h * rows, (h + 1) * rows). */
static struct ntp_dev_tensor head_matrix(const struct ntp_dev_tensor *w, int64_t h, int64_t rows)
{
    struct ntp_dev_tensor v = *w;
    v.ne[1] = rows;
    v.data = (uint8_t *)w->data + (size_t)(h * rows) * w->row_stride;
    return v;
}

/*
 * dst[t][h * ld_h ..] = W_h · src[t][h * ls_h ..] for every shard head h:
 * the per-head products of latent attention. Every (token, head) input is
 * put in the weights' activation format at once (a token's heads side by
 * side in its act row; cpu_device.c sizes it), then each thread takes its
 * slice of every head's rows, so the team meets once for all the heads.
 */
static void mm_heads(struct thr *th, const struct ntp_dev_tensor *w, int64_t rows, const float *src,
                     int64_t ls_h, float *dst, int64_t ld_h, int64_t n_tok)
{
    struct ntp_dev_state *s = th->s;
    const int64_t nh = s->p.shard->n_head, k = w->ne[0];
    const struct ntp_kernel_type *kt = &th->k->type[w->type];
    const bool quant = kt->act_type != NTP_TYPE_F32;
    const size_t seg = quant ? ntp__cpu_head_act(th->k, w) : 0;
    int64_t u0, u1;
    ntp__slice(quant ? n_tok * nh : 0, th->ith, th->nth, &u0, &u1);
    for (int64_t u = u0; u < u1; u++)
        kt->quantize_act(src + u * ls_h,
                         (uint8_t *)s->act + (size_t)(u / nh) * s->act_row + (size_t)(u % nh) * seg,
                         k);
    team_barrier(th);
    for (int64_t h = 0; h < nh; h++) {
        const struct ntp_dev_tensor wh = head_matrix(w, h, rows);
        struct ntp_matmul_args a = {
            .wtype = wh.type,
            .w = wh.data,
            .w_stride = wh.row_stride,
            .n_rows = rows,
            .k = k,
            .x = quant ? (const void *)((uint8_t *)s->act + (size_t)h * seg)
                       : (const void *)(src + h * ls_h),
            .x_stride = quant ? s->act_row : (size_t)(nh * ls_h) * sizeof(float),
            .n_tok = n_tok,
            .y = dst + h * ld_h,
            .ldy = nh * ld_h,
            .ith = th->ith,
            .nth = th->nth,
            .layout = wh.layout,
        };
        ntp_status st = ntp__kernels_matmul(th->k, &a);
        if (st != NTP_OK)
            fail(th, st);
    }
    team_barrier(th);
    act_release(th);
}

/*
 * After the projections of latent attention: the latent's norm, RoPE on the
 * shared key and on each query head's RoPE part, which goes to the end of
 * its absorbed query; the latent and the RoPE key enter the cache as one
 * key row (its first kv_lora elements are the value). Units are (token,
 * head) pairs plus one per token for the latent.
 */
static void mla_post(struct thr *th, int64_t il, const struct ntp_dev_run *run)
{
    struct ntp_dev_state *s = th->s;
    const struct ntp_model_cfg *cfg = s->p.cfg;
    const int64_t nh = s->p.shard->n_head, per = nh + 1, r = cfg->hp.kv_lora;
    const int64_t n_rot = cfg->rope.n_rot, hq = cfg->hp.mla_k;
    int64_t u0, u1;
    ntp__slice(run->n_tok * per, th->ith, th->nth, &u0, &u1);
    for (int64_t u = u0; u < u1; u++) {
        const int64_t t = u / per, j = u % per;
        const float *cs = s->rope_cs + t * n_rot;
        if (j < nh) {
            float *qp = s->mq + (t * nh + j) * hq + (hq - n_rot);
            ntp__rope_apply_f32(qp, cs, n_rot, cfg->rope.neox);
            memcpy(s->q + (t * nh + j) * s->hdk + r, qp, (size_t)n_rot * sizeof(float));
            continue;
        }
        float *c = s->kx + t * s->hdk;
        ntp__rmsnorm_f32(c, c, layer_w(th, il, NTP_T_ATTN_KV_A_NORM)->data, r, cfg->hp.rms_eps);
        ntp__rope_apply_f32(c + r, cs, n_rot, cfg->rope.neox);
        kv_rotate(c, s->hdk, s->rot_k);
        kv_store(s, s->k_cache, il - s->p.shard->layer0, ntp__run_seq(run, t), ntp__run_pos(run, t),
                 0, s->k_head, s->hdk, c);
    }
}

/*
 * The attention half of block il with multi-head latent attention
 * (deepseek2), in the absorbed form (docs/architecture.md "Latent
 * attention"): the device's query heads, each query's no-RoPE part taken
 * into the latent space by attn_k_b, attention over the cached latents as
 * one KV head, each head's latent output up-projected by attn_v_b, then O
 * and all-reduce #1. The latent is computed on every device.
 */
static void block_attn_mla(struct thr *th, int64_t il, const struct ntp_dev_run *run)
{
    struct ntp_dev_state *s = th->s;
    const struct ntp_model_cfg *cfg = s->p.cfg;
    const int64_t n = run->n_tok, e = s->n_embd, nh = s->p.shard->n_head;
    const int64_t r = cfg->hp.kv_lora, hq = cfg->hp.mla_k, ql = cfg->hp.q_lora;
    const int64_t hv = cfg->hp.mla_v;
    norm_rows(th, layer_w(th, il, NTP_T_ATTN_NORM), n); /* prep_act meets the team */
    if (ql > 0)
        mm(th, layer_w(th, il, NTP_T_ATTN_Q_A), s->xn, e, n, s->qa, ql);
    else
        mm(th, layer_w(th, il, NTP_T_ATTN_Q), s->xn, e, n, s->mq, nh * hq);
    mm(th, layer_w(th, il, NTP_T_ATTN_KV_A_MQA), s->xn, e, n, s->kx, s->hdk);
    team_barrier(th);
    act_release(th);
    if (ql > 0) {
        int64_t t0, t1;
        ntp__slice(n, th->ith, th->nth, &t0, &t1);
        for (int64_t t = t0; t < t1; t++)
            ntp__rmsnorm_f32(s->qa + t * ql, s->qa + t * ql,
                             layer_w(th, il, NTP_T_ATTN_Q_A_NORM)->data, ql, cfg->hp.rms_eps);
        mm(th, layer_w(th, il, NTP_T_ATTN_Q_B), s->qa, ql, n, s->mq, nh * hq);
        team_barrier(th);
        act_release(th);
    }
    mla_post(th, il, run);
    mm_heads(th, layer_w(th, il, NTP_T_ATTN_K_B), r, s->mq, hq, s->q, s->hdk, n);
    int64_t u0, u1; /* a quantized cache's rotation of the absorbed queries */
    ntp__slice(s->rot_k ? n * nh : 0, th->ith, th->nth, &u0, &u1);
    for (int64_t u = u0; u < u1; u++)
        kv_rotate(s->q + u * s->hdk, s->hdk, s->rot_k);
    team_barrier(th);
    attention(th, il, run);
    team_barrier(th);
    mm_heads(th, layer_w(th, il, NTP_T_ATTN_V_B), hv, s->att, r, s->mo, hv, n);
    mm(th, layer_w(th, il, NTP_T_ATTN_OUTPUT), s->mo, nh * hv, n, s->part, e);
    team_barrier(th);
    act_release(th);
    reduce_residual(th, n, NULL);
    team_barrier(th);
}

/*
 * A dense SwiGLU or GeGLU of the shard's ff features into dst: gate, up,
 * the activation and down (the act buffer released after).
 */
static void dense_ffn(struct thr *th, int64_t il, enum ntp_tensor_id gate, int64_t ff, float *dst,
                      int64_t n)
{
    struct ntp_dev_state *s = th->s;
    const int64_t e = s->n_embd;
    const struct ntp_dev_tensor *gw = layer_w(th, il, gate);
    const struct ntp_dev_tensor *up = layer_w(th, il, (enum ntp_tensor_id)(gate + 1));
    const ntp_glu_fn glu = th->k->glu[s->p.cfg->ffn_act];
    mm(th, gw, s->xn, e, n, s->gate, ff);
    if (up->layout != NTP_PACK_NONE && th->k->type[up->type].packed_glu) {
        /*
         * The up product's sums gate the gate's as they leave the kernel (s->up:
         * scratch). Packed products slice the same groups to a thread whatever
         * the type (kernels.h), so a packed gate's rows are this thread's own.
         */
        if (gw->layout == NTP_PACK_NONE)
            team_barrier(th);
        mm_gated(th, up, s->xn, e, n, s->up, ff, glu, s->gate);
        team_barrier(th);
        act_release(th);
    } else {
        mm(th, up, s->xn, e, n, s->up, ff);
        team_barrier(th);
        act_release(th);
        int64_t i0, i1;
        ntp__slice(n * ff, th->ith, th->nth, &i0, &i1);
        glu(s->gate + i0, s->gate + i0, s->up + i0, i1 - i0);
        team_barrier(th);
    }
    mm(th, layer_w(th, il, (enum ntp_tensor_id)(gate + 2)), s->gate, ff, n, dst, e); /* its down */
    team_barrier(th);
    act_release(th);
}

/*
 * The FFN half of block il: norm, then a dense FFN or the mixture of
 * experts (plus deepseek2's shared experts, whose partial joins the
 * mixture's), then all-reduce #2.
 */
static void block_ffn(struct thr *th, int64_t il, const struct ntp_dev_run *run)
{
    struct ntp_dev_state *s = th->s;
    const struct ntp_shard *sh = s->p.shard;
    const int64_t n = run->n_tok;
    norm_rows(th, layer_w(th, il, NTP_T_FFN_NORM), n); /* prep_act meets the team */
    if (s->moe && ntp__layer_moe(&s->p.cfg->hp, il)) { /* cpu_moe.c: its partial in s->part */
        const ntp_status st = ntp__cpu_moe_ffn(s, th->k, th->team, th->ith, th->nth, il, n);
        if (st != NTP_OK)
            fail(th, st);
        team_barrier(th);
        act_release(th);
        if (sh->n_sff > 0 && layer_w(th, il, NTP_T_FFN_GATE_SHEXP)->data) {
            dense_ffn(th, il, NTP_T_FFN_GATE_SHEXP, sh->n_sff, s->part2, n);
            int64_t i0, i1;
            ntp__slice(n * s->n_embd, th->ith, th->nth, &i0, &i1);
            ntp__add_f32(s->part + i0, s->part2 + i0, i1 - i0);
            team_barrier(th);
        }
    } else {
        dense_ffn(th, il, NTP_T_FFN_GATE, sh->n_dff, s->part, n);
    }
    reduce_residual(th, n, layer_w(th, il, NTP_T_FFN_POST_NORM));
    team_barrier(th);
}

static void thr_init(struct thr *th, struct ntp_dev_state *s, int ith, int nth)
{
    const struct cpu_device *c = s->dev->impl;
    th->s = s;
    th->k = &c->k;
    th->team = c->team;
    th->ith = ith;
    th->nth = nth;
    th->act_src = NULL;
    th->act_type = NTP_TYPE_F32;
    th->scratch = s->thr + (size_t)th->ith * (size_t)s->thr_floats;
}

void ntp__cpu_layers_job(void *ctx, int ith, int nth)
{
    struct ntp_dev_state *s = ctx;
    const struct ntp_dev_run *run = &s->job.run;
    struct thr th;
    thr_init(&th, s, ith, nth);
    const int64_t n_rot = s->p.cfg->rope.n_rot;
    int64_t t0, t1;
    ntp__slice(run->n_tok, th.ith, th.nth, &t0, &t1);
    for (int64_t t = t0; t < t1; t++) {
        const int64_t p = ntp__run_pos(run, t);
        ntp__rope_cache_f32(s->rope_cs + t * n_rot, p, &s->p.cfg->rope);
        if (s->p.cfg->is_swa)
            ntp__rope_cache_f32(s->rope_cs_swa + t * n_rot, p, &s->p.cfg->rope_swa);
    }
    /* The first layer's norm touches only this thread's tokens; prep_act meets the team. */
    for (int64_t il = run->layer0; il < run->layer1; il++) { /* the halves it holds */
        if (ntp__shard_attn(s->p.shard, il) && ntp__cfg_mla(s->p.cfg))
            block_attn_mla(&th, il, run);
        else if (ntp__shard_attn(s->p.shard, il))
            block_attn(&th, il, run);
        if (ntp__shard_ffn(s->p.shard, il))
            block_ffn(&th, il, run);
    }
}

void ntp__cpu_output_job(void *ctx, int ith, int nth)
{
    struct ntp_dev_state *s = ctx;
    const struct ntp_dev_output_run *run = &s->job.out;
    const struct ntp_dev_tensor *out = &s->p.w->global[NTP_T_OUTPUT];
    if (out->data == NULL || s->p.shard->n_vocab == 0)
        return;
    struct thr th;
    thr_init(&th, s, ith, nth);
    const struct ntp_dev_tensor *nw = &s->p.w->global[NTP_T_OUTPUT_NORM];
    int64_t t0, t1;
    ntp__slice(run->n_tok, th.ith, th.nth, &t0, &t1);
    for (int64_t t = t0; t < t1; t++)
        ntp__rmsnorm_f32(s->xn + t * s->n_embd, s->x + (run->tok0 + t) * s->n_embd, nw->data,
                         s->n_embd, s->p.cfg->hp.rms_eps);
    mm(&th, out, s->xn, s->n_embd, run->n_tok, run->logits + s->p.shard->vocab0, run->ld);
}
