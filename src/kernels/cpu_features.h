/*
 * cpu_features.h - what this x86-64 CPU and its operating system let the
 * kernels use: cpuid leaves 1 and 7 for the instructions, XGETBV for the
 * register state the OS saves (a CPU may have AVX-512 that the OS disabled).
 * On other CPUs every flag is false (only the reference kernels are built
 * there). Reading AMX asks Linux for the tile state once per call
 * (idempotent, process-wide).
 *
 * No global state: every call reads the CPU afresh and returns a struct.
 */
#ifndef NTP_KERNELS_CPU_FEATURES_H
#define NTP_KERNELS_CPU_FEATURES_H

#include "ntp.h"

#include <stdbool.h>

/* Instruction-set support, each flag true only when the CPU has it AND the OS saves its state. */
struct ntp_cpu_features {
    bool avx2, fma, f16c;                  /* AVX2 kernels need all three (plus OS YMM state) */
    bool avx512f, avx512bw, avx512vl;      /* AVX-512 foundation, byte/word, 128/256-bit forms */
    bool avx512dq, avx512vnni, avx512bf16; /* dword/qword ops, vpdpbusd, bf16 dot */
    bool amx_tile, amx_int8, amx_bf16; /* AMX: tile state in XCR0 and granted to this process
                                          (cpu_features.c); amx_int8 runs kernels.c's "amx" */
};

/* Read cpuid + XGETBV now. */
struct ntp_cpu_features ntp__cpu_features(void);

#endif /* NTP_KERNELS_CPU_FEATURES_H */
