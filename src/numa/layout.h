/*
 * layout.h - which devices a run uses and which processors each device's
 * threads run on (docs/architecture.md "Threads and memory"): by default one device per
 * NUMA node that has cores, one thread per physical core. With more devices
 * than nodes (`--tp N` on a small machine) the nodes' cores are split into
 * virtual devices; that is how tensor parallelism is tested on one node.
 */
#ifndef NTP_NUMA_LAYOUT_H
#define NTP_NUMA_LAYOUT_H

#include "ntp.h"

#include <stdbool.h>

/* Most devices of one layout. */
#define NTP_LAYOUT_MAX_DEV 16

struct ntp_layout_params {
    int tp;                 /* devices; 0: one per selected NUMA node with cores */
    const char *numa_nodes; /* OS node indices to use ("0,2-3"); NULL or "": every node */
    int threads_per_device; /* 0: n_threads / devices when n_threads is set, else one per core */
    int n_threads;          /* total threads asked for (-t); 0: not given */
    bool smt;               /* also use the second (third...) hardware thread of each core */
};

struct ntp_dev_layout {
    int node;      /* OS index of the device's NUMA node */
    int n_threads; /* threads of its team */
    int *pus;      /* [n_threads] OS processor index of each thread (malloc'd; owner: layout) */
    int n_slots;   /* distinct processors among pus */
};

struct ntp_layout {
    int n_dev; /* devices, 1 .. NTP_LAYOUT_MAX_DEV */
    struct ntp_dev_layout dev[NTP_LAYOUT_MAX_DEV];
    bool split;          /* some node holds several (virtual) devices */
    bool oversubscribed; /* some processor runs threads of more than one device or thread */
    char desc[320];      /* one line for the log: what was chosen and why */
};

/* Choose the devices. Errors name the option that cannot be met. */
ntp_status ntp__layout_make(const ntp_topology *t, const struct ntp_layout_params *p,
                            struct ntp_layout *out);
/* Free the pus arrays; the struct itself is the caller's. */
void ntp__layout_free(struct ntp_layout *l);

/* Parse "0,2-3" into a sorted list of distinct OS node indices (at most cap). */
ntp_status ntp__layout_parse_nodes(const char *list, int *nodes, int cap, int *n_out);

#endif /* NTP_NUMA_LAYOUT_H */
