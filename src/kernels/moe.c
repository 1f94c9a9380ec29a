/*
 * moe.c - the mixture-of-experts pieces of the kernels: routing one token
 * and the grouped expert product. The product cuts the rows of the chosen
 * experts into runs and hands each run to the kernel table's ordinary
 * product, so it needs no kernels of its own per ISA.
 */
#include "kernels/kernels.h"

#include "kernels/packed.h"

#include <math.h>

void ntp__moe_route(const float *logits, int64_t n_expert, int64_t n_used, int32_t *sel, float *w)
{
    /* Insertion into a sorted list of n_used: the experts are at most a few hundred. */
    int64_t n = 0;
    for (int64_t e = 0; e < n_expert; e++) {
        const float v = logits[e];
        if (n == n_used && !(v > logits[sel[n - 1]]))
            continue; /* not above the smallest chosen (a tie keeps the lower index) */
        int64_t i = n < n_used ? n++ : n - 1;
        for (; i > 0 && v > logits[sel[i - 1]]; i--)
            sel[i] = sel[i - 1];
        sel[i] = (int32_t)e;
    }
    const float top = logits[sel[0]];
    float sum = 0;
    for (int64_t i = 0; i < n_used; i++)
        sum += w[i] = expf(logits[sel[i]] - top);
    for (int64_t i = 0; i < n_used; i++)
        w[i] /= sum;
}

/* The top n of score[0, n_all) into sel, best first (a tie keeps the lower index). */
static void top_n(const float *score, int64_t n_all, int64_t n, int32_t *sel)
{
    int64_t k = 0;
    for (int64_t e = 0; e < n_all; e++) {
        const float v = score[e];
        if (k == n && !(v > score[sel[k - 1]]))
            continue;
        int64_t i = k < n ? k++ : k - 1;
        for (; i > 0 && v > score[sel[i - 1]]; i--)
            sel[i] = sel[i - 1];
        sel[i] = (int32_t)e;
    }
}

void ntp__moe_route_gated(const float *logits, int64_t n_expert, int64_t n_used,
                          const struct ntp_moe_gating *g, const float *bias, float *scratch,
                          int32_t *sel, float *w)
{
    if (g->gate == NTP_MOE_SOFTMAX_TOPK) {
        ntp__moe_route(logits, n_expert, n_used, sel, w);
        return;
    }
    float *prob = scratch, *score = scratch + n_expert;
    if (g->gate == NTP_MOE_SIGMOID) {
        for (int64_t e = 0; e < n_expert; e++)
            prob[e] = 1.0f / (1.0f + expf(-logits[e]));
    } else {
        float top = logits[0], sum = 0;
        for (int64_t e = 1; e < n_expert; e++)
            top = logits[e] > top ? logits[e] : top;
        for (int64_t e = 0; e < n_expert; e++)
            sum += prob[e] = expf(logits[e] - top);
        for (int64_t e = 0; e < n_expert; e++)
            prob[e] /= sum;
    }
    for (int64_t e = 0; e < n_expert; e++) /* the bias picks experts but weighs nothing */
        score[e] = prob[e] + (bias ? bias[e] : 0.0f);
    if (g->n_group > 1) { /* only the best groups' experts may be chosen */
        const int64_t per = n_expert / g->n_group;
        float gs[NTP_MAX_EXPERTS];
        int32_t best[NTP_MAX_EXPERTS], two[2];
        bool keep[NTP_MAX_EXPERTS] = {false};
        for (int64_t k = 0; k < g->n_group; k++) { /* a group scores its best two */
            const int64_t n2 = per < 2 ? per : 2;
            top_n(score + k * per, per, n2, two);
            gs[k] = 0;
            for (int64_t i = 0; i < n2; i++)
                gs[k] += score[k * per + two[i]];
        }
        top_n(gs, g->n_group, g->n_group_used, best);
        for (int64_t i = 0; i < g->n_group_used; i++)
            keep[best[i]] = true;
        for (int64_t e = 0; e < n_expert; e++)
            score[e] = keep[e / per] ? score[e] : -INFINITY;
    }
    top_n(score, n_expert, n_used, sel);
    float sum = 0;
    for (int64_t i = 0; i < n_used; i++)
        sum += w[i] = prob[sel[i]];
    const float div = g->norm ? (sum > 6.103515625e-5f ? sum : 6.103515625e-5f) : 1.0f;
    for (int64_t i = 0; i < n_used; i++)
        w[i] = w[i] / div * g->scale;
}

/* Rows per run: a packed group (kernels/packed.h), and enough for the tile engines. */
#define RUN_ROWS NTP_PACK_ROWS

/*
 * The work of group g: runs of RUN_ROWS rows, each costing its tokens plus
 * one (the row bytes are read once however many tokens there are).
 */
static int64_t runs_of(const struct ntp_moe_matmul_args *a)
{
    return (a->rows + RUN_ROWS - 1) / RUN_ROWS;
}

/*
 * The first run (group *g, run *r) whose start lies at or after cost c: the
 * same function gives both ends of every thread's share, so shares neither
 * overlap nor leave gaps.
 */
static void run_at(const struct ntp_moe_matmul_args *a, int64_t c, int64_t *g, int64_t *r)
{
    const int64_t nr = runs_of(a);
    int64_t acc = 0;
    for (*g = 0; *g < a->n_group; (*g)++) {
        const int64_t per = a->group[*g].n_tok + 1, cost = nr * per;
        if (c < acc + cost) {
            /* the first run starting at or after c (run 0 when c lies before the group) */
            *r = c <= acc ? 0 : (c - acc + per - 1) / per;
            if (*r < nr)
                return;
        }
        acc += cost;
    }
    *r = 0; /* past the end */
}

ntp_status ntp__kernels_matmul_experts(const struct ntp_kernels *k,
                                       const struct ntp_moe_matmul_args *a)
{
    const int64_t nr = runs_of(a);
    int64_t total = 0;
    for (int64_t g = 0; g < a->n_group; g++)
        total += nr * (a->group[g].n_tok + 1);
    int64_t g0, r0, g1, r1;
    run_at(a, total * a->ith / a->nth, &g0, &r0);
    run_at(a, total * (a->ith + 1) / a->nth, &g1, &r1);
    for (int64_t g = g0; g < a->n_group && (g < g1 || (g == g1 && r0 < r1)); g++, r0 = 0) {
        const struct ntp_moe_group *gr = &a->group[g];
        const int64_t end = g == g1 ? r1 : nr; /* runs [r0, end) of this group */
        const int64_t row0 = r0 * RUN_ROWS,
                      row1 = end * RUN_ROWS < a->rows ? end * RUN_ROWS : a->rows;
        if (row1 <= row0)
            continue;
        const struct ntp_matmul_args m = {
            .wtype = a->wtype,
            .w = (const uint8_t *)a->w + (size_t)(gr->expert * a->rows + row0) * a->w_stride,
            .w_stride = a->w_stride,
            .n_rows = row1 - row0,
            .k = a->k,
            .x = (const uint8_t *)a->x + (size_t)gr->slot0 * a->x_stride,
            .x_stride = a->x_stride,
            .n_tok = gr->n_tok,
            .y = a->y + gr->slot0 * a->ldy + row0,
            .ldy = a->ldy,
            .ith = 0,
            .nth = 1,
            .layout = a->layout,
        };
        ntp_status s = ntp__kernels_matmul(k, &m);
        if (s != NTP_OK)
            return s;
    }
    return NTP_OK;
}
