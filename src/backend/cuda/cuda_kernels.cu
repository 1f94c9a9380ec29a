/*
 * cuda_kernels.cu - the GPU kernels of the CUDA device (see cuda_kernels.h).
 *
 * Kept simple so that they are obviously correct: weights are read in their
 * GGUF block format and dequantized in registers, 8 elements per lane of a
 * 256-element step (lane_weights); activations stay float (binary16 only for
 * the tensor-core products of quantized weights); sums are float with
 * warp-shuffle reductions. The block layouts are those of
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
 * host (ntp__cu_dequant_row_host, ntp__cu_dot_host) so that tests check its
 * index arithmetic against the reference on machines without a GPU.
 */
#define NTP_HD __host__ __device__ __forceinline__

/* A binary16 stored at p (2-byte aligned in every block format) as float. */
NTP_HD float ld_f16(const uint8_t *p)
{
    __half_raw r;
    r.x = *reinterpret_cast<const unsigned short *>(p);
    return __half2float(__half(r));
}

/* Calls f.template operator()<TYPE>() for a native type t (callers check it); nothing for others.
 */
template <class F> void with_type(int t, F &&f)
{
    switch (t) {
    case NTP_TYPE_Q4_0:
        f.template operator()<NTP_TYPE_Q4_0>();
        break;
    case NTP_TYPE_Q8_0:
        f.template operator()<NTP_TYPE_Q8_0>();
        break;
    case NTP_TYPE_Q4_K:
        f.template operator()<NTP_TYPE_Q4_K>();
        break;
    case NTP_TYPE_Q6_K:
        f.template operator()<NTP_TYPE_Q6_K>();
        break;
    case NTP_TYPE_F16:
        f.template operator()<NTP_TYPE_F16>();
        break;
    case NTP_TYPE_F32:
        f.template operator()<NTP_TYPE_F32>();
        break;
    default:
        break;
    }
}

/*
 * The matrix-vector kernel's share of one lane: each step of a row is 256
 * elements, of which lane l takes 8, as two runs of 4 consecutive ones
 * (e0 .. e0+3 and e1 .. e1+3, from the step's start) chosen so that the
 * lane's weight bytes are adjacent and each scale it needs is decoded once:
 *   Q4_0: block l/4 of the step's 8, bytes 4m .. 4m+3 (m = l%4): low nibbles
 *         are elements 4m.., high ones 16+4m..;
 *   Q8_0: block l/4, elements 8m .. 8m+7;
 *   Q4_K: chunk c = l/8 of 64, bytes 4m .. 4m+3 of its 32 (m = l%8): low
 *         nibbles are sub-block 2c, high ones sub-block 2c+1;
 *   Q6_K: half h = l/16, ql bytes 32p + 4m .. (p = l/8%2, m = l%8): low
 *         nibbles are group p, high ones group p+2, with qh's bits;
 *   F16, F32: elements 8l .. 8l+7.
 * w gets the 8 weights; false when the lane's elements are past the row
 * (Q4_0 and Q8_0 rows end at any block; float rows anywhere, their weights
 * past k are 0 and the caller must not read x there).
 */
template <int TYPE>
NTP_HD bool lane_weights(const uint8_t *row, int64_t k, int64_t base, int l, float w[8],
                         int64_t *e0, int64_t *e1)
{
    switch (TYPE) {
    case NTP_TYPE_Q4_0: {
        const int m = l % 4;
        *e0 = base + 32 * (l / 4) + 4 * m;
        *e1 = *e0 + 16;
        if (*e0 >= k)
            return false;
        const uint8_t *blk = row + *e0 / 32 * kQ4_0Bytes;
        const float d = ld_f16(blk);
        for (int i = 0; i < 4; i++) {
            const int q = blk[2 + 4 * m + i];
            w[i] = (float)((q & 15) - 8) * d;
            w[4 + i] = (float)((q >> 4) - 8) * d;
        }
        return true;
    }
    case NTP_TYPE_Q8_0: {
        *e0 = base + 32 * (l / 4) + 8 * (l % 4);
        *e1 = *e0 + 4;
        if (*e0 >= k)
            return false;
        const uint8_t *blk = row + *e0 / 32 * kQ8_0Bytes;
        const float d = ld_f16(blk);
        const int8_t *q = reinterpret_cast<const int8_t *>(blk + 2) + 8 * (l % 4);
        for (int i = 0; i < 8; i++)
            w[i] = (float)q[i] * d;
        return true;
    }
    case NTP_TYPE_Q4_K: {
        const int c = l / 8, m = l % 8;
        *e0 = base + 64 * c + 4 * m;
        *e1 = *e0 + 32;
        const uint8_t *blk = row + base / 256 * kQ4_KBytes, *sc = blk + 4;
        const float d = ld_f16(blk), dmin = ld_f16(blk + 2);
        float scale[2], mn[2];
        for (int h = 0; h < 2; h++) {
            const int sb = 2 * c + h;
            if (sb < 4) {
                scale[h] = d * (float)(sc[sb] & 63);
                mn[h] = dmin * (float)(sc[sb + 4] & 63);
            } else {
                scale[h] = d * (float)((sc[sb + 4] & 15) | ((sc[sb - 4] >> 6) << 4));
                mn[h] = dmin * (float)((sc[sb + 4] >> 4) | ((sc[sb] >> 6) << 4));
            }
        }
        for (int i = 0; i < 4; i++) {
            const int q = blk[16 + 32 * c + 4 * m + i];
            w[i] = scale[0] * (float)(q & 15) - mn[0];
            w[4 + i] = scale[1] * (float)(q >> 4) - mn[1];
        }
        return true;
    }
    case NTP_TYPE_Q6_K: {
        const int h = l / 16, p = l / 8 % 2, m = l % 8;
        *e0 = base + 128 * h + 32 * p + 4 * m;
        *e1 = *e0 + 64;
        const uint8_t *blk = row + base / 256 * kQ6_KBytes;
        const int8_t *sc = reinterpret_cast<const int8_t *>(blk + 192) + 8 * h + 2 * p + m / 4;
        const float d = ld_f16(blk + 208), s0 = d * (float)sc[0], s1 = d * (float)sc[4];
        for (int i = 0; i < 4; i++) {
            const int lo = blk[64 * h + 32 * p + 4 * m + i], hi = blk[128 + 32 * h + 4 * m + i];
            w[i] = s0 * (float)(((lo & 15) | (((hi >> (2 * p)) & 3) << 4)) - 32);
            w[4 + i] = s1 * (float)(((lo >> 4) | (((hi >> (2 * p + 4)) & 3) << 4)) - 32);
        }
        return true;
    }
    default: /* F16, F32 */
        *e0 = base + 8 * l;
        *e1 = *e0 + 4;
        for (int i = 0; i < 8; i++) {
            const int64_t e = *e0 + i;
            w[i] = e >= k                 ? 0.0f
                   : TYPE == NTP_TYPE_F16 ? ld_f16(row + 2 * e)
                                          : reinterpret_cast<const float *>(row)[e];
        }
        return *e0 < k;
    }
}

/* x[e0 + i] * w[i] + x[e1 + i] * w[4 + i] summed over i < 4, x's elements past k skipped. */
template <int TYPE>
NTP_HD float lane_dot(const float *x, int64_t k, int64_t e0, int64_t e1, const float w[8])
{
    float s = 0.0f;
    for (int i = 0; i < 4; i++) {
        if (TYPE == NTP_TYPE_F32 || TYPE == NTP_TYPE_F16) {
            s += e0 + i < k ? w[i] * x[e0 + i] : 0.0f;
            s += e1 + i < k ? w[4 + i] * x[e1 + i] : 0.0f;
        } else {
            s += w[i] * x[e0 + i] + w[4 + i] * x[e1 + i];
        }
    }
    return s;
}

NTP_HD void store(float *p, float v)
{
    *p = v;
}

NTP_HD void store(__half *p, float v)
{
    *p = __float2half_rn(v);
}

/* Lane l's 8 elements of the step at base of a row into out (the row's k values), if any. */
template <int TYPE, class T>
NTP_HD void lane_dequant(const uint8_t *row, int64_t k, int64_t base, int l, T *out)
{
    float wv[8];
    int64_t e0, e1;
    if (!lane_weights<TYPE>(row, k, base, l, wv, &e0, &e1))
        return;
    for (int j = 0; j < 4; j++) {
        if (e0 + j < k)
            store(out + e0 + j, wv[j]);
        if (e1 + j < k)
            store(out + e1 + j, wv[4 + j]);
    }
}

__device__ __forceinline__ float warp_sum(float v)
{
    for (int off = 16; off > 0; off >>= 1)
        v += __shfl_xor_sync(0xffffffffu, v, off);
    return v;
}

/* Sum of v over the block (up to 32 warps, red holding one float each); every thread gets it. */
__device__ float block_sum(float v, float *red)
{
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    v = warp_sum(v);
    __syncthreads(); /* red may still be read by a previous call */
    if (lane == 0)
        red[warp] = v;
    __syncthreads();
    float s = 0;
    for (unsigned w = 0; w < blockDim.x / 32; w++)
        s += red[w];
    return s;
}

/* ------------------------------------------------------------- matvec */

/*
 * One warp per row, 256 elements a step, 8 per lane (lane_weights), so that
 * the warp reads each step's weight bytes and x contiguously; a sum per
 * token in registers, added over the warp with shuffles at the end.
 */
template <int TYPE>
__global__ void __launch_bounds__(kThreads)
    k_matvec(const uint8_t *__restrict__ w, size_t w_stride, int64_t k, int64_t n_rows,
             const float *__restrict__ x, int64_t ldx, int n_tok, float *__restrict__ y,
             int64_t ldy)
{
    const int lane = threadIdx.x % 32;
    const int64_t r = (int64_t)blockIdx.x * kWarps + threadIdx.x / 32;
    if (r >= n_rows)
        return;
    const uint8_t *row = w + (size_t)r * w_stride;
    float acc[kMaxTok];
#pragma unroll
    for (int t = 0; t < kMaxTok; t++)
        acc[t] = 0.0f;
#pragma unroll 4
    for (int64_t base = 0; base < k; base += 256) {
        float wv[8];
        int64_t e0, e1;
        if (!lane_weights<TYPE>(row, k, base, lane, wv, &e0, &e1))
            continue;
#pragma unroll
        for (int t = 0; t < kMaxTok; t++)
            if (t < n_tok)
                acc[t] += lane_dot<TYPE>(x + t * ldx, k, e0, e1, wv);
    }
#pragma unroll
    for (int t = 0; t < kMaxTok; t++) {
        if (t < n_tok) {
            const float s = warp_sum(acc[t]);
            if (lane == 0)
                y[t * ldy + r] = s;
        }
    }
}

/*
 * Rows [r0, r0 + n) into dst, k values (float or binary16) per row: a
 * thread per lane share of a 256-element step (lane_dequant), so that each
 * scale is decoded once per 8 elements.
 */
template <int TYPE, class T>
__global__ void k_dequant(const uint8_t *__restrict__ w, size_t w_stride, int64_t k, int64_t r0,
                          int64_t n, T *__restrict__ dst)
{
    const int64_t steps = (k + 255) / 256;
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n * steps * 32)
        return;
    const int64_t r = i / (steps * 32);
    lane_dequant<TYPE>(w + (size_t)(r0 + r) * w_stride, k, i / 32 % steps * 256, (int)(i % 32),
                       dst + r * k);
}

/* n_tok rows of k floats (ldx apart) as packed binary16 rows. */
__global__ void k_to_f16(__half *__restrict__ dst, const float *__restrict__ x, int64_t ldx,
                         int64_t k, int64_t n)
{
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n)
        dst[i] = __float2half_rn(x[i / k * ldx + i % k]);
}

/* ------------------------------------------------------- element-wise */

/* Most threads of an RMSNorm block: a hidden state's row in few passes. */
constexpr int kNormThreads = 512;

/* Block per row, blockDim.x threads (a multiple of 32, at most kNormThreads). */
__global__ void __launch_bounds__(kNormThreads)
    k_rmsnorm(float *y, const float *x, const float *w, int64_t n, float eps)
{
    __shared__ float red[kNormThreads / 32];
    const float *xr = x + blockIdx.x * n;
    float *yr = y + blockIdx.x * n;
    float ss = 0.0f;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x)
        ss += xr[i] * xr[i];
    ss = block_sum(ss, red);
    const float scale = rsqrtf(ss / (float)n + eps);
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x)
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

__device__ __forceinline__ float warp_max(float v)
{
    for (int off = 16; off > 0; off >>= 1)
        v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, off));
    return v;
}

/*
 * Block (h, t): the warps take turns at chunks of 32 consecutive positions
 * from lo (0, or the start of the token's sliding window) to the token's own.
 * In a chunk, lane j scores position j (its whole q.k); the warp's online
 * softmax (running max m, per-lane partial sum l, weighted values acc, lane
 * owning elements lane + 32 i) then takes the chunk's 32 weights at once,
 * each value row read by the whole warp. The warps' results are merged at
 * the end. Scores, sums and weights are float.
 */
template <int NV> /* value elements per lane: hdv <= 32 * NV */
__global__ void __launch_bounds__(kThreads) k_attention(ntp_cu_attn a)
{
    __shared__ float sq[NTP_CU_MAX_HEAD_DIM];
    __shared__ float sm[kWarps], sl[kWarps];
    __shared__ float sacc[kWarps][NTP_CU_MAX_HEAD_DIM];
    const int64_t h = blockIdx.x, t = blockIdx.y, split = blockIdx.z;
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    const int64_t pos = a.pos[t], start = a.row[t] - pos; /* the sequence's row 0 */
    const int64_t first = a.window > 0 && pos >= a.window ? pos - a.window + 1 : 0;
    /* This block's share of the positions first .. pos: whole chunks of 32, split by split. */
    const int64_t span = ((pos - first + a.n_split) / a.n_split + 31) / 32 * 32;
    const int64_t lo = first + split * span, last = lo + span - 1 < pos ? lo + span - 1 : pos;
    const int64_t g = (a.head0 + h) / a.group - a.head_kv0;
    const float *q = a.q + (t * a.n_head + h) * a.hdk;
    for (int64_t i = threadIdx.x; i < a.hdk; i += kThreads)
        sq[i] = q[i];
    __syncthreads();
    const int64_t k_ld = a.n_head_kv * a.hdk, v_ld = a.n_head_kv * a.hdv;
    float m = -INFINITY, l = 0.0f, acc[NV];
#pragma unroll
    for (int i = 0; i < NV; i++)
        acc[i] = 0.0f;
    for (int64_t p0 = lo + 32 * warp; p0 <= last; p0 += 32 * kWarps) {
        const int64_t p = p0 + lane;
        float sc = -INFINITY;
        if (p <= last) {
            const int64_t kb = (start + p) * k_ld + g * a.hdk;
            float d = 0.0f;
            if (a.f16 && a.hdk % 8 == 0) { /* 16-byte loads: the key rows are 16-byte aligned */
                const uint4 *kr =
                    reinterpret_cast<const uint4 *>(static_cast<const __half *>(a.k) + kb);
                for (int64_t i = 0; i < a.hdk / 8; i++) {
                    const uint4 u = kr[i];
                    const __half2 *hp = reinterpret_cast<const __half2 *>(&u);
#pragma unroll
                    for (int c = 0; c < 4; c++) {
                        const float2 f = __half22float2(hp[c]);
                        d += sq[8 * i + 2 * c] * f.x + sq[8 * i + 2 * c + 1] * f.y;
                    }
                }
            } else {
                for (int64_t i = 0; i < a.hdk; i++)
                    d += sq[i] * kv_at(a.k, a.f16, kb + i);
            }
            sc = d * a.scale;
        }
        const float m_new = fmaxf(m, warp_max(sc));
        const float corr = expf(m - m_new), e = p <= last ? expf(sc - m_new) : 0.0f;
        l = l * corr + e;
#pragma unroll
        for (int i = 0; i < NV; i++)
            acc[i] *= corr;
        const int n = (int)(last - p0 + 1 < 32 ? last - p0 + 1 : 32);
        for (int j = 0; j < n; j++) {
            const float ej = __shfl_sync(0xffffffffu, e, j);
            const int64_t vb = (start + p0 + j) * v_ld + g * a.hdv;
#pragma unroll
            for (int i = 0; i < NV; i++)
                if (lane + 32 * i < a.hdv)
                    acc[i] += ej * kv_at(a.v, a.f16, vb + lane + 32 * i);
        }
        m = m_new;
    }
    l = warp_sum(l);
    if (lane == 0) {
        sm[warp] = m;
        sl[warp] = l;
    }
#pragma unroll
    for (int i = 0; i < NV; i++)
        if (lane + 32 * i < a.hdv)
            sacc[warp][lane + 32 * i] = acc[i];
    __syncthreads();
    float mx = -INFINITY;
    for (int w = 0; w < kWarps; w++)
        mx = fmaxf(mx, sm[w]);
    float sum = 0.0f;
    for (int w = 0; w < kWarps; w++)
        sum += sm[w] == -INFINITY ? 0.0f : sl[w] * expf(sm[w] - mx);
    /* One split: the output. Several: this split's max, sum and unscaled values (part). */
    float *out = a.n_split == 1 ? a.out + (t * a.n_head + h) * a.hdv
                                : a.part + ((t * a.n_head + h) * a.n_split + split) * (a.hdv + 2);
    if (a.n_split > 1 && threadIdx.x == 0) {
        out[0] = mx;
        out[1] = sum;
    }
    for (int64_t i = threadIdx.x; i < a.hdv; i += kThreads) {
        float o = 0.0f;
        for (int w = 0; w < kWarps; w++)
            if (sm[w] != -INFINITY)
                o += sacc[w][i] * expf(sm[w] - mx);
        if (a.n_split == 1)
            out[i] = o / sum;
        else
            out[2 + i] = o;
    }
}

/* Block (h, t): the splits' partial results of k_attention merged into the output. */
__global__ void __launch_bounds__(kThreads) k_attention_merge(ntp_cu_attn a)
{
    const int64_t h = blockIdx.x, t = blockIdx.y;
    const float *part = a.part + (t * a.n_head + h) * a.n_split * (a.hdv + 2);
    float mx = -INFINITY, sum = 0.0f;
    for (int64_t s = 0; s < a.n_split; s++)
        mx = fmaxf(mx, part[s * (a.hdv + 2)]);
    for (int64_t s = 0; s < a.n_split; s++) {
        const float m = part[s * (a.hdv + 2)];
        sum += m == -INFINITY ? 0.0f : part[s * (a.hdv + 2) + 1] * expf(m - mx);
    }
    float *out = a.out + (t * a.n_head + h) * a.hdv;
    for (int64_t i = threadIdx.x; i < a.hdv; i += kThreads) {
        float o = 0.0f;
        for (int64_t s = 0; s < a.n_split; s++) {
            const float m = part[s * (a.hdv + 2)];
            if (m != -INFINITY)
                o += part[s * (a.hdv + 2) + 2 + i] * expf(m - mx);
        }
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
    const uint8_t *r = static_cast<const uint8_t *>(row);
    with_type((int)t, [&]<int TYPE>() {
        for (int64_t base = 0; base < k; base += 256)
            for (int l = 0; l < 32; l++)
                lane_dequant<TYPE>(r, k, base, l, out);
    });
}

extern "C" float ntp__cu_dot_host(enum ntp_type t, const void *row, int64_t k, const float *x)
{
    const uint8_t *r = static_cast<const uint8_t *>(row);
    float sum = 0.0f;
    with_type((int)t, [&]<int TYPE>() {
        float acc[32] = {0};
        for (int64_t base = 0; base < k; base += 256)
            for (int l = 0; l < 32; l++) {
                float wv[8];
                int64_t e0, e1;
                if (lane_weights<TYPE>(r, k, base, l, wv, &e0, &e1))
                    acc[l] += lane_dot<TYPE>(x, k, e0, e1, wv);
            }
        for (int l = 0; l < 32; l++)
            sum += acc[l];
    });
    return sum;
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
    const uint8_t *wd = static_cast<const uint8_t *>(w->data);
    with_type((int)w->type, [&]<int TYPE>() {
        k_matvec<TYPE><<<blocks_for(w->n_rows, kWarps), kThreads, 0, st>>>(
            wd, w->row_stride, w->k, w->n_rows, x, ldx, (int)n_tok, y, ldy);
    });
    return cudaGetLastError();
}

/* Rows [r0, r0 + n) of w into dst as T. */
template <class T>
cudaError_t dequant_rows(const struct ntp_cu_mat *w, int64_t r0, int64_t n, T *dst, cudaStream_t st)
{
    if (!ntp__cu_type_native(w->type) || r0 < 0 || r0 + n > w->n_rows)
        return cudaErrorInvalidValue;
    const int64_t total = n * ((w->k + 255) / 256) * 32; /* threads: 32 per 256-element step */
    if (total == 0)
        return cudaSuccess;
    const uint8_t *wd = static_cast<const uint8_t *>(w->data);
    with_type((int)w->type, [&]<int TYPE>() {
        k_dequant<TYPE, T>
            <<<blocks_for(total, 256), 256, 0, st>>>(wd, w->row_stride, w->k, r0, n, dst);
    });
    return cudaGetLastError();
}

extern "C" cudaError_t ntp__cu_dequant_f32(const struct ntp_cu_mat *w, int64_t r0, int64_t n,
                                           float *dst, cudaStream_t st)
{
    return dequant_rows(w, r0, n, dst, st);
}

extern "C" cudaError_t ntp__cu_dequant_f16(const struct ntp_cu_mat *w, int64_t r0, int64_t n,
                                           void *dst, cudaStream_t st)
{
    return dequant_rows(w, r0, n, static_cast<__half *>(dst), st);
}

extern "C" cudaError_t ntp__cu_to_f16(void *dst, const float *x, int64_t ldx, int64_t k,
                                      int64_t n_tok, cudaStream_t st)
{
    const int64_t n = k * n_tok;
    if (n == 0)
        return cudaSuccess;
    k_to_f16<<<blocks_for(n, 256), 256, 0, st>>>(static_cast<__half *>(dst), x, ldx, k, n);
    return cudaGetLastError();
}

extern "C" cudaError_t ntp__cu_rmsnorm(float *y, const float *x, const float *w, int64_t n,
                                       int64_t n_rows, float eps, cudaStream_t st)
{
    if (n_rows == 0)
        return cudaSuccess;
    /* Wide rows (hidden states) get the most threads, head-wide ones (q/k norms) fewer. */
    k_rmsnorm<<<(unsigned)n_rows, n >= kNormThreads ? kNormThreads : kThreads, 0, st>>>(y, x, w, n,
                                                                                        eps);
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
    if (a->n_split < 1 || a->n_split > NTP_CU_ATTN_MAX_SPLIT || (a->n_split > 1 && !a->part))
        return cudaErrorInvalidValue;
    const dim3 grid((unsigned)a->n_head, (unsigned)a->n_tok, (unsigned)a->n_split);
    static_assert(NTP_CU_MAX_HEAD_DIM == 32 * 8, "the widest instance below");
    if (a->hdv <= 64)
        k_attention<2><<<grid, kThreads, 0, st>>>(*a);
    else if (a->hdv <= 128)
        k_attention<4><<<grid, kThreads, 0, st>>>(*a);
    else
        k_attention<8><<<grid, kThreads, 0, st>>>(*a);
    if (a->n_split > 1) {
        const cudaError_t e = cudaGetLastError();
        if (e != cudaSuccess)
            return e;
        k_attention_merge<<<dim3((unsigned)a->n_head, (unsigned)a->n_tok), kThreads, 0, st>>>(*a);
    }
    return cudaGetLastError();
}
