/*
 * gen_mla.c - deepseek2 files from the generator: the latent attention's
 * and the routing's sizes, their checks, and their keys in either form
 * llama.cpp reads (model/arch_mla.c): the current one (attn_k_b and
 * attn_v_b, key_length = kv_lora + RoPE, one KV head, the decompressed
 * widths in key_length_mla and value_length_mla) or the older one
 * (attn_kv_b, key_length and value_length the decompressed widths).
 * Defaults are DeepSeek-V2's: latent 512, RoPE part 64, heads 192 wide
 * with values of 128, softmax gating.
 */
#include "model/arch.h"
#include "model/gen.h"

#include "core/core.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/*
 * deepseek-v2-lite: config.json of deepseek-ai/DeepSeek-V2-Lite (no query
 * low rank, one dense block, 2 shared experts, softmax gating unnormalised,
 * YaRN x40 from 4096 positions with mscale_all_dim 0.707). deepseek-v3-small:
 * DeepSeek-V3's config.json (query rank 1536, 1 shared expert, sigmoid
 * gating with the selection bias, normalised and scaled by 2.5, 4 of 8
 * groups, mscale_all_dim 1) with 4 blocks, the first dense, and 32 experts
 * instead of 61 and 256, so that it fits in this machine's memory.
 */
void ntp__gen_mla_preset(const char *name, struct ntp_gen_params *p)
{
    const bool v2 = strcmp(name, "deepseek-v2-lite") == 0;
    if (!v2 && strcmp(name, "deepseek-v3-small") != 0) { /* none of it in another shape */
        p->kv_lora = p->q_lora = p->rope_dim = p->v_head_dim = 0;
        p->n_layer_dense = p->n_expert_shared = p->n_group = p->n_group_used = 0;
        p->gating_sigmoid = p->expert_norm = p->probs_bias = p->mla_kv_b = false;
        p->expert_scale = p->rope_yarn_log_mul = 0.0f;
        return;
    }
    p->kv_lora = 512;
    p->q_lora = v2 ? 0 : 1536;
    p->rope_dim = 64;
    p->v_head_dim = 128;
    p->n_layer_dense = 1;
    p->n_expert_shared = v2 ? 2 : 1;
    p->gating_sigmoid = !v2;
    p->expert_norm = !v2;
    p->expert_scale = v2 ? 1.0f : 2.5f;
    p->n_group = v2 ? 0 : 8;
    p->n_group_used = v2 ? 0 : 4;
    p->probs_bias = !v2;
    p->rope_scaling = NTP_GEN_ROPE_YARN;
    p->rope_scale = 40.0f;
    p->rope_orig_ctx = 4096;
    p->rope_yarn_log_mul = v2 ? 0.0707f : 0.1f;
}

void ntp__gen_mla_hparams(const struct ntp_gen_params *p, struct ntp_hparams *hp)
{
    hp->kv_lora = p->kv_lora ? p->kv_lora : 512;
    hp->q_lora = p->q_lora;
    hp->n_rot = p->rope_dim ? p->rope_dim : 64;
    hp->mla_k = p->head_dim ? p->head_dim : 192;
    hp->mla_v = p->v_head_dim ? p->v_head_dim : hp->mla_k - hp->n_rot;
    hp->head_dim_k = hp->kv_lora + hp->n_rot;
    hp->head_dim_v = hp->kv_lora;
    hp->n_head_kv = 1;
    hp->n_layer_dense = p->n_layer_dense;
    hp->n_expert_shared = p->n_expert_shared;
    hp->gating = (struct ntp_moe_gating){
        p->gating_sigmoid ? NTP_MOE_SIGMOID : NTP_MOE_SOFTMAX, p->expert_norm,
        p->expert_scale > 0 ? p->expert_scale : 1.0f, p->n_group, p->n_group_used};
}

ntp_status ntp__gen_mla_check(const struct ntp_gen_params *p, const struct ntp_hparams *hp)
{
    const int64_t cap = (int64_t)1 << 20;
    if (p->kv_lora < 0 || p->kv_lora > cap || p->q_lora < 0 || p->q_lora > cap ||
        p->rope_dim < 0 || p->rope_dim % 2 != 0 || p->v_head_dim < 0 || p->v_head_dim > cap)
        return ntp__error(NTP_E_INVALID_ARG,
                          "kv_lora (--kv-lora) %lld, q_lora (--q-lora) %lld, rope_dim "
                          "(--rope-dim) %lld, v_head_dim (--v-head-dim) %lld: expected sizes "
                          "0 .. 2^20, the RoPE part even",
                          (long long)p->kv_lora, (long long)p->q_lora, (long long)p->rope_dim,
                          (long long)p->v_head_dim);
    if (hp->n_rot >= hp->mla_k || hp->mla_v <= 0)
        return ntp__error(NTP_E_INVALID_ARG,
                          "head_dim (--head-dim) %lld must be wider than its RoPE part "
                          "(--rope-dim) %lld, and the value heads (--v-head-dim) %lld wide",
                          (long long)hp->mla_k, (long long)hp->n_rot, (long long)hp->mla_v);
    if (p->n_layer_dense < 0 || p->n_layer_dense > p->n_layer)
        return ntp__error(NTP_E_INVALID_ARG,
                          "leading dense blocks (--dense-layers) %lld: expected 0 .. the %lld "
                          "blocks",
                          (long long)p->n_layer_dense, (long long)p->n_layer);
    if (p->n_expert_shared < 0 || p->n_expert_shared > 64 || !(p->expert_scale >= 0) ||
        isinf(p->expert_scale) || !isfinite(p->rope_yarn_log_mul))
        return ntp__error(NTP_E_INVALID_ARG,
                          "shared experts (--shared-experts) %lld, expert scale (--expert-scale) "
                          "%g, YaRN log multiplier %g: expected 0 .. 64 and finite values >= 0",
                          (long long)p->n_expert_shared, (double)p->expert_scale,
                          (double)p->rope_yarn_log_mul);
    if (p->n_group > 1 && (hp->n_expert % p->n_group != 0 || p->n_group_used < 1 ||
                           p->n_group_used > p->n_group ||
                           p->n_group_used * (hp->n_expert / p->n_group) < hp->n_expert_used))
        return ntp__error(NTP_E_INVALID_ARG,
                          "expert groups (--expert-groups) %lld, used (--expert-groups-used) "
                          "%lld: the groups must divide the %lld experts and those used hold "
                          "at least the %lld experts per token",
                          (long long)p->n_group, (long long)p->n_group_used,
                          (long long)hp->n_expert, (long long)hp->n_expert_used);
    return NTP_OK;
}

unsigned ntp__gen_mla_features(const struct ntp_gen_params *p, const struct ntp_hparams *hp)
{
    return (hp->q_lora > 0 ? (unsigned)NTP_FEAT_Q_LORA : 0u) |
           (p->mla_kv_b ? (unsigned)NTP_FEAT_KV_B : 0u) |
           (hp->n_expert_shared > 0 ? (unsigned)NTP_FEAT_SHEXP : 0u) |
           (p->probs_bias ? (unsigned)NTP_FEAT_PROBS_B : 0u);
}

static ntp_status set_u32(ntp_gguf_writer *w, const struct ntp_arch *a, enum ntp_hparam_key k,
                          int64_t v)
{
    char key[128];
    ntp_status s = ntp__arch_key(a, k, key, sizeof key);
    return s != NTP_OK ? s : ntp_gguf_writer_set_u32(w, key, (uint32_t)v);
}

ntp_status ntp__gen_mla_write_keys(ntp_gguf_writer *w, const struct ntp_gen_params *p,
                                   const struct ntp_hparams *hp)
{
    const struct ntp_arch *a = ntp__arch_find("deepseek2");
    char key[128];
    ntp_status s;
    const bool old = p->mla_kv_b;
    if ((s = set_u32(w, a, NTP_KV_HEAD_COUNT_KV, old ? hp->n_head : 1)) != NTP_OK ||
        (s = set_u32(w, a, NTP_KV_KEY_LENGTH, old ? hp->mla_k : hp->head_dim_k)) != NTP_OK ||
        (s = set_u32(w, a, NTP_KV_VALUE_LENGTH, old ? hp->mla_v : hp->head_dim_v)) != NTP_OK ||
        (s = set_u32(w, a, NTP_KV_KV_LORA_RANK, hp->kv_lora)) != NTP_OK ||
        (s = set_u32(w, a, NTP_KV_LEADING_DENSE, hp->n_layer_dense)) != NTP_OK ||
        (s = set_u32(w, a, NTP_KV_EXPERT_FF, hp->n_ff_exp)) != NTP_OK ||
        (s = set_u32(w, a, NTP_KV_EXPERT_SHARED, hp->n_expert_shared)) != NTP_OK ||
        (s = set_u32(w, a, NTP_KV_EXPERT_GATING,
                     hp->gating.gate == NTP_MOE_SIGMOID ? 2 : 1)) != NTP_OK ||
        (s = ntp__arch_key(a, NTP_KV_EXPERT_W_SCALE, key, sizeof key)) != NTP_OK ||
        (s = ntp_gguf_writer_set_f32(w, key, hp->gating.scale)) != NTP_OK ||
        (s = ntp__arch_key(a, NTP_KV_EXPERT_W_NORM, key, sizeof key)) != NTP_OK ||
        (s = ntp_gguf_writer_set_bool(w, key, hp->gating.norm)) != NTP_OK)
        return s;
    if (!old && ((s = set_u32(w, a, NTP_KV_KEY_LENGTH_MLA, hp->mla_k)) != NTP_OK ||
                 (s = set_u32(w, a, NTP_KV_VALUE_LENGTH_MLA, hp->mla_v)) != NTP_OK))
        return s;
    /* written when 0 too: llama.cpp requires it but for V2-Lite's block counts */
    if ((s = set_u32(w, a, NTP_KV_Q_LORA_RANK, hp->q_lora)) != NTP_OK)
        return s;
    if (hp->gating.n_group > 1 &&
        ((s = set_u32(w, a, NTP_KV_EXPERT_GROUPS, hp->gating.n_group)) != NTP_OK ||
         (s = set_u32(w, a, NTP_KV_EXPERT_GROUPS_USED, hp->gating.n_group_used)) != NTP_OK))
        return s;
    if (p->rope_yarn_log_mul != 0.0f) {
        snprintf(key, sizeof key, "%s.rope.scaling.yarn_log_multiplier", a->name);
        s = ntp_gguf_writer_set_f32(w, key, p->rope_yarn_log_mul);
    }
    return s;
}
