/*
 * hybrid.c - hybrid GPU + CPU offload (--gpu-layers N, --gpu-output): which
 * devices hold which layers when a GPU takes part, and whether they fit.
 *
 * The GPU takes the FIRST n_gpu_layers blocks. The token embedding is looked
 * up on the host (it is a table, not a product), so the hidden state has to
 * cross PCIe once on its way into the first device whatever that device is;
 * with the first blocks on the GPU it then crosses back once, at the
 * GPU/CPU boundary, and the CPU group finishes the layers and computes the
 * logits where the host needs them. (Putting the last blocks on the GPU
 * instead would cost the same crossings, plus the logits coming back.)
 *
 * The model's devices, in pipeline order (src/exec/context.c makes one stage
 * of each run of devices holding the same layers):
 *   GPU [0, ngl)               the offloaded blocks; with --gpu-output and
 *                              every block on the GPU also the head, and then
 *                              there is no CPU device at all
 *   CPU group [ngl, L)         the tensor-parallel CPU devices; the head
 *                              unless --gpu-output
 *   GPU [L, L), head           only with --gpu-output and some blocks on the
 *                              CPU: a second device on the same GPU that runs
 *                              just the final norm and the output head
 *
 * --cpu-moe (a mixture of experts): the GPU holds only the attention halves
 * of its blocks [0, ngl) and the CPU group holds every block, the FFN half
 * alone of those (router and experts: the bulk of the model's bytes). exec
 * then alternates between the two for each of the first ngl blocks, the
 * hidden state crossing twice per block (src/exec/context.c). The router
 * stays with its experts: a token's route is computed where it is used, and
 * nothing but the hidden state crosses.
 */
#include "model/hybrid.h"
#include "model/model.h"

#include "backend/registry.h"
#include "core/core.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The whole model on one device: every head, the full FFN, optionally the vocabulary. */
static struct ntp_shard full_shard(const struct ntp_hparams *hp, int64_t layer0, int64_t n_layer,
                                   bool head)
{
    return (struct ntp_shard){
        .layer0 = layer0,
        .n_layer = n_layer,
        .n_head = hp->n_head,
        .n_head_kv = hp->n_head_kv,
        .n_ff = hp->n_expert > 0 ? hp->n_ff_exp : hp->n_ff, /* every expert whole */
        .n_dff = hp->n_expert > 0 && hp->n_layer_dense == 0 ? 0 : hp->n_ff,
        .n_sff = ntp__hp_ff_shexp(hp),
        .n_expert = hp->n_expert,
        .n_vocab = head ? hp->n_vocab : 0,
    };
}

/*
 * The GPU device. Test hook: with NTP_GPU_STAND_IN=cpu in the environment a
 * one-thread CPU device stands in for the GPU, so that the placement and the
 * pipeline around it are tested on machines without one (tests/gpu/).
 */
static ntp_status new_gpu(const struct ntp_model *m, struct ntp_model_device *md,
                          struct ntp_shard shard)
{
    memset(md, 0, sizeof *md);
    md->shard = shard;
    const char *stand_in = getenv("NTP_GPU_STAND_IN");
    const bool cpu = stand_in && strcmp(stand_in, "cpu") == 0;
    /* The stand-in's memory is params.memory_limit, so that tests can run the "how many fit"
       check. */
    const struct ntp_device_spec sp = {.index = 0,
                                       .node = -1,
                                       .n_threads = 1,
                                       .isa = m->params.isa,
                                       .memory_limit = m->params.memory_limit};
    md->n_threads = cpu ? 1 : 0;
    return ntp__device_new(cpu ? "cpu" : "cuda", &sp, &md->dev);
}

/* "layers 0-11", "layer 0" or "no layers" (the blocks [l0, l0 + n)) at buf + *w. */
static void layers_text(int64_t l0, int64_t n, char *buf, size_t size, size_t *w)
{
    if (*w >= size)
        return;
    const int k = n > 1 ? snprintf(buf + *w, size - *w, "layers %lld-%lld", (long long)l0,
                                   (long long)(l0 + n - 1))
                  : n   ? snprintf(buf + *w, size - *w, "layer %lld", (long long)l0)
                        : snprintf(buf + *w, size - *w, "no layers");
    *w += k > 0 ? (size_t)k : 0;
}

/*
 * What a shard holds, into buf: "layers 0-11", "attention of layers 0-3",
 * "FFN of layers 0-3, layers 4-11", plus ", output head".
 */
static void shard_text(const struct ntp_shard *sh, char *buf, size_t size)
{
    size_t w = 0;
    buf[0] = '\0';
    if (sh->attn_only && sh->n_layer > 0)
        w += (size_t)snprintf(buf, size, "attention of ");
    if (sh->ffn_only > 0) {
        w += (size_t)snprintf(buf + w, size - w, "FFN of ");
        layers_text(sh->layer0, sh->ffn_only, buf, size, &w);
        if (sh->n_layer > sh->ffn_only && w < size)
            w += (size_t)snprintf(buf + w, size - w, ", ");
    }
    if (sh->ffn_only == 0 || sh->n_layer > sh->ffn_only)
        layers_text(sh->layer0 + sh->ffn_only, sh->n_layer - sh->ffn_only, buf, size, &w);
    if (sh->n_vocab && w < size)
        snprintf(buf + w, size - w, ", output head");
}

/* ntp_model_device_desc(): each device with what it holds. */
static void describe(struct ntp_model *m)
{
    size_t w = 0;
    for (int d = 0; d < m->n_dev && w < sizeof m->device_desc; d++) {
        char what[96];
        shard_text(&m->dev[d].shard, what, sizeof what);
        w += (size_t)snprintf(m->device_desc + w, sizeof m->device_desc - w, "%s%s (%s)",
                              d ? "; " : "", m->dev[d].dev->desc, what);
    }
}

ntp_status ntp__hybrid_place(struct ntp_model *m)
{
    const ntp_model_params *p = &m->params;
    const struct ntp_hparams *hp = &m->cfg.hp;
    if (p->n_gpu_layers < 0)
        return ntp__error(NTP_E_INVALID_ARG, "n_gpu_layers %d: expected 0 or more",
                          (int)p->n_gpu_layers);
    if (p->gpu_output && p->n_gpu_layers == 0)
        return ntp__error(NTP_E_INVALID_ARG,
                          "gpu_output (--gpu-output) needs n_gpu_layers > 0 (--gpu-layers N)");
    const bool moe = ntp__cfg_moe(&m->cfg), cpu_moe = p->cpu_moe && moe;
    if (p->cpu_moe && (!moe || p->n_gpu_layers == 0))
        ntp__log(NTP_LOG_WARN, "--cpu-moe: nothing to do (%s)",
                 moe ? "no blocks on the GPU: every expert is on the CPU devices already"
                     : "the model has no experts");
    if (p->n_gpu_layers == 0)
        return NTP_OK;
    const int64_t ngl = p->n_gpu_layers < hp->n_layer ? p->n_gpu_layers : hp->n_layer;
    const bool gpu_only = ngl == hp->n_layer && p->gpu_output && !cpu_moe;
    const bool head_dev = p->gpu_output && !gpu_only;
    const int n_cpu = gpu_only ? 0 : m->n_dev;
    if (n_cpu + 1 + head_dev > NTP_MAX_DEVICES)
        return ntp__error(NTP_E_OVERFLOW, "%d CPU devices and a GPU: more than %d devices",
                          m->n_dev, NTP_MAX_DEVICES);
    /* The CPU devices made for the tensor-parallel group move up behind the GPU. */
    struct ntp_model_device gpu;
    struct ntp_shard gsh = full_shard(hp, 0, ngl, gpu_only);
    if (cpu_moe) { /* attention only: the experts (and their router) stay on the CPU */
        gsh.attn_only = true;
        gsh.n_ff = gsh.n_dff = gsh.n_sff = gsh.n_expert = 0;
    }
    ntp_status s = new_gpu(m, &gpu, gsh);
    if (s != NTP_OK)
        return s;
    /* The CUDA device has no latent attention (its stand-in, a CPU device, has). */
    if (ntp__cfg_mla(&m->cfg) && strcmp(gpu.dev->iface->name, "cpu") != 0) {
        gpu.dev->iface->destroy(gpu.dev);
        return ntp__error(NTP_E_UNSUPPORTED,
                          "-ngl: the GPU cannot run multi-head latent attention (deepseek2) yet; "
                          "run this model on the CPU devices (--gpu-layers 0)");
    }
    /* The CUDA device has no expert kernels (its stand-in, a CPU device, has). */
    if (moe && !cpu_moe && strcmp(gpu.dev->iface->name, "cpu") != 0) {
        gpu.dev->iface->destroy(gpu.dev);
        return ntp__error(NTP_E_UNSUPPORTED,
                          "-ngl: the GPU cannot run mixture-of-experts layers yet (every block "
                          "of this %s model is one); keep the experts on the CPU devices "
                          "(--cpu-moe) or run it there entirely (--gpu-layers 0)",
                          m->arch->name);
    }
    if (gpu_only) /* the CPU devices hold nothing: give them back */
        for (int d = 0; d < m->n_dev; d++) {
            m->dev[d].dev->iface->destroy(m->dev[d].dev);
            memset(&m->dev[d], 0, sizeof m->dev[d]);
        }
    memmove(&m->dev[1], &m->dev[0], (size_t)n_cpu * sizeof m->dev[0]);
    m->dev[0] = gpu;
    m->n_dev = 1 + n_cpu;
    for (int d = 1; d <= n_cpu; d++) {
        struct ntp_shard *sh = &m->dev[d].shard;
        sh->layer0 = cpu_moe ? 0 : ngl; /* --cpu-moe: every block, the FFN half of [0, ngl) */
        sh->n_layer = hp->n_layer - sh->layer0;
        sh->ffn_only = cpu_moe ? ngl : 0;
        if (p->gpu_output)
            sh->vocab0 = sh->n_vocab = 0;
    }
    if (head_dev) {
        s = new_gpu(m, &m->dev[m->n_dev], full_shard(hp, hp->n_layer, 0, true));
        if (s != NTP_OK)
            return s;
        m->n_dev++;
    }
    describe(m);
    ntp__log(NTP_LOG_INFO, "hybrid offload: %s", m->device_desc);
    return NTP_OK;
}

/* ----------------------------------------------------------- memory fit */

/* Bytes tensor name takes on a GPU: as stored, plus an F16 copy when the kernels cannot read it. */
static uint64_t gpu_bytes(const ntp_gguf *g, const char *name)
{
    const ntp_gguf_tensor *t = ntp_gguf_find_tensor(g, name);
    if (t == NULL)
        return 0;
    uint64_t b = t->size;
    if (t->type != NTP_TYPE_F32 && t->type != NTP_TYPE_F16 && t->type != NTP_TYPE_Q4_0 &&
        t->type != NTP_TYPE_Q8_0 && t->type != NTP_TYPE_Q4_K && t->type != NTP_TYPE_Q6_K)
        b += (uint64_t)t->ne[0] * (uint64_t)t->ne[1] * 2;
    return b;
}

/*
 * GPU bytes of block il (only its attention half with attn_only), or of the
 * head (il < 0: output norm and output, or the tied embedding).
 */
static uint64_t part_bytes(const ntp_gguf *g, int64_t il, bool attn_only)
{
    uint64_t b = 0;
    char name[96];
    for (int id = 0; id < NTP_T_COUNT; id++) {
        const bool per_layer = ntp__tensor_desc(id)->per_layer;
        if (per_layer != (il >= 0) || id == NTP_T_TOKEN_EMBD ||
            (per_layer && attn_only && !ntp__tensor_attn_half(id)))
            continue;
        if (ntp__tensor_name(id, (int)(il >= 0 ? il : 0), name, sizeof name) == NTP_OK)
            b += gpu_bytes(g, name);
    }
    if (il < 0 && ntp_gguf_find_tensor(g, "output.weight") == NULL)
        b += gpu_bytes(g, "token_embd.weight");
    return b;
}

/*
 * Room for weights on a GPU with avail bytes free: what remains after keeping
 * 5% (at least 256 MiB) for a context's KV cache and scratch, in *keep.
 */
static uint64_t weight_room(uint64_t avail, uint64_t *keep)
{
    *keep = avail / 20 > ((uint64_t)256 << 20) ? avail / 20 : (uint64_t)256 << 20;
    return avail > *keep ? avail - *keep : 0;
}

/*
 * GPU bytes of the first ngl blocks (their attention halves with attn_only)
 * and the head into *need; the number of blocks that fit in room, or ngl
 * when all do.
 */
static int64_t layers_fit(const ntp_gguf *g, int64_t ngl, bool head, bool attn_only, uint64_t room,
                          uint64_t *need)
{
    *need = head ? part_bytes(g, -1, false) : 0;
    int64_t fit = -1;
    for (int64_t il = 0; il < ngl; il++) {
        *need += part_bytes(g, il, attn_only);
        if (*need > room && fit < 0)
            fit = il;
    }
    return fit < 0 ? ngl : fit;
}

ntp_status ntp__hybrid_check_fits(struct ntp_model *m, const ntp_gguf *g)
{
    if (m->params.n_gpu_layers <= 0)
        return NTP_OK;
    struct ntp_device *gpu = m->dev[0].dev;
    uint64_t avail, keep, need;
    if (gpu->iface->mem_available == NULL || gpu->iface->mem_available(gpu, &avail) != NTP_OK)
        return NTP_OK; /* the generic check and cudaMalloc will say what went wrong */
    const int64_t ngl = m->dev[0].shard.n_layer;
    const int64_t fit = layers_fit(g, ngl, m->params.gpu_output, m->dev[0].shard.attn_only,
                                   weight_room(avail, &keep), &need);
    if (fit == ngl)
        return NTP_OK;
    const double mib = 1024.0 * 1024.0;
    return ntp__error(NTP_E_NOMEM,
                      "--gpu-layers %lld: %slayers 0-%lld%s need %.1f MiB of GPU memory, %s has "
                      "%.1f MiB free (keeping %.1f MiB of it for the KV cache and scratch): at "
                      "most %lld layer%s (--gpu-layers %lld)",
                      (long long)ngl, m->dev[0].shard.attn_only ? "the attention of " : "",
                      (long long)(ngl - 1), m->params.gpu_output ? " and the output head" : "",
                      (double)need / mib, gpu->desc, (double)avail / mib, (double)keep / mib,
                      (long long)fit, fit == 1 ? " fits" : "s fit", (long long)fit);
}

/* Free memory of GPU 0 and its description; false when there is none (desc says why). */
static bool gpu_free(char *desc, size_t size, uint64_t *avail)
{
    struct ntp_device *d = NULL;
    const struct ntp_device_spec sp = {.index = 0};
    if (ntp__device_new("cuda", &sp, &d) != NTP_OK) {
        snprintf(desc, size, "%s", ntp_last_error());
        return false;
    }
    snprintf(desc, size, "%s", d->desc);
    const bool ok = d->iface->mem_available && d->iface->mem_available(d, avail) == NTP_OK;
    d->iface->destroy(d);
    return ok;
}

ntp_status ntp__hybrid_plan_file(const char *path, int32_t ngl, bool gpu_output, bool cpu_moe,
                                 struct ntp_hybrid_plan *out)
{
    memset(out, 0, sizeof *out);
    out->fit = -1;
    ntp_gguf *g;
    ntp_status s = ntp_gguf_open(path, &g);
    if (s != NTP_OK)
        return s;
    const char *name = NULL;
    const struct ntp_arch *arch = NULL;
    struct ntp_hparams hp;
    char known[256];
    ntp__arch_names(known, sizeof known);
    if ((s = ntp_gguf_get_str(g, "general.architecture", &name)) == NTP_OK &&
        (arch = ntp__arch_find(name)) == NULL)
        s = ntp__error(NTP_E_UNSUPPORTED, "%s: architecture '%s' is not supported (known: %s)",
                       path, name, known);
    if (s == NTP_OK)
        s = ntp__hparams_read(g, arch, &hp);
    if (s == NTP_OK) {
        out->n_layer = hp.n_layer;
        out->ngl = ngl < hp.n_layer ? ngl : hp.n_layer;
        out->head = gpu_output;
        out->attn_only = cpu_moe && hp.n_expert > 0;
        uint64_t avail = 0, keep = 0;
        const bool have = gpu_free(out->gpu_desc, sizeof out->gpu_desc, &avail);
        const uint64_t room = have ? weight_room(avail, &keep) : UINT64_MAX;
        out->fit = layers_fit(g, out->ngl, gpu_output, out->attn_only, room, &out->gpu_bytes);
        if (have)
            out->gpu_free = avail, out->gpu_keep = keep;
        else
            out->fit = -1;
    }
    ntp_gguf_free(g);
    return s;
}

int ntp__hybrid_host_dev(const struct ntp_model *m)
{
    if (m->params.n_gpu_layers <= 0)
        return 0;
    /* Every block and the head on the GPU: no CPU device (the embedding still lives on the host).
     */
    return m->n_dev > 1 ? 1 : -1;
}
