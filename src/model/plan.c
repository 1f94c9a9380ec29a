/*
 * plan.c - the shard planner. Every split is "units over devices": the
 * legal cut points of a dimension are multiples of a unit (heads, KV groups,
 * quantization blocks), the units are dealt out as evenly as possible with
 * the larger shares first, and a dimension's last cut is always its end.
 */
#include "model/plan.h"

#include "core/core.h"

#include <stdio.h>
#include <string.h>

static int64_t gcd64(int64_t a, int64_t b)
{
    while (b) {
        const int64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

static int64_t lcm64(int64_t a, int64_t b)
{
    return a / gcd64(a, b) * b;
}

/* Device d's part [*a, *b) of n elements cut in units of u (the end is always a cut). */
static void share(int64_t n, int64_t u, int d, int n_dev, int64_t *a, int64_t *b)
{
    int64_t u0, u1;
    ntp__slice((n + u - 1) / u, d, n_dev, &u0, &u1);
    *a = u0 * u < n ? u0 * u : n;
    *b = u1 * u < n ? u1 * u : n;
}

/* Device d's query heads with cut unit u (in heads), and the KV heads they read. */
static void heads_of(const struct ntp_hparams *hp, int64_t u, int d, int n_dev,
                     struct ntp_shard *sh)
{
    const int64_t group = hp->n_head / hp->n_head_kv;
    int64_t h0, h1;
    share(hp->n_head, u, d, n_dev, &h0, &h1);
    sh->head0 = h0;
    sh->n_head = h1 - h0;
    sh->head_kv0 = h0 / group;
    sh->n_head_kv = h1 > h0 ? (h1 + group - 1) / group - sh->head_kv0 : 0;
}

/*
 * The heaviest device's attention weights with unit u, in head rows: Q and O
 * grow with its query heads, K and V with the KV heads it holds.
 */
static int64_t attn_cost(const struct ntp_hparams *hp, int64_t u, int n_dev)
{
    int64_t worst = 0;
    for (int d = 0; d < n_dev; d++) {
        struct ntp_shard sh;
        heads_of(hp, u, d, n_dev, &sh);
        const int64_t c = sh.n_head * (hp->head_dim_k + hp->head_dim_v) +
                          sh.n_head_kv * (hp->head_dim_k + hp->head_dim_v);
        worst = c > worst ? c : worst;
    }
    return worst;
}

/*
 * Query-head unit: whole KV groups (no KV head held twice) unless cutting
 * at head granularity (KV heads replicated where a cut splits a group) gives
 * the heaviest device less to stream, e.g. 3 devices over 4 KV groups.
 */
static int64_t head_unit(const struct ntp_hparams *hp, const struct ntp_plan_params *p)
{
    const int64_t blk = p->attn_block > 0 ? p->attn_block : 1;
    const int64_t group = hp->n_head / hp->n_head_kv;
    /* Heads per legal O cut: the smallest u with u * head_dim_v a multiple of the block. */
    const int64_t u_o = blk / gcd64(blk, ntp__hp_o_head(hp));
    const int64_t u_kv = lcm64(u_o, group);
    return attn_cost(hp, u_o, p->n_dev) < attn_cost(hp, u_kv, p->n_dev) ? u_o : u_kv;
}

static void plan_heads(const struct ntp_hparams *hp, const struct ntp_plan_params *p,
                       struct ntp_plan *pl)
{
    const int64_t u = head_unit(hp, p);
    int64_t kv_count[4096] = {0};
    const int64_t n_kv_counted = hp->n_head_kv < 4096 ? hp->n_head_kv : 4096;
    for (int d = 0; d < p->n_dev; d++) {
        struct ntp_shard *sh = &pl->shard[d];
        heads_of(hp, u, d, p->n_dev, sh);
        pl->attn_devices += sh->n_head > 0;
        for (int64_t k = sh->head_kv0; k < sh->head_kv0 + sh->n_head_kv && k < n_kv_counted; k++)
            kv_count[k]++;
    }
    pl->kv_replicas = 1;
    for (int64_t k = 0; k < n_kv_counted; k++)
        pl->kv_replicas = kv_count[k] > pl->kv_replicas ? (int)kv_count[k] : pl->kv_replicas;
}

static void add_note(struct ntp_plan *pl, const char *fmt, long long a, long long b, long long c)
{
    const size_t used = strlen(pl->note);
    if (used + 2 >= sizeof pl->note)
        return;
    snprintf(pl->note + used, sizeof pl->note - used, fmt, a, b, c);
}

void ntp__plan_stage_layers(int64_t n_layer, int stage, int n_stage, int64_t *layer0, int64_t *n)
{
    /* As even as whole blocks allow, the earlier stages taking one more. */
    const int64_t base = n_layer / n_stage, extra = n_layer % n_stage;
    *layer0 = stage * base + (stage < extra ? stage : extra);
    *n = base + (stage < extra);
}

ntp_status ntp__plan_make(const struct ntp_hparams *hp, const struct ntp_plan_params *p,
                          struct ntp_plan *out)
{
    memset(out, 0, sizeof *out);
    if (p->n_dev < 1 || p->n_dev > NTP_PLAN_MAX_DEV)
        return ntp__error(NTP_E_INVALID_ARG, "shard plan: %d devices (1..%d)", p->n_dev,
                          NTP_PLAN_MAX_DEV);
    if (p->moe_split != NTP_MOE_SPLIT_FEATURES && p->moe_split != NTP_MOE_SPLIT_EXPERTS)
        return ntp__error(NTP_E_INVALID_ARG,
                          "moe_split %d: expected NTP_MOE_SPLIT_FEATURES (0) or "
                          "NTP_MOE_SPLIT_EXPERTS (1)",
                          p->moe_split);
    if (hp->n_head < 1 || hp->n_head_kv < 1 || hp->n_head % hp->n_head_kv != 0)
        return ntp__error(NTP_E_FORMAT, "shard plan: %lld heads, %lld KV heads",
                          (long long)hp->n_head, (long long)hp->n_head_kv);
    out->n_dev = p->n_dev;
    plan_heads(hp, p, out);
    const int64_t fb = p->ffn_block > 0 ? p->ffn_block : 1;
    /* A mixture of experts (every block of one) cuts each expert's width the same way, or
       deals out whole experts. */
    const bool by_experts = hp->n_expert > 0 && p->moe_split == NTP_MOE_SPLIT_EXPERTS;
    const int64_t n_ff = hp->n_expert > 0 ? hp->n_ff_exp : hp->n_ff;
    out->moe_split = p->moe_split;
    for (int d = 0; d < p->n_dev; d++) {
        struct ntp_shard *sh = &out->shard[d];
        int64_t a, b;
        sh->layer0 = p->layer0;
        sh->n_layer = p->n_layer;
        if (by_experts) {
            share(hp->n_expert, 1, d, p->n_dev, &a, &b);
            sh->expert0 = a;
            sh->n_expert = b - a;
            sh->ff0 = 0;
            sh->n_ff = sh->n_expert > 0 ? n_ff : 0;
        } else {
            share(n_ff, fb, d, p->n_dev, &a, &b);
            sh->ff0 = a;
            sh->n_ff = b - a;
            sh->n_expert = hp->n_expert;
        }
        out->ffn_devices += sh->n_ff > 0;
        if (hp->n_expert == 0) {
            sh->dff0 = sh->ff0;
            sh->n_dff = sh->n_ff;
        } else { /* leading dense blocks and shared experts: by features */
            share(hp->n_layer_dense > 0 ? hp->n_ff : 0, fb, d, p->n_dev, &a, &b);
            sh->dff0 = a;
            sh->n_dff = b - a;
            share(ntp__hp_ff_shexp(hp), fb, d, p->n_dev, &a, &b);
            sh->sff0 = a;
            sh->n_sff = b - a;
        }
        if (p->head) {
            share(hp->n_vocab, 1, d, p->n_dev, &a, &b);
            sh->vocab0 = a;
            sh->n_vocab = b - a;
        }
    }
    if (out->kv_replicas > 1)
        add_note(out, "KV heads replicated on up to %lld devices (%lld KV heads, %lld devices); ",
                 out->kv_replicas, (long long)hp->n_head_kv, p->n_dev);
    if (out->attn_devices < p->n_dev)
        add_note(out,
                 "attention on %lld of %lld devices (attn_output cuts must fall on %lld-element "
                 "blocks and heads); ",
                 out->attn_devices, p->n_dev, (long long)(p->attn_block > 0 ? p->attn_block : 1));
    if (out->ffn_devices < p->n_dev && by_experts)
        add_note(out, "experts on %lld of %lld devices (%lld experts); ", out->ffn_devices,
                 p->n_dev, (long long)hp->n_expert);
    else if (out->ffn_devices < p->n_dev)
        add_note(out,
                 "FFN on %lld of %lld devices (ffn_down cuts must fall on %lld-element "
                 "blocks); ",
                 out->ffn_devices, p->n_dev, (long long)fb);
    const size_t len = strlen(out->note);
    if (len >= 2 && out->note[len - 2] == ';')
        out->note[len - 2] = '\0';
    return NTP_OK;
}

int ntp__plan_cut(enum ntp_tensor_id id, const struct ntp_shard *sh, const struct ntp_hparams *hp,
                  int64_t *start, int64_t *len)
{
    const int64_t hk = hp->head_dim_k, hv = hp->head_dim_v;
    const int64_t hq = ntp__hp_q_head(hp), ho = ntp__hp_o_head(hp);
    switch (id) {
    case NTP_T_ATTN_Q:
    case NTP_T_ATTN_Q_BIAS:
    case NTP_T_ATTN_Q_B:
        *start = sh->head0 * hq, *len = sh->n_head * hq;
        return id != NTP_T_ATTN_Q_BIAS;
    case NTP_T_ATTN_K_B: /* latent attention's up-projection: whole matrices of its heads */
    case NTP_T_ATTN_V_B:
        *start = sh->head0, *len = sh->n_head;
        return 2;
    case NTP_T_ATTN_K:
    case NTP_T_ATTN_K_BIAS:
        *start = sh->head_kv0 * hk, *len = sh->n_head_kv * hk;
        return id == NTP_T_ATTN_K;
    case NTP_T_ATTN_V:
    case NTP_T_ATTN_V_BIAS:
        *start = sh->head_kv0 * hv, *len = sh->n_head_kv * hv;
        return id == NTP_T_ATTN_V;
    case NTP_T_ATTN_OUTPUT: /* row-parallel: the input columns of its heads */
        *start = sh->head0 * ho, *len = sh->n_head * ho;
        return 0;
    case NTP_T_FFN_GATE:
    case NTP_T_FFN_UP:
        *start = sh->dff0, *len = sh->n_dff;
        return 1;
    case NTP_T_FFN_DOWN: /* row-parallel */
        *start = sh->dff0, *len = sh->n_dff;
        return 0;
    case NTP_T_FFN_GATE_SHEXP:
    case NTP_T_FFN_UP_SHEXP:
        *start = sh->sff0, *len = sh->n_sff;
        return 1;
    case NTP_T_FFN_DOWN_SHEXP:
        *start = sh->sff0, *len = sh->n_sff;
        return 0;
    case NTP_T_FFN_GATE_EXPS: /* every expert: the same slice of its width */
    case NTP_T_FFN_UP_EXPS:
        *start = sh->ff0, *len = sh->n_ff;
        return 1;
    case NTP_T_FFN_DOWN_EXPS:
        *start = sh->ff0, *len = sh->n_ff;
        return 0;
    case NTP_T_OUTPUT:
    case NTP_T_TOKEN_EMBD: /* the head, over the vocabulary */
        *start = sh->vocab0, *len = sh->n_vocab;
        return 1;
    default:
        return -1;
    }
}
