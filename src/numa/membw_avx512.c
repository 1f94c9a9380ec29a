/*
 * membw_avx512.c - the STREAM read loop with 64-byte loads (see membw_isa.h);
 * built with -mavx512f.
 */
#include "numa/membw_isa.h"

#include <immintrin.h>

uint64_t ntp__membw_read_avx512(const uint64_t *u, size_t i0, size_t i1)
{
    /* Two lines per iteration into two accumulators. */
    __m512i a = _mm512_setzero_si512(), b = a;
    for (size_t i = i0; i < i1; i += 16) {
        a = _mm512_add_epi64(a, _mm512_load_si512(u + i));
        b = _mm512_add_epi64(b, _mm512_load_si512(u + i + 8));
    }
    /*
     * Sum the lanes as unsigned: gcc's _mm512_reduce_add_epi64 adds in signed
     * long long, which overflows (undefined behaviour) on these bit patterns.
     */
    uint64_t lane[8];
    _mm512_storeu_si512(lane, _mm512_add_epi64(a, b));
    uint64_t sum = 0;
    for (int i = 0; i < 8; i++)
        sum += lane[i];
    return sum;
}
