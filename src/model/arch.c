/*
 * arch.c - the architecture table: names, features, metadata keys and tensor
 * shapes of llama, qwen2, qwen3, qwen3moe, gemma3 and deepseek2, checked against llama.cpp (llama-arch.cpp
 * for the names, llama-model.cpp for the shapes, convert_hf_to_gguf.py for the
 * keys the converter writes).
 */
#include "model/arch.h"

#include "core/core.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * llama: no biases, no q/k norm, "normal" RoPE (the converter permutes q and k
 * so that adjacent pairs rotate). qwen2 adds q/k/v biases, qwen3 drops them
 * for per-head q/k RMS norms; both rotate halves (NEOX). gemma3 (llama.cpp's
 * src/models/gemma3.cpp) has qwen3's q/k norms, norms after attention and
 * FFN as well as before, GeGLU, embeddings scaled by sqrt(n_embd), and five
 * sliding-window layers to each global one; its converter adds 1 to every
 * norm weight, so the weights are used as they are. qwen3moe is qwen3 with a
 * mixture of experts in every block (src/models/qwen3moe.cpp); a llama file
 * with expert_count > 0 is Mixtral-style, the same FFN with its experts as
 * wide as feed_forward_length. Both route as llama.cpp's build_moe_ffn with
 * softmax gating and normalised weights. deepseek2 (src/models/deepseek2.cpp)
 * has multi-head latent attention, leading dense blocks, shared experts and
 * its own routing (arch_mla.c). The typical values are those of
 * Llama-2/TinyLlama, Qwen2/Qwen3, Gemma 3 and DeepSeek-V2 configs.
 */
static const struct ntp_arch archs[] = {
    {"llama", NTP_ROPE_NORM, 0, 1e-5f, 10000.0f, NTP_FFN_SILU, false, 0},
    {"qwen2", NTP_ROPE_NEOX, NTP_FEAT_QKV_BIAS, 1e-6f, 1000000.0f, NTP_FFN_SILU, false, 0},
    {"qwen3", NTP_ROPE_NEOX, NTP_FEAT_QK_NORM, 1e-6f, 1000000.0f, NTP_FFN_SILU, false, 0},
    {"qwen3moe", NTP_ROPE_NEOX, NTP_FEAT_QK_NORM | NTP_FEAT_MOE, 1e-6f, 1000000.0f, NTP_FFN_SILU,
     false, 0},
    {"gemma3", NTP_ROPE_NEOX, NTP_FEAT_QK_NORM | NTP_FEAT_POST_NORM, 1e-6f, 1000000.0f,
     NTP_FFN_GELU, true, 6},
    {"deepseek2", NTP_ROPE_NORM, NTP_FEAT_MOE | NTP_FEAT_MLA, 1e-6f, 10000.0f, NTP_FFN_SILU, false,
     0},
};

static const char *const hparam_keys[NTP_KV_COUNT] = {
    [NTP_KV_CONTEXT_LENGTH] = "%s.context_length",
    [NTP_KV_EMBEDDING_LENGTH] = "%s.embedding_length",
    [NTP_KV_BLOCK_COUNT] = "%s.block_count",
    [NTP_KV_FEED_FORWARD] = "%s.feed_forward_length",
    [NTP_KV_HEAD_COUNT] = "%s.attention.head_count",
    [NTP_KV_HEAD_COUNT_KV] = "%s.attention.head_count_kv",
    [NTP_KV_RMS_EPS] = "%s.attention.layer_norm_rms_epsilon",
    [NTP_KV_ROPE_FREQ_BASE] = "%s.rope.freq_base",
    [NTP_KV_ROPE_DIM_COUNT] = "%s.rope.dimension_count",
    [NTP_KV_KEY_LENGTH] = "%s.attention.key_length",
    [NTP_KV_VALUE_LENGTH] = "%s.attention.value_length",
    [NTP_KV_VOCAB_SIZE] = "%s.vocab_size",
    [NTP_KV_SLIDING_WINDOW] = "%s.attention.sliding_window",
    [NTP_KV_SWA_PATTERN] = "%s.attention.sliding_window_pattern",
    [NTP_KV_ROPE_FREQ_BASE_SWA] = "%s.rope.freq_base_swa",
    [NTP_KV_LOGIT_SOFTCAP] = "%s.final_logit_softcapping",
    [NTP_KV_EXPERT_COUNT] = "%s.expert_count",
    [NTP_KV_EXPERT_USED_COUNT] = "%s.expert_used_count",
    [NTP_KV_EXPERT_FF] = "%s.expert_feed_forward_length",
    [NTP_KV_Q_LORA_RANK] = "%s.attention.q_lora_rank",
    [NTP_KV_KV_LORA_RANK] = "%s.attention.kv_lora_rank",
    [NTP_KV_KEY_LENGTH_MLA] = "%s.attention.key_length_mla",
    [NTP_KV_VALUE_LENGTH_MLA] = "%s.attention.value_length_mla",
    [NTP_KV_LEADING_DENSE] = "%s.leading_dense_block_count",
    [NTP_KV_EXPERT_SHARED] = "%s.expert_shared_count",
    [NTP_KV_EXPERT_W_SCALE] = "%s.expert_weights_scale",
    [NTP_KV_EXPERT_W_NORM] = "%s.expert_weights_norm",
    [NTP_KV_EXPERT_GATING] = "%s.expert_gating_func",
    [NTP_KV_EXPERT_GROUPS] = "%s.expert_group_count",
    [NTP_KV_EXPERT_GROUPS_USED] = "%s.expert_group_used_count",
};

#define M NTP_ROLE_MATRIX
#define N NTP_ROLE_NORM
#define B NTP_ROLE_BIAS

/*
 * Shapes as llama.cpp creates them: a linear layer y = W x with x of width
 * d_in and y of width d_out is stored as {d_in, d_out}. Biases and norms are
 * vectors over the output. q/k norms act on one head at a time and are shared
 * by all heads.
 */
static const struct ntp_tensor_desc tensors[NTP_T_COUNT] = {
    [NTP_T_TOKEN_EMBD] =
        {"token_embd.weight", false, NTP_ROLE_EMBD, 0, 2, {NTP_DIM_EMBD, NTP_DIM_VOCAB}},
    [NTP_T_ATTN_NORM] = {"blk.%d.attn_norm.weight", true, N, 0, 1, {NTP_DIM_EMBD, NTP_DIM_ONE}},
    [NTP_T_ATTN_Q] =
        {"blk.%d.attn_q.weight", true, M, 0, 2, {NTP_DIM_EMBD, NTP_DIM_Q}, NTP_FEAT_Q_LORA},
    [NTP_T_ATTN_Q_BIAS] =
        {"blk.%d.attn_q.bias", true, B, NTP_FEAT_QKV_BIAS, 1, {NTP_DIM_Q, NTP_DIM_ONE}},
    [NTP_T_ATTN_K] =
        {"blk.%d.attn_k.weight", true, M, 0, 2, {NTP_DIM_EMBD, NTP_DIM_KV}, NTP_FEAT_MLA},
    [NTP_T_ATTN_K_BIAS] =
        {"blk.%d.attn_k.bias", true, B, NTP_FEAT_QKV_BIAS, 1, {NTP_DIM_KV, NTP_DIM_ONE}},
    [NTP_T_ATTN_V] =
        {"blk.%d.attn_v.weight", true, M, 0, 2, {NTP_DIM_EMBD, NTP_DIM_V}, NTP_FEAT_MLA},
    [NTP_T_ATTN_V_BIAS] =
        {"blk.%d.attn_v.bias", true, B, NTP_FEAT_QKV_BIAS, 1, {NTP_DIM_V, NTP_DIM_ONE}},
    [NTP_T_ATTN_Q_NORM] =
        {"blk.%d.attn_q_norm.weight", true, N, NTP_FEAT_QK_NORM, 1, {NTP_DIM_HEAD, NTP_DIM_ONE}},
    [NTP_T_ATTN_K_NORM] =
        {"blk.%d.attn_k_norm.weight", true, N, NTP_FEAT_QK_NORM, 1, {NTP_DIM_HEAD, NTP_DIM_ONE}},
    [NTP_T_ATTN_Q_A] = {"blk.%d.attn_q_a.weight",
                        true,
                        M,
                        NTP_FEAT_MLA | NTP_FEAT_Q_LORA,
                        2,
                        {NTP_DIM_EMBD, NTP_DIM_Q_LORA}},
    [NTP_T_ATTN_Q_A_NORM] = {"blk.%d.attn_q_a_norm.weight",
                             true,
                             N,
                             NTP_FEAT_MLA | NTP_FEAT_Q_LORA,
                             1,
                             {NTP_DIM_Q_LORA, NTP_DIM_ONE}},
    [NTP_T_ATTN_Q_B] = {"blk.%d.attn_q_b.weight",
                        true,
                        M,
                        NTP_FEAT_MLA | NTP_FEAT_Q_LORA,
                        2,
                        {NTP_DIM_Q_LORA, NTP_DIM_Q}},
    [NTP_T_ATTN_KV_A_MQA] = {"blk.%d.attn_kv_a_mqa.weight",
                             true,
                             M,
                             NTP_FEAT_MLA,
                             2,
                             {NTP_DIM_EMBD, NTP_DIM_KV_A}},
    [NTP_T_ATTN_KV_A_NORM] = {"blk.%d.attn_kv_a_norm.weight",
                              true,
                              N,
                              NTP_FEAT_MLA,
                              1,
                              {NTP_DIM_KV_LORA, NTP_DIM_ONE}},
    [NTP_T_ATTN_KV_B] = {"blk.%d.attn_kv_b.weight",
                         true,
                         M,
                         NTP_FEAT_MLA | NTP_FEAT_KV_B,
                         2,
                         {NTP_DIM_KV_LORA, NTP_DIM_KV_B}},
    [NTP_T_ATTN_K_B] = {"blk.%d.attn_k_b.weight",
                        true,
                        M,
                        NTP_FEAT_MLA,
                        3,
                        {NTP_DIM_NOPE, NTP_DIM_KV_LORA, NTP_DIM_HEADS},
                        NTP_FEAT_KV_B},
    [NTP_T_ATTN_V_B] = {"blk.%d.attn_v_b.weight",
                        true,
                        M,
                        NTP_FEAT_MLA,
                        3,
                        {NTP_DIM_KV_LORA, NTP_DIM_V_MLA, NTP_DIM_HEADS},
                        NTP_FEAT_KV_B},
    [NTP_T_ATTN_OUTPUT] =
        {"blk.%d.attn_output.weight", true, M, 0, 2, {NTP_DIM_ATTN, NTP_DIM_EMBD}},
    [NTP_T_ATTN_POST_NORM] = {"blk.%d.post_attention_norm.weight",
                              true,
                              N,
                              NTP_FEAT_POST_NORM,
                              1,
                              {NTP_DIM_EMBD, NTP_DIM_ONE}},
    [NTP_T_FFN_NORM] = {"blk.%d.ffn_norm.weight", true, N, 0, 1, {NTP_DIM_EMBD, NTP_DIM_ONE}},
    [NTP_T_FFN_GATE] =
        {"blk.%d.ffn_gate.weight", true, M, 0, 2, {NTP_DIM_EMBD, NTP_DIM_FF}, NTP_FEAT_MOE},
    [NTP_T_FFN_UP] =
        {"blk.%d.ffn_up.weight", true, M, 0, 2, {NTP_DIM_EMBD, NTP_DIM_FF}, NTP_FEAT_MOE},
    [NTP_T_FFN_DOWN] =
        {"blk.%d.ffn_down.weight", true, M, 0, 2, {NTP_DIM_FF, NTP_DIM_EMBD}, NTP_FEAT_MOE},
    [NTP_T_FFN_GATE_INP] =
        {"blk.%d.ffn_gate_inp.weight", true, M, NTP_FEAT_MOE, 2, {NTP_DIM_EMBD, NTP_DIM_EXPERT}},
    [NTP_T_FFN_GATE_EXPS] = {"blk.%d.ffn_gate_exps.weight",
                             true,
                             M,
                             NTP_FEAT_MOE,
                             3,
                             {NTP_DIM_EMBD, NTP_DIM_FF_EXP, NTP_DIM_EXPERT}},
    [NTP_T_FFN_UP_EXPS] = {"blk.%d.ffn_up_exps.weight",
                           true,
                           M,
                           NTP_FEAT_MOE,
                           3,
                           {NTP_DIM_EMBD, NTP_DIM_FF_EXP, NTP_DIM_EXPERT}},
    [NTP_T_FFN_DOWN_EXPS] = {"blk.%d.ffn_down_exps.weight",
                             true,
                             M,
                             NTP_FEAT_MOE,
                             3,
                             {NTP_DIM_FF_EXP, NTP_DIM_EMBD, NTP_DIM_EXPERT}},
    [NTP_T_FFN_EXP_PROBS_B] = {"blk.%d.exp_probs_b.bias",
                               true,
                               B,
                               NTP_FEAT_MOE | NTP_FEAT_PROBS_B,
                               1,
                               {NTP_DIM_EXPERT, NTP_DIM_ONE}},
    [NTP_T_FFN_GATE_SHEXP] = {"blk.%d.ffn_gate_shexp.weight",
                              true,
                              M,
                              NTP_FEAT_MOE | NTP_FEAT_SHEXP,
                              2,
                              {NTP_DIM_EMBD, NTP_DIM_FF_SHEXP}},
    [NTP_T_FFN_UP_SHEXP] = {"blk.%d.ffn_up_shexp.weight",
                            true,
                            M,
                            NTP_FEAT_MOE | NTP_FEAT_SHEXP,
                            2,
                            {NTP_DIM_EMBD, NTP_DIM_FF_SHEXP}},
    [NTP_T_FFN_DOWN_SHEXP] = {"blk.%d.ffn_down_shexp.weight",
                              true,
                              M,
                              NTP_FEAT_MOE | NTP_FEAT_SHEXP,
                              2,
                              {NTP_DIM_FF_SHEXP, NTP_DIM_EMBD}},
    [NTP_T_FFN_POST_NORM] = {"blk.%d.post_ffw_norm.weight",
                             true,
                             N,
                             NTP_FEAT_POST_NORM,
                             1,
                             {NTP_DIM_EMBD, NTP_DIM_ONE}},
    [NTP_T_OUTPUT_NORM] = {"output_norm.weight", false, N, 0, 1, {NTP_DIM_EMBD, NTP_DIM_ONE}},
    [NTP_T_OUTPUT] = {"output.weight", false, M, NTP_FEAT_OUTPUT, 2, {NTP_DIM_EMBD, NTP_DIM_VOCAB}},
};

#undef M
#undef N
#undef B

const struct ntp_arch *ntp__arch_find(const char *name)
{
    for (size_t i = 0; i < sizeof archs / sizeof archs[0]; i++)
        if (name && strcmp(archs[i].name, name) == 0)
            return &archs[i];
    return NULL;
}

void ntp__arch_names(char *buf, size_t size)
{
    size_t w = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < sizeof archs / sizeof archs[0] && w < size; i++)
        w += (size_t)snprintf(buf + w, size - w, "%s%s", i ? ", " : "", archs[i].name);
}

const struct ntp_tensor_desc *ntp__tensor_desc(enum ntp_tensor_id id)
{
    return (unsigned)id < NTP_T_COUNT ? &tensors[id] : NULL;
}

bool ntp__tensor_present(enum ntp_tensor_id id, unsigned features)
{
    const struct ntp_tensor_desc *d = ntp__tensor_desc(id);
    return d && (features & d->needs) == d->needs && (features & d->excludes) == 0;
}

unsigned ntp__block_features(unsigned features, const struct ntp_hparams *hp, int64_t il)
{
    if (il < hp->n_layer_dense)
        return features & ~(unsigned)(NTP_FEAT_MOE | NTP_FEAT_PROBS_B | NTP_FEAT_SHEXP);
    return features;
}

ntp_status ntp__tensor_name(enum ntp_tensor_id id, int il, char *buf, size_t size)
{
    const struct ntp_tensor_desc *d = ntp__tensor_desc(id);
    if (d == NULL)
        return ntp__error(NTP_E_INVALID_ARG, "tensor id %d: not in the architecture table",
                          (int)id);
        /* The table's formats are literals with at most one %d, so the format is safe. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
    int n = d->per_layer ? snprintf(buf, size, d->name, il) : snprintf(buf, size, "%s", d->name);
#pragma GCC diagnostic pop
    if (n < 0 || (size_t)n >= size)
        return ntp__error(NTP_E_OVERFLOW, "tensor name '%s' (layer %d) longer than %zu bytes",
                          d->name, il, size);
    return NTP_OK;
}

int64_t ntp__hparams_dim(const struct ntp_hparams *hp, enum ntp_dim d)
{
    switch (d) {
    case NTP_DIM_ONE:
        return 1;
    case NTP_DIM_EMBD:
        return hp->n_embd;
    case NTP_DIM_Q:
        return hp->n_head * ntp__hp_q_head(hp);
    case NTP_DIM_KV:
        return hp->n_head_kv * hp->head_dim_k;
    case NTP_DIM_V:
        return hp->n_head_kv * hp->head_dim_v;
    case NTP_DIM_ATTN:
        return hp->n_head * ntp__hp_o_head(hp);
    case NTP_DIM_HEAD:
        return hp->head_dim_k;
    case NTP_DIM_FF:
        return hp->n_ff;
    case NTP_DIM_VOCAB:
        return hp->n_vocab;
    case NTP_DIM_FF_EXP:
        return hp->n_ff_exp;
    case NTP_DIM_EXPERT:
        return hp->n_expert;
    case NTP_DIM_Q_LORA:
        return hp->q_lora;
    case NTP_DIM_KV_LORA:
        return hp->kv_lora;
    case NTP_DIM_KV_A:
        return hp->kv_lora + hp->n_rot;
    case NTP_DIM_KV_B:
        return hp->n_head * (hp->mla_k - hp->n_rot + hp->mla_v);
    case NTP_DIM_NOPE:
        return hp->mla_k - hp->n_rot;
    case NTP_DIM_V_MLA:
        return hp->mla_v;
    case NTP_DIM_HEADS:
        return hp->n_head;
    case NTP_DIM_FF_SHEXP:
        return ntp__hp_ff_shexp(hp);
    }
    return 0;
}

void ntp__tensor_shape(enum ntp_tensor_id id, const struct ntp_hparams *hp, int64_t ne[3])
{
    const struct ntp_tensor_desc *d = ntp__tensor_desc(id);
    for (int i = 0; i < 3; i++)
        ne[i] = d ? ntp__hparams_dim(hp, d->ne[i]) : 0;
}

ntp_status ntp__arch_key(const struct ntp_arch *arch, enum ntp_hparam_key k, char *buf, size_t size)
{
    if ((unsigned)k >= NTP_KV_COUNT)
        return ntp__error(NTP_E_INVALID_ARG, "hyper-parameter key %d: out of range", (int)k);
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
    int n = snprintf(buf, size, hparam_keys[k], arch->name);
#pragma GCC diagnostic pop
    if (n < 0 || (size_t)n >= size)
        return ntp__error(NTP_E_OVERFLOW, "key for '%s' longer than %zu bytes", arch->name, size);
    return NTP_OK;
}

ntp_status ntp__arch_read_i64(const ntp_gguf *g, const struct ntp_arch *arch, enum ntp_hparam_key k,
                           bool required, int64_t *out)
{
    char key[128];
    ntp_status s = ntp__arch_key(arch, k, key, sizeof key);
    if (s != NTP_OK)
        return s;
    if (!required && ntp_gguf_find_key(g, key) < 0)
        return NTP_OK;
    s = ntp_gguf_get_i64(g, key, out);
    if (s != NTP_OK)
        return s;
    if (*out <= 0)
        return ntp__error(NTP_E_FORMAT, "%s = %lld: expected a positive value", key,
                          (long long)*out);
    return NTP_OK;
}

ntp_status ntp__arch_read_f32(const ntp_gguf *g, const struct ntp_arch *arch,
                              enum ntp_hparam_key k, bool required, float *out)
{
    char key[128];
    ntp_status s = ntp__arch_key(arch, k, key, sizeof key);
    if (s != NTP_OK)
        return s;
    if (!required && ntp_gguf_find_key(g, key) < 0)
        return NTP_OK;
    s = ntp_gguf_get_f32(g, key, out);
    if (s != NTP_OK)
        return s;
    if (!(*out > 0.0f))
        return ntp__error(NTP_E_FORMAT, "%s = %g: expected a positive value", key, (double)*out);
    return NTP_OK;
}

/* The keys every file must have. */
static ntp_status read_required(const ntp_gguf *g, const struct ntp_arch *arch,
                                struct ntp_hparams *hp)
{
    ntp_status s;
    if ((s = ntp__arch_read_i64(g, arch, NTP_KV_EMBEDDING_LENGTH, true, &hp->n_embd)) != NTP_OK ||
        (s = ntp__arch_read_i64(g, arch, NTP_KV_BLOCK_COUNT, true, &hp->n_layer)) != NTP_OK ||
        (s = ntp__arch_read_i64(g, arch, NTP_KV_FEED_FORWARD, true, &hp->n_ff)) != NTP_OK ||
        (s = ntp__arch_read_i64(g, arch, NTP_KV_HEAD_COUNT, true, &hp->n_head)) != NTP_OK ||
        (s = ntp__arch_read_i64(g, arch, NTP_KV_CONTEXT_LENGTH, true, &hp->n_ctx)) != NTP_OK)
        return s;
    /* llama.cpp: the last nextn_predict_layers blocks predict further tokens (DeepSeek-V3's
       and GLM's multi-token prediction); generation runs the others */
    char key[128];
    snprintf(key, sizeof key, "%s.nextn_predict_layers", arch->name);
    int64_t nextn = 0;
    if (ntp_gguf_find_key(g, key) >= 0 && (s = ntp_gguf_get_i64(g, key, &nextn)) != NTP_OK)
        return s;
    if (nextn < 0 || nextn >= hp->n_layer)
        return ntp__error(NTP_E_FORMAT, "%s = %lld: expected 0 to block_count - 1 (%lld)", key,
                          (long long)nextn, (long long)(hp->n_layer - 1));
    hp->n_layer -= nextn;
    return ntp__arch_read_f32(g, arch, NTP_KV_RMS_EPS, true, &hp->rms_eps);
}

/*
 * The sliding-window keys of an architecture that has them. A window of 0
 * (or none) means every layer is global, as in llama.cpp; the final logit
 * soft-capping is read here too, as only these architectures use it.
 */
static ntp_status read_swa(const ntp_gguf *g, const struct ntp_arch *arch, struct ntp_hparams *hp)
{
    char key[128];
    ntp_status s;
    if (arch->swa_pattern == 0)
        return NTP_OK;
    hp->rope_freq_base_swa = 10000.0f;
    if ((s = ntp__arch_key(arch, NTP_KV_SLIDING_WINDOW, key, sizeof key)) != NTP_OK)
        return s;
    if (ntp_gguf_find_key(g, key) >= 0) {
        if ((s = ntp_gguf_get_i64(g, key, &hp->n_swa)) != NTP_OK)
            return s;
        if (hp->n_swa < 0)
            return ntp__error(NTP_E_FORMAT, "%s = %lld: expected 0 (no window) or more", key,
                              (long long)hp->n_swa);
    }
    if ((s = ntp__arch_key(arch, NTP_KV_LOGIT_SOFTCAP, key, sizeof key)) != NTP_OK)
        return s;
    if (ntp_gguf_find_key(g, key) >= 0) {
        if ((s = ntp_gguf_get_f32(g, key, &hp->logit_softcap)) != NTP_OK)
            return s;
        if (!(hp->logit_softcap >= 0.0f))
            return ntp__error(NTP_E_FORMAT, "%s = %g: expected 0 (none) or more", key,
                              (double)hp->logit_softcap);
    }
    if (hp->n_swa == 0)
        return NTP_OK;
    hp->swa_pattern = arch->swa_pattern;
    if ((s = ntp__arch_key(arch, NTP_KV_SWA_PATTERN, key, sizeof key)) != NTP_OK)
        return s;
    const ntp_gguf_value *pat = ntp_gguf_get(g, key);
    if (pat && pat->type == NTP_GGUF_ARRAY) {
        hp->swa_pattern = -1; /* per layer: the loader reads it */
    } else if (pat) {
        if ((s = ntp_gguf_get_i64(g, key, &hp->swa_pattern)) != NTP_OK)
            return s;
        if (hp->swa_pattern < 0)
            return ntp__error(NTP_E_FORMAT, "%s = %lld: expected 0 (every layer local) or more",
                              key, (long long)hp->swa_pattern);
    }
    return ntp__arch_read_f32(g, arch, NTP_KV_ROPE_FREQ_BASE_SWA, false, &hp->rope_freq_base_swa);
}

/*
 * The mixture-of-experts keys: expert_count (required by an MoE architecture,
 * optional for llama, where a count above 0 makes a Mixtral-style file),
 * expert_used_count (1 .. expert_count) and the experts' width
 * (expert_feed_forward_length, else feed_forward_length, as Mixtral's files
 * have it).
 */
static ntp_status read_experts(const ntp_gguf *g, const struct ntp_arch *arch,
                               struct ntp_hparams *hp)
{
    char key[128];
    const bool moe_arch = (arch->features & NTP_FEAT_MOE) != 0;
    ntp_status s = ntp__arch_key(arch, NTP_KV_EXPERT_COUNT, key, sizeof key);
    if (s != NTP_OK)
        return s;
    if (!moe_arch && ntp_gguf_find_key(g, key) < 0)
        return NTP_OK;
    if ((s = ntp_gguf_get_i64(g, key, &hp->n_expert)) != NTP_OK)
        return s;
    if (hp->n_expert < (moe_arch ? 1 : 0) || hp->n_expert > NTP_MAX_EXPERTS)
        return ntp__error(NTP_E_FORMAT, "%s = %lld: expected %d to %d", key,
                          (long long)hp->n_expert, moe_arch ? 1 : 0, NTP_MAX_EXPERTS);
    if (hp->n_expert == 0)
        return NTP_OK;
    char used[128];
    if ((s = ntp__arch_read_i64(g, arch, NTP_KV_EXPERT_USED_COUNT, true, &hp->n_expert_used)) != NTP_OK ||
        (s = ntp__arch_key(arch, NTP_KV_EXPERT_USED_COUNT, used, sizeof used)) != NTP_OK)
        return s;
    if (hp->n_expert_used > hp->n_expert)
        return ntp__error(NTP_E_FORMAT, "%s = %lld is more than %s = %lld", used,
                          (long long)hp->n_expert_used, key, (long long)hp->n_expert);
    hp->n_ff_exp = hp->n_ff;
    return ntp__arch_read_i64(g, arch, NTP_KV_EXPERT_FF, false, &hp->n_ff_exp);
}

/* The optional keys, with llama.cpp's defaults; 0 marks "not given" until resolved. */
static ntp_status read_optional(const ntp_gguf *g, const struct ntp_arch *arch,
                                struct ntp_hparams *hp)
{
    ntp_status s;
    hp->n_head_kv = hp->n_head;
    hp->rope_freq_base = 10000.0f;
    if ((s = ntp__arch_read_i64(g, arch, NTP_KV_HEAD_COUNT_KV, false, &hp->n_head_kv)) != NTP_OK ||
        (s = ntp__arch_read_i64(g, arch, NTP_KV_KEY_LENGTH, false, &hp->head_dim_k)) != NTP_OK ||
        (s = ntp__arch_read_i64(g, arch, NTP_KV_VALUE_LENGTH, false, &hp->head_dim_v)) != NTP_OK ||
        (s = ntp__arch_read_i64(g, arch, NTP_KV_ROPE_DIM_COUNT, false, &hp->n_rot)) != NTP_OK ||
        (s = ntp__arch_read_f32(g, arch, NTP_KV_ROPE_FREQ_BASE, false, &hp->rope_freq_base)) != NTP_OK)
        return s;
    if (hp->head_dim_k == 0) {
        if (hp->n_embd % hp->n_head != 0)
            return ntp__error(NTP_E_FORMAT,
                              "%s.embedding_length %lld is not a multiple of head_count %lld "
                              "and attention.key_length is missing",
                              arch->name, (long long)hp->n_embd, (long long)hp->n_head);
        hp->head_dim_k = hp->n_embd / hp->n_head;
    }
    if (hp->head_dim_v == 0)
        hp->head_dim_v = hp->head_dim_k;
    if (hp->n_rot == 0)
        hp->n_rot = hp->head_dim_k;
    const ntp_gguf_value *toks = ntp_gguf_get(g, "tokenizer.ggml.tokens");
    if (toks && toks->type == NTP_GGUF_ARRAY)
        hp->n_vocab = (int64_t)toks->arr.len;
    if ((s = ntp__arch_read_i64(g, arch, NTP_KV_VOCAB_SIZE, hp->n_vocab == 0, &hp->n_vocab)) != NTP_OK ||
        (s = read_experts(g, arch, hp)) != NTP_OK)
        return s;
    if ((arch->features & NTP_FEAT_MLA) && (s = ntp__hparams_read_mla(g, arch, hp)) != NTP_OK)
        return s;
    return read_swa(g, arch, hp);
}

/* Highest N of the tensors named blk.N.*, or -1 when there are none. */
static int64_t highest_block(const ntp_gguf *g)
{
    int64_t top = -1;
    for (int64_t i = 0; i < ntp_gguf_n_tensors(g); i++) {
        const char *name = ntp_gguf_tensor_at(g, i)->name;
        if (strncmp(name, "blk.", 4) != 0 || !isdigit((unsigned char)name[4]))
            continue;
        char *end;
        errno = 0;
        const unsigned long long n = strtoull(name + 4, &end, 10);
        if (*end == '.' && errno == 0 && n < INT32_MAX && (int64_t)n > top)
            top = (int64_t)n;
    }
    return top;
}

/*
 * Tensor tname must exist with rows (ne[1]) = n * size: n a count from key,
 * size the width of one (of what is named by size_key; NULL: one row each).
 */
static ntp_status check_rows(const ntp_gguf *g, const char *tname, const char *key, int64_t n,
                             const char *size_key, int64_t size)
{
    const ntp_gguf_tensor *t = ntp_gguf_find_tensor(g, tname);
    if (t == NULL)
        return ntp__error(NTP_E_NOT_FOUND, "tensor '%s' is missing", tname);
    int64_t want;
    if (!__builtin_mul_overflow(n, size, &want) && t->ne[1] == want)
        return NTP_OK;
    char times[96] = "";
    if (size_key)
        snprintf(times, sizeof times, " times %s %lld", size_key, (long long)size);
    return ntp__error(NTP_E_FORMAT, "%s = %lld%s does not match tensor '%s', which has %lld rows",
                      key, (long long)n, times, tname, (long long)t->ne[1]);
}

/*
 * The counts that loops run over (blocks, heads, tokens) against the tensors
 * the file holds, before anything loops over them: a hostile block_count of
 * 2^32 - 1 must fail here, not after walking four billion missing blocks.
 */
static ntp_status check_counts(const ntp_gguf *g, const struct ntp_arch *arch,
                               const struct ntp_hparams *hp)
{
    char kb[128], kh[128], kkv[128], kv[128];
    ntp_status s;
    if ((s = ntp__arch_key(arch, NTP_KV_BLOCK_COUNT, kb, sizeof kb)) != NTP_OK ||
        (s = ntp__arch_key(arch, NTP_KV_HEAD_COUNT, kh, sizeof kh)) != NTP_OK ||
        (s = ntp__arch_key(arch, NTP_KV_HEAD_COUNT_KV, kkv, sizeof kkv)) != NTP_OK ||
        (s = ntp__arch_key(arch, NTP_KV_VOCAB_SIZE, kv, sizeof kv)) != NTP_OK)
        return s;
    const int64_t top = highest_block(g);
    if (hp->n_layer > top + 1 && top < 0)
        return ntp__error(NTP_E_FORMAT, "%s = %lld, but the file has no blk.N tensors", kb,
                          (long long)hp->n_layer);
    if (hp->n_layer > top + 1)
        return ntp__error(NTP_E_FORMAT,
                          "%s = %lld, but the file's tensors stop at blk.%lld (%lld blocks)", kb,
                          (long long)hp->n_layer, (long long)top, (long long)(top + 1));
    const ntp_gguf_value *toks = ntp_gguf_get(g, "tokenizer.ggml.tokens");
    if (toks && toks->type == NTP_GGUF_ARRAY && (int64_t)toks->arr.len != hp->n_vocab)
        return ntp__error(NTP_E_FORMAT,
                          "the tokenizer has %llu tokens (tokenizer.ggml.tokens) but the model's "
                          "vocabulary has %lld (%s): they must be equal",
                          (unsigned long long)toks->arr.len, (long long)hp->n_vocab, kv);
    if ((s = check_rows(g, "token_embd.weight", kv, hp->n_vocab, NULL, 1)) != NTP_OK)
        return s;
    if (hp->kv_lora > 0) /* latent attention: its shapes are checked with the tensors */
        return NTP_OK;
    if ((s = check_rows(g, "blk.0.attn_q.weight", kh, hp->n_head, "key_length", hp->head_dim_k)) !=
            NTP_OK ||
        (s = check_rows(g, "blk.0.attn_k.weight", kkv, hp->n_head_kv, "key_length",
                        hp->head_dim_k)) != NTP_OK)
        return s;
    return check_rows(g, "blk.0.attn_v.weight", kkv, hp->n_head_kv, "value_length", hp->head_dim_v);
}

ntp_status ntp__hparams_read(const ntp_gguf *g, const struct ntp_arch *arch, struct ntp_hparams *hp)
{
    memset(hp, 0, sizeof *hp);
    ntp_status s = read_required(g, arch, hp);
    if (s == NTP_OK)
        s = read_optional(g, arch, hp);
    if (s != NTP_OK)
        return s;
    if (hp->n_head % hp->n_head_kv != 0)
        return ntp__error(NTP_E_FORMAT,
                          "%s.attention.head_count %lld is not a multiple of head_count_kv %lld",
                          arch->name, (long long)hp->n_head, (long long)hp->n_head_kv);
    if (hp->n_rot > hp->head_dim_k || hp->n_rot % 2 != 0)
        return ntp__error(
            NTP_E_FORMAT,
            "%s.rope.dimension_count %lld: expected an even number <= key_length %lld", arch->name,
            (long long)hp->n_rot, (long long)hp->head_dim_k);
    return check_counts(g, arch, hp);
}

const char *ntp__file_type_name(uint32_t ftype)
{
    /* enum llama_ftype (llama.h); the gaps are values llama.cpp removed. */
    static const char *const names[] = {
        [0] = "ALL_F32",  [1] = "F16",      [2] = "Q4_0",       [3] = "Q4_1",    [7] = "Q8_0",
        [8] = "Q5_0",     [9] = "Q5_1",     [10] = "Q2_K",      [11] = "Q3_K_S", [12] = "Q3_K_M",
        [13] = "Q3_K_L",  [14] = "Q4_K_S",  [15] = "Q4_K_M",    [16] = "Q5_K_S", [17] = "Q5_K_M",
        [18] = "Q6_K",    [19] = "IQ2_XXS", [20] = "IQ2_XS",    [21] = "Q2_K_S", [22] = "IQ3_XS",
        [23] = "IQ3_XXS", [24] = "IQ1_S",   [25] = "IQ4_NL",    [26] = "IQ3_S",  [27] = "IQ3_M",
        [28] = "IQ2_S",   [29] = "IQ2_M",   [30] = "IQ4_XS",    [31] = "IQ1_M",  [32] = "BF16",
        [36] = "TQ1_0",   [37] = "TQ2_0",   [38] = "MXFP4_MOE",
    };
    return ftype < sizeof names / sizeof names[0] ? names[ftype] : NULL;
}
