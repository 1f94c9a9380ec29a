/* test_sampler.c - greedy, seeding, the distribution drawn, each filter, penalty, bad input. */
#include "core/core.h"
#include "sampler/sampler.h"
#include "test.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

/* A sampler with every filter off, so only the temperature shapes the distribution. */
static struct ntp_sampler_params plain_params(float temp, uint32_t seed)
{
    struct ntp_sampler_params p = ntp__sampler_default_params();
    p.temperature = temp;
    p.top_k = 0;
    p.top_p = 1.0f;
    p.min_p = 0.0f;
    p.seed = seed;
    return p;
}

static int32_t sample1(struct ntp_sampler *s, const float *logits)
{
    int32_t tok = -1;
    CHECK_OK(ntp__sampler_sample(s, logits, &tok));
    return tok;
}

/* Small deterministic pseudo-random logits in [-8, 8). */
static void fill_logits(float *l, int n, uint32_t seed)
{
    uint32_t x = seed * 2654435761u + 1;
    for (int i = 0; i < n; i++) {
        x = x * 1664525u + 1013904223u;
        l[i] = (float)(x >> 8) / (float)(1u << 24) * 16.0f - 8.0f;
    }
}

static void test_defaults(void)
{
    struct ntp_sampler_params p = ntp__sampler_default_params();
    CHECK(p.temperature == 0.8f && p.top_k == 40 && p.top_p == 0.95f && p.min_p == 0.05f);
    CHECK(p.repeat_penalty == 1.0f && p.repeat_last_n == 64);
    CHECK(p.seed == NTP_SAMPLER_SEED_RANDOM);
    struct ntp_sampler *s = NULL;
    CHECK_OK(ntp__sampler_new(&p, 10, &s));
    CHECK(s && ntp__sampler_seed(s) != NTP_SAMPLER_SEED_RANDOM);
    ntp__sampler_free(s);
    ntp__sampler_free(NULL);
    CHECK_STATUS(ntp__sampler_new(&p, 0, &s), NTP_E_INVALID_ARG);
    CHECK(s == NULL);
    p.repeat_last_n = -1;
    CHECK_STATUS(ntp__sampler_new(&p, 10, &s), NTP_E_INVALID_ARG);
}

static void test_greedy(void)
{
    enum { N = 1000 };
    static float l[N];
    fill_logits(l, N, 7);
    int32_t want = 0;
    for (int i = 1; i < N; i++)
        if (l[i] > l[want])
            want = i;
    struct ntp_sampler_params p = ntp__sampler_default_params();
    p.temperature = 0.0f;
    struct ntp_sampler *s = NULL;
    CHECK_OK(ntp__sampler_new(&p, N, &s));
    CHECK(sample1(s, l) == want);
    /* Ties go to the lowest id. */
    l[5] = l[want] + 1.0f;
    l[900] = l[5];
    CHECK(sample1(s, l) == 5);
    ntp__sampler_free(s);

    /* top-k 1 at a high temperature is greedy too, ties included. */
    p = plain_params(5.0f, 1);
    p.top_k = 1;
    CHECK_OK(ntp__sampler_new(&p, N, &s));
    for (int r = 0; r < 20; r++)
        CHECK(sample1(s, l) == 5);
    ntp__sampler_free(s);
}

static void test_seeds(void)
{
    enum { N = 50, T = 64 };
    float l[N];
    fill_logits(l, N, 3);
    for (int i = 0; i < N; i++)
        l[i] *= 0.3f; /* flat enough that draws vary */
    int32_t a[T], b[T], c[T], d[T];
    struct ntp_sampler_params p = plain_params(1.0f, 1234);
    struct ntp_sampler *s1 = NULL, *s2 = NULL, *s3 = NULL;
    CHECK_OK(ntp__sampler_new(&p, N, &s1));
    CHECK_OK(ntp__sampler_new(&p, N, &s2));
    p.seed = 1235;
    CHECK_OK(ntp__sampler_new(&p, N, &s3));
    for (int t = 0; t < T; t++) {
        a[t] = sample1(s1, l);
        b[t] = sample1(s2, l);
        c[t] = sample1(s3, l);
    }
    CHECK(memcmp(a, b, sizeof a) == 0);
    CHECK(memcmp(a, c, sizeof a) != 0);
    /* reset replays the same draws. */
    ntp__sampler_reset(s1);
    for (int t = 0; t < T; t++)
        d[t] = sample1(s1, l);
    CHECK(memcmp(a, d, sizeof a) == 0);
    /*
     * Pinned sequence: the PRNG is part of the contract (same seed, same
     * tokens on every machine), so a change to it must be deliberate.
     */
    const int32_t pinned[12] = {3, 39, 29, 46, 5, 46, 18, 8, 22, 29, 18, 9};
    CHECK(memcmp(a, pinned, sizeof pinned) == 0);
    ntp__sampler_free(s1);
    ntp__sampler_free(s2);
    ntp__sampler_free(s3);
}

/*
 * Over many draws the counts must follow softmax(logits / T). Pearson's
 * chi-square with 7 degrees of freedom stays under 24.3 with probability
 * 0.999; the seed is fixed, so the test cannot flake.
 */
static void test_distribution(void)
{
    enum { N = 8, DRAWS = 200000 };
    const float l[N] = {1.0f, 2.0f, 0.5f, -1.0f, 3.0f, 2.5f, 0.0f, 1.5f};
    const float temps[] = {0.7f, 1.0f, 1.6f};
    for (size_t ti = 0; ti < sizeof temps / sizeof temps[0]; ti++) {
        struct ntp_sampler_params p = plain_params(temps[ti], 42 + (uint32_t)ti);
        struct ntp_sampler *s = NULL;
        CHECK_OK(ntp__sampler_new(&p, N, &s));
        long count[N] = {0};
        for (int d = 0; d < DRAWS; d++) {
            int32_t t = sample1(s, l);
            if (t >= 0 && t < N)
                count[t]++;
        }
        double z = 0, prob[N];
        for (int i = 0; i < N; i++)
            z += prob[i] = exp(l[i] / temps[ti]);
        double chi2 = 0;
        for (int i = 0; i < N; i++) {
            double e = prob[i] / z * DRAWS;
            chi2 += (count[i] - e) * (count[i] - e) / e;
        }
        if (!(chi2 < 24.3))
            fprintf(stderr, "T=%g: chi-square %g\n", (double)temps[ti], chi2);
        CHECK(chi2 < 24.3);
        ntp__sampler_free(s);
    }
}

/* Which tokens a sampler can produce, found by drawing many times at a high temperature. */
static unsigned reachable(struct ntp_sampler_params p, const float *l, int n)
{
    struct ntp_sampler *s = NULL;
    unsigned mask = 0;
    CHECK_OK(ntp__sampler_new(&p, n, &s));
    for (int d = 0; s && d < 20000; d++)
        mask |= 1u << sample1(s, l);
    ntp__sampler_free(s);
    return mask;
}

static void test_filters(void)
{
    /* Probabilities 0.4, 0.3, 0.15, 0.1, 0.05 (ids shuffled), from their logs. */
    const double prob[5] = {0.1, 0.4, 0.05, 0.3, 0.15};
    float l[5];
    for (int i = 0; i < 5; i++)
        l[i] = (float)log(prob[i]);
    struct ntp_sampler_params p = plain_params(1.0f, 9);

    p.top_p = 0.65f; /* 0.4 + 0.3 = 0.7 is the first prefix reaching 0.65 */
    CHECK(reachable(p, l, 5) == ((1u << 1) | (1u << 3)));
    p.top_p = 0.75f; /* needs 0.4 + 0.3 + 0.15 */
    CHECK(reachable(p, l, 5) == ((1u << 1) | (1u << 3) | (1u << 4)));
    p.top_p = 0.1f; /* at least one token */
    CHECK(reachable(p, l, 5) == (1u << 1));

    p.top_p = 1.0f;
    p.min_p = 0.3f; /* keeps p >= 0.12: 0.4, 0.3, 0.15 */
    CHECK(reachable(p, l, 5) == ((1u << 1) | (1u << 3) | (1u << 4)));
    p.min_p = 0.2f; /* keeps p >= 0.08: also 0.1 */
    CHECK(reachable(p, l, 5) == ((1u << 1) | (1u << 3) | (1u << 4) | (1u << 0)));

    /* top-k 2 then top-p 0.6: the top-k pair renormalizes to 0.571/0.429, so both stay. */
    p.min_p = 0.0f;
    p.top_k = 2;
    p.top_p = 0.6f;
    CHECK(reachable(p, l, 5) == ((1u << 1) | (1u << 3)));
    /* Without top-k, 0.4 + 0.3 reaches 0.6 as well; with 0.35 only the first stays. */
    p.top_k = 0;
    p.top_p = 0.35f;
    CHECK(reachable(p, l, 5) == (1u << 1));

    /* top-k 3 alone: exactly the three largest. */
    p.top_k = 3;
    p.top_p = 1.0f;
    CHECK(reachable(p, l, 5) == ((1u << 1) | (1u << 3) | (1u << 4)));

    /* -inf logits are never drawn. */
    float m[5] = {0.0f, -INFINITY, 0.0f, -INFINITY, 0.0f};
    p = plain_params(1.0f, 2);
    CHECK(reachable(p, m, 5) == ((1u << 0) | (1u << 2) | (1u << 4)));
}

/* Sampling from a large vocabulary with all filters agrees with a full-sort reference. */
static int cmp_desc(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

static void test_large_vocab(void)
{
    enum { N = 151936 };
    static float l[N], sorted[N];
    fill_logits(l, N, 11);
    memcpy(sorted, l, sizeof l);
    qsort(sorted, N, sizeof *sorted, cmp_desc);
    struct ntp_sampler_params p = ntp__sampler_default_params();
    p.seed = 5;
    p.top_k = 0;
    p.min_p = 0.0f;
    p.top_p = 0.5f;
    /* Reference cut: probabilities over the whole vocabulary. */
    double z = 0, cum = 0;
    for (int i = 0; i < N; i++)
        z += exp((double)sorted[i] - sorted[0]);
    int cut = 0;
    while (cut < N && cum < p.top_p)
        cum += exp((double)sorted[cut++] - sorted[0]) / z;
    float threshold = sorted[cut - 1];
    struct ntp_sampler *s = NULL;
    CHECK_OK(ntp__sampler_new(&p, N, &s));
    for (int d = 0; s && d < 30; d++) {
        int32_t t = sample1(s, l);
        CHECK(t >= 0 && t < N && l[t] >= threshold);
    }
    ntp__sampler_free(s);
    /* Default chain (top-k 40): always one of the 40 largest. */
    p = ntp__sampler_default_params();
    p.seed = 6;
    p.temperature = 3.0f;
    p.min_p = 0.0f;
    p.top_p = 1.0f;
    CHECK_OK(ntp__sampler_new(&p, N, &s));
    for (int d = 0; s && d < 200; d++) {
        int32_t t = sample1(s, l);
        CHECK(t >= 0 && t < N && l[t] >= sorted[39]);
    }
    ntp__sampler_free(s);
}

static void test_repeat_penalty(void)
{
    float l[4] = {2.0f, 1.9f, -1.0f, -1.1f};
    struct ntp_sampler_params p = plain_params(0.0f, 1);
    p.repeat_penalty = 1.5f;
    p.repeat_last_n = 2;
    struct ntp_sampler *s = NULL;
    CHECK_OK(ntp__sampler_new(&p, 4, &s));
    CHECK(sample1(s, l) == 0);
    /* 2.0 / 1.5 = 1.33 < 1.9: token 1 wins. */
    CHECK_OK(ntp__sampler_accept(s, 0));
    CHECK(sample1(s, l) == 1);
    /* Repeats count once: 0 twice is still one division. */
    CHECK_OK(ntp__sampler_accept(s, 0));
    CHECK(sample1(s, l) == 1);
    /* History of 2: after two more tokens token 0 is forgotten. */
    CHECK_OK(ntp__sampler_accept(s, 3));
    CHECK_OK(ntp__sampler_accept(s, 3));
    CHECK(sample1(s, l) == 0);
    ntp__sampler_reset(s);
    CHECK(sample1(s, l) == 0);
    CHECK_STATUS(ntp__sampler_accept(s, 4), NTP_E_INVALID_ARG);
    CHECK_STATUS(ntp__sampler_accept(s, -1), NTP_E_INVALID_ARG);
    ntp__sampler_free(s);

    /* Negative logits are multiplied, pushing them further down. */
    float m[2] = {-1.0f, -1.4f};
    CHECK_OK(ntp__sampler_new(&p, 2, &s));
    CHECK_OK(ntp__sampler_accept(s, 0));
    CHECK(sample1(s, m) == 1); /* -1.5 < -1.4 */
    ntp__sampler_free(s);
}

static void test_bad_logits(void)
{
    float l[6] = {0.0f, 1.0f, 2.0f, NAN, 0.5f, 0.0f};
    struct ntp_sampler_params p = ntp__sampler_default_params();
    p.seed = 1;
    struct ntp_sampler *s = NULL;
    CHECK_OK(ntp__sampler_new(&p, 6, &s));
    int32_t t = -7;
    CHECK_STATUS(ntp__sampler_sample(s, l, &t), NTP_E_INVALID_ARG);
    CHECK(strstr(ntp_last_error(), "logits[3]") != NULL);
    CHECK(strstr(ntp_last_error(), "NaN") != NULL);
    l[3] = INFINITY;
    CHECK_STATUS(ntp__sampler_sample(s, l, &t), NTP_E_INVALID_ARG);
    for (int i = 0; i < 6; i++)
        l[i] = -INFINITY;
    CHECK_STATUS(ntp__sampler_sample(s, l, &t), NTP_E_INVALID_ARG);
    ntp__sampler_free(s);
}

int main(void)
{
    test_defaults();
    test_greedy();
    test_seeds();
    test_distribution();
    test_filters();
    test_large_vocab();
    test_repeat_penalty();
    test_bad_logits();
    return ntp_test_result("sampler");
}
