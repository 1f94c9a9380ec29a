/*
 * gpu_util.h - what the GPU tests share: the skip rule (no CUDA device ->
 * "SKIP: no CUDA device (...)" and exit 77, which meson counts as skipped),
 * a seeded random source and the normalized mean squared error used for
 * every bound.
 */
#ifndef NTP_TESTS_GPU_UTIL_H
#define NTP_TESTS_GPU_UTIL_H

#include "backend/cpu/cpu_device.h"
#include "backend/cuda/cuda_device.h"
#include "test.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * NTP_GPU_STAND_IN=cpu: a CPU device plays the GPU (tests whose comparisons
 * do not need CUDA's own hooks use it to check their own logic without a GPU).
 */
static inline bool gpu_stand_in(void)
{
    const char *s = getenv("NTP_GPU_STAND_IN");
    return s && strcmp(s, "cpu") == 0;
}

/* Exit 77 with the reason when this machine or build has no usable GPU (and no stand-in). */
static inline void gpu_require(bool stand_in_ok)
{
    char why[200];
    if (stand_in_ok && gpu_stand_in()) {
        printf("GPU stand-in: a CPU device (NTP_GPU_STAND_IN=cpu)\n");
        return;
    }
    if (ntp__cuda_device_count(why, sizeof why) == 0)
        NTP_TEST_SKIP("no CUDA device (%s)", why);
    printf("GPU: %s\n", why);
}

/* The first GPU (or its stand-in) as a device; fails the test and returns NULL when it cannot. */
static inline struct ntp_device *gpu_open(void)
{
    struct ntp_device *d = NULL;
    ntp_status s;
    if (gpu_stand_in()) {
        const struct ntp_cpu_device_params cp = {.node = -1, .n_threads = 1};
        s = ntp__cpu_device_new(&cp, &d);
    } else {
        const struct ntp_cuda_device_params p = {.ordinal = 0};
        s = ntp__cuda_device_new(&p, &d);
    }
    if (s != NTP_OK) {
        fprintf(stderr, "cannot open the GPU device: %s\n", ntp_last_error());
        ntp_test_failures++;
        return NULL;
    }
    printf("device: %s\n", d->desc);
    return d;
}

static uint64_t gpu_rng_state = 88172645463325252ull;

/* Uniform in [-1, 1) (xorshift64). */
static inline float gpu_rand(void)
{
    gpu_rng_state ^= gpu_rng_state << 13;
    gpu_rng_state ^= gpu_rng_state >> 7;
    gpu_rng_state ^= gpu_rng_state << 17;
    return (float)((gpu_rng_state >> 40) * (1.0 / 8388608.0)) - 1.0f;
}

/* sum (a - ref)^2 / sum ref^2; infinity for a non-finite a. */
static inline double gpu_nmse(const float *a, const float *ref, size_t n)
{
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(a[i]))
            return INFINITY;
        const double d = (double)a[i] - ref[i];
        num += d * d;
        den += (double)ref[i] * ref[i];
    }
    return den > 0 ? num / den : num;
}

#endif /* NTP_TESTS_GPU_UTIL_H */
