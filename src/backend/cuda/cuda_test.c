/*
 * cuda_test.c - the test hooks of cuda_device.h: one kernel at a time on
 * host data, for tests/gpu/ to hold against the CPU reference. They reuse
 * the device's own paths (ntp__cuda_mm with its F16 conversion and cuBLAS
 * tiles), so what they test is what inference runs.
 */
#include "backend/cuda/cuda_int.h"

#include "core/core.h"

#include <stdlib.h>

/* GPU buffers of one hook call, freed together. */
struct bufs {
    struct ntp_device *d;
    void *p[7];
    int n;
};

static void *gpu_copy(struct bufs *b, const void *src, size_t bytes, ntp_status *st)
{
    void *p = NULL;
    if (*st == NTP_OK)
        *st = b->d->iface->buffer_alloc(b->d, bytes, &p);
    if (*st == NTP_OK && src)
        *st = ntp__cu_status(cudaMemcpy(p, src, bytes, cudaMemcpyHostToDevice), "cudaMemcpy");
    if (p)
        b->p[b->n++] = p;
    return p;
}

static void bufs_free(struct bufs *b)
{
    for (int i = 0; i < b->n; i++)
        b->d->iface->buffer_free(b->d, b->p[i]);
}

ntp_status ntp__cuda_test_matmul(struct ntp_device *d, const struct ntp_cuda_test_matmul *a)
{
    struct bufs b = {.d = d};
    size_t row = 0;
    ntp_status st = ntp_type_row_size(a->type, a->k, &row);
    void *wdata = gpu_copy(&b, a->w, row * (size_t)a->n_rows, &st);
    float *x = gpu_copy(&b, a->x, (size_t)(a->n_tok * a->k) * sizeof(float), &st);
    float *y = gpu_copy(&b, NULL, (size_t)(a->n_tok * a->n_rows) * sizeof(float), &st);
    /* A tile of at most 7 rows, so that the cuBLAS path runs several tiles and a ragged one. */
    const int64_t tile_floats = a->k * (a->n_rows < 7 ? a->n_rows : 7);
    float *tile = NULL;
    void *xh = NULL;
    if (a->n_tok > NTP_CU_MATVEC_MAX_TOK) {
        tile = gpu_copy(&b, NULL, (size_t)tile_floats * sizeof(float), &st);
        xh = gpu_copy(&b, NULL, (size_t)(a->n_tok * a->k) * 2, &st);
    }
    const struct ntp_dev_tensor raw = {a->type, {a->k, a->n_rows}, row, wdata, false};
    struct ntp_dev_tensor w = raw;
    if (st == NTP_OK && !ntp__cu_type_native(a->type)) {
        st = ntp__cuda_convert_f16(d, &raw, &w);
        if (st == NTP_OK)
            b.p[b.n++] = w.data;
    }
    if (st == NTP_OK) {
        const struct cuda_mm m = {&w, x, a->k, a->n_tok, y, a->n_rows, tile, tile_floats, xh, NULL};
        st = ntp__cuda_mm(d->impl, &m);
    }
    if (st == NTP_OK)
        st = ntp__cu_status(cudaDeviceSynchronize(), "matmul");
    if (st == NTP_OK)
        st = ntp__cu_status(cudaMemcpy(a->y, y, (size_t)(a->n_tok * a->n_rows) * sizeof(float),
                                       cudaMemcpyDeviceToHost),
                            "cudaMemcpy");
    bufs_free(&b);
    return st;
}

ntp_status ntp__cuda_test_rows(struct ntp_device *d, const struct ntp_cuda_test_rows *a)
{
    struct bufs b = {.d = d};
    const size_t bytes = (size_t)(a->n * a->n_rows) * sizeof(float);
    ntp_status st = NTP_OK;
    float *x = gpu_copy(&b, a->x, bytes, &st);
    float *x2 = a->x2 ? gpu_copy(&b, a->x2, bytes, &st) : NULL;
    float *w = a->w ? gpu_copy(&b, a->w, (size_t)a->n * sizeof(float), &st) : NULL;
    float *cs = NULL;
    if (a->op == NTP_CUDA_TEST_ROPE && a->heads > 0)
        cs = gpu_copy(&b, a->cs, (size_t)(a->n_rows / a->heads * a->n_rot) * sizeof(float), &st);
    if (st != NTP_OK) {
        bufs_free(&b);
        return st;
    }
    cudaError_t e = cudaErrorInvalidValue;
    switch (a->op) {
    case NTP_CUDA_TEST_RMSNORM:
        e = ntp__cu_rmsnorm(x, x, w, a->n, a->n_rows, a->eps, 0);
        break;
    case NTP_CUDA_TEST_SWIGLU:
        e = x2 ? ntp__cu_swiglu(x, x2, a->n * a->n_rows, 0) : cudaErrorInvalidValue;
        break;
    case NTP_CUDA_TEST_GEGLU:
        e = x2 ? ntp__cu_geglu(x, x2, a->n * a->n_rows, 0) : cudaErrorInvalidValue;
        break;
    case NTP_CUDA_TEST_ROPE:
        e = a->heads > 0
                ? ntp__cu_rope(x, cs, a->n_rows / a->heads, a->heads, a->n, a->n_rot, a->neox, 0)
                : cudaErrorInvalidValue;
        break;
    }
    st = ntp__cu_status(e, "test kernel");
    if (st == NTP_OK)
        st = ntp__cu_status(cudaDeviceSynchronize(), "test kernel");
    if (st == NTP_OK)
        st = ntp__cu_status(cudaMemcpy(a->y, x, bytes, cudaMemcpyDeviceToHost), "cudaMemcpy");
    bufs_free(&b);
    return st;
}

ntp_status ntp__cuda_test_cublas(void)
{
    return ntp__cublas_open();
}

size_t ntp__cuda_test_block_bytes(enum ntp_type t)
{
    return ntp__cu_block_bytes(t);
}

ntp_status ntp__cuda_test_dequant_host(enum ntp_type t, const void *row, int64_t k, float *out)
{
    if (!ntp__cu_type_native(t))
        return ntp__error(NTP_E_UNSUPPORTED, "%s: not read directly by the CUDA kernels",
                          ntp_type_name(t));
    ntp__cu_dequant_row_host(t, row, k, out);
    return NTP_OK;
}

ntp_status ntp__cuda_test_dot_host(enum ntp_type t, const void *row, int64_t k, const float *x,
                                   float *out)
{
    if (!ntp__cu_type_native(t))
        return ntp__error(NTP_E_UNSUPPORTED, "%s: not read directly by the CUDA kernels",
                          ntp_type_name(t));
    *out = ntp__cu_dot_host(t, row, k, x);
    return NTP_OK;
}
