/*
 * layout.c - devices and thread placement from the topology. A node's
 * "slots" are the processors its threads may use: the first hardware thread
 * of every core, then (with smt) the others, so that filling slots in order
 * fills physical cores first.
 */
#include "numa/layout.h"

#include "core/core.h"
#include "numa/topology.h"

#include <errno.h>
#include <hwloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Most processors considered per node. */
#define MAX_SLOTS 4096

ntp_status ntp__layout_parse_nodes(const char *list, int *nodes, int cap, int *n_out)
{
    bool seen[1024] = {false};
    const char *p = list;
    while (*p) {
        char *end;
        errno = 0;
        long a = strtol(p, &end, 10), b = a;
        if (end == p || errno)
            goto bad;
        p = end;
        if (*p == '-') {
            b = strtol(p + 1, &end, 10);
            if (end == p + 1 || errno)
                goto bad;
            p = end;
        }
        if (a < 0 || b < a || b >= 1024)
            goto bad;
        for (long i = a; i <= b; i++)
            seen[i] = true;
        if (*p == ',')
            p++;
        else if (*p)
            goto bad;
    }
    *n_out = 0;
    for (int i = 0; i < 1024; i++)
        if (seen[i]) {
            if (*n_out == cap)
                return ntp__error(NTP_E_INVALID_ARG, "--numa-nodes '%s': more than %d nodes", list,
                                  cap);
            nodes[(*n_out)++] = i;
        }
    if (*n_out == 0)
        goto bad;
    return NTP_OK;
bad:
    return ntp__error(NTP_E_INVALID_ARG,
                      "--numa-nodes '%s': expected OS node numbers like 0,1 or 0-3", list);
}

/* The processors of topology node i in slot order; returns how many. */
static int node_slots(const ntp_topology *t, int i, bool smt, int *slots)
{
    hwloc_topology_t hw = ntp__topology_hwloc(t);
    hwloc_const_cpuset_t set = ntp__topology_node_cpuset(t, i);
    int n = 0;
    const int n_cores = hwloc_get_nbobjs_inside_cpuset_by_type(hw, set, HWLOC_OBJ_CORE);
    if (n_cores <= 0) { /* some virtual machines report PUs only */
        int pu;
        hwloc_bitmap_foreach_begin(pu, set) if (n < MAX_SLOTS) slots[n++] = pu;
        hwloc_bitmap_foreach_end();
        return n;
    }
    for (int round = 0; round < (smt ? 8 : 1); round++) {
        hwloc_obj_t core = NULL;
        while ((core = hwloc_get_next_obj_inside_cpuset_by_type(hw, set, HWLOC_OBJ_CORE, core))) {
            int k = 0, pu;
            hwloc_bitmap_foreach_begin(pu, core->cpuset) if (k++ == round && n < MAX_SLOTS &&
                                                             hwloc_bitmap_isset(set, (unsigned)pu))
                slots[n++] = pu;
            hwloc_bitmap_foreach_end();
        }
    }
    return n;
}

/* Topology indices of the nodes to use (all with cores, or those listed). */
static ntp_status select_nodes(const ntp_topology *t, const char *list, int *sel, int *n_sel)
{
    const int n = ntp_topology_n_nodes(t);
    *n_sel = 0;
    if (list == NULL || *list == '\0') {
        for (int i = 0; i < n && *n_sel < NTP_LAYOUT_MAX_DEV; i++)
            sel[(*n_sel)++] = i;
        return NTP_OK;
    }
    int os[NTP_LAYOUT_MAX_DEV], n_os;
    ntp_status s = ntp__layout_parse_nodes(list, os, NTP_LAYOUT_MAX_DEV, &n_os);
    if (s != NTP_OK)
        return s;
    for (int j = 0; j < n_os; j++) {
        int found = -1;
        for (int i = 0; i < n; i++)
            if (ntp_topology_node_os_index(t, i) == os[j])
                found = i;
        if (found < 0)
            return ntp__error(NTP_E_INVALID_ARG,
                              "--numa-nodes: node %d does not exist or has no cores (this "
                              "machine has %d node(s) with cores)",
                              os[j], n);
        sel[(*n_sel)++] = found;
    }
    return NTP_OK;
}

/* Threads of device d: explicit, a share of -t, or one per slot. */
static int device_threads(const struct ntp_layout_params *p, int n_dev, int n_slots)
{
    if (p->threads_per_device > 0)
        return p->threads_per_device;
    if (p->n_threads > 0)
        return p->n_threads / n_dev > 0 ? p->n_threads / n_dev : 1;
    return n_slots;
}

/* Fill the devices placed on topology node ti: devices [d0, d1) share its slots. */
static ntp_status fill_node_devices(const ntp_topology *t, const struct ntp_layout_params *p,
                                    int ti, int d0, int d1, struct ntp_layout *l, int *slots)
{
    const int n_slots = node_slots(t, ti, p->smt, slots), k = d1 - d0;
    if (n_slots <= 0)
        return ntp__error(NTP_E_DEVICE, "topology: node %d has no processors",
                          ntp_topology_node_os_index(t, ti));
    for (int d = d0; d < d1; d++) {
        const int i = d - d0;
        int s0 = 0, s1 = n_slots;
        if (k <= n_slots) { /* a share of the slots, larger shares first */
            s0 = i * (n_slots / k) + (i < n_slots % k ? i : n_slots % k);
            s1 = s0 + n_slots / k + (i < n_slots % k ? 1 : 0);
        } else { /* more devices than processors: share them */
            s0 = i % n_slots;
            s1 = s0 + 1;
            l->oversubscribed = true;
        }
        struct ntp_dev_layout *dl = &l->dev[d];
        dl->node = ntp_topology_node_os_index(t, ti);
        dl->n_slots = s1 - s0;
        dl->n_threads = device_threads(p, l->n_dev, s1 - s0);
        dl->pus = malloc((size_t)dl->n_threads * sizeof *dl->pus);
        if (dl->pus == NULL)
            return ntp__error(NTP_E_NOMEM, "topology: out of memory");
        for (int j = 0; j < dl->n_threads; j++)
            dl->pus[j] = slots[s0 + j % (s1 - s0)];
        if (dl->n_threads > s1 - s0)
            l->oversubscribed = true;
    }
    return NTP_OK;
}

static void describe(struct ntp_layout *l, int n_sel, int n_nodes)
{
    char *b = l->desc;
    const size_t cap = sizeof l->desc;
    int w = snprintf(b, cap, "tp %d: ", l->n_dev);
    if (l->split)
        w += snprintf(b + w, cap - (size_t)w, "%d NUMA node(s) used, split into %d virtual devices",
                      n_sel, l->n_dev);
    else
        w += snprintf(b + w, cap - (size_t)w, "one device per NUMA node (%d of %d)", l->n_dev,
                      n_nodes);
    for (int d = 0; d < l->n_dev && w < (int)cap; d++)
        w += snprintf(b + w, cap - (size_t)w, "%s dev %d node %d %d thr", d ? "," : ";", d,
                      l->dev[d].node, l->dev[d].n_threads);
    if (l->oversubscribed && w < (int)cap)
        snprintf(b + w, cap - (size_t)w, " (oversubscribed: more threads than processors)");
}

ntp_status ntp__layout_make(const ntp_topology *t, const struct ntp_layout_params *p,
                            struct ntp_layout *out)
{
    memset(out, 0, sizeof *out);
    int sel[NTP_LAYOUT_MAX_DEV], n_sel;
    ntp_status s = select_nodes(t, p->numa_nodes, sel, &n_sel);
    if (s != NTP_OK)
        return s;
    const int n_dev = p->tp > 0 ? p->tp : n_sel;
    if (n_dev > NTP_LAYOUT_MAX_DEV)
        return ntp__error(NTP_E_INVALID_ARG, "--tp %d: at most %d devices", n_dev,
                          NTP_LAYOUT_MAX_DEV);
    if (n_dev < n_sel)
        n_sel = n_dev; /* fewer devices than nodes: the first nodes */
    out->n_dev = n_dev;
    out->split = n_dev > n_sel;
    int *slots = malloc(MAX_SLOTS * sizeof *slots);
    if (slots == NULL)
        return ntp__error(NTP_E_NOMEM, "topology: out of memory");
    for (int j = 0; j < n_sel && s == NTP_OK; j++) {
        /* Devices [j * n_dev / n_sel, (j + 1) * n_dev / n_sel) go to node j. */
        s = fill_node_devices(t, p, sel[j], j * n_dev / n_sel, (j + 1) * n_dev / n_sel, out, slots);
    }
    free(slots);
    if (s != NTP_OK) {
        ntp__layout_free(out);
        return s;
    }
    describe(out, n_sel, ntp_topology_n_nodes(t));
    return NTP_OK;
}

void ntp__layout_free(struct ntp_layout *l)
{
    for (int d = 0; d < l->n_dev; d++) {
        free(l->dev[d].pus);
        l->dev[d].pus = NULL;
    }
}
