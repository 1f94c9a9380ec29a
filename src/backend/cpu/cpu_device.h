/*
 * cpu_device.h - the CPU device: one NUMA node's cores running a model shard
 * with one thread team (DESIGN.md "Threads and memory"). Today the team is an
 * OpenMP parallel region per call and memory is plain aligned memory; the
 * NUMA issue binds the team to the node's cpuset and places memory on it.
 */
#ifndef NTP_BACKEND_CPU_DEVICE_H
#define NTP_BACKEND_CPU_DEVICE_H

#include "backend/device.h"

struct ntp_cpu_device_params {
    int node;                 /* NUMA node the device stands for (-1: no binding) */
    int n_threads;            /* threads of its team (>= 1) */
    uint64_t memory_limit;    /* bytes the device may use; 0: the system's MemAvailable */
    const char *isa;          /* kernel ISA ("ref"); NULL: best available / NTP_ISA */
    const ntp_topology *topo; /* binds the team's threads; NULL: unbound (not owned) */
    const int *pus;           /* [n_threads] OS processor of each thread; NULL: unbound (copied) */
};

/* Make a CPU device. Free it with d->iface->destroy(d). */
ntp_status ntp__cpu_device_new(const struct ntp_cpu_device_params *p, struct ntp_device **out);

#endif /* NTP_BACKEND_CPU_DEVICE_H */
