/*
 * test_membw.c - the measurement library behind `numatp bench` and
 * `numatp numa-bench` (src/numa/membw.h) on tiny buffers: every figure is
 * positive and ordered (min <= median <= max), the team runs its steps in
 * order on the threads asked for, the median is a median, and bad
 * parameters come back as errors, not crashes.
 */
#include "numa/membw.h"
#include "test.h"

#include <math.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

static void check_stat(struct ntp_membw_stat s)
{
    CHECK(isfinite(s.median) && s.median > 0);
    CHECK(s.min <= s.median && s.median <= s.max);
}

static void test_stat(void)
{
    double v[] = {5, 1, 3, 2, 4};
    struct ntp_membw_stat s = ntp__membw_stat(v, 5);
    CHECK(s.median == 3 && s.min == 1 && s.max == 5);
    double w[] = {4, 1, 3, 2};
    s = ntp__membw_stat(w, 4);
    CHECK(s.median == 2.5 && s.min == 1 && s.max == 4);
}

/* Each step: every thread adds its index + 1 to the step's slot, once. */
struct count {
    atomic_int sum[4];
    atomic_int order_ok;
    atomic_int last_step;
};

static void count_step(void *user, int step, int ith, int nth)
{
    struct count *c = user;
    if (nth < 1 || ith >= nth)
        atomic_store(&c->order_ok, 0);
    /* The barrier between steps means nobody sees a step before the previous one ended. */
    if (atomic_load(&c->last_step) > step)
        atomic_store(&c->order_ok, 0);
    atomic_store(&c->last_step, step);
    atomic_fetch_add(&c->sum[step], ith + 1);
    /* 2 ms of this thread's CPU time, so that the team's CPU share is a ratio of
       times long enough to read (a step of a few instructions gave 1.7 under qemu) */
    struct timespec t0, t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t0);
    do
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    while ((t.tv_sec - t0.tv_sec) * 1e9 + (t.tv_nsec - t0.tv_nsec) < 2e6);
}

static void test_team(const ntp_topology *t)
{
    const int cores = ntp__membw_node_cores(t, -1);
    CHECK(cores >= 1);
    const int n = cores >= 2 ? 2 : 1;
    struct count c = {.order_ok = 1};
    double sec[4] = {0}, share = 0;
    struct ntp_membw_team_params p = {.topo = t,
                                      .cpu_node = -1,
                                      .n_threads = n,
                                      .n_steps = 4,
                                      .fn = count_step,
                                      .user = &c,
                                      .seconds = sec,
                                      .cpu_share = &share};
    CHECK_OK(ntp__membw_team_run(&p));
    for (int s = 0; s < 4; s++) {
        CHECK(atomic_load(&c.sum[s]) == n * (n + 1) / 2);
        CHECK(sec[s] >= 0);
    }
    CHECK(atomic_load(&c.order_ok));
    CHECK(share > 0 && share <= 1.5);
    p.n_threads = cores + 1;
    CHECK_STATUS(ntp__membw_team_run(&p), NTP_E_INVALID_ARG);
    p.n_threads = 1;
    p.cpu_node = ntp_topology_n_nodes(t);
    CHECK_STATUS(ntp__membw_team_run(&p), NTP_E_INVALID_ARG);
}

static void test_bandwidth(const ntp_topology *t)
{
    struct ntp_membw_params p = ntp__membw_default_params(t);
    p.cpu_node = 0;
    p.mem_node = 0;
    p.bytes = 1 << 20;
    p.reps = 2;
    struct ntp_membw_result r;
    CHECK_OK(ntp__membw_measure(&p, &r));
    for (int k = 0; k < NTP_MEMBW_N_KERNELS; k++)
        check_stat(r.gbps[k]);
    CHECK(r.bytes == 1 << 20);
    CHECK(r.n_threads == ntp__membw_node_cores(t, 0));
    /* One node: the pages are on node 0 (or the kernel cannot say). */
    CHECK(r.placed == -1 || ntp_topology_n_nodes(t) > 1 || r.placed == 1.0);

    p.n_threads = 1;
    p.kernels = 1u << NTP_MEMBW_READ;
    CHECK_OK(ntp__membw_measure(&p, &r));
    check_stat(r.gbps[NTP_MEMBW_READ]);
    CHECK(r.gbps[NTP_MEMBW_TRIAD].median == 0); /* not run */

    p.reps = 0;
    CHECK_STATUS(ntp__membw_measure(&p, &r), NTP_E_INVALID_ARG);
    p.reps = 1;
    p.bytes = 100; /* less than one page */
    CHECK_STATUS(ntp__membw_measure(&p, &r), NTP_E_INVALID_ARG);
    p.bytes = 1 << 20;
    p.mem_node = 99;
    CHECK_STATUS(ntp__membw_measure(&p, &r), NTP_E_INVALID_ARG);
    CHECK(strlen(ntp_last_error()) > 0);
}

static void test_latency(const ntp_topology *t)
{
    struct ntp_latency_params p = ntp__latency_default_params(t);
    p.bytes = 1 << 20;
    p.n_loads = 1 << 16;
    p.reps = 2;
    struct ntp_latency_result r;
    CHECK_OK(ntp__membw_latency(&p, &r));
    check_stat(r.ns);
    CHECK(r.ns.median < 1e6); /* a load is not a millisecond */
    p.bytes = 64;
    CHECK_STATUS(ntp__membw_latency(&p, &r), NTP_E_INVALID_ARG);
}

int main(void)
{
    ntp_topology *t = NULL;
    CHECK_OK(ntp_topology_detect(&t));
    if (t == NULL)
        return ntp_test_result("membw");
    test_stat();
    test_team(t);
    test_bandwidth(t);
    test_latency(t);
    CHECK(ntp__membw_default_bytes(t) >= (64u << 20) && ntp__membw_default_bytes(t) <= (1u << 30));
    ntp_topology_free(t);
    return ntp_test_result("membw");
}
