/*
 * cuda_device.h - the CUDA device: one GPU holding a range of transformer
 * blocks (and optionally the output head) in its own memory, behind the
 * same struct ntp_device_iface as the CPU devices (docs/architecture.md
 * "Devices"). Only the hidden state crosses PCIe, in hidden_write
 * and hidden_read; weights cross once, at load.
 *
 * Weights of the types the kernels read directly (F32, F16, Q4_0, Q8_0,
 * Q4_K, Q6_K) are used as the file stores them. Other types are accepted
 * too: when a context is first made, they are dequantized to F16 copies in
 * GPU memory (with a log line naming the tensor), so they cost more memory.
 *
 * A build without CUDA (meson -Dcuda=disabled, or no nvcc) compiles
 * cuda_none.c instead: the device count is 0 and making a device fails with
 * NTP_E_UNSUPPORTED, so callers need no #ifdef.
 */
#ifndef NTP_BACKEND_CUDA_DEVICE_H
#define NTP_BACKEND_CUDA_DEVICE_H

#include "backend/device.h"

#include <stddef.h>

struct ntp_cuda_device_params {
    int ordinal; /* CUDA device index, 0 .. ntp_cuda_device_count() - 1 */
};

/*
 * Make a device on GPU p->ordinal. NTP_E_UNSUPPORTED when numatp was built
 * without CUDA, NTP_E_DEVICE when the GPU cannot be used (no driver, no such
 * device, cuBLAS failure); the message says which. Free with d->iface->destroy(d).
 */
ntp_status ntp__cuda_device_new(const struct ntp_cuda_device_params *p, struct ntp_device **out);

/*
 * Usable GPUs; 0 without CUDA in the build, without a driver or without a
 * device. When why is not NULL it receives a one-line reason for a 0
 * ("numatp was built without CUDA", "cudaGetDeviceCount: no CUDA-capable
 * device is detected") or the first device's name.
 */
int ntp__cuda_device_count(char *why, size_t why_size);

/* ------------------------------------------------------------ test hooks */

/*
 * The kernels one by one, on host buffers (copied to the GPU and back), for
 * tests/gpu/ to compare with the CPU reference. Not for the inference path.
 */
struct ntp_cuda_test_matmul {
    enum ntp_type type; /* weight type (any; non-native types go through F16 like the device) */
    const void *w;      /* host: n_rows rows of ntp_type_row_size(type, k) bytes */
    int64_t n_rows, k;
    const float *x; /* host: [n_tok][k] */
    int64_t n_tok;  /* tokens; above NTP_CU_MATVEC_MAX_TOK the cuBLAS path runs */
    float *y;       /* host: [n_tok][n_rows] result */
};

ntp_status ntp__cuda_test_matmul(struct ntp_device *d, const struct ntp_cuda_test_matmul *a);

/* Which float op ntp__cuda_test_rows runs. */
enum ntp_cuda_test_op {
    NTP_CUDA_TEST_RMSNORM, /* y[r] = rmsnorm(x[r], w, eps) over rows of n */
    NTP_CUDA_TEST_SWIGLU,  /* y = silu(x) * x2, n * n_rows elements */
    NTP_CUDA_TEST_GEGLU,   /* y = gelu(x) * x2 (GELU's tanh form), n * n_rows elements */
    NTP_CUDA_TEST_ROPE,    /* y = x rotated: rows are heads of width n, aux the cos/sin cache
                              [n_rows / aux_heads][n_rot] */
};

struct ntp_cuda_test_rows {
    enum ntp_cuda_test_op op;
    const float *x;  /* host: [n_rows][n] */
    const float *x2; /* host: second operand of SWIGLU and GEGLU, else NULL */
    const float *w;  /* host: [n] norm weight (RMSNORM), may be NULL */
    const float *cs; /* host: ROPE cos/sin cache, [n_rows / heads][n_rot] */
    int64_t n, n_rows;
    int64_t heads; /* ROPE: heads per token */
    int64_t n_rot; /* ROPE: rotated dimensions */
    bool neox;     /* ROPE: NeoX pairing */
    float eps;     /* RMSNORM */
    float *y;      /* host: [n_rows][n] result */
};

ntp_status ntp__cuda_test_rows(struct ntp_device *d, const struct ntp_cuda_test_rows *a);

/*
 * Loads cuBLAS as making the first device does (dlopen, see cuda_int.h);
 * needs no GPU. NTP_E_UNSUPPORTED without CUDA in the build.
 */
ntp_status ntp__cuda_test_cublas(void);

/* Bytes per block the kernels assume for type t (0: not read directly); needs no GPU. */
size_t ntp__cuda_test_block_bytes(enum ntp_type t);
/*
 * A row of k elements of native type t dequantized by the kernels' own
 * dequantizer, run on the host; needs no GPU. NTP_E_UNSUPPORTED without CUDA
 * in the build or for a type the kernels do not read.
 */
ntp_status ntp__cuda_test_dequant_host(enum ntp_type t, const void *row, int64_t k, float *out);
/*
 * dot(row, x) of k elements of native type t as the matrix-vector kernel's
 * lanes compute and sum it, run on the host; needs no GPU. Errors as above.
 */
ntp_status ntp__cuda_test_dot_host(enum ntp_type t, const void *row, int64_t k, const float *x,
                                   float *out);

#endif /* NTP_BACKEND_CUDA_DEVICE_H */
