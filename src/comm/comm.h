/*
 * comm.h - the collective of a tensor-parallel group: how the devices of a
 * group sum their partial results (docs/architecture.md "Collectives").
 *
 * A group's collective is one object, made when a context is built, of a kind
 * chosen for the group: "shm" (shm.c, a shared-memory tree for devices in one
 * process) today; a kind that spans processes (MPI) plugs in beside it. The
 * environment variable NTP_COMM names another kind for every group (tests:
 * "shm-serial", the tree without allreduce_team). Each
 * member (device) of the group holds a struct ntp_comm_member: the object and
 * its rank in it. A device never knows which kind it talks to.
 *
 * Two ways to call it:
 *   allreduce       one thread of each member calls it; the sum lands in buf.
 *                   Every kind has it.
 *   allreduce_team  every thread of a member calls it with its (ith, nth), so
 *                   the work (and remote reads) spread over the member's
 *                   cores, and the sum may also be added into an accumulator
 *                   on the way. Optional: a kind whose transport is one call
 *                   per process leaves it NULL, and the device then calls
 *                   allreduce from one thread and does its own add.
 * Members must make the same sequence of calls with the same n.
 */
#ifndef NTP_COMM_COMM_H
#define NTP_COMM_COMM_H

#include "ntp.h"

#include <stdint.h>

/* Most members of one group. */
#define NTP_COMM_MAX_SIZE 16

struct ntp_comm;

/* What a group's collective is made for. */
struct ntp_comm_params {
    int size;         /* members, 1 .. NTP_COMM_MAX_SIZE */
    int64_t max_n;    /* most floats per call */
    int max_threads;  /* most threads of one member calling allreduce_team together (>= 1) */
    const int *nodes; /* [size] OS NUMA node for each member's buffers (-1: unbound); NULL: none */
};

/* Time rank 0 spent inside calls (waiting for the others included) and how many it made. */
struct ntp_comm_stats {
    uint64_t time_ns;
    uint64_t calls;
};

struct ntp_comm_iface {
    const char *name; /* "shm" */

    /* Free the collective. No call may be in flight. Required. */
    void (*destroy)(struct ntp_comm *c);
    /*
     * Sum buf[0, n) over the members, in place: on return buf holds the sum
     * on every member (bit-identical on all). Called by one thread per member.
     * Required.
     */
    ntp_status (*allreduce)(struct ntp_comm *c, int rank, float *buf, int64_t n);
    /*
     * allreduce with every thread ith of a member's nth (nth <= max_threads)
     * calling it with the same buf and n. When acc is not NULL the sum is
     * also added into acc[0, n). On return this thread's share of buf (and
     * acc) is final; the rest once the member's threads have met at a
     * barrier. buf must stay untouched by the member until then. Optional.
     */
    ntp_status (*allreduce_team)(struct ntp_comm *c, int rank, float *buf, int64_t n, float *acc,
                                 int ith, int nth);
    /* Time and calls since made or reset; read when no call runs. Optional (both or neither). */
    void (*stats)(const struct ntp_comm *c, struct ntp_comm_stats *out);
    void (*stats_reset)(struct ntp_comm *c);
};

/* The head of every kind's object. */
struct ntp_comm {
    const struct ntp_comm_iface *iface; /* never NULL */
    int size;                           /* members */
};

/* What a member holds: its group's collective and its rank there; comm NULL: a group of one. */
struct ntp_comm_member {
    struct ntp_comm *comm; /* not owned */
    int rank;
};

/*
 * Make a collective of kind `kind` ("shm"). NTP_E_UNSUPPORTED names an
 * unknown kind; NTP_E_INVALID_ARG bad parameters. Free with ntp__comm_free.
 */
ntp_status ntp__comm_new(const char *kind, const struct ntp_comm_params *p, struct ntp_comm **out);
/* NULL is a no-op. */
void ntp__comm_free(struct ntp_comm *c);

/* The shared-memory tree (shm.c): kinds "shm" and "shm-serial" (no allreduce_team). */
ntp_status ntp__comm_shm_new(const struct ntp_comm_params *p, struct ntp_comm **out);
ntp_status ntp__comm_shm_serial_new(const struct ntp_comm_params *p, struct ntp_comm **out);

#endif /* NTP_COMM_COMM_H */
