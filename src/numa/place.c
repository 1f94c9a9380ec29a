/*
 * place.c - node-bound buffers and the check of their pages. Memory comes
 * straight from mmap so that the binding (mbind) is set before the first
 * touch; a small header in front of the returned pointer remembers the
 * mapping's length for munmap.
 */
#include "numa/place.h"

#include "core/core.h"

#include <errno.h>
#include <numaif.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* Bytes in front of the user pointer: the mapping length, padded to a cache line. */
#define PLACE_HEADER 64
/* Buffers of at least HUGE_MIN bytes are mapped HUGE_ALIGN-aligned and madvised for THP. */
#define HUGE_ALIGN ((size_t)2 << 20)
#define HUGE_MIN   ((size_t)4 << 20)

/* Set once mbind has failed, so the warning is logged once per process. */
static atomic_bool mbind_warned;

static size_t page_size(void)
{
    long ps = sysconf(_SC_PAGESIZE);
    return ps > 0 ? (size_t)ps : 4096;
}

/* Bind [p, p + len) to node (best effort: a kernel without NUMA says no). */
static void bind_to_node(void *p, size_t len, int node)
{
    if (node < 0 || node >= (int)(8 * sizeof(unsigned long) * 16))
        return;
    unsigned long mask[16] = {0};
    mask[node / (8 * sizeof(unsigned long))] |= 1UL << (node % (8 * sizeof(unsigned long)));
    if (mbind(p, len, MPOL_BIND, mask, 8 * sizeof mask, 0) != 0 &&
        !atomic_exchange(&mbind_warned, true))
        ntp__log(NTP_LOG_WARN, "mbind to node %d failed (%s): memory is not node-bound", node,
                 strerror(errno));
}

/*
 * A mapping of len bytes (a multiple of HUGE_ALIGN) starting on a HUGE_ALIGN
 * boundary, so that transparent huge pages can back all of it: over-map by
 * one huge page and unmap the unaligned head and tail.
 */
static void *map_huge_aligned(size_t len)
{
    uint8_t *m =
        mmap(NULL, len + HUGE_ALIGN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        return MAP_FAILED;
    uint8_t *a = (uint8_t *)(((uintptr_t)m + HUGE_ALIGN - 1) / HUGE_ALIGN * HUGE_ALIGN);
    if (a > m)
        munmap(m, (size_t)(a - m));
    if (a + len < m + len + HUGE_ALIGN)
        munmap(a + len, (size_t)(m + len + HUGE_ALIGN - (a + len)));
    /*
     * Decode streams every weight byte once per token: with 4 KiB pages the
     * page walks cost ~10-20% of matvec bandwidth (bench/RESULTS.md "Kernels").
     * Best effort: THP "never" or an old kernel just leaves small pages.
     */
    madvise(a, len, MADV_HUGEPAGE);
    return a;
}

void *ntp__place_alloc(size_t size, int node)
{
    const size_t ps = page_size();
    if (size > SIZE_MAX - PLACE_HEADER - 2 * HUGE_ALIGN)
        return NULL;
    const bool huge = size >= HUGE_MIN;
    const size_t unit = huge ? HUGE_ALIGN : ps;
    const size_t len = (size + PLACE_HEADER + unit - 1) / unit * unit;
    void *m = huge ? map_huge_aligned(len)
                   : mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        return NULL;
    bind_to_node(m, len, node);
    *(size_t *)m = len;
    return (uint8_t *)m + PLACE_HEADER;
}

void ntp__place_free(void *p)
{
    if (p == NULL)
        return;
    void *m = (uint8_t *)p - PLACE_HEADER;
    munmap(m, *(size_t *)m);
}

size_t ntp__place_size(const void *p)
{
    return *(const size_t *)((const uint8_t *)p - PLACE_HEADER) - PLACE_HEADER;
}

ntp_status ntp__place_count(const void *p, size_t size, int node, struct ntp_place_count *c)
{
    enum { CHUNK = 1024 };
    const size_t ps = page_size();
    uintptr_t a = ((uintptr_t)p + ps - 1) / ps * ps, end = ((uintptr_t)p + size) / ps * ps;
    void *pages[CHUNK];
    int status[CHUNK];
    while (a < end) {
        size_t n = 0;
        for (; n < CHUNK && a < end; n++, a += ps)
            pages[n] = (void *)a;
        if (move_pages(0, (unsigned long)n, pages, NULL, status, 0) != 0) {
            if (errno != ENOSYS)
                return ntp__error(NTP_E_IO, "move_pages failed (%s): cannot tell where pages are",
                                  strerror(errno));
            /* No NUMA page calls (a kernel without NUMA, or qemu-user, which does not pass
               them on): libnuma sees one node then, and every page is on it. */
            for (size_t i = 0; i < n; i++)
                status[i] = 0;
        }
        for (size_t i = 0; i < n; i++) {
            c->bytes += ps;
            if (status[i] == node || (node < 0 && status[i] >= 0))
                c->on_node += ps;
            else if (status[i] == -ENOENT)
                c->not_mapped += ps;
            else if (status[i] >= 0)
                c->other_node = status[i];
        }
    }
    return NTP_OK;
}
