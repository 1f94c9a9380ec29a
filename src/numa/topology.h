/*
 * topology.h - internal access to the hwloc objects behind an ntp_topology,
 * for the code that binds threads and memory to a node. The public queries
 * (nodes, cores, memory, cache) are in ntp.h.
 */
#ifndef NTP_NUMA_TOPOLOGY_H
#define NTP_NUMA_TOPOLOGY_H

#include "ntp.h"

#include <hwloc.h>

/* The loaded hwloc topology; owned by t, valid until ntp_topology_free(t). */
hwloc_topology_t ntp__topology_hwloc(const ntp_topology *t);
/* The PUs of the i-th node (owned by t), or NULL when i is out of range. */
hwloc_const_cpuset_t ntp__topology_node_cpuset(const ntp_topology *t, int i);

#endif /* NTP_NUMA_TOPOLOGY_H */
