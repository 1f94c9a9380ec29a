/*
 * load.c - ntp_model_load: read a GGUF file, check it against the
 * architecture table, plan which device holds which shard, and copy the
 * weights from the mapped file into the devices' memory.
 */
#include "model/model.h"

#include "backend/registry.h"
#include "core/core.h"
#include "gguf/gguf_file.h"
#include "kernels/packed.h"
#include "kernels/quant.h"
#include "model/plan.h"
#include "numa/layout.h"
#include "tokenizer/tokenizer.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

ntp_model_params ntp_model_default_params(void)
{
    ntp_model_params p;
    memset(&p, 0, sizeof p);
    p.use_mmap = true;
    return p;
}

/* ----------------------------------------------------------------- checks */

/* Whether the devices (and the host, for the embedding) can use a tensor of type t. */
static bool type_usable(const struct ntp_model *m, enum ntp_tensor_role role, enum ntp_type t)
{
    if (role == NTP_ROLE_NORM || role == NTP_ROLE_BIAS)
        return t == NTP_TYPE_F32;
    if (role == NTP_ROLE_EMBD) {
        const ntp_quant_fns *qf = ntp__quant_fns(t);
        return qf != NULL && qf->dequantize != NULL;
    }
    for (int d = 0; d < m->n_dev; d++)
        if (!m->dev[d].dev->iface->supports_type(m->dev[d].dev, t))
            return false;
    return true;
}

/* Find tensor id of layer il, check its shape against hp and its type. */
static ntp_status find_tensor(const struct ntp_model *m, const ntp_gguf *g, enum ntp_tensor_id id,
                              int il, const ntp_gguf_tensor **out)
{
    char name[96];
    ntp_status s = ntp__tensor_name(id, il, name, sizeof name);
    if (s != NTP_OK)
        return s;
    const ntp_gguf_tensor *t = ntp_gguf_find_tensor(g, name);
    if (t == NULL)
        return ntp__error(NTP_E_NOT_FOUND, "tensor '%s' is missing (architecture %s)", name,
                          m->arch->name);
    const struct ntp_tensor_desc *d = ntp__tensor_desc(id);
    int64_t ne[3];
    ntp__tensor_shape(id, &m->cfg.hp, ne);
    if (t->ne[0] != ne[0] || t->ne[1] != ne[1] || t->ne[2] != ne[2] || t->ne[3] != 1) {
        char want[96]; /* an expert tensor's third dimension is the expert count */
        if (d->n_dims == 3)
            snprintf(want, sizeof want, "[%lld, %lld, %lld]", (long long)ne[0], (long long)ne[1],
                     (long long)ne[2]);
        else
            snprintf(want, sizeof want, "[%lld, %lld]", (long long)ne[0], (long long)ne[1]);
        return ntp__error(NTP_E_FORMAT,
                          "tensor '%s' has shape [%lld, %lld, %lld, %lld], expected %s from the "
                          "hyper-parameters",
                          name, (long long)t->ne[0], (long long)t->ne[1], (long long)t->ne[2],
                          (long long)t->ne[3], want);
    }
    bool ok = type_usable(m, d->role, t->type);
    if (ok && id == NTP_T_TOKEN_EMBD && !(ntp__model_file_features(m, g) & NTP_FEAT_OUTPUT))
        ok = type_usable(m, NTP_ROLE_MATRIX, t->type); /* tied: it is the output head too */
    if (!ok)
        return ntp__error(NTP_E_UNSUPPORTED, "tensor '%s' has type %s, which numatp cannot %s",
                          name, ntp_type_name(t->type),
                          d->role == NTP_ROLE_NORM || d->role == NTP_ROLE_BIAS
                              ? "use here (expected F32)"
                              : "compute with");
    *out = t;
    return NTP_OK;
}

/* ------------------------------------------------------------ shard plan */

/* Largest block size of tensor id over the layers (block sizes are powers of two). */
static int64_t max_block(const ntp_gguf *g, enum ntp_tensor_id id, int64_t n_layer)
{
    int64_t blk = 1;
    for (int64_t il = 0; il < n_layer; il++) {
        char name[96];
        if (ntp__tensor_name(id, (int)il, name, sizeof name) != NTP_OK)
            continue;
        const ntp_gguf_tensor *t = ntp_gguf_find_tensor(g, name);
        const ntp_type_traits *tr = t ? ntp_type_get_traits(t->type) : NULL;
        if (tr && tr->block_size > blk)
            blk = tr->block_size;
    }
    return blk;
}

/*
 * The tensor-parallel plan (docs/architecture.md "The two cuts") over n_dev devices:
 * every device runs every layer of pipeline stage `stage` of n_stage (all
 * of them when n_stage is 1) on its shard, the last stage the head; row
 * cuts of O and down fall on the largest block size any layer uses for them.
 */
static ntp_status plan_devices(const struct ntp_hparams *hp, const ntp_gguf *g, int n_dev,
                               int moe_split, int stage, int n_stage, bool warn,
                               struct ntp_plan *plan)
{
    struct ntp_plan_params pp = {
        .n_dev = n_dev,
        .attn_block = max_block(g, NTP_T_ATTN_OUTPUT, hp->n_layer),
        .ffn_block = max_block(g, NTP_T_FFN_DOWN, hp->n_layer),
        .head = stage == n_stage - 1,
        .moe_split = moe_split,
    };
    /* one cut for every FFN of the model: block sizes are powers of two */
    const enum ntp_tensor_id downs[] = {NTP_T_FFN_DOWN_EXPS, NTP_T_FFN_DOWN_SHEXP};
    for (size_t i = 0; i < sizeof downs / sizeof downs[0]; i++) {
        const int64_t b = max_block(g, downs[i], hp->n_layer);
        pp.ffn_block = b > pp.ffn_block ? b : pp.ffn_block;
    }
    ntp__plan_stage_layers(hp->n_layer, stage, n_stage, &pp.layer0, &pp.n_layer);
    ntp_status s = ntp__plan_make(hp, &pp, plan);
    /* KV-head replication is the plan working as designed; a part left unsplit is a warning. */
    const bool lopsided = plan->attn_devices < n_dev || plan->ffn_devices < n_dev;
    if (s == NTP_OK && plan->note[0] && warn)
        ntp__log(lopsided ? NTP_LOG_WARN : NTP_LOG_INFO, "shard plan over %d devices: %s", n_dev,
                 plan->note);
    return s;
}

/*
 * Where a shard's bytes come from in the file and what it becomes on the
 * device. An expert tensor is n_mat matrices (one per expert, mat_stride
 * bytes apart in the file), each cut the same way; on the device their
 * shards lie back to back, so the shard is one matrix of n_mat * ne[1] rows.
 */
struct slice {
    uint64_t src_off;    /* first byte, from the start of the tensor's data */
    size_t src_stride;   /* bytes between rows in the file */
    size_t row_bytes;    /* bytes copied per row */
    size_t n_rows;       /* rows copied per matrix */
    size_t n_mat;        /* matrices (experts; 1 for a 2-D tensor) */
    uint64_t mat_stride; /* bytes between matrices in the file */
    int64_t ne[2];       /* shard shape of one matrix */
};

static ntp_status plan_slice(const ntp_gguf_tensor *t, int dim, int64_t start, int64_t len,
                             struct slice *sl)
{
    size_t full, off = 0, part;
    ntp_status s = ntp_type_row_size(t->type, t->ne[0], &full);
    if (s != NTP_OK)
        return s;
    sl->src_off = 0;
    sl->src_stride = full;
    sl->row_bytes = full;
    sl->n_rows = (size_t)t->ne[1];
    sl->n_mat = (size_t)t->ne[2];
    sl->mat_stride = (uint64_t)full * (uint64_t)t->ne[1];
    sl->ne[0] = t->ne[0];
    sl->ne[1] = t->ne[1];
    if (dim == 1) {
        sl->src_off += (uint64_t)start * full;
        sl->n_rows = (size_t)len;
        sl->ne[1] = len;
    } else if (dim == 0) { /* (dim 2 keeps whole matrices: the caller picks them) */
        if ((s = ntp_type_row_size(t->type, start, &off)) != NTP_OK ||
            (s = ntp_type_row_size(t->type, len, &part)) != NTP_OK)
            return ntp__error(s,
                              "tensor '%s': shard columns [%lld, %lld) do not fall on %s block "
                              "boundaries",
                              t->name, (long long)start, (long long)(start + len),
                              ntp_type_name(t->type));
        sl->src_off += off;
        sl->row_bytes = part;
        sl->ne[0] = len;
    }
    return NTP_OK;
}

/* ----------------------------------------------------------------- copies */

/* A walk over the tensors one device holds: sizing (buf NULL) or uploading. */
struct walk {
    struct ntp_model *m;
    struct ntp_model_device *md;
    const ntp_gguf *g;
    uint64_t off;   /* bytes placed so far in md->buf */
    uint64_t done;  /* bytes uploaded, for progress */
    uint64_t total; /* bytes to upload (second pass) */
    bool upload;    /* false: only size and check */
    uint8_t *stage; /* rows read from an unmapped file on their way to the device (malloc'd) */
    size_t stage_size;
};

/* Bytes read from an unmapped file at a time, at least one row. */
#define STAGE_BYTES ((size_t)4 << 20)

/* Upload a shard of an unmapped file: rows are read into the staging buffer, then uploaded. */
static ntp_status upload_read(struct walk *wk, const ntp_gguf_tensor *t, const struct slice *sl,
                              uint8_t *dst)
{
    struct ntp_device *dev = wk->md->dev;
    const size_t rows = sl->src_stride < STAGE_BYTES ? STAGE_BYTES / sl->src_stride : 1;
    if (wk->stage_size < rows * sl->src_stride) {
        free(wk->stage);
        wk->stage_size = rows * sl->src_stride;
        if ((wk->stage = malloc(wk->stage_size)) == NULL) {
            wk->stage_size = 0;
            return ntp__error(NTP_E_NOMEM, "no memory for a %zu-byte read buffer",
                              rows * sl->src_stride);
        }
    }
    for (size_t r = 0; r < sl->n_rows; r += rows) {
        const size_t k = sl->n_rows - r < rows ? sl->n_rows - r : rows;
        ntp_status s = ntp__gguf_read(wk->g, t, sl->src_off + r * sl->src_stride, wk->stage,
                                      (k - 1) * sl->src_stride + sl->row_bytes);
        if (s == NTP_OK)
            s = dev->iface->upload_2d(dev, dst + r * sl->row_bytes, sl->row_bytes, wk->stage,
                                      sl->src_stride, sl->row_bytes, k);
        if (s != NTP_OK)
            return s;
    }
    return NTP_OK;
}

/*
 * Place (and in the upload pass copy) one tensor's shard into slot, its
 * rows counted from row0 of the file's tensor (of each expert's matrix).
 */
static ntp_status walk_rows(struct walk *wk, const ntp_gguf_tensor *t, enum ntp_tensor_id id,
                            int64_t row0, struct ntp_dev_tensor *slot)
{
    int64_t start = 0, len = 0;
    const int dim = ntp__plan_cut(id, &wk->md->shard, &wk->m->cfg.hp, &start, &len);
    start += row0; /* (a row cut: the part of a fused tensor, see walk_fused) */
    struct slice sl;
    ntp_status s = plan_slice(t, dim, start, len, &sl);
    if (s != NTP_OK)
        return s;
    if (ntp__tensor_desc(id)->n_dims == 3) { /* the experts (or heads) the shard holds */
        const int64_t m0 = dim == 2 ? start : wk->md->shard.expert0;
        sl.src_off += (uint64_t)m0 * sl.mat_stride;
        sl.n_mat = (size_t)(dim == 2 ? len : wk->md->shard.n_expert);
    }
    const uint64_t mat = (uint64_t)sl.row_bytes * sl.n_rows, size = mat * sl.n_mat;
    wk->off = (wk->off + 63) & ~(uint64_t)63;
    if (wk->upload) {
        struct ntp_device *dev = wk->md->dev;
        uint8_t *dst = (uint8_t *)wk->md->buf + wk->off;
        const uint64_t off0 = sl.src_off;
        for (size_t e = 0; e < sl.n_mat && s == NTP_OK; e++) {
            uint8_t *de = dst + e * mat;
            sl.src_off = off0 + e * sl.mat_stride;
            /* From the mapping under its SIGBUS guard (the copy may run on the device's
               threads). */
            s = t->data ? dev->iface->upload_2d(dev, de, sl.row_bytes, t->data + sl.src_off,
                                                sl.src_stride, sl.row_bytes, sl.n_rows)
                        : upload_read(wk, t, &sl, de);
        }
        if (s != NTP_OK || (s = ntp__gguf_guard_check(wk->g)) != NTP_OK)
            return s;
        /* The experts' shards as one matrix: expert e's rows start at row e * ne[1]. */
        *slot = (struct ntp_dev_tensor){
            t->type, {sl.ne[0], sl.ne[1] * (int64_t)sl.n_mat}, sl.row_bytes, dst, false};
        /* Rows are packed in groups of 16 (kernels/packed.h): an expert's rows must not
           share a group with the next expert's, or its row range could not be multiplied
           alone. */
        if (ntp__tensor_desc(id)->role == NTP_ROLE_MATRIX && dev->iface->pack_matrix &&
            sl.ne[1] % NTP_PACK_ROWS == 0 && (s = dev->iface->pack_matrix(dev, slot)) != NTP_OK)
            return s;
        wk->done += size;
        const ntp_model_params *p = &wk->m->params;
        if (p->progress &&
            !p->progress((float)((double)wk->done / (double)wk->total), p->progress_user))
            return ntp__error(NTP_E_INVALID_ARG, "loading cancelled by the progress callback");
    }
    wk->off += size;
    return NTP_OK;
}

/* Place (and in the upload pass copy) one tensor's shard into slot. */
static ntp_status walk_tensor(struct walk *wk, const ntp_gguf_tensor *t, enum ntp_tensor_id id,
                              struct ntp_dev_tensor *slot)
{
    return walk_rows(wk, t, id, 0, slot);
}

/*
 * Block il's experts' gate and up as one ffn_gate_up_exps [n_embd, 2 n_ff_exp,
 * n_expert] (llama.cpp's converter fuses them on request): each expert's
 * gate rows, then its up rows, cut as the two would be. *done false when the
 * file has them apart.
 */
static ntp_status walk_fused(struct walk *wk, int64_t il, struct ntp_dev_tensor *lw, bool *done)
{
    char name[96];
    snprintf(name, sizeof name, "blk.%lld.ffn_gate_up_exps.weight", (long long)il);
    const ntp_gguf_tensor *t = ntp_gguf_find_tensor(wk->g, name);
    const struct ntp_hparams *hp = &wk->m->cfg.hp;
    *done = t != NULL;
    if (t == NULL)
        return NTP_OK;
    if (t->ne[0] != hp->n_embd || t->ne[1] != 2 * hp->n_ff_exp || t->ne[2] != hp->n_expert ||
        t->ne[3] != 1)
        return ntp__error(NTP_E_FORMAT,
                          "tensor '%s' has shape [%lld, %lld, %lld, %lld], expected [%lld, %lld, "
                          "%lld] (gate and up of every expert)",
                          name, (long long)t->ne[0], (long long)t->ne[1], (long long)t->ne[2],
                          (long long)t->ne[3], (long long)hp->n_embd,
                          (long long)(2 * hp->n_ff_exp), (long long)hp->n_expert);
    if (!type_usable(wk->m, NTP_ROLE_MATRIX, t->type))
        return ntp__error(NTP_E_UNSUPPORTED,
                          "tensor '%s' has type %s, which numatp cannot compute with", name,
                          ntp_type_name(t->type));
    ntp_status s = walk_rows(wk, t, NTP_T_FFN_GATE_EXPS, 0, &lw[NTP_T_FFN_GATE_EXPS]);
    return s == NTP_OK ? walk_rows(wk, t, NTP_T_FFN_UP_EXPS, hp->n_ff_exp, &lw[NTP_T_FFN_UP_EXPS])
                       : s;
}

/*
 * An older file's attn_kv_b [kv_lora, n_head * (nope + mla_v)]: per head,
 * nope rows of the no-RoPE key's up-projection, then mla_v rows of the
 * value's. The shard's heads become what newer files hold (arch.h): K_B,
 * each head's key rows transposed to kv_lora rows of nope (F32, as the
 * absorbed query multiplies them), and V_B, each head's value rows as they
 * are.
 */
static ntp_status walk_kv_b(struct walk *wk, const ntp_gguf_tensor *t, struct ntp_dev_tensor *kb,
                            struct ntp_dev_tensor *vb)
{
    const struct ntp_hparams *hp = &wk->m->cfg.hp;
    const struct ntp_shard *sh = &wk->md->shard;
    const int64_t r = hp->kv_lora, nope = hp->mla_k - hp->n_rot, nv = hp->mla_v, nh = sh->n_head;
    size_t row;
    ntp_status s = ntp_type_row_size(t->type, r, &row);
    if (s != NTP_OK)
        return s;
    const size_t kmat = (size_t)(r * nope) * sizeof(float), vmat = (size_t)nv * row;
    const uint64_t koff = (wk->off + 63) & ~(uint64_t)63;
    const uint64_t voff = (koff + (uint64_t)nh * kmat + 63) & ~(uint64_t)63;
    wk->off = voff + (uint64_t)nh * vmat;
    if (!wk->upload)
        return NTP_OK;
    struct ntp_device *dev = wk->md->dev;
    uint8_t *buf = wk->md->buf;
    uint8_t *raw = malloc((size_t)(nope > nv ? nope : nv) * row);
    float *deq = malloc(2 * kmat);
    if (raw == NULL || deq == NULL)
        s = ntp__error(NTP_E_NOMEM, "no memory to convert '%s'", t->name);
    for (int64_t h = 0; h < nh && s == NTP_OK; h++) {
        const uint64_t off = (uint64_t)(sh->head0 + h) * (uint64_t)(nope + nv) * row;
        float *tr = deq + r * nope;
        if ((s = ntp__gguf_read(wk->g, t, off, raw, (size_t)nope * row)) != NTP_OK)
            break;
        for (int64_t i = 0; i < nope && s == NTP_OK; i++)
            s = ntp__dequantize_row(t->type, raw + (size_t)i * row, deq + i * r, r);
        for (int64_t j = 0; j < r; j++)
            for (int64_t i = 0; i < nope; i++)
                tr[j * nope + i] = deq[i * r + j];
        if (s == NTP_OK)
            s = dev->iface->upload_2d(dev, buf + koff + (size_t)h * kmat,
                                      (size_t)nope * sizeof(float), tr,
                                      (size_t)nope * sizeof(float), (size_t)nope * sizeof(float),
                                      (size_t)r);
        if (s == NTP_OK)
            s = ntp__gguf_read(wk->g, t, off + (uint64_t)nope * row, raw, vmat);
        if (s == NTP_OK)
            s = dev->iface->upload_2d(dev, buf + voff + (size_t)h * vmat, row, raw, row, row,
                                      (size_t)nv);
    }
    free(raw);
    free(deq);
    if (s != NTP_OK)
        return s;
    *kb = (struct ntp_dev_tensor){NTP_TYPE_F32, {nope, nh * r}, (size_t)nope * sizeof(float),
                                  buf + koff, NTP_PACK_NONE};
    *vb = (struct ntp_dev_tensor){t->type, {r, nh * nv}, row, buf + voff, NTP_PACK_NONE};
    wk->done += (uint64_t)nh * (kmat + vmat);
    return NTP_OK;
}

/* Every tensor of the device's shard: its layers (the halves it holds), then the final norm and the
 * head. */
static ntp_status walk_device(struct walk *wk)
{
    const ntp_gguf *g = wk->g;
    const struct ntp_shard *sh = &wk->md->shard;
    const unsigned feat = ntp__model_file_features(wk->m, g);
    const ntp_gguf_tensor *t;
    ntp_status s;
    for (int64_t il = sh->layer0; il < sh->layer0 + sh->n_layer; il++) {
        const unsigned bf = ntp__block_features(feat, &wk->m->cfg.hp, il);
        struct ntp_dev_tensor *lw = &wk->md->w.layer[(il - sh->layer0) * NTP_T_COUNT];
        bool fused = false;
        if ((bf & NTP_FEAT_MOE) && ntp__shard_ffn(sh, il) &&
            (s = walk_fused(wk, il, lw, &fused)) != NTP_OK)
            return s;
        for (int id = 0; id < NTP_T_COUNT; id++) {
            if (!ntp__tensor_desc(id)->per_layer || !ntp__tensor_present(id, bf) ||
                !(ntp__tensor_attn_half(id) ? ntp__shard_attn(sh, il) : ntp__shard_ffn(sh, il)) ||
                (fused && (id == NTP_T_FFN_GATE_EXPS || id == NTP_T_FFN_UP_EXPS)))
                continue;
            if ((s = find_tensor(wk->m, g, id, (int)il, &t)) != NTP_OK)
                return s;
            s = id == NTP_T_ATTN_KV_B ? walk_kv_b(wk, t, &lw[NTP_T_ATTN_K_B], &lw[NTP_T_ATTN_V_B])
                                      : walk_tensor(wk, t, id, &lw[id]);
            if (s != NTP_OK)
                return s;
        }
    }
    if (sh->n_vocab == 0)
        return NTP_OK;
    if ((s = find_tensor(wk->m, g, NTP_T_OUTPUT_NORM, 0, &t)) != NTP_OK ||
        (s = walk_tensor(wk, t, NTP_T_OUTPUT_NORM, &wk->md->w.global[NTP_T_OUTPUT_NORM])) != NTP_OK)
        return s;
    const enum ntp_tensor_id head = (feat & NTP_FEAT_OUTPUT) ? NTP_T_OUTPUT : NTP_T_TOKEN_EMBD;
    if ((s = find_tensor(wk->m, g, head, 0, &t)) != NTP_OK)
        return s;
    return walk_tensor(wk, t, NTP_T_OUTPUT, &wk->md->w.global[NTP_T_OUTPUT]);
}

/* The host copy of token_embd, looked up row by row for every token. */
static ntp_status load_embedding(struct ntp_model *m, const ntp_gguf *g)
{
    const ntp_gguf_tensor *t;
    ntp_status s = find_tensor(m, g, NTP_T_TOKEN_EMBD, 0, &t);
    if (s != NTP_OK)
        return s;
    if ((s = ntp_type_row_size(t->type, t->ne[0], &m->embd_row)) != NTP_OK)
        return s;
    m->embd_type = t->type;
    m->embd = ntp__alloc_aligned(t->size, 64);
    if (m->embd == NULL)
        return ntp__error(NTP_E_NOMEM, "cannot allocate %llu bytes for token_embd.weight",
                          (unsigned long long)t->size);
    return ntp__gguf_read(g, t, 0, m->embd, m->embd_row * (size_t)t->ne[1]);
}

static void mib_text(uint64_t bytes, char *buf, size_t size)
{
    snprintf(buf, size, "%.1f MiB (%llu bytes)", (double)bytes / (1024.0 * 1024.0),
             (unsigned long long)bytes);
}

/* Refuse before copying anything when the weights cannot fit in the device's memory. */
static ntp_status check_fits(struct ntp_model *m, int d, uint64_t need)
{
    struct ntp_device *dev = m->dev[d].dev;
    uint64_t avail;
    if (dev->iface->mem_available == NULL)
        return NTP_OK;
    ntp_status s = dev->iface->mem_available(dev, &avail);
    if (s != NTP_OK) {
        ntp__log(NTP_LOG_WARN, "cannot tell the free memory of %s (%s); loading anyway", dev->desc,
                 ntp_last_error());
        return NTP_OK;
    }
    if (need <= avail)
        return NTP_OK;
    char a[64], b[64];
    mib_text(need, a, sizeof a);
    mib_text(avail, b, sizeof b);
    return ntp__error(NTP_E_NOMEM, "the model needs %s of memory on %s, only %s available", a,
                      dev->desc, b);
}

/* ------------------------------------------------------------------ load */

/* The layout of the run (docs/architecture.md "Threads and memory") from the parameters. */
static ntp_status make_layout(struct ntp_model *m, struct ntp_layout *l)
{
    const ntp_model_params *p = &m->params;
    if (p->tp < 0 || p->threads_per_device < 0)
        return ntp__error(NTP_E_INVALID_ARG, "tp %d and threads_per_device %d must be >= 0",
                          (int)p->tp, (int)p->threads_per_device);
    ntp_status s = ntp_topology_detect(&m->topo);
    if (s != NTP_OK)
        return s;
    const struct ntp_layout_params lp = {
        .tp = p->tp,
        .numa_nodes = p->numa_nodes,
        .threads_per_device = p->threads_per_device,
        .n_threads = p->n_threads,
        .smt = p->smt,
    };
    return ntp__layout_make(m->topo, &lp, l);
}

static ntp_status make_devices(struct ntp_model *m)
{
    struct ntp_layout l;
    ntp_status s = make_layout(m, &l);
    if (s != NTP_OK)
        return s;
    for (int d = 0; d < l.n_dev && s == NTP_OK; d++) {
        const struct ntp_device_spec sp = {
            .node = l.dev[d].node,
            .n_threads = l.dev[d].n_threads,
            .memory_limit = m->params.memory_limit,
            .isa = m->params.isa,
            .topo = m->topo,
            .pus = l.dev[d].pus,
        };
        s = ntp__device_new("cpu", &sp, &m->dev[d].dev);
        m->dev[d].n_threads = l.dev[d].n_threads;
        if (s == NTP_OK)
            m->n_dev = d + 1;
    }
    if (s == NTP_OK) {
        snprintf(m->layout_desc, sizeof m->layout_desc, "%s", l.desc);
        if (l.n_dev > 1 || l.split)
            ntp__log(NTP_LOG_INFO, "%s", l.desc);
        size_t w = 0;
        for (int d = 0; d < m->n_dev && w < sizeof m->device_desc; d++)
            w += (size_t)snprintf(m->device_desc + w, sizeof m->device_desc - w, "%s%s",
                                  d ? "; " : "", m->dev[d].dev->desc);
    }
    ntp__layout_free(&l);
    return s;
}

/* Size and check the weights of every device, then see that they fit. */
static ntp_status size_weights(struct ntp_model *m, const ntp_gguf *g, struct walk *wk)
{
    ntp_status s;
    for (int d = 0; d < m->n_dev; d++) {
        struct ntp_model_device *md = &m->dev[d];
        md->w.layer = calloc((size_t)md->shard.n_layer * NTP_T_COUNT + 1, sizeof *md->w.layer);
        if (md->w.layer == NULL)
            return ntp__error(NTP_E_NOMEM, "out of memory");
        wk[d] = (struct walk){.m = m, .md = md, .g = g};
        if ((s = walk_device(&wk[d])) != NTP_OK)
            return s;
        md->bytes = wk[d].off;
    }
    const uint64_t embd = m->embd_row * (uint64_t)m->cfg.hp.n_vocab;
    if ((s = ntp__hybrid_check_fits(m, g)) != NTP_OK) /* how many GPU layers fit (hybrid.c) */
        return s;
    for (int d = 0; d < m->n_dev; d++)
        if ((s = check_fits(m, d, m->dev[d].bytes + (d == ntp__hybrid_host_dev(m) ? embd : 0))) !=
            NTP_OK)
            return s;
    return NTP_OK;
}

/* Size, check and copy the weights of every device. */
static ntp_status load_weights(struct ntp_model *m, const ntp_gguf *g)
{
    struct walk wk[NTP_MAX_DEVICES] = {0};
    uint64_t total = 0;
    ntp_status s = size_weights(m, g, wk);
    for (int d = 0; d < m->n_dev; d++)
        total += m->dev[d].bytes;
    for (int d = 0; d < m->n_dev && s == NTP_OK; d++) {
        struct ntp_model_device *md = &m->dev[d];
        if ((s = md->dev->iface->buffer_alloc(md->dev, md->bytes, &md->buf)) != NTP_OK)
            break;
        wk[d].off = 0;
        wk[d].upload = true;
        wk[d].total = total;
        wk[d].done = d > 0 ? wk[d - 1].done : 0;
        s = walk_device(&wk[d]);
    }
    for (int d = 0; d < m->n_dev; d++)
        free(wk[d].stage);
    return s;
}

/*
 * Under mpirun the tensor-parallel group spans the devices of every process,
 * in rank order: how many each process has into n_dev[rank], this process's
 * first device there into m->world_dev0, their number into *n_total. With
 * pipeline parallelism (params.pp) each process is a stage of its own and
 * the group is its own devices. Every process must have opened the same
 * file (the headers' hashes agree) and may not offload to a GPU.
 */
static ntp_status world_devices(struct ntp_model *m, const ntp_gguf *g, int *n_dev, int *n_total)
{
    const int size = ntp__world_size(), rank = ntp__world_rank();
    const int pp = m->params.pp > 1 ? m->params.pp : 1;
    m->world_dev0 = 0;
    *n_total = n_dev[0] = m->n_dev;
    if (m->params.pp < 0 || (pp > 1 && pp != size))
        return ntp__error(NTP_E_INVALID_ARG,
                          "--pp %d needs mpirun -np %d (one pipeline stage per process); this "
                          "run has %d process%s",
                          (int)m->params.pp, pp, size,
                          size == 1 ? " (not started by mpirun)" : "es");
    if (pp > m->cfg.hp.n_layer)
        return ntp__error(NTP_E_INVALID_ARG, "--pp %d: more pipeline stages than the %lld blocks",
                          pp, (long long)m->cfg.hp.n_layer);
    m->pp = pp;
    m->pp_stage = pp > 1 ? rank : 0;
    if (size == 1)
        return NTP_OK;
    if (m->params.n_gpu_layers > 0)
        return ntp__error(NTP_E_UNSUPPORTED, "--gpu-layers under mpirun is not supported yet");
    struct world_entry {
        uint64_t hash;
        int64_t n_dev;
    } mine = {0, m->n_dev}, all[NTP_WORLD_MAX];
    ntp_status s = ntp__gguf_header_hash(g, &mine.hash);
    if (s == NTP_OK)
        s = ntp__world_allgather(&mine, all, sizeof mine);
    if (s != NTP_OK)
        return s;
    *n_total = 0;
    for (int r = 0; r < size; r++) {
        if (all[r].hash != all[0].hash)
            return ntp__error(NTP_E_INVALID_ARG,
                              "rank %d opened another model than rank 0 (the files' headers "
                              "differ): every rank needs the same file at the same path",
                              r);
        n_dev[r] = (int)all[r].n_dev;
        m->world_dev0 += r < rank ? n_dev[r] : 0;
        *n_total += n_dev[r];
    }
    if (pp > 1) { /* the group is this process's devices */
        m->world_dev0 = 0;
        *n_total = m->n_dev;
    }
    if (*n_total > NTP_PLAN_MAX_DEV)
        return ntp__error(NTP_E_UNSUPPORTED, "%d devices over %d processes: at most %d", *n_total,
                          size, NTP_PLAN_MAX_DEV);
    return NTP_OK;
}

/* Each process's columns of the output head, from the plan of every device (n_dev[rank]). */
static void world_vocab(struct ntp_model *m, const int *n_dev)
{
    for (int r = 0, d = 0; r < ntp__world_size() && m->pp == 1; d += n_dev[r++]) {
        m->world_vocab0[r] = (int)m->plan.shard[d].vocab0;
        m->world_nvocab[r] = 0;
        for (int i = d; i < d + n_dev[r]; i++)
            m->world_nvocab[r] += (int)m->plan.shard[i].n_vocab;
    }
}

static ntp_status load_from(struct ntp_model *m, const ntp_gguf *g)
{
    ntp_status s;
    if ((s = ntp__model_read_cfg(g, m)) != NTP_OK || (s = ntp__model_rope_freqs(m, g)) != NTP_OK)
        return s;
    if ((s = make_devices(m)) != NTP_OK)
        return s;
    int n_total, n_dev[NTP_WORLD_MAX];
    if ((s = world_devices(m, g, n_dev, &n_total)) != NTP_OK)
        return s;
    if ((s = plan_devices(&m->cfg.hp, g, n_total, m->params.moe_split, m->pp_stage, m->pp, true,
                          &m->plan)) != NTP_OK)
        return s;
    world_vocab(m, n_dev);
    for (int d = 0; d < m->n_dev; d++)
        m->dev[d].shard = m->plan.shard[m->world_dev0 + d];
    if ((s = ntp__hybrid_place(m)) != NTP_OK) /* --gpu-layers: a GPU stage first (hybrid.c) */
        return s;
    const ntp_gguf_tensor *emb;
    if ((s = find_tensor(m, g, NTP_T_TOKEN_EMBD, 0, &emb)) != NTP_OK)
        return s;
    if ((s = ntp_type_row_size(emb->type, emb->ne[0], &m->embd_row)) != NTP_OK)
        return s;
    if ((s = load_weights(m, g)) != NTP_OK || (s = load_embedding(m, g)) != NTP_OK)
        return s;
    return ntp__tokenizer_load(g, &m->tok);
}

/*
 * Open the file at path (mapped, with the SIGBUS guard on until it is freed,
 * or unmapped) and make an empty model for it; the caller frees both.
 */
static ntp_status open_model(const char *path, bool map, ntp_gguf **g, struct ntp_model **m)
{
    ntp_status s = ntp__gguf_open_file(path, map, g);
    if (s != NTP_OK)
        return s;
    ntp__gguf_guard_begin(*g);
    *m = calloc(1, sizeof **m);
    if (*m == NULL) {
        ntp_gguf_free(*g);
        return ntp__error(NTP_E_NOMEM, "%s: out of memory", path);
    }
    pthread_mutex_init(&(*m)->run_lock, NULL);
    return NTP_OK;
}

ntp_status ntp_model_load(const char *path, ntp_model_params params, ntp_model **out)
{
    ntp__error_clear();
    if (out == NULL || path == NULL)
        return ntp__error(NTP_E_INVALID_ARG, "ntp_model_load: path and out must not be NULL");
    *out = NULL;
    ntp_gguf *g;
    struct ntp_model *m;
    ntp_status s = open_model(path, params.use_mmap, &g, &m);
    if (s != NTP_OK)
        return s;
    m->params = params;
    s = load_from(m, g);
    ntp_gguf_free(g); /* the weights now live in the devices' memory */
    if (s != NTP_OK) {
        ntp__error_prefix("%s", path);
        ntp_model_free(m);
        return s;
    }
    *out = m;
    return NTP_OK;
}

void ntp_model_free(ntp_model *m)
{
    if (m == NULL)
        return;
    for (int d = 0; d < m->n_dev; d++) {
        struct ntp_model_device *md = &m->dev[d];
        if (md->dev) {
            md->dev->iface->buffer_free(md->dev, md->buf);
            md->dev->iface->destroy(md->dev);
        }
        free(md->w.layer);
    }
    ntp__tokenizer_free(m->tok);
    ntp__free_aligned(m->embd);
    free(m->rope_freqs);
    free(m->swa_layers);
    ntp_topology_free(m->topo);
    pthread_mutex_destroy(&m->run_lock);
    free(m);
}

/* What kv asks for the shards of plan, from the model's layers (see struct ntp_kv_plan). */
static void plan_kv(const struct ntp_model_cfg *cfg, const struct ntp_plan *plan,
                    struct ntp_kv_plan *kv)
{
    const struct ntp_hparams *hp = &cfg->hp;
    const int64_t hd = hp->head_dim_k > hp->head_dim_v ? hp->head_dim_k : hp->head_dim_v;
    size_t head_row = 0; /* one head's cached row (0 when the type cannot hold it) */
    ntp_type_row_size(kv->type, hd, &head_row);
    const uint64_t width = head_row;
    kv->n_ring = kv->ring = 0;
    for (int64_t il = 0; il < hp->n_layer; il++)
        if (ntp__kv_ring(cfg, il, kv->n_ctx, kv->n_batch)) {
            kv->n_ring++;
            kv->ring = ntp__kv_ring(cfg, il, kv->n_ctx, kv->n_batch);
        }
    for (int d = 0; d < plan->n_dev; d++) {
        const struct ntp_shard *sh = &plan->shard[d];
        /* K and V; latent attention's values are its keys' first elements */
        const uint64_t row = (ntp__cfg_mla(cfg) ? 1 : 2) * width * (uint64_t)sh->n_head_kv;
        kv->bytes[d] = kv->plain[d] = 0;
        for (int64_t il = sh->layer0; il < sh->layer0 + sh->n_layer; il++) {
            if (!ntp__shard_attn(sh, il))
                continue;
            kv->bytes[d] += row * (uint64_t)ntp__kv_rows(cfg, il, kv->n_ctx, kv->n_batch);
            kv->plain[d] += row * (uint64_t)kv->n_ctx;
        }
        kv->bytes[d] *= (uint64_t)(kv->n_seq > 1 ? kv->n_seq : 1);
        kv->plain[d] *= (uint64_t)(kv->n_seq > 1 ? kv->n_seq : 1);
    }
}

ntp_status ntp__model_plan_file(const char *path, int n_dev, int moe_split, struct ntp_plan *plan,
                                struct ntp_hparams *hp, uint64_t *bytes, struct ntp_kv_plan *kv)
{
    return ntp__model_plan_stage(path, n_dev, moe_split, 0, 1, plan, hp, bytes, kv);
}

ntp_status ntp__model_plan_stage(const char *path, int n_dev, int moe_split, int stage, int n_stage,
                                 struct ntp_plan *plan, struct ntp_hparams *hp, uint64_t *bytes,
                                 struct ntp_kv_plan *kv)
{
    ntp__error_clear();
    ntp_gguf *g;
    struct ntp_model *m;
    ntp_status s = open_model(path, false, &g, &m);
    if (s != NTP_OK)
        return s;
    if ((s = ntp__model_read_cfg(g, m)) == NTP_OK && n_stage > m->cfg.hp.n_layer)
        s = ntp__error(NTP_E_INVALID_ARG, "--pp %d: more pipeline stages than the %lld blocks",
                       n_stage, (long long)m->cfg.hp.n_layer);
    if (s == NTP_OK &&
        (s = plan_devices(&m->cfg.hp, g, n_dev, moe_split, stage, n_stage, false, plan)) == NTP_OK)
        for (int d = 0; d < n_dev && s == NTP_OK; d++) {
            /* The sizing walk of the loader, with no device behind it. */
            struct ntp_model_device md = {.shard = plan->shard[d]};
            md.w.layer = calloc((size_t)md.shard.n_layer * NTP_T_COUNT + 1, sizeof *md.w.layer);
            struct walk wk = {.m = m, .md = &md, .g = g};
            s = md.w.layer ? walk_device(&wk) : ntp__error(NTP_E_NOMEM, "out of memory");
            bytes[d] = wk.off;
            free(md.w.layer);
        }
    *hp = m->cfg.hp;
    if (s == NTP_OK && kv)
        plan_kv(&m->cfg, plan, kv);
    if (s != NTP_OK)
        ntp__error_prefix("%s", path);
    pthread_mutex_destroy(&m->run_lock);
    free(m->swa_layers);
    free(m);
    ntp_gguf_free(g);
    return s;
}

void ntp__model_embed(const struct ntp_model *m, int32_t tok, float *x)
{
    ntp__quant_fns(m->embd_type)
        ->dequantize(m->embd + (size_t)tok * m->embd_row, x, m->cfg.hp.n_embd);
    if (m->cfg.embd_scale != 1.0f)
        for (int64_t i = 0; i < m->cfg.hp.n_embd; i++)
            x[i] *= m->cfg.embd_scale;
}

/* -------------------------------------------------------------- accessors */

const char *ntp_model_arch(const ntp_model *m)
{
    return m->arch->name;
}

int32_t ntp_model_n_vocab(const ntp_model *m)
{
    return (int32_t)m->cfg.hp.n_vocab;
}

int32_t ntp_model_n_ctx_train(const ntp_model *m)
{
    return (int32_t)m->cfg.hp.n_ctx;
}

int32_t ntp_model_n_embd(const ntp_model *m)
{
    return (int32_t)m->cfg.hp.n_embd;
}

int32_t ntp_model_n_layer(const ntp_model *m)
{
    return (int32_t)m->cfg.hp.n_layer;
}

uint64_t ntp_model_weight_bytes(const ntp_model *m)
{
    uint64_t b = 0;
    for (int d = 0; d < m->n_dev; d++)
        b += m->dev[d].bytes;
    return b;
}

const char *ntp_model_device_desc(const ntp_model *m)
{
    return m->device_desc;
}

int32_t ntp_model_n_devices(const ntp_model *m)
{
    return m->n_dev;
}

const char *ntp_model_layout_desc(const ntp_model *m)
{
    return m->layout_desc;
}
