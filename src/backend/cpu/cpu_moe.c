/*
 * cpu_moe.c - the mixture-of-experts FFN on one CPU device. With the
 * features cut (model/plan.h) the device holds rows [ff0, ff0 + n_ff) of
 * every expert's gate and up and the matching columns of its down, so it
 * computes a partial of every chosen expert and the block's all-reduce sums
 * the partials as it does a dense FFN's. The router is replicated: every
 * device routes every token alike (the hidden state is bit-identical on all
 * devices after an all-reduce).
 *
 * Per block, all threads of the team: the router's logits (its rows dealt
 * out), routing (the tokens dealt out), grouping by thread 0 (a counting
 * sort of the (token, expert) pairs into slots ordered by expert), the
 * slots' activations, gate and up as grouped expert products (kernels.h,
 * ntp__kernels_matmul_experts: each expert's rows read once for all its
 * tokens), the gate's activation, down, and each token's weighted sum into
 * the partial. With the experts cut the device holds whole experts and
 * computes only the chosen ones it holds.
 */
#include "backend/cpu/cpu_moe.h"

#include "core/core.h"
#include "numa/place.h"

#include <stdlib.h>
#include <string.h>

void ntp__cpu_moe_free(struct cpu_moe *m)
{
    if (m == NULL)
        return;
    for (int i = 0; i < NTP_CPU_MOE_BUFS; i++)
        ntp__place_free(m->buf[i]);
    free(m);
}

/* Largest activation row of tensor id over the shard's layers, for k elements per row. */
static size_t act_row(const struct cpu_device *c, const struct ntp_dev_state_params *p,
                      enum ntp_tensor_id id)
{
    size_t best = 0;
    for (int64_t l = 0; l < p->shard->n_layer; l++) {
        const struct ntp_dev_tensor *t = &p->w->layer[l * NTP_T_COUNT + id];
        const size_t sz = t->data ? ntp__kernels_act_row_size(&c->k, t->type, t->ne[0]) : 0;
        best = sz > best ? sz : best;
    }
    return best;
}

/* Zero every buffer with the device's threads, so that their pages are first touched there. */
static void touch_fn(void *ctx, int ith, int nth)
{
    const struct cpu_moe *m = ctx;
    for (int i = 0; i < NTP_CPU_MOE_BUFS; i++) {
        const size_t n = ntp__place_size(m->buf[i]);
        const size_t a = n * (size_t)ith / (size_t)nth, b = n * (size_t)(ith + 1) / (size_t)nth;
        memset((uint8_t *)m->buf[i] + a, 0, b - a);
    }
}

/* Whether some layer's up takes activations of another type than its gate (own act_u). */
static bool up_own_act(const struct cpu_device *c, const struct ntp_dev_state_params *p)
{
    for (int64_t l = 0; l < p->shard->n_layer; l++) {
        const struct ntp_dev_tensor *w = &p->w->layer[l * NTP_T_COUNT];
        if (w[NTP_T_FFN_GATE_EXPS].data && w[NTP_T_FFN_UP_EXPS].data &&
            c->k.type[w[NTP_T_FFN_GATE_EXPS].type].act_type !=
                c->k.type[w[NTP_T_FFN_UP_EXPS].type].act_type)
            return true;
    }
    return false;
}

ntp_status ntp__cpu_moe_new(const struct cpu_device *c, const struct ntp_dev_state_params *p,
                            struct cpu_moe **out)
{
    const struct ntp_hparams *hp = &p->cfg->hp;
    *out = NULL;
    if (!ntp__cfg_moe(p->cfg))
        return NTP_OK;
    struct cpu_moe *m = calloc(1, sizeof *m);
    if (m == NULL)
        return ntp__error(NTP_E_NOMEM, "cpu device: cannot allocate the expert FFN's state");
    m->n_expert = hp->n_expert;
    m->n_used = hp->n_expert_used;
    m->n_ff = p->shard->n_ff;
    m->e0 = p->shard->expert0;
    m->n_local = p->shard->n_expert;
    m->row_r = act_row(c, p, NTP_T_FFN_GATE_INP);
    m->row_g = act_row(c, p, NTP_T_FFN_GATE_EXPS);
    m->row_u = up_own_act(c, p) ? act_row(c, p, NTP_T_FFN_UP_EXPS) : 0;
    m->row_d = act_row(c, p, NTP_T_FFN_DOWN_EXPS);
    const size_t nb = (size_t)p->n_batch, ns = nb * (size_t)m->n_used, fl = sizeof(float);
    const size_t ne = (size_t)m->n_expert, nff = (size_t)m->n_ff;
    const size_t sizes[NTP_CPU_MOE_BUFS] = {
        nb * ne * fl,                 /* logits */
        nb * m->row_r,                /* act_r */
        ns * sizeof *m->sel,          /* sel */
        ns * fl,                      /* w */
        ns * sizeof *m->slot_of,      /* slot_of */
        ns * sizeof *m->tok_of,       /* tok_of */
        ne * sizeof *m->cnt,          /* cnt */
        ne * sizeof *m->group,        /* group */
        ns * m->row_g,                /* act_g */
        ns * m->row_u,                /* act_u */
        ns * nff * fl,                /* hg */
        ns * nff * fl,                /* hu */
        ns * m->row_d,                /* act_d */
        ns * (size_t)hp->n_embd * fl, /* yd */
        nb * 2 * ne * fl,             /* route */
    };
    int bad = 0;
    for (int i = 0; i < NTP_CPU_MOE_BUFS; i++) {
        m->buf[i] = ntp__place_alloc(sizes[i] ? sizes[i] : 64, c->p.node);
        bad += m->buf[i] == NULL;
    }
    m->logits = m->buf[0];
    m->act_r = m->buf[1];
    m->sel = m->buf[2];
    m->w = m->buf[3];
    m->slot_of = m->buf[4];
    m->tok_of = m->buf[5];
    m->cnt = m->buf[6];
    m->group = m->buf[7];
    m->act_g = m->buf[8];
    m->act_u = m->buf[9];
    m->hg = m->buf[10];
    m->hu = m->buf[11];
    m->act_d = m->buf[12];
    m->yd = m->buf[13];
    m->route = m->buf[14];
    if (bad) {
        ntp__cpu_moe_free(m);
        return ntp__error(NTP_E_NOMEM,
                          "cpu device: cannot allocate the expert FFN's buffers (batch %lld, "
                          "%lld experts per token)",
                          (long long)p->n_batch, (long long)hp->n_expert_used);
    }
    ntp__team_run(c->team, touch_fn, m);
    *out = m;
    return NTP_OK;
}

ntp_status ntp__cpu_moe_place(const struct cpu_moe *m, int node, struct ntp_place_count *pc)
{
    ntp_status st = NTP_OK;
    for (int i = 0; i < NTP_CPU_MOE_BUFS && st == NTP_OK; i++)
        st = ntp__place_count(m->buf[i], ntp__place_size(m->buf[i]), node, pc);
    return st;
}

/* Rows [t0, t1) of src (n floats each, ld apart) into dst rows (row bytes apart) for weight wt. */
static void to_act(const struct ntp_kernels *k, enum ntp_type wt, const float *src, int64_t ld,
                   int64_t n, void *dst, size_t row, const int64_t *map, int64_t t0, int64_t t1)
{
    const struct ntp_kernel_type *kt = &k->type[wt];
    for (int64_t j = t0; j < t1; j++) {
        const float *x = src + (map ? map[j] : j) * ld;
        uint8_t *d = (uint8_t *)dst + (size_t)j * row;
        if (kt->act_type == NTP_TYPE_F32)
            memcpy(d, x, (size_t)n * sizeof(float));
        else
            kt->quantize_act(x, d, n);
    }
}

/*
 * Sort the routed (token, choice) pairs into slots by expert (thread 0; a
 * few thousand pairs at most): the slots of expert e are consecutive, its
 * tokens in order, and the groups list the experts held here that have
 * tokens, in expert order.
 */
static void group_all(struct cpu_moe *m, int64_t n_tok)
{
    const int64_t k = m->n_used;
    memset(m->cnt, 0, (size_t)m->n_expert * sizeof *m->cnt);
    for (int64_t t = 0; t < n_tok * k; t++)
        m->cnt[m->sel[t]]++;
    int64_t slot = 0;
    m->n_group = 0;
    for (int64_t e = m->e0; e < m->e0 + m->n_local; e++) {
        const int64_t n = m->cnt[e];
        if (n == 0)
            continue;
        m->group[m->n_group++] = (struct ntp_moe_group){e - m->e0, slot, n};
        m->cnt[e] = slot; /* from here on: expert e's next free slot */
        slot += n;
    }
    for (int64_t t = 0; t < n_tok; t++)
        for (int64_t i = 0; i < k; i++) {
            const int64_t e = m->sel[t * k + i];
            const bool here = e >= m->e0 && e < m->e0 + m->n_local;
            const int64_t j = here ? m->cnt[e]++ : -1;
            m->slot_of[t * k + i] = j;
            if (here)
                m->tok_of[j] = t;
        }
}

/* One grouped product of every expert's rows w over the slots' rows x into y (ldy floats). */
static ntp_status experts_mm(const struct ntp_kernels *k, const struct cpu_moe *m,
                             const struct ntp_dev_tensor *w, const void *x, size_t x_stride,
                             float *y, int64_t ldy, int ith, int nth)
{
    const struct ntp_moe_matmul_args a = {
        .wtype = w->type,
        .w = w->data,
        .w_stride = w->row_stride,
        .layout = w->layout,
        .rows = w->ne[1] / m->n_local,
        .k = w->ne[0],
        .group = m->group,
        .n_group = m->n_group,
        .x = x,
        .x_stride = x_stride,
        .y = y,
        .ldy = ldy,
        .ith = ith,
        .nth = nth,
    };
    return ntp__kernels_matmul_experts(k, &a);
}

/* The first failure of this thread is kept; later ones do not replace it. */
static void keep(ntp_status *first, ntp_status s)
{
    if (*first == NTP_OK)
        *first = s;
}

ntp_status ntp__cpu_moe_ffn(struct ntp_dev_state *s, const struct ntp_kernels *k,
                            struct ntp_team *team, int ith, int nth, int64_t il, int64_t n_tok)
{
    struct cpu_moe *m = s->moe;
    const struct ntp_dev_tensor *lw = &s->p.w->layer[(il - s->p.shard->layer0) * NTP_T_COUNT];
    const struct ntp_dev_tensor *wr = &lw[NTP_T_FFN_GATE_INP], *wg = &lw[NTP_T_FFN_GATE_EXPS];
    const struct ntp_dev_tensor *wu = &lw[NTP_T_FFN_UP_EXPS], *wd = &lw[NTP_T_FFN_DOWN_EXPS];
    const int64_t e = s->n_embd, ff = m->n_ff;
    ntp_status st = NTP_OK;
    int64_t a0, a1;
    ntp__team_barrier(team); /* every token's normed row is written */

    /* The router: its rows (experts) dealt out over the threads, every token at once. */
    const bool rq = k->type[wr->type].act_type != NTP_TYPE_F32;
    if (rq) {
        ntp__slice(n_tok, ith, nth, &a0, &a1);
        to_act(k, wr->type, s->xn, e, e, m->act_r, m->row_r, NULL, a0, a1);
        ntp__team_barrier(team);
    }
    const struct ntp_matmul_args ra = {
        .wtype = wr->type,
        .w = wr->data,
        .w_stride = wr->row_stride,
        .n_rows = m->n_expert,
        .k = e,
        .x = rq ? m->act_r : (const void *)s->xn,
        .x_stride = rq ? m->row_r : (size_t)e * sizeof(float),
        .n_tok = n_tok,
        .y = m->logits,
        .ldy = m->n_expert,
        .ith = ith,
        .nth = nth,
        .layout = wr->layout,
    };
    keep(&st, ntp__kernels_matmul(k, &ra));
    ntp__team_barrier(team);
    /* Each thread routes its tokens; thread 0 then groups them by expert. */
    ntp__slice(n_tok, ith, nth, &a0, &a1);
    const float *bias = lw[NTP_T_FFN_EXP_PROBS_B].data;
    for (int64_t t = a0; t < a1; t++)
        ntp__moe_route_gated(m->logits + t * m->n_expert, m->n_expert, m->n_used,
                             &s->p.cfg->hp.gating, bias, m->route + t * 2 * m->n_expert,
                             m->sel + t * m->n_used, m->w + t * m->n_used);
    ntp__team_barrier(team);
    if (ith == 0)
        group_all(m, n_tok);
    ntp__team_barrier(team);

    if (ff > 0) {
        /* Each slot's token row in the act_type of gate (and of up, when it differs). */
        const bool own_u = k->type[wu->type].act_type != k->type[wg->type].act_type;
        const int64_t ng = m->n_group; /* the slots of the experts held here */
        const int64_t n_slot = ng ? m->group[ng - 1].slot0 + m->group[ng - 1].n_tok : 0;
        ntp__slice(n_slot, ith, nth, &a0, &a1);
        to_act(k, wg->type, s->xn, e, e, m->act_g, m->row_g, m->tok_of, a0, a1);
        if (own_u)
            to_act(k, wu->type, s->xn, e, e, m->act_u, m->row_u, m->tok_of, a0, a1);
        ntp__team_barrier(team);
        keep(&st, experts_mm(k, m, wg, m->act_g, m->row_g, m->hg, ff, ith, nth));
        keep(&st, experts_mm(k, m, wu, own_u ? m->act_u : m->act_g, own_u ? m->row_u : m->row_g,
                             m->hu, ff, ith, nth));
        ntp__team_barrier(team);
        /* act(gate) * up, then in down's act_type */
        const bool dq = k->type[wd->type].act_type != NTP_TYPE_F32;
        for (int64_t j = a0; j < a1; j++)
            k->glu[s->p.cfg->ffn_act](m->hg + j * ff, m->hg + j * ff, m->hu + j * ff, ff);
        if (dq)
            to_act(k, wd->type, m->hg, ff, ff, m->act_d, m->row_d, NULL, a0, a1);
        ntp__team_barrier(team);
        keep(&st, experts_mm(k, m, wd, dq ? m->act_d : (const void *)m->hg,
                             dq ? m->row_d : (size_t)ff * sizeof(float), m->yd, e, ith, nth));
        ntp__team_barrier(team);
    }

    /* Each token's partial: its experts' outputs times their weights, best expert first;
       the threads take tokens, or (fewer tokens than threads: a decode) columns. */
    const bool by_tok = n_tok >= nth;
    int64_t c0 = 0, c1 = e;
    ntp__slice(by_tok ? n_tok : e, ith, nth, &a0, &a1);
    if (!by_tok) {
        c0 = a0, c1 = a1;
        a0 = 0, a1 = n_tok;
    }
    for (int64_t t = a0; t < a1; t++) {
        float *out = s->part + t * e;
        memset(out + c0, 0, (size_t)(c1 - c0) * sizeof(float));
        for (int64_t i = 0; ff > 0 && i < m->n_used; i++) {
            const int64_t j = m->slot_of[t * m->n_used + i];
            if (j < 0)
                continue; /* another device's expert */
            const float wt = m->w[t * m->n_used + i];
            const float *y = m->yd + j * e;
            for (int64_t c = c0; c < c1; c++)
                out[c] += wt * y[c];
        }
    }
    return st;
}
