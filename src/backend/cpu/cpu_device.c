/*
 * cpu_device.c - the CPU implementation of struct ntp_device_iface: memory,
 * uploads and per-context state. The layer computation is in cpu_layer.c.
 */
#include "backend/cpu/cpu_int.h"

#include "core/core.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct cpu_device *cpu_of(struct ntp_device *d)
{
    return d->impl;
}

static void cpu_destroy(struct ntp_device *d)
{
    if (d == NULL)
        return;
    free(d->impl);
    free(d);
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
    (void)d;
    *out = ntp__alloc_aligned(size ? size : 64, 64);
    if (*out == NULL)
        return ntp__error(NTP_E_NOMEM, "cpu device: cannot allocate %zu bytes", size);
    return NTP_OK;
}

static void cpu_buffer_free(struct ntp_device *d, void *buf)
{
    (void)d;
    ntp__free_aligned(buf);
}

static ntp_status cpu_upload_2d(struct ntp_device *d, void *dst, size_t dst_stride, const void *src,
                                size_t src_stride, size_t row_bytes, size_t n_rows)
{
    (void)d;
    if (dst_stride == row_bytes && src_stride == row_bytes) {
        memcpy(dst, src, row_bytes * n_rows);
        return NTP_OK;
    }
    for (size_t r = 0; r < n_rows; r++)
        memcpy((uint8_t *)dst + r * dst_stride, (const uint8_t *)src + r * src_stride, row_bytes);
    return NTP_OK;
}

/* Largest activation row any matrix of the shard needs, in bytes. */
static size_t max_act_row(const struct cpu_device *c, const struct ntp_dev_state_params *p)
{
    static const enum ntp_tensor_id mats[] = {NTP_T_ATTN_Q,      NTP_T_ATTN_K,   NTP_T_ATTN_V,
                                              NTP_T_ATTN_OUTPUT, NTP_T_FFN_GATE, NTP_T_FFN_UP,
                                              NTP_T_FFN_DOWN};
    size_t best = 0;
    for (int64_t l = 0; l < p->shard->n_layer; l++)
        for (size_t i = 0; i < sizeof mats / sizeof mats[0]; i++) {
            const struct ntp_dev_tensor *t = &p->w->layer[l * NTP_T_COUNT + mats[i]];
            size_t sz = t->data ? ntp__kernels_act_row_size(&c->k, t->type, t->ne[0]) : 0;
            best = sz > best ? sz : best;
        }
    const struct ntp_dev_tensor *o = &p->w->global[NTP_T_OUTPUT];
    if (o->data) {
        size_t sz = ntp__kernels_act_row_size(&c->k, o->type, o->ne[0]);
        best = sz > best ? sz : best;
    }
    return best;
}

/* Allocate n floats (64-byte aligned), counting failures in *bad. */
static void *state_alloc(size_t bytes, int *bad)
{
    void *p = ntp__alloc_aligned(bytes ? bytes : 64, 64);
    *bad += p == NULL;
    return p;
}

static void cpu_state_free(struct ntp_device *d, struct ntp_dev_state *s)
{
    (void)d;
    if (s == NULL)
        return;
    void *bufs[] = {s->k_cache, s->v_cache, s->x,    s->xn, s->q,       s->kx,  s->vx,
                    s->att,     s->part,    s->gate, s->up, s->rope_cs, s->act, s->thr};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        ntp__free_aligned(bufs[i]);
    free(s);
}

static ntp_status cpu_state_new(struct ntp_device *d, const struct ntp_dev_state_params *p,
                                struct ntp_dev_state **out)
{
    const struct cpu_device *c = cpu_of(d);
    const struct ntp_hparams *hp = &p->cfg->hp;
    const struct ntp_shard *sh = p->shard;
    *out = NULL;
    if (p->kv_type != NTP_TYPE_F16 && p->kv_type != NTP_TYPE_F32)
        return ntp__error(NTP_E_UNSUPPORTED, "KV cache type %s: expected F16 or F32",
                          ntp_type_name(p->kv_type));
    struct ntp_dev_state *s = calloc(1, sizeof *s);
    if (s == NULL)
        return ntp__error(NTP_E_NOMEM, "cpu device: cannot allocate a context state");
    s->dev = d;
    s->p = *p;
    s->n_embd = hp->n_embd;
    s->hdk = hp->head_dim_k;
    s->hdv = hp->head_dim_v;
    s->n_threads = c->p.n_threads;
    const size_t kv_el = p->kv_type == NTP_TYPE_F16 ? 2 : 4;
    const size_t nb = (size_t)p->n_batch, fl = sizeof(float);
    s->kv_row = (size_t)(sh->n_head_kv * (s->hdk > s->hdv ? s->hdk : s->hdv)) * kv_el;
    s->act_row = max_act_row(c, p);
    s->thr_floats = p->n_ctx + s->hdv;
    int bad = 0;
    const size_t kv_bytes = (size_t)sh->n_layer * (size_t)p->n_ctx * s->kv_row;
    s->k_cache = state_alloc(kv_bytes, &bad);
    s->v_cache = state_alloc(kv_bytes, &bad);
    s->x = state_alloc(nb * (size_t)s->n_embd * fl, &bad);
    s->xn = state_alloc(nb * (size_t)s->n_embd * fl, &bad);
    s->q = state_alloc(nb * (size_t)(sh->n_head * s->hdk) * fl, &bad);
    s->kx = state_alloc(nb * (size_t)(sh->n_head_kv * s->hdk) * fl, &bad);
    s->vx = state_alloc(nb * (size_t)(sh->n_head_kv * s->hdv) * fl, &bad);
    s->att = state_alloc(nb * (size_t)(sh->n_head * s->hdv) * fl, &bad);
    s->part = state_alloc(nb * (size_t)s->n_embd * fl, &bad);
    s->gate = state_alloc(nb * (size_t)sh->n_ff * fl, &bad);
    s->up = state_alloc(nb * (size_t)sh->n_ff * fl, &bad);
    s->rope_cs = state_alloc(nb * (size_t)p->cfg->rope.n_rot * fl, &bad);
    s->act = state_alloc(nb * s->act_row, &bad);
    s->thr = state_alloc((size_t)s->n_threads * (size_t)s->thr_floats * fl, &bad);
    if (bad) {
        cpu_state_free(d, s);
        return ntp__error(NTP_E_NOMEM,
                          "cpu device: cannot allocate the context (KV cache %zu bytes for %lld "
                          "positions, batch %lld)",
                          2 * kv_bytes, (long long)p->n_ctx, (long long)p->n_batch);
    }
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
    if (n_tok < 0 || n_tok > s->p.n_batch)
        return ntp__error(NTP_E_INVALID_ARG, "cpu device: batch of %lld tokens (at most %lld)",
                          (long long)n_tok, (long long)s->p.n_batch);
    memcpy(s->x, x, (size_t)n_tok * (size_t)s->n_embd * sizeof(float));
    return NTP_OK;
}

static ntp_status cpu_hidden_read(struct ntp_device *d, struct ntp_dev_state *s, float *x,
                                  int64_t n_tok)
{
    (void)d;
    if (n_tok < 0 || n_tok > s->p.n_batch)
        return ntp__error(NTP_E_INVALID_ARG, "cpu device: batch of %lld tokens (at most %lld)",
                          (long long)n_tok, (long long)s->p.n_batch);
    memcpy(x, s->x, (size_t)n_tok * (size_t)s->n_embd * sizeof(float));
    return NTP_OK;
}

static ntp_status cpu_run_layers(struct ntp_device *d, struct ntp_dev_state *s,
                                 const struct ntp_dev_run *run)
{
    (void)d;
    return ntp__cpu_run_layers(s, run);
}

static ntp_status cpu_run_output(struct ntp_device *d, struct ntp_dev_state *s,
                                 const struct ntp_dev_output_run *run)
{
    (void)d;
    return ntp__cpu_run_output(s, run);
}

static const struct ntp_device_iface cpu_iface = {
    .name = "cpu",
    .destroy = cpu_destroy,
    .supports_type = cpu_supports_type,
    .mem_available = cpu_mem_available,
    .buffer_alloc = cpu_buffer_alloc,
    .buffer_free = cpu_buffer_free,
    .upload_2d = cpu_upload_2d,
    .state_new = cpu_state_new,
    .state_free = cpu_state_free,
    .state_clear = cpu_state_clear,
    .hidden_write = cpu_hidden_write,
    .hidden_read = cpu_hidden_read,
    .run_layers = cpu_run_layers,
    .run_output = cpu_run_output,
};

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
    ntp_status s = ntp__kernels_init(&c->k, p->isa);
    if (s != NTP_OK) {
        free(d);
        free(c);
        return s;
    }
    d->iface = &cpu_iface;
    d->impl = c;
    snprintf(d->desc, sizeof d->desc, "cpu node %d, %d threads, %s kernels", p->node, p->n_threads,
             c->k.isa);
    *out = d;
    return NTP_OK;
}
