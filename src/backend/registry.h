/*
 * registry.h - the kinds of device numatp can make (docs/architecture.md
 * "Devices"): a table of {name, how many there are, how to make one}. The
 * model asks it for devices by kind name and never includes a backend's own
 * header; registry.c is the one place that does, so a new kind is a folder
 * under src/backend/ and a row there.
 */
#ifndef NTP_BACKEND_REGISTRY_H
#define NTP_BACKEND_REGISTRY_H

#include "backend/device.h"

#include <stddef.h>
#include <stdint.h>

/* What making one device may need; each kind reads the fields it uses and ignores the rest. */
struct ntp_device_spec {
    int index;                /* which device of the kind: the GPU ordinal (cuda) */
    int node;                 /* NUMA node the device stands for, -1: no binding (cpu) */
    int n_threads;            /* threads of its team, >= 1 (cpu) */
    const int *pus;           /* [n_threads] OS processor of each thread; NULL: unbound (cpu) */
    const ntp_topology *topo; /* binds the team's threads; NULL: unbound (cpu; not owned) */
    uint64_t memory_limit;    /* bytes the device may use; 0: what the system has (cpu) */
    const char *isa;          /* kernel ISA name; NULL: best available or NTP_ISA (cpu) */
};

struct ntp_device_kind {
    const char *name; /* "cpu", "cuda" */
    /*
     * Devices of this kind on this machine (for the cpu kind: NUMA nodes).
     * On 0, why (when not NULL) receives a one-line reason.
     */
    int (*count)(char *why, size_t why_size);
    /* Make a device; free it with d->iface->destroy(d). */
    ntp_status (*create)(const struct ntp_device_spec *spec, struct ntp_device **out);
};

/* The kind named name, or NULL. */
const struct ntp_device_kind *ntp__device_kind(const char *name);

/* Make a device of kind `kind`; NTP_E_UNSUPPORTED names an unknown kind. */
ntp_status ntp__device_new(const char *kind, const struct ntp_device_spec *spec,
                           struct ntp_device **out);

#endif /* NTP_BACKEND_REGISTRY_H */
