/*
 * cpu_device.h - the CPU device: one NUMA node's cores running a model shard
 * with one persistent thread team bound to the node's cores (numa/team.h), its
 * weights and buffers in the node's memory (docs/architecture.md "Threads
 * and memory").
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

/* NUMA nodes of this machine (1 without NUMA support): one CPU device each by default. */
int ntp__cpu_device_count(char *why, size_t why_size);

/*
 * OpenBLAS (prefill attention) picks its kernels from the CPU model when it
 * loads, and a release older than the CPU falls back to generic SSE kernels
 * (Debian 12's 0.3.21 runs "Prescott" on Emerald Rapids). For OpenBLAS core
 * name `core` and kernel ISA `isa`: the OPENBLAS_CORETYPE that gives kernels
 * of that ISA's width ("SkylakeX" for avx512, "Haswell" for avx2) when core
 * is such a fallback, else NULL.
 */
const char *ntp__blas_coretype_hint(const char *core, const char *isa);

/*
 * This process's OpenBLAS in words ("OpenBLAS 0.3.21, Prescott kernels", or
 * "none" without it) into buf; returns ntp__blas_coretype_hint for it.
 */
const char *ntp__cpu_blas_desc(char *buf, size_t size, const char *isa);

#endif /* NTP_BACKEND_CPU_DEVICE_H */
