/*
 * allreduce.h - the shared-memory tree all-reduce of a tensor-parallel group
 * (DESIGN.md "All-reduce"). Every device copies its partial into a buffer in
 * its own node's memory and publishes a sequence number on its own cache
 * line; log2(N) pairwise exchanges (recursive doubling) then give every
 * device the full sum. A group whose size is not a power of two first folds
 * the devices past the largest power of two P into devices 0 .. N-P-1, and
 * those hand the result back at the end.
 *
 * The vector is cut into n_slices slices (64-byte aligned); thread ith of a
 * device with nth threads handles slices ith, ith + nth, ... and meets only
 * the threads of the other devices that handle the same slice, so a call
 * needs no barrier inside a device. Sequence numbers only grow (no flag is
 * ever reset), and each device alternates between two sets of buffers from
 * one call to the next, so calls may follow each other back to back.
 *
 * A group of exactly two devices skips the levels: each device owns one half
 * of every slice, adds the other's partial of it read straight from the
 * other's buffer, and stores the sum into both buffers (caller buffers are
 * therefore written by the other device during the call, and must stay
 * valid and untouched until the call returns).
 *
 * Every device ends with bit-identical sums: each pairwise step computes
 * a + b on both sides, and float addition is commutative (for two devices
 * one device computes each sum and both get that value).
 */
#ifndef NTP_COMM_ALLREDUCE_H
#define NTP_COMM_ALLREDUCE_H

#include "ntp.h"

#include <stdint.h>

/* Most devices in one group. */
#define NTP_ALLREDUCE_MAX_DEV 16

struct ntp_allreduce;

struct ntp_allreduce_params {
    int n_dev;        /* devices in the group, 1 .. NTP_ALLREDUCE_MAX_DEV */
    int64_t max_n;    /* most floats per call */
    int n_slices;     /* slices of the vector: the largest team size in the group */
    const int *nodes; /* [n_dev] OS node for each device's buffers (-1: unbound); NULL: none */
};

ntp_status ntp__allreduce_new(const struct ntp_allreduce_params *p, struct ntp_allreduce **out);
/* NULL is a no-op. No call may be in flight. */
void ntp__allreduce_free(struct ntp_allreduce *a);

/*
 * The all-reduce of struct ntp_comm_ops (comm is a struct ntp_allreduce).
 * Called by every thread (ith of nth, nth <= n_slices) of every device (rank)
 * with the same n (<= max_n). On return the elements of this thread's slices
 * of buf hold the sum over the devices, and acc (when not NULL) has had that
 * sum added to the same elements. Other threads' elements are final once the
 * device's threads have met at a barrier.
 */
ntp_status ntp__allreduce(void *comm, int rank, float *buf, int64_t n, float *acc, int ith,
                          int nth);

/*
 * Wall time rank 0's thread 0 spent inside ntp__allreduce since the group was
 * made or last reset (waiting for the others included: that is the cost of
 * tensor parallelism a decode step pays). Read it when no call is running.
 */
uint64_t ntp__allreduce_time_ns(const struct ntp_allreduce *a);
uint64_t ntp__allreduce_calls(const struct ntp_allreduce *a);
void ntp__allreduce_time_reset(struct ntp_allreduce *a);

/* Bytes of buffers a device of the group holds (for logs). */
uint64_t ntp__allreduce_bytes_per_dev(const struct ntp_allreduce *a);

#endif /* NTP_COMM_ALLREDUCE_H */
