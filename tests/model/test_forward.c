/*
 * test_forward.c - the F32 forward pass of every architecture against the
 * numpy reference (tests/reference/forward.py):
 *  - logits of all 32 prompt positions agree to 1e-3 (max |diff| / max |ref|);
 *  - the next 16 greedy tokens are identical;
 *  - with an F32 KV cache too (the reference then keeps K/V unrounded);
 *  - prefill as one batch, in batches of 5 and token by token give the same
 *    logits (to float reordering, 1e-5); so do a 600-token prompt's batches
 *    of 512, of 100 and of 1 (1e-4: F16 cache, 3 chunks of cached positions);
 *  - gemma3 with a sliding window shorter than the prompt: against the
 *    reference, and a 600-token prompt whose batches of 512 (a plain cache),
 *    100 and 1 (a ring cache of the local layers) agree (F32 cache, 1e-5).
 */
#include "forward_util.h"

#define N_PROMPT 32
#define N_GREEDY 16
#define NV       300

static float eng[N_PROMPT * NV], ref[N_PROMPT * NV], alt[N_PROMPT * NV];

static void check_against_reference(const char *name, const struct ntp_gen_params *p,
                                    const char *kv_name, enum ntp_type kv)
{
    char path[300];
    if (fwd_gen(p, name, path, sizeof path) != 0)
        return;
    int32_t toks[N_PROMPT], g_eng[N_GREEDY], g_ref[N_GREEDY];
    fwd_tokens(toks, N_PROMPT, NV, 3);
    CHECK(fwd_engine(path, kv, 512, toks, N_PROMPT, eng, N_GREEDY, g_eng) == 0);
    CHECK(fwd_reference(path, toks, N_PROMPT, kv_name, N_GREEDY, ref, N_PROMPT * NV, g_ref) == 0);
    const double err = fwd_rel_err(eng, ref, N_PROMPT * NV);
    printf("%-14s kv %s: max|diff|/max|ref| = %.2e\n", name, kv_name, err);
    CHECK(err <= 1e-3);
    int same = memcmp(g_eng, g_ref, sizeof g_eng) == 0;
    if (!same) {
        for (int i = 0; i < N_GREEDY; i++)
            fprintf(stderr, "  greedy %d: engine %d reference %d\n", i, g_eng[i], g_ref[i]);
    }
    CHECK(same);
}

/* Batched prefill, batches of 5 (a ragged last batch) and single tokens agree. */
static void check_batching(void)
{
    struct ntp_gen_params p = fwd_small("qwen2");
    char path[300];
    if (fwd_gen(&p, "batching", path, sizeof path) != 0)
        return;
    int32_t toks[N_PROMPT];
    fwd_tokens(toks, N_PROMPT, NV, 5);
    CHECK(fwd_engine(path, NTP_TYPE_F32, 512, toks, N_PROMPT, eng, 0, NULL) == 0);
    CHECK(fwd_engine(path, NTP_TYPE_F32, 5, toks, N_PROMPT, alt, 0, NULL) == 0);
    double e5 = fwd_rel_err(alt, eng, N_PROMPT * NV);
    CHECK(fwd_engine(path, NTP_TYPE_F32, 1, toks, N_PROMPT, alt, 0, NULL) == 0);
    double e1 = fwd_rel_err(alt, eng, N_PROMPT * NV);
    printf("batching: batch 5 vs 32: %.2e, batch 1 vs 32: %.2e\n", e5, e1);
    CHECK(e5 <= 1e-5);
    CHECK(e1 <= 1e-5);
}

/*
 * A prompt longer than the prefill attention's chunk of cached positions
 * (256, F16 cache): one batch of 512 plus 88, batches of 100 (blocks that
 * start mid-chunk) and single tokens (the per-token attention) agree.
 */
#define N_LONG 600
static float long_a[N_LONG * NV], long_b[N_LONG * NV];

static void check_long_prompt(void)
{
    struct ntp_gen_params p = fwd_small("llama");
    char path[300];
    if (fwd_gen(&p, "long", path, sizeof path) != 0)
        return;
    static int32_t toks[N_LONG];
    fwd_tokens(toks, N_LONG, NV, 13);
    CHECK(fwd_engine_ctx(path, NTP_TYPE_F16, 512, 640, toks, N_LONG, long_a, 0, NULL) == 0);
    CHECK(fwd_engine_ctx(path, NTP_TYPE_F16, 100, 640, toks, N_LONG, long_b, 0, NULL) == 0);
    const double e100 = fwd_rel_err(long_b, long_a, N_LONG * NV);
    CHECK(fwd_engine_ctx(path, NTP_TYPE_F16, 1, 640, toks, N_LONG, long_b, 0, NULL) == 0);
    const double e1 = fwd_rel_err(long_b, long_a, N_LONG * NV);
    printf("long prompt (%d): batch 100 vs 512: %.2e, batch 1 vs 512: %.2e\n", N_LONG, e100, e1);
    CHECK(e100 <= 1e-4);
    CHECK(e1 <= 1e-4);
}

/*
 * Decoding the prompt one call per token gives the batch's last logits, to
 * 1e-5. The cache is F32 here. One token attends per head and a batch goes
 * through sgemm. With an F16 cache, a last-bit difference between those
 * two paths can round a later layer's key to the neighbouring half, which
 * moves the logits by about 1e-5 at random. check_long_prompt covers the
 * F16 cache, to 1e-4.
 */
static void check_token_by_token(void)
{
    struct ntp_gen_params p = fwd_small("llama");
    char path[300];
    if (fwd_gen(&p, "tokbytok", path, sizeof path) != 0)
        return;
    int32_t toks[N_PROMPT];
    fwd_tokens(toks, N_PROMPT, NV, 9);
    CHECK(fwd_engine(path, NTP_TYPE_F32, 512, toks, N_PROMPT, eng, 0, NULL) == 0);
    ntp_model *m = NULL;
    ntp_context *c = NULL;
    ntp_model_params mp = ntp_model_default_params();
    mp.n_threads = 2;
    ntp_context_params cp = ntp_context_default_params();
    cp.kv_type = NTP_TYPE_F32;
    CHECK_OK(ntp_model_load(path, mp, &m));
    CHECK_OK(ntp_context_new(m, cp, &c));
    for (int i = 0; c && i < N_PROMPT; i++) {
        CHECK_OK(ntp_decode(c, &toks[i], 1, false));
        const float *l = ntp_get_logits(c, -1);
        CHECK(l != NULL && ntp_get_logits(c, 0) == l);
        if (l)
            memcpy(alt + (size_t)i * NV, l, sizeof(float) * NV);
    }
    CHECK(c == NULL || ntp_context_pos(c) == N_PROMPT);
    double e = fwd_rel_err(alt, eng, N_PROMPT * NV);
    printf("decode token by token vs batch: %.2e\n", e);
    CHECK(e <= 1e-5);
    ntp_context_reset(c);
    CHECK(c == NULL || ntp_context_pos(c) == 0);
    ntp_context_free(c);
    ntp_model_free(m);
}

/*
 * The local layers' ring cache (config.h, ntp__kv_ring): a window of 40 with
 * batches of 100 (ring of 139 positions, so blocks of the prefill attention
 * wrap around it) and of 1 (ring of 40) against one plain-cache batch of 512,
 * with an F32 cache so that only the order of float sums differs (1e-5).
 */
static void check_swa_ring(void)
{
    struct ntp_gen_params p = fwd_small("gemma3");
    p.n_layer = 6; /* five local layers, then a global one */
    p.n_swa = 40;
    p.n_ctx = 640;
    p.tied_output = true;
    char path[300];
    if (fwd_gen(&p, "swa-ring", path, sizeof path) != 0)
        return;
    static int32_t toks[N_LONG];
    fwd_tokens(toks, N_LONG, NV, 17);
    CHECK(fwd_engine_ctx(path, NTP_TYPE_F32, 512, 640, toks, N_LONG, long_a, 0, NULL) == 0);
    CHECK(fwd_engine_ctx(path, NTP_TYPE_F32, 100, 640, toks, N_LONG, long_b, 0, NULL) == 0);
    const double e100 = fwd_rel_err(long_b, long_a, N_LONG * NV);
    CHECK(fwd_engine_ctx(path, NTP_TYPE_F32, 1, 640, toks, N_LONG, long_b, 0, NULL) == 0);
    const double e1 = fwd_rel_err(long_b, long_a, N_LONG * NV);
    printf("sliding window ring (%d): batch 100 vs 512: %.2e, batch 1 vs 512: %.2e\n", N_LONG, e100,
           e1);
    CHECK(e100 <= 1e-5);
    CHECK(e1 <= 1e-5);
}

int main(void)
{
    fwd_init();
    check_long_prompt();
    struct ntp_gen_params p = fwd_small("llama");
    check_against_reference("llama", &p, "f16", NTP_TYPE_F16);
    check_against_reference("llama-kvf32", &p, "f32", NTP_TYPE_F32);
    p.tied_output = true;
    p.seed = 11;
    check_against_reference("llama-tied", &p, "f16", NTP_TYPE_F16);
    p = fwd_small("qwen2");
    check_against_reference("qwen2", &p, "f16", NTP_TYPE_F16);
    check_against_reference("qwen2-kvf32", &p, "f32", NTP_TYPE_F32);
    p = fwd_small("qwen3");
    p.head_dim = 32; /* q/k width 128 != n_embd 64, as real qwen3 decouples them */
    check_against_reference("qwen3", &p, "f16", NTP_TYPE_F16);
    check_against_reference("qwen3-kvf32", &p, "f32", NTP_TYPE_F32);
    p = fwd_small("gemma3");
    p.n_layer = 6;   /* layers 0-4 local, 5 global */
    p.n_swa = 5;     /* shorter than the prompt */
    p.head_dim = 32; /* key_length sets the attention scale */
    p.tied_output = true;
    check_against_reference("gemma3", &p, "f16", NTP_TYPE_F16);
    check_against_reference("gemma3-kvf32", &p, "f32", NTP_TYPE_F32);
    check_swa_ring();
    check_batching();
    check_token_by_token();
    fwd_cleanup();
    return ntp_test_result("test_forward");
}
