/*
 * sampler.c - repetition penalty, top-k, top-p, min-p, temperature and a
 * seeded draw, in llama.cpp's order (see sampler.h).
 *
 * Speed matters with 150k-token vocabularies, so nothing sorts the whole
 * vocabulary: top-k is a quickselect, and top-p sorts the survivors in
 * growing chunks only until the requested mass is reached. min-p is applied
 * before that sort (an unsorted partition), which gives the same set as
 * applying it after top-p: both keep a prefix of the descending order and the
 * most likely token always survives, so the result is the shorter prefix.
 */
#include "sampler/sampler.h"

#include "core/core.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* One candidate token: its (penalized) logit and its id. */
struct cand {
    float logit;
    int32_t id;
};

struct ntp_sampler {
    struct ntp_sampler_params params; /* as given, seed replaced by the one in use */
    int32_t n_vocab;                  /* logits per call */
    float *logit;                     /* [n_vocab] owned scratch: the penalized logits */
    struct cand *cand;                /* [n_vocab] owned scratch: the candidates still in play */
    uint8_t *seen;                    /* [n_vocab] owned; 1 while a token's penalty is applied */
    int32_t *hist;                    /* [repeat_last_n] owned ring of accepted tokens, or NULL */
    int32_t hist_len;                 /* valid entries in hist */
    int32_t hist_pos;                 /* next slot to write in hist */
    uint64_t rng[4];                  /* xoshiro256** state */
};

struct ntp_sampler_params ntp__sampler_default_params(void)
{
    struct ntp_sampler_params p = {
        .temperature = 0.8f,
        .top_k = 40,
        .top_p = 0.95f,
        .min_p = 0.05f,
        .repeat_penalty = 1.0f,
        .repeat_last_n = 64,
        .seed = NTP_SAMPLER_SEED_RANDOM,
    };
    return p;
}

/* ------------------------------------------------------------------ PRNG */

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static uint64_t xoshiro_next(uint64_t st[4])
{
    uint64_t result = rotl(st[1] * 5, 7) * 9;
    uint64_t t = st[1] << 17;
    st[2] ^= st[0];
    st[3] ^= st[1];
    st[1] ^= st[2];
    st[0] ^= st[3];
    st[2] ^= t;
    st[3] = rotl(st[3], 45);
    return result;
}

/* Uniform in [0, 1) with 53 random bits. */
static double rng_uniform(uint64_t st[4])
{
    return (double)(xoshiro_next(st) >> 11) * 0x1.0p-53;
}

static void rng_seed(uint64_t st[4], uint32_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++)
        st[i] = splitmix64(&x);
}

/* A seed that differs between runs, for NTP_SAMPLER_SEED_RANDOM. */
static uint32_t clock_seed(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t x =
        (uint64_t)ts.tv_sec * 1000000007ull ^ (uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 32);
    uint32_t seed = (uint32_t)splitmix64(&x);
    return seed == NTP_SAMPLER_SEED_RANDOM ? 0 : seed;
}

/* ------------------------------------------------------------- lifecycle */

static ntp_status check_params(const struct ntp_sampler_params *p, int32_t n_vocab)
{
    if (n_vocab < 1)
        return ntp__error(NTP_E_INVALID_ARG, "sampler: n_vocab %d, expected >= 1", (int)n_vocab);
    if (isnan(p->temperature) || isnan(p->top_p) || isnan(p->min_p))
        return ntp__error(NTP_E_INVALID_ARG,
                          "sampler: temperature, top_p and min_p must not be NaN");
    if (!(p->repeat_penalty > 0.0f) || isinf(p->repeat_penalty))
        return ntp__error(NTP_E_INVALID_ARG,
                          "sampler: repeat_penalty %g, expected a finite value > 0 (1 = off)",
                          (double)p->repeat_penalty);
    if (p->repeat_last_n < 0)
        return ntp__error(NTP_E_INVALID_ARG, "sampler: repeat_last_n %d, expected >= 0 (0 = off)",
                          (int)p->repeat_last_n);
    return NTP_OK;
}

ntp_status ntp__sampler_new(const struct ntp_sampler_params *params, int32_t n_vocab,
                            struct ntp_sampler **out)
{
    if (!out || !params)
        return ntp__error(NTP_E_INVALID_ARG, "sampler: NULL argument");
    *out = NULL;
    ntp_status st = check_params(params, n_vocab);
    if (st != NTP_OK)
        return st;
    struct ntp_sampler *s = calloc(1, sizeof *s);
    if (!s)
        goto fail;
    s->params = *params;
    s->n_vocab = n_vocab;
    s->logit = malloc((size_t)n_vocab * sizeof *s->logit);
    s->cand = malloc((size_t)n_vocab * sizeof *s->cand);
    if (!s->logit || !s->cand)
        goto fail;
    s->seen = calloc((size_t)n_vocab, 1);
    if (!s->seen)
        goto fail;
    if (params->repeat_last_n > 0) {
        s->hist = malloc((size_t)params->repeat_last_n * sizeof *s->hist);
        if (!s->hist)
            goto fail;
    }
    if (s->params.seed == NTP_SAMPLER_SEED_RANDOM)
        s->params.seed = clock_seed();
    ntp__sampler_reset(s);
    *out = s;
    return NTP_OK;
fail:
    ntp__sampler_free(s);
    return ntp__error(NTP_E_NOMEM, "sampler: cannot allocate scratch for %d tokens", (int)n_vocab);
}

void ntp__sampler_free(struct ntp_sampler *s)
{
    if (!s)
        return;
    free(s->logit);
    free(s->cand);
    free(s->seen);
    free(s->hist);
    free(s);
}

void ntp__sampler_reset(struct ntp_sampler *s)
{
    s->hist_len = 0;
    s->hist_pos = 0;
    rng_seed(s->rng, s->params.seed);
}

uint32_t ntp__sampler_seed(const struct ntp_sampler *s)
{
    return s->params.seed;
}

ntp_status ntp__sampler_accept(struct ntp_sampler *s, int32_t token)
{
    if (token < 0 || token >= s->n_vocab)
        return ntp__error(NTP_E_INVALID_ARG, "sampler: token %d outside the vocabulary [0, %d)",
                          (int)token, (int)s->n_vocab);
    int32_t cap = s->params.repeat_last_n;
    if (cap == 0)
        return NTP_OK;
    s->hist[s->hist_pos] = token;
    s->hist_pos = (s->hist_pos + 1) % cap;
    if (s->hist_len < cap)
        s->hist_len++;
    return NTP_OK;
}

/* ------------------------------------------------------------ candidates */

/* Strict total order: larger logit first, then smaller id (so ties are deterministic). */
static bool cand_before(struct cand a, struct cand b)
{
    return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
}

static int cand_cmp(const void *pa, const void *pb)
{
    const struct cand *a = pa, *b = pb;
    return cand_before(*a, *b) ? -1 : cand_before(*b, *a) ? 1 : 0;
}

static void cand_swap(struct cand *c, size_t i, size_t j)
{
    struct cand t = c[i];
    c[i] = c[j];
    c[j] = t;
}

/* Index of the median of c[i], c[j], c[k] under cand_before. */
static size_t median3(const struct cand *c, size_t i, size_t j, size_t k)
{
    if (cand_before(c[i], c[j]))
        return cand_before(c[j], c[k]) ? j : cand_before(c[i], c[k]) ? k : i;
    return cand_before(c[i], c[k]) ? i : cand_before(c[j], c[k]) ? k : j;
}

/*
 * Quickselect: reorder c[0, n) so that c[0, k) holds the k first candidates
 * in cand_before order (themselves unsorted). Expected O(n).
 */
static void select_top(struct cand *c, size_t n, size_t k)
{
    size_t lo = 0, hi = n;
    while (k > lo && k < hi && hi - lo > 1) {
        cand_swap(c, median3(c, lo, lo + (hi - lo) / 2, hi - 1), hi - 1);
        struct cand pivot = c[hi - 1];
        size_t store = lo;
        for (size_t i = lo; i + 1 < hi; i++)
            if (cand_before(c[i], pivot))
                cand_swap(c, i, store++);
        cand_swap(c, store, hi - 1);
        /* Now c[lo, store) come before the pivot at store, c(store, hi) after it. */
        if (k <= store)
            hi = store;
        else
            lo = store + 1;
    }
}

/*
 * Copy logits into the scratch row, rejecting NaN and +inf, and apply the
 * repetition penalty once per distinct token of the history.
 */
static ntp_status load_logits(struct ntp_sampler *s, const float *logits)
{
    /* One branch-free pass (NaN and +inf both fail `< INFINITY`); the index only on failure. */
    int bad = 0;
    for (int32_t i = 0; i < s->n_vocab; i++) {
        s->logit[i] = logits[i];
        bad |= !(logits[i] < INFINITY);
    }
    for (int32_t i = 0; bad && i < s->n_vocab; i++)
        if (!(logits[i] < INFINITY))
            return ntp__error(NTP_E_INVALID_ARG, "sampler: logits[%d] is %s, expected a number",
                              (int)i, isnan(logits[i]) ? "NaN" : "+inf");
    float pen = s->params.repeat_penalty;
    if (pen == 1.0f || s->hist_len == 0)
        return NTP_OK;
    for (int32_t h = 0; h < s->hist_len; h++) {
        int32_t t = s->hist[h];
        if (s->seen[t])
            continue;
        s->seen[t] = 1;
        s->logit[t] = s->logit[t] > 0.0f ? s->logit[t] / pen : s->logit[t] * pen;
    }
    for (int32_t h = 0; h < s->hist_len; h++)
        s->seen[s->hist[h]] = 0;
    return NTP_OK;
}

/* Argmax; the lowest id wins a tie. */
static int32_t argmax(const float *l, int32_t n)
{
    int32_t best = 0;
    for (int32_t i = 1; i < n; i++)
        if (l[i] > l[best])
            best = i;
    return best;
}

/* Restore the min-heap property (root = the candidate that comes last) below slot i. */
static void heap_sift_down(struct cand *h, size_t k, size_t i)
{
    for (;;) {
        size_t worst = i, a = 2 * i + 1, b = a + 1;
        if (a < k && cand_before(h[worst], h[a]))
            worst = a;
        if (b < k && cand_before(h[worst], h[b]))
            worst = b;
        if (worst == i)
            return;
        cand_swap(h, i, worst);
        i = worst;
    }
}

/*
 * The k first tokens of l[0, n) in cand_before order, into c[0, k) (unsorted).
 * A heap of the best k seen so far: on typical logits almost every token is
 * rejected by one comparison with the root, so this is one pass over l.
 */
static void heap_top_k(const float *l, int32_t n, struct cand *c, size_t k)
{
    for (size_t i = 0; i < k; i++)
        c[i] = (struct cand){l[i], (int32_t)i};
    for (size_t i = k / 2; i-- > 0;)
        heap_sift_down(c, k, i);
    for (int32_t i = (int32_t)k; i < n; i++) {
        /* A later id never wins a tie, so a strict comparison of logits suffices. */
        if (l[i] > c[0].logit) {
            c[0] = (struct cand){l[i], i};
            heap_sift_down(c, k, 0);
        }
    }
}

/* Keep (moved to the front, unsorted) the candidates with p >= min_p * p_max; returns how many. */
static size_t apply_min_p(struct cand *c, size_t n, float max_logit, float min_p)
{
    if (min_p <= 0.0f)
        return n;
    float min_logit = max_logit + logf(min_p);
    size_t kept = 0;
    for (size_t i = 0; i < n; i++)
        if (c[i].logit >= min_logit || c[i].logit == max_logit) /* min_p > 1 keeps the max */
            cand_swap(c, i, kept++);
    return kept;
}

/*
 * Nucleus cut over candidates c[0, n) whose probabilities are
 * exp(logit - max_logit) / z. Sorts in growing chunks and returns the length
 * of the shortest descending prefix whose mass reaches top_p (at least 1).
 */
static size_t apply_top_p(struct cand *c, size_t n, float max_logit, double z, float top_p)
{
    if (top_p >= 1.0f)
        return n;
    double cum = 0.0;
    size_t done = 0, chunk = 64;
    while (done < n) {
        size_t want = n - done < chunk ? n - done : chunk;
        if (want < n - done)
            select_top(c + done, n - done, want);
        qsort(c + done, want, sizeof *c, cand_cmp);
        for (size_t i = done; i < done + want; i++) {
            cum += expf(c[i].logit - max_logit) / z;
            if (cum >= top_p)
                return i + 1;
        }
        done += want;
        chunk *= 2;
    }
    return n;
}

/* Draw one of c[0, n) with probability proportional to exp((logit - max_logit) / temp). */
static int32_t draw(struct ntp_sampler *s, const struct cand *c, size_t n, float max_logit)
{
    double inv_t = 1.0 / s->params.temperature, sum = 0.0;
    for (size_t i = 0; i < n; i++)
        sum += exp(((double)c[i].logit - max_logit) * inv_t);
    double u = rng_uniform(s->rng) * sum, cum = 0.0;
    size_t last = 0;
    for (size_t i = 0; i < n; i++) {
        double w = exp(((double)c[i].logit - max_logit) * inv_t);
        if (w <= 0.0)
            continue;
        cum += w;
        last = i;
        if (u < cum)
            return c[i].id;
    }
    return c[last].id; /* rounding left u just above the final sum */
}

ntp_status ntp__sampler_sample(struct ntp_sampler *s, const float *logits, int32_t *out)
{
    if (!s || !logits || !out)
        return ntp__error(NTP_E_INVALID_ARG, "sampler: NULL argument");
    ntp_status st = load_logits(s, logits);
    if (st != NTP_OK)
        return st;
    if (s->params.temperature <= 0.0f) {
        *out = argmax(s->logit, s->n_vocab);
        return NTP_OK;
    }
    size_t n = (size_t)s->n_vocab;
    if (s->params.top_k > 0 && (size_t)s->params.top_k < n) {
        n = (size_t)s->params.top_k;
        heap_top_k(s->logit, s->n_vocab, s->cand, n);
    } else {
        for (size_t i = 0; i < n; i++)
            s->cand[i] = (struct cand){s->logit[i], (int32_t)i};
    }
    float max_logit = -INFINITY;
    for (size_t i = 0; i < n; i++)
        max_logit = s->cand[i].logit > max_logit ? s->cand[i].logit : max_logit;
    if (isinf(max_logit))
        return ntp__error(NTP_E_INVALID_ARG, "sampler: every candidate logit is -inf");
    /* top-p measures mass against the whole top-k set, so sum it before min-p trims it. */
    double z = 0.0;
    if (s->params.top_p < 1.0f)
        for (size_t i = 0; i < n; i++)
            z += expf(s->cand[i].logit - max_logit);
    n = apply_min_p(s->cand, n, max_logit, s->params.min_p);
    n = apply_top_p(s->cand, n, max_logit, z, s->params.top_p);
    *out = draw(s, s->cand, n, max_logit);
    return NTP_OK;
}
