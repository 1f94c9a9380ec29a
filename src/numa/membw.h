/*
 * membw.h - memory bandwidth and latency measurement for `numatp numa-bench`
 * and `numatp bench` (docs/numa-bench.md has the method).
 *
 * A measurement runs a team of threads, each pinned to one core of a CPU
 * node (hwloc), over buffers allocated on a memory node (libnuma) and first
 * touched by those same threads, so the timed loops see neither page faults
 * nor pages that landed somewhere else. Bandwidth is STREAM's four loops
 * (read, write with non-temporal stores, copy, triad); latency is a pointer
 * chase through a random cyclic permutation of cache lines. Results are the
 * median of repetitions with the minimum and maximum.
 *
 * Threads are created per measurement: this is a benchmark, not the engine's
 * persistent teams. Everything is passed in params structs; no global state.
 */
#ifndef NTP_NUMA_MEMBW_H
#define NTP_NUMA_MEMBW_H

#include "ntp.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ------------------------------------------------------------ thread team */

/*
 * Thread ith of nth does its part of step `step` (0 .. n_steps-1). Steps run
 * in order with a barrier before and after each, so a step's time covers the
 * slowest thread.
 */
typedef void (*ntp_membw_step_fn)(void *user, int step, int ith, int nth);

struct ntp_membw_team_params {
    const ntp_topology *topo; /* machine; not owned */
    int cpu_node;             /* index of the node whose cores run the threads; -1: the
                                 machine's first cores in node order */
    int n_threads;            /* >= 1 and at most the cores available (one thread per core) */
    int n_steps;              /* >= 1 */
    ntp_membw_step_fn fn;     /* the work of one step */
    void *user;               /* passed to fn */
    double *seconds;          /* [n_steps] wall seconds of each step, or NULL; owner: caller */
    double *cpu_share;        /* out, or NULL: over steps 1.., the largest share of the wall
                                 time a thread spent on a CPU (well below 1: even the busiest
                                 thread waited for its core, the machine was busy) */
    bool spread;              /* with cpu_node -1: thread i runs on a core of node i % n_nodes
                                 (one device per node, as tensor parallelism places them) */
};

/*
 * Run the team to completion. Threads are bound to one PU of distinct cores;
 * a failed binding (a restricted cpuset) is logged once as a warning and the
 * run goes on unpinned. NTP_E_INVALID_ARG for a bad node or thread count.
 */
ntp_status ntp__membw_team_run(const struct ntp_membw_team_params *p);

/* Cores that a team on cpu_node (or -1: the machine) can use. */
int ntp__membw_node_cores(const ntp_topology *t, int cpu_node);

/* ----------------------------------------------------------------- memory */

/*
 * bytes of memory on node mem_node (an index into the topology; -1:
 * interleaved over all nodes), page aligned, asking for transparent huge
 * pages (fewer TLB misses in the latency chase). Pages are placed on first
 * touch, so callers touch them from the measuring threads. NULL on failure
 * (with ntp_last_error set). Free with ntp__membw_free(p, bytes).
 */
void *ntp__membw_alloc(const ntp_topology *t, int mem_node, size_t bytes);
void ntp__membw_free(void *p, size_t bytes);

/*
 * Fraction in [0, 1] of up to 64 sampled pages of p[0, bytes) that the
 * kernel reports on node mem_node (move_pages); -1 when it cannot tell
 * (interleaved or no NUMA support).
 */
double ntp__membw_placed_fraction(const ntp_topology *t, int mem_node, const void *p, size_t bytes);

/* ------------------------------------------------------------- bandwidth */

enum ntp_membw_kernel {
    NTP_MEMBW_READ,  /* sum += a[i]: bytes = N * 8 */
    NTP_MEMBW_WRITE, /* a[i] = s with non-temporal stores: bytes = N * 8 */
    NTP_MEMBW_COPY,  /* c[i] = a[i]: bytes = 2 N * 8 (STREAM's count, write-allocate not counted) */
    NTP_MEMBW_TRIAD, /* a[i] = b[i] + s * c[i]: bytes = 3 N * 8 (same) */
    NTP_MEMBW_N_KERNELS,
};

/* "read", "write", "copy", "triad". */
const char *ntp__membw_kernel_name(enum ntp_membw_kernel k);

/* Median, minimum and maximum over the repetitions. */
struct ntp_membw_stat {
    double median, min, max;
};

struct ntp_membw_params {
    const ntp_topology *topo; /* machine; not owned */
    int cpu_node;             /* node index whose cores run the threads; -1: machine */
    int mem_node;             /* node index holding the arrays; -1: interleaved */
    int n_threads;            /* 0: every core of cpu_node */
    uint64_t bytes;           /* bytes of each array (3 arrays for copy/triad); 0: default */
    int reps;                 /* timed repetitions of each kernel (>= 1); one more is discarded */
    unsigned kernels;         /* bit mask of (1u << enum ntp_membw_kernel); 0: all four */
};

struct ntp_membw_params ntp__membw_default_params(const ntp_topology *t);

struct ntp_membw_result {
    struct ntp_membw_stat gbps[NTP_MEMBW_N_KERNELS]; /* GB/s (1e9 bytes); 0 when not run */
    uint64_t bytes;                                  /* bytes of each array actually used */
    int n_threads;                                   /* threads that ran */
    double placed;                                   /* ntp__membw_placed_fraction of array a */
    double cpu_share;                                /* see ntp_membw_team_params.cpu_share */
    const char *read_isa; /* loop of the read test: "avx512", "avx2" or "c" (static) */
};

/*
 * The default array size: 4 x the last-level cache (STREAM's rule), at
 * least 64 MiB and at most 1 GiB. The cap exists because virtual machines
 * report the host's whole L3 (260 MiB here) although they get a share of it;
 * 1 GiB is well past any cache a guest can use and keeps a 3-array run
 * within a few GiB.
 */
uint64_t ntp__membw_default_bytes(const ntp_topology *t);

ntp_status ntp__membw_measure(const struct ntp_membw_params *p, struct ntp_membw_result *out);

/* ---------------------------------------------------------------- latency */

struct ntp_latency_params {
    const ntp_topology *topo; /* machine; not owned */
    int cpu_node;             /* node index whose first core chases; -1: the machine's first */
    int mem_node;             /* node index holding the buffer; -1: interleaved */
    uint64_t bytes;           /* buffer size (>= 2 cache lines); 0: default bytes */
    int64_t n_loads;          /* dependent loads per repetition; 0: 1 << 22 */
    int reps;                 /* timed repetitions (>= 1) */
};

struct ntp_latency_params ntp__latency_default_params(const ntp_topology *t);

struct ntp_latency_result {
    struct ntp_membw_stat ns; /* ns per dependent load */
    double cpu_share;         /* see ntp_membw_team_params.cpu_share */
};

/* Idle load-to-use latency in ns per load (one thread, nothing else running). */
ntp_status ntp__membw_latency(const struct ntp_latency_params *p, struct ntp_latency_result *out);

/* Median, min and max of v[0, n) (v is sorted in place). */
struct ntp_membw_stat ntp__membw_stat(double *v, int n);

#endif /* NTP_NUMA_MEMBW_H */
