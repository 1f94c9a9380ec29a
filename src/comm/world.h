/*
 * world.h - the processes of one run started by mpirun (docs/architecture.md
 * "Several processes"): one numatp per machine (or per socket), each holding
 * the shards of its own devices, the tensor-parallel group spanning the
 * devices of every process.
 *
 * Without MPI in the build, or when numatp was not started by mpirun, the
 * world is this process alone (rank 0 of 1) and every call here is a no-op.
 * Under mpirun MPI is started with MPI_THREAD_SERIALIZED: the collectives
 * are called from a device's team thread and the host calls from the main
 * thread, never at the same time (a decode is waited for before the host
 * goes on).
 *
 * Any error on one rank must end every rank (ntp__world_abort), for the
 * others would wait in their next collective for ever.
 */
#ifndef NTP_COMM_WORLD_H
#define NTP_COMM_WORLD_H

#include "ntp.h"

#include "comm/comm.h"

#include <stddef.h>
#include <stdint.h>

/* Most processes of one run. */
#define NTP_WORLD_MAX 64

/*
 * Start MPI when the process was started by mpirun (its environment says
 * so) and the build has MPI; otherwise nothing. NTP_E_UNSUPPORTED when
 * mpirun started a build without MPI, NTP_E_DEVICE when MPI fails.
 */
ntp_status ntp__world_init(int *argc, char ***argv);
/* Shut MPI down (a no-op without it). */
void ntp__world_finish(void);
/* This process's rank and the number of processes (0 and 1 without MPI). */
int ntp__world_rank(void);
int ntp__world_size(void);
/* End every process of the run with exit status code (without MPI: exit(code)). */
_Noreturn void ntp__world_abort(int code);

/* Every rank gets root's bytes[0, n). */
ntp_status ntp__world_bcast(void *buf, size_t n, int root);
/* Send bytes[0, n) to rank dest; receive n bytes from rank src into buf. */
ntp_status ntp__world_send(const void *buf, size_t n, int dest);
ntp_status ntp__world_recv(void *buf, size_t n, int src);
/* all[r * n .. (r + 1) * n) = rank r's mine[0, n), on every rank. */
ntp_status ntp__world_allgather(const void *mine, void *all, size_t n);
/*
 * Each rank r owns floats [off[r], off[r] + cnt[r]) of every one of n_rows
 * rows (ld floats apart); on return every rank has every rank's part.
 */
ntp_status ntp__world_gather_cols(float *rows, int64_t n_rows, int64_t ld, const int *off,
                                  const int *cnt);

/*
 * The collective of a tensor-parallel group spanning the processes (kind
 * "mpi"): p->size members are this process's devices of the group. A sum
 * first meets inside the process (the shared-memory tree), then across the
 * processes (every process's sum gathered and added in rank order, so that
 * all ranks get the same bits), then spreads inside the process again.
 */
ntp_status ntp__comm_mpi_new(const struct ntp_comm_params *p, struct ntp_comm **out);

#endif /* NTP_COMM_WORLD_H */
