/*
 * place.h - node-local memory (docs/architecture.md "Threads and memory"): buffers bound
 * to one NUMA node with mbind, and the check of where their pages really are
 * (move_pages). A device's weights, KV cache, scratch and all-reduce buffers
 * come from here so that every byte it streams is in its own node's memory.
 */
#ifndef NTP_NUMA_PLACE_H
#define NTP_NUMA_PLACE_H

#include "ntp.h"

#include <stddef.h>
#include <stdint.h>

/*
 * size bytes, 64-byte aligned, zero-filled lazily by the kernel, whose pages
 * are bound to OS node `node` (MPOL_BIND) before anything touches them.
 * node < 0, or a kernel that refuses mbind (no NUMA support), gives unbound
 * memory: --verify-numa then reports where it landed. NULL when out of memory.
 */
void *ntp__place_alloc(size_t size, int node);
/* Free a ntp__place_alloc result; NULL is a no-op. */
void ntp__place_free(void *p);
/* Usable size of a ntp__place_alloc result. */
size_t ntp__place_size(const void *p);

/* Where the pages of one buffer are, as move_pages reports them. */
struct ntp_place_count {
    uint64_t bytes;      /* bytes checked (whole pages inside the buffer) */
    uint64_t on_node;    /* of them, bytes on the expected node */
    uint64_t not_mapped; /* of them, bytes not yet backed by a page (never touched) */
    int other_node;      /* a node other pages were found on, or -1 */
};

/*
 * Add to *c where the pages of [p, p + size) are, expecting node `node`
 * (pages never touched are counted as not_mapped, not as misplaced). Pages are
 * queried with move_pages(0, n, pages, NULL, status, 0), which moves nothing.
 */
ntp_status ntp__place_count(const void *p, size_t size, int node, struct ntp_place_count *c);

#endif /* NTP_NUMA_PLACE_H */
