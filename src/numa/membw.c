/*
 * membw.c - STREAM-style bandwidth and pointer-chase latency with pinned
 * threads over node-placed, first-touched buffers (see membw.h and
 * docs/numa-bench.md for why each choice is made).
 */
#include "numa/membw.h"

#include "core/core.h"
#include "kernels/cpu_features.h"
#include "numa/membw_isa.h"
#include "numa/topology.h"

#include <hwloc.h>
#include <numa.h>
#include <numaif.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#if defined(__x86_64__) || defined(__i386__)
#include <emmintrin.h>
#define NTP_MEMBW_SSE2 1
#endif

static double clock_s(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double now_s(void)
{
    return clock_s(CLOCK_MONOTONIC);
}

/* ------------------------------------------------------------ thread team */

/* The cpuset a team on cpu_node draws its cores from (owned by t). */
static hwloc_const_cpuset_t team_cpuset(const ntp_topology *t, int cpu_node)
{
    if (cpu_node < 0)
        return hwloc_topology_get_topology_cpuset(ntp__topology_hwloc(t));
    return ntp__topology_node_cpuset(t, cpu_node);
}

/* Cores inside set; machines that report no cores count PUs (see topology.c). */
static hwloc_obj_type_t core_type(hwloc_topology_t hw, hwloc_const_cpuset_t set)
{
    return hwloc_get_nbobjs_inside_cpuset_by_type(hw, set, HWLOC_OBJ_CORE) > 0 ? HWLOC_OBJ_CORE
                                                                               : HWLOC_OBJ_PU;
}

int ntp__membw_node_cores(const ntp_topology *t, int cpu_node)
{
    hwloc_const_cpuset_t set = team_cpuset(t, cpu_node);
    if (set == NULL)
        return 0;
    hwloc_topology_t hw = ntp__topology_hwloc(t);
    return hwloc_get_nbobjs_inside_cpuset_by_type(hw, set, core_type(hw, set));
}

struct team {
    const struct ntp_membw_team_params *p;
    hwloc_bitmap_t *pu;        /* [n_threads] one PU per thread; owned */
    pthread_barrier_t barrier; /* all n_threads meet before and after every step */
    atomic_int bind_failed;    /* a thread could not be bound */
    atomic_int gate;           /* 0: wait, 1: run the steps, -1: leave (a thread failed to start) */
    double *share;             /* [n_threads] CPU time / wall time of each thread over steps 1.. */
};

struct team_arg {
    struct team *team;
    int ith;
};

static void *team_main(void *arg)
{
    const struct team_arg *a = arg;
    struct team *tm = a->team;
    const struct ntp_membw_team_params *p = tm->p;
    if (hwloc_set_cpubind(ntp__topology_hwloc(p->topo), tm->pu[a->ith], HWLOC_CPUBIND_THREAD) != 0)
        atomic_store(&tm->bind_failed, 1);
    /* Nobody enters the barrier before every thread exists, so a failed start can unwind. */
    while (atomic_load(&tm->gate) == 0)
        sched_yield();
    if (atomic_load(&tm->gate) < 0)
        return NULL;
    double wall0 = 0, cpu0 = 0;
    for (int s = 0; s < p->n_steps; s++) {
        pthread_barrier_wait(&tm->barrier);
        const double t0 = now_s();
        if (s == 1) {
            wall0 = t0;
            cpu0 = clock_s(CLOCK_THREAD_CPUTIME_ID);
        }
        p->fn(p->user, s, a->ith, p->n_threads);
        pthread_barrier_wait(&tm->barrier);
        if (a->ith == 0 && p->seconds)
            p->seconds[s] = now_s() - t0;
    }
    const double wall = now_s() - wall0;
    tm->share[a->ith] =
        p->n_steps > 1 && wall > 0 ? (clock_s(CLOCK_THREAD_CPUTIME_ID) - cpu0) / wall : 1.0;
    return NULL;
}

/*
 * One PU (the first) of each of the first n cores of the team's cpuset; with
 * spread, thread i takes core i / n_nodes of node i % n_nodes.
 */
static ntp_status pick_pus(const struct ntp_membw_team_params *p, hwloc_bitmap_t *pu)
{
    hwloc_topology_t hw = ntp__topology_hwloc(p->topo);
    const int n_nodes = ntp_topology_n_nodes(p->topo);
    for (int i = 0; i < p->n_threads; i++) {
        const int node = p->spread ? i % n_nodes : p->cpu_node;
        const unsigned k = (unsigned)(p->spread ? i / n_nodes : i);
        hwloc_const_cpuset_t set = team_cpuset(p->topo, node);
        hwloc_obj_t o = hwloc_get_obj_inside_cpuset_by_type(hw, set, core_type(hw, set), k);
        pu[i] = o ? hwloc_bitmap_dup(o->cpuset) : NULL;
        if (pu[i] == NULL)
            return ntp__error(NTP_E_NOMEM, "membw: out of memory");
        hwloc_bitmap_singlify(pu[i]);
    }
    return NTP_OK;
}

static ntp_status team_check(const struct ntp_membw_team_params *p)
{
    if (p->topo == NULL || p->fn == NULL || p->n_steps < 1)
        return ntp__error(NTP_E_INVALID_ARG, "membw: team needs a topology, a step function "
                                             "and at least one step");
    if (p->cpu_node < -1 || p->cpu_node >= ntp_topology_n_nodes(p->topo))
        return ntp__error(NTP_E_INVALID_ARG, "membw: cpu node %d out of range [0, %d)", p->cpu_node,
                          ntp_topology_n_nodes(p->topo));
    int cores = ntp__membw_node_cores(p->topo, p->cpu_node);
    if (p->spread) {
        const int n_nodes = ntp_topology_n_nodes(p->topo);
        cores = INT32_MAX;
        for (int i = 0; i < n_nodes; i++) {
            const int c = ntp__membw_node_cores(p->topo, i) * n_nodes + i;
            cores = c < cores ? c : cores; /* thread c would need one core too many on node i */
        }
    }
    if ((p->spread && p->cpu_node != -1) || p->n_threads < 1 || p->n_threads > cores)
        return ntp__error(NTP_E_INVALID_ARG,
                          "membw: %d threads on cpu node %d, expected 1 to %d (one per core)",
                          p->n_threads, p->cpu_node, cores);
    return NTP_OK;
}

static ntp_status team_start(struct team *tm, pthread_t *th, struct team_arg *args, int *started)
{
    for (int i = 0; i < tm->p->n_threads; i++) {
        args[i] = (struct team_arg){tm, i};
        if (pthread_create(&th[i], NULL, team_main, &args[i]) != 0)
            return ntp__error(NTP_E_NOMEM, "membw: could not create thread %d of %d", i,
                              tm->p->n_threads);
        (*started)++;
    }
    return NTP_OK;
}

ntp_status ntp__membw_team_run(const struct ntp_membw_team_params *p)
{
    ntp_status s = team_check(p);
    if (s != NTP_OK)
        return s;
    const int n = p->n_threads;
    struct team tm = {.p = p};
    tm.pu = calloc((size_t)n, sizeof *tm.pu);
    tm.share = calloc((size_t)n, sizeof *tm.share);
    pthread_t *th = calloc((size_t)n, sizeof *th);
    struct team_arg *args = calloc((size_t)n, sizeof *args);
    int started = 0;
    s = tm.pu && tm.share && th && args ? pick_pus(p, tm.pu)
                                        : ntp__error(NTP_E_NOMEM, "membw: out of memory");
    if (s == NTP_OK && pthread_barrier_init(&tm.barrier, NULL, (unsigned)n) != 0)
        s = ntp__error(NTP_E_NOMEM, "membw: pthread_barrier_init failed");
    if (s == NTP_OK) {
        s = team_start(&tm, th, args, &started);
        atomic_store(&tm.gate, s == NTP_OK ? 1 : -1);
        for (int i = 0; i < started; i++)
            pthread_join(th[i], NULL);
        pthread_barrier_destroy(&tm.barrier);
        if (atomic_load(&tm.bind_failed))
            ntp__log(NTP_LOG_WARN, "membw: could not bind threads to cores; results unpinned");
        /* The busiest thread: waiting at a barrier for a slower peer is not being starved. */
        for (int i = 0; p->cpu_share && i < started; i++)
            *p->cpu_share = i == 0 || tm.share[i] > *p->cpu_share ? tm.share[i] : *p->cpu_share;
    }
    for (int i = 0; tm.pu && i < n; i++)
        hwloc_bitmap_free(tm.pu[i]);
    free(tm.pu);
    free(tm.share);
    free(th);
    free(args);
    return s;
}

/* ----------------------------------------------------------------- memory */

void *ntp__membw_alloc(const ntp_topology *t, int mem_node, size_t bytes)
{
    if (bytes == 0 || mem_node < -1 || mem_node >= ntp_topology_n_nodes(t)) {
        ntp__error(NTP_E_INVALID_ARG, "membw: %zu bytes on memory node %d (of %d)", bytes, mem_node,
                   ntp_topology_n_nodes(t));
        return NULL;
    }
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        ntp__error(NTP_E_NOMEM, "membw: could not map %zu bytes", bytes);
        return NULL;
    }
    /* Huge pages keep the latency chase about memory, not page walks (best effort). */
    madvise(p, bytes, MADV_HUGEPAGE);
    if (numa_available() < 0 || ntp_topology_n_nodes(t) < 2)
        return p; /* one node: every page is local whatever the policy */
    if (mem_node < 0)
        numa_interleave_memory(p, bytes, numa_all_nodes_ptr);
    else
        numa_tonode_memory(p, bytes, ntp_topology_node_os_index(t, mem_node));
    return p;
}

void ntp__membw_free(void *p, size_t bytes)
{
    if (p)
        munmap(p, bytes);
}

double ntp__membw_placed_fraction(const ntp_topology *t, int mem_node, const void *p, size_t bytes)
{
    enum { N = 64 };
    const size_t page = 4096;
    if (mem_node < 0 || p == NULL || bytes < page || numa_available() < 0)
        return -1;
    void *pages[N];
    int status[N];
    const size_t n_pages = bytes / page, n = n_pages < N ? n_pages : N;
    for (size_t i = 0; i < n; i++)
        pages[i] = (char *)p + (i * n_pages / n) * page;
    if (move_pages(0, (unsigned long)n, pages, NULL, status, 0) != 0)
        return -1;
    int on = 0;
    for (size_t i = 0; i < n; i++)
        on += status[i] == ntp_topology_node_os_index(t, mem_node);
    return (double)on / (double)n;
}

/* ------------------------------------------------------------------ stats */

static int cmp_double(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

struct ntp_membw_stat ntp__membw_stat(double *v, int n)
{
    struct ntp_membw_stat st = {0, 0, 0};
    if (n <= 0)
        return st;
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    st.min = v[0];
    st.max = v[n - 1];
    st.median = n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
    return st;
}

/* ------------------------------------------------------------- bandwidth */

const char *ntp__membw_kernel_name(enum ntp_membw_kernel k)
{
    static const char *names[NTP_MEMBW_N_KERNELS] = {"read", "write", "copy", "triad"};
    return (int)k >= 0 && k < NTP_MEMBW_N_KERNELS ? names[k] : "?";
}

uint64_t ntp__membw_default_bytes(const ntp_topology *t)
{
    const uint64_t lo = 64ull << 20, hi = 1ull << 30;
    const uint64_t want = 4 * ntp_topology_llc_bytes(t);
    return want < lo ? lo : want > hi ? hi : want;
}

struct ntp_membw_params ntp__membw_default_params(const ntp_topology *t)
{
    return (struct ntp_membw_params){.topo = t,
                                     .cpu_node = t && ntp_topology_n_nodes(t) > 1 ? 0 : -1,
                                     .mem_node = t && ntp_topology_n_nodes(t) > 1 ? 0 : -1,
                                     .n_threads = 0,
                                     .bytes = 0,
                                     .reps = 5,
                                     .kernels = 0};
}

/* The state one bandwidth measurement shares between its threads. */
struct stream {
    double *a, *b, *c;              /* [n] each, on the memory node; owned by the caller */
    size_t n;                       /* elements of each array */
    unsigned kernels;               /* bit mask of kernels to run */
    int n_kernels;                  /* kernels in the mask */
    int order[NTP_MEMBW_N_KERNELS]; /* the kernels in the mask, in enum order */
    _Atomic uint64_t sink;          /* sum of the read sums (so the loads are not dropped) */
    uint64_t (*read)(const uint64_t *u, size_t i0, size_t i1); /* the read loop for this CPU */
};

/* Thread ith's element range, cut on 4 KiB (512 doubles) boundaries. */
static void stream_slice(size_t n, int ith, int nth, size_t *i0, size_t *i1)
{
    int64_t p0, p1;
    ntp__slice((int64_t)(n / 512), ith, nth, &p0, &p1);
    *i0 = (size_t)p0 * 512;
    *i1 = (size_t)p1 * 512;
    if (ith == nth - 1)
        *i1 = n;
}

static uint64_t k_read(const uint64_t *u, size_t i0, size_t i1)
{
    /* Integer sums vectorize at -O3 without reassociation flags; the bits do not matter. */
    uint64_t s = 0;
    for (size_t i = i0; i < i1; i++)
        s += u[i];
    return s;
}

/* The widest read loop this CPU and OS run (membw_isa.h says why it matters), and its name. */
static void pick_read(struct stream *st, const char **name)
{
#if NTP_HAVE_X86_KERNELS
    const struct ntp_cpu_features f = ntp__cpu_features();
    st->read = f.avx512f ? ntp__membw_read_avx512 : f.avx2 ? ntp__membw_read_avx2 : k_read;
    *name = f.avx512f ? "avx512" : f.avx2 ? "avx2" : "c";
#else
    st->read = k_read;
    *name = "c";
#endif
}

static void k_write(double *a, size_t i0, size_t i1)
{
#if NTP_MEMBW_SSE2
    /* Non-temporal stores: no read-for-ownership, so the bytes counted are the bytes moved. */
    const __m128i v = _mm_set1_epi64x(0x3ff0000000000000ll);
    for (size_t i = i0; i + 8 <= i1; i += 8) {
        _mm_stream_si128((__m128i *)(a + i), v);
        _mm_stream_si128((__m128i *)(a + i + 2), v);
        _mm_stream_si128((__m128i *)(a + i + 4), v);
        _mm_stream_si128((__m128i *)(a + i + 6), v);
    }
    _mm_sfence();
#else
    for (size_t i = i0; i < i1; i++)
        a[i] = 1.0;
#endif
}

static void k_copy(double *restrict c, const double *restrict a, size_t i0, size_t i1)
{
    for (size_t i = i0; i < i1; i++)
        c[i] = a[i];
}

static void k_triad(double *restrict a, const double *restrict b, const double *restrict c,
                    size_t i0, size_t i1)
{
    const double s = 3.0;
    for (size_t i = i0; i < i1; i++)
        a[i] = b[i] + s * c[i];
}

/* Step 0 first-touches this thread's slices; step 1 + k runs kernel order[k % n_kernels]. */
static void stream_step(void *user, int step, int ith, int nth)
{
    struct stream *st = user;
    size_t i0, i1;
    stream_slice(st->n, ith, nth, &i0, &i1);
    if (step == 0) {
        for (size_t i = i0; i < i1; i++) {
            st->a[i] = 1.0;
            if (st->b)
                st->b[i] = 2.0;
            if (st->c)
                st->c[i] = 0.0;
        }
        return;
    }
    switch (st->order[(step - 1) % st->n_kernels]) {
    case NTP_MEMBW_READ:
        atomic_fetch_add_explicit(&st->sink, st->read((const uint64_t *)st->a, i0, i1),
                                  memory_order_relaxed);
        break;
    case NTP_MEMBW_WRITE:
        k_write(st->a, i0, i1);
        break;
    case NTP_MEMBW_COPY:
        k_copy(st->c, st->a, i0, i1);
        break;
    default:
        k_triad(st->a, st->b, st->c, i0, i1);
        break;
    }
}

static ntp_status measure_check(const struct ntp_membw_params *p)
{
    if (p->topo == NULL || p->reps < 1 || p->reps > 1000)
        return ntp__error(NTP_E_INVALID_ARG, "membw: repetitions %d, expected 1 to 1000", p->reps);
    if (p->mem_node < -1 || p->mem_node >= ntp_topology_n_nodes(p->topo))
        return ntp__error(NTP_E_INVALID_ARG, "membw: memory node %d out of range [0, %d)",
                          p->mem_node, ntp_topology_n_nodes(p->topo));
    if (p->kernels >= (1u << NTP_MEMBW_N_KERNELS))
        return ntp__error(NTP_E_INVALID_ARG, "membw: kernel mask 0x%x has unknown bits",
                          p->kernels);
    return NTP_OK;
}

/* Allocate the arrays a measurement needs (b and c only for copy/triad). */
static ntp_status stream_alloc(const struct ntp_membw_params *p, struct stream *st, size_t bytes)
{
    const bool three = st->kernels & ((1u << NTP_MEMBW_COPY) | (1u << NTP_MEMBW_TRIAD));
    st->a = ntp__membw_alloc(p->topo, p->mem_node, bytes);
    if (three) {
        st->b = st->a ? ntp__membw_alloc(p->topo, p->mem_node, bytes) : NULL;
        st->c = st->b ? ntp__membw_alloc(p->topo, p->mem_node, bytes) : NULL;
    }
    if (st->a == NULL || (three && st->c == NULL))
        return ntp__error(NTP_E_NOMEM, "membw: could not allocate %d arrays of %zu bytes",
                          three ? 3 : 1, bytes);
    return NTP_OK;
}

/* GB/s of each kernel from the step times (the first repetition is a warm-up). */
static void stream_results(const struct stream *st, const double *sec, int reps,
                           struct ntp_membw_result *out)
{
    static const int arrays[NTP_MEMBW_N_KERNELS] = {1, 1, 2, 3};
    double *v = malloc((size_t)reps * sizeof *v);
    if (v == NULL)
        return; /* results stay 0: the caller sees "not measured" */
    for (int k = 0; k < st->n_kernels; k++) {
        const int kern = st->order[k];
        const double moved = (double)arrays[kern] * (double)(st->n * sizeof(double));
        for (int r = 0; r < reps; r++) {
            const double s = sec[1 + (r + 1) * st->n_kernels + k];
            v[r] = s > 0 ? moved / s * 1e-9 : 0;
        }
        out->gbps[kern] = ntp__membw_stat(v, reps);
    }
    free(v);
}

ntp_status ntp__membw_measure(const struct ntp_membw_params *p, struct ntp_membw_result *out)
{
    memset(out, 0, sizeof *out);
    ntp_status s = measure_check(p);
    if (s != NTP_OK)
        return s;
    struct stream st = {.kernels = p->kernels ? p->kernels : (1u << NTP_MEMBW_N_KERNELS) - 1};
    for (int k = 0; k < NTP_MEMBW_N_KERNELS; k++)
        if (st.kernels & (1u << k))
            st.order[st.n_kernels++] = k;
    pick_read(&st, &out->read_isa);
    const uint64_t want = p->bytes ? p->bytes : ntp__membw_default_bytes(p->topo);
    st.n = (size_t)(want / sizeof(double)) & ~(size_t)511; /* whole 4 KiB pages */
    if (st.n == 0 || want > (uint64_t)SIZE_MAX / 4)
        return ntp__error(NTP_E_INVALID_ARG,
                          "membw: array size %llu bytes, expected at least "
                          "4096",
                          (unsigned long long)want);
    const size_t bytes = st.n * sizeof(double);
    const int n_threads = p->n_threads ? p->n_threads : ntp__membw_node_cores(p->topo, p->cpu_node);
    const int n_steps = 1 + (p->reps + 1) * st.n_kernels;
    double *sec = calloc((size_t)n_steps, sizeof *sec);
    s = sec ? stream_alloc(p, &st, bytes) : ntp__error(NTP_E_NOMEM, "membw: out of memory");
    if (s == NTP_OK) {
        struct ntp_membw_team_params tp = {.topo = p->topo,
                                           .cpu_node = p->cpu_node,
                                           .n_threads = n_threads,
                                           .n_steps = n_steps,
                                           .fn = stream_step,
                                           .user = &st,
                                           .seconds = sec,
                                           .cpu_share = &out->cpu_share};
        s = ntp__membw_team_run(&tp);
    }
    if (s == NTP_OK) {
        stream_results(&st, sec, p->reps, out);
        out->bytes = bytes;
        out->n_threads = n_threads;
        out->placed = ntp__membw_placed_fraction(p->topo, p->mem_node, st.a, bytes);
    }
    ntp__membw_free(st.a, bytes);
    ntp__membw_free(st.b, bytes);
    ntp__membw_free(st.c, bytes);
    free(sec);
    return s;
}

/* ---------------------------------------------------------------- latency */

struct ntp_latency_params ntp__latency_default_params(const ntp_topology *t)
{
    return (struct ntp_latency_params){.topo = t,
                                       .cpu_node = t && ntp_topology_n_nodes(t) > 1 ? 0 : -1,
                                       .mem_node = t && ntp_topology_n_nodes(t) > 1 ? 0 : -1,
                                       .bytes = 0,
                                       .n_loads = 0,
                                       .reps = 3};
}

/* The chase: buf holds one pointer per 64-byte line, linking all lines in one random cycle. */
struct chase {
    void **buf;         /* n_lines * 8 pointers (one cache line each); owned by the caller */
    size_t n_lines;     /* lines in the cycle (>= 2) */
    int64_t n_loads;    /* dependent loads per timed step */
    uint32_t *order;    /* [n_lines] scratch: the visiting order; owned by the caller */
    void *volatile end; /* where the last chase stopped (keeps the loads alive) */
};

/* xorshift64*: fast, good enough to shuffle, deterministic. */
static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545F4914F6CDD1Dull;
}

/* Link the lines in a random order (Fisher-Yates over the order, then one cycle through it). */
static void chase_build(struct chase *c)
{
    uint64_t seed = 0x9E3779B97F4A7C15ull;
    for (size_t i = 0; i < c->n_lines; i++)
        c->order[i] = (uint32_t)i;
    for (size_t i = c->n_lines - 1; i > 0; i--) {
        const size_t j = (size_t)(rng_next(&seed) % (i + 1));
        const uint32_t tmp = c->order[i];
        c->order[i] = c->order[j];
        c->order[j] = tmp;
    }
    for (size_t i = 0; i < c->n_lines; i++) {
        const size_t from = c->order[i], to = c->order[(i + 1) % c->n_lines];
        c->buf[from * 8] = &c->buf[to * 8];
    }
}

static void chase_step(void *user, int step, int ith, int nth)
{
    struct chase *c = user;
    (void)ith;
    (void)nth;
    if (step == 0) {
        chase_build(c);
        return;
    }
    void **p = c->end ? c->end : c->buf;
    for (int64_t i = 0; i < c->n_loads; i += 8) {
        p = *p;
        p = *p;
        p = *p;
        p = *p;
        p = *p;
        p = *p;
        p = *p;
        p = *p;
    }
    c->end = p;
}

ntp_status ntp__membw_latency(const struct ntp_latency_params *p, struct ntp_latency_result *out)
{
    memset(out, 0, sizeof *out);
    if (p->topo == NULL || p->reps < 1 || p->reps > 1000 || p->n_loads < 0)
        return ntp__error(NTP_E_INVALID_ARG, "latency: repetitions %d, expected 1 to 1000",
                          p->reps);
    const uint64_t want = p->bytes ? p->bytes : ntp__membw_default_bytes(p->topo);
    struct chase c = {.n_lines = (size_t)(want / 64), .n_loads = p->n_loads ? p->n_loads : 1 << 22};
    c.n_loads = (c.n_loads + 7) / 8 * 8;
    if (c.n_lines < 2 || c.n_lines > UINT32_MAX)
        return ntp__error(NTP_E_INVALID_ARG,
                          "latency: buffer of %llu bytes, expected 128 bytes "
                          "to 256 GiB",
                          (unsigned long long)want);
    const size_t bytes = c.n_lines * 64;
    const int n_steps = 2 + p->reps; /* build, one warm-up chase, the timed ones */
    double *sec = calloc((size_t)n_steps, sizeof *sec);
    c.order = malloc(c.n_lines * sizeof *c.order);
    c.buf = ntp__membw_alloc(p->topo, p->mem_node, bytes);
    ntp_status s = NTP_OK;
    if (sec == NULL || c.order == NULL || c.buf == NULL)
        s = ntp__error(NTP_E_NOMEM, "latency: could not allocate a %zu-byte buffer", bytes);
    if (s == NTP_OK) {
        struct ntp_membw_team_params tp = {.topo = p->topo,
                                           .cpu_node = p->cpu_node,
                                           .n_threads = 1,
                                           .n_steps = n_steps,
                                           .fn = chase_step,
                                           .user = &c,
                                           .seconds = sec,
                                           .cpu_share = &out->cpu_share};
        s = ntp__membw_team_run(&tp);
    }
    if (s == NTP_OK) {
        for (int r = 0; r < p->reps; r++)
            sec[r] = sec[2 + r] * 1e9 / (double)c.n_loads;
        out->ns = ntp__membw_stat(sec, p->reps);
    }
    ntp__membw_free(c.buf, bytes);
    free(c.order);
    free(sec);
    return s;
}
