/*
 * gen.h - write a GGUF model with random weights (`numatp gen`): any size of
 * llama (dense or Mixtral-style), qwen2, qwen3, qwen3moe or gemma3, any weight type or a
 * llama.cpp-like mix such as Q4_K_M, a synthetic byte-level BPE vocabulary or one copied from
 * another file. The weights are deterministic in the seed and scaled like a fresh initialization,
 * so a forward pass gives finite, varied logits: files for tests and benchmarks, not for reading.
 */
#ifndef NTP_MODEL_GEN_H
#define NTP_MODEL_GEN_H

#include "ntp.h"

#include <stdbool.h>
#include <stdint.h>

/* Named per-tensor type choices, as llama-quantize makes them. */
enum ntp_gen_mix {
    NTP_GEN_MIX_NONE,   /* every matrix and the embedding of type `type` */
    NTP_GEN_MIX_Q4_K_M, /* Q4_K; Q6_K for output and attn_v/ffn_down of the "more bits" layers */
    NTP_GEN_MIX_Q5_K_M, /* Q5_K; Q6_K in the same places */
};

/* The RoPE scaling metadata written (`{arch}.rope.scaling.type`). */
enum ntp_gen_rope_scaling {
    NTP_GEN_ROPE_UNSET,  /* no rope.scaling.* keys: the file is unscaled */
    NTP_GEN_ROPE_NONE,   /* type "none" (llama.cpp then ignores any factor) */
    NTP_GEN_ROPE_LINEAR, /* type "linear": positions divided by the factor */
    NTP_GEN_ROPE_YARN,   /* type "yarn": ramp between interpolation and extrapolation */
};

struct ntp_gen_params {
    const char *arch;        /* "llama", "qwen2", "qwen3", "qwen3moe", "gemma3" or "deepseek2";
                                not owned */
    const char *name;        /* general.name; NULL: "numatp-gen-<arch>"; not owned */
    int64_t n_embd;          /* hidden size */
    int64_t n_layer;         /* transformer blocks */
    int64_t n_head;          /* query heads */
    int64_t n_head_kv;       /* key/value heads; must divide n_head */
    int64_t head_dim;        /* per-head width of q, k, v; 0: n_embd / n_head */
    int64_t n_ff;            /* feed-forward width */
    int64_t n_vocab;         /* synthetic vocabulary size (>= 259); with vocab_from: 0 or equal */
    int64_t n_ctx;           /* context_length written to the file */
    float rope_freq_base;    /* 0: the architecture's typical value (10000 or 1e6) */
    float rms_eps;           /* 0: the architecture's typical value (1e-5 or 1e-6) */
    int64_t n_swa;           /* attention.sliding_window of an architecture with local
                                layers (gemma3: five of every six); 0: not written */
    int64_t n_expert;        /* experts per block: a mixture of experts in every block
                                (qwen3moe; llama: Mixtral-style); 0: dense, or 8 for an
                                MoE-only architecture (qwen3moe) */
    int64_t n_expert_used;   /* experts per token; 0: 2 (at most n_expert) */
    int64_t n_ff_exp;        /* one expert's width (qwen3moe's expert_feed_forward_length);
                                0: n_ff. llama's experts are n_ff wide. */
    bool tied_output;        /* no output.weight: the output head reuses token_embd */
    enum ntp_type type;      /* type of every 2-D matrix when mix is NONE */
    enum ntp_gen_mix mix;    /* a named mix instead of one type */
    enum ntp_type embd_type; /* token_embd's type; NTP_TYPE_COUNT: as type/mix choose */
    uint64_t seed;           /* same seed and parameters give the same bytes */
    const char *vocab_from;  /* NULL: synthetic BPE; else a GGUF whose tokenizer.* keys are
                                copied (n_vocab is its token count); not owned */
    bool progress;           /* report progress on stderr (worth it from ~100M parameters) */
    /*
     * RoPE scaling (all zero: none). rope_scale is written as
     * rope.scaling.factor when a scaling type is set, and is also llama3's
     * `factor` for rope_freqs (default 8); rope_orig_ctx is YaRN's
     * rope.scaling.original_context_length and llama3's
     * original_max_position_embeddings (default 8192).
     */
    enum ntp_gen_rope_scaling rope_scaling; /* type key to write */
    float rope_scale;                       /* scaling factor (> 1 stretches); 0: unset */
    int64_t rope_orig_ctx;                  /* trained context before scaling; 0: unset */
    float rope_attn_factor;                 /* rope.scaling.attn_factor; 0: not written */
    bool rope_freqs; /* add rope_freqs.weight (F32 [n_rot/2]) computed as llama.cpp's
                        converter does for rope_type llama3, low/high_freq_factor 1 and 4;
                        llama only */
    float rope_yarn_log_mul; /* rope.scaling.yarn_log_multiplier (deepseek2); 0: not written */
    bool fuse_gate_up;       /* experts' gate and up as one ffn_gate_up_exps (each expert's
                                gate rows, then its up rows), as llama.cpp's converter
                                writes them on request */
    /*
     * deepseek2 (gen_mla.c; 0 or false: the default there). head_dim is
     * then a query head's width with its RoPE part (key_length_mla).
     */
    int64_t kv_lora;         /* latent width (attention.kv_lora_rank) */
    int64_t q_lora;          /* query low-rank width; 0: attn_q */
    int64_t rope_dim;        /* RoPE part of each head (rope.dimension_count) */
    int64_t v_head_dim;      /* value head width (value_length_mla) */
    int64_t n_layer_dense;   /* leading blocks with a dense FFN of n_ff */
    int64_t n_expert_shared; /* shared experts */
    bool gating_sigmoid;     /* sigmoid gating (V3) instead of softmax (V2) */
    bool expert_norm;        /* expert_weights_norm */
    float expert_scale;      /* expert_weights_scale; 0: 1 */
    int64_t n_group, n_group_used; /* expert groups and groups used (0: none) */
    bool probs_bias;         /* the selection bias exp_probs_b */
    bool mla_kv_b;           /* write the older layout: attn_kv_b and decompressed key lengths */
};

/*
 * A small llama (256 wide, 2 layers, 4 heads, 2 KV heads, FFN 768, 512
 * tokens, context 256), F32 weights, seed 1, synthetic vocabulary.
 */
struct ntp_gen_params ntp__gen_default_params(void);

/*
 * Fill p with a named preset's architecture and shape ("tiny": the defaults;
 * "tinyllama-1b": TinyLlama-1.1B's shape, 22 x 2048, 32/4 heads, FFN 5632,
 * 32000 tokens; "gemma3-270m": Gemma 3 270M's, 18 x 640, 4/1 heads of 256,
 * FFN 2048, 262144 tokens, window 512, tied head; "tiny-moe": qwen3moe
 * 2 x 256, 8 experts of 128, 2 per token; "qwen3-30b-a3b": Qwen3-30B-A3B's,
 * 48 x 2048, 32/4 heads of 128, 128 experts of 768, 8 per token, 151936
 * tokens; "mixtral-8x7b": Mixtral-8x7B's, llama 32 x 4096, 32/8 heads,
 * 8 experts of 14336, 2 per token, 32000 tokens; "deepseek-v2-lite":
 * DeepSeek-V2-Lite's, 27 x 2048, 16 heads, latent 512, 64 experts of 1408,
 * 6 per token, 2 shared, YaRN x40; "deepseek-v3-small": DeepSeek-V3's
 * widths and routing, 7168 wide, 128 heads, query rank 1536, but 4 blocks
 * and 32 experts in 8 groups), keeping its type, mix,
 * seed and vocabulary source. NTP_E_NOT_FOUND if unknown.
 */
ntp_status ntp__gen_preset(const char *name, struct ntp_gen_params *p);

/*
 * Parse a mix or type name into p: "q4_k_m" / "q5_k_m" set the mix, any type
 * name ("q8_0", "f16", ...) sets the type with no mix. NTP_E_NOT_FOUND if
 * neither.
 */
ntp_status ntp__gen_parse_mix(const char *name, struct ntp_gen_params *p);

/*
 * Check the parameters without writing anything: sizes positive, heads
 * dividing, the types supported, every matrix's input dimension a multiple
 * of its type's block size. The message names the parameter or tensor and
 * what would work. NTP_E_INVALID_ARG (or NTP_E_UNSUPPORTED for a type numatp
 * cannot write).
 */
ntp_status ntp__gen_check(const struct ntp_gen_params *p);

/* Generate the model and write it to path (atomically: path.tmp, then renamed). */
ntp_status ntp__model_gen(const struct ntp_gen_params *p, const char *path);

/*
 * Parse a --rope-scaling name ("none", "linear", "yarn") into p.
 * NTP_E_NOT_FOUND if unknown.
 */
ntp_status ntp__gen_parse_rope_scaling(const char *name, struct ntp_gen_params *p);

/*
 * llama3's frequency factors for n_rot rotated dimensions (n_rot/2 values into
 * out), as convert_hf_to_gguf.py computes rope_freqs: 1 for wavelengths
 * below orig_ctx / 4, `factor` above orig_ctx, smoothly between.
 */
void ntp__gen_llama3_rope_freqs(float *out, int64_t n_rot, float freq_base, float factor,
                                int64_t orig_ctx);

/*
 * deepseek2's part of the generator (gen_mla.c): hparams fills the latent
 * attention and routing fields of hp (whose common fields gen.c set),
 * check says what is wrong with them, features adds the optional tensors'
 * NTP_FEAT_* bits, and write_keys writes the file's attention and routing
 * keys (the form p->mla_kv_b asks for).
 */
struct ntp_hparams;
void ntp__gen_mla_hparams(const struct ntp_gen_params *p, struct ntp_hparams *hp);
/* The latent attention and routing of a deepseek preset (none for the others). */
void ntp__gen_mla_preset(const char *name, struct ntp_gen_params *p);
ntp_status ntp__gen_mla_check(const struct ntp_gen_params *p, const struct ntp_hparams *hp);
unsigned ntp__gen_mla_features(const struct ntp_gen_params *p, const struct ntp_hparams *hp);
ntp_status ntp__gen_mla_write_keys(ntp_gguf_writer *w, const struct ntp_gen_params *p,
                                   const struct ntp_hparams *hp);

/* llama.cpp's general.file_type (enum llama_ftype) for the type or mix of p. */
uint32_t ntp__gen_file_type(const struct ntp_gen_params *p);

#endif /* NTP_MODEL_GEN_H */
