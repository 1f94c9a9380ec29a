/*
 * membw_isa.h - wider read loops for the STREAM read test. A plain C sum
 * compiles to 16-byte SSE2 loads (the baseline of x86-64), and one core then
 * keeps fewer cache lines in flight: on this machine's Xeon (2 vCPUs, one
 * 512 MiB array, best of 15 alternating passes, three runs) the C loop read
 * 4.4-7.1 GB/s, AVX2 6.1-10.4 and AVX-512 7.7-11.4. The write test gained
 * nothing from wider non-temporal stores and stays SSE2. Each file is built
 * with its own -m flags (src/numa/meson.build) and called only when
 * ntp__cpu_features() says the CPU and OS run it.
 */
#ifndef NTP_NUMA_MEMBW_ISA_H
#define NTP_NUMA_MEMBW_ISA_H

#include <stddef.h>
#include <stdint.h>

/* Sum of u[i0, i1) as 64-bit integers; u 64-byte aligned, i0 and i1 multiples of 16. */
uint64_t ntp__membw_read_avx2(const uint64_t *u, size_t i0, size_t i1);
uint64_t ntp__membw_read_avx512(const uint64_t *u, size_t i0, size_t i1);

#endif /* NTP_NUMA_MEMBW_ISA_H */
