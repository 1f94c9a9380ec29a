/*
 * tp_tax.c - the cost of tensor parallelism on one node: the same model with
 * --tp 1 (T threads) and --tp 2 (T/2 threads each), measured alternately in
 * one run so both see the same machine load. Generation (tg: one token at a
 * time) and prompt processing (pp: one batch) speeds, their ratios, and the
 * share of a decode step the first device spends in its all-reduces
 * (waiting for the other device included).
 *
 *     tp_tax MODEL [--threads T] [--tp N] [--rounds R] [--pp P] [--tg G]
 *
 * Defaults: T = 2, N = 2, R = 5 rounds of (pp P = 32 tokens, tg G = 16 tokens)
 * per configuration; medians over the rounds are printed.
 */
#include "ntp.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct cfg {
    ntp_model *m;
    ntp_context *c;
    double *pp, *tg, *ar; /* [rounds] tok/s, tok/s, all-reduce share of tg */
};

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp);
    return v[n / 2];
}

static int load(const char *path, int tp, int threads, int n_ctx, struct cfg *k)
{
    ntp_model_params mp = ntp_model_default_params();
    mp.tp = tp;
    mp.n_threads = threads;
    ntp_context_params cp = ntp_context_default_params();
    cp.n_ctx = n_ctx;
    if (ntp_model_load(path, mp, &k->m) != NTP_OK || ntp_context_new(k->m, cp, &k->c) != NTP_OK) {
        fprintf(stderr, "tp_tax: %s\n", ntp_last_error());
        return 1;
    }
    fprintf(stderr, "tp_tax: tp %d: %s\n", tp, ntp_model_layout_desc(k->m));
    return 0;
}

/* One round: a pp-token prompt as one batch, then tg single-token steps. */
static int round_once(struct cfg *k, int r, int pp, int tg)
{
    int32_t toks[512];
    const int32_t nv = ntp_model_n_vocab(k->m);
    for (int i = 0; i < pp; i++)
        toks[i] = (int32_t)((i * 7919 + r) % nv);
    ntp_context_reset(k->c);
    double t0 = now();
    if (ntp_decode(k->c, toks, pp, false) != NTP_OK)
        return 1;
    k->pp[r] = pp / (now() - t0);
    ntp_context_reset_stats(k->c);
    t0 = now();
    int32_t t = 1;
    for (int i = 0; i < tg; i++)
        if (ntp_decode(k->c, &t, 1, false) != NTP_OK)
            return 1;
    k->tg[r] = tg / (now() - t0);
    ntp_context_stats st;
    ntp_context_get_stats(k->c, &st);
    k->ar[r] = st.t_decode > 0 ? st.t_allreduce / st.t_decode : 0;
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: tp_tax MODEL [--threads T] [--tp N] [--rounds R] [--pp P] "
                        "[--tg G]\n");
        return 2;
    }
    int threads = 2, tp = 2, rounds = 5, pp = 32, tg = 16;
    for (int i = 2; i + 1 < argc; i += 2) {
        const int v = atoi(argv[i + 1]);
        if (strcmp(argv[i], "--threads") == 0)
            threads = v;
        else if (strcmp(argv[i], "--tp") == 0)
            tp = v;
        else if (strcmp(argv[i], "--rounds") == 0)
            rounds = v;
        else if (strcmp(argv[i], "--pp") == 0)
            pp = v;
        else if (strcmp(argv[i], "--tg") == 0)
            tg = v;
    }
    if (rounds < 1 || pp < 1 || pp > 512 || tg < 1 || threads < 1 || tp < 1)
        return 2;
    struct cfg k[2];
    memset(k, 0, sizeof k);
    for (int j = 0; j < 2; j++) {
        k[j].pp = calloc((size_t)rounds, sizeof(double));
        k[j].tg = calloc((size_t)rounds, sizeof(double));
        k[j].ar = calloc((size_t)rounds, sizeof(double));
        if (load(argv[1], j ? tp : 1, threads, pp + tg + 8, &k[j]) != 0)
            return 1;
    }
    for (int r = 0; r < rounds; r++)
        for (int j = 0; j < 2; j++) /* alternate: both configurations see the same load */
            if (round_once(&k[j], r, pp, tg) != 0) {
                fprintf(stderr, "tp_tax: %s\n", ntp_last_error());
                return 1;
            }
    const double pp1 = median(k[0].pp, rounds), tg1 = median(k[0].tg, rounds);
    const double ppn = median(k[1].pp, rounds), tgn = median(k[1].tg, rounds);
    printf("tp_tax threads %d: tp 1 pp%d %.2f tok/s tg%d %.2f tok/s | tp %d pp %.2f tok/s tg "
           "%.2f tok/s | ratio pp %.3f tg %.3f | all-reduce share of a tp %d decode step "
           "%.1f%% (median of %d rounds)\n",
           threads, pp, pp1, tg, tg1, tp, ppn, tgn, ppn / pp1, tgn / tg1, tp,
           100 * median(k[1].ar, rounds), rounds);
    for (int j = 0; j < 2; j++) {
        ntp_context_free(k[j].c);
        ntp_model_free(k[j].m);
        free(k[j].pp);
        free(k[j].tg);
        free(k[j].ar);
    }
    return 0;
}
