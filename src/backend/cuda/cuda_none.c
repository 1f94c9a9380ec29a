/*
 * cuda_none.c - the CUDA entry points of a build without CUDA (meson
 * -Dcuda=disabled, or no nvcc found): no devices, and a clear message for
 * anyone who asks for one. Lets the loader and the tests call the same
 * functions in every build.
 */
#include "backend/cuda/cuda_device.h"

#include "core/core.h"

#include <stdio.h>

static const char no_cuda[] = "numatp was built without CUDA (meson option -Dcuda, needs nvcc)";

int ntp__cuda_device_count(char *why, size_t why_size)
{
    if (why)
        snprintf(why, why_size, "%s", no_cuda);
    return 0;
}

ntp_status ntp__cuda_device_new(const struct ntp_cuda_device_params *p, struct ntp_device **out)
{
    (void)p;
    *out = NULL;
    return ntp__error(NTP_E_UNSUPPORTED, "no CUDA device found (%s)", no_cuda);
}

ntp_status ntp__cuda_test_matmul(struct ntp_device *d, const struct ntp_cuda_test_matmul *a)
{
    (void)d;
    (void)a;
    return ntp__error(NTP_E_UNSUPPORTED, "%s", no_cuda);
}

ntp_status ntp__cuda_test_rows(struct ntp_device *d, const struct ntp_cuda_test_rows *a)
{
    (void)d;
    (void)a;
    return ntp__error(NTP_E_UNSUPPORTED, "%s", no_cuda);
}

ntp_status ntp__cuda_test_cublas(void)
{
    return ntp__error(NTP_E_UNSUPPORTED, "%s", no_cuda);
}

size_t ntp__cuda_test_block_bytes(enum ntp_type t)
{
    (void)t;
    return 0;
}

ntp_status ntp__cuda_test_dequant_host(enum ntp_type t, const void *row, int64_t k, float *out)
{
    (void)t;
    (void)row;
    (void)k;
    (void)out;
    return ntp__error(NTP_E_UNSUPPORTED, "%s", no_cuda);
}

bool ntp_cuda_compiled(void)
{
    return false;
}

int32_t ntp_cuda_device_count(void)
{
    return 0;
}

ntp_status ntp_cuda_device_desc(int32_t i, char *buf, size_t size)
{
    (void)i;
    if (buf && size)
        snprintf(buf, size, "%s", no_cuda);
    return ntp__error(NTP_E_DEVICE, "no CUDA device found (%s)", no_cuda);
}

ntp_status ntp__cuda_test_dot_host(enum ntp_type t, const void *row, int64_t k, const float *x,
                                   float *out)
{
    (void)t;
    (void)row;
    (void)k;
    (void)x;
    (void)out;
    return ntp__error(NTP_E_UNSUPPORTED, "%s", no_cuda);
}
