/*
 * shm.c - the "shm" collective (comm.h): a recursive-doubling all-reduce over
 * shared memory, for the devices of a group in one process.
 *
 * Every device copies its partial into a buffer in its own node's memory and
 * publishes a sequence number on its own cache line; log2(N) pairwise
 * exchanges then give every device the full sum. A group whose size is not a
 * power of two first folds the devices past the largest power of two P into
 * devices 0 .. N-P-1, and those hand the result back at the end.
 *
 * The vector is cut into max_threads slices (64-byte aligned); thread ith of a
 * device with nth threads handles slices ith, ith + nth, ... and meets only
 * the threads of the other devices that handle the same slice, so a call
 * needs no barrier inside a device. Sequence numbers only grow (no flag is
 * ever reset), so calls may follow each other back to back. Every device ends
 * with bit-identical sums: each pairwise step computes a + b on both sides,
 * and float addition is commutative.
 *
 * Per call, device d publishes a series of levels, each a buffer in its own
 * memory, and after each a sequence number (call * stages + stage):
 *   stage 1  lvl 0: a copy of its partial (the caller's buffer is written at
 *            the end, while others may still be reading its levels);
 *   stage 2  the folded partial: for d < r = N - P, lvl 1 = lvl 0 + lvl 0 of
 *            device d + P; for other d < P it is lvl 0 itself;
 *   stage 3+k after exchange k with d ^ 2^k: lvl 2+k = own + partner's.
 * Devices d >= P publish stage 1 and then copy the final level of d - P.
 * Buffers alternate between two sets by call parity: before rewriting a
 * level a device has waited, in the call between, on every device that reads
 * it (its exchange partners and its fold partner), so those reads are over.
 *
 * A group of two takes a shorter path (pair_slice): each device sums one
 * half straight from the other's buffer and stores the sum into both, so
 * there are no levels and no copy, and each cache line crosses cores once.
 */
#include "comm/comm.h"

#include "core/core.h"
#include "numa/place.h"
#include "numa/team.h"

#include <stdalign.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* One slice's flag of one device: written by the thread that owns the slice. */
struct slot {
    alignas(64) _Atomic uint32_t seq; /* last stage published (wraps; compared by difference);
                                         also the futex word of threads waiting for it */
    _Atomic uint32_t waiters;         /* threads asleep on seq (see ntp__wait_ne) */
    uint32_t calls;                   /* calls made on this slice (owner only) */
    float *buf; /* N = 2: the owner's caller buffer this call (set before stage 1; not owned) */
};

/* A device's part of the group, in its node's memory. */
struct dev_part {
    struct slot *slots; /* [n_slices] */
    float *lvl;         /* [2 parities][n_lvl][max_n] */
    void *mem;          /* the allocation holding both (place alloc) */
};

struct shm_comm {
    struct ntp_comm base;           /* first: the object is a struct ntp_comm */
    int n_dev, p2, log_p2, n_extra; /* N, largest power of two P <= N, log2(P), N - P */
    int n_slices;
    int n_lvl;       /* levels per parity: lvl 0, lvl 1 and one per exchange (0 for N = 2) */
    uint32_t stages; /* sequence numbers per call */
    int64_t max_n;
    size_t lvl_stride; /* floats between levels (max_n rounded up to 16) */
    struct dev_part dev[NTP_COMM_MAX_SIZE];
    /* Written after every call by rank 0's thread 0 only: on a cache line of their own, so
       that the other devices' reads of the fields above never miss on them. */
    alignas(64) uint64_t time_ns; /* time rank 0's thread 0 spent in calls */
    uint64_t calls;               /* calls rank 0's thread 0 made */
};

static void shm_destroy(struct ntp_comm *c)
{
    struct shm_comm *a = (struct shm_comm *)c;
    for (int d = 0; d < a->n_dev; d++)
        ntp__place_free(a->dev[d].mem);
    ntp__free_aligned(a);
}

static ntp_status shm_allreduce(struct ntp_comm *c, int rank, float *buf, int64_t n);
static ntp_status shm_allreduce_team(struct ntp_comm *c, int rank, float *buf, int64_t n,
                                     float *acc, int ith, int nth);
static void shm_stats(const struct ntp_comm *c, struct ntp_comm_stats *out);
static void shm_stats_reset(struct ntp_comm *c);

static const struct ntp_comm_iface shm_iface = {
    .name = "shm",
    .destroy = shm_destroy,
    .allreduce = shm_allreduce,
    .allreduce_team = shm_allreduce_team,
    .stats = shm_stats,
    .stats_reset = shm_stats_reset,
};

/*
 * The same tree offering only the one-thread call, as a kind whose transport
 * is one call per process (MPI) does: tests run the devices' path for such
 * kinds with it (NTP_COMM=shm-serial).
 */
static const struct ntp_comm_iface shm_serial_iface = {
    .name = "shm-serial",
    .destroy = shm_destroy,
    .allreduce = shm_allreduce,
    .stats = shm_stats,
    .stats_reset = shm_stats_reset,
};

ntp_status ntp__comm_shm_serial_new(const struct ntp_comm_params *p, struct ntp_comm **out)
{
    const struct ntp_comm_params one = {
        .size = p->size, .max_n = p->max_n, .max_threads = 1, .nodes = p->nodes};
    ntp_status s = ntp__comm_shm_new(&one, out);
    if (s == NTP_OK)
        (*out)->iface = &shm_serial_iface;
    return s;
}

ntp_status ntp__comm_shm_new(const struct ntp_comm_params *p, struct ntp_comm **out)
{
    *out = NULL;
    if (p->size < 1 || p->size > NTP_COMM_MAX_SIZE || p->max_n < 1 || p->max_threads < 1)
        return ntp__error(NTP_E_INVALID_ARG,
                          "all-reduce: %d devices (1..%d), %lld floats, %d threads (>= 1)", p->size,
                          NTP_COMM_MAX_SIZE, (long long)p->max_n, p->max_threads);
    struct shm_comm *a = ntp__alloc_aligned(sizeof *a, alignof(struct shm_comm));
    if (a == NULL)
        return ntp__error(NTP_E_NOMEM, "all-reduce: out of memory");
    memset(a, 0, sizeof *a);
    a->base = (struct ntp_comm){.iface = &shm_iface, .size = p->size};
    a->n_dev = p->size;
    a->n_slices = p->max_threads;
    a->max_n = p->max_n;
    for (a->p2 = 1; a->p2 * 2 <= p->size; a->p2 *= 2)
        a->log_p2++;
    a->n_extra = p->size - a->p2;
    /* A group of two sums in place in the callers' buffers (pair_slice): no levels. */
    a->n_lvl = p->size == 2 ? 0 : 2 + a->log_p2;
    a->stages = 2 + (uint32_t)a->log_p2;
    a->lvl_stride = ((size_t)p->max_n + 15) / 16 * 16;
    const size_t slot_bytes = (size_t)a->n_slices * sizeof(struct slot);
    const size_t lvl_bytes = 2 * (size_t)a->n_lvl * a->lvl_stride * sizeof(float);
    for (int d = 0; d < a->n_dev; d++) {
        struct dev_part *dp = &a->dev[d];
        dp->mem = ntp__place_alloc(slot_bytes + lvl_bytes, p->nodes ? p->nodes[d] : -1);
        if (dp->mem == NULL) {
            shm_destroy(&a->base);
            return ntp__error(NTP_E_NOMEM, "all-reduce: cannot allocate %zu bytes for device %d",
                              slot_bytes + lvl_bytes, d);
        }
        dp->slots = dp->mem;
        dp->lvl = (float *)((uint8_t *)dp->mem + slot_bytes);
    }
    *out = &a->base;
    return NTP_OK;
}

static inline float *level(const struct shm_comm *a, int d, uint32_t parity, int l)
{
    return a->dev[d].lvl + ((size_t)parity * (size_t)a->n_lvl + (size_t)l) * a->lvl_stride;
}

/* Publish stage v and wake whoever sleeps on it (a loaded machine puts waiters to sleep). */
static inline void publish(struct slot *s, uint32_t v)
{
    atomic_store(&s->seq, v);
    ntp__wake(&s->seq, &s->waiters);
}

/*
 * Wait until device d's slot s has published stage v (or later): spin, then
 * yield, then sleep on the futex. Sleeping matters on an oversubscribed
 * machine: a thread that only yields stays runnable, is charged for it, and
 * is scheduled late once the data is there, while a woken sleeper runs at once.
 */
static inline void wait_stage(const struct shm_comm *a, int d, int s, uint32_t v)
{
    struct slot *sl = &a->dev[d].slots[s];
    uint32_t cur;
    while ((int32_t)((cur = atomic_load_explicit(&sl->seq, memory_order_acquire)) - v) < 0)
        ntp__wait_ne(&sl->seq, cur, &sl->waiters);
}

/* The level device d exchanges at step k (its folded partial for k = 0). */
static inline int exchange_level(const struct shm_comm *a, int d, int k)
{
    if (k > 0)
        return 1 + k;
    return d < a->n_extra ? 1 : 0;
}

/* y = u + v; acc += y when acc is not NULL. */
static void add_out(float *restrict y, const float *u, const float *v, float *restrict acc,
                    int64_t n)
{
    if (acc == NULL) {
        for (int64_t i = 0; i < n; i++)
            y[i] = u[i] + v[i];
        return;
    }
    for (int64_t i = 0; i < n; i++) {
        const float t = u[i] + v[i]; /* one pass: the remote v is read once */
        y[i] = t;
        acc[i] += t;
    }
}

/* acc += x. */
static void acc_add(float *restrict acc, const float *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        acc[i] += x[i];
}

/* Cache lines ahead that pair_sum asks for the peer's lines (with intent to write). */
#define PAIR_PREFETCH_LINES 16

/*
 * mine = theirs = mine + theirs (acc += the sum when not NULL), n floats.
 * theirs lies in the other core's cache: each line is fetched once, already
 * owned for the store back, PAIR_PREFETCH_LINES ahead of its use.
 */
static void pair_sum(float *restrict mine, float *restrict theirs, float *restrict acc, int64_t n)
{
    for (int64_t i = 0; i < n && i < 16 * PAIR_PREFETCH_LINES; i += 16)
        __builtin_prefetch(theirs + i, 1, 3);
    for (int64_t c = 0; c < n; c += 16) {
        if (c + 16 * PAIR_PREFETCH_LINES < n)
            __builtin_prefetch(theirs + c + 16 * PAIR_PREFETCH_LINES, 1, 3);
        const int64_t e = c + 16 < n ? c + 16 : n;
        if (acc == NULL) {
            for (int64_t i = c; i < e; i++)
                theirs[i] = mine[i] = mine[i] + theirs[i];
            continue;
        }
        for (int64_t i = c; i < e; i++) {
            const float t = mine[i] + theirs[i];
            mine[i] = t;
            theirs[i] = t;
            acc[i] += t;
        }
    }
}

/*
 * Elements [i0, i1) of slice s for device d of a group of two. Device 0 owns
 * the first half (a whole number of 16-float units, so in an aligned buffer
 * the halves share no cache line), device 1 the second. After stage 1 (its
 * buffer holds its partial and slot.buf points to it) a device adds the
 * peer's partial of its own half, read straight from the peer's buffer, and
 * stores the sum into both buffers; stage 2 says the peer's buffer holds it.
 * Nothing is copied into a level and each line crosses between the cores
 * once (the old path read the whole peer partial after copying its own into
 * a level the peer had read: 4.0 us against 1.5 us for 16 KB, RESULTS.md).
 * Races: a device touches only its own half of the peer's buffer, which the
 * peer does not touch until it has seen that stage 2; and it returns only
 * after the peer's stage 2, the peer's last access to its buffer.
 */
static void pair_slice(const struct shm_comm *a, int d, int s, float *buf, float *acc, int64_t i0,
                       int64_t i1)
{
    struct slot *me = &a->dev[d].slots[s];
    const uint32_t base = me->calls * a->stages;
    const int p = d ^ 1;
    me->calls++;
    const int64_t h = ((i1 - i0) / 2 + 15) / 16 * 16;
    const int64_t mid = i0 + h < i1 ? i0 + h : i1;
    const int64_t o0 = d == 0 ? i0 : mid, o1 = d == 0 ? mid : i1; /* my half */
    const int64_t q0 = d == 0 ? mid : i0, q1 = d == 0 ? i1 : mid; /* the peer's half */
    me->buf = buf;
    publish(me, base + 1);
    wait_stage(a, p, s, base + 1);
    float *peer = a->dev[p].slots[s].buf;
    pair_sum(buf + o0, peer + o0, acc ? acc + o0 : NULL, o1 - o0);
    publish(me, base + 2);
    wait_stage(a, p, s, base + 2);
    if (acc)
        acc_add(acc + q0, buf + q0, q1 - q0);
}

/* Elements [i0, i1) of slice s for device d. */
static void reduce_slice(const struct shm_comm *a, int d, int s, float *buf, float *acc, int64_t i0,
                         int64_t i1)
{
    struct slot *me = &a->dev[d].slots[s];
    const uint32_t base = me->calls * a->stages, par = me->calls & 1;
    const int64_t len = i1 - i0;
    me->calls++;
    memcpy(level(a, d, par, 0) + i0, buf + i0, (size_t)len * sizeof(float));
    publish(me, base + 1);
    if (d >= a->p2) {
        const int e = d - a->p2;
        wait_stage(a, e, s, base + a->stages);
        const float *r = level(a, e, par, a->n_lvl - 1) + i0;
        memcpy(buf + i0, r, (size_t)len * sizeof(float));
        if (acc)
            acc_add(acc + i0, r, len);
        return;
    }
    const float *cur = level(a, d, par, 0) + i0;
    if (d < a->n_extra) {
        wait_stage(a, d + a->p2, s, base + 1);
        float *pre = level(a, d, par, 1) + i0;
        add_out(pre, cur, level(a, d + a->p2, par, 0) + i0, NULL, len);
        cur = pre;
    }
    publish(me, base + 2);
    for (int k = 0; k < a->log_p2; k++) {
        const int p = d ^ (1 << k);
        const bool last = k + 1 == a->log_p2;
        wait_stage(a, p, s, base + 2 + (uint32_t)k);
        const float *pc = level(a, p, par, exchange_level(a, p, k)) + i0;
        float *out = last ? buf + i0 : level(a, d, par, 2 + k) + i0;
        add_out(out, cur, pc, last ? (acc ? acc + i0 : NULL) : NULL, len);
        if (last && d < a->n_extra)
            memcpy(level(a, d, par, a->n_lvl - 1) + i0, out, (size_t)len * sizeof(float));
        publish(me, base + 3 + (uint32_t)k);
        cur = out;
    }
    if (a->log_p2 == 0 && acc)
        acc_add(acc + i0, buf + i0, len);
}

static ntp_status shm_allreduce_team(struct ntp_comm *c, int rank, float *buf, int64_t n,
                                     float *acc, int ith, int nth)
{
    struct shm_comm *a = (struct shm_comm *)c;
    if (rank < 0 || rank >= a->n_dev || n < 0 || n > a->max_n || ith < 0 || nth < 1 || ith >= nth ||
        nth > a->n_slices)
        return ntp__error(NTP_E_INVALID_ARG,
                          "all-reduce: rank %d of %d, %lld floats (at most %lld), thread %d of %d "
                          "(at most %d)",
                          rank, a->n_dev, (long long)n, (long long)a->max_n, ith, nth, a->n_slices);
    const bool timed = rank == 0 && ith == 0;
    struct timespec t0, t1;
    if (timed)
        clock_gettime(CLOCK_MONOTONIC, &t0);
    /* Slices in 16-float units so that no two threads write one cache line. */
    const int64_t units = (n + 15) / 16;
    for (int s = ith; s < a->n_slices; s += nth) {
        int64_t u0, u1;
        ntp__slice(units, s, a->n_slices, &u0, &u1);
        const int64_t i0 = u0 * 16 < n ? u0 * 16 : n, i1 = u1 * 16 < n ? u1 * 16 : n;
        if (a->n_dev == 2)
            pair_slice(a, rank, s, buf, acc, i0, i1);
        else
            reduce_slice(a, rank, s, buf, acc, i0, i1);
    }
    if (timed) {
        clock_gettime(CLOCK_MONOTONIC, &t1);
        a->time_ns +=
            (uint64_t)((t1.tv_sec - t0.tv_sec) * 1000000000ll + (t1.tv_nsec - t0.tv_nsec));
        a->calls++;
    }
    return NTP_OK;
}

/* One thread takes every slice. */
static ntp_status shm_allreduce(struct ntp_comm *c, int rank, float *buf, int64_t n)
{
    return shm_allreduce_team(c, rank, buf, n, NULL, 0, 1);
}

static void shm_stats(const struct ntp_comm *c, struct ntp_comm_stats *out)
{
    const struct shm_comm *a = (const struct shm_comm *)c;
    *out = (struct ntp_comm_stats){.time_ns = a->time_ns, .calls = a->calls};
}

static void shm_stats_reset(struct ntp_comm *c)
{
    struct shm_comm *a = (struct shm_comm *)c;
    a->time_ns = 0;
    a->calls = 0;
}
