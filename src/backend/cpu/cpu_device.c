/*
 * cpu_device.c - the CPU implementation of struct ntp_device_iface: memory,
 * uploads and per-context state. The layer computation is in cpu_layer.c.
 *
 * Every buffer is bound to the device's node (src/numa/place.h) and first
 * written by the device's own team, so the pages are where the threads that
 * stream them run.
 */
#include "backend/cpu/cpu_int.h"

#include "backend/cpu/cpu_moe.h"

#include "core/core.h"
#include "kernels/packed.h"
#include "numa/place.h"

#include <numa.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if NTP_HAVE_OPENBLAS
#include <cblas.h>
#endif

const char *ntp__blas_coretype_hint(const char *core, const char *isa)
{
    /* OpenBLAS's cores without AVX2 kernels, the ones its detection falls back to */
    static const char *const generic[] = {"Prescott",  "Core2",  "Penryn", "Dunnington",
                                          "Nehalem",   "Atom",   "Katmai", "Coppermine",
                                          "Northwood", "Banias", "Athlon", "Opteron",
                                          "Barcelona", "Bobcat", "Unknown"};
    const char *want = strcmp(isa, "avx512") == 0 ? "SkylakeX"
                       : strcmp(isa, "avx2") == 0 ? "Haswell"
                                                  : NULL;
    for (size_t i = 0; want && i < sizeof generic / sizeof generic[0]; i++)
        if (strcmp(core, generic[i]) == 0)
            return want;
    return NULL;
}

const char *ntp__cpu_blas_desc(char *buf, size_t size, const char *isa)
{
#if NTP_HAVE_OPENBLAS
    /* the config string starts "OpenBLAS <version> " */
    const char *cfg = openblas_get_config(), *core = openblas_get_corename();
    const char *end = strchr(cfg, ' ');
    end = end ? strchr(end + 1, ' ') : NULL;
    snprintf(buf, size, "%.*s, %s kernels", end ? (int)(end - cfg) : (int)strlen(cfg), cfg, core);
    return ntp__blas_coretype_hint(core, isa);
#else
    (void)isa;
    snprintf(buf, size, "none");
    return NULL;
#endif
}

static struct cpu_device *cpu_of(struct ntp_device *d)
{
    return d->impl;
}

static void cpu_destroy(struct ntp_device *d)
{
    if (d == NULL)
        return;
    struct cpu_device *c = d->impl;
    if (c)
        ntp__team_free(c->team);
    free(d->impl);
    free(d);
}

static int cpu_node(struct ntp_device *d)
{
    return cpu_of(d)->p.node;
}

static bool cpu_supports_type(struct ntp_device *d, enum ntp_type t)
{
    return ntp__kernels_supports(&cpu_of(d)->k, t);
}

/* MemAvailable of /proc/meminfo in bytes. */
static ntp_status meminfo_available(uint64_t *bytes)
{
    FILE *f = fopen("/proc/meminfo", "r");
    if (f == NULL)
        return ntp__error(NTP_E_IO, "/proc/meminfo: cannot open");
    char line[256];
    ntp_status s = ntp__error(NTP_E_NOT_FOUND, "/proc/meminfo: no MemAvailable line");
    while (fgets(line, sizeof line, f)) {
        unsigned long long kb;
        if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1) {
            *bytes = (uint64_t)kb * 1024;
            s = NTP_OK;
            break;
        }
    }
    fclose(f);
    return s;
}

static ntp_status cpu_mem_available(struct ntp_device *d, uint64_t *bytes)
{
    const struct cpu_device *c = cpu_of(d);
    if (c->p.memory_limit > 0) {
        *bytes = c->p.memory_limit;
        return NTP_OK;
    }
    return meminfo_available(bytes);
}

static ntp_status cpu_buffer_alloc(struct ntp_device *d, size_t size, void **out)
{
    *out = ntp__place_alloc(size ? size : 64, cpu_of(d)->p.node);
    if (*out == NULL)
        return ntp__error(NTP_E_NOMEM, "cpu device: cannot allocate %zu bytes", size);
    return NTP_OK;
}

static void cpu_buffer_free(struct ntp_device *d, void *buf)
{
    (void)d;
    ntp__place_free(buf);
}

/* A 2-D copy split over the team: whole rows, or byte ranges of one big row. */
struct copy_job {
    uint8_t *dst;
    const uint8_t *src;
    size_t dst_stride, src_stride, row_bytes, n_rows;
};

static void part(size_t n, int ith, int nth, size_t *a, size_t *b)
{
    *a = n * (size_t)ith / (size_t)nth;
    *b = n * (size_t)(ith + 1) / (size_t)nth;
}

static void copy_job_fn(void *ctx, int ith, int nth)
{
    const struct copy_job *j = ctx;
    size_t a, b;
    if (j->n_rows >= (size_t)nth) {
        part(j->n_rows, ith, nth, &a, &b);
        for (size_t r = a; r < b; r++)
            memcpy(j->dst + r * j->dst_stride, j->src + r * j->src_stride, j->row_bytes);
        return;
    }
    part(j->row_bytes, ith, nth, &a, &b);
    for (size_t r = 0; r < j->n_rows; r++)
        memcpy(j->dst + r * j->dst_stride + a, j->src + r * j->src_stride + a, b - a);
}

static ntp_status cpu_upload_2d(struct ntp_device *d, void *dst, size_t dst_stride, const void *src,
                                size_t src_stride, size_t row_bytes, size_t n_rows)
{
    struct copy_job j = {dst, src, dst_stride, src_stride, row_bytes, n_rows};
    if (row_bytes * n_rows < (64u << 10)) { /* small: not worth waking the team */
        copy_job_fn(&j, 0, 1);
        return NTP_OK;
    }
    ntp__team_run(cpu_of(d)->team, copy_job_fn, &j);
    return NTP_OK;
}

/* Packing a matrix in place: each thread takes whole groups through a private copy. */
struct pack_job {
    const struct ntp_dev_tensor *t;
    _Atomic int err; /* NTP_E_NOMEM when a thread could not get its copy buffer */
};

static void pack_job_fn(void *ctx, int ith, int nth)
{
    struct pack_job *j = ctx;
    const struct ntp_dev_tensor *t = j->t;
    const size_t gbytes = t->row_stride * NTP_PACK_ROWS;
    int64_t g0, g1;
    ntp__slice(t->ne[1] / NTP_PACK_ROWS, ith, nth, &g0, &g1);
    if (g0 == g1)
        return;
    uint8_t *tmp = malloc(gbytes);
    if (tmp == NULL) {
        j->err = NTP_E_NOMEM;
        return;
    }
    for (int64_t g = g0; g < g1; g++) {
        uint8_t *grp = (uint8_t *)t->data + (size_t)g * gbytes;
        memcpy(tmp, grp, gbytes);
        ntp__pack_group(t->layout, t->type, grp, tmp, t->row_stride, t->ne[0]);
    }
    free(tmp);
}

/*
 * Pack when the kernels ask for it and the shard allows: whole groups of 16
 * rows, rows stored back to back. Other matrices keep the file's layout.
 */
static ntp_status cpu_pack_matrix(struct ntp_device *d, struct ntp_dev_tensor *t)
{
    const struct cpu_device *c = cpu_of(d);
    size_t row;
    if (c->k.type[t->type].pack == NTP_PACK_NONE || t->ne[1] % NTP_PACK_ROWS != 0 ||
        ntp_type_row_size(t->type, t->ne[0], &row) != NTP_OK || row != t->row_stride)
        return NTP_OK;
    t->layout = c->k.type[t->type].pack; /* the layout pack_job_fn writes */
    struct pack_job j = {.t = t};
    ntp__team_run(c->team, pack_job_fn, &j);
    if (j.err != NTP_OK)
        return ntp__error((ntp_status)j.err,
                          "cpu device: no memory to pack a %lld x %lld %s matrix",
                          (long long)t->ne[1], (long long)t->ne[0], ntp_type_name(t->type));
    return NTP_OK;
}

/* Zero-fill buffers with the team: their pages are first touched on the node. */
struct touch_job {
    void **bufs;
    size_t *sizes;
    int n;
};

static void touch_job_fn(void *ctx, int ith, int nth)
{
    const struct touch_job *j = ctx;
    for (int i = 0; i < j->n; i++) {
        size_t a, b;
        part(j->sizes[i], ith, nth, &a, &b);
        memset((uint8_t *)j->bufs[i] + a, 0, b - a);
    }
}

/* Largest activation row any matrix of the shard needs, in bytes. */
static size_t max_act_row(const struct cpu_device *c, const struct ntp_dev_state_params *p)
{
    static const enum ntp_tensor_id mats[] = {
        NTP_T_ATTN_Q,        NTP_T_ATTN_K,         NTP_T_ATTN_V,       NTP_T_ATTN_OUTPUT,
        NTP_T_FFN_GATE,      NTP_T_FFN_UP,         NTP_T_FFN_DOWN,     NTP_T_ATTN_Q_A,
        NTP_T_ATTN_Q_B,      NTP_T_ATTN_KV_A_MQA,  NTP_T_FFN_GATE_SHEXP, NTP_T_FFN_UP_SHEXP,
        NTP_T_FFN_DOWN_SHEXP};
    size_t best = 0;
    for (int64_t l = 0; l < p->shard->n_layer; l++)
        for (size_t i = 0; i < sizeof mats / sizeof mats[0]; i++) {
            const struct ntp_dev_tensor *t = &p->w->layer[l * NTP_T_COUNT + mats[i]];
            size_t sz = t->data ? ntp__kernels_act_row_size(&c->k, t->type, t->ne[0]) : 0;
            best = sz > best ? sz : best;
        }
    /* latent attention's per-head products: every head of a token in its row */
    for (int64_t l = 0; l < p->shard->n_layer; l++)
        for (int id = NTP_T_ATTN_K_B; id <= NTP_T_ATTN_V_B; id++) {
            const struct ntp_dev_tensor *t = &p->w->layer[l * NTP_T_COUNT + id];
            const size_t seg = t->data ? ntp__cpu_head_act(&c->k, t) : 0;
            best = seg * (size_t)p->shard->n_head > best ? seg * (size_t)p->shard->n_head : best;
        }
    const struct ntp_dev_tensor *o = &p->w->global[NTP_T_OUTPUT];
    if (o->data) {
        size_t sz = ntp__kernels_act_row_size(&c->k, o->type, o->ne[0]);
        best = sz > best ? sz : best;
    }
    return best;
}

/* Node-bound memory for a state buffer, counting failures in *bad. */
static void *state_alloc(const struct cpu_device *c, size_t bytes, int *bad)
{
    void *p = ntp__place_alloc(bytes ? bytes : 64, c->p.node);
    *bad += p == NULL;
    return p;
}

static void cpu_state_free(struct ntp_device *d, struct ntp_dev_state *s)
{
    (void)d;
    if (s == NULL)
        return;
    void *bufs[] = {s->k_cache, s->v_cache, s->x,   s->xn,   s->q,     s->kx,
                    s->vx,      s->att,     s->part, s->gate, s->up,  s->rope_cs,
                    s->act,     s->thr,     s->rope_cs_swa, s->mq, s->qa, s->mo,
                    s->part2};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        ntp__place_free(bufs[i]);
    ntp__cpu_moe_free(s->moe);
    free(s->kv_off);
    free(s->kv_ring);
    free(s->blk);
    free(s);
}

/*
 * Where each layer's rows start in the KV caches (sliding-window layers may
 * keep a ring instead of n_ctx rows: config.h, ntp__kv_ring) inside a
 * sequence's cache, and the caches' size (n_seq such) in bytes into *bytes.
 * NTP_E_NOMEM, or NTP_E_OVERFLOW past size_t.
 */
static ntp_status kv_layout(struct ntp_dev_state *s, size_t *bytes)
{
    const struct ntp_shard *sh = s->p.shard;
    s->kv_off = calloc((size_t)sh->n_layer + 1, sizeof *s->kv_off);
    s->kv_ring = calloc((size_t)sh->n_layer + 1, sizeof *s->kv_ring);
    if (s->kv_off == NULL || s->kv_ring == NULL)
        return ntp__error(NTP_E_NOMEM, "cpu device: cannot allocate a context state");
    size_t off = 0;
    for (int64_t li = 0; li < sh->n_layer; li++) {
        const int64_t il = sh->layer0 + li;
        s->kv_off[li] = off;
        s->kv_ring[li] = ntp__kv_ring(s->p.cfg, il, s->p.n_ctx, s->p.n_batch);
        /* none for a block whose attention another device runs (--cpu-moe) */
        const size_t rows = ntp__shard_attn(sh, il)
                                ? (size_t)ntp__kv_rows(s->p.cfg, il, s->p.n_ctx, s->p.n_batch)
                                : 0;
        size_t layer;
        if (__builtin_mul_overflow(rows, s->kv_row, &layer) ||
            __builtin_add_overflow(off, layer, &off))
            return ntp__error(NTP_E_OVERFLOW, "cpu device: the KV cache does not fit in memory");
    }
    s->kv_seq = off;
    if (__builtin_mul_overflow(off, (size_t)s->p.n_seq, bytes))
        return ntp__error(NTP_E_OVERFLOW, "cpu device: the KV cache does not fit in memory");
    return NTP_OK;
}

static ntp_status cpu_state_new(struct ntp_device *d, const struct ntp_dev_state_params *p,
                                struct ntp_dev_state **out)
{
    const struct cpu_device *c = cpu_of(d);
    const struct ntp_hparams *hp = &p->cfg->hp;
    const struct ntp_shard *sh = p->shard;
    *out = NULL;
    struct ntp_dev_state *s = calloc(1, sizeof *s);
    if (s == NULL)
        return ntp__error(NTP_E_NOMEM, "cpu device: cannot allocate a context state");
    s->dev = d;
    s->p = *p;
    s->p.n_seq = p->n_seq > 1 ? p->n_seq : 1;
    s->n_embd = hp->n_embd;
    s->hdk = hp->head_dim_k;
    s->hdv = hp->head_dim_v;
    s->n_threads = c->p.n_threads;
    const size_t nb = (size_t)p->n_batch, fl = sizeof(float);
    s->act_row = max_act_row(c, p);
    s->thr_floats = p->n_ctx + s->hdk;
#if NTP_HAVE_OPENBLAS
    const int64_t blas_floats = NTP_ATT_SCRATCH(s->hdk, s->hdv, att_heads(p->cfg));
    s->thr_floats = s->thr_floats > blas_floats ? s->thr_floats : blas_floats;
#endif
    int bad = 0;
    size_t kv_bytes = 0;
    ntp_status st = ntp_type_row_size(p->kv_type, s->hdk, &s->k_head);
    if (st == NTP_OK)
        st = ntp_type_row_size(p->kv_type, s->hdv, &s->v_head);
    s->kv_row = (size_t)sh->n_head_kv * (s->k_head > s->v_head ? s->k_head : s->v_head);
    /* llama.cpp's attention rotation (attn_rot_k/v), on for a quantized cache whose heads are
       multiples of 64 wide: q and k in blocks of the largest power of two dividing hdk, v in
       blocks of 64. Dot products are kept; the blocks see fewer outliers. */
    if (ntp__kv_quantized(p->kv_type)) {
        s->rot_k = s->hdk % 64 == 0 ? s->hdk & -s->hdk : 0;
        s->rot_v = s->hdv % 64 == 0 ? 64 : 0;
        if (ntp__cfg_mla(p->cfg)) /* the values are in the keys: the same blocks of 64 */
            s->rot_k = s->rot_v = s->hdk % 64 == 0 && s->hdv % 64 == 0 ? 64 : 0;
    }
    if (st == NTP_OK)
        st = kv_layout(s, &kv_bytes);
    if (st == NTP_OK)
        st = ntp__cpu_moe_new(c, p, &s->moe);
    s->blk = malloc(nb * 2 * sizeof *s->blk);
    if (st == NTP_OK && s->blk == NULL)
        st = ntp__error(NTP_E_NOMEM, "cpu device: cannot allocate a context state");
    if (st != NTP_OK) {
        cpu_state_free(d, s);
        return st;
    }
    const bool mla = ntp__cfg_mla(p->cfg);
    const int64_t nff = sh->n_ff > sh->n_dff ? (sh->n_ff > sh->n_sff ? sh->n_ff : sh->n_sff)
                                             : (sh->n_dff > sh->n_sff ? sh->n_dff : sh->n_sff);
    s->k_cache = state_alloc(c, kv_bytes, &bad);
    s->v_cache = state_alloc(c, mla ? 0 : kv_bytes, &bad); /* latent attention: in the keys */
    s->x = state_alloc(c, nb * (size_t)s->n_embd * fl, &bad);
    s->xn = state_alloc(c, nb * (size_t)s->n_embd * fl, &bad);
    s->q = state_alloc(c, nb * (size_t)(sh->n_head * s->hdk) * fl, &bad);
    s->kx = state_alloc(c, nb * (size_t)(sh->n_head_kv * s->hdk) * fl, &bad);
    s->vx = state_alloc(c, nb * (size_t)(sh->n_head_kv * s->hdv) * fl, &bad);
    s->att = state_alloc(c, nb * (size_t)(sh->n_head * s->hdv) * fl, &bad);
    s->part = state_alloc(c, nb * (size_t)s->n_embd * fl, &bad);
    s->gate = state_alloc(c, nb * (size_t)nff * fl, &bad);
    s->up = state_alloc(c, nb * (size_t)nff * fl, &bad);
    s->mq = state_alloc(c, mla ? nb * (size_t)(sh->n_head * hp->mla_k) * fl : 0, &bad);
    s->qa = state_alloc(c, nb * (size_t)hp->q_lora * fl, &bad);
    s->mo = state_alloc(c, mla ? nb * (size_t)(sh->n_head * hp->mla_v) * fl : 0, &bad);
    s->part2 = state_alloc(c, sh->n_sff > 0 ? nb * (size_t)s->n_embd * fl : 0, &bad);
    s->rope_cs = state_alloc(c, nb * (size_t)p->cfg->rope.n_rot * fl, &bad);
    s->rope_cs_swa = state_alloc(c, nb * (size_t)p->cfg->rope.n_rot * fl, &bad);
    s->act = state_alloc(c, nb * s->act_row, &bad);
    s->thr = state_alloc(c, (size_t)s->n_threads * (size_t)s->thr_floats * fl, &bad);
    if (bad) {
        cpu_state_free(d, s);
        return ntp__error(NTP_E_NOMEM,
                          "cpu device: cannot allocate the context (KV cache %zu bytes for %lld "
                          "sequence(s) of %lld positions, batch %lld)",
                          (mla ? 1 : 2) * kv_bytes, (long long)p->n_seq, (long long)p->n_ctx,
                          (long long)p->n_batch);
    }
    void *bufs[] = {s->k_cache, s->v_cache, s->x,   s->xn,   s->q,     s->kx,
                    s->vx,      s->att,     s->part, s->gate, s->up,  s->rope_cs,
                    s->act,     s->thr,     s->rope_cs_swa, s->mq, s->qa, s->mo,
                    s->part2};
    size_t sizes[sizeof bufs / sizeof bufs[0]];
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        sizes[i] = ntp__place_size(bufs[i]);
    struct touch_job tj = {bufs, sizes, (int)(sizeof bufs / sizeof bufs[0])};
    ntp__team_run(c->team, touch_job_fn, &tj);
    *out = s;
    return NTP_OK;
}

static void cpu_state_clear(struct ntp_device *d, struct ntp_dev_state *s)
{
    /* Positions past the current one are never read, so nothing needs wiping. */
    (void)d;
    (void)s;
}

static ntp_status cpu_hidden_write(struct ntp_device *d, struct ntp_dev_state *s, const float *x,
                                   int64_t n_tok)
{
    (void)d;
    memcpy(s->x, x, (size_t)n_tok * (size_t)s->n_embd * sizeof(float));
    return NTP_OK;
}

static ntp_status cpu_hidden_read(struct ntp_device *d, struct ntp_dev_state *s, float *x,
                                  int64_t n_tok)
{
    (void)d;
    memcpy(x, s->x, (size_t)n_tok * (size_t)s->n_embd * sizeof(float));
    return NTP_OK;
}

/* Start the team on fn for s, whose job arguments are set: no error yet, busy until waited for. */
static ntp_status job_start(struct ntp_device *d, struct ntp_dev_state *s, ntp_team_fn fn)
{
    atomic_store(&s->job.err, NTP_OK);
    s->job.msg[0] = '\0';
    s->job.busy = true;
    ntp__team_start(cpu_of(d)->team, fn, s);
    return NTP_OK;
}

/*
 * The attention's blocks of a run (cpu_int.h, blk): each run of consecutive
 * tokens of one sequence is cut into blocks of NTP_ATT_TB for OpenBLAS when
 * it has NTP_ATT_MIN_TOK tokens or more (first in blk), and into single
 * tokens otherwise (after them).
 */
static void make_blocks(struct ntp_dev_state *s, const struct ntp_dev_run *run)
{
    s->n_blk = 0;
    for (int pass = 0; pass < 2; pass++) {
        for (int64_t t0 = 0, t1; t0 < run->n_tok; t0 = t1) {
            for (t1 = t0 + 1; t1 < run->n_tok &&
                              ntp__run_seq(run, t1) == ntp__run_seq(run, t0) &&
                              ntp__run_pos(run, t1) == ntp__run_pos(run, t1 - 1) + 1;
                 t1++)
                ;
            const bool blas = NTP_ATT_BLAS && t1 - t0 >= NTP_ATT_MIN_TOK;
            if (blas != (pass == 0))
                continue;
            const int64_t step = blas ? NTP_ATT_TB : 1;
            for (int64_t t = t0; t < t1; t += step) {
                int32_t *b = s->blk + 2 * s->n_blk++;
                b[0] = (int32_t)t;
                b[1] = (int32_t)(t1 - t < step ? t1 - t : step);
            }
        }
        if (pass == 0)
            s->n_blk_blas = s->n_blk;
    }
}

static ntp_status cpu_run_layers_start(struct ntp_device *d, struct ntp_dev_state *s,
                                       const struct ntp_dev_run *run)
{
    s->job.run = *run;
    make_blocks(s, run);
    return job_start(d, s, ntp__cpu_layers_job);
}

static ntp_status cpu_run_output_start(struct ntp_device *d, struct ntp_dev_state *s,
                                       const struct ntp_dev_output_run *run)
{
    s->job.out = *run;
    return job_start(d, s, ntp__cpu_output_job);
}

static ntp_status cpu_run_wait(struct ntp_device *d, struct ntp_dev_state *s)
{
    if (!s->job.busy)
        return NTP_OK;
    ntp__team_wait(cpu_of(d)->team);
    s->job.busy = false;
    const ntp_status err = (ntp_status)atomic_load(&s->job.err);
    if (err != NTP_OK)
        return ntp__error(err, "%s: %s", d->desc,
                          s->job.msg[0] ? s->job.msg : ntp_status_desc(err));
    return NTP_OK;
}

static ntp_status cpu_run_layers(struct ntp_device *d, struct ntp_dev_state *s,
                                 const struct ntp_dev_run *run)
{
    ntp_status st = cpu_run_layers_start(d, s, run);
    return st != NTP_OK ? st : cpu_run_wait(d, s);
}

static ntp_status cpu_run_output(struct ntp_device *d, struct ntp_dev_state *s,
                                 const struct ntp_dev_output_run *run)
{
    ntp_status st = cpu_run_output_start(d, s, run);
    return st != NTP_OK ? st : cpu_run_wait(d, s);
}

/* Where the pages of the device's buffers are (weights are checked by the model). */
static ntp_status cpu_state_place(struct ntp_device *d, struct ntp_dev_state *s,
                                  struct ntp_place_count *c)
{
    const void *bufs[] = {s->k_cache, s->v_cache, s->x,   s->xn,   s->q,     s->kx,
                          s->vx,      s->att,     s->part, s->gate, s->up,  s->rope_cs,
                          s->act,     s->thr,     s->rope_cs_swa, s->mq, s->qa, s->mo,
                          s->part2};
    ntp_status st = NTP_OK;
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0] && st == NTP_OK; i++)
        st = ntp__place_count(bufs[i], ntp__place_size(bufs[i]), cpu_of(d)->p.node, c);
    if (st == NTP_OK && s->moe)
        st = ntp__cpu_moe_place(s->moe, cpu_of(d)->p.node, c);
    return st;
}

static ntp_status cpu_buffer_place(struct ntp_device *d, const void *buf, size_t size,
                                   struct ntp_place_count *c)
{
    return ntp__place_count(buf, size, cpu_of(d)->p.node, c);
}

static const struct ntp_device_iface cpu_iface = {
    .name = "cpu",
    .destroy = cpu_destroy,
    .supports_type = cpu_supports_type,
    .mem_available = cpu_mem_available,
    .buffer_alloc = cpu_buffer_alloc,
    .buffer_free = cpu_buffer_free,
    .upload_2d = cpu_upload_2d,
    .pack_matrix = cpu_pack_matrix,
    .state_new = cpu_state_new,
    .state_free = cpu_state_free,
    .state_clear = cpu_state_clear,
    .hidden_write = cpu_hidden_write,
    .hidden_read = cpu_hidden_read,
    .run_layers = cpu_run_layers,
    .run_output = cpu_run_output,
    .run_layers_start = cpu_run_layers_start,
    .run_output_start = cpu_run_output_start,
    .run_wait = cpu_run_wait,
    .buffer_place = cpu_buffer_place,
    .state_place = cpu_state_place,
    .node = cpu_node,
};

int ntp__cpu_device_count(char *why, size_t why_size)
{
    (void)why;
    (void)why_size;
    return numa_available() < 0 ? 1 : numa_num_configured_nodes();
}

ntp_status ntp__cpu_device_new(const struct ntp_cpu_device_params *p, struct ntp_device **out)
{
    *out = NULL;
    if (p->n_threads < 1)
        return ntp__error(NTP_E_INVALID_ARG, "cpu device: %d threads (need at least 1)",
                          p->n_threads);
    struct ntp_device *d = calloc(1, sizeof *d);
    struct cpu_device *c = calloc(1, sizeof *c);
    if (d == NULL || c == NULL) {
        free(d);
        free(c);
        return ntp__error(NTP_E_NOMEM, "cpu device: out of memory");
    }
    c->p = *p;
    c->p.pus = NULL;
    d->iface = &cpu_iface;
    d->impl = c;
    ntp_status s = ntp__kernels_init(&c->k, p->isa);
#if NTP_HAVE_OPENBLAS
    /* Our teams are the parallelism: each thread's sgemm runs on that thread alone. */
    openblas_set_num_threads(1);
    static atomic_flag blas_told = ATOMIC_FLAG_INIT; /* once per process */
    char blas[96];
    const char *hint = s == NTP_OK ? ntp__cpu_blas_desc(blas, sizeof blas, c->k.isa) : NULL;
    if (hint && !atomic_flag_test_and_set(&blas_told))
        ntp__log(NTP_LOG_WARN,
                 "%s (older than this CPU): prefill attention is faster with "
                 "OPENBLAS_CORETYPE=%s in the environment",
                 blas, hint);
#endif
    const struct ntp_team_params tp = {
        .n_threads = p->n_threads, .node = p->node, .topo = p->topo, .pus = p->pus};
    if (s == NTP_OK)
        s = ntp__team_new(&tp, &c->team);
    if (s != NTP_OK) {
        cpu_destroy(d);
        return s;
    }
    snprintf(d->desc, sizeof d->desc, "cpu node %d, %d threads%s, %s kernels", p->node,
             p->n_threads, ntp__team_bound(c->team) ? " (bound)" : "", c->k.isa);
    *out = d;
    return NTP_OK;
}
