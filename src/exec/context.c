/*
 * context.c - ntp_context and ntp_decode: the forward pass over the model's
 * devices. The host looks up the token embeddings and runs the batch through
 * a pipeline of steps. A stage is a tensor-parallel group of devices
 * holding the same blocks (the same halves of them); a step is a range of
 * blocks one stage runs: the host hands every device of the group the hidden
 * state, starts them all (they must run at the same time, for they meet in
 * their all-reduces) and waits for all of them; only the hidden state
 * crosses from one step to the next (hidden_read / hidden_write). Today
 * there is one stage, the CPU group; hybrid offload puts a GPU stage in
 * front of it, one step each. Under --cpu-moe the GPU holds the attention
 * halves of the first blocks and the CPU group their FFN halves, so the
 * steps alternate between the two, block by block. The devices of the stage
 * holding a slice of the vocabulary then compute their logits side by side
 * (gathered, not summed).
 *
 * A context may hold several sequences (continuous batching, ntp_decode_seqs):
 * each has its own KV cache and position on every device, and one batch
 * carries tokens of several; the devices are then given each token's
 * sequence and position (device.h, struct ntp_dev_run).
 */
#include "ntp.h"

#include "comm/comm.h"
#include "comm/world.h"
#include "exec/follow.h"
#include "core/core.h"
#include "model/model.h"
#include "numa/place.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* A tensor-parallel group: devices holding the same blocks, run together. */
struct stage {
    int dev0, n_dev;       /* model devices [dev0, dev0 + n_dev) */
    bool async;            /* every device has run_layers_start / run_wait */
    struct ntp_comm *comm; /* the group's collective (owned; NULL for one device) */
};

/* One step of the pipeline: a stage runs blocks [layer0, layer1), the halves it holds. */
struct step {
    int stage;
    int64_t layer0, layer1;
};

struct ntp_context {
    ntp_model *model;                          /* not owned */
    ntp_context_params p;                      /* as given, n_ctx resolved */
    struct ntp_dev_state *st[NTP_MAX_DEVICES]; /* per device state (owner: the device) */
    int64_t *pos;                              /* [n_seq] tokens in each sequence's cache */
    int64_t *next;                             /* [n_seq] scratch: positions during a call */
    int32_t *bseq, *bpos;                      /* [n_batch] a batch's sequences, positions */
    float *hidden;                             /* [n_batch][n_embd] host embeddings */
    float *logits;                             /* [logits_cap][n_vocab] rows kept */
    int64_t logits_cap;                        /* rows allocated in logits */
    int32_t *row_of;                           /* [row_cap] each token of the last decode:
                                                  its row in logits, or -1 (not kept) */
    int64_t row_cap;                           /* entries allocated in row_of */
    int64_t last_n;                            /* tokens of the last decode (0: none kept) */
    struct stage stage[NTP_MAX_DEVICES];       /* the groups, in device order */
    int n_stage;
    struct step *step; /* [2 * n_layer] the pipeline, in block order */
    int n_step;
    int32_t lead_id; /* its number for the other ranks when rank 0 leads them
                        (exec/follow.h); -1: not */
    ntp_context_stats stats; /* decode counts and times (all-reduce filled
                                in when read) */
};

ntp_context_params ntp_context_default_params(void)
{
    return (ntp_context_params){.n_ctx = 0, .n_batch = 512, .kv_type = NTP_TYPE_F16, .n_seq = 1};
}

void ntp_context_free(ntp_context *c)
{
    if (c == NULL)
        return;
    if (c->lead_id >= 0) { /* an error telling the others ends every rank anyway */
        pthread_mutex_lock(&c->model->run_lock);
        (void)ntp__lead_free(c->lead_id);
        pthread_mutex_unlock(&c->model->run_lock);
    }
    for (int d = 0; d < c->model->n_dev; d++) {
        struct ntp_device *dev = c->model->dev[d].dev;
        dev->iface->state_free(dev, c->st[d]);
    }
    for (int i = 0; i < c->n_stage; i++)
        ntp__comm_free(c->stage[i].comm);
    free(c->hidden);
    free(c->logits);
    free(c->row_of);
    free(c->pos);
    free(c->next);
    free(c->bseq);
    free(c->bpos);
    free(c->step);
    free(c);
}

static ntp_status check_params(const ntp_model *m, ntp_context_params *p)
{
    if (p->n_ctx < 0 || p->n_batch < 0 || p->n_seq < 0)
        return ntp__error(NTP_E_INVALID_ARG,
                          "context: n_ctx %d, n_batch %d and n_seq %d must be >= 0",
                          (int)p->n_ctx, (int)p->n_batch, (int)p->n_seq);
    if (p->n_seq == 0)
        p->n_seq = 1;
    if (p->n_ctx == 0)
        p->n_ctx = (int32_t)(m->cfg.hp.n_ctx < 4096 ? m->cfg.hp.n_ctx : 4096);
    if (p->n_batch == 0)
        p->n_batch = 512;
    if (p->n_batch > p->n_ctx)
        p->n_batch = p->n_ctx;
    const enum ntp_type kv = p->kv_type;
    if (kv != NTP_TYPE_F16 && kv != NTP_TYPE_F32 && kv != NTP_TYPE_Q8_0 && kv != NTP_TYPE_Q4_0)
        return ntp__error(NTP_E_UNSUPPORTED,
                          "context: KV cache type %s (expected F16, F32, Q8_0 or Q4_0)",
                          ntp_type_name(kv));
    /* A quantized cache stores each head's row in blocks of 32. */
    const int64_t hdk = m->cfg.hp.head_dim_k, hdv = m->cfg.hp.head_dim_v;
    if ((kv == NTP_TYPE_Q8_0 || kv == NTP_TYPE_Q4_0) && (hdk % 32 != 0 || hdv % 32 != 0))
        return ntp__error(NTP_E_UNSUPPORTED,
                          "context: a %s KV cache needs head widths that are multiples of 32; "
                          "this model's are %lld (keys) and %lld (values): use F16 or F32",
                          ntp_type_name(kv), (long long)hdk, (long long)hdv);
    return NTP_OK;
}

static bool dev_async(const struct ntp_device *d)
{
    return d->iface->run_layers_start && d->iface->run_output_start && d->iface->run_wait;
}

/* Whether two shards hold the same halves of the same blocks. */
static bool same_blocks(const struct ntp_shard *a, const struct ntp_shard *b)
{
    return a->layer0 == b->layer0 && a->n_layer == b->n_layer && a->ffn_only == b->ffn_only &&
           a->attn_only == b->attn_only;
}

/*
 * The steps: every half of every block, in order, goes to the one stage
 * holding it; consecutive halves of one stage make one step.
 */
static ntp_status make_steps(ntp_context *c)
{
    const ntp_model *m = c->model;
    /* This process's blocks: all of them, or its pipeline stage's under mpirun --pp. */
    int64_t lo = m->cfg.hp.n_layer, hi = 0;
    for (int d = 0; d < m->n_dev; d++) {
        const struct ntp_shard *sh = &m->dev[d].shard;
        lo = sh->n_layer && sh->layer0 < lo ? sh->layer0 : lo;
        hi = sh->n_layer && sh->layer0 + sh->n_layer > hi ? sh->layer0 + sh->n_layer : hi;
    }
    c->step = calloc((size_t)(2 * m->cfg.hp.n_layer + 1), sizeof *c->step);
    if (c->step == NULL)
        return ntp__error(NTP_E_NOMEM, "context: out of memory");
    for (int64_t il = lo; il < hi; il++)
        for (int half = 0; half < 2; half++) {
            int owner = -1;
            for (int i = 0; i < c->n_stage; i++) {
                const struct ntp_shard *sh = &m->dev[c->stage[i].dev0].shard;
                if (!(half ? ntp__shard_ffn(sh, il) : ntp__shard_attn(sh, il)))
                    continue;
                if (owner >= 0)
                    return ntp__error(NTP_E_INVALID_ARG,
                                      "context: the %s of block %lld is held by two device groups",
                                      half ? "FFN" : "attention", (long long)il);
                owner = i;
            }
            if (owner < 0)
                return ntp__error(NTP_E_INVALID_ARG,
                                  "context: no device holds the %s of block %lld",
                                  half ? "FFN" : "attention", (long long)il);
            struct step *last = c->n_step ? &c->step[c->n_step - 1] : NULL;
            if (last && last->stage == owner && last->layer1 >= il)
                last->layer1 = il + 1;
            else
                c->step[c->n_step++] = (struct step){owner, il, il + 1};
        }
    return NTP_OK;
}

/* Consecutive devices holding the same blocks form one stage. */
static ntp_status make_stages(ntp_context *c)
{
    const ntp_model *m = c->model;
    for (int d = 0; d < m->n_dev; d++) {
        const struct ntp_shard *sh = &m->dev[d].shard;
        struct stage *st = c->n_stage ? &c->stage[c->n_stage - 1] : NULL;
        if (st == NULL || !same_blocks(&m->dev[st->dev0].shard, sh)) {
            st = &c->stage[c->n_stage++];
            *st = (struct stage){.dev0 = d, .async = true};
        }
        st->n_dev++;
        st->async = st->async && dev_async(m->dev[d].dev);
        if (st->n_dev > 1 && !st->async)
            return ntp__error(NTP_E_UNSUPPORTED,
                              "context: %s cannot run concurrently with the other devices of its "
                              "tensor-parallel group",
                              m->dev[d].dev->desc);
    }
    return make_steps(c);
}

/*
 * The collective of a group of more than one device, its buffers on the
 * devices' nodes: the shared-memory tree (or the kind NTP_COMM names) for
 * a group inside this process; under mpirun the group spans the processes
 * (st holds this process's members) and its kind is "mpi" (comm/world.h).
 */
static ntp_status make_comm(ntp_context *c, struct stage *st)
{
    const ntp_model *m = c->model;
    const bool world = ntp__world_size() > 1 && m->pp == 1; /* the group spans the processes */
    if (st->n_dev < 2 && !world)
        return NTP_OK;
    int nodes[NTP_MAX_DEVICES], threads = 1;
    for (int i = 0; i < st->n_dev; i++) {
        const struct ntp_model_device *md = &m->dev[st->dev0 + i];
        nodes[i] = md->dev->iface->node ? md->dev->iface->node(md->dev) : -1;
        threads = md->n_threads > threads ? md->n_threads : threads;
    }
    const struct ntp_comm_params cp = {
        .size = st->n_dev,
        .max_n = (int64_t)c->p.n_batch * m->cfg.hp.n_embd,
        .max_threads = threads,
        .nodes = nodes,
    };
    const char *kind = getenv("NTP_COMM");
    return ntp__comm_new(world ? "mpi" : kind && kind[0] ? kind : "shm", &cp, &st->comm);
}

static ntp_status make_states(ntp_context *c)
{
    ntp_model *m = c->model;
    ntp_status s = make_stages(c);
    for (int i = 0; i < c->n_stage && s == NTP_OK; i++) {
        struct stage *st = &c->stage[i];
        if ((s = make_comm(c, st)) != NTP_OK)
            return s;
        for (int r = 0; r < st->n_dev && s == NTP_OK; r++) {
            struct ntp_model_device *md = &m->dev[st->dev0 + r];
            const struct ntp_dev_state_params sp = {
                .cfg = &m->cfg,
                .shard = &md->shard,
                .w = &md->w,
                .comm = {.comm = st->comm, .rank = r},
                .n_ctx = c->p.n_ctx,
                .n_seq = c->p.n_seq,
                .n_batch = c->p.n_batch,
                .kv_type = c->p.kv_type,
            };
            s = md->dev->iface->state_new(md->dev, &sp, &c->st[st->dev0 + r]);
        }
    }
    return s;
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
    c->lead_id = -1;
    const size_t nb = (size_t)params.n_batch, ns = (size_t)params.n_seq;
    c->hidden = malloc(nb * (size_t)m->cfg.hp.n_embd * sizeof(float));
    c->pos = calloc(ns, sizeof *c->pos);
    c->next = calloc(ns, sizeof *c->next);
    c->bseq = malloc(nb * sizeof *c->bseq);
    c->bpos = malloc(nb * sizeof *c->bpos);
    if (!c->hidden || !c->pos || !c->next || !c->bseq || !c->bpos) {
        ntp_context_free(c);
        return ntp__error(NTP_E_NOMEM, "context: out of memory");
    }
    /* The devices' teams first-touch the new state's pages: that is a job on
       the same teams a decode of another context may be running. */
    pthread_mutex_lock(&m->run_lock);
    s = make_states(c);
    pthread_mutex_unlock(&m->run_lock);
    if (s != NTP_OK) {
        ntp_context_free(c);
        return s;
    }
    if (ntp__follow_leading() && (s = ntp__lead_new(&c->p, &c->lead_id)) != NTP_OK) {
        ntp_context_free(c);
        return s;
    }
    *out = c;
    return NTP_OK;
}

/* Make room for rows logit rows and n tokens' row numbers (kept across calls; grow only). */
static ntp_status reserve_logits(ntp_context *c, int64_t rows, int64_t n)
{
    if (n > c->row_cap) {
        int32_t *r = realloc(c->row_of, (size_t)n * sizeof *r);
        if (r == NULL)
            return ntp__error(NTP_E_NOMEM, "context: out of memory");
        c->row_of = r;
        c->row_cap = n;
    }
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

/* Token ids, sequences (NULL: 0) and room in every sequence's cache. */
static ntp_status check_tokens(ntp_context *c, const int32_t *tokens, const int32_t *seq,
                               int32_t n)
{
    if (tokens == NULL || n < 1)
        return ntp__error(NTP_E_INVALID_ARG, "ntp_decode: %d tokens (need at least 1)", (int)n);
    for (int32_t i = 0; i < n; i++) {
        if (tokens[i] < 0 || tokens[i] >= c->model->cfg.hp.n_vocab)
            return ntp__error(NTP_E_INVALID_ARG,
                              "ntp_decode: token %d (index %d) outside the "
                              "vocabulary [0, %lld)",
                              (int)tokens[i], (int)i, (long long)c->model->cfg.hp.n_vocab);
        if (seq && (seq[i] < 0 || seq[i] >= c->p.n_seq))
            return ntp__error(NTP_E_INVALID_ARG,
                              "ntp_decode_seqs: sequence %d (index %d) outside [0, %d)",
                              (int)seq[i], (int)i, (int)c->p.n_seq);
    }
    memcpy(c->next, c->pos, (size_t)c->p.n_seq * sizeof *c->next);
    for (int32_t i = 0; i < n; i++)
        c->next[seq ? seq[i] : 0]++;
    for (int32_t q = 0; q < c->p.n_seq; q++)
        if (c->next[q] > c->p.n_ctx)
            return ntp__error(NTP_E_OVERFLOW,
                              "context overflow: %lld tokens in the cache + %lld new > n_ctx %d%s",
                              (long long)c->pos[q], (long long)(c->next[q] - c->pos[q]),
                              (int)c->p.n_ctx, c->p.n_seq > 1 ? " (in one sequence)" : "");
    return NTP_OK;
}

/*
 * Run the devices [d0, d0 + n) of a group at the same time: start each
 * (layers when run is not NULL, else the output head), then wait for all.
 * Every started device is waited for, whatever failed, so no device is left
 * waiting in an all-reduce for one that never started.
 */
static ntp_status run_group(ntp_context *c, int d0, int n, const struct ntp_dev_run *run,
                            const struct ntp_dev_output_run *out)
{
    ntp_model *m = c->model;
    ntp_status s = NTP_OK;
    if (n == 1 || !dev_async(m->dev[d0].dev)) {
        for (int d = d0; d < d0 + n && s == NTP_OK; d++) {
            struct ntp_device *dev = m->dev[d].dev;
            s = run ? dev->iface->run_layers(dev, c->st[d], run)
                    : dev->iface->run_output(dev, c->st[d], out);
        }
        return s;
    }
    int started = 0;
    for (int d = d0; d < d0 + n && s == NTP_OK; d++, started++) {
        struct ntp_device *dev = m->dev[d].dev;
        s = run ? dev->iface->run_layers_start(dev, c->st[d], run)
                : dev->iface->run_output_start(dev, c->st[d], out);
    }
    for (int d = d0; d < d0 + started; d++) {
        struct ntp_device *dev = m->dev[d].dev;
        const ntp_status w = dev->iface->run_wait(dev, c->st[d]);
        s = s == NTP_OK ? w : s;
    }
    return s;
}

/* The batch's hidden state through one step's blocks (b: the batch's tokens). */
static ntp_status run_step(ntp_context *c, const struct step *sp, const struct ntp_dev_run *b,
                           bool last)
{
    ntp_model *m = c->model;
    const struct stage *st = &c->stage[sp->stage];
    const int64_t n = b->n_tok;
    ntp_status s = NTP_OK;
    for (int d = st->dev0; d < st->dev0 + st->n_dev && s == NTP_OK; d++)
        s = m->dev[d].dev->iface->hidden_write(m->dev[d].dev, c->st[d], c->hidden, n);
    struct ntp_dev_run run = *b;
    run.layer0 = sp->layer0;
    run.layer1 = sp->layer1;
    if (s == NTP_OK)
        s = run_group(c, st->dev0, st->n_dev, &run, NULL);
    if (s == NTP_OK && !last) /* only the hidden state crosses to the next stage */
        s = m->dev[st->dev0].dev->iface->hidden_read(m->dev[st->dev0].dev, c->st[st->dev0],
                                                     c->hidden, n);
    return s;
}

/* The stage whose devices hold the output head (the CPU group's unless a GPU stage took it). */
static int head_stage(const ntp_context *c)
{
    for (int i = c->n_stage - 1; i >= 0; i--)
        for (int d = c->stage[i].dev0; d < c->stage[i].dev0 + c->stage[i].n_dev; d++)
            if (c->model->dev[d].shard.n_vocab > 0)
                return i;
    return c->n_stage - 1;
}

/*
 * Logits of the batch's rows t whose row_of[t] >= 0 into logits row
 * row_of[t], from the head's stage (handed the final hidden state); the
 * rows kept are runs with consecutive numbers, each run one output call.
 */
static ntp_status run_head(ntp_context *c, int64_t n, const int32_t *row_of)
{
    ntp_model *m = c->model;
    const struct stage *last = &c->stage[c->step[c->n_step - 1].stage];
    const struct stage *st = &c->stage[head_stage(c)];
    ntp_status s = NTP_OK;
    if (st != last) {
        s = m->dev[last->dev0].dev->iface->hidden_read(m->dev[last->dev0].dev, c->st[last->dev0],
                                                       c->hidden, n);
        for (int d = st->dev0; d < st->dev0 + st->n_dev && s == NTP_OK; d++)
            s = m->dev[d].dev->iface->hidden_write(m->dev[d].dev, c->st[d], c->hidden, n);
    }
    const int64_t nv = m->cfg.hp.n_vocab;
    const float cap = m->cfg.hp.logit_softcap;
    for (int64_t t0 = 0, t1; t0 < n && s == NTP_OK; t0 = t1) {
        for (t1 = t0 + 1; t1 < n && (row_of[t0] < 0) == (row_of[t1] < 0); t1++)
            ;
        if (row_of[t0] < 0)
            continue;
        float *logits = c->logits + (int64_t)row_of[t0] * nv;
        const struct ntp_dev_output_run out = {
            .tok0 = t0, .n_tok = t1 - t0, .logits = logits, .ld = nv};
        s = run_group(c, st->dev0, st->n_dev, NULL, &out);
        if (s == NTP_OK && m->pp == 1) /* under mpirun: every process's columns, everywhere */
            s = ntp__world_gather_cols(logits, t1 - t0, nv, m->world_vocab0, m->world_nvocab);
        if (s == NTP_OK && cap > 0.0f) /* final_logit_softcapping, as llama.cpp's graph does */
            for (int64_t i = 0; i < (t1 - t0) * nv; i++)
                logits[i] = cap * tanhf(logits[i] / cap);
    }
    return s;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/*
 * Under mpirun --pp, the stage before this process's hands over the hidden
 * state (to_next false: receive it) or this one hands it to the next (true).
 */
static ntp_status pp_hand_over(ntp_context *c, int64_t n, bool to_next)
{
    const ntp_model *m = c->model;
    const size_t bytes = (size_t)n * (size_t)m->cfg.hp.n_embd * sizeof(float);
    const double t0 = now_s();
    const ntp_status s = to_next ? ntp__world_send(c->hidden, bytes, m->pp_stage + 1)
                                 : ntp__world_recv(c->hidden, bytes, m->pp_stage - 1);
    c->stats.t_pp += now_s() - t0;
    return s;
}

/*
 * Under mpirun --pp, the last stage's logits of this batch's kept rows (row
 * numbers first_row ..) go to every process, which all sample alike.
 */
static ntp_status pp_share_logits(ntp_context *c, int64_t n, const int32_t *row_of)
{
    const ntp_model *m = c->model;
    int64_t first = -1, rows = 0;
    for (int64_t t = 0; t < n; t++)
        if (row_of[t] >= 0) {
            first = first < 0 ? row_of[t] : first;
            rows++;
        }
    const size_t nv = (size_t)m->cfg.hp.n_vocab;
    const double t0 = now_s();
    const ntp_status s = ntp__world_bcast(c->logits + (size_t)first * nv,
                                          (size_t)rows * nv * sizeof(float), m->pp - 1);
    c->stats.t_pp += now_s() - t0;
    return s;
}

/*
 * One batch of at most n_batch tokens (of sequences seq, NULL: 0) through
 * the pipeline, then the logits of the rows row_of keeps from the devices
 * that hold the head; the sequences' positions move on. Under mpirun --pp
 * this process runs its stage's blocks between the stages before and after.
 */
static ntp_status decode_batch(ntp_context *c, const int32_t *tokens, const int32_t *seq,
                               int64_t n, const int32_t *row_of)
{
    ntp_model *m = c->model;
    const int64_t e = m->cfg.hp.n_embd;
    const bool first_stage = m->pp_stage == 0, last_stage = m->pp_stage == m->pp - 1;
    bool head = false;
    for (int64_t t = 0; t < n; t++) {
        if (first_stage)
            ntp__model_embed(m, tokens[t], c->hidden + t * e);
        head = head || row_of[t] >= 0;
    }
    struct ntp_dev_run run = {.pos = c->pos[0], .n_tok = n};
    if (c->p.n_seq > 1) { /* each token's sequence and position (c->next counts them) */
        memcpy(c->next, c->pos, (size_t)c->p.n_seq * sizeof *c->next);
        for (int64_t t = 0; t < n; t++) {
            c->bseq[t] = seq ? seq[t] : 0;
            c->bpos[t] = (int32_t)c->next[c->bseq[t]]++;
        }
        run.seq = c->bseq;
        run.tpos = c->bpos;
    }
    ntp_status s = first_stage ? NTP_OK : pp_hand_over(c, n, false);
    for (int i = 0; i < c->n_step && s == NTP_OK; i++)
        s = run_step(c, &c->step[i], &run, i + 1 == c->n_step && last_stage);
    if (s == NTP_OK && !last_stage)
        s = pp_hand_over(c, n, true);
    if (s == NTP_OK && head && last_stage)
        s = run_head(c, n, row_of);
    if (s == NTP_OK && head && m->pp > 1)
        s = pp_share_logits(c, n, row_of);
    for (int64_t t = 0; t < n && s == NTP_OK; t++)
        c->pos[seq ? seq[t] : 0]++;
    return s;
}

void ntp_context_get_stats(const ntp_context *c, ntp_context_stats *out)
{
    *out = c->stats;
    for (int i = 0; i < c->n_stage; i++) {
        const struct ntp_comm *cm = c->stage[i].comm;
        if (cm && cm->iface->stats) {
            struct ntp_comm_stats cs;
            cm->iface->stats(cm, &cs);
            out->t_allreduce += (double)cs.time_ns * 1e-9;
            out->n_allreduce += (int64_t)cs.calls;
        }
    }
}

void ntp_context_reset_stats(ntp_context *c)
{
    memset(&c->stats, 0, sizeof c->stats);
    for (int i = 0; i < c->n_stage; i++)
        if (c->stage[i].comm && c->stage[i].comm->iface->stats_reset)
            c->stage[i].comm->iface->stats_reset(c->stage[i].comm);
}

static ntp_status decode_all(ntp_context *c, const int32_t *tokens, const int32_t *seq, int32_t n,
                             bool all_logits);

ntp_status ntp_decode_seqs(ntp_context *c, const int32_t *tokens, const int32_t *seq, int32_t n,
                           bool all_logits)
{
    /* The model's devices run one context at a time (each has one thread team). */
    pthread_mutex_lock(&c->model->run_lock);
    const double t0 = now_s();
    ntp_status s =
        c->lead_id >= 0 ? ntp__lead_decode(c->lead_id, tokens, seq, n, all_logits) : NTP_OK;
    if (s == NTP_OK)
        s = decode_all(c, tokens, seq, n, all_logits);
    pthread_mutex_unlock(&c->model->run_lock);
    c->stats.n_decode++;
    c->stats.n_tokens += s == NTP_OK ? n : 0;
    c->stats.t_decode += now_s() - t0;
    return s;
}

ntp_status ntp_decode(ntp_context *c, const int32_t *tokens, int32_t n, bool all_logits)
{
    return ntp_decode_seqs(c, tokens, NULL, n, all_logits);
}

/*
 * Which tokens keep their logits, numbered in order into c->row_of (every
 * token, or each sequence's last one; c->next serves as the seen marks); the
 * number of rows kept.
 */
static int64_t number_rows(ntp_context *c, const int32_t *seq, int32_t n, bool all_logits)
{
    if (!all_logits)
        memset(c->next, 0, (size_t)c->p.n_seq * sizeof *c->next);
    for (int32_t i = n - 1; i >= 0; i--) {
        const int32_t q = seq ? seq[i] : 0;
        c->row_of[i] = all_logits || !c->next[q] ? 0 : -1;
        c->next[q] = 1;
    }
    int64_t rows = 0;
    for (int32_t i = 0; i < n; i++)
        if (c->row_of[i] >= 0)
            c->row_of[i] = (int32_t)rows++;
    return rows;
}

static ntp_status decode_all(ntp_context *c, const int32_t *tokens, const int32_t *seq, int32_t n,
                             bool all_logits)
{
    ntp__error_clear();
    c->last_n = 0;
    ntp_status s = check_tokens(c, tokens, seq, n);
    if (s == NTP_OK)
        s = reserve_logits(c, 0, n);
    if (s == NTP_OK)
        s = reserve_logits(c, number_rows(c, seq, n, all_logits), n);
    if (s != NTP_OK)
        return s;
    for (int64_t i = 0; i < n && s == NTP_OK; i += c->p.n_batch) {
        const int64_t nb = n - i < c->p.n_batch ? n - i : c->p.n_batch;
        s = decode_batch(c, tokens + i, seq ? seq + i : NULL, nb, c->row_of + i);
    }
    if (s == NTP_OK)
        c->last_n = n;
    return s;
}

const float *ntp_get_logits(const ntp_context *c, int32_t i)
{
    if (i < 0)
        i = (int32_t)c->last_n + i;
    if (i < 0 || i >= c->last_n || c->row_of[i] < 0)
        return NULL;
    return c->logits + (int64_t)c->row_of[i] * c->model->cfg.hp.n_vocab;
}

int32_t ntp_context_pos(const ntp_context *c)
{
    return (int32_t)c->pos[0];
}

int32_t ntp_context_n_seq(const ntp_context *c)
{
    return c->p.n_seq;
}

int32_t ntp_context_seq_pos(const ntp_context *c, int32_t seq)
{
    return seq >= 0 && seq < c->p.n_seq ? (int32_t)c->pos[seq] : -1;
}

void ntp_context_seq_reset(ntp_context *c, int32_t seq)
{
    if (seq < 0 || seq >= c->p.n_seq)
        return;
    if (c->lead_id >= 0) { /* an error telling the others ends every rank at their next call */
        pthread_mutex_lock(&c->model->run_lock);
        (void)ntp__lead_seq_reset(c->lead_id, seq);
        pthread_mutex_unlock(&c->model->run_lock);
    }
    c->pos[seq] = 0; /* positions past a sequence's own are never read */
}

int32_t ntp_context_n_ctx(const ntp_context *c)
{
    return c->p.n_ctx;
}

void ntp_context_reset(ntp_context *c)
{
    if (c->lead_id >= 0) {
        pthread_mutex_lock(&c->model->run_lock);
        (void)ntp__lead_reset(c->lead_id);
        pthread_mutex_unlock(&c->model->run_lock);
    }
    for (int d = 0; d < c->model->n_dev; d++) {
        struct ntp_device *dev = c->model->dev[d].dev;
        if (dev->iface->state_clear)
            dev->iface->state_clear(dev, c->st[d]);
    }
    memset(c->pos, 0, (size_t)c->p.n_seq * sizeof *c->pos);
    c->last_n = 0;
}

ntp_status ntp_model_verify_numa(const ntp_model *m, const ntp_context *c, char *buf, size_t cap)
{
    ntp__error_clear();
    size_t w = 0;
    int bad = 0;
    buf[0] = '\0';
    for (int d = 0; d < m->n_dev; d++) {
        const struct ntp_model_device *md = &m->dev[d];
        struct ntp_device *dev = md->dev;
        const int node = dev->iface->node ? dev->iface->node(dev) : -1;
        struct ntp_place_count wt = {.other_node = -1}, st = {.other_node = -1};
        if (dev->iface->buffer_place == NULL)
            continue;
        ntp_status s = dev->iface->buffer_place(dev, md->buf, md->bytes, &wt);
        if (s == NTP_OK && c && dev->iface->state_place)
            s = dev->iface->state_place(dev, c->st[d], &st);
        if (s != NTP_OK)
            return s;
        const bool ok =
            wt.on_node + wt.not_mapped == wt.bytes && st.on_node + st.not_mapped == st.bytes;
        bad += !ok;
        if (w < cap)
            w += (size_t)snprintf(
                buf + w, cap - w,
                "dev %d node %d: weights %llu / %llu bytes on node%s, "
                "KV cache + scratch %llu / %llu%s\n",
                d, node, (unsigned long long)wt.on_node, (unsigned long long)wt.bytes,
                wt.not_mapped ? " (some never touched)" : "", (unsigned long long)st.on_node,
                (unsigned long long)st.bytes, ok ? "" : "  <-- MISPLACED");
    }
    if (bad)
        return ntp__error(NTP_E_DEVICE, "--verify-numa: %d device(s) have pages on another node",
                          bad);
    return NTP_OK;
}
