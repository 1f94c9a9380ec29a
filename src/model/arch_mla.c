/*
 * arch_mla.c - the hyper-parameters of deepseek2 beyond the common ones:
 * multi-head latent attention and the routing of its experts, read as
 * llama.cpp's src/models/deepseek2.cpp (load_arch_hparams) reads them.
 *
 * Files come in two forms. llama.cpp's current converter writes the
 * attention as the absorbed form sees it: key_length = kv_lora_rank +
 * rope.dimension_count, value_length = kv_lora_rank, head_count_kv = 1, and
 * the decompressed head widths in key_length_mla and value_length_mla, with
 * the up-projection as attn_k_b and attn_v_b. Older files have no _mla keys:
 * their key_length and value_length are the decompressed widths, and the
 * up-projection is one attn_kv_b. Either way the hyper-parameters end in the
 * cache's view (config.h): one KV head, key kv_lora + n_rot, value kv_lora.
 */
#include "model/arch.h"

#include "core/core.h"

#include <math.h>
#include <stdio.h>

/* An optional integer key that may be 0 (or absent: *out unchanged); at most max. */
static ntp_status read_count(const ntp_gguf *g, const struct ntp_arch *arch, enum ntp_hparam_key k,
                             int64_t max, int64_t *out)
{
    char key[128];
    ntp_status s = ntp__arch_key(arch, k, key, sizeof key);
    if (s != NTP_OK || ntp_gguf_find_key(g, key) < 0)
        return s;
    if ((s = ntp_gguf_get_i64(g, key, out)) != NTP_OK)
        return s;
    if (*out < 0 || *out > max)
        return ntp__error(NTP_E_FORMAT, "%s = %lld: expected 0 to %lld", key, (long long)*out,
                          (long long)max);
    return NTP_OK;
}

/* The widths of the attention; the cache's view replaces the file's. */
static ntp_status read_attention(const ntp_gguf *g, const struct ntp_arch *arch,
                                 struct ntp_hparams *hp)
{
    char kk[128], kr[128], kmla[128];
    ntp_status s;
    if ((s = ntp__arch_read_i64(g, arch, NTP_KV_KV_LORA_RANK, true, &hp->kv_lora)) != NTP_OK ||
        (s = read_count(g, arch, NTP_KV_Q_LORA_RANK, (int64_t)1 << 24, &hp->q_lora)) != NTP_OK ||
        (s = ntp__arch_key(arch, NTP_KV_KEY_LENGTH, kk, sizeof kk)) != NTP_OK ||
        (s = ntp__arch_key(arch, NTP_KV_ROPE_DIM_COUNT, kr, sizeof kr)) != NTP_OK ||
        (s = ntp__arch_key(arch, NTP_KV_KEY_LENGTH_MLA, kmla, sizeof kmla)) != NTP_OK)
        return s;
    if (ntp_gguf_find_key(g, kr) < 0)
        return ntp__error(NTP_E_NOT_FOUND, "%s is missing (the RoPE part of each head)", kr);
    if (ntp_gguf_find_key(g, kmla) >= 0) { /* the current form */
        if ((s = ntp__arch_read_i64(g, arch, NTP_KV_KEY_LENGTH_MLA, true, &hp->mla_k)) != NTP_OK ||
            (s = ntp__arch_read_i64(g, arch, NTP_KV_VALUE_LENGTH_MLA, true, &hp->mla_v)) != NTP_OK)
            return s;
        if (hp->head_dim_k != hp->kv_lora + hp->n_rot || hp->head_dim_v != hp->kv_lora ||
            hp->n_head_kv != 1)
            return ntp__error(NTP_E_FORMAT,
                              "%s = %lld, value_length %lld, head_count_kv %lld: with %s the "
                              "file must give kv_lora_rank + rope.dimension_count = %lld, "
                              "kv_lora_rank = %lld and 1",
                              kk, (long long)hp->head_dim_k, (long long)hp->head_dim_v,
                              (long long)hp->n_head_kv, kmla, (long long)(hp->kv_lora + hp->n_rot),
                              (long long)hp->kv_lora);
    } else { /* older files: the decompressed heads */
        hp->mla_k = hp->head_dim_k;
        hp->mla_v = hp->head_dim_v;
    }
    if (hp->n_rot >= hp->mla_k)
        return ntp__error(NTP_E_FORMAT,
                          "%s = %lld leaves no part of a %lld-wide query head without RoPE", kr,
                          (long long)hp->n_rot, (long long)hp->mla_k);
    hp->head_dim_k = hp->kv_lora + hp->n_rot;
    hp->head_dim_v = hp->kv_lora;
    hp->n_head_kv = 1;
    return NTP_OK;
}

/* Shared experts, leading dense blocks and the routing (llama.cpp's defaults). */
static ntp_status read_routing(const ntp_gguf *g, const struct ntp_arch *arch,
                               struct ntp_hparams *hp)
{
    char key[128];
    ntp_status s;
    struct ntp_moe_gating *r = &hp->gating;
    *r = (struct ntp_moe_gating){NTP_MOE_SOFTMAX, false, 1.0f, 0, 0};
    if ((s = read_count(g, arch, NTP_KV_LEADING_DENSE, hp->n_layer, &hp->n_layer_dense)) !=
            NTP_OK ||
        (s = ntp__arch_key(arch, NTP_KV_EXPERT_SHARED, key, sizeof key)) != NTP_OK)
        return s;
    if (ntp_gguf_find_key(g, key) < 0)
        return ntp__error(NTP_E_NOT_FOUND, "%s is missing", key);
    if ((s = read_count(g, arch, NTP_KV_EXPERT_SHARED, 64, &hp->n_expert_shared)) != NTP_OK)
        return s;
    float scale = 0.0f;
    if ((s = ntp__arch_key(arch, NTP_KV_EXPERT_W_SCALE, key, sizeof key)) != NTP_OK)
        return s;
    if (ntp_gguf_find_key(g, key) >= 0 && (s = ntp_gguf_get_f32(g, key, &scale)) != NTP_OK)
        return s;
    if (!(scale >= 0.0f) || isinf(scale))
        return ntp__error(NTP_E_FORMAT, "%s = %g: expected 0 (none) or more", key, (double)scale);
    r->scale = scale == 0.0f ? 1.0f : scale; /* llama.cpp scales only by a value other than 0 */
    if ((s = ntp__arch_key(arch, NTP_KV_EXPERT_W_NORM, key, sizeof key)) != NTP_OK)
        return s;
    if (ntp_gguf_find_key(g, key) >= 0 && (s = ntp_gguf_get_bool(g, key, &r->norm)) != NTP_OK)
        return s;
    int64_t func = 0;
    if ((s = ntp__arch_key(arch, NTP_KV_EXPERT_GATING, key, sizeof key)) != NTP_OK ||
        (s = read_count(g, arch, NTP_KV_EXPERT_GATING, INT32_MAX, &func)) != NTP_OK)
        return s;
    if (func > 2) /* llama.cpp's 3 and 4 belong to other architectures */
        return ntp__error(NTP_E_UNSUPPORTED,
                          "%s = %lld: supported are 1 (softmax) and 2 (sigmoid)", key,
                          (long long)func);
    r->gate = func == 2 ? NTP_MOE_SIGMOID : NTP_MOE_SOFTMAX; /* 0: the V2 files' softmax */
    if ((s = read_count(g, arch, NTP_KV_EXPERT_GROUPS, hp->n_expert, &r->n_group)) != NTP_OK ||
        (s = read_count(g, arch, NTP_KV_EXPERT_GROUPS_USED, hp->n_expert, &r->n_group_used)) !=
            NTP_OK ||
        r->n_group <= 1)
        return s;
    char used[128];
    if ((s = ntp__arch_key(arch, NTP_KV_EXPERT_GROUPS, key, sizeof key)) != NTP_OK ||
        (s = ntp__arch_key(arch, NTP_KV_EXPERT_GROUPS_USED, used, sizeof used)) != NTP_OK)
        return s;
    if (hp->n_expert % r->n_group != 0)
        return ntp__error(NTP_E_FORMAT, "%s = %lld does not divide expert_count %lld", key,
                          (long long)r->n_group, (long long)hp->n_expert);
    if (r->n_group_used < 1 || r->n_group_used > r->n_group ||
        r->n_group_used * (hp->n_expert / r->n_group) < hp->n_expert_used)
        return ntp__error(NTP_E_FORMAT,
                          "%s = %lld: expected 1 to %s (%lld) with at least expert_used_count "
                          "(%lld) experts in the groups used",
                          used, (long long)r->n_group_used, key, (long long)r->n_group,
                          (long long)hp->n_expert_used);
    return NTP_OK;
}

ntp_status ntp__hparams_read_mla(const ntp_gguf *g, const struct ntp_arch *arch,
                                 struct ntp_hparams *hp)
{
    ntp_status s = read_attention(g, arch, hp);
    return s == NTP_OK ? read_routing(g, arch, hp) : s;
}
