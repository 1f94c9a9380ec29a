/*
 * cuda_int.h - what the CUDA device's C files share: the device and
 * per-context state structs and the status helpers. Internal to
 * src/backend/cuda/.
 */
#ifndef NTP_BACKEND_CUDA_INT_H
#define NTP_BACKEND_CUDA_INT_H

#include "backend/cuda/cuda_device.h"
#include "backend/cuda/cuda_kernels.h"

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

/* A weight of a non-native type dequantized to F16 (one per source tensor). */
struct cuda_conv {
    const void *src;           /* the uploaded tensor's device address (key; not owned) */
    struct ntp_dev_tensor f16; /* its F16 copy; f16.data is cudaMalloc'd (owner: the device) */
};

struct cuda_device {
    int ordinal;            /* CUDA device index */
    int n_sm;               /* its multiprocessors */
    cublasHandle_t blas;    /* cuBLAS handle bound to the device (owner) */
    struct cuda_conv *conv; /* [n_conv] F16 copies of non-native weights (owner) */
    int n_conv, cap_conv;
};

/*
 * Per-context state; every pointer but cs_host is GPU memory owned by the
 * state; [a][b] means a rows of b floats. Widths are the shard's: nh, nkv,
 * nff as in struct ntp_shard.
 */
struct cuda_state {
    struct ntp_device *dev;        /* the device that made it */
    struct ntp_dev_state_params p; /* as given (pointers owned by the model) */
    int64_t n_embd, hdk, hdv, nh, nkv, nff, n_rot;
    struct ntp_dev_tensor *wl;             /* [n_layer][NTP_T_COUNT] weights, F16 copies substituted
                                              for non-native types (host array, owner) */
    struct ntp_dev_tensor wg[NTP_T_COUNT]; /* per-model weights, substituted likewise */
    /*
     * [n_layer][n_seq][n_ctx][nkv * hdk] (K), [..][nkv * hdv] (V): row p of
     * a sequence holds its position p in every layer. Sliding-window layers
     * keep this plain layout too (and read only their window of it); the
     * ring the CPU device keeps for them (config.h, ntp__kv_ring) only saves
     * memory.
     */
    void *k_cache, *v_cache;
    float *x;            /* [n_batch][n_embd] hidden state */
    float *xn;           /* [n_batch][n_embd] normed input of a projection */
    float *q;            /* [n_batch][nh * hdk] */
    float *kx;           /* [n_batch][nkv * hdk] */
    float *vx;           /* [n_batch][nkv * hdv] */
    float *att;          /* [n_batch][nh * hdv] */
    float *part;         /* [n_batch][n_embd] output of O and down */
    float *gate, *up;    /* [n_batch][nff] */
    float *rope_cs;      /* [rope_tables * n_batch][n_rot] cos/sin of a run's n_tok
                            tokens: the rows of cfg->rope, then those of cfg->rope_swa */
    float *cs_host;      /* host staging of rope_cs, the same size (malloc) */
    int32_t *tok_dev;    /* [2][n_batch] a run's token positions, then their cache rows in a
                            layer (sequence * n_ctx + position) */
    int32_t *tok_host;   /* host staging of tok_dev (malloc) */
    int64_t rope_tables; /* 2 when the model has sliding-window layers, else 1 */
    float *wtile;        /* [wtile_floats] dequantized weight rows for cuBLAS, or NULL */
    int64_t wtile_floats;
    void *xh;            /* [n_batch][widest k] binary16 activations for cuBLAS, or NULL */
    float *attn_part;    /* [2 * attn_blocks][hdv + 2] the attention splits' partial results */
    int64_t attn_blocks; /* attention blocks that fill the GPU: split positions below that */
    float *logits;       /* [logit_rows][shard n_vocab] output head results, or NULL */
    int64_t logit_rows;
};

/* NTP_OK, or NTP_E_DEVICE naming the call and CUDA's message. */
ntp_status ntp__cu_status(cudaError_t e, const char *what);
/* NTP_OK, or NTP_E_DEVICE naming the call and cuBLAS's status. */
ntp_status ntp__cublas_status(cublasStatus_t e, const char *what);

/*
 * The cuBLAS calls the device makes. numatp does not link cuBLAS: loading it
 * (its constructors) made every numatp start take 0.5 s and 51,000 page
 * faults, GPU or not, so ntp__cublas_open dlopens it when the first device
 * is made. The types are the header's, so a call through these
 * pointers is checked as a direct one would be.
 */
struct ntp_cublas {
    __typeof__(cublasCreate_v2) *create;
    __typeof__(cublasDestroy_v2) *destroy;
    __typeof__(cublasSgemm_v2) *sgemm;
    __typeof__(cublasGemmEx) *gemm_ex;
};
extern struct ntp_cublas ntp__cublas;
/* Loads cuBLAS once (thread-safe); NTP_E_DEVICE naming the library and dlerror's words. */
ntp_status ntp__cublas_open(void);

/*
 * Download t (a non-native type), dequantize it with the reference and
 * upload an F16 copy into new GPU memory (out->data; owner: the caller).
 */
ntp_status ntp__cuda_convert_f16(struct ntp_device *d, const struct ntp_dev_tensor *t,
                                 struct ntp_dev_tensor *out);

/* The forward pass (cuda_layer.c). */
ntp_status ntp__cuda_run_layers(struct cuda_state *s, const struct ntp_dev_run *run);
ntp_status ntp__cuda_run_output(struct cuda_state *s, const struct ntp_dev_output_run *run);
/* One product y[t][r] = dot(W row r, x row t). */
struct cuda_mm {
    const struct ntp_dev_tensor *w; /* weights in GPU memory, a native type */
    const float *x;                 /* [n_tok][ldx] GPU floats */
    int64_t ldx, n_tok;
    float *y; /* [n_tok][ldy] GPU floats; columns [0, w->ne[1]) written */
    int64_t ldy;
    float *wtile;         /* scratch for the cuBLAS path (NULL: matvec kernel only) */
    int64_t wtile_floats; /* its size; at least w->ne[0] when not NULL */
    void *xh;             /* with wtile: n_tok * w->ne[0] binary16 of scratch */
    const float **xh_of;  /* NULL, or the x whose binary16 copy xh holds (NULL: none): a
                             product from the same x, unchanged since, reuses the copy */
};

/*
 * Matrix-vector kernels for up to NTP_CU_MATVEC_MAX_TOK tokens, cuBLAS tiles
 * above: float weights (F32, F16) in single precision; quantized ones
 * dequantized to binary16 and multiplied with binary16 activations on the
 * tensor cores, summing in float (their quantization error is some 30 times
 * binary16's rounding).
 */
ntp_status ntp__cuda_mm(struct cuda_device *c, const struct cuda_mm *a);

#endif /* NTP_BACKEND_CUDA_INT_H */
