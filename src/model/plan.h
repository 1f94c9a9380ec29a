/*
 * plan.h - the shard planner (docs/architecture.md "The two cuts"): which part of every
 * weight each device of a tensor-parallel group holds. Q/K/V, gate/up and the
 * output head are cut by columns (output features), O and down by rows
 * (input features). A row cut must fall on a block boundary of the tensor's
 * quantization (a block never spans two devices) and O's must also fall on a
 * head boundary; shares may be uneven (3 devices, 8 KV heads: 3/3/2); when
 * there are fewer KV heads than devices, the query heads are split and each
 * device holds the KV heads its query heads read (KV heads replicated).
 * Where no legal cut gives every device a share, the devices that get none
 * hold an empty slice and the part runs on fewer devices (warned).
 *
 * A mixture of experts is cut by features (NTP_MOE_SPLIT_FEATURES): every
 * expert's gate and up keep the shard's slice [ff0, ff0 + n_ff) of the
 * expert width n_ff_exp (rows of each expert's matrix), down the matching
 * input columns, so every device holds a share of every expert and a
 * token's experts run on all devices. Or by experts (NTP_MOE_SPLIT_EXPERTS):
 * device d holds whole experts [expert0, expert0 + n_expert) (uneven
 * shares: 8 over 3 devices, 3/3/2), and a token's experts run where they
 * are. Either way the router (ffn_gate_inp) is replicated and the partial
 * outputs are summed by the FFN's all-reduce as a dense FFN's are.
 */
#ifndef NTP_MODEL_PLAN_H
#define NTP_MODEL_PLAN_H

#include "backend/device.h"
#include "model/arch.h"

/* Most devices of one plan. */
#define NTP_PLAN_MAX_DEV 16

struct ntp_plan_params {
    int n_dev;          /* devices of the group, 1 .. NTP_PLAN_MAX_DEV */
    int64_t attn_block; /* a row cut of attn_output must be a multiple of this (its block size) */
    int64_t ffn_block;  /* a row cut of ffn_down (ffn_down_exps) must be a multiple of this */
    int64_t layer0;     /* blocks the group runs: [layer0, layer0 + n_layer) */
    int64_t n_layer;
    bool head;     /* the group holds the output head */
    int moe_split; /* a mixture of experts' cut (enum ntp_moe_split, ntp.h) */
};

struct ntp_plan {
    int n_dev;
    struct ntp_shard shard[NTP_PLAN_MAX_DEV]; /* per device */
    int kv_replicas;  /* most devices holding one KV head (1: none replicated) */
    int attn_devices; /* devices with at least one query head */
    int ffn_devices;  /* devices with a share of the FFN (of a mixture: of the experts) */
    int moe_split;    /* as asked (enum ntp_moe_split); meaningful for mixtures of experts */
    char note[320];   /* what is replicated or not split, and why; "" when nothing */
};

/* Stage of n_stage's blocks of n_layer (pipeline parallelism): [*layer0, *layer0 + *n). */
void ntp__plan_stage_layers(int64_t n_layer, int stage, int n_stage, int64_t *layer0, int64_t *n);

/* Plan the shards of hp over p->n_dev devices. */
ntp_status ntp__plan_make(const struct ntp_hparams *hp, const struct ntp_plan_params *p,
                          struct ntp_plan *out);

/*
 * Which dimension of tensor id a shard cuts (0: input columns, row-parallel;
 * 1: output rows, column-parallel; 2: whole matrices of a 3-D tensor, the
 * heads of latent attention's attn_k_b and attn_v_b; -1: the whole tensor,
 * replicated) and the slice [*start, *start + *len) it keeps along it. The
 * experts of a 3-D expert tensor are the shard's expert0 .. (not cut here).
 */
int ntp__plan_cut(enum ntp_tensor_id id, const struct ntp_shard *sh, const struct ntp_hparams *hp,
                  int64_t *start, int64_t *len);

/* The KV cache a context of the planned devices would allocate (CPU devices' layout). */
struct ntp_kv_plan {
    int64_t n_ctx, n_batch;           /* in: the context's positions (per sequence) and batch */
    int64_t n_seq;                    /* in: sequences it holds (serve --parallel; 0: one) */
    enum ntp_type type;               /* in: the cache type (F16, F32, Q8_0, Q4_0) */
    uint64_t bytes[NTP_PLAN_MAX_DEV]; /* out: K and V bytes per device */
    uint64_t plain[NTP_PLAN_MAX_DEV]; /* out: the same if every layer kept n_ctx rows */
    int64_t n_ring;                   /* out: layers keeping a ring (config.h, ntp__kv_ring) */
    int64_t ring;                     /* out: their ring, in positions */
};

/*
 * For `numatp plan`: read the model description of the GGUF file at path and
 * plan it over n_dev devices (a mixture of experts cut as moe_split says)
 * without loading the weights; bytes[d] receives
 * the weight bytes device d would hold, *hp the model's sizes, and kv (when
 * not NULL) the KV cache sizes for its n_ctx and n_batch. Defined in load.c,
 * which owns reading a model.
 */
ntp_status ntp__model_plan_file(const char *path, int n_dev, int moe_split, struct ntp_plan *plan,
                                struct ntp_hparams *hp, uint64_t *bytes, struct ntp_kv_plan *kv);
/* The same for pipeline stage `stage` of n_stage (mpirun --pp): its blocks over n_dev devices. */
ntp_status ntp__model_plan_stage(const char *path, int n_dev, int moe_split, int stage, int n_stage,
                                 struct ntp_plan *plan, struct ntp_hparams *hp, uint64_t *bytes,
                                 struct ntp_kv_plan *kv);

#endif /* NTP_MODEL_PLAN_H */
