/*
 * context.c - ntp_context and ntp_decode: the forward pass over the model's
 * devices. The host looks up the token embeddings, hands the hidden state
 * to the devices, lets each run its layers (they meet in their all-reduces),
 * and collects the logits each device computes for its vocabulary slice.
 */
#include "ntp.h"

#include "core/core.h"
#include "model/model.h"

#include <stdlib.h>
#include <string.h>

struct ntp_context {
    ntp_model *model;                          /* not owned */
    ntp_context_params p;                      /* as given, n_ctx resolved */
    struct ntp_dev_state *st[NTP_MAX_DEVICES]; /* per device state (owner: the device) */
    int64_t pos;                               /* tokens in the KV cache */
    float *hidden;                             /* [n_batch][n_embd] host embeddings */
    float *logits;                             /* [logits_cap][n_vocab] rows kept */
    int64_t logits_cap;                        /* rows allocated in logits */
    int64_t n_logits;                          /* rows of the last decode that were kept */
    int64_t logits_first;                      /* token index (in that decode) of row 0 */
    int64_t last_n;                            /* tokens of the last decode */
};

ntp_context_params ntp_context_default_params(void)
{
    return (ntp_context_params){.n_ctx = 0, .n_batch = 512, .kv_type = NTP_TYPE_F16};
}

void ntp_context_free(ntp_context *c)
{
    if (c == NULL)
        return;
    for (int d = 0; d < c->model->n_dev; d++) {
        struct ntp_device *dev = c->model->dev[d].dev;
        dev->iface->state_free(dev, c->st[d]);
    }
    free(c->hidden);
    free(c->logits);
    free(c);
}

static ntp_status check_params(const ntp_model *m, ntp_context_params *p)
{
    if (p->n_ctx < 0 || p->n_batch < 0)
        return ntp__error(NTP_E_INVALID_ARG, "context: n_ctx %d and n_batch %d must be >= 0",
                          (int)p->n_ctx, (int)p->n_batch);
    if (p->n_ctx == 0)
        p->n_ctx = (int32_t)(m->cfg.hp.n_ctx < 4096 ? m->cfg.hp.n_ctx : 4096);
    if (p->n_batch == 0)
        p->n_batch = 512;
    if (p->n_batch > p->n_ctx)
        p->n_batch = p->n_ctx;
    if (p->kv_type != NTP_TYPE_F16 && p->kv_type != NTP_TYPE_F32)
        return ntp__error(NTP_E_UNSUPPORTED, "context: KV cache type %s (expected F16 or F32)",
                          ntp_type_name(p->kv_type));
    return NTP_OK;
}

ntp_status ntp_context_new(ntp_model *m, ntp_context_params params, ntp_context **out)
{
    ntp__error_clear();
    if (m == NULL || out == NULL)
        return ntp__error(NTP_E_INVALID_ARG, "ntp_context_new: model and out must not be NULL");
    *out = NULL;
    ntp_status s = check_params(m, &params);
    if (s != NTP_OK)
        return s;
    ntp_context *c = calloc(1, sizeof *c);
    if (c == NULL)
        return ntp__error(NTP_E_NOMEM, "context: out of memory");
    c->model = m;
    c->p = params;
    c->hidden = malloc((size_t)params.n_batch * (size_t)m->cfg.hp.n_embd * sizeof(float));
    if (c->hidden == NULL) {
        free(c);
        return ntp__error(NTP_E_NOMEM, "context: out of memory");
    }
    for (int d = 0; d < m->n_dev && s == NTP_OK; d++) {
        struct ntp_model_device *md = &m->dev[d];
        const struct ntp_dev_state_params sp = {
            .cfg = &m->cfg,
            .shard = &md->shard,
            .w = &md->w,
            .comm = {.allreduce = NULL, .comm = NULL, .rank = d},
            .n_ctx = params.n_ctx,
            .n_batch = params.n_batch,
            .kv_type = params.kv_type,
        };
        s = md->dev->iface->state_new(md->dev, &sp, &c->st[d]);
    }
    if (s != NTP_OK) {
        ntp_context_free(c);
        return s;
    }
    *out = c;
    return NTP_OK;
}

/* Make room for rows logit rows (kept across calls; grows only). */
static ntp_status reserve_logits(ntp_context *c, int64_t rows)
{
    if (rows <= c->logits_cap)
        return NTP_OK;
    const size_t bytes = (size_t)rows * (size_t)c->model->cfg.hp.n_vocab * sizeof(float);
    float *p = realloc(c->logits, bytes);
    if (p == NULL)
        return ntp__error(NTP_E_NOMEM, "context: cannot allocate %zu bytes of logits", bytes);
    c->logits = p;
    c->logits_cap = rows;
    return NTP_OK;
}

static ntp_status check_tokens(const ntp_context *c, const int32_t *tokens, int32_t n)
{
    if (tokens == NULL || n < 1)
        return ntp__error(NTP_E_INVALID_ARG, "ntp_decode: %d tokens (need at least 1)", (int)n);
    if (c->pos + n > c->p.n_ctx)
        return ntp__error(NTP_E_OVERFLOW,
                          "context overflow: %lld tokens in the cache + %d new > n_ctx %d",
                          (long long)c->pos, (int)n, (int)c->p.n_ctx);
    for (int32_t i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= c->model->cfg.hp.n_vocab)
            return ntp__error(NTP_E_INVALID_ARG,
                              "ntp_decode: token %d (index %d) outside the "
                              "vocabulary [0, %lld)",
                              (int)tokens[i], (int)i, (long long)c->model->cfg.hp.n_vocab);
    return NTP_OK;
}

/*
 * One batch of at most n_batch tokens through every device. Devices are run
 * one after the other: with one device that is all there is; the
 * tensor-parallel issue runs them concurrently (their all-reduces need it)
 * and pipelines hidden states between layer groups for hybrid offload.
 */
static ntp_status decode_batch(ntp_context *c, const int32_t *tokens, int64_t n, float *logits,
                               int64_t out0)
{
    ntp_model *m = c->model;
    const int64_t e = m->cfg.hp.n_embd;
    for (int64_t t = 0; t < n; t++)
        ntp__model_embed(m, tokens[t], c->hidden + t * e);
    ntp_status s = NTP_OK;
    for (int d = 0; d < m->n_dev && s == NTP_OK; d++) {
        struct ntp_model_device *md = &m->dev[d];
        const struct ntp_dev_run run = {.pos = c->pos,
                                        .n_tok = n,
                                        .layer0 = md->shard.layer0,
                                        .layer1 = md->shard.layer0 + md->shard.n_layer};
        s = md->dev->iface->hidden_write(md->dev, c->st[d], c->hidden, n);
        if (s == NTP_OK)
            s = md->dev->iface->run_layers(md->dev, c->st[d], &run);
    }
    for (int d = 0; d < m->n_dev && s == NTP_OK && logits; d++) {
        struct ntp_model_device *md = &m->dev[d];
        if (md->shard.n_vocab == 0 || md->dev->iface->run_output == NULL)
            continue;
        const struct ntp_dev_output_run out = {
            .tok0 = out0, .n_tok = n - out0, .logits = logits, .ld = m->cfg.hp.n_vocab};
        s = md->dev->iface->run_output(md->dev, c->st[d], &out);
    }
    if (s == NTP_OK)
        c->pos += n;
    return s;
}

ntp_status ntp_decode(ntp_context *c, const int32_t *tokens, int32_t n, bool all_logits)
{
    ntp__error_clear();
    ntp_status s = check_tokens(c, tokens, n);
    if (s == NTP_OK)
        s = reserve_logits(c, all_logits ? n : 1);
    if (s != NTP_OK)
        return s;
    c->n_logits = 0;
    c->last_n = n;
    c->logits_first = all_logits ? 0 : n - 1;
    const int64_t nv = c->model->cfg.hp.n_vocab;
    for (int64_t i = 0; i < n && s == NTP_OK; i += c->p.n_batch) {
        const int64_t nb = n - i < c->p.n_batch ? n - i : c->p.n_batch;
        const bool last = i + nb == n;
        float *dst = all_logits ? c->logits + i * nv : (last ? c->logits : NULL);
        s = decode_batch(c, tokens + i, nb, dst, all_logits ? 0 : nb - 1);
    }
    if (s == NTP_OK)
        c->n_logits = all_logits ? n : 1;
    return s;
}

const float *ntp_get_logits(const ntp_context *c, int32_t i)
{
    if (i < 0)
        i = (int32_t)c->last_n + i;
    const int64_t row = i - c->logits_first;
    if (c->n_logits == 0 || row < 0 || row >= c->n_logits)
        return NULL;
    return c->logits + row * c->model->cfg.hp.n_vocab;
}

int32_t ntp_context_pos(const ntp_context *c)
{
    return (int32_t)c->pos;
}

int32_t ntp_context_n_ctx(const ntp_context *c)
{
    return c->p.n_ctx;
}

void ntp_context_reset(ntp_context *c)
{
    for (int d = 0; d < c->model->n_dev; d++) {
        struct ntp_device *dev = c->model->dev[d].dev;
        if (dev->iface->state_clear)
            dev->iface->state_clear(dev, c->st[d]);
    }
    c->pos = 0;
    c->n_logits = 0;
    c->last_n = 0;
}
