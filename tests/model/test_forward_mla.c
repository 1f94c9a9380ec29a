/*
 * test_forward_mla.c - deepseek2 (multi-head latent attention, leading dense
 * blocks, shared experts, deepseek's routing) against the numpy reference
 * (tests/reference/forward.py, which computes attention in the decompressed
 * form while the engine uses the absorbed one):
 *  - V2-Lite-like (attn_q, softmax gating, unnormalised weights, YaRN with
 *    yarn_log_multiplier) and V3-like (query low rank, sigmoid gating with
 *    the selection bias, 2 of 4 expert groups, normalised weights scaled by
 *    2.5) models in F32: all 24 prompt positions' logits agree to 1e-3 with
 *    the F16 and the F32 cache, and the next 12 greedy tokens are identical;
 *  - the older layout (one attn_kv_b, converted by the loader) agrees with
 *    the reference too, and so do experts whose gate and up are one
 *    ffn_gate_up_exps (llama.cpp's converter fuses them on request);
 *  - batches of 24, 5 and 1 agree (1e-5), and tp 2, 3 and 4 (heads split,
 *    the latent cached on every device; experts split by features or dealt
 *    out) give tp 1's logits (1e-5);
 *  - a Q8_0 cache (its rotation covers the values inside the keys) stays
 *    within 5e-2 of the F32 cache, and a quantized model (Q8_0, Q4_K_M mix)
 *    within the quantized tests' 5e-2 of the reference.
 */
#include "forward_util.h"

#define N_PROMPT 24
#define N_GREEDY 12
#define NV       300

static float eng[N_PROMPT * NV], ref[N_PROMPT * NV], alt[N_PROMPT * NV];

/*
 * A small deepseek2: 3 blocks (the first dense), 4 heads of 80 (64 RoPE)
 * with values of 16, latent 64 (the cache's rows: 128 and 64, so that a
 * quantized cache rotates them in blocks of 64).
 */
static struct ntp_gen_params mla_small(bool v3)
{
    struct ntp_gen_params p = fwd_small_mla();
    p.head_dim = 80;
    p.rope_dim = 64;
    p.kv_lora = 64;
    p.n_expert_shared = v3 ? 1 : 2;
    p.rope_scaling = NTP_GEN_ROPE_YARN;
    p.rope_scale = 4.0f;
    p.rope_orig_ctx = 32;
    p.rope_yarn_log_mul = v3 ? 0.1f : 0.0707f;
    if (v3) {
        p.q_lora = 48;
        p.gating_sigmoid = true;
        p.probs_bias = true;
        p.n_group = 4;
        p.n_group_used = 2;
        p.expert_norm = true;
        p.expert_scale = 2.5f;
    }
    return p;
}

/*
 * The older attn_kv_b layout (the loader turns it into attn_k_b and
 * attn_v_b): against the reference, and at tp 2. The generator draws
 * attn_kv_b from its own random stream, so it is not the newer file's model.
 */
static void check_kv_b(const char *name, const struct ntp_gen_params *p)
{
    char old_path[300];
    struct ntp_gen_params q = *p;
    q.mla_kv_b = true;
    if (fwd_gen(&q, name, old_path, sizeof old_path) != 0)
        return;
    int32_t toks[N_PROMPT], g;
    fwd_tokens(toks, N_PROMPT, NV, 7);
    CHECK(fwd_engine(old_path, NTP_TYPE_F32, 512, toks, N_PROMPT, eng, 0, NULL) == 0);
    CHECK(fwd_reference(old_path, toks, N_PROMPT, "f32", 0, ref, N_PROMPT * NV, &g) == 0);
    const double err = fwd_rel_err(eng, ref, N_PROMPT * NV);
    CHECK(fwd_engine_tp(old_path, NTP_TYPE_F32, 512, 128, 2, toks, N_PROMPT, alt, 0, NULL) == 0);
    const double e2 = fwd_rel_err(alt, eng, N_PROMPT * NV);
    printf("%-16s attn_kv_b file vs reference: %.2e, tp 2 vs 1: %.2e\n", name, err, e2);
    CHECK(err <= 1e-3);
    CHECK(e2 <= 1e-5);
}

/* Batches of 24, 5 and 1, tp 1 .. 4 with both expert cuts, and a Q8_0 cache. */
static void check_batching_tp(const char *name, const struct ntp_gen_params *p)
{
    char path[300];
    fwd_check_batching_tp(name, p, N_PROMPT, 4, eng, alt, path, sizeof path);
    int32_t toks[N_PROMPT];
    fwd_tokens(toks, N_PROMPT, NV, 5);
    /* a quantized cache holds the latent; its rotation must cover the values in the keys */
    CHECK(fwd_engine(path, NTP_TYPE_Q8_0, 512, toks, N_PROMPT, alt, 0, NULL) == 0);
    const double eq = fwd_rel_err(alt, eng, N_PROMPT * NV);
    printf(", q8_0 cache: %.2e\n", eq);
    CHECK(eq <= 5e-2);
}

/* Quantized weights (attn_k_b's rows are 32 wide: a 32-block type by the mix's fallback). */
static void check_quant(const char *fmt, bool v3)
{
    struct ntp_gen_params p = mla_small(v3);
    p.n_embd = 256;
    p.n_ff = 256;
    p.n_ff_exp = 256;
    p.kv_lora = 256;
    p.head_dim = 48;
    p.rope_dim = 16;
    p.v_head_dim = 32;
    p.q_lora = v3 ? 256 : 0;
    p.n_expert = p.n_expert_used = 4; /* no near-tie choices (see test_forward_moe.c) */
    p.n_group = p.n_group_used = 0;
    p.probs_bias = false;
    if (ntp__gen_parse_mix(fmt, &p) != NTP_OK) {
        fprintf(stderr, "%s: %s\n", fmt, ntp_last_error());
        ntp_test_failures++;
        return;
    }
    char path[300], name[64];
    snprintf(name, sizeof name, "mla-%s-%s", v3 ? "v3" : "v2", fmt);
    if (fwd_gen(&p, name, path, sizeof path) != 0)
        return;
    int32_t toks[N_PROMPT], g;
    fwd_tokens(toks, N_PROMPT, NV, 4);
    CHECK(fwd_engine(path, NTP_TYPE_F16, 512, toks, N_PROMPT, eng, 0, NULL) == 0);
    CHECK(fwd_reference(path, toks, N_PROMPT, "f16", 0, ref, N_PROMPT * NV, &g) == 0);
    const double err = fwd_rel_err(eng, ref, N_PROMPT * NV);
    CHECK(fwd_engine(path, NTP_TYPE_F16, 1, toks, N_PROMPT, alt, 0, NULL) == 0);
    const double e1 = fwd_rel_err(alt, eng, N_PROMPT * NV);
    printf("%-16s max|diff|/max|ref| = %.2e, batch 1 vs 24: %.2e\n", name, err, e1);
    CHECK(err <= 5e-2);
    CHECK(e1 <= 5e-2);
}

int main(void)
{
    if (access("/usr/bin/python3", X_OK) != 0 ||
        system("/usr/bin/python3 -c 'import numpy' 2>/dev/null") != 0)
        NTP_TEST_SKIP("needs /usr/bin/python3 with numpy for the reference");
    fwd_init();
    const struct ntp_gen_params v2 = mla_small(false), v3 = mla_small(true);
    fwd_check_reference("mla-v2-f32", &v2, N_PROMPT, N_GREEDY, eng, ref);
    fwd_check_reference("mla-v3-f32", &v3, N_PROMPT, N_GREEDY, eng, ref);
    check_kv_b("mla-v2-kv_b", &v2);
    check_kv_b("mla-v3-kv_b", &v3);
    check_batching_tp("mla-v2-batch", &v2);
    check_batching_tp("mla-v3-batch", &v3);
    /* llama.cpp's converter may fuse each expert's gate and up (ffn_gate_up_exps) */
    struct ntp_gen_params fused = v3;
    fused.fuse_gate_up = true;
    fwd_check_reference("mla-v3-fused", &fused, N_PROMPT, N_GREEDY, eng, ref);
    char path[300];
    fwd_check_batching_tp("mla-v3-fused-tp", &fused, N_PROMPT, 2, eng, alt, path, sizeof path);
    printf("\n");
    check_quant("q8_0", false);
    check_quant("q4_k_m", true);
    fwd_cleanup();
    return ntp_test_result("forward_mla");
}
