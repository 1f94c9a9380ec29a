/*
 * cpu_features.c - cpuid + XGETBV feature detection (see cpu_features.h).
 */
#include "kernels/cpu_features.h"

#include <string.h>

#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#define NTP_X86 1
#endif

#if NTP_X86
/* XCR0: the register state the OS saves on context switch. xgetbv without -mxsave. */
static unsigned long long read_xcr0(void)
{
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return (unsigned long long)hi << 32 | lo;
}

/*
 * Linux hands a process the large AMX tile state (8 KiB per thread) only
 * after it asks (arch_prctl ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA; kernel
 * 5.16 on); without it the first tile instruction kills the process. Asking
 * again is harmless, and the answer holds for every thread of the process.
 */
static bool amx_permitted(void)
{
#if defined(__linux__) && defined(SYS_arch_prctl)
    enum { ARCH_REQ_XCOMP_PERM = 0x1023, XFEATURE_XTILEDATA = 18 };
    return syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0;
#else
    return false;
#endif
}
#endif

struct ntp_cpu_features ntp__cpu_features(void)
{
    struct ntp_cpu_features f;
    memset(&f, 0, sizeof f);
#if NTP_X86
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d))
        return f;
    const bool osxsave = c >> 27 & 1;
    const bool fma = c >> 12 & 1, f16c = c >> 29 & 1, avx = c >> 28 & 1;
    if (!osxsave || !avx)
        return f;
    const unsigned long long xcr0 = read_xcr0();
    /* SSE + AVX state (bits 1, 2); opmask + ZMM halves (5, 6, 7); tile cfg + data (17, 18). */
    const bool os_ymm = (xcr0 & 0x6) == 0x6;
    const bool os_zmm = os_ymm && (xcr0 & 0xe0) == 0xe0;
    const bool os_amx = (xcr0 & 0x60000) == 0x60000;
    if (!os_ymm || __get_cpuid_max(0, NULL) < 7)
        return f;
    unsigned a7 = 0, b7 = 0, c7 = 0, d7 = 0, a71 = 0, b71 = 0, c71 = 0, d71 = 0;
    __cpuid_count(7, 0, a7, b7, c7, d7);
    if (a7 >= 1)
        __cpuid_count(7, 1, a71, b71, c71, d71);
    f.fma = fma;
    f.f16c = f16c;
    f.avx2 = b7 >> 5 & 1;
    if (os_zmm) {
        f.avx512f = b7 >> 16 & 1;
        f.avx512dq = b7 >> 17 & 1;
        f.avx512bw = b7 >> 30 & 1;
        f.avx512vl = b7 >> 31 & 1;
        f.avx512vnni = c7 >> 11 & 1;
        f.avx512bf16 = a71 >> 5 & 1;
    }
    if (os_amx && (d7 >> 24 & 1) && amx_permitted()) {
        f.amx_bf16 = d7 >> 22 & 1;
        f.amx_tile = true;
        f.amx_int8 = d7 >> 25 & 1;
    }
#endif
    return f;
}
