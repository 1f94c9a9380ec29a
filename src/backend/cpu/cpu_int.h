/*
 * cpu_int.h - what the CPU device's files share: the device and per-context
 * state structs. Internal to src/backend/cpu/.
 */
#ifndef NTP_BACKEND_CPU_INT_H
#define NTP_BACKEND_CPU_INT_H

#include "backend/cpu/cpu_device.h"

#include "numa/team.h"

#include <stdatomic.h>

/*
 * Prefill attention through OpenBLAS when the build has it (cpu_layer.c,
 * attend_block_blas): runs of at least NTP_ATT_MIN_TOK consecutive tokens of
 * one sequence, in blocks of NTP_ATT_TB tokens, against chunks of NTP_ATT_P
 * cached positions, for up to NTP_ATT_G query heads that share a KV head at
 * once (each chunk of keys and values is turned into floats once for them).
 * Each thread's scratch then holds a chunk's keys and values as floats, and
 * for the rows (head, token) of a block: their queries, scores, outputs and
 * running maxima and sums.
 */
#if NTP_HAVE_OPENBLAS
#define NTP_ATT_BLAS 1
#else
#define NTP_ATT_BLAS 0
#endif
#define NTP_ATT_MIN_TOK 8
#define NTP_ATT_TB      32
#define NTP_ATT_P       256
#define NTP_ATT_G       4
#define NTP_ATT_SCRATCH(hdk, hdv, g)                                                               \
    (NTP_ATT_P * ((hdk) + (hdv)) +                                                                 \
     NTP_ATT_TB * (g) * (NTP_ATT_P + (hdk) + (hdv) + 2))

/* Query heads a BLAS unit takes at once: those of one KV head, at most NTP_ATT_G. */
static inline int64_t att_heads(const struct ntp_model_cfg *cfg)
{
    const int64_t group = cfg->hp.n_head / cfg->hp.n_head_kv;
    return group < NTP_ATT_G ? group : NTP_ATT_G;
}

/*
 * Bytes one head's activations take in the act buffer for weight t (64-byte
 * aligned): latent attention's per-head products put every head of a token
 * side by side in its act row (cpu_layer.c, mm_heads).
 */
static inline size_t ntp__cpu_head_act(const struct ntp_kernels *k, const struct ntp_dev_tensor *t)
{
    return (ntp__kernels_act_row_size(k, t->type, t->ne[0]) + 63) & ~(size_t)63;
}

struct cpu_device {
    struct ntp_cpu_device_params p; /* as created (pus not kept) */
    struct ntp_kernels k;           /* kernel table chosen for this device */
    struct ntp_team *team;          /* the device's persistent, bound thread team (owned) */
};

/* The job a state's team is running or last ran (one at a time per device). */
struct cpu_job {
    struct ntp_dev_run run;        /* for run_layers */
    struct ntp_dev_output_run out; /* for run_output */
    _Atomic int err;               /* first failing status of the job (NTP_OK if none) */
    char msg[256];                 /* its message, written by the thread that set err */
    bool busy;                     /* started and not yet waited for */
};

/*
 * Per-context state. Every buffer is owned by the state and lives in the
 * device's memory; [a][b] means a rows of b elements. Widths are the shard's:
 * nh = shard.n_head, nkv = shard.n_head_kv, nff = shard.n_ff.
 */
struct ntp_dev_state {
    struct ntp_device *dev;        /* the device that made it */
    struct ntp_dev_state_params p; /* as given (pointers owned by the model) */
    int64_t n_embd, hdk, hdv;      /* hidden size and head widths (from cfg) */
    size_t k_head, v_head;         /* bytes of one KV head's key (value) in kv_type */
    int64_t rot_k, rot_v;          /* a quantized cache's Hadamard blocks: q and k, v and the
                                      attention output rotated in blocks of this many (0:
                                      none; cpu_device.c, cpu_state_new) */
    size_t kv_row;                 /* bytes of one position of K (or V) in one layer */
    uint8_t *k_cache;              /* [n_seq][n_layer][rows][nkv * hdk] in kv_type (head g's
                                      key at byte g * k_head of a row); rows = n_ctx, or twice
                                      the ring of a sliding-window layer (ntp__kv_ring) */
    uint8_t *v_cache;              /* [n_seq][n_layer][rows][nkv * hdv] in kv_type (g * v_head);
                                      unused with latent attention, whose values are the first
                                      hdv elements of the keys */
    size_t kv_seq;                 /* bytes of one sequence's cache (all its layers) */
    size_t *kv_off;                /* [n_layer] byte offset of each layer in a sequence's cache */
    int64_t *kv_ring;              /* [n_layer] the layer's ring, 0: row p for position p */
    float *x;                      /* [n_batch][n_embd] residual stream (the hidden state) */
    float *xn;                     /* [n_batch][n_embd] normed input of a projection */
    float *q;                      /* [n_batch][nh * hdk] */
    float *kx;                     /* [n_batch][nkv * hdk] new keys */
    float *vx;                     /* [n_batch][nkv * hdv] new values */
    float *att;                    /* [n_batch][nh * hdv] attention output (input of O) */
    float *part;                   /* [n_batch][n_embd] partial sum of O or down */
    float *gate;                   /* [n_batch][nff] (nff: the widest of the shard's dense,
                                      expert and shared-expert slices) */
    float *up;                     /* [n_batch][nff] */
    float *mq;                     /* latent attention: [n_batch][nh * mla_k] the projected
                                      queries (q then holds the absorbed ones) */
    float *qa;                     /* [n_batch][q_lora] the query's low-rank projection */
    float *mo;                     /* [n_batch][nh * mla_v] the heads' up-projected outputs */
    float *part2;                  /* [n_batch][n_embd] the shared experts' partial */
    float *rope_cs;                /* [n_batch][n_rot] cos/sin of each token's position */
    float *rope_cs_swa;            /* [n_batch][n_rot] the same for the sliding-window layers'
                                      RoPE (used when the model has such layers) */
    void *act;                     /* [n_batch][act_row] activations quantized for a matmul */
    size_t act_row;                /* bytes per row of act (largest need over the weights) */
    float *thr;                    /* [n_threads][thr_floats] per-thread scratch */
    int64_t thr_floats;            /* floats per thread: attention scores (n_ctx) and q in
                                      Q8_0 (hdk), or the prefill attention's NTP_ATT_SCRATCH */
    int n_threads;                 /* team size the scratch was sized for */
    struct cpu_moe *moe;           /* the expert FFN's buffers (cpu_moe.h); NULL: dense */
    int32_t *blk;                  /* [n_batch][2] the attention's token blocks in the current
                                      run: first token, count; the first n_blk_blas are for
                                      OpenBLAS (up to NTP_ATT_TB consecutive tokens of one
                                      sequence, in a run of NTP_ATT_MIN_TOK or more), the
                                      others one token each; host memory, set when the run
                                      starts (cpu_device.c) */
    int64_t n_blk, n_blk_blas;     /* blocks in blk, of them for OpenBLAS */
    struct cpu_job job;            /* the team's current job */
};

/* Team jobs of cpu_layer.c: ctx is the state; they run s->job.run / s->job.out. */
void ntp__cpu_layers_job(void *ctx, int ith, int nth);
void ntp__cpu_output_job(void *ctx, int ith, int nth);

#endif /* NTP_BACKEND_CPU_INT_H */
