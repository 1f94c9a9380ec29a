/*
 * team.c - persistent thread teams. The team block (job hand-off, completion
 * count, barrier) is one allocation in the node's memory, each part on its
 * own cache line so that threads polling one do not disturb the others.
 *
 * Hand-off: the host writes fn/ctx and bumps `gen`; threads wait for gen to
 * change, run the job, and the last one to finish stores gen into `done`.
 * Barrier: a counter plus a phase word; the last arriver resets the counter
 * and bumps the phase. Every wait is ntp__wait_ne: bounded spin, then
 * sched_yield, then futex sleep (bounded: SLEEP_BOUND_NS), with a sleeper
 * count so that wakers make the futex system call only when someone sleeps.
 */
#include "numa/team.h"

#include "core/core.h"
#include "numa/place.h"
#include "numa/topology.h"

#include <hwloc.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <stdalign.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* Pause iterations before yielding, and yields before sleeping. */
#define SPIN_PAUSES 2000
#define SPIN_YIELDS 10

struct worker {
    struct ntp_team *t;
    int ith;
    int pu; /* OS processor index, -1: unbound */
};

struct ntp_team {
    /* Job hand-off, written by the host. */
    alignas(64) _Atomic uint32_t gen; /* job number; futex word of idle threads */
    _Atomic uint32_t gen_waiters;     /* threads asleep on gen */
    ntp_team_fn fn;                   /* the job */
    void *ctx;
    bool quit; /* set with the last gen bump: threads exit */
    /* Completion, written by the threads. */
    alignas(64) _Atomic uint32_t done_count; /* threads done with the current job */
    _Atomic uint32_t done;                   /* last finished job number; futex of the host */
    _Atomic uint32_t done_waiters;
    /* Barrier. */
    alignas(64) _Atomic uint32_t bar_count; /* threads arrived in this phase */
    _Atomic uint32_t bar_phase;             /* bumped when all have arrived */
    _Atomic uint32_t bar_waiters;
    /* Fixed after creation. */
    alignas(64) int n;      /* threads */
    int n_started;          /* threads actually created (for cleanup) */
    _Atomic int n_bound;    /* threads that were bound successfully */
    _Atomic int n_ready;    /* threads past their binding (ntp__team_new waits for all) */
    bool bind;              /* binding was asked for */
    hwloc_topology_t topo;  /* not owned */
    pthread_t *threads;     /* [n] (malloc) */
    struct worker *workers; /* [n] (malloc) */
};

/*
 * A sleeper wakes by itself after this long and looks again, so that a lost
 * wake-up costs this much and never a hang: the aarch64 suite under
 * qemu-user, on a loaded machine, once left a test waiting on its team
 * until the test's timeout.
 */
#define SLEEP_BOUND_NS 50000000L

static long futex(_Atomic uint32_t *w, int op, uint32_t val)
{
    const struct timespec bound = {0, SLEEP_BOUND_NS}; /* read by FUTEX_WAIT only */
    return syscall(SYS_futex, (uint32_t *)w, op | FUTEX_PRIVATE_FLAG, val, &bound, NULL, 0);
}

static inline void cpu_pause(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

void ntp__spin_step(unsigned *spins)
{
    if (++*spins < SPIN_PAUSES)
        cpu_pause();
    else
        sched_yield();
}

void ntp__wait_ne(_Atomic uint32_t *w, uint32_t old, _Atomic uint32_t *waiters)
{
    for (unsigned i = 0; i < SPIN_PAUSES; i++) {
        if (atomic_load_explicit(w, memory_order_acquire) != old)
            return;
        cpu_pause();
    }
    for (unsigned i = 0; i < SPIN_YIELDS; i++) {
        if (atomic_load_explicit(w, memory_order_acquire) != old)
            return;
        sched_yield();
    }
    while (atomic_load(w) == old) {
        atomic_fetch_add(waiters, 1);
        if (atomic_load(w) == old)
            futex(w, FUTEX_WAIT, old);
        atomic_fetch_sub(waiters, 1);
    }
}

void ntp__wake(_Atomic uint32_t *w, _Atomic uint32_t *waiters)
{
    if (atomic_load(waiters) > 0)
        futex(w, FUTEX_WAKE, INT_MAX);
}

static void bind_self(struct worker *wk)
{
    struct ntp_team *t = wk->t;
    if (!t->bind || wk->pu < 0)
        return;
    hwloc_bitmap_t set = hwloc_bitmap_alloc();
    if (set == NULL)
        return;
    hwloc_bitmap_only(set, (unsigned)wk->pu);
    if (hwloc_set_cpubind(t->topo, set, HWLOC_CPUBIND_THREAD | HWLOC_CPUBIND_STRICT) == 0 ||
        hwloc_set_cpubind(t->topo, set, HWLOC_CPUBIND_THREAD) == 0)
        atomic_fetch_add(&t->n_bound, 1);
    hwloc_bitmap_free(set);
}

static void *worker_main(void *arg)
{
    struct worker *wk = arg;
    struct ntp_team *t = wk->t;
    bind_self(wk);
    atomic_fetch_add(&t->n_ready, 1);
    uint32_t seen = 0;
    for (;;) {
        ntp__wait_ne(&t->gen, seen, &t->gen_waiters);
        seen = atomic_load_explicit(&t->gen, memory_order_acquire);
        if (t->quit)
            return NULL;
        t->fn(t->ctx, wk->ith, t->n);
        if (atomic_fetch_add(&t->done_count, 1) + 1 == (uint32_t)t->n) {
            atomic_store(&t->done_count, 0);
            atomic_store(&t->done, seen);
            ntp__wake(&t->done, &t->done_waiters);
        }
    }
}

static void stop_threads(struct ntp_team *t)
{
    t->quit = true;
    atomic_fetch_add(&t->gen, 1);
    futex(&t->gen, FUTEX_WAKE, INT_MAX);
    for (int i = 0; i < t->n_started; i++)
        pthread_join(t->threads[i], NULL);
}

void ntp__team_free(struct ntp_team *t)
{
    if (t == NULL)
        return;
    stop_threads(t);
    free(t->threads);
    free(t->workers);
    ntp__place_free(t);
}

ntp_status ntp__team_new(const struct ntp_team_params *p, struct ntp_team **out)
{
    *out = NULL;
    if (p->n_threads < 1)
        return ntp__error(NTP_E_INVALID_ARG, "thread team: %d threads (need at least 1)",
                          p->n_threads);
    struct ntp_team *t = ntp__place_alloc(sizeof *t, p->node);
    if (t == NULL)
        return ntp__error(NTP_E_NOMEM, "thread team: out of memory");
    t->n = p->n_threads;
    t->bind = p->topo != NULL && p->pus != NULL;
    t->topo = p->topo ? ntp__topology_hwloc(p->topo) : NULL;
    t->threads = calloc((size_t)t->n, sizeof *t->threads);
    t->workers = calloc((size_t)t->n, sizeof *t->workers);
    if (t->threads == NULL || t->workers == NULL) {
        ntp__team_free(t);
        return ntp__error(NTP_E_NOMEM, "thread team: out of memory");
    }
    for (int i = 0; i < t->n; i++) {
        t->workers[i] = (struct worker){.t = t, .ith = i, .pu = p->pus ? p->pus[i] : -1};
        if (pthread_create(&t->threads[i], NULL, worker_main, &t->workers[i]) != 0) {
            ntp__team_free(t);
            return ntp__error(NTP_E_DEVICE, "thread team: cannot create thread %d of %d", i,
                              p->n_threads);
        }
        t->n_started++;
    }
    /* Wait for the bindings, so that the team reports them and no job races them. */
    unsigned spins = 0;
    while (atomic_load(&t->n_ready) < t->n)
        ntp__spin_step(&spins);
    *out = t;
    return NTP_OK;
}

bool ntp__team_bound(const struct ntp_team *t)
{
    return t->bind && atomic_load(&((struct ntp_team *)t)->n_bound) == t->n;
}

void ntp__team_start(struct ntp_team *t, ntp_team_fn fn, void *ctx)
{
    t->fn = fn;
    t->ctx = ctx;
    atomic_fetch_add_explicit(&t->gen, 1, memory_order_seq_cst);
    ntp__wake(&t->gen, &t->gen_waiters);
}

void ntp__team_wait(struct ntp_team *t)
{
    const uint32_t g = atomic_load_explicit(&t->gen, memory_order_relaxed);
    uint32_t d;
    while ((d = atomic_load_explicit(&t->done, memory_order_acquire)) != g)
        ntp__wait_ne(&t->done, d, &t->done_waiters);
}

void ntp__team_run(struct ntp_team *t, ntp_team_fn fn, void *ctx)
{
    ntp__team_start(t, fn, ctx);
    ntp__team_wait(t);
}

void ntp__team_barrier(struct ntp_team *t)
{
    if (t->n == 1)
        return;
    const uint32_t ph = atomic_load(&t->bar_phase);
    if (atomic_fetch_add(&t->bar_count, 1) + 1 == (uint32_t)t->n) {
        atomic_store(&t->bar_count, 0);
        atomic_fetch_add(&t->bar_phase, 1);
        ntp__wake(&t->bar_phase, &t->bar_waiters);
        return;
    }
    ntp__wait_ne(&t->bar_phase, ph, &t->bar_waiters);
}
