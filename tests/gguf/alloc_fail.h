/*
 * alloc_fail.h - allocation-failure injection for a test linked with
 * -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,--wrap=posix_memalign: every
 * allocation of the library (and of the test) goes through these wrappers,
 * and alloc_fail_nth(n) makes the n-th one from then on fail, once. Only
 * allocations inside libc and other shared libraries escape (hwloc, OpenBLAS).
 */
#ifndef NTP_TESTS_ALLOC_FAIL_H
#define NTP_TESTS_ALLOC_FAIL_H

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
int __real_posix_memalign(void **p, size_t align, size_t n);

/* Allocations left before the one that fails; negative: none fails. */
static atomic_long alloc_countdown = -1;
static atomic_long alloc_calls; /* allocations seen since the last alloc_fail_nth */

static inline void alloc_fail_nth(long n)
{
    atomic_store(&alloc_calls, 0);
    atomic_store(&alloc_countdown, n);
}

/* Whether the allocation being made is the one to fail. */
static inline bool alloc_fails(void)
{
    atomic_fetch_add(&alloc_calls, 1);
    return atomic_load(&alloc_countdown) >= 0 && atomic_fetch_sub(&alloc_countdown, 1) == 0;
}

void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t n);
int __wrap_posix_memalign(void **p, size_t align, size_t n);

void *__wrap_malloc(size_t n)
{
    return alloc_fails() ? NULL : __real_malloc(n);
}

void *__wrap_calloc(size_t n, size_t size)
{
    return alloc_fails() ? NULL : __real_calloc(n, size);
}

void *__wrap_realloc(void *p, size_t n)
{
    return alloc_fails() ? NULL : __real_realloc(p, n);
}

int __wrap_posix_memalign(void **p, size_t align, size_t n)
{
    return alloc_fails() ? ENOMEM : __real_posix_memalign(p, align, n);
}

#endif /* NTP_TESTS_ALLOC_FAIL_H */
