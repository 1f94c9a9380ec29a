/*
 * describe.c - what a model is, from its file's metadata: the architecture,
 * the hyper-parameters, RoPE and its scaling, the sliding-window layers,
 * the attention scale (latent attention's YaRN factors included) and which
 * optional tensors the file has. The loader (load.c) and `numatp plan` start
 * here.
 */
#include "model/model.h"

#include "core/core.h"
#include "gguf/gguf_file.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


/* One optional float key; *out keeps its value when the key is missing. */
static ntp_status opt_f32(const ntp_gguf *g, const char *arch, const char *suffix, float *out)
{
    char key[160];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    return ntp_gguf_find_key(g, key) < 0 ? NTP_OK : ntp_gguf_get_f32(g, key, out);
}

/*
 * RoPE scaling as llama.cpp reads it: rope.scaling.type (none, linear, yarn;
 * linear when only a factor is given), rope.scaling.factor or the older
 * rope.scale_linear; YaRN's original context length and attention factor.
 */
static ntp_status read_rope_scaling(const ntp_gguf *g, const char *arch, struct ntp_model_cfg *c)
{
    char key[160];
    const char *type = "linear";
    snprintf(key, sizeof key, "%s.rope.scaling.type", arch);
    if (ntp_gguf_find_key(g, key) >= 0 && ntp_gguf_get_str(g, key, &type) != NTP_OK)
        return NTP_E_TYPE;
    float factor = 0.0f;
    ntp_status s = opt_f32(g, arch, "rope.scale_linear", &factor);
    if (s == NTP_OK)
        s = opt_f32(g, arch, "rope.scaling.factor", &factor);
    /* llama.cpp scales cos/sin by rope.scaling.attn_factor whatever the scaling type. */
    if (s == NTP_OK)
        s = opt_f32(g, arch, "rope.scaling.attn_factor", &c->rope.attn_factor);
    if (s != NTP_OK)
        return s;
    if (strcmp(type, "none") == 0)
        return NTP_OK;
    if (strcmp(type, "linear") != 0 && strcmp(type, "yarn") != 0)
        return ntp__error(NTP_E_UNSUPPORTED,
                          "%s = '%s': supported RoPE scaling types are none, "
                          "linear and yarn",
                          key, type);
    c->rope.freq_scale = factor > 0.0f ? 1.0f / factor : 1.0f;
    if (strcmp(type, "yarn") == 0) {
        c->rope.ext_factor = 1.0f;
        snprintf(key, sizeof key, "%s.rope.scaling.original_context_length", arch);
        if (ntp_gguf_find_key(g, key) >= 0)
            s = ntp_gguf_get_i64(g, key, &c->rope.n_ctx_orig);
    }
    return s;
}

/*
 * Which layers attend to a sliding window: the file's per-layer bool array,
 * or llama.cpp's pattern (every swa_pattern-th layer global, the last of
 * each group; all local for a pattern of 0). Nothing when there is no window.
 */
static ntp_status read_swa_layers(const ntp_gguf *g, struct ntp_model *m)
{
    const struct ntp_hparams *hp = &m->cfg.hp;
    if (hp->n_swa == 0)
        return NTP_OK;
    m->swa_layers = calloc((size_t)hp->n_layer, sizeof *m->swa_layers);
    if (m->swa_layers == NULL)
        return ntp__error(NTP_E_NOMEM, "out of memory");
    m->cfg.is_swa = m->swa_layers;
    if (hp->swa_pattern >= 0) {
        for (int64_t il = 0; il < hp->n_layer; il++)
            m->swa_layers[il] = hp->swa_pattern == 0 || il % hp->swa_pattern < hp->swa_pattern - 1;
        return NTP_OK;
    }
    char key[128];
    ntp_status s = ntp__arch_key(m->arch, NTP_KV_SWA_PATTERN, key, sizeof key);
    if (s != NTP_OK)
        return s;
    const ntp_gguf_value *v = ntp_gguf_get(g, key);
    if (v->arr.type != NTP_GGUF_BOOL || (int64_t)v->arr.len != hp->n_layer)
        return ntp__error(NTP_E_FORMAT,
                          "%s: expected an integer or an array of %lld bools (one per block), "
                          "found an array of %llu %s",
                          key, (long long)hp->n_layer, (unsigned long long)v->arr.len,
                          ntp_gguf_type_name(v->arr.type));
    for (int64_t il = 0; il < hp->n_layer; il++)
        m->swa_layers[il] = v->arr.elems[il].b;
    return NTP_OK;
}

/*
 * Latent attention's scale and RoPE magnitude with YaRN, as llama.cpp sets
 * them for deepseek2 (llama-context.cpp and models/deepseek2.cpp):
 * rope.scaling.yarn_log_multiplier is stored as 0.1 times the model's
 * mscale_all_dim; with it the rotation's magnitude becomes attn_factor / (1
 * + 0.1 ln s) (the rope then multiplies 1 + 0.1 ln s back in), and q·k is
 * scaled by m^2 / sqrt(mla_k), m = attn_factor (1 + 0.1 ln s) (1 + 0.1
 * log_mul ln s), s the scaling factor (1 without scaling).
 */
static ntp_status mla_scale(const ntp_gguf *g, const char *arch, struct ntp_model_cfg *c)
{
    float log_mul = 0.0f;
    ntp_status s = opt_f32(g, arch, "rope.scaling.yarn_log_multiplier", &log_mul);
    if (s != NTP_OK)
        return s;
    if (!isfinite(log_mul))
        return ntp__error(NTP_E_FORMAT, "%s.rope.scaling.yarn_log_multiplier = %g: expected a "
                          "finite number", arch, (double)log_mul);
    log_mul /= 0.1f;
    const float ln_s = logf(1.0f / c->rope.freq_scale);
    if (c->rope.ext_factor != 0.0f && log_mul != 0.0f)
        c->rope.attn_factor /= 1.0f + 0.1f * ln_s;
    const float mscale =
        c->rope.attn_factor * (1.0f + 0.1f * ln_s) * (1.0f + 0.1f * log_mul * ln_s);
    c->attn_scale = mscale * mscale / sqrtf((float)c->hp.mla_k);
    return NTP_OK;
}

/* Architecture, hyper-parameters and RoPE of the file. */
ntp_status ntp__model_read_cfg(const ntp_gguf *g, struct ntp_model *m)
{
    const char *arch;
    ntp_status s = ntp_gguf_get_str(g, "general.architecture", &arch);
    if (s != NTP_OK)
        return s;
    m->arch = ntp__arch_find(arch);
    if (m->arch == NULL) {
        char known[256];
        ntp__arch_names(known, sizeof known);
        return ntp__error(NTP_E_UNSUPPORTED,
                          "general.architecture '%s' is not supported (known: %s)", arch, known);
    }
    struct ntp_model_cfg *c = &m->cfg;
    if ((s = ntp__hparams_read(g, m->arch, &c->hp)) != NTP_OK)
        return s;
    c->rope = (struct ntp_rope_cfg){
        .n_rot = c->hp.n_rot,
        .neox = m->arch->rope_type == NTP_ROPE_NEOX,
        .freq_base = c->hp.rope_freq_base,
        .freq_scale = 1.0f,
        .attn_factor = 1.0f,
        .beta_fast = 32.0f,
        .beta_slow = 1.0f,
        .n_ctx_orig = c->hp.n_ctx,
    };
    if ((s = read_rope_scaling(g, m->arch->name, c)) != NTP_OK)
        return s;
    c->qkv_bias = (m->arch->features & NTP_FEAT_QKV_BIAS) != 0 ||
                  ntp_gguf_find_tensor(g, "blk.0.attn_q.bias") != NULL;
    c->qk_norm = (m->arch->features & NTP_FEAT_QK_NORM) != 0;
    c->post_norm = (m->arch->features & NTP_FEAT_POST_NORM) != 0;
    c->ffn_act = m->arch->ffn_act;
    c->attn_scale = 1.0f / sqrtf((float)c->hp.head_dim_k);
    /* llama.cpp (models/gemma3.cpp) knows Gemma 3 27B by its 62 blocks: its
       query_pre_attn_scalar is n_embd / n_head, not key_length */
    if (strcmp(m->arch->name, "gemma3") == 0 && c->hp.n_layer == 62)
        c->attn_scale = 1.0f / sqrtf((float)(c->hp.n_embd / c->hp.n_head));
    if (ntp__cfg_mla(c) && (s = mla_scale(g, m->arch->name, c)) != NTP_OK)
        return s;
    c->embd_scale = m->arch->embd_scale ? sqrtf((float)c->hp.n_embd) : 1.0f;
    /* The local layers rotate with their own base and no scaling (llama.cpp's
       rope_freq_base_train_swa / rope_freq_scale_train_swa). */
    c->rope_swa = c->rope;
    c->rope_swa.freq_base = c->hp.rope_freq_base_swa;
    c->rope_swa.freq_scale = 1.0f;
    return read_swa_layers(g, m);
}

/* Features of this file: the architecture's, plus biases and an untied head when present. */
unsigned ntp__model_file_features(const struct ntp_model *m, const ntp_gguf *g)
{
    unsigned f = m->arch->features;
    if (m->cfg.qkv_bias)
        f |= NTP_FEAT_QKV_BIAS;
    if (ntp_gguf_find_tensor(g, "output.weight") != NULL)
        f |= NTP_FEAT_OUTPUT;
    if (m->cfg.hp.n_expert > 0)
        f |= NTP_FEAT_MOE; /* a Mixtral-style llama */
    const struct ntp_hparams *hp = &m->cfg.hp;
    if (!ntp__cfg_mla(&m->cfg))
        return f;
    if (hp->q_lora > 0)
        f |= NTP_FEAT_Q_LORA;
    if (ntp_gguf_find_tensor(g, "blk.0.attn_kv_b.weight") != NULL)
        f |= NTP_FEAT_KV_B;
    if (hp->n_expert_shared > 0)
        f |= NTP_FEAT_SHEXP;
    char name[64]; /* the first block with experts says whether they have a selection bias */
    snprintf(name, sizeof name, "blk.%lld.exp_probs_b.bias", (long long)hp->n_layer_dense);
    if (ntp_gguf_find_tensor(g, name) != NULL)
        f |= NTP_FEAT_PROBS_B;
    return f;
}

/* llama3-style per-frequency RoPE factors (only llama's graph uses them, as in llama.cpp). */
ntp_status ntp__model_rope_freqs(struct ntp_model *m, const ntp_gguf *g)
{
    const ntp_gguf_tensor *t = ntp_gguf_find_tensor(g, "rope_freqs.weight");
    if (t == NULL || strcmp(m->arch->name, "llama") != 0)
        return NTP_OK;
    const int64_t n = m->cfg.rope.n_rot / 2;
    if (t->type != NTP_TYPE_F32 || t->ne[0] != n || t->ne[1] != 1)
        return ntp__error(NTP_E_FORMAT,
                          "tensor 'rope_freqs.weight': %s [%lld, %lld], expected "
                          "F32 [%lld] (rope dimensions / 2)",
                          ntp_type_name(t->type), (long long)t->ne[0], (long long)t->ne[1],
                          (long long)n);
    m->rope_freqs = malloc((size_t)n * sizeof(float));
    if (m->rope_freqs == NULL)
        return ntp__error(NTP_E_NOMEM, "out of memory");
    m->cfg.rope.freq_factors = m->rope_freqs;
    return ntp__gguf_read(g, t, 0, m->rope_freqs, (size_t)n * sizeof(float));
}

