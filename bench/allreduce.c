/*
 * allreduce.c - latency of the "shm" collective's all-reduce (src/comm/) for
 * vectors of 1 KB .. 4 MB over N = 2, 4 and 8 devices, each a thread team
 * (one thread by default), against a plain memcpy of the same bytes as the
 * floor. Every device runs all its rounds in one job; before each round the
 * devices meet at a spinning group barrier, then rank 0 times the call.
 * Thread t of device d is bound to processor (d * threads + t) mod the
 * machine's processors, so with 2 devices on 2 cores each has its own core.
 *
 *     allreduce [--rounds R] [--threads T] [--dev LIST] [--max-bytes B] [--json]
 *
 * One line per (devices, size): median and 90th percentile in microseconds.
 * Large sizes use fewer rounds (at most 512 MB of vectors per result).
 *
 * Started by mpirun (`mpirun -np 2 bench/allreduce`), it measures the "mpi"
 * collective instead, for every power of two from 1 KB: one member per
 * process, the sum crossing between the processes (comm/world.h); the
 * processes meet (an all-gather of one byte) before each timed call, and
 * rank 0 prints.
 */
#include "comm/comm.h"
#include "comm/world.h"
#include "numa/team.h"

#include <stdatomic.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct group {
    struct ntp_comm *ar;
    _Atomic uint32_t arrived, phase; /* the group barrier */
    int n_threads_all;               /* threads over all devices */
    int64_t n;                       /* floats per call */
    int rounds;
    double *lat; /* [rounds] seconds, written by rank 0 thread 0 */
};

struct dev_job {
    struct group *g;
    int rank;
    float *buf; /* [n] */
};

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void group_barrier(struct group *g)
{
    const uint32_t ph = atomic_load(&g->phase);
    if (atomic_fetch_add(&g->arrived, 1) + 1 == (uint32_t)g->n_threads_all) {
        atomic_store(&g->arrived, 0);
        atomic_fetch_add(&g->phase, 1);
        return;
    }
    unsigned spins = 0;
    while (atomic_load(&g->phase) == ph)
        ntp__spin_step(&spins);
}

static void dev_fn(void *ctx, int ith, int nth)
{
    struct dev_job *j = ctx;
    struct group *g = j->g;
    for (int r = 0; r < g->rounds; r++) {
        group_barrier(g);
        const double t0 = now();
        g->ar->iface->allreduce_team(g->ar, j->rank, j->buf, g->n, NULL, ith, nth);
        if (j->rank == 0 && ith == 0)
            g->lat[r] = now() - t0;
    }
}

static int cmp_double(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double memcpy_median(int64_t bytes, int rounds)
{
    char *a = calloc(1, (size_t)bytes), *b = calloc(1, (size_t)bytes);
    double *t = malloc((size_t)rounds * sizeof *t);
    for (int r = 0; r < rounds; r++) {
        const double t0 = now();
        memcpy(a, b, (size_t)bytes);
        __asm__ volatile("" : : "r"(a) : "memory");
        t[r] = now() - t0;
        b[r % bytes]++;
    }
    qsort(t, (size_t)rounds, sizeof *t, cmp_double);
    const double m = t[rounds / 2];
    free(a);
    free(b);
    free(t);
    return m;
}

/* One result: n_dev devices of n_thr threads, bytes per vector. */
static const ntp_topology *topo;

static int bench_one(int n_dev, int n_thr, int64_t bytes, int rounds, bool json)
{
    struct group g = {.n_threads_all = n_dev * n_thr, .n = bytes / 4, .rounds = rounds};
    struct ntp_comm_params cp = {.size = n_dev, .max_n = g.n, .max_threads = n_thr};
    struct ntp_team *teams[16] = {NULL};
    struct dev_job jobs[16];
    g.lat = calloc((size_t)rounds, sizeof *g.lat);
    if (ntp__comm_new("shm", &cp, &g.ar) != NTP_OK || g.lat == NULL) {
        fprintf(stderr, "allreduce: %s\n", ntp_last_error());
        return 1;
    }
    for (int d = 0; d < n_dev; d++) {
        int pus[64];
        const long n_cpu = sysconf(_SC_NPROCESSORS_ONLN) > 0 ? sysconf(_SC_NPROCESSORS_ONLN) : 1;
        for (int t = 0; t < n_thr; t++)
            pus[t] = (int)((d * n_thr + t) % n_cpu);
        const struct ntp_team_params tp = {
            .n_threads = n_thr, .node = -1, .topo = topo, .pus = topo ? pus : NULL};
        if (ntp__team_new(&tp, &teams[d]) != NTP_OK)
            return 1;
        jobs[d] = (struct dev_job){.g = &g, .rank = d, .buf = calloc((size_t)g.n, 4)};
    }
    for (int d = 0; d < n_dev; d++)
        ntp__team_start(teams[d], dev_fn, &jobs[d]);
    for (int d = 0; d < n_dev; d++)
        ntp__team_wait(teams[d]);
    qsort(g.lat, (size_t)rounds, sizeof *g.lat, cmp_double);
    const double med = g.lat[rounds / 2] * 1e6, p90 = g.lat[rounds * 9 / 10] * 1e6;
    const double mc = memcpy_median(bytes, rounds) * 1e6;
    if (json)
        printf("{\"bench\":\"allreduce\",\"devices\":%d,\"threads\":%d,\"bytes\":%lld,"
               "\"rounds\":%d,\"median_us\":%.3f,\"p90_us\":%.3f,\"memcpy_us\":%.3f}\n",
               n_dev, n_thr, (long long)bytes, rounds, med, p90, mc);
    else
        printf("allreduce devices %d x %d thr  %8lld B  rounds %5d  median %9.2f us  p90 %9.2f "
               "us  memcpy %8.2f us  (%.1fx)\n",
               n_dev, n_thr, (long long)bytes, rounds, med, p90, mc, mc > 0 ? med / mc : 0.0);
    fflush(stdout);
    for (int d = 0; d < n_dev; d++) {
        ntp__team_free(teams[d]);
        free(jobs[d].buf);
    }
    ntp__comm_free(g.ar);
    free(g.lat);
    return 0;
}

/* The "mpi" collective between the processes of an mpirun, bytes per vector. */
static int bench_world(int64_t bytes, int rounds, bool json)
{
    const struct ntp_comm_params cp = {.size = 1, .max_n = bytes / 4, .max_threads = 1};
    struct ntp_comm *ar = NULL;
    float *buf = calloc((size_t)(bytes / 4), 4);
    double *lat = calloc((size_t)rounds, sizeof *lat);
    if (ntp__comm_new("mpi", &cp, &ar) != NTP_OK || buf == NULL || lat == NULL) {
        fprintf(stderr, "allreduce: %s\n", ntp_last_error());
        return 1;
    }
    char one = 0, all[NTP_WORLD_MAX];
    for (int r = 0; r < rounds; r++) {
        if (ntp__world_allgather(&one, all, 1) != NTP_OK)
            return 1;
        const double t0 = now();
        if (ar->iface->allreduce(ar, 0, buf, bytes / 4) != NTP_OK) {
            fprintf(stderr, "allreduce: %s\n", ntp_last_error());
            return 1;
        }
        lat[r] = now() - t0;
    }
    qsort(lat, (size_t)rounds, sizeof *lat, cmp_double);
    const double med = lat[rounds / 2] * 1e6, p90 = lat[rounds * 9 / 10] * 1e6;
    if (ntp__world_rank() == 0 && json)
        printf("{\"bench\":\"allreduce\",\"kind\":\"mpi\",\"processes\":%d,\"bytes\":%lld,"
               "\"rounds\":%d,\"median_us\":%.3f,\"p90_us\":%.3f}\n",
               ntp__world_size(), (long long)bytes, rounds, med, p90);
    else if (ntp__world_rank() == 0)
        printf("allreduce mpi, %d processes  %8lld B  rounds %5d  median %9.2f us  p90 %9.2f us\n",
               ntp__world_size(), (long long)bytes, rounds, med, p90);
    fflush(stdout);
    ntp__comm_free(ar);
    free(buf);
    free(lat);
    return 0;
}

int main(int argc, char **argv)
{
    if (ntp__world_init(&argc, &argv) != NTP_OK) {
        fprintf(stderr, "allreduce: %s\n", ntp_last_error());
        return 1;
    }
    int rounds = 10000, n_thr = 1;
    int64_t max_bytes = 4 << 20;
    const char *devs = "2,4,8";
    bool json = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc)
            rounds = atoi(argv[++i]);
        else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
            n_thr = atoi(argv[++i]);
        else if (strcmp(argv[i], "--dev") == 0 && i + 1 < argc)
            devs = argv[++i];
        else if (strcmp(argv[i], "--max-bytes") == 0 && i + 1 < argc)
            max_bytes = atoll(argv[++i]);
        else if (strcmp(argv[i], "--json") == 0)
            json = true;
        else {
            fprintf(stderr, "usage: allreduce [--rounds R] [--threads T] [--dev 2,4,8] "
                            "[--max-bytes B] [--json]\n");
            return 2;
        }
    }
    if (rounds < 1 || n_thr < 1 || n_thr > 64)
        return 2;
    if (ntp__world_size() > 1) {
        int rc = 0;
        for (int64_t bytes = 1024; bytes <= max_bytes && rc == 0; bytes *= 2)
            rc = bench_world(bytes, bytes >= (1 << 20) ? (rounds < 1000 ? rounds : 1000) : rounds,
                             json);
        ntp__world_finish();
        return rc;
    }
    ntp_topology *t = NULL;
    if (ntp_topology_detect(&t) == NTP_OK)
        topo = t;
    for (const char *p = devs; *p;) {
        const int n_dev = atoi(p);
        if (n_dev < 1 || n_dev > 16)
            return 2;
        for (int64_t bytes = 1024; bytes <= max_bytes; bytes *= 4) {
            /* At most 512 MB of vectors per result, and at least 100 rounds. */
            int r = (int)((512ll << 20) / (bytes * n_dev));
            r = r < rounds ? r : rounds;
            r = r < 100 ? 100 : r;
            if (bench_one(n_dev, n_thr, bytes, r, json) != 0)
                return 1;
        }
        while (*p && *p != ',')
            p++;
        if (*p == ',')
            p++;
    }
    return 0;
}
