/*
 * team.h - a device's persistent thread team (docs/architecture.md
 * "Threads and memory"): n threads, each bound to one processor of the device's node,
 * started when the device is made and kept until it is freed, so no thread is
 * created per token. The team runs one job at a time, fn(ctx, ith, nth) on
 * every thread; inside a job the threads meet at a spin barrier that lives in
 * the node's memory. Waiting spins briefly, then yields, then sleeps on a
 * futex, so an oversubscribed machine makes progress instead of live-locking.
 */
#ifndef NTP_NUMA_TEAM_H
#define NTP_NUMA_TEAM_H

#include "ntp.h"

#include <stdatomic.h>
#include <stdint.h>

struct ntp_team;

/* One thread's part of a job: ith in [0, nth). */
typedef void (*ntp_team_fn)(void *ctx, int ith, int nth);

struct ntp_team_params {
    int n_threads;            /* threads in the team (>= 1) */
    int node;                 /* OS node of the team's memory; -1: unbound */
    const ntp_topology *topo; /* binds the threads (hwloc); NULL: threads are not bound */
    const int *pus;           /* [n_threads] OS index of the processor thread i runs on; NULL:
                                 not bound (not owned, copied) */
};

/* Start the team's threads. Free with ntp__team_free. */
ntp_status ntp__team_new(const struct ntp_team_params *p, struct ntp_team **out);
/* Stop and join the threads; NULL is a no-op. No job may be running. */
void ntp__team_free(struct ntp_team *t);
/* Whether every thread was bound as asked (false when binding failed or was not asked). */
bool ntp__team_bound(const struct ntp_team *t);

/* Hand fn(ctx, ·, ·) to every thread and return at once. One job at a time. */
void ntp__team_start(struct ntp_team *t, ntp_team_fn fn, void *ctx);
/* Wait until the job started last has returned on every thread. */
void ntp__team_wait(struct ntp_team *t);
/* Start and wait. */
void ntp__team_run(struct ntp_team *t, ntp_team_fn fn, void *ctx);

/* Inside a job: wait until every thread of the team has reached this barrier. */
void ntp__team_barrier(struct ntp_team *t);

/*
 * Wait until *w != old: spin a little, then yield, then sleep on the futex.
 * waiters counts sleepers so ntp__wake skips the system call when nobody
 * sleeps. Shared with the all-reduce.
 */
void ntp__wait_ne(_Atomic uint32_t *w, uint32_t old, _Atomic uint32_t *waiters);
/* Wake every sleeper of w (after changing *w). */
void ntp__wake(_Atomic uint32_t *w, _Atomic uint32_t *waiters);

/* One step of a polite spin loop: a pause, and every so often a yield. */
void ntp__spin_step(unsigned *spins);

#endif /* NTP_NUMA_TEAM_H */
