/*
 * cuda_kernels.cu - the GPU kernels of the CUDA device (see cuda_kernels.h).
 *
 * Kept deliberately simple so that they are obviously correct: weights are
 * read in their GGUF block format and dequantized to float in registers,
 * 32 elements (one "unit") at a time; activations stay float; sums are float
 * with warp-shuffle reductions. The block layouts are those of
 * src/kernels/blocks.h (ggml-common.h); the offsets below are written out
 * because blocks.h is C11 and this file is C++, and static_asserts check
 * them against the field sizes; ntp__cu_block_bytes() exports them so
 * that test_gpu_ops holds them against the type table (src/core/type.c).
 */
#include "backend/cuda/cuda_kernels.h"

#include <cuda_fp16.h>

#include <math.h>
#include <stdint.h>

namespace
{

constexpr int kUnit = 32;     /* elements one thread dequantizes at a time */
constexpr int kThreads = 128; /* threads per block of the row kernels (4 warps) */
constexpr int kWarps = kThreads / 32;
constexpr int kMaxTok = NTP_CU_MATVEC_MAX_TOK;

/* Block sizes in bytes, as the type table has them. */
constexpr int kQ4_0Bytes = 18;  /* f16 d; u8 qs[16] */
constexpr int kQ8_0Bytes = 34;  /* f16 d; i8 qs[32] */
constexpr int kQ4_KBytes = 144; /* f16 d, dmin; u8 scales[12]; u8 qs[128] */
constexpr int kQ6_KBytes = 210; /* u8 ql[128]; u8 qh[64]; i8 scales[16]; f16 d */
static_assert(kQ4_0Bytes == 2 + 16, "Q4_0 layout");
static_assert(kQ8_0Bytes == 2 + 32, "Q8_0 layout");
static_assert(kQ4_KBytes == 4 + 12 + 128, "Q4_K layout");
static_assert(kQ6_KBytes == 128 + 64 + 16 + 2, "Q6_K layout");

/*
 * The dequantizers are __host__ __device__: the same code also runs on the
 * host (ntp__cu_dequant_row_host) so that tests check its index arithmetic
 * against the reference on machines without a GPU.
 */
#define NTP_HD __host__ __device__

/* A binary16 stored at p (2-byte aligned in every block format) as float. */
NTP_HD inline float ld_f16(const uint8_t *p)
{
    __half_raw r;
    r.x = *reinterpret_cast<const unsigned short *>(p);
    return __half2float(__half(r));
}

/* Q4_0 block b: x[j] = (q[j] - 8) * d; element j < 16 is the low nibble of qs[j]. */
NTP_HD void dq_q4_0(const uint8_t *row, int64_t b, float *out)
{
    const uint8_t *blk = row + b * kQ4_0Bytes;
    const float d = ld_f16(blk);
    const uint8_t *qs = blk + 2;
    for (int j = 0; j < 16; j++) {
        out[j] = (float)((int)(qs[j] & 15) - 8) * d;
        out[j + 16] = (float)((int)(qs[j] >> 4) - 8) * d;
    }
}

/* Q8_0 block b: x[j] = qs[j] * d. */
NTP_HD void dq_q8_0(const uint8_t *row, int64_t b, float *out)
{
    const uint8_t *blk = row + b * kQ8_0Bytes;
    const float d = ld_f16(blk);
    const int8_t *qs = reinterpret_cast<const int8_t *>(blk + 2);
    for (int j = 0; j < 32; j++)
        out[j] = (float)qs[j] * d;
}

/* Q4_K sub-block s (0..7) of super-block b: x = d * sc * q - dmin * mn. */
NTP_HD void dq_q4_k(const uint8_t *row, int64_t b, int s, float *out)
{
    const uint8_t *blk = row + b * kQ4_KBytes;
    const float d = ld_f16(blk), dmin = ld_f16(blk + 2);
    const uint8_t *sc = blk + 4, *qs = blk + 16;
    int scale, mn;
    if (s < 4) {
        scale = sc[s] & 63;
        mn = sc[s + 4] & 63;
    } else {
        scale = (sc[s + 4] & 15) | ((sc[s - 4] >> 6) << 4);
        mn = (sc[s + 4] >> 4) | ((sc[s] >> 6) << 4);
    }
    const float d1 = d * (float)scale, m1 = dmin * (float)mn;
    const uint8_t *q = qs + 32 * (s / 2); /* chunk s/2: low nibbles for even s, high for odd */
    const int shift = (s & 1) ? 4 : 0;
    for (int l = 0; l < 32; l++)
        out[l] = d1 * (float)((q[l] >> shift) & 15) - m1;
}

/*
 * Q6_K elements 32j .. 32j+31 of super-block b (j = 0..7): half h = j / 4,
 * group g = j % 4; low 4 bits from ql, high 2 bits from qh, scale per 16.
 */
NTP_HD void dq_q6_k(const uint8_t *row, int64_t b, int j, float *out)
{
    const uint8_t *blk = row + b * kQ6_KBytes;
    const uint8_t *ql = blk, *qh = blk + 128;
    const int8_t *sc = reinterpret_cast<const int8_t *>(blk + 192);
    const float d = ld_f16(blk + 208);
    const int h = j / 4, g = j % 4;
    const uint8_t *lo = ql + 64 * h + ((g & 1) ? 32 : 0);
    const int lo_shift = (g >= 2) ? 4 : 0;
    const uint8_t *hi = qh + 32 * h;
    for (int l = 0; l < 32; l++) {
        const int q = ((lo[l] >> lo_shift) & 15) | (((hi[l] >> (2 * g)) & 3) << 4);
        out[l] = d * (float)sc[8 * h + 2 * g + l / 16] * (float)(q - 32);
    }
}

/*
 * Unit u (elements 32u .. 32u+31) of a row of k elements as floats; returns
 * how many of the 32 exist (fewer only at the end of a float row).
 */
NTP_HD int dq_unit(int type, const uint8_t *row, int64_t u, int64_t k, float *out)
{
    switch (type) {
    case NTP_TYPE_Q4_0:
        dq_q4_0(row, u, out);
        return kUnit;
    case NTP_TYPE_Q8_0:
        dq_q8_0(row, u, out);
        return kUnit;
    case NTP_TYPE_Q4_K:
        dq_q4_k(row, u / 8, (int)(u % 8), out);
        return kUnit;
    case NTP_TYPE_Q6_K:
        dq_q6_k(row, u / 8, (int)(u % 8), out);
        return kUnit;
    default:
        break;
    }
    const int64_t e0 = u * kUnit;
    const int n = (int)(k - e0 < kUnit ? k - e0 : kUnit);
    if (type == NTP_TYPE_F16) {
        const uint8_t *p = row + e0 * 2;
        for (int i = 0; i < n; i++)
            out[i] = ld_f16(p + 2 * i);
    } else { /* F32 */
        const float *p = reinterpret_cast<const float *>(row) + e0;
        for (int i = 0; i < n; i++)
            out[i] = p[i];
    }
    return n;
}

__device__ __forceinline__ float warp_sum(float v)
{
    for (int off = 16; off > 0; off >>= 1)
        v += __shfl_xor_sync(0xffffffffu, v, off);
    return v;
}

/* Sum of v over the block (kThreads threads); every thread gets the result. */
__device__ float block_sum(float v, float *red)
{
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    v = warp_sum(v);
    __syncthreads(); /* red may still be read by a previous call */
    if (lane == 0)
        red[warp] = v;
    __syncthreads();
    float s = 0;
    for (int w = 0; w < kWarps; w++)
        s += red[w];
    return s;
}

/* ------------------------------------------------------------- matvec */

__global__ void k_matvec(int type, const uint8_t *w, size_t w_stride, int64_t k, const float *x,
                         int64_t ldx, int n_tok, float *y, int64_t ldy)
{
    __shared__ float red[kWarps];
    const int64_t r = blockIdx.x;
    const uint8_t *row = w + (size_t)r * w_stride;
    const int64_t n_units = (k + kUnit - 1) / kUnit;
    float acc[kMaxTok];
    for (int t = 0; t < kMaxTok; t++)
        acc[t] = 0.0f;
    float wv[kUnit];
    for (int64_t u = threadIdx.x; u < n_units; u += kThreads) {
        const int n = dq_unit(type, row, u, k, wv);
        for (int t = 0; t < n_tok; t++) {
            const float *xr = x + t * ldx + u * kUnit;
            float s = 0.0f;
            for (int i = 0; i < n; i++)
                s += wv[i] * xr[i];
            acc[t] += s;
        }
    }
    for (int t = 0; t < n_tok; t++) {
        const float s = block_sum(acc[t], red);
        if (threadIdx.x == 0)
            y[t * ldy + r] = s;
    }
}

/* One thread per (row, unit): rows [r0, r0 + n) into dst, k floats per row. */
__global__ void k_dequant_f32(int type, const uint8_t *w, size_t w_stride, int64_t k, int64_t r0,
                              int64_t n, float *dst)
{
    const int64_t n_units = (k + kUnit - 1) / kUnit;
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n * n_units)
        return;
    const int64_t r = i / n_units, u = i % n_units;
    float wv[kUnit];
    const int cnt = dq_unit(type, w + (size_t)(r0 + r) * w_stride, u, k, wv);
    float *out = dst + r * k + u * kUnit;
    for (int j = 0; j < cnt; j++)
        out[j] = wv[j];
}

/* ------------------------------------------------------- element-wise */

__global__ void k_rmsnorm(float *y, const float *x, const float *w, int64_t n, float eps)
{
    __shared__ float red[kWarps];
    const float *xr = x + blockIdx.x * n;
    float *yr = y + blockIdx.x * n;
    float ss = 0.0f;
    for (int64_t i = threadIdx.x; i < n; i += kThreads)
        ss += xr[i] * xr[i];
    ss = block_sum(ss, red);
    const float scale = rsqrtf(ss / (float)n + eps);
    for (int64_t i = threadIdx.x; i < n; i += kThreads)
        yr[i] = w ? xr[i] * scale * w[i] : xr[i] * scale;
}

__global__ void k_add(float *y, const float *x, int64_t n)
{
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n)
        y[i] += x[i];
}

__global__ void k_add_bias(float *x, const float *b, int64_t width, int64_t n)
{
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n)
        x[i] += b[i % width];
}

__global__ void k_swiglu(float *g, const float *u, int64_t n)
{
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n)
        g[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

__global__ void k_geglu(float *g, const float *u, int64_t n)
{
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) {
        const float x = g[i];
        g[i] =
            0.5f * x * (1.0f + tanhf(0.7978845608028654f * x * (1.0f + 0.044715f * x * x))) * u[i];
    }
}

/* One thread per (token, head, pair); pairs as ntp__rope_apply_f32 forms them. */
__global__ void k_rope(float *x, const float *cs, int64_t n_tok, int64_t n_head, int64_t hd,
                       int64_t n_rot, bool neox)
{
    const int64_t half = n_rot / 2;
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n_tok * n_head * half)
        return;
    const int64_t p = i % half, th = i / half, t = th / n_head;
    float *v = x + th * hd;
    const int64_t a = neox ? p : 2 * p, b = neox ? p + half : 2 * p + 1;
    const float c = cs[t * n_rot + 2 * p], s = cs[t * n_rot + 2 * p + 1];
    const float x0 = v[a], x1 = v[b];
    v[a] = x0 * c - x1 * s;
    v[b] = x0 * s + x1 * c;
}

__global__ void k_kv_store(void *cache, bool f16, const float *src, int64_t n, int64_t width,
                           const int32_t *row)
{
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n)
        return;
    const int64_t at = (int64_t)row[i / width] * width + i % width;
    if (f16)
        static_cast<__half *>(cache)[at] = __float2half_rn(src[i]);
    else
        static_cast<float *>(cache)[at] = src[i];
}

/* ----------------------------------------------------------- attention */

__device__ __forceinline__ float kv_at(const void *c, bool f16, int64_t i)
{
    return f16 ? __half2float(static_cast<const __half *>(c)[i]) : static_cast<const float *>(c)[i];
}

constexpr int kHdPerLane = NTP_CU_MAX_HEAD_DIM / 32;

/*
 * Block (h, t): each warp walks positions lo + w, lo + w + kWarps, ... up to
 * the token's own (lo: 0, or the start of its sliding window) keeping an
 * online softmax (running max m, running sum l, weighted values acc; lane
 * owns elements lane + 32 j); the warps' partial results are merged at the
 * end. Scores, sums and weights are float.
 */
__global__ void k_attention(ntp_cu_attn a)
{
    __shared__ float sq[NTP_CU_MAX_HEAD_DIM];
    __shared__ float sm[kWarps], sl[kWarps];
    __shared__ float sacc[kWarps][NTP_CU_MAX_HEAD_DIM];
    const int64_t h = blockIdx.x, t = blockIdx.y;
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    const int64_t last = a.pos[t], start = a.row[t] - last; /* the sequence's row 0 */
    const int64_t lo = a.window > 0 && last >= a.window ? last - a.window + 1 : 0;
    const int64_t g = (a.head0 + h) / a.group - a.head_kv0;
    const float *q = a.q + (t * a.n_head + h) * a.hdk;
    for (int64_t i = threadIdx.x; i < a.hdk; i += kThreads)
        sq[i] = q[i];
    __syncthreads();
    const int64_t k_ld = a.n_head_kv * a.hdk, v_ld = a.n_head_kv * a.hdv;
    float m = -INFINITY, l = 0.0f, acc[kHdPerLane];
    for (int j = 0; j < kHdPerLane; j++)
        acc[j] = 0.0f;
    for (int64_t p = lo + warp; p <= last; p += kWarps) {
        const int64_t kb = (start + p) * k_ld + g * a.hdk, vb = (start + p) * v_ld + g * a.hdv;
        float d = 0.0f;
        for (int64_t i = lane; i < a.hdk; i += 32)
            d += sq[i] * kv_at(a.k, a.f16, kb + i);
        const float s = warp_sum(d) * a.scale;
        const float m_new = fmaxf(m, s);
        const float corr = expf(m - m_new), e = expf(s - m_new);
        l = l * corr + e;
        for (int j = 0; j < kHdPerLane; j++) {
            const int64_t i = lane + 32 * j;
            if (i < a.hdv)
                acc[j] = acc[j] * corr + e * kv_at(a.v, a.f16, vb + i);
        }
        m = m_new;
    }
    if (lane == 0) {
        sm[warp] = m;
        sl[warp] = l;
    }
    for (int j = 0; j < kHdPerLane; j++)
        if (lane + 32 * j < a.hdv)
            sacc[warp][lane + 32 * j] = acc[j];
    __syncthreads();
    float mx = -INFINITY;
    for (int w = 0; w < kWarps; w++)
        mx = fmaxf(mx, sm[w]);
    float sum = 0.0f;
    for (int w = 0; w < kWarps; w++)
        sum += sm[w] == -INFINITY ? 0.0f : sl[w] * expf(sm[w] - mx);
    float *out = a.out + (t * a.n_head + h) * a.hdv;
    for (int64_t i = threadIdx.x; i < a.hdv; i += kThreads) {
        float o = 0.0f;
        for (int w = 0; w < kWarps; w++)
            if (sm[w] != -INFINITY)
                o += sacc[w][i] * expf(sm[w] - mx);
        out[i] = o / sum;
    }
}

unsigned blocks_for(int64_t n, int per)
{
    return (unsigned)((n + per - 1) / per);
}

} /* namespace */

/* ---------------------------------------------------------- launchers */

extern "C" bool ntp__cu_type_native(enum ntp_type t)
{
    return t == NTP_TYPE_F32 || t == NTP_TYPE_F16 || t == NTP_TYPE_Q4_0 || t == NTP_TYPE_Q8_0 ||
           t == NTP_TYPE_Q4_K || t == NTP_TYPE_Q6_K;
}

extern "C" void ntp__cu_dequant_row_host(enum ntp_type t, const void *row, int64_t k, float *out)
{
    const int64_t n_units = (k + kUnit - 1) / kUnit;
    float wv[kUnit];
    for (int64_t u = 0; u < n_units; u++) {
        const int n = dq_unit((int)t, static_cast<const uint8_t *>(row), u, k, wv);
        for (int i = 0; i < n; i++)
            out[u * kUnit + i] = wv[i];
    }
}

extern "C" size_t ntp__cu_block_bytes(enum ntp_type t)
{
    switch (t) {
    case NTP_TYPE_Q4_0:
        return kQ4_0Bytes;
    case NTP_TYPE_Q8_0:
        return kQ8_0Bytes;
    case NTP_TYPE_Q4_K:
        return kQ4_KBytes;
    case NTP_TYPE_Q6_K:
        return kQ6_KBytes;
    case NTP_TYPE_F16:
        return 2;
    case NTP_TYPE_F32:
        return 4;
    default:
        return 0;
    }
}

extern "C" cudaError_t ntp__cu_matvec(const struct ntp_cu_mat *w, const float *x, int64_t ldx,
                                      int64_t n_tok, float *y, int64_t ldy, cudaStream_t st)
{
    if (n_tok < 1 || n_tok > kMaxTok || !ntp__cu_type_native(w->type))
        return cudaErrorInvalidValue;
    if (w->n_rows == 0)
        return cudaSuccess;
    k_matvec<<<(unsigned)w->n_rows, kThreads, 0, st>>>(
        (int)w->type, static_cast<const uint8_t *>(w->data), w->row_stride, w->k, x, ldx,
        (int)n_tok, y, ldy);
    return cudaGetLastError();
}

extern "C" cudaError_t ntp__cu_dequant_f32(const struct ntp_cu_mat *w, int64_t r0, int64_t n,
                                           float *dst, cudaStream_t st)
{
    if (!ntp__cu_type_native(w->type) || r0 < 0 || r0 + n > w->n_rows)
        return cudaErrorInvalidValue;
    const int64_t total = n * ((w->k + kUnit - 1) / kUnit);
    if (total == 0)
        return cudaSuccess;
    k_dequant_f32<<<blocks_for(total, 256), 256, 0, st>>>(
        (int)w->type, static_cast<const uint8_t *>(w->data), w->row_stride, w->k, r0, n, dst);
    return cudaGetLastError();
}

extern "C" cudaError_t ntp__cu_rmsnorm(float *y, const float *x, const float *w, int64_t n,
                                       int64_t n_rows, float eps, cudaStream_t st)
{
    if (n_rows == 0)
        return cudaSuccess;
    k_rmsnorm<<<(unsigned)n_rows, kThreads, 0, st>>>(y, x, w, n, eps);
    return cudaGetLastError();
}

extern "C" cudaError_t ntp__cu_add(float *y, const float *x, int64_t n, cudaStream_t st)
{
    if (n == 0)
        return cudaSuccess;
    k_add<<<blocks_for(n, 256), 256, 0, st>>>(y, x, n);
    return cudaGetLastError();
}

extern "C" cudaError_t ntp__cu_add_bias(float *x, const float *b, int64_t width, int64_t n_rows,
                                        cudaStream_t st)
{
    const int64_t n = width * n_rows;
    if (n == 0)
        return cudaSuccess;
    k_add_bias<<<blocks_for(n, 256), 256, 0, st>>>(x, b, width, n);
    return cudaGetLastError();
}

extern "C" cudaError_t ntp__cu_swiglu(float *g, const float *u, int64_t n, cudaStream_t st)
{
    if (n == 0)
        return cudaSuccess;
    k_swiglu<<<blocks_for(n, 256), 256, 0, st>>>(g, u, n);
    return cudaGetLastError();
}

extern "C" cudaError_t ntp__cu_geglu(float *g, const float *u, int64_t n, cudaStream_t st)
{
    if (n == 0)
        return cudaSuccess;
    k_geglu<<<blocks_for(n, 256), 256, 0, st>>>(g, u, n);
    return cudaGetLastError();
}

extern "C" cudaError_t ntp__cu_rope(float *x, const float *cs, int64_t n_tok, int64_t n_head,
                                    int64_t hd, int64_t n_rot, bool neox, cudaStream_t st)
{
    const int64_t n = n_tok * n_head * (n_rot / 2);
    if (n_rot > hd || n_rot % 2 != 0)
        return cudaErrorInvalidValue;
    if (n == 0)
        return cudaSuccess;
    k_rope<<<blocks_for(n, 256), 256, 0, st>>>(x, cs, n_tok, n_head, hd, n_rot, neox);
    return cudaGetLastError();
}

extern "C" cudaError_t ntp__cu_kv_store(void *cache, bool f16, const float *src, int64_t n_tok,
                                        int64_t width, const int32_t *row, cudaStream_t st)
{
    const int64_t n = n_tok * width;
    if (n == 0)
        return cudaSuccess;
    k_kv_store<<<blocks_for(n, 256), 256, 0, st>>>(cache, f16, src, n, width, row);
    return cudaGetLastError();
}

extern "C" cudaError_t ntp__cu_attention(const struct ntp_cu_attn *a, cudaStream_t st)
{
    if (a->hdk > NTP_CU_MAX_HEAD_DIM || a->hdv > NTP_CU_MAX_HEAD_DIM || a->group < 1 ||
        a->n_tok > 65535 || a->window < 0)
        return cudaErrorInvalidValue;
    if (a->n_tok == 0 || a->n_head == 0)
        return cudaSuccess;
    const dim3 grid((unsigned)a->n_head, (unsigned)a->n_tok);
    k_attention<<<grid, kThreads, 0, st>>>(*a);
    return cudaGetLastError();
}
