/*
 * arch.h - the model architectures numatp knows (llama, qwen2, qwen3, qwen3moe, gemma3,
 * deepseek2), as data:
 * their GGUF metadata keys, the tensors each one has with llama.cpp's names,
 * and the shape of every tensor in GGUF order (ne0 = input dimension). The
 * random-weight generator writes files from this table and the model loader
 * reads them with it, so the two can never disagree about a name or a shape.
 */
#ifndef NTP_MODEL_ARCH_H
#define NTP_MODEL_ARCH_H

#include "ntp.h"

#include "model/config.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Rotary embedding variants, numbered as llama.cpp's LLAMA_ROPE_TYPE_*. */
enum ntp_rope_type {
    NTP_ROPE_NORM = 0, /* rotate adjacent pairs (x[2i], x[2i+1]): llama */
    NTP_ROPE_NEOX = 2, /* rotate halves (x[i], x[i + d/2]): qwen2, qwen3 */
};

/* Optional parts of an architecture; a tensor needs all the features it names. */
enum ntp_arch_feature {
    NTP_FEAT_QKV_BIAS = 1u << 0,  /* attn_q/k/v have biases (qwen2) */
    NTP_FEAT_QK_NORM = 1u << 1,   /* per-head RMS norm of q and k before RoPE (qwen3) */
    NTP_FEAT_OUTPUT = 1u << 2,    /* separate output.weight; absent when tied to token_embd */
    NTP_FEAT_POST_NORM = 1u << 3, /* post_attention_norm and post_ffw_norm (gemma3) */
    NTP_FEAT_MOE = 1u << 4,       /* mixture-of-experts FFN (qwen3moe; llama with experts):
                                     router and expert tensors instead of ffn_gate/up/down */
    NTP_FEAT_MLA = 1u << 5,     /* multi-head latent attention (deepseek2): attn_kv_a_mqa and
                                   the latent's up-projection instead of attn_k/v */
    NTP_FEAT_Q_LORA = 1u << 6,  /* MLA's query through attn_q_a/attn_q_b instead of attn_q */
    NTP_FEAT_KV_B = 1u << 7,    /* MLA's up-projection as one attn_kv_b (older files) */
    NTP_FEAT_PROBS_B = 1u << 8, /* the experts' selection bias exp_probs_b */
    NTP_FEAT_SHEXP = 1u << 9,   /* shared experts beside the routed ones */
};

struct ntp_arch {
    const char *name;             /* general.architecture and the metadata key prefix */
    enum ntp_rope_type rope_type; /* how q and k are rotated */
    unsigned features;            /* NTP_FEAT_* bits the architecture always has */
    float typical_rms_eps;        /* RMS norm epsilon of the real models (generator default) */
    float typical_rope_freq_base; /* RoPE theta of the real models (generator default) */
    enum ntp_ffn_act ffn_act;     /* the FFN's gated activation */
    bool embd_scale;              /* token embeddings multiplied by sqrt(n_embd) (gemma) */
    int64_t swa_pattern;          /* > 0: the architecture reads attention.sliding_window, and
                                     this is its pattern when the file gives none; 0: no SWA */
};

/* Hyper-parameter keys, "%s" standing for the architecture name. */
enum ntp_hparam_key {
    NTP_KV_CONTEXT_LENGTH,     /* "%s.context_length" */
    NTP_KV_EMBEDDING_LENGTH,   /* "%s.embedding_length" */
    NTP_KV_BLOCK_COUNT,        /* "%s.block_count" */
    NTP_KV_FEED_FORWARD,       /* "%s.feed_forward_length" */
    NTP_KV_HEAD_COUNT,         /* "%s.attention.head_count" */
    NTP_KV_HEAD_COUNT_KV,      /* "%s.attention.head_count_kv" */
    NTP_KV_RMS_EPS,            /* "%s.attention.layer_norm_rms_epsilon" */
    NTP_KV_ROPE_FREQ_BASE,     /* "%s.rope.freq_base" */
    NTP_KV_ROPE_DIM_COUNT,     /* "%s.rope.dimension_count" */
    NTP_KV_KEY_LENGTH,         /* "%s.attention.key_length" */
    NTP_KV_VALUE_LENGTH,       /* "%s.attention.value_length" */
    NTP_KV_VOCAB_SIZE,         /* "%s.vocab_size" */
    NTP_KV_SLIDING_WINDOW,     /* "%s.attention.sliding_window" */
    NTP_KV_SWA_PATTERN,        /* "%s.attention.sliding_window_pattern" (integer or bool array) */
    NTP_KV_ROPE_FREQ_BASE_SWA, /* "%s.rope.freq_base_swa" */
    NTP_KV_LOGIT_SOFTCAP,      /* "%s.final_logit_softcapping" */
    NTP_KV_EXPERT_COUNT,       /* "%s.expert_count" */
    NTP_KV_EXPERT_USED_COUNT,  /* "%s.expert_used_count" */
    NTP_KV_EXPERT_FF,          /* "%s.expert_feed_forward_length" */
    NTP_KV_Q_LORA_RANK,        /* "%s.attention.q_lora_rank" */
    NTP_KV_KV_LORA_RANK,       /* "%s.attention.kv_lora_rank" */
    NTP_KV_KEY_LENGTH_MLA,     /* "%s.attention.key_length_mla" */
    NTP_KV_VALUE_LENGTH_MLA,   /* "%s.attention.value_length_mla" */
    NTP_KV_LEADING_DENSE,      /* "%s.leading_dense_block_count" */
    NTP_KV_EXPERT_SHARED,      /* "%s.expert_shared_count" */
    NTP_KV_EXPERT_W_SCALE,     /* "%s.expert_weights_scale" */
    NTP_KV_EXPERT_W_NORM,      /* "%s.expert_weights_norm" */
    NTP_KV_EXPERT_GATING,      /* "%s.expert_gating_func" (1 softmax, 2 sigmoid) */
    NTP_KV_EXPERT_GROUPS,      /* "%s.expert_group_count" */
    NTP_KV_EXPERT_GROUPS_USED, /* "%s.expert_group_used_count" */
    NTP_KV_COUNT,
};

/* The symbolic dimensions tensor shapes are made of (see ntp__hparams_dim). */
enum ntp_dim {
    NTP_DIM_ONE,    /* 1: placeholder for unused dimensions */
    NTP_DIM_EMBD,   /* n_embd */
    NTP_DIM_Q,      /* n_head * head_dim_k: width of q */
    NTP_DIM_KV,     /* n_head_kv * head_dim_k: width of k */
    NTP_DIM_V,      /* n_head_kv * head_dim_v: width of v */
    NTP_DIM_ATTN,   /* n_head * head_dim_v: width of the attention output, input of attn_output */
    NTP_DIM_HEAD,   /* head_dim_k: the q/k norm weights */
    NTP_DIM_FF,     /* n_ff */
    NTP_DIM_VOCAB,  /* n_vocab */
    NTP_DIM_FF_EXP, /* n_ff_exp: one expert's feed-forward width */
    NTP_DIM_EXPERT, /* n_expert */
    NTP_DIM_Q_LORA, /* q_lora */
    NTP_DIM_KV_LORA, /* kv_lora */
    NTP_DIM_KV_A,   /* kv_lora + n_rot: the latent and the RoPE key */
    NTP_DIM_KV_B,   /* n_head * (mla_k - n_rot + mla_v): attn_kv_b's rows */
    NTP_DIM_NOPE,   /* mla_k - n_rot: a query head's no-RoPE part */
    NTP_DIM_V_MLA,  /* mla_v */
    NTP_DIM_HEADS,  /* n_head: the head axis of attn_k_b and attn_v_b */
    NTP_DIM_FF_SHEXP, /* n_expert_shared * n_ff_exp */
};

/* What kind of data a tensor holds; the generator picks types and scales by it. */
enum ntp_tensor_role {
    NTP_ROLE_EMBD,   /* token embedding matrix: rows are looked up, not multiplied */
    NTP_ROLE_MATRIX, /* a weight matrix of a linear layer (quantized in quantized files) */
    NTP_ROLE_NORM,   /* RMS norm weights, always F32 */
    NTP_ROLE_BIAS,   /* linear-layer bias, always F32 */
};

struct ntp_tensor_desc {
    const char *name;          /* llama.cpp name; "%d" is the layer index when per_layer */
    bool per_layer;            /* one per transformer block ("blk.%d.") or one per model */
    enum ntp_tensor_role role; /* matrix, norm, bias or embedding */
    unsigned needs;            /* NTP_FEAT_* bits the model must have for the tensor to exist */
    uint32_t n_dims;           /* 1, 2, or 3 for the expert tensors (one matrix per expert) */
    enum ntp_dim ne[3];        /* shape in GGUF order: ne[0] is the contiguous input dimension,
                                  ne[2] the expert */
    unsigned excludes;         /* NTP_FEAT_* bits with which it does not exist (the dense FFN of
                                  a mixture of experts) */
};

/* The architecture named name ("llama", "qwen2", "qwen3"), or NULL. */
const struct ntp_arch *ntp__arch_find(const char *name);
/* The names of the known architectures, "llama, qwen2, ...", into buf (for messages). */
void ntp__arch_names(char *buf, size_t size);

/* Description of tensor id (never NULL for id < NTP_T_COUNT). */
const struct ntp_tensor_desc *ntp__tensor_desc(enum ntp_tensor_id id);
/* Whether a model with these features has the tensor (features: arch bits | NTP_FEAT_OUTPUT when
 * untied). */
bool ntp__tensor_present(enum ntp_tensor_id id, unsigned features);
/* The features of block il: without the experts' for a leading dense block (deepseek2). */
unsigned ntp__block_features(unsigned features, const struct ntp_hparams *hp, int64_t il);
/* ne[0..2] of the tensor for hp (unused dimensions are 1). */
void ntp__tensor_shape(enum ntp_tensor_id id, const struct ntp_hparams *hp, int64_t ne[3]);
/* Value of a symbolic dimension. */
int64_t ntp__hparams_dim(const struct ntp_hparams *hp, enum ntp_dim d);

/* The metadata key for arch, e.g. "qwen2.attention.head_count". NTP_E_OVERFLOW when too long. */
ntp_status ntp__arch_key(const struct ntp_arch *arch, enum ntp_hparam_key k, char *buf,
                         size_t size);

/*
 * One positive integer (float) key k of arch; required: missing is an error,
 * else *out keeps its value. Messages name the key.
 */
ntp_status ntp__arch_read_i64(const ntp_gguf *g, const struct ntp_arch *arch,
                              enum ntp_hparam_key k, bool required, int64_t *out);
ntp_status ntp__arch_read_f32(const ntp_gguf *g, const struct ntp_arch *arch,
                              enum ntp_hparam_key k, bool required, float *out);

/*
 * Read the hyper-parameters of arch from g, with llama.cpp's defaults for the
 * optional keys (head_count_kv = head_count, key/value_length = n_embd/n_head,
 * rope.dimension_count = key_length, rope.freq_base = 10000, vocab_size =
 * length of tokenizer.ggml.tokens; the RMS epsilon is required; expert_count
 * = 0 (dense) except for an MoE architecture, which needs it and
 * expert_used_count, expert_feed_forward_length = feed_forward_length; for an
 * architecture with sliding windows, sliding_window = 0 (none), its pattern
 * = the architecture's, rope.freq_base_swa = 10000). Checks that the values
 * are positive and consistent; messages name the key. A pattern given as a
 * per-layer array leaves hp->swa_pattern -1 (the loader reads the array).
 * A deepseek2 file's latent attention and routing keys are read as
 * ntp__hparams_read_mla says.
 */
ntp_status ntp__hparams_read(const ntp_gguf *g, const struct ntp_arch *arch,
                             struct ntp_hparams *hp);

/*
 * The keys of multi-head latent attention and of deepseek2's routing
 * (arch_mla.c), into hp, whose common keys are read: kv_lora_rank
 * (required), q_lora_rank (0: attn_q), key/value_length_mla (absent in
 * older files, whose key/value_length and head_count_kv describe the
 * decompressed heads), leading_dense_block_count, expert_shared_count and
 * the gating keys with llama.cpp's defaults. Leaves hp in the cache's view
 * (config.h, struct ntp_hparams).
 */
ntp_status ntp__hparams_read_mla(const ntp_gguf *g, const struct ntp_arch *arch,
                                 struct ntp_hparams *hp);

/*
 * Name of a general.file_type value (llama.cpp's enum llama_ftype without the
 * MOSTLY_ prefix: "Q4_K_M", "ALL_F32"), or NULL for a value llama.cpp does
 * not define.
 */
const char *ntp__file_type_name(uint32_t ftype);

#endif /* NTP_MODEL_ARCH_H */
