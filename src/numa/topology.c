/*
 * topology.c - the machine's NUMA nodes, their cores and the last-level cache,
 * from hwloc. A node is what numatp turns into one tensor-parallel device, so
 * only nodes with processors count: memory-only nodes (CXL expanders, HBM in
 * flat mode) hold no threads and are left out, and so are processors the
 * process is not bound to. The hwloc topology is kept in the object (not in a
 * global) for the code that binds threads later.
 */
#include "numa/topology.h"

#include "core/core.h"

#include <hwloc.h>
#include <stdlib.h>

struct ntp_topo_node {
    int os_index;          /* the kernel's node number (for mbind/numa_alloc_onnode) */
    int cores;             /* physical cores whose PUs are all in the node's cpuset */
    int pus;               /* hardware threads */
    uint64_t memory;       /* local memory in bytes, 0 if unknown */
    hwloc_bitmap_t cpuset; /* the node's PUs; owned */
};

struct ntp_topology {
    hwloc_topology_t hw;         /* owned; loaded once in ntp_topology_detect */
    int n_nodes;                 /* >= 1 */
    struct ntp_topo_node *nodes; /* [n_nodes], in hwloc's logical order; owned */
    uint64_t llc_bytes;          /* size of one last-level cache, 0 if unknown */
};

/* Size of one instance of the deepest data or unified cache level found. */
static uint64_t llc_size(hwloc_topology_t hw)
{
    static const hwloc_obj_type_t levels[] = {HWLOC_OBJ_L5CACHE, HWLOC_OBJ_L4CACHE,
                                              HWLOC_OBJ_L3CACHE, HWLOC_OBJ_L2CACHE,
                                              HWLOC_OBJ_L1CACHE};
    for (size_t i = 0; i < sizeof levels / sizeof levels[0]; i++) {
        hwloc_obj_t c = hwloc_get_next_obj_by_type(hw, levels[i], NULL);
        if (c && c->attr && c->attr->cache.type != HWLOC_OBJ_CACHE_INSTRUCTION)
            return c->attr->cache.size;
    }
    return 0;
}

/* Fill n from a cpuset (copied) and a memory size. */
static ntp_status fill_node(hwloc_topology_t hw, struct ntp_topo_node *n, int os_index,
                            hwloc_const_cpuset_t cpuset, uint64_t memory)
{
    n->cpuset = hwloc_bitmap_dup(cpuset);
    if (n->cpuset == NULL)
        return ntp__error(NTP_E_NOMEM, "topology: out of memory");
    n->os_index = os_index;
    n->memory = memory;
    n->pus = hwloc_get_nbobjs_inside_cpuset_by_type(hw, cpuset, HWLOC_OBJ_PU);
    n->cores = hwloc_get_nbobjs_inside_cpuset_by_type(hw, cpuset, HWLOC_OBJ_CORE);
    /* Some virtual machines report PUs without cores: count each PU as a core. */
    if (n->cores <= 0)
        n->cores = n->pus;
    return NTP_OK;
}

static ntp_status collect_nodes(struct ntp_topology *t)
{
    const int n_hw = hwloc_get_nbobjs_by_type(t->hw, HWLOC_OBJ_NUMANODE);
    t->nodes = calloc(n_hw > 0 ? (size_t)n_hw : 1, sizeof *t->nodes);
    if (t->nodes == NULL)
        return ntp__error(NTP_E_NOMEM, "topology: out of memory");
    for (int i = 0; i < n_hw; i++) {
        hwloc_obj_t o = hwloc_get_obj_by_type(t->hw, HWLOC_OBJ_NUMANODE, (unsigned)i);
        if (o == NULL || o->cpuset == NULL || hwloc_bitmap_iszero(o->cpuset))
            continue;
        ntp_status s = fill_node(t->hw, &t->nodes[t->n_nodes], (int)o->os_index, o->cpuset,
                                 o->attr ? o->attr->numanode.local_memory : 0);
        if (s != NTP_OK)
            return s;
        t->n_nodes++;
    }
    if (t->n_nodes == 0) {
        /* No usable NUMA node reported: the whole machine is one node. */
        hwloc_obj_t root = hwloc_get_root_obj(t->hw);
        return fill_node(t->hw, &t->nodes[0], 0, hwloc_topology_get_topology_cpuset(t->hw),
                         root->total_memory);
    }
    return NTP_OK;
}

/*
 * Keep only the processors this process may run on, when something bound it
 * to fewer than the machine's (mpirun binding each rank to a core or a
 * socket, taskset, numactl --cpunodebind): numatp then places its threads
 * inside that binding instead of over ranks or programs beside it. Nodes
 * left without processors drop out. A binding hwloc cannot read changes
 * nothing.
 */
static void restrict_to_binding(hwloc_topology_t hw)
{
    hwloc_bitmap_t set = hwloc_bitmap_alloc();
    if (set && hwloc_get_cpubind(hw, set, HWLOC_CPUBIND_PROCESS) == 0 &&
        !hwloc_bitmap_iszero(set) &&
        hwloc_bitmap_intersects(set, hwloc_topology_get_topology_cpuset(hw)) &&
        !hwloc_bitmap_isincluded(hwloc_topology_get_topology_cpuset(hw), set))
        (void)hwloc_topology_restrict(hw, set, 0);
    hwloc_bitmap_free(set);
}

ntp_status ntp_topology_detect(ntp_topology **out)
{
    *out = NULL;
    struct ntp_topology *t = calloc(1, sizeof *t);
    if (t == NULL)
        return ntp__error(NTP_E_NOMEM, "topology: out of memory");
    if (hwloc_topology_init(&t->hw) != 0) {
        free(t);
        return ntp__error(NTP_E_NOMEM, "topology: hwloc_topology_init failed");
    }
    if (hwloc_topology_load(t->hw) != 0) {
        ntp_topology_free(t);
        return ntp__error(NTP_E_IO, "topology: hwloc could not read the machine's topology");
    }
    restrict_to_binding(t->hw);
    ntp_status s = collect_nodes(t);
    if (s != NTP_OK) {
        ntp_topology_free(t);
        return s;
    }
    t->llc_bytes = llc_size(t->hw);
    *out = t;
    return NTP_OK;
}

void ntp_topology_free(ntp_topology *t)
{
    if (t == NULL)
        return;
    for (int i = 0; t->nodes && i < t->n_nodes; i++)
        hwloc_bitmap_free(t->nodes[i].cpuset);
    free(t->nodes);
    if (t->hw)
        hwloc_topology_destroy(t->hw);
    free(t);
}

int ntp_topology_n_nodes(const ntp_topology *t)
{
    return t->n_nodes;
}

/* The i-th node, or NULL when i is out of range (callers then answer 0 / -1). */
static const struct ntp_topo_node *node_at(const ntp_topology *t, int i)
{
    return t && i >= 0 && i < t->n_nodes ? &t->nodes[i] : NULL;
}

int ntp_topology_node_os_index(const ntp_topology *t, int i)
{
    const struct ntp_topo_node *n = node_at(t, i);
    return n ? n->os_index : -1;
}

int ntp_topology_node_cores(const ntp_topology *t, int i)
{
    const struct ntp_topo_node *n = node_at(t, i);
    return n ? n->cores : 0;
}

int ntp_topology_node_pus(const ntp_topology *t, int i)
{
    const struct ntp_topo_node *n = node_at(t, i);
    return n ? n->pus : 0;
}

uint64_t ntp_topology_node_memory(const ntp_topology *t, int i)
{
    const struct ntp_topo_node *n = node_at(t, i);
    return n ? n->memory : 0;
}

uint64_t ntp_topology_llc_bytes(const ntp_topology *t)
{
    return t->llc_bytes;
}

hwloc_topology_t ntp__topology_hwloc(const ntp_topology *t)
{
    return t->hw;
}

hwloc_const_cpuset_t ntp__topology_node_cpuset(const ntp_topology *t, int i)
{
    const struct ntp_topo_node *n = node_at(t, i);
    return n ? n->cpuset : NULL;
}
