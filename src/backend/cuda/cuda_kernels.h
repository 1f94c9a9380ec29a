/*
 * cuda_kernels.h - the CUDA kernels of the GPU device, as plain C launchers
 * (cuda_kernels.cu defines them; cuda_device.c calls them). Every pointer
 * except the host-side argument structs is a device address. Each launcher
 * queues its work on stream and returns the launch status
 * (cudaGetLastError()); errors of the kernel itself surface at the next
 * synchronization, which the caller checks.
 *
 * Shapes follow the CPU device (src/backend/cpu/cpu_int.h): activations are
 * row-major float rows, one row per token; weights are GGUF rows (ne0 = k
 * contiguous elements, quantized in blocks along it).
 */
#ifndef NTP_BACKEND_CUDA_KERNELS_H
#define NTP_BACKEND_CUDA_KERNELS_H

#include "ntp.h"

#include <cuda_runtime_api.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Most tokens the matrix-vector kernel takes in one launch; larger batches use cuBLAS. */
#define NTP_CU_MATVEC_MAX_TOK 8
/* Widest head the attention kernel handles (elements of q, k or v per head). */
#define NTP_CU_MAX_HEAD_DIM 256

/* A weight matrix in device memory. */
struct ntp_cu_mat {
    enum ntp_type type; /* one the kernels read natively (ntp__cu_type_native) */
    const void *data;   /* row r at data + r * row_stride */
    size_t row_stride;  /* bytes between rows */
    int64_t k;          /* elements per row */
    int64_t n_rows;     /* rows (output features) */
};

/* Whether the kernels read weights of type t directly (F32, F16, Q4_0, Q8_0, Q4_K, Q6_K). */
bool ntp__cu_type_native(enum ntp_type t);

/* A row of k elements of native type t dequantized on the host by the kernels' own code. */
void ntp__cu_dequant_row_host(enum ntp_type t, const void *row, int64_t k, float *out);

/* dot(row, x) of k elements of native type t, as ntp__cu_matvec's 32 lanes sum it, on the host. */
float ntp__cu_dot_host(enum ntp_type t, const void *row, int64_t k, const float *x);

/* Bytes per block of a native type as the kernels read it (0 for other types). */
size_t ntp__cu_block_bytes(enum ntp_type t);

/*
 * y[t * ldy + r] = dot(W row r, x[t * ldx ..]) for r < n_rows, t < n_tok
 * (1 <= n_tok <= NTP_CU_MATVEC_MAX_TOK). One warp per row, 256 elements a
 * step, 8 of them per lane, so that the row and x are read contiguously;
 * each lane keeps one sum per token.
 */
cudaError_t ntp__cu_matvec(const struct ntp_cu_mat *w, const float *x, int64_t ldx, int64_t n_tok,
                           float *y, int64_t ldy, cudaStream_t st);

/* Rows [r0, r0 + n) of W as floats into dst ([n][w->k], row-major): the tiles cuBLAS reads. */
cudaError_t ntp__cu_dequant_f32(const struct ntp_cu_mat *w, int64_t r0, int64_t n, float *dst,
                                cudaStream_t st);

/* The same as binary16 (rounded to nearest even): the tiles of half-precision products. */
cudaError_t ntp__cu_dequant_f16(const struct ntp_cu_mat *w, int64_t r0, int64_t n, void *dst,
                                cudaStream_t st);

/* dst[t * k + i] = x[t * ldx + i] as binary16 (nearest even) for t < n_tok, i < k. */
cudaError_t ntp__cu_to_f16(void *dst, const float *x, int64_t ldx, int64_t k, int64_t n_tok,
                           cudaStream_t st);

/* y = x / sqrt(mean(x^2) + eps) * w, for n_rows contiguous rows of n; y may be x. */
cudaError_t ntp__cu_rmsnorm(float *y, const float *x, const float *w, int64_t n, int64_t n_rows,
                            float eps, cudaStream_t st);

/* y[i] += x[i] for i < n. */
cudaError_t ntp__cu_add(float *y, const float *x, int64_t n, cudaStream_t st);

/* x[r * width + i] += b[i] for r < n_rows, i < width. */
cudaError_t ntp__cu_add_bias(float *x, const float *b, int64_t width, int64_t n_rows,
                             cudaStream_t st);

/* g[i] = silu(g[i]) * u[i] for i < n. */
cudaError_t ntp__cu_swiglu(float *g, const float *u, int64_t n, cudaStream_t st);

/*
 * g[i] = gelu(g[i]) * u[i] for i < n, with GELU's tanh form
 * x/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) as ntp__geglu_f32 (gemma).
 */
cudaError_t ntp__cu_geglu(float *g, const float *u, int64_t n, cudaStream_t st);

/*
 * Rotate heads in place: x is [n_tok][n_head][hd] floats, cs is [n_tok][n_rot]
 * (cos, sin of each pair at the token's position, from ntp__rope_cache_f32).
 */
cudaError_t ntp__cu_rope(float *x, const float *cs, int64_t n_tok, int64_t n_head, int64_t hd,
                         int64_t n_rot, bool neox, cudaStream_t st);

/*
 * Copy n_tok rows of width floats (src, rows width apart) into cache rows
 * row[0], row[1], ... (GPU int32s; cache rows width elements apart), as F16
 * (rounded to nearest even) or F32.
 */
cudaError_t ntp__cu_kv_store(void *cache, bool f16, const float *src, int64_t n_tok, int64_t width,
                             const int32_t *row, cudaStream_t st);

/*
 * Causal GQA attention of a batch over one layer's KV cache, in which a
 * token's sequence starts at row row[t] - pos[t] and its position p is the
 * row after that start (every layer, sliding-window ones included).
 */
struct ntp_cu_attn {
    const float *q;     /* [n_tok][n_head][hdk] */
    const void *k;      /* the layer's keys: [n_ctx][n_head_kv][hdk], F16 or F32 */
    const void *v;      /* the layer's values: [n_ctx][n_head_kv][hdv] */
    bool f16;           /* cache element type: F16 (true) or F32 */
    float *out;         /* [n_tok][n_head][hdv] */
    int64_t n_tok;      /* tokens of the batch */
    const int32_t *pos; /* [n_tok] GPU: token t's position in its sequence */
    const int32_t *row; /* [n_tok] GPU: token t's cache row (its sequence's start + pos) */
    int64_t window;     /* 0: token t attends to positions 0 .. pos[t]; else only to the
                           last window of them, max(0, pos[t] - window + 1) .. pos[t]
                           (a sliding-window layer, hp.n_swa) */
    int64_t n_head;     /* query heads of the shard */
    int64_t n_head_kv;  /* KV heads of the shard */
    int64_t head0;      /* first query head of the shard (model numbering) */
    int64_t head_kv0;   /* first KV head of the shard */
    int64_t group;      /* query heads per KV head (model n_head / n_head_kv) */
    int64_t hdk, hdv;   /* head widths, at most NTP_CU_MAX_HEAD_DIM */
    float scale;        /* multiplies q.k */
    int64_t n_split;    /* blocks per (head, token), each a share of its positions,
                           1 .. NTP_CU_ATTN_MAX_SPLIT */
    float *part;        /* n_split > 1: [n_tok][n_head][n_split][hdv + 2] GPU floats of scratch */
};

/* Most splits of a (head, token)'s positions (ntp_cu_attn.n_split). */
#define NTP_CU_ATTN_MAX_SPLIT 64

/*
 * One thread block per (query head, token) and split of its positions; its
 * warps take chunks of 32 positions, a lane scoring each; softmax in float,
 * online over the chunks. With several splits (few heads and tokens, many
 * positions: decode at depth), a second kernel merges the splits' results.
 */
cudaError_t ntp__cu_attention(const struct ntp_cu_attn *a, cudaStream_t st);

#ifdef __cplusplus
}
#endif

#endif /* NTP_BACKEND_CUDA_KERNELS_H */
