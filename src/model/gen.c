/*
 * gen.c - random-weight GGUF models. The tensors come from the architecture
 * table (arch.c) in its order; each is generated row by row from a PRNG
 * seeded by (seed, tensor name, row), quantized into its final form and
 * handed to the GGUF writer, so the only float data alive is one row per
 * thread and the only full-size data is the writer's copy of the file.
 * Per-row seeds make the bytes independent of the number of threads.
 */
#include "model/gen.h"

#include "core/core.h"
#include "gguf/gguf_file.h"
#include "kernels/quant.h"
#include "model/arch.h"
#include "tokenizer/synth_vocab.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Standard deviations of a GPT-2-style initialization. */
#define GEN_STD_MATRIX 0.02f /* linear layers and the embedding */
/* The router: logits a few units apart, as trained routers give them, so that
   a token's choice of experts does not hang on the last bits of its state. */
#define GEN_STD_ROUTER 0.25f
#define GEN_STD_NORM   0.05f /* norm weights are 1 + this much noise */
#define GEN_STD_BIAS   0.02f

/* A named shape: the architecture and sizes a preset sets. */
struct gen_preset {
    const char *name, *arch;
    int64_t n_embd, n_layer, n_head, n_head_kv, head_dim, n_ff, n_vocab, n_ctx, n_swa;
    float rope_freq_base, rms_eps;
    bool tied_output;
    int64_t n_expert, n_expert_used, n_ff_exp;
};

/*
 * tiny: the default shape (RoPE theta and epsilon the architecture's typical
 * ones). tinyllama-1b: config.json of
 * TinyLlama/TinyLlama-1.1B-Chat-v1.0. gemma3-270m: the metadata of the
 * published GGUF conversion of Gemma 3 270M. tiny-moe: the tiny shape as a
 * qwen3moe. qwen3-30b-a3b: config.json of Qwen/Qwen3-30B-A3B (its
 * feed_forward_length 6144 is unused: every block is a mixture).
 * mixtral-8x7b: config.json of mistralai/Mixtral-8x7B-v0.1. deepseek-v2-lite
 * and deepseek-v3-small: gen_mla.c.
 */
static const struct gen_preset presets[] = {
    {"tiny", "llama", 256, 2, 4, 2, 0, 768, 512, 256, 0, 0.0f, 0.0f, false, 0, 0, 0},
    {"tinyllama-1b", "llama", 2048, 22, 32, 4, 0, 5632, 32000, 2048, 0, 10000.0f, 1e-5f, false, 0,
     0, 0},
    {"gemma3-270m", "gemma3", 640, 18, 4, 1, 256, 2048, 262144, 32768, 512, 1000000.0f, 1e-6f, true,
     0, 0, 0},
    {"tiny-moe", "qwen3moe", 256, 2, 4, 2, 0, 768, 512, 256, 0, 0.0f, 0.0f, false, 8, 2, 128},
    {"qwen3-30b-a3b", "qwen3moe", 2048, 48, 32, 4, 128, 6144, 151936, 40960, 0, 1000000.0f, 1e-6f,
     false, 128, 8, 768},
    {"mixtral-8x7b", "llama", 4096, 32, 32, 8, 0, 14336, 32000, 32768, 0, 1000000.0f, 1e-5f, false,
     8, 2, 0},
    {"deepseek-v2-lite", "deepseek2", 2048, 27, 16, 16, 192, 10944, 102400, 163840, 0, 10000.0f,
     1e-6f, false, 64, 6, 1408},
    {"deepseek-v3-small", "deepseek2", 7168, 4, 128, 128, 192, 18432, 129280, 163840, 0, 10000.0f,
     1e-6f, false, 32, 8, 2048},
};

ntp_status ntp__gen_preset(const char *name, struct ntp_gen_params *p)
{
    for (size_t i = 0; i < sizeof presets / sizeof presets[0]; i++) {
        const struct gen_preset *d = &presets[i];
        if (strcmp(name, d->name) != 0)
            continue;
        p->arch = d->arch;
        p->n_embd = d->n_embd;
        p->n_layer = d->n_layer;
        p->n_head = d->n_head;
        p->n_head_kv = d->n_head_kv;
        p->head_dim = d->head_dim;
        p->n_ff = d->n_ff;
        p->n_vocab = d->n_vocab;
        p->n_ctx = d->n_ctx;
        p->n_swa = d->n_swa;
        p->rope_freq_base = d->rope_freq_base;
        p->rms_eps = d->rms_eps;
        p->tied_output = d->tied_output;
        p->n_expert = d->n_expert;
        p->n_expert_used = d->n_expert_used;
        p->n_ff_exp = d->n_ff_exp;
        ntp__gen_mla_preset(name, p);
        return NTP_OK;
    }
    return ntp__error(NTP_E_NOT_FOUND,
                      "unknown preset '%s' (expected tiny, tinyllama-1b, gemma3-270m, tiny-moe, "
                      "qwen3-30b-a3b, mixtral-8x7b, deepseek-v2-lite or deepseek-v3-small)",
                      name);
}

struct ntp_gen_params ntp__gen_default_params(void)
{
    struct ntp_gen_params p = {
        .type = NTP_TYPE_F32,
        .mix = NTP_GEN_MIX_NONE,
        .embd_type = NTP_TYPE_COUNT,
        .seed = 1,
    };
    ntp__gen_preset("tiny", &p);
    return p;
}

ntp_status ntp__gen_parse_mix(const char *name, struct ntp_gen_params *p)
{
    static const struct {
        const char *name;
        enum ntp_gen_mix mix;
    } mixes[] = {{"q4_k_m", NTP_GEN_MIX_Q4_K_M}, {"q5_k_m", NTP_GEN_MIX_Q5_K_M}};
    for (size_t i = 0; i < sizeof mixes / sizeof mixes[0]; i++)
        if (strcasecmp(name, mixes[i].name) == 0) {
            p->mix = mixes[i].mix;
            return NTP_OK;
        }
    enum ntp_type t;
    if (ntp_type_from_name(name, &t) != NTP_OK)
        return ntp__error(NTP_E_NOT_FOUND,
                          "unknown type or mix '%s' (expected q4_k_m, q5_k_m or a type such as "
                          "f32, f16, q8_0, q4_0, q4_k, q6_k)",
                          name);
    p->type = t;
    p->mix = NTP_GEN_MIX_NONE;
    return NTP_OK;
}

/* -------------------------------------------------------- type choices */

/* llama-quantize's choice of layers that get more bits in the _M mixes. */
ntp_status ntp__gen_parse_rope_scaling(const char *name, struct ntp_gen_params *p)
{
    static const char *const names[] = {"none", "linear", "yarn"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcasecmp(name, names[i]) == 0) {
            p->rope_scaling = (enum ntp_gen_rope_scaling)(NTP_GEN_ROPE_NONE + i);
            return NTP_OK;
        }
    return ntp__error(NTP_E_NOT_FOUND, "RoPE scaling '%s': expected none, linear or yarn", name);
}

static bool use_more_bits(int64_t il, int64_t n_layer)
{
    return il < n_layer / 8 || il >= 7 * n_layer / 8 || (il - n_layer / 8) % 3 == 2;
}

static enum ntp_type mix_base(enum ntp_gen_mix mix)
{
    return mix == NTP_GEN_MIX_Q5_K_M ? NTP_TYPE_Q5_K : NTP_TYPE_Q4_K;
}

/*
 * llama-quantize's fallback when a row does not fill whole 256-blocks (e.g.
 * Qwen2-0.5B's 896): a 32-block type of similar size, else F16.
 */
static enum ntp_type mix_fallback(enum ntp_type t, int64_t ne0)
{
    if (ne0 % ntp_type_get_traits(t)->block_size == 0)
        return t;
    enum ntp_type f = t == NTP_TYPE_Q4_K   ? NTP_TYPE_Q5_0
                      : t == NTP_TYPE_Q5_K ? NTP_TYPE_Q5_1
                                           : NTP_TYPE_Q8_0;
    return ne0 % ntp_type_get_traits(f)->block_size == 0 ? f : NTP_TYPE_F16;
}

/* The type of tensor id of layer il with input dimension ne0, as the mix says. */
static enum ntp_type mix_type(const struct ntp_gen_params *p, enum ntp_tensor_id id, int64_t il,
                              int64_t ne0)
{
    enum ntp_type t = mix_base(p->mix);
    /* As llama-quantize: the output head, or the embedding standing in for it, gets Q6_K. */
    if (id == NTP_T_OUTPUT || (id == NTP_T_TOKEN_EMBD && p->tied_output))
        t = NTP_TYPE_Q6_K;
    else if ((id == NTP_T_ATTN_V || id == NTP_T_FFN_DOWN || id == NTP_T_FFN_DOWN_EXPS) &&
             use_more_bits(il, p->n_layer))
        t = NTP_TYPE_Q6_K;
    return mix_fallback(t, ne0);
}

static enum ntp_type tensor_type(const struct ntp_gen_params *p, enum ntp_tensor_id id, int64_t il,
                                 int64_t ne0)
{
    const struct ntp_tensor_desc *d = ntp__tensor_desc(id);
    if (d->role == NTP_ROLE_NORM || d->role == NTP_ROLE_BIAS)
        return NTP_TYPE_F32; /* small, and every kernel wants them in float */
    if (id == NTP_T_FFN_GATE_INP)
        return NTP_TYPE_F32; /* the router: llama-quantize never quantizes it */
    if (d->role == NTP_ROLE_EMBD && p->embd_type != NTP_TYPE_COUNT)
        return p->embd_type;
    return p->mix == NTP_GEN_MIX_NONE ? p->type : mix_type(p, id, il, ne0);
}

uint32_t ntp__gen_file_type(const struct ntp_gen_params *p)
{
    /* enum llama_ftype (llama.h); a plain k-quant is the _S variant of its family. */
    static const uint32_t by_type[NTP_TYPE_COUNT] = {
        [NTP_TYPE_F32] = 0,   [NTP_TYPE_F16] = 1,   [NTP_TYPE_Q4_0] = 2,  [NTP_TYPE_Q4_1] = 3,
        [NTP_TYPE_Q8_0] = 7,  [NTP_TYPE_Q5_0] = 8,  [NTP_TYPE_Q5_1] = 9,  [NTP_TYPE_Q2_K] = 10,
        [NTP_TYPE_Q3_K] = 11, [NTP_TYPE_Q4_K] = 14, [NTP_TYPE_Q5_K] = 16, [NTP_TYPE_Q6_K] = 18,
        [NTP_TYPE_BF16] = 32,
    };
    if (p->mix == NTP_GEN_MIX_Q4_K_M)
        return 15;
    if (p->mix == NTP_GEN_MIX_Q5_K_M)
        return 17;
    return (unsigned)p->type < NTP_TYPE_COUNT ? by_type[p->type] : 0;
}

/* ------------------------------------------------------------- checks */

static void params_to_hparams(const struct ntp_gen_params *p, const struct ntp_arch *a,
                              struct ntp_hparams *hp)
{
    memset(hp, 0, sizeof *hp);
    hp->n_embd = p->n_embd;
    hp->n_layer = p->n_layer;
    hp->n_head = p->n_head;
    hp->n_head_kv = p->n_head_kv;
    hp->head_dim_k = p->head_dim ? p->head_dim : (p->n_head > 0 ? p->n_embd / p->n_head : 0);
    hp->head_dim_v = hp->head_dim_k;
    hp->n_rot = hp->head_dim_k;
    hp->n_ff = p->n_ff;
    hp->n_vocab = p->n_vocab;
    hp->n_ctx = p->n_ctx;
    hp->rms_eps = p->rms_eps > 0 ? p->rms_eps : a->typical_rms_eps;
    hp->rope_freq_base = p->rope_freq_base > 0 ? p->rope_freq_base : a->typical_rope_freq_base;
    hp->n_swa = p->n_swa;
    /* An MoE-only architecture gets 8 experts, 2 per token, unless told otherwise. */
    hp->n_expert = p->n_expert ? p->n_expert : (a->features & NTP_FEAT_MOE) ? 8 : 0;
    hp->n_expert_used = p->n_expert_used ? p->n_expert_used : (hp->n_expert < 2 ? hp->n_expert : 2);
    hp->n_ff_exp = hp->n_expert == 0 ? 0 : p->n_ff_exp ? p->n_ff_exp : p->n_ff;
    if (a->features & NTP_FEAT_MLA)
        ntp__gen_mla_hparams(p, hp);
}

/* The mixture-of-experts sizes of hp (from params_to_hparams) for the architecture a. */
static ntp_status check_experts(const struct ntp_gen_params *p, const struct ntp_arch *a,
                                const struct ntp_hparams *hp)
{
    if (p->n_expert < 0 || p->n_expert > NTP_MAX_EXPERTS || p->n_expert_used < 0 ||
        p->n_ff_exp < 0 || p->n_ff_exp > (int64_t)1 << 31)
        return ntp__error(NTP_E_INVALID_ARG,
                          "n_expert (--experts) = %lld, n_expert_used (--experts-used) = %lld, "
                          "n_ff_exp (--expert-ff) = %lld: expected 0 .. %d experts and "
                          "sizes 0 .. 2^31",
                          (long long)p->n_expert, (long long)p->n_expert_used,
                          (long long)p->n_ff_exp, NTP_MAX_EXPERTS);
    if (hp->n_expert == 0 && (p->n_expert_used > 0 || p->n_ff_exp > 0))
        return ntp__error(NTP_E_INVALID_ARG,
                          "experts per token (--experts-used) and expert width (--expert-ff) "
                          "need experts (--experts)");
    if (hp->n_expert > 0 && !(a->features & NTP_FEAT_MOE) && strcmp(a->name, "llama") != 0)
        return ntp__error(NTP_E_INVALID_ARG,
                          "experts (--experts): the %s architecture has no mixture of experts "
                          "(llama and qwen3moe have)",
                          a->name);
    if (hp->n_expert > 0 && hp->n_expert_used > hp->n_expert)
        return ntp__error(NTP_E_INVALID_ARG,
                          "n_expert_used (--experts-used) = %lld: expected 1 .. n_expert (%lld)",
                          (long long)hp->n_expert_used, (long long)hp->n_expert);
    if (p->n_ff_exp > 0 && p->n_ff_exp != p->n_ff && !(a->features & NTP_FEAT_MOE))
        return ntp__error(NTP_E_INVALID_ARG,
                          "expert width (--expert-ff) = %lld: llama's experts are n_ff (--ff) = "
                          "%lld wide",
                          (long long)p->n_ff_exp, (long long)p->n_ff);
    return NTP_OK;
}

/* Can numatp write weights of type t? (Q8_K/Q8_1 are activation formats.) */
static ntp_status check_type(enum ntp_type t, const char *what)
{
    const ntp_type_traits *tt = ntp_type_get_traits((int)t);
    if (tt == NULL)
        return ntp__error(NTP_E_INVALID_ARG, "%s: %d is not a tensor type", what, (int)t);
    if (t == NTP_TYPE_Q8_K || t == NTP_TYPE_Q8_1)
        return ntp__error(NTP_E_UNSUPPORTED,
                          "%s: %s is an activation format, not a weight type (try q8_0)", what,
                          tt->name);
    if (t != NTP_TYPE_F32) {
        const ntp_quant_fns *q = ntp__quant_fns(t);
        if (q == NULL || q->quantize == NULL)
            return ntp__error(NTP_E_UNSUPPORTED,
                              "%s: numatp cannot write %s weights (try q8_0, q4_k, q6_k or f16)",
                              what, tt->name);
    }
    return NTP_OK;
}

static ntp_status check_sizes(const struct ntp_gen_params *p)
{
    const struct {
        const char *name;
        int64_t v;
    } pos[] = {{"n_embd (--dim)", p->n_embd},   {"n_layer (--layers)", p->n_layer},
               {"n_head (--heads)", p->n_head}, {"n_head_kv (--kv-heads)", p->n_head_kv},
               {"n_ff (--ff)", p->n_ff},        {"n_ctx (--ctx)", p->n_ctx}};
    for (size_t i = 0; i < sizeof pos / sizeof pos[0]; i++)
        if (pos[i].v <= 0 || pos[i].v > (int64_t)1 << 31)
            return ntp__error(NTP_E_INVALID_ARG, "%s = %lld: expected 1 to 2^31", pos[i].name,
                              (long long)pos[i].v);
    if (p->n_layer > 65536)
        return ntp__error(NTP_E_INVALID_ARG, "n_layer (--layers) = %lld: expected at most 65536",
                          (long long)p->n_layer);
    if (p->head_dim < 0 || p->head_dim > 65536 || p->head_dim % 2 != 0)
        return ntp__error(NTP_E_INVALID_ARG,
                          "head_dim (--head-dim) = %lld: expected an even number (RoPE rotates "
                          "pairs), or 0 for n_embd / n_head",
                          (long long)p->head_dim);
    if (p->head_dim == 0 && (p->n_embd % p->n_head != 0 || (p->n_embd / p->n_head) % 2 != 0))
        return ntp__error(NTP_E_INVALID_ARG,
                          "n_head (--heads) = %lld must divide n_embd (--dim) = %lld into even "
                          "head widths (or give --head-dim)",
                          (long long)p->n_head, (long long)p->n_embd);
    if (p->n_head % p->n_head_kv != 0)
        return ntp__error(NTP_E_INVALID_ARG,
                          "n_head_kv (--kv-heads) = %lld must divide n_head (--heads) = %lld",
                          (long long)p->n_head_kv, (long long)p->n_head);
    if (p->vocab_from == NULL && (p->n_vocab < NTP_SYNTH_MIN_VOCAB || p->n_vocab > INT32_MAX))
        return ntp__error(NTP_E_INVALID_ARG,
                          "n_vocab (--vocab) = %lld: a synthetic vocabulary needs %d to %d tokens",
                          (long long)p->n_vocab, NTP_SYNTH_MIN_VOCAB, INT32_MAX);
    if (!(p->rope_freq_base >= 0) || !(p->rms_eps >= 0) || isinf(p->rope_freq_base) ||
        isinf(p->rms_eps))
        return ntp__error(NTP_E_INVALID_ARG,
                          "rope_freq_base = %g, rms_eps = %g: expected finite values >= 0",
                          (double)p->rope_freq_base, (double)p->rms_eps);
    return NTP_OK;
}

/* The suggestion for a row of ne0 elements that does not fit the chosen blocks. */
static const char *suggest_type(int64_t ne0)
{
    if (ne0 % 256 == 0)
        return "q4_k, q6_k or q8_0";
    if (ne0 % 32 == 0)
        return "a 32-block type such as q8_0 or q4_0 (or f16)";
    return "f16 or f32";
}

/* Every tensor's rows must fill whole blocks; the first that does not is named. */
static ntp_status check_blocks(const struct ntp_gen_params *p, const struct ntp_hparams *hp,
                               unsigned features)
{
    for (int64_t il = 0; il < p->n_layer; il++) {
        for (int id = 0; id < NTP_T_COUNT; id++) {
            const struct ntp_tensor_desc *d = ntp__tensor_desc((enum ntp_tensor_id)id);
            if ((il > 0 && !d->per_layer) ||
                !ntp__tensor_present((enum ntp_tensor_id)id, ntp__block_features(features, hp, il)))
                continue;
            int64_t ne[3];
            ntp__tensor_shape((enum ntp_tensor_id)id, hp, ne);
            ne[1] *= ne[2]; /* the experts' rows */
            enum ntp_type t = tensor_type(p, (enum ntp_tensor_id)id, il, ne[0]);
            char name[96];
            ntp__tensor_name((enum ntp_tensor_id)id, (int)il, name, sizeof name);
            ntp_status s = check_type(t, name);
            if (s != NTP_OK)
                return s;
            int64_t bs = ntp_type_get_traits((int)t)->block_size;
            size_t row;
            uint64_t bytes;
            if (ne[0] % bs == 0) {
                if (ntp_type_row_size(t, ne[0], &row) != NTP_OK ||
                    !ntp__mul_u64(row, (uint64_t)ne[1], &bytes) || bytes > SIZE_MAX / 2)
                    return ntp__error(NTP_E_OVERFLOW, "tensor '%s': %lld x %lld is too large", name,
                                      (long long)ne[0], (long long)ne[1]);
                continue;
            }
            return ntp__error(NTP_E_INVALID_ARG,
                              "tensor '%s': its rows have %lld elements, not a multiple of %s's "
                              "block size %lld; use %s, or change the dimension",
                              name, (long long)ne[0], ntp_type_name((int)t), (long long)bs,
                              suggest_type(ne[0]));
        }
    }
    return NTP_OK;
}

/* The RoPE scaling options: known type, sensible numbers, and nothing that would be ignored. */
static ntp_status check_rope(const struct ntp_gen_params *p, const struct ntp_arch *a)
{
    if ((unsigned)p->rope_scaling > NTP_GEN_ROPE_YARN)
        return ntp__error(NTP_E_INVALID_ARG, "rope_scaling %d: unknown", (int)p->rope_scaling);
    if (!(p->rope_scale >= 0) || isinf(p->rope_scale) || !(p->rope_attn_factor >= 0) ||
        isinf(p->rope_attn_factor) || p->rope_orig_ctx < 0 || p->rope_orig_ctx > (int64_t)1 << 31)
        return ntp__error(NTP_E_INVALID_ARG,
                          "rope_scale = %g, rope_attn_factor = %g, rope_orig_ctx = %lld: expected "
                          "finite values >= 0 (and a context up to 2^31)",
                          (double)p->rope_scale, (double)p->rope_attn_factor,
                          (long long)p->rope_orig_ctx);
    if (p->rope_scaling == NTP_GEN_ROPE_UNSET && !p->rope_freqs &&
        (p->rope_scale > 0 || p->rope_orig_ctx > 0))
        return ntp__error(NTP_E_INVALID_ARG, "a RoPE scale factor or original context "
                                             "(--rope-scale, --rope-orig-ctx) needs a scaling "
                                             "type (--rope-scaling) or --rope-freqs");
    if (p->rope_scaling == NTP_GEN_ROPE_UNSET && p->rope_attn_factor > 0)
        return ntp__error(NTP_E_INVALID_ARG, "a RoPE attention factor (--rope-attn-factor) "
                                             "needs a scaling type (--rope-scaling)");
    if (p->rope_freqs && strcmp(a->name, "llama") != 0)
        return ntp__error(NTP_E_INVALID_ARG,
                          "rope_freqs.weight (--rope-freqs): only the llama architecture uses "
                          "frequency factors, not %s",
                          a->name);
    if (p->n_swa < 0 || p->n_swa > (int64_t)1 << 31)
        return ntp__error(NTP_E_INVALID_ARG,
                          "sliding window (--sliding-window) %lld: expected 0 .. 2^31",
                          (long long)p->n_swa);
    if (p->n_swa > 0 && a->swa_pattern == 0)
        return ntp__error(NTP_E_INVALID_ARG,
                          "sliding window (--sliding-window): the %s architecture has no "
                          "sliding-window layers (gemma3 has)",
                          a->name);
    return NTP_OK;
}

static unsigned model_features(const struct ntp_gen_params *p, const struct ntp_arch *a,
                               const struct ntp_hparams *hp)
{
    return a->features | (p->tied_output ? 0u : (unsigned)NTP_FEAT_OUTPUT) |
           (p->n_expert > 0 ? (unsigned)NTP_FEAT_MOE : 0u) |
           ((a->features & NTP_FEAT_MLA) ? ntp__gen_mla_features(p, hp) : 0u);
}

ntp_status ntp__gen_check(const struct ntp_gen_params *p)
{
    const struct ntp_arch *a = ntp__arch_find(p->arch);
    if (a == NULL) {
        char known[256];
        ntp__arch_names(known, sizeof known);
        return ntp__error(NTP_E_INVALID_ARG, "architecture '%s' (--arch): expected one of %s",
                          p->arch ? p->arch : "(null)", known);
    }
    ntp_status s = check_sizes(p);
    if (s == NTP_OK)
        s = check_rope(p, a);
    if (s != NTP_OK)
        return s;
    if (p->mix != NTP_GEN_MIX_NONE && p->mix != NTP_GEN_MIX_Q4_K_M && p->mix != NTP_GEN_MIX_Q5_K_M)
        return ntp__error(NTP_E_INVALID_ARG, "mix %d: unknown", (int)p->mix);
    if (p->mix == NTP_GEN_MIX_NONE && (s = check_type(p->type, "weight type (--type)")) != NTP_OK)
        return s;
    if (p->embd_type != NTP_TYPE_COUNT &&
        (s = check_type(p->embd_type, "token_embd type")) != NTP_OK)
        return s;
    struct ntp_hparams hp;
    params_to_hparams(p, a, &hp);
    if ((s = check_experts(p, a, &hp)) != NTP_OK)
        return s;
    if ((a->features & NTP_FEAT_MLA) && (s = ntp__gen_mla_check(p, &hp)) != NTP_OK)
        return s;
    if (p->fuse_gate_up && hp.n_expert == 0)
        return ntp__error(NTP_E_INVALID_ARG, "fused gate and up (--fuse-gate-up) need experts");
    if (!(a->features & NTP_FEAT_MLA) &&
        (p->kv_lora || p->q_lora || p->rope_dim || p->v_head_dim || p->n_layer_dense ||
         p->n_expert_shared || p->gating_sigmoid || p->expert_norm || p->expert_scale > 0 ||
         p->n_group || p->probs_bias || p->mla_kv_b || p->rope_yarn_log_mul != 0))
        return ntp__error(NTP_E_INVALID_ARG,
                          "latent attention and deepseek's routing (--kv-lora, --q-lora, "
                          "--rope-dim, --dense-layers, --shared-experts, --gating, ...) belong "
                          "to the deepseek2 architecture, not %s",
                          a->name);
    return check_blocks(p, &hp, model_features(p, a, &hp));
}

/* ----------------------------------------------------------- weights */

/* splitmix64: a tiny PRNG whose output function also serves as a seed mixer. */
static uint64_t splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Uniform in the open interval (0, 1), so that log() below stays finite. */
static double uniform01(uint64_t *state)
{
    return ((double)(splitmix64(state) >> 11) + 0.5) * 0x1p-53;
}

/* x[0, n) = mean + std * N(0, 1), by Box-Muller from the stream seeded with seed. */
static void fill_normal(float *x, int64_t n, uint64_t seed, float mean, float std)
{
    uint64_t s = seed;
    for (int64_t i = 0; i < n; i += 2) {
        const double r = sqrt(-2.0 * log(uniform01(&s)));
        const double a = 6.283185307179586 * uniform01(&s);
        x[i] = mean + std * (float)(r * cos(a));
        if (i + 1 < n)
            x[i + 1] = mean + std * (float)(r * sin(a));
    }
}

/* One tensor to generate: where its numbers come from and what they become. */
struct gen_tensor {
    char name[96];      /* GGUF tensor name */
    enum ntp_type type; /* stored type */
    uint32_t n_dims;    /* 1, 2 or 3 (experts) */
    int64_t ne[3];      /* GGUF order; ne[1] = 1 for vectors, ne[2] = 1 but for experts */
    float mean, std;    /* distribution of the elements */
    uint64_t seed;      /* from the model seed and the name */
};

static uint64_t name_seed(uint64_t seed, const char *name)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a of the name */
    for (const char *c = name; *c; c++)
        h = (h ^ (unsigned char)*c) * 1099511628211ull;
    uint64_t s = seed ^ h;
    return splitmix64(&s);
}

/*
 * Fill out (ne[1] * ne[2] rows of row_size bytes) with the tensor's rows. Each row has
 * its own stream, so threads may take rows in any order. Returns false when a
 * thread could not get its row buffer.
 */
static bool gen_rows(const struct gen_tensor *t, uint8_t *out, size_t row_size)
{
    const ntp_quantize_row_fn quantize =
        t->type == NTP_TYPE_F32 ? NULL : ntp__quant_fns(t->type)->quantize;
    const int64_t ne0 = t->ne[0], ne1 = t->ne[1] * t->ne[2];
    bool ok = true;
#pragma omp parallel if (ne0 * ne1 >= (1 << 18)) reduction(&& : ok)
    {
        float *row = malloc((size_t)ne0 * sizeof *row);
        ok = row != NULL;
#pragma omp for schedule(static)
        for (int64_t r = 0; r < ne1; r++) {
            if (row == NULL)
                continue;
            uint64_t s = t->seed ^ ((uint64_t)r * 0xd1b54a32d192ed03ull);
            fill_normal(row, ne0, splitmix64(&s), t->mean, t->std);
            if (quantize)
                quantize(row, out + (size_t)r * row_size, ne0);
            else
                memcpy(out + (size_t)r * row_size, row, row_size);
        }
        free(row);
    }
    return ok;
}

static ntp_status add_tensor(ntp_gguf_writer *w, const struct gen_tensor *t)
{
    size_t row_size;
    ntp_status s = ntp_type_row_size(t->type, t->ne[0], &row_size);
    if (s != NTP_OK)
        return s;
    const size_t rows = (size_t)t->ne[1] * (size_t)t->ne[2];
    uint8_t *data = malloc(row_size * rows);
    if (data == NULL)
        return ntp__error(NTP_E_NOMEM, "tensor '%s': out of memory for %zu bytes", t->name,
                          row_size * rows);
    if (!gen_rows(t, data, row_size)) {
        free(data);
        return ntp__error(NTP_E_NOMEM, "tensor '%s': out of memory for a row buffer", t->name);
    }
    s = ntp_gguf_writer_add_tensor(w, t->name, t->type, t->n_dims, t->ne, data);
    free(data);
    return s;
}

/* Describe tensor id of layer il (its name, type, shape and distribution). */
static void describe(const struct ntp_gen_params *p, const struct ntp_hparams *hp,
                     enum ntp_tensor_id id, int il, struct gen_tensor *t)
{
    const struct ntp_tensor_desc *d = ntp__tensor_desc(id);
    ntp__tensor_name(id, il, t->name, sizeof t->name); /* fits: checked by ntp__gen_check */
    ntp__tensor_shape(id, hp, t->ne);
    t->n_dims = d->n_dims;
    t->type = tensor_type(p, id, il, t->ne[0]);
    t->mean = d->role == NTP_ROLE_NORM ? 1.0f : 0.0f;
    t->std = d->role == NTP_ROLE_NORM   ? GEN_STD_NORM
             : d->role == NTP_ROLE_BIAS ? GEN_STD_BIAS
                                        : GEN_STD_MATRIX;
    if (id == NTP_T_FFN_GATE_INP)
        t->std = GEN_STD_ROUTER;
    t->seed = name_seed(p->seed, t->name);
}

/*
 * Whether tensor id is written in step il of add_tensors: step -1 holds the
 * per-model tensors the table lists before the layers (token_embd), steps
 * 0..n_layer-1 the layers, step n_layer the ones after (output_norm, output).
 */
static bool in_step(enum ntp_tensor_id id, int64_t il, int64_t n_layer)
{
    const struct ntp_tensor_desc *d = ntp__tensor_desc(id);
    if (il < 0)
        return !d->per_layer && id < NTP_T_ATTN_NORM;
    if (il == n_layer)
        return !d->per_layer && id > NTP_T_ATTN_NORM;
    return d->per_layer;
}

static ntp_status add_tensors(ntp_gguf_writer *w, const struct ntp_gen_params *p,
                              const struct ntp_hparams *hp, unsigned features)
{
    for (int64_t il = -1; il <= p->n_layer; il++) {
        for (int i = 0; i < NTP_T_COUNT; i++) {
            enum ntp_tensor_id id = (enum ntp_tensor_id)i;
            if (!in_step(id, il, p->n_layer) ||
                !ntp__tensor_present(id, ntp__block_features(features, hp, il)))
                continue;
            if (p->fuse_gate_up && id == NTP_T_FFN_UP_EXPS)
                continue; /* written with the gate */
            struct gen_tensor t;
            describe(p, hp, id, (int)il, &t);
            if (p->fuse_gate_up && id == NTP_T_FFN_GATE_EXPS) {
                snprintf(t.name, sizeof t.name, "blk.%lld.ffn_gate_up_exps.weight",
                         (long long)il);
                t.ne[1] *= 2;
                t.seed = name_seed(p->seed, t.name);
            }
            ntp_status s = add_tensor(w, &t);
            if (s != NTP_OK)
                return s;
        }
        if (p->progress && il >= 0 && il < p->n_layer)
            ntp__log(NTP_LOG_INFO, "gen: layer %lld/%lld done", (long long)il + 1,
                     (long long)p->n_layer);
    }
    return NTP_OK;
}

/* --------------------------------------------------------- metadata */

static ntp_status set_key_u32(ntp_gguf_writer *w, const struct ntp_arch *a, enum ntp_hparam_key k,
                              int64_t v)
{
    char key[128];
    ntp_status s = ntp__arch_key(a, k, key, sizeof key);
    return s != NTP_OK ? s : ntp_gguf_writer_set_u32(w, key, (uint32_t)v);
}

static ntp_status set_key_f32(ntp_gguf_writer *w, const struct ntp_arch *a, enum ntp_hparam_key k,
                              float v)
{
    char key[128];
    ntp_status s = ntp__arch_key(a, k, key, sizeof key);
    return s != NTP_OK ? s : ntp_gguf_writer_set_f32(w, key, v);
}

/* general.* as llama.cpp's converter and quantizer write them. */
static ntp_status write_general(ntp_gguf_writer *w, const struct ntp_gen_params *p,
                                const struct ntp_arch *a)
{
    char name[128];
    snprintf(name, sizeof name, "numatp-gen-%s", a->name);
    ntp_status s;
    if ((s = ntp_gguf_writer_set_str(w, "general.architecture", a->name)) != NTP_OK ||
        (s = ntp_gguf_writer_set_str(w, "general.name", p->name ? p->name : name)) != NTP_OK ||
        (s = ntp_gguf_writer_set_u32(w, "general.file_type", ntp__gen_file_type(p))) != NTP_OK)
        return s;
    return ntp_gguf_writer_set_u32(w, "general.quantization_version", 2);
}

static ntp_status write_hparams(ntp_gguf_writer *w, const struct ntp_gen_params *p,
                                const struct ntp_arch *a, const struct ntp_hparams *hp)
{
    ntp_status s;
    const bool mla = (a->features & NTP_FEAT_MLA) != 0; /* its head keys: gen_mla.c */
    if ((s = set_key_u32(w, a, NTP_KV_CONTEXT_LENGTH, hp->n_ctx)) != NTP_OK ||
        (s = set_key_u32(w, a, NTP_KV_EMBEDDING_LENGTH, hp->n_embd)) != NTP_OK ||
        (s = set_key_u32(w, a, NTP_KV_BLOCK_COUNT, hp->n_layer)) != NTP_OK ||
        (s = set_key_u32(w, a, NTP_KV_FEED_FORWARD, hp->n_ff)) != NTP_OK ||
        (s = set_key_u32(w, a, NTP_KV_HEAD_COUNT, hp->n_head)) != NTP_OK ||
        (s = set_key_f32(w, a, NTP_KV_RMS_EPS, hp->rms_eps)) != NTP_OK ||
        (s = set_key_f32(w, a, NTP_KV_ROPE_FREQ_BASE, hp->rope_freq_base)) != NTP_OK ||
        (s = set_key_u32(w, a, NTP_KV_ROPE_DIM_COUNT, hp->n_rot)) != NTP_OK)
        return s;
    if (mla)
        s = ntp__gen_mla_write_keys(w, p, hp);
    else if ((s = set_key_u32(w, a, NTP_KV_HEAD_COUNT_KV, hp->n_head_kv)) == NTP_OK &&
             (s = set_key_u32(w, a, NTP_KV_KEY_LENGTH, hp->head_dim_k)) == NTP_OK)
        s = set_key_u32(w, a, NTP_KV_VALUE_LENGTH, hp->head_dim_v);
    if (s != NTP_OK)
        return s;
    if (hp->n_swa > 0 && (s = set_key_u32(w, a, NTP_KV_SLIDING_WINDOW, hp->n_swa)) != NTP_OK)
        return s;
    if (hp->n_expert > 0 &&
        ((s = set_key_u32(w, a, NTP_KV_EXPERT_COUNT, hp->n_expert)) != NTP_OK ||
         (s = set_key_u32(w, a, NTP_KV_EXPERT_USED_COUNT, hp->n_expert_used)) != NTP_OK))
        return s;
    /* llama.cpp reads the experts' own width for qwen3moe; Mixtral's are n_ff wide */
    if (hp->n_expert > 0 && (a->features & NTP_FEAT_MOE) && !mla &&
        (s = set_key_u32(w, a, NTP_KV_EXPERT_FF, hp->n_ff_exp)) != NTP_OK)
        return s;
    return set_key_u32(w, a, NTP_KV_VOCAB_SIZE, hp->n_vocab);
}

/* {arch}.<suffix> keys that ntp_hparam_key does not list (the optional RoPE scaling ones). */
static ntp_status set_arch_f32(ntp_gguf_writer *w, const struct ntp_arch *a, const char *suffix,
                               float v)
{
    char key[128];
    snprintf(key, sizeof key, "%s.%s", a->name, suffix);
    return ntp_gguf_writer_set_f32(w, key, v);
}

/* rope.scaling.* as llama.cpp's converter writes them (type, factor, YaRN's extras). */
static ntp_status write_rope_scaling(ntp_gguf_writer *w, const struct ntp_gen_params *p,
                                     const struct ntp_arch *a)
{
    static const char *const type_names[] = {[NTP_GEN_ROPE_NONE] = "none",
                                             [NTP_GEN_ROPE_LINEAR] = "linear",
                                             [NTP_GEN_ROPE_YARN] = "yarn"};
    if (p->rope_scaling == NTP_GEN_ROPE_UNSET)
        return NTP_OK;
    char key[128];
    snprintf(key, sizeof key, "%s.rope.scaling.type", a->name);
    ntp_status s = ntp_gguf_writer_set_str(w, key, type_names[p->rope_scaling]);
    if (s == NTP_OK && p->rope_scale > 0)
        s = set_arch_f32(w, a, "rope.scaling.factor", p->rope_scale);
    if (s == NTP_OK && p->rope_attn_factor > 0)
        s = set_arch_f32(w, a, "rope.scaling.attn_factor", p->rope_attn_factor);
    if (s == NTP_OK && p->rope_orig_ctx > 0 && p->rope_scaling == NTP_GEN_ROPE_YARN) {
        snprintf(key, sizeof key, "%s.rope.scaling.original_context_length", a->name);
        s = ntp_gguf_writer_set_u32(w, key, (uint32_t)p->rope_orig_ctx);
    }
    return s;
}

void ntp__gen_llama3_rope_freqs(float *out, int64_t n_rot, float freq_base, float factor,
                                int64_t orig_ctx)
{
    /* Float arithmetic, as the converter's float32 torch tensors do it. */
    const float low_freq_factor = 1.0f, high_freq_factor = 4.0f, old_ctx = (float)orig_ctx;
    const float low_freq_wavelen = old_ctx / low_freq_factor;
    const float high_freq_wavelen = old_ctx / high_freq_factor;
    for (int64_t i = 0; i < n_rot / 2; i++) {
        const float freq = 1.0f / powf(freq_base, (float)(2 * i) / (float)n_rot);
        const float wavelen = 2.0f * (float)M_PI / freq;
        if (wavelen < high_freq_wavelen) {
            out[i] = 1.0f;
        } else if (wavelen > low_freq_wavelen) {
            out[i] = factor;
        } else {
            const float smooth =
                (old_ctx / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor);
            out[i] = 1.0f / ((1.0f - smooth) / factor + smooth);
        }
    }
}

/* llama3's rope_freqs.weight, which the converter writes before every other tensor. */
static ntp_status add_rope_freqs(ntp_gguf_writer *w, const struct ntp_gen_params *p,
                                 const struct ntp_hparams *hp)
{
    if (!p->rope_freqs)
        return NTP_OK;
    const int64_t ne[1] = {hp->n_rot / 2};
    float *f = malloc((size_t)ne[0] * sizeof *f);
    if (f == NULL)
        return ntp__error(NTP_E_NOMEM, "tensor 'rope_freqs.weight': out of memory");
    ntp__gen_llama3_rope_freqs(f, hp->n_rot, hp->rope_freq_base,
                               p->rope_scale > 0 ? p->rope_scale : 8.0f,
                               p->rope_orig_ctx > 0 ? p->rope_orig_ctx : 8192);
    ntp_status s = ntp_gguf_writer_add_tensor(w, "rope_freqs.weight", NTP_TYPE_F32, 1, ne, f);
    free(f);
    return s;
}

/* Open the file whose vocabulary is copied and take n_vocab from it. */
static ntp_status open_vocab(struct ntp_gen_params *p, ntp_gguf **out)
{
    ntp_status s = ntp_gguf_open(p->vocab_from, out);
    if (s != NTP_OK)
        return s;
    const ntp_gguf_value *toks = NULL;
    s = ntp_gguf_get_arr(*out, "tokenizer.ggml.tokens", NTP_GGUF_STRING, &toks);
    if (s != NTP_OK) {
        ntp__error_prefix("%s: no vocabulary to copy", p->vocab_from);
        return s;
    }
    const int64_t n = (int64_t)toks->arr.len;
    if (n <= 0 || n > INT32_MAX)
        return ntp__error(NTP_E_FORMAT, "%s: %lld tokens, expected 1 to 2^31-1", p->vocab_from,
                          (long long)n);
    if (p->n_vocab != 0 && p->n_vocab != n)
        return ntp__error(NTP_E_INVALID_ARG,
                          "n_vocab (--vocab) = %lld but %s has %lld tokens; leave it out",
                          (long long)p->n_vocab, p->vocab_from, (long long)n);
    p->n_vocab = n;
    return NTP_OK;
}

/* The tokenizer keys: every tokenizer.* key of src, or a synthetic vocabulary. */
static ntp_status write_vocab(ntp_gguf_writer *w, const struct ntp_gen_params *p,
                              const ntp_gguf *src)
{
    ntp_status s = NTP_OK;
    if (src) {
        for (int64_t i = 0; i < ntp_gguf_n_kv(src) && s == NTP_OK; i++) {
            const char *key = ntp_gguf_kv_key(src, i);
            if (strncmp(key, "tokenizer.", 10) == 0)
                s = ntp_gguf_writer_set_value(w, key, ntp_gguf_kv_value(src, i));
        }
        return s;
    }
    struct ntp_synth_vocab *v = NULL;
    s = ntp__synth_vocab_build(p->n_vocab, &v);
    if (s == NTP_OK)
        s = ntp__synth_vocab_write(v, w);
    ntp__synth_vocab_free(v);
    return s;
}

ntp_status ntp__model_gen(const struct ntp_gen_params *params, const char *path)
{
    struct ntp_gen_params p = *params;
    ntp_status s = ntp__gen_check(&p);
    if (s != NTP_OK || (s = ntp__gguf_check_target(path)) != NTP_OK)
        return s; /* a bad target is refused before the minutes a large model takes */
    const struct ntp_arch *a = ntp__arch_find(p.arch);
    ntp_gguf *src = NULL;
    ntp_gguf_writer *w = NULL;
    if (p.vocab_from && (s = open_vocab(&p, &src)) != NTP_OK) {
        ntp_gguf_free(src);
        return s;
    }
    struct ntp_hparams hp;
    params_to_hparams(&p, a, &hp);
    if ((s = ntp_gguf_writer_new(&w)) == NTP_OK && (s = write_general(w, &p, a)) == NTP_OK &&
        (s = write_hparams(w, &p, a, &hp)) == NTP_OK && (s = write_rope_scaling(w, &p, a)) == NTP_OK &&
        (s = write_vocab(w, &p, src)) == NTP_OK && (s = add_rope_freqs(w, &p, &hp)) == NTP_OK &&
        (s = add_tensors(w, &p, &hp, model_features(&p, a, &hp))) == NTP_OK) {
        if (p.progress)
            ntp__log(NTP_LOG_INFO, "gen: writing %s", path);
        s = ntp_gguf_writer_write_file(w, path);
    }
    ntp_gguf_writer_free(w);
    ntp_gguf_free(src);
    return s;
}
