/*
 * kernels.h - the kernel dispatch table: for every weight type, how its
 * activations are prepared and how a matrix times activations is computed.
 *
 * Semantics follow ggml: before a product with a quantized weight, the float
 * activations are quantized once (per matmul, shared by every thread of a
 * device) to the weight type's dot partner (Q8_0 for Q4_0/Q5_0/Q8_0, Q8_1
 * for Q4_1/Q5_1, Q8_K for the k-quants); float weights (F32/F16/BF16) take
 * float activations as they are. Each row result is then dot(W row, x row).
 *
 * The table is filled once when a device is created (ntp__kernels_init), by
 * ISA: "ref" (src/kernels/ref/), then the chosen ISA's library (isa.h:
 * avx2 or avx512 on x86) overrides the entries it implements; the strongest
 * the CPU runs (cpu_features.h) unless NTP_ISA names one. A fast matmul
 * may decline a call with NTP_E_UNSUPPORTED; ntp__kernels_matmul() then runs
 * the reference, which accepts every type it has a vec_dot for.
 *
 * Kernels are pure functions over a slice (ith, nth) of their output with
 * scratch passed in: no allocation, no threads, no global state.
 */
#ifndef NTP_KERNELS_KERNELS_H
#define NTP_KERNELS_KERNELS_H

#include "ntp.h"

#include "core/core.h"
#include "model/config.h"

#include <stddef.h>
#include <stdint.h>

/*
 * How a weight matrix's rows lie in memory. NONE is the file's layout; the
 * others interleave rows for one family of kernels (packed.h), chosen per
 * type by the kernel table (ntp_kernel_type.pack) and applied at load.
 */
enum ntp_pack_layout {
    NTP_PACK_NONE = 0, /* rows as in the GGUF file */
    NTP_PACK_R16,      /* 16 rows interleaved, 4 codes per row per dword (AVX-512 VNNI) */
};

/*
 * y[i] = act(g[i]) * u[i] over n elements, the gate of an FFN: SwiGLU (silu)
 * or GeGLU (GELU, tanh form); y may alias g or u.
 */
typedef void (*ntp_glu_fn)(float *y, const float *g, const float *u, int64_t n);

/*
 * One product Y = X · Wᵀ over a slice of W's rows:
 *     y[t * ldy + r] = dot(W row r, X row t),  r in this thread's slice of [0, n_rows),
 *                                               t in [0, n_tok).
 * W rows are GGUF rows (ne0 = k contiguous elements); X rows are activations
 * already in the weight type's act_type (ntp_kernel_type.act_type).
 */
struct ntp_matmul_args {
    enum ntp_type wtype; /* type of W */
    const void *w;       /* W: n_rows rows of k elements, row r at w + r * w_stride bytes */
    size_t w_stride;     /* bytes between W rows (>= row size; more for a column sub-view) */
    int64_t n_rows;      /* rows of W = output features computed */
    int64_t k;           /* elements per row = input features; a multiple of the block size */
    const void *x;       /* X: n_tok rows in act_type, row t at x + t * x_stride bytes */
    size_t x_stride;     /* bytes between X rows */
    int64_t n_tok;       /* rows of X = tokens */
    float *y;            /* Y: n_tok rows of ldy floats (owner: caller) */
    int64_t ldy;         /* floats between Y rows (>= n_rows) */
    int ith;             /* this thread's index in [0, nth) */
    int nth;             /* threads sharing the rows of W */
    enum ntp_pack_layout layout; /* W's layout (packed.h); other than NONE: n_rows a multiple
                                    of 16, w_stride the file's row size, threads slice whole
                                    groups, as ntp__slice(n_rows / 16, ith, nth) cuts them */
    ntp_glu_fn glu; /* a gated FFN's up product, only where the table's entry has packed_glu:
                       non-NULL, g = glu(g, W X) in place of writing Y, which then holds
                       partial sums only (scratch) */
    float *g;       /* with glu: the gate's product, n_tok rows ldy floats apart, as Y */
};

/* Quantize (or copy) k floats of x into act_type blocks at xq. */
typedef void (*ntp_quantize_act_fn)(const float *x, void *xq, int64_t k);
/* dot(W row, X row) over k elements; w_row in the weight type, x_row in act_type. */
typedef float (*ntp_vec_dot_fn)(int64_t k, const void *w_row, const void *x_row);
/* The product described by a (this thread's slice). NTP_E_UNSUPPORTED: declined. */
typedef ntp_status (*ntp_matmul_fn)(const struct ntp_matmul_args *a);

/* What the table holds for one weight type. */
struct ntp_kernel_type {
    enum ntp_type act_type;           /* format X must be in; F32 for float weights */
    ntp_quantize_act_fn quantize_act; /* float -> act_type; NULL when act_type is F32 */
    ntp_vec_dot_fn vec_dot;           /* NULL: the type cannot be computed with */
    ntp_matmul_fn matvec;             /* n_tok == 1 (decode); may decline */
    ntp_matmul_fn matmul;             /* n_tok >= 1 (prefill); may decline */
    enum ntp_pack_layout pack;        /* the layout this ISA wants W in (packed.h) */
    ntp_matmul_fn matmul_packed;      /* n_tok >= 1 with W in layout pack; never declines */
    bool packed_glu;                  /* matmul_packed applies ntp_matmul_args.glu itself */
};

/*
 * Causal attention of one query head over n_pos cached positions:
 *     out = sum_p softmax_p(scale * q . K[p]) V[p].
 * K and V rows are kv_type; this head's key of position p starts at
 * k + p * kv_stride bytes, its value at v + p * kv_stride. F16 and F32
 * caches are read as floats. A Q8_0 or Q4_0 cache holds each head's row in
 * blocks of 32 (hdk and hdv multiples of 32) and is read as llama.cpp reads
 * one (-ctk/-ctv): q is quantized to Q8_0 once per call and q . K[p] is the
 * kernels' product of kv_type with Q8_0 activations (ggml's vec_dot_type,
 * integer dots per block); value rows are dequantized and summed in float,
 * as ggml's CPU flash attention does. (The CPU device rotates such a
 * cache's heads before they reach these kernels, as llama.cpp does:
 * ntp__hadamard_f32 below.)
 */
struct ntp_attn_args {
    const float *q;                 /* hdk floats (owner: caller) */
    const void *k, *v;              /* this head's slot in cache row 0 (owner: caller) */
    size_t kv_stride;               /* bytes between cache rows */
    enum ntp_type kv_type;          /* NTP_TYPE_F16, F32, Q8_0 or Q4_0 */
    int64_t hdk, hdv;               /* key and value widths */
    int64_t n_pos;                  /* positions attended (>= 1) */
    float scale;                    /* applied to q . k before the softmax */
    float *score;                   /* n_pos floats of scratch (owner: caller) */
    float *out;                     /* hdv floats written (owner: caller) */
    void *q_dot;                    /* hdk floats of scratch for q in Q8_0 (quantized cache) */
    const struct ntp_kernels *kern; /* the table whose product a quantized cache's q . K uses */
};
typedef void (*ntp_attn_fn)(const struct ntp_attn_args *a);

/* The reference attention of one head (src/kernels/ref/attn.c). */
void ntp__attn_ref(const struct ntp_attn_args *a);

/*
 * score[p] = scale * q . K[p] for p < n_pos over a Q8_0 or Q4_0 key cache:
 * q quantized with a->kern's quantizer into q_dot, then its product
 * (src/kernels/ref/attn.c; every ISA's attention uses it).
 */
void ntp__attn_scores_quant(const struct ntp_attn_args *a);

/*
 * x = H x over n floats, n a power of two: H is the orthonormal Walsh-Hadamard
 * matrix in Sylvester's order (entries +-1/sqrt(n)), so H H = I and dot
 * products are kept. llama.cpp rotates a quantized cache's q, k and v with
 * it to spread outliers over the blocks (src/kernels/ref/attn.c).
 */
void ntp__hadamard_f32(float *x, int64_t n);

/* Whether kv_type is a cache of 32-element blocks (Q8_0, Q4_0) rather than floats. */
static inline bool ntp__kv_quantized(enum ntp_type kv_type)
{
    return kv_type == NTP_TYPE_Q8_0 || kv_type == NTP_TYPE_Q4_0;
}

/* n cache elements of kv_type at x to floats at y (a multiple of 32 for Q8_0 and Q4_0). */
typedef void (*ntp_kv_to_f32_fn)(enum ntp_type kv_type, const void *x, float *y, int64_t n);
/* The reference conversion (src/kernels/ref/attn.c). */
void ntp__kv_to_f32_ref(enum ntp_type kv_type, const void *x, float *y, int64_t n);

/* x[i] = exp(x[i] - m) for i < n (m >= every x[i]: a softmax's maximum); returns their sum. */
typedef float (*ntp_exp_sum_fn)(float *x, int64_t n, float m);
/* The reference (src/kernels/ref/ops.c): expf, summed in double. */
float ntp__exp_sum_ref(float *x, int64_t n, float m);

/*
 * The largest of m and x[0, n): a softmax's maximum, carried from chunk to
 * chunk. A NaN in x is passed over, as the comparison x[i] > m does.
 */
typedef float (*ntp_max_fn)(const float *x, int64_t n, float m);
/* The reference (src/kernels/ref/ops.c). */
float ntp__max_f32_ref(const float *x, int64_t n, float m);

/* The table of one device: chosen ISA and the kernels of every type. */
struct ntp_kernels {
    const char *isa;                             /* "ref", "avx2" or "avx512" (static) */
    struct ntp_kernel_type type[NTP_TYPE_COUNT]; /* chosen kernels, by weight type */
    struct ntp_kernel_type ref[NTP_TYPE_COUNT];  /* reference kernels: the fallback */
    ntp_attn_fn attn;                            /* one head's attention (never NULL) */
    ntp_kv_to_f32_fn kv_to_f32;                  /* cache rows to floats (never NULL) */
    ntp_exp_sum_fn exp_sum;                      /* a softmax's exponentials (never NULL) */
    ntp_max_fn max;                              /* a softmax's maximum (never NULL) */
    ntp_glu_fn glu[NTP_FFN_ACT_COUNT];           /* the FFN's gate, by activation (never NULL) */
};

/*
 * Fill k for the ISA named isa ("ref"), or for the best this CPU runs when
 * isa is NULL (the NTP_ISA environment variable overrides that choice).
 * NTP_E_UNSUPPORTED when the named ISA is unknown or this CPU lacks it.
 */
ntp_status ntp__kernels_init(struct ntp_kernels *k, const char *isa);

/* Whether kernel ISA isa ("ref", "avx2", ...) is built in and runs on this CPU and OS. */
bool ntp__kernels_isa_ok(const char *isa);

/* True when weights of type t can be multiplied (a vec_dot exists). */
bool ntp__kernels_supports(const struct ntp_kernels *k, enum ntp_type t);

/*
 * Bytes of one activation row of k elements for weight type t (in t's
 * act_type); 0 when t is not computable or k is not a whole number of blocks.
 */
size_t ntp__kernels_act_row_size(const struct ntp_kernels *k, enum ntp_type t, int64_t n);

/*
 * Run a's slice with the chosen kernel, falling back to the reference when it
 * declines. A packed W needs the table's matmul_packed for that layout
 * (NTP_E_UNSUPPORTED otherwise: only a table whose pack entry names the
 * layout gets weights in it).
 */
ntp_status ntp__kernels_matmul(const struct ntp_kernels *k, const struct ntp_matmul_args *a);

/* ------------------------------------------------- mixture of experts */

/*
 * The tokens routed to one expert: their activation and output rows are the
 * consecutive "slots" [slot0, slot0 + n_tok) (src/kernels/moe.c).
 */
struct ntp_moe_group {
    int64_t expert; /* the expert, 0 .. n_expert - 1 */
    int64_t slot0;  /* its first slot */
    int64_t n_tok;  /* its tokens (>= 1) */
};

/*
 * One grouped product of a mixture of experts over this thread's share:
 *     y[s * ldy + r] = dot(W_e row r, X row s)
 * for every group (expert e, slots s of its tokens) and every row r < rows.
 * All experts' matrices lie back to back: expert e's row r is matrix row
 * e * rows + r. Each expert's rows are read once for all its tokens (a
 * prefill reads each expert once per batch; a decode reads only the chosen
 * experts). The rows of all groups are dealt out to the nth threads in runs
 * of 16 rows, weighted by the groups' tokens, and every run is an ordinary
 * product (ntp__kernels_matmul with one thread) on the expert's row range,
 * so every ISA's kernels and packed layouts serve experts as they serve
 * dense matrices.
 */
struct ntp_moe_matmul_args {
    enum ntp_type wtype;               /* type of W */
    const void *w;                     /* every expert's rows; row i at w + i * w_stride */
    size_t w_stride;                   /* bytes between rows */
    enum ntp_pack_layout layout;       /* W's layout; packed: rows a multiple of 16 */
    int64_t rows;                      /* rows of one expert's matrix (output features) */
    int64_t k;                         /* elements per row (input features) */
    const struct ntp_moe_group *group; /* the experts with tokens, n_group of them */
    int64_t n_group;
    const void *x;   /* X: slot rows in W's act_type, slot s at x + s * x_stride */
    size_t x_stride; /* bytes between X rows */
    float *y;        /* Y: slot rows of ldy floats */
    int64_t ldy;     /* floats between Y rows (>= rows) */
    int ith, nth;    /* this thread of nth */
};

/* Run a's share of the grouped product (see struct ntp_moe_matmul_args). */
ntp_status ntp__kernels_matmul_experts(const struct ntp_kernels *k,
                                       const struct ntp_moe_matmul_args *a);

/*
 * Route one token: the n_used largest of n_expert router logits (the lower
 * index first on a tie) into sel, in descending order, and their weights
 * into w: the softmax over the chosen logits, which equals the softmax over
 * all experts renormalised over the chosen ones (llama.cpp's build_moe_ffn
 * with softmax gating and norm_w, as qwen3moe and Mixtral route).
 */
void ntp__moe_route(const float *logits, int64_t n_expert, int64_t n_used, int32_t *sel, float *w);

/*
 * Routing as g says (model/config.h; llama.cpp's build_moe_ffn): softmax
 * over the chosen logits as ntp__moe_route, or probabilities from a softmax
 * over all experts or a sigmoid of each, the choice made on probability +
 * bias[e] (bias NULL: none) within the best g->n_group_used groups (a
 * group's score: its best two), the weights the chosen probabilities,
 * divided by their sum (at least 2^-14) with g->norm, times g->scale.
 * scratch: 2 * n_expert floats.
 */
void ntp__moe_route_gated(const float *logits, int64_t n_expert, int64_t n_used,
                          const struct ntp_moe_gating *g, const float *bias, float *scratch,
                          int32_t *sel, float *w);

/* The reference table entry of t (used by ntp__kernels_init and the tests). */
void ntp__kernels_ref_fill(struct ntp_kernel_type table[NTP_TYPE_COUNT]);

/* ------------------------------------------------- float ops (reference) */

/*
 * The element-wise and row-wise operations of a transformer layer, in float.
 * Pure functions over whole rows; callers split rows over threads.
 */

/* y = x / sqrt(mean(x²) + eps) * w over n elements (w may be NULL: no weight). y may be x. */
void ntp__rmsnorm_f32(float *y, const float *x, const float *w, int64_t n, float eps);
/* y[i] = silu(g[i]) * u[i] (SwiGLU), y may alias g or u. */
void ntp__swiglu_f32(float *y, const float *g, const float *u, int64_t n);
/* y[i] = gelu(g[i]) * u[i] (GeGLU, GELU's tanh form as ggml's gelu), y may alias g or u. */
void ntp__geglu_f32(float *y, const float *g, const float *u, int64_t n);
/* x[i] = exp(x[i] - max) / sum, over n elements. */
void ntp__softmax_f32(float *x, int64_t n);
/* y[i] += x[i]. */
void ntp__add_f32(float *y, const float *x, int64_t n);
/* dot of float vectors. */
float ntp__dot_f32(const float *a, const float *b, int64_t n);

/* Rotary embedding (struct ntp_rope_cfg: model/config.h). */
/*
 * cos/sin of every rotated pair for one position: cs[2i] = cos, cs[2i+1] =
 * sin of pair i (i < n_rot/2), magnitudes scaled by YaRN's mscale.
 */
void ntp__rope_cache_f32(float *cs, int64_t pos, const struct ntp_rope_cfg *c);
/* Rotate one head x[0, n_rot) in place with a cache from ntp__rope_cache_f32. */
void ntp__rope_apply_f32(float *x, const float *cs, int64_t n_rot, bool neox);

#endif /* NTP_KERNELS_KERNELS_H */
