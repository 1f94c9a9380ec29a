/* alloc.c - aligned allocation (node-bound allocation lives in src/numa/). */
#include "core.h"

#include <stdlib.h>

void *ntp__alloc_aligned(size_t size, size_t align)
{
    if (size == 0 || align == 0 || (align & (align - 1)) != 0)
        return NULL;
    if (align < sizeof(void *))
        align = sizeof(void *);
    void *p = NULL;
    if (posix_memalign(&p, align, size) != 0)
        return NULL;
    return p;
}

void ntp__free_aligned(void *p)
{
    free(p);
}
