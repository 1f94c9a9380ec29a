/*
 * test_allreduce.c - the "shm" collective (src/comm/) under stress: N = 1..8 devices, each a
 * persistent thread team (1 to 3 threads), random sizes from 1 float to
 * max_n, many rounds back to back, every element of every device checked
 * every round. Values are small integers so every sum is exact whatever the
 * order, and all devices must agree bit for bit.
 *
 *     test_allreduce [rounds] [max_n]     (defaults: 3000, 65536)
 *
 * The rounds are spread over the device counts 1..8; each round runs on all
 * devices at once (their teams started together, then waited for).
 */
#include "comm/comm.h"
#include "numa/team.h"
#include "test.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEV 8

struct job {
    struct ntp_comm *ar; /* the group */
    int rank, n_dev;
    float *buf; /* [max_n] this device's vector */
    float *acc; /* [max_n] accumulator (acc += sum is checked too) */
    int64_t n;  /* floats this round */
    uint32_t round;
    _Atomic int *bad; /* elements found wrong (shared) */
    struct ntp_team *team;
};

static float value(int rank, int64_t i, uint32_t round)
{
    return (float)((int64_t)((rank * 7 + i * 13 + round * 5) % 64) - 32);
}

static float expected(int n_dev, int64_t i, uint32_t round)
{
    float s = 0;
    for (int d = 0; d < n_dev; d++)
        s += value(d, i, round);
    return s;
}

/* One device's round: fill, barrier, all-reduce, barrier, check its slice. */
static void round_fn(void *ctx, int ith, int nth)
{
    struct job *j = ctx;
    int64_t i0 = j->n * ith / nth, i1 = j->n * (ith + 1) / nth;
    for (int64_t i = i0; i < i1; i++) {
        j->buf[i] = value(j->rank, i, j->round);
        j->acc[i] = 1.0f;
    }
    ntp__team_barrier(j->team);
    if (j->ar->iface->allreduce_team(j->ar, j->rank, j->buf, j->n, j->acc, ith, nth) != NTP_OK)
        atomic_fetch_add(j->bad, 1);
    ntp__team_barrier(j->team);
    int bad = 0;
    for (int64_t i = i0; i < i1; i++) {
        const float e = expected(j->n_dev, i, j->round);
        bad += j->buf[i] != e || j->acc[i] != e + 1.0f;
    }
    if (bad)
        atomic_fetch_add(j->bad, bad);
}

static uint64_t rng(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* Log-uniform in [1, max_n]: small vectors (the decode case) are common. */
static int64_t random_size(uint64_t *s, int64_t max_n)
{
    const int bits = 63 - __builtin_clzll((unsigned long long)max_n);
    const int b = (int)(rng(s) % (uint64_t)(bits + 1));
    int64_t n = (int64_t)(rng(s) % ((uint64_t)1 << b)) + ((int64_t)1 << b) / 2 + 1;
    return n > max_n ? max_n : n;
}

static void run_group(int n_dev, int rounds, int64_t max_n, uint64_t *seed)
{
    struct ntp_team *teams[MAX_DEV] = {NULL};
    struct job jobs[MAX_DEV];
    _Atomic int bad = 0;
    int max_thr = 1;
    for (int d = 0; d < n_dev; d++) {
        const int nth = 1 + (int)((d + n_dev) % 3);
        max_thr = nth > max_thr ? nth : max_thr;
        struct ntp_team_params tp = {.n_threads = nth, .node = -1};
        CHECK_OK(ntp__team_new(&tp, &teams[d]));
        jobs[d] = (struct job){.rank = d, .n_dev = n_dev, .bad = &bad, .team = teams[d]};
        jobs[d].buf = malloc((size_t)max_n * sizeof(float));
        jobs[d].acc = malloc((size_t)max_n * sizeof(float));
    }
    struct ntp_comm *ar = NULL;
    struct ntp_comm_params cp = {.size = n_dev, .max_n = max_n, .max_threads = max_thr};
    CHECK_OK(ntp__comm_new("shm", &cp, &ar));
    for (int r = 0; r < rounds && ar; r++) {
        const int64_t n = random_size(seed, max_n);
        for (int d = 0; d < n_dev; d++) {
            jobs[d].ar = ar;
            jobs[d].n = n;
            jobs[d].round = (uint32_t)r;
            ntp__team_start(teams[d], round_fn, &jobs[d]);
        }
        for (int d = 0; d < n_dev; d++)
            ntp__team_wait(teams[d]);
        if (atomic_load(&bad)) {
            fprintf(stderr, "N=%d round %d n=%lld: %d wrong elements\n", n_dev, r, (long long)n,
                    atomic_load(&bad));
            ntp_test_failures++;
            break;
        }
    }
    ntp__comm_free(ar);
    for (int d = 0; d < n_dev; d++) {
        ntp__team_free(teams[d]);
        free(jobs[d].buf);
        free(jobs[d].acc);
    }
}

/* Bad parameters are errors, not crashes. */
static void test_errors(void)
{
    struct ntp_comm *ar = NULL;
    struct ntp_comm_params cp = {.size = 0, .max_n = 16, .max_threads = 1};
    CHECK_STATUS(ntp__comm_new("shm", &cp, &ar), NTP_E_INVALID_ARG);
    cp.size = 2;
    CHECK_STATUS(ntp__comm_new("carrier-pigeon", &cp, &ar), NTP_E_UNSUPPORTED);
    CHECK(strstr(ntp_last_error(), "carrier-pigeon") != NULL);
    CHECK_OK(ntp__comm_new("shm", &cp, &ar));
    float x[32] = {0};
    CHECK_STATUS(ar->iface->allreduce(ar, 0, x, 32), NTP_E_INVALID_ARG);
    CHECK_STATUS(ar->iface->allreduce(ar, 2, x, 4), NTP_E_INVALID_ARG);
    CHECK_STATUS(ar->iface->allreduce_team(ar, 0, x, 4, NULL, 1, 2), NTP_E_INVALID_ARG);
    ntp__comm_free(ar);
    ntp__comm_free(NULL);
}

int main(int argc, char **argv)
{
    const int rounds = argc > 1 ? atoi(argv[1]) : 3000;
    const int64_t max_n = argc > 2 ? atoll(argv[2]) : 65536;
    uint64_t seed = 0x9E3779B97F4A7C15ull;
    test_errors();
    int total = 0;
    for (int n_dev = 1; n_dev <= MAX_DEV && !ntp_test_failures; n_dev++) {
        /* Smaller groups are cheaper per round: give them more of the rounds. */
        const int r = n_dev == MAX_DEV ? rounds - total : rounds * (12 - n_dev) / 68;
        run_group(n_dev, r, max_n, &seed);
        total += r;
    }
    printf("%d rounds over N = 1..%d, sizes 1..%lld\n", total, MAX_DEV, (long long)max_n);
    return ntp_test_result("allreduce");
}
