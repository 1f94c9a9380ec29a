/*
 * config.h - what a model is, as the layers below the model read it: its
 * hyper-parameters, its rotary embedding, the switches of its architecture
 * and the names (ids) of its weights. Kernels, backends and exec include this
 * header directly; it includes nothing of the project but ntp.h, so none of
 * them reaches through another layer to get these types
 * (docs/architecture.md "Layers").
 */
#ifndef NTP_MODEL_CONFIG_H
#define NTP_MODEL_CONFIG_H

#include "ntp.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* How a mixture of experts turns router logits into experts and weights (llama.cpp's
   build_moe_ffn). */
enum ntp_moe_gate {
    NTP_MOE_SOFTMAX_TOPK, /* softmax over the chosen experts' logits (qwen3moe, Mixtral) */
    NTP_MOE_SOFTMAX,      /* probabilities: softmax over all experts (deepseek2 V2) */
    NTP_MOE_SIGMOID,      /* probabilities: sigmoid of each logit (deepseek2 V3) */
};

struct ntp_moe_gating {
    enum ntp_moe_gate gate;
    bool norm;            /* weights divided by their sum (expert_weights_norm) */
    float scale;          /* weights multiplied by this (expert_weights_scale; 1: none) */
    int64_t n_group;      /* experts in n_group groups, ... (expert_group_count; <= 1: none) */
    int64_t n_group_used; /* ... of which the best n_group_used are chosen from */
};

/*
 * Hyper-parameters of a model, as read from or written to the metadata. The
 * head dimensions are explicit because qwen3 (and others) decouple them from
 * n_embd / n_head.
 */
struct ntp_hparams {
    int64_t n_embd;           /* hidden size */
    int64_t n_layer;          /* transformer blocks */
    int64_t n_head;           /* query heads */
    int64_t n_head_kv;        /* key/value heads (n_head % n_head_kv == 0) */
    int64_t head_dim_k;       /* per-head width of q and k (key_length) */
    int64_t head_dim_v;       /* per-head width of v (value_length) */
    int64_t n_ff;             /* feed-forward width */
    int64_t n_vocab;          /* tokens */
    int64_t n_ctx;            /* training context length */
    int64_t n_rot;            /* rotated dimensions per head (rope.dimension_count) */
    float rms_eps;            /* RMS norm epsilon */
    float rope_freq_base;     /* RoPE theta */
    int64_t n_swa;            /* sliding window of the local layers (attention.sliding_window);
                                 0: every layer attends to the whole context */
    int64_t swa_pattern;      /* with n_swa: layers il with il % swa_pattern < swa_pattern - 1
                                 are local, all of them for 0 (attention.sliding_window_pattern,
                                 gemma3 default 6); -1: the file lists them (bool array) */
    float rope_freq_base_swa; /* RoPE theta of the local layers (rope.freq_base_swa) */
    float logit_softcap;      /* final_logit_softcapping: logits = c tanh(logits / c); 0: none */
    int64_t n_expert;         /* experts of each mixture-of-experts FFN (expert_count); 0: the
                                 FFN is dense */
    int64_t n_expert_used;    /* experts each token is routed to (expert_used_count) */
    int64_t n_ff_exp;         /* feed-forward width of one expert (expert_feed_forward_length,
                                 else feed_forward_length) */
    /*
     * Multi-head latent attention (deepseek2; 0 elsewhere). The fields above
     * then describe the cache as the attention reads it: one KV head
     * (n_head_kv 1) whose key is the latent and the shared RoPE key
     * (head_dim_k = kv_lora + n_rot) and whose value is the latent
     * (head_dim_v = kv_lora), whatever layout the file has.
     */
    int64_t kv_lora;        /* latent width (attention.kv_lora_rank); 0: no MLA */
    int64_t q_lora;         /* query low-rank width (attention.q_lora_rank); 0: attn_q */
    int64_t mla_k;          /* a query head's width, no-RoPE part then RoPE part
                               (attention.key_length_mla) */
    int64_t mla_v;          /* a head's output width after the up-projection
                               (attention.value_length_mla) */
    int64_t n_layer_dense;  /* leading blocks with a dense FFN (leading_dense_block_count) */
    int64_t n_expert_shared; /* shared experts, one SwiGLU n_expert_shared * n_ff_exp wide */
    struct ntp_moe_gating gating; /* routing of the mixture of experts */
};

/* Width of one query head as projected (attn_q's rows per head). */
static inline int64_t ntp__hp_q_head(const struct ntp_hparams *hp)
{
    return hp->kv_lora ? hp->mla_k : hp->head_dim_k;
}

/* Width of one head's output, attn_output's input columns per head. */
static inline int64_t ntp__hp_o_head(const struct ntp_hparams *hp)
{
    return hp->kv_lora ? hp->mla_v : hp->head_dim_v;
}

/* Width of the shared experts' FFN (0: none). */
static inline int64_t ntp__hp_ff_shexp(const struct ntp_hparams *hp)
{
    return hp->n_expert_shared * hp->n_ff_exp;
}

/* How positions rotate q and k: ggml's rope with linear, YaRN and per-frequency scaling. */
struct ntp_rope_cfg {
    int64_t n_rot;     /* rotated dimensions per head (even, <= head_dim_k) */
    bool neox;         /* rotate halves (x[i], x[i + n_rot/2]) instead of pairs */
    float freq_base;   /* theta base */
    float freq_scale;  /* 1 / linear or YaRN scaling factor; 1 when unscaled */
    float ext_factor;  /* YaRN extrapolation mix; 0 unless YaRN */
    float attn_factor; /* magnitude scale of cos/sin (YaRN); 1 otherwise */
    float beta_fast;   /* YaRN ramp bounds (llama.cpp defaults 32 and 1) */
    float beta_slow;
    int64_t n_ctx_orig;        /* context the model was trained with (YaRN ramp) */
    const float *freq_factors; /* n_rot/2 divisors of each frequency (llama3 rope_freqs), or NULL;
                                  host memory owned by the model */
};

/* The gated activation of the feed-forward network: act(gate) * up. */
enum ntp_ffn_act {
    NTP_FFN_SILU, /* SwiGLU: llama, qwen */
    NTP_FFN_GELU, /* GeGLU with GELU's tanh form: gemma */
    NTP_FFN_ACT_COUNT,
};

/* Everything about the model a device needs to run its layers; owned by the model. */
struct ntp_model_cfg {
    struct ntp_hparams hp;        /* full-model sizes (not the shard's) */
    struct ntp_rope_cfg rope;     /* rotary embedding (of the global layers, with SWA) */
    struct ntp_rope_cfg rope_swa; /* rotary embedding of the local (sliding-window) layers */
    bool qkv_bias;                /* attn_q/k/v have biases (qwen2) */
    bool qk_norm;                 /* per-head RMS norm of q and k before RoPE (qwen3, gemma3) */
    bool post_norm;           /* RMS norms of the attention and FFN outputs (post_attention_norm,
                                 post_ffw_norm) after the all-reduce, before the residual add (gemma3) */
    enum ntp_ffn_act ffn_act; /* the FFN's gate */
    float attn_scale;         /* multiplies q·k; 1/sqrt(head_dim_k) */
    float embd_scale;         /* multiplies the token embeddings: 1, or sqrt(n_embd) (gemma) */
    const bool *is_swa;       /* [n_layer] whether layer il attends to a sliding window of
                                 hp.n_swa positions; NULL when none does (host, owned by
                                 the model) */
};

/* Most experts a mixture-of-experts layer may have (llama.cpp's LLAMA_MAX_EXPERTS). */
#define NTP_MAX_EXPERTS 512

/*
 * Whether the FFN is a mixture of experts (docs/architecture.md "Mixture of
 * experts"): a router picks n_expert_used of n_expert SwiGLU experts per
 * token, weighted by the softmax of the router's logits over the chosen ones.
 */
static inline bool ntp__cfg_moe(const struct ntp_model_cfg *cfg)
{
    return cfg->hp.n_expert > 0;
}

/* Whether block il's FFN is the mixture (deepseek2's first blocks are dense). */
static inline bool ntp__layer_moe(const struct ntp_hparams *hp, int64_t il)
{
    return hp->n_expert > 0 && il >= hp->n_layer_dense;
}

/* Whether attention is multi-head latent attention (deepseek2). */
static inline bool ntp__cfg_mla(const struct ntp_model_cfg *cfg)
{
    return cfg->hp.kv_lora > 0;
}

/* Whether layer il attends to a sliding window (cfg->hp.n_swa positions ending at its own). */
static inline bool ntp__layer_swa(const struct ntp_model_cfg *cfg, int64_t il)
{
    return cfg->is_swa != NULL && cfg->is_swa[il];
}

/*
 * The KV cache of a sliding-window layer need not hold the whole context:
 * a batch of n_batch tokens reads at most n_swa + n_batch - 1 consecutive
 * positions. When that ring is shorter than n_ctx, position p is stored
 * twice, at rows p % ring and p % ring + ring of a 2 * ring row cache, so
 * that every window is one contiguous run of rows starting at row
 * (first position) % ring and the attention kernels need not wrap. Returns
 * the ring (> 0), or 0 when layer il keeps the plain layout (row p for
 * position p, n_ctx rows).
 */
static inline int64_t ntp__kv_ring(const struct ntp_model_cfg *cfg, int64_t il, int64_t n_ctx,
                                   int64_t n_batch)
{
    if (!ntp__layer_swa(cfg, il))
        return 0;
    const int64_t ring = cfg->hp.n_swa + n_batch - 1;
    return 2 * ring < n_ctx ? ring : 0;
}

/* Rows of layer il's KV cache: n_ctx, or twice the ring of a sliding-window layer. */
static inline int64_t ntp__kv_rows(const struct ntp_model_cfg *cfg, int64_t il, int64_t n_ctx,
                                   int64_t n_batch)
{
    const int64_t ring = ntp__kv_ring(cfg, il, n_ctx, n_batch);
    return ring ? 2 * ring : n_ctx;
}

/*
 * Every weight an architecture in the table (model/arch.c) can have; the
 * order is the file order. Devices index their weights by these ids.
 */
enum ntp_tensor_id {
    NTP_T_TOKEN_EMBD,
    NTP_T_ATTN_NORM,
    NTP_T_ATTN_Q,
    NTP_T_ATTN_Q_BIAS,
    NTP_T_ATTN_K,
    NTP_T_ATTN_K_BIAS,
    NTP_T_ATTN_V,
    NTP_T_ATTN_V_BIAS,
    NTP_T_ATTN_Q_NORM,
    NTP_T_ATTN_K_NORM,
    NTP_T_ATTN_Q_A,        /* MLA: the query's low-rank projection [n_embd, q_lora] */
    NTP_T_ATTN_Q_A_NORM,   /* its RMS norm */
    NTP_T_ATTN_Q_B,        /* the query heads from it [q_lora, n_head * mla_k] */
    NTP_T_ATTN_KV_A_MQA,   /* the latent and the RoPE key [n_embd, kv_lora + n_rot] */
    NTP_T_ATTN_KV_A_NORM,  /* the latent's RMS norm */
    NTP_T_ATTN_KV_B,       /* older files: the latent's up-projection, per head the
                              no-RoPE key rows then the value rows; the loader turns it
                              into K_B and V_B */
    NTP_T_ATTN_K_B,        /* per head [nope, kv_lora]: q's no-RoPE part into the latent */
    NTP_T_ATTN_V_B,        /* per head [kv_lora, mla_v]: the latent output into the head's */
    NTP_T_ATTN_OUTPUT,
    NTP_T_ATTN_POST_NORM,
    NTP_T_FFN_NORM,
    NTP_T_FFN_GATE,
    NTP_T_FFN_UP,
    NTP_T_FFN_DOWN,
    NTP_T_FFN_GATE_INP,  /* the router of a mixture of experts: [n_embd, n_expert] */
    NTP_T_FFN_GATE_EXPS, /* every expert's gate, [n_embd, n_ff_exp, n_expert] */
    NTP_T_FFN_UP_EXPS,   /* every expert's up, [n_embd, n_ff_exp, n_expert] */
    NTP_T_FFN_DOWN_EXPS, /* every expert's down, [n_ff_exp, n_embd, n_expert] */
    NTP_T_FFN_EXP_PROBS_B, /* the experts' selection bias [n_expert] (deepseek2 V3) */
    NTP_T_FFN_GATE_SHEXP,  /* the shared experts' FFN [n_embd, n_ff_shexp] ... */
    NTP_T_FFN_UP_SHEXP,
    NTP_T_FFN_DOWN_SHEXP,
    NTP_T_FFN_POST_NORM,
    NTP_T_OUTPUT_NORM,
    NTP_T_OUTPUT,
    NTP_T_COUNT,
};

/*
 * The two halves of a block: attention (ATTN_NORM .. ATTN_POST_NORM: norm,
 * QKV, attention, O and the first residual add) and FFN (FFN_NORM ..
 * FFN_POST_NORM: norm, router, dense or expert FFN, the second add). Under
 * --cpu-moe the halves of one block live on different devices.
 */
static inline bool ntp__tensor_attn_half(enum ntp_tensor_id id)
{
    return id >= NTP_T_ATTN_NORM && id < NTP_T_FFN_NORM;
}

/*
 * The tensor's GGUF name for layer il (ignored for per-model tensors) into
 * buf, e.g. "blk.3.attn_q.weight" (model/arch.c). NTP_E_OVERFLOW when it
 * does not fit.
 */
ntp_status ntp__tensor_name(enum ntp_tensor_id id, int il, char *buf, size_t size);

#endif /* NTP_MODEL_CONFIG_H */
