/*
 * world.c - the processes of a run started by mpirun, and the collective
 * kind "mpi" that sums across them (world.h). Open MPI or MPICH: only the
 * MPI standard's calls are used.
 */
#include "comm/world.h"

#include "core/core.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#if NTP_HAVE_MPI
#include <mpi.h>
#include <sched.h>
#endif

static int world_rank = 0, world_size = 1;

/* Whether mpirun (Open MPI, MPICH's hydra, PMIx launchers) started this process. */
static bool launched_by_mpirun(void)
{
    return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMI_SIZE") || getenv("PMIX_RANK");
}

int ntp__world_rank(void)
{
    return world_rank;
}

int ntp__world_size(void)
{
    return world_size;
}

#if NTP_HAVE_MPI

static bool started; /* MPI_Init_thread succeeded */

static ntp_status mpi_error(const char *what, int err)
{
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(err, msg, &len) != MPI_SUCCESS)
        snprintf(msg, sizeof msg, "error %d", err);
    return ntp__error(NTP_E_DEVICE, "MPI: %s: %s", what, msg);
}

ntp_status ntp__world_init(int *argc, char ***argv)
{
    if (!launched_by_mpirun() || started)
        return NTP_OK;
    int provided = 0;
    int err = MPI_Init_thread(argc, argv, MPI_THREAD_SERIALIZED, &provided);
    if (err != MPI_SUCCESS)
        return mpi_error("MPI_Init_thread", err);
    started = true;
    MPI_Comm_rank(MPI_COMM_WORLD, &world_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &world_size);
    if (provided < MPI_THREAD_SERIALIZED)
        return ntp__error(NTP_E_UNSUPPORTED,
                          "MPI: this MPI library cannot be called from more than one thread "
                          "(MPI_THREAD_SERIALIZED); numatp's devices call it from their threads");
    if (world_size > NTP_WORLD_MAX)
        return ntp__error(NTP_E_UNSUPPORTED, "mpirun -np %d: at most %d processes", world_size,
                          NTP_WORLD_MAX);
    return NTP_OK;
}

void ntp__world_finish(void)
{
    if (started)
        MPI_Finalize();
    started = false;
}

_Noreturn void ntp__world_abort(int code)
{
    if (started) {
        /* mpirun forwards what the ranks wrote; give it a moment before the kill. */
        fflush(stdout);
        fflush(stderr);
        nanosleep(&(struct timespec){.tv_nsec = 300000000}, NULL);
        MPI_Abort(MPI_COMM_WORLD, code);
    }
    exit(code);
}

/* MPI counts are ints: large messages go in pieces of 1 GiB. */
#define PIECE ((size_t)1 << 30)

ntp_status ntp__world_bcast(void *buf, size_t n, int root)
{
    for (size_t off = 0; off < n && world_size > 1; off += PIECE) {
        const int k = (int)(n - off < PIECE ? n - off : PIECE);
        int err = MPI_Bcast((char *)buf + off, k, MPI_BYTE, root, MPI_COMM_WORLD);
        if (err != MPI_SUCCESS)
            return mpi_error("MPI_Bcast", err);
    }
    return NTP_OK;
}

ntp_status ntp__world_send(const void *buf, size_t n, int dest)
{
    for (size_t off = 0; off < n; off += PIECE) {
        const int k = (int)(n - off < PIECE ? n - off : PIECE);
        int err = MPI_Send((const char *)buf + off, k, MPI_BYTE, dest, 0, MPI_COMM_WORLD);
        if (err != MPI_SUCCESS)
            return mpi_error("MPI_Send", err);
    }
    return NTP_OK;
}

ntp_status ntp__world_recv(void *buf, size_t n, int src)
{
    for (size_t off = 0; off < n; off += PIECE) {
        const int k = (int)(n - off < PIECE ? n - off : PIECE);
        int err =
            MPI_Recv((char *)buf + off, k, MPI_BYTE, src, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        if (err != MPI_SUCCESS)
            return mpi_error("MPI_Recv", err);
    }
    return NTP_OK;
}

ntp_status ntp__world_allgather(const void *mine, void *all, size_t n)
{
    if (world_size == 1) {
        memcpy(all, mine, n);
        return NTP_OK;
    }
    int err = MPI_Allgather(mine, (int)n, MPI_BYTE, all, (int)n, MPI_BYTE, MPI_COMM_WORLD);
    return err == MPI_SUCCESS ? NTP_OK : mpi_error("MPI_Allgather", err);
}

ntp_status ntp__world_gather_cols(float *rows, int64_t n_rows, int64_t ld, const int *off,
                                  const int *cnt)
{
    for (int64_t r = 0; r < n_rows && world_size > 1; r++) {
        int err = MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, rows + r * ld, cnt, off,
                                 MPI_FLOAT, MPI_COMM_WORLD);
        if (err != MPI_SUCCESS)
            return mpi_error("MPI_Allgatherv (logits)", err);
    }
    return NTP_OK;
}

/* ----------------------------------------------------- the "mpi" collective */

struct mpi_comm {
    struct ntp_comm base;
    struct ntp_comm *local; /* the process's members' tree; NULL for one member */
    int64_t max_n;
    float *all;                       /* [world_size][max_n]: every process's sum (member 0) */
    float *out;                       /* [max_n]: the total, for the process's other members */
    _Atomic uint64_t gen;             /* totals published in out */
    _Atomic int taken;                /* members that have copied the last total */
    uint64_t seen[NTP_COMM_MAX_SIZE]; /* totals each member has copied */
    uint64_t time_ns, calls;          /* member 0's */
};

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void mpi_destroy(struct ntp_comm *c)
{
    struct mpi_comm *m = (struct mpi_comm *)c;
    ntp__comm_free(m->local);
    free(m->all);
    free(m->out);
    free(m);
}

/* Member 0: the process's sum buf[0, n) becomes the sum over every process. */
static ntp_status across(struct mpi_comm *m, float *buf, int64_t n)
{
    int err = MPI_Allgather(buf, (int)n, MPI_FLOAT, m->all, (int)n, MPI_FLOAT, MPI_COMM_WORLD);
    if (err != MPI_SUCCESS)
        return mpi_error("MPI_Allgather (all-reduce)", err);
    /* In rank order on every rank: the same bits everywhere. */
    memcpy(buf, m->all, (size_t)n * sizeof(float));
    for (int r = 1; r < world_size; r++) {
        const float *p = m->all + (size_t)r * (size_t)n;
        for (int64_t i = 0; i < n; i++)
            buf[i] += p[i];
    }
    return NTP_OK;
}

static ntp_status mpi_allreduce(struct ntp_comm *c, int rank, float *buf, int64_t n)
{
    struct mpi_comm *m = (struct mpi_comm *)c;
    const uint64_t t0 = rank == 0 ? now_ns() : 0;
    ntp_status s = m->local ? m->local->iface->allreduce(m->local, rank, buf, n) : NTP_OK;
    if (s != NTP_OK)
        return s;
    const int members = m->base.size;
    if (rank == 0) {
        s = across(m, buf, n);
        if (members > 1) { /* hand the total over once the last one was taken */
            while (atomic_load_explicit(&m->taken, memory_order_acquire) < members - 1)
                sched_yield();
            atomic_store_explicit(&m->taken, 0, memory_order_relaxed);
            memcpy(m->out, buf, (size_t)n * sizeof(float));
            atomic_fetch_add_explicit(&m->gen, 1, memory_order_release);
        }
        m->time_ns += now_ns() - t0;
        m->calls++;
        return s;
    }
    const uint64_t want = ++m->seen[rank];
    while (atomic_load_explicit(&m->gen, memory_order_acquire) < want)
        sched_yield();
    memcpy(buf, m->out, (size_t)n * sizeof(float));
    atomic_fetch_add_explicit(&m->taken, 1, memory_order_release);
    return s;
}

static void mpi_stats(const struct ntp_comm *c, struct ntp_comm_stats *out)
{
    const struct mpi_comm *m = (const struct mpi_comm *)c;
    out->time_ns = m->time_ns;
    out->calls = m->calls;
}

static void mpi_stats_reset(struct ntp_comm *c)
{
    struct mpi_comm *m = (struct mpi_comm *)c;
    m->time_ns = m->calls = 0;
}

static const struct ntp_comm_iface mpi_iface = {
    .name = "mpi",
    .destroy = mpi_destroy,
    .allreduce = mpi_allreduce,
    .stats = mpi_stats,
    .stats_reset = mpi_stats_reset,
};

ntp_status ntp__comm_mpi_new(const struct ntp_comm_params *p, struct ntp_comm **out)
{
    *out = NULL;
    if (!started)
        return ntp__error(NTP_E_UNSUPPORTED,
                          "collective kind 'mpi': numatp was not started by mpirun");
    if (p->size < 1 || p->size > NTP_COMM_MAX_SIZE || p->max_n < 1 || p->max_n > INT32_MAX)
        return ntp__error(NTP_E_INVALID_ARG, "collective 'mpi': %d members, %lld floats", p->size,
                          (long long)p->max_n);
    struct mpi_comm *m = calloc(1, sizeof *m);
    if (m == NULL)
        return ntp__error(NTP_E_NOMEM, "collective 'mpi': out of memory");
    m->base = (struct ntp_comm){.iface = &mpi_iface, .size = p->size};
    m->max_n = p->max_n;
    atomic_init(&m->gen, 0);
    atomic_init(&m->taken, p->size - 1);
    m->all = malloc((size_t)world_size * (size_t)p->max_n * sizeof(float));
    m->out = malloc((size_t)p->max_n * sizeof(float));
    ntp_status s =
        m->all && m->out ? NTP_OK : ntp__error(NTP_E_NOMEM, "collective 'mpi': out of memory");
    if (s == NTP_OK && p->size > 1)
        s = ntp__comm_shm_serial_new(p, &m->local);
    if (s != NTP_OK) {
        mpi_destroy(&m->base);
        return s;
    }
    *out = &m->base;
    return NTP_OK;
}

#else /* no MPI in this build: the world is this process */

ntp_status ntp__world_init(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *size = getenv("OMPI_COMM_WORLD_SIZE");
    if (!size)
        size = getenv("PMI_SIZE");
    if (launched_by_mpirun() && !(size && strcmp(size, "1") == 0))
        return ntp__error(NTP_E_UNSUPPORTED,
                          "started by mpirun, but this numatp was built without MPI (install "
                          "libopenmpi-dev, scripts/setup.sh does, and build with -Dmpi=enabled)");
    return NTP_OK;
}

void ntp__world_finish(void) {}

_Noreturn void ntp__world_abort(int code)
{
    exit(code);
}

ntp_status ntp__world_bcast(void *buf, size_t n, int root)
{
    (void)buf;
    (void)n;
    (void)root;
    return NTP_OK;
}

ntp_status ntp__world_send(const void *buf, size_t n, int dest)
{
    (void)buf;
    (void)n;
    return ntp__error(NTP_E_UNSUPPORTED, "no rank %d: this build has no MPI", dest);
}

ntp_status ntp__world_recv(void *buf, size_t n, int src)
{
    (void)buf;
    (void)n;
    return ntp__error(NTP_E_UNSUPPORTED, "no rank %d: this build has no MPI", src);
}

ntp_status ntp__world_allgather(const void *mine, void *all, size_t n)
{
    memcpy(all, mine, n);
    return NTP_OK;
}

ntp_status ntp__world_gather_cols(float *rows, int64_t n_rows, int64_t ld, const int *off,
                                  const int *cnt)
{
    (void)rows;
    (void)n_rows;
    (void)ld;
    (void)off;
    (void)cnt;
    return NTP_OK;
}

ntp_status ntp__comm_mpi_new(const struct ntp_comm_params *p, struct ntp_comm **out)
{
    (void)p;
    *out = NULL;
    return ntp__error(NTP_E_UNSUPPORTED, "collective kind 'mpi': this build has no MPI (-Dmpi)");
}

#endif
