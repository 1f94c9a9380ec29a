/* membw_avx2.c - the STREAM read loop with 32-byte loads (see membw_isa.h); built with -mavx2. */
#include "numa/membw_isa.h"

#include <immintrin.h>

uint64_t ntp__membw_read_avx2(const uint64_t *u, size_t i0, size_t i1)
{
    /* Two accumulators: one line (64 bytes) per iteration, no dependency between halves. */
    __m256i a = _mm256_setzero_si256(), b = a;
    for (size_t i = i0; i < i1; i += 8) {
        a = _mm256_add_epi64(a, _mm256_load_si256((const __m256i *)(u + i)));
        b = _mm256_add_epi64(b, _mm256_load_si256((const __m256i *)(u + i + 4)));
    }
    a = _mm256_add_epi64(a, b);
    return (uint64_t)_mm256_extract_epi64(a, 0) + (uint64_t)_mm256_extract_epi64(a, 1) +
           (uint64_t)_mm256_extract_epi64(a, 2) + (uint64_t)_mm256_extract_epi64(a, 3);
}
