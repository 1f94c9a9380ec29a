/*
 * test_forward_moe.c - mixture-of-experts models (qwen3moe, Mixtral-style
 * llama) against the numpy reference (tests/reference/forward.py):
 *  - F32 weights: the logits of all 32 prompt positions agree to 1e-3
 *    (max |diff| / max |ref|; measured ~1e-6) with the F16 and the F32 KV
 *    cache, and the next 16 greedy tokens are identical;
 *  - the prompt in one batch (the grouped expert products: each expert's
 *    rows read once for all its tokens), in batches of 5 and token by token
 *    (decode: only the chosen experts' rows) give the same logits (1e-5);
 *  - tp 2 and 3, with every expert's width split over the devices or whole
 *    experts dealt out (--moe-split experts), give tp 1's logits (1e-5);
 *  - three sequences interleaved in the batches of one context
 *    (ntp_decode_seqs) give each sequence's logits decoded alone (1e-5);
 *  - every block format of the expert weights, and the Q4_K_M mix, stays
 *    within the dense quantized tests' bound of the reference (5e-2; the
 *    engine quantizes activations as ggml does), and decodes token by token
 *    to the prefill's logits. These models send every token to all four
 *    experts: with a choice of 2 of 8, a token whose second and third
 *    router logits lie within the activations' quantization error of each
 *    other may pick another expert than the float reference (seen: Q4_0 and
 *    Q5_0 at 0.06 .. 0.12), which tests nothing of the kernels.
 * Run once more per SIMD ISA (meson: forward_moe_avx2, forward_moe_avx512),
 * where Q4_0, Q8_0, Q4_K and Q6_K experts are packed.
 */
#include "forward_util.h"

#define N_PROMPT 32
#define N_GREEDY 16
#define NV       300

static float eng[N_PROMPT * NV], ref[N_PROMPT * NV], alt[N_PROMPT * NV];

/* The forward tests' small shape with 8 experts of 32, 2 per token (Mixtral: 4 of n_ff). */
static struct ntp_gen_params moe_small(const char *arch)
{
    struct ntp_gen_params p = fwd_small(arch);
    const bool llama = strcmp(arch, "llama") == 0;
    p.n_expert = llama ? 4 : 8;
    p.n_expert_used = 2;
    p.n_ff_exp = llama ? 0 : 32;
    return p;
}

/*
 * Three sequences in one context, their tokens interleaved in every batch
 * (ntp_decode_seqs: the experts' groups mix sequences), against each
 * sequence decoded alone: the logits of every token agree (1e-5), at tp 2
 * split each way.
 */
static void check_seqs(const char *name, const struct ntp_gen_params *p)
{
    enum { NS = 3, NT = 8 };
    char path[300];
    if (fwd_gen(p, name, path, sizeof path) != 0)
        return;
    int32_t toks[NS][NT], all[NS * NT], seq[NS * NT];
    for (int s = 0; s < NS; s++)
        fwd_tokens(toks[s], NT, NV, 11 + (uint32_t)s);
    for (int i = 0; i < NS * NT; i++) { /* token i of the batch: sequence i % NS */
        seq[i] = i % NS;
        all[i] = toks[i % NS][i / NS];
    }
    for (int split = 0; split < 2; split++) {
        ntp_model_params mp = ntp_model_default_params();
        mp.n_threads = 2;
        mp.tp = 2;
        mp.moe_split = split ? NTP_MOE_SPLIT_EXPERTS : NTP_MOE_SPLIT_FEATURES;
        ntp_context_params cp = ntp_context_default_params();
        cp.n_ctx = 64;
        cp.n_batch = 7; /* batches cut across the sequences */
        cp.kv_type = NTP_TYPE_F32;
        cp.n_seq = NS;
        ntp_model *m = NULL;
        ntp_context *c = NULL;
        double worst = 0;
        if (ntp_model_load(path, mp, &m) == NTP_OK && ntp_context_new(m, cp, &c) == NTP_OK &&
            ntp_decode_seqs(c, all, seq, NS * NT, true) == NTP_OK) {
            for (int i = 0; i < NS * NT; i++)
                memcpy(alt + (size_t)i * NV, ntp_get_logits(c, i), NV * sizeof(float));
            ntp_context_free(c);
            c = NULL;
            cp.n_seq = 1;
            for (int s = 0; s < NS; s++) {
                CHECK_OK(ntp_context_new(m, cp, &c));
                if (c == NULL)
                    break;
                CHECK_OK(ntp_decode(c, toks[s], NT, true));
                for (int t = 0; t < NT; t++) {
                    const double e =
                        fwd_rel_err(alt + (size_t)(t * NS + s) * NV, ntp_get_logits(c, t), NV);
                    worst = e > worst ? e : worst;
                }
                ntp_context_free(c);
                c = NULL;
            }
        } else {
            fprintf(stderr, "%s: %s\n", name, ntp_last_error());
            worst = INFINITY;
        }
        ntp_context_free(c);
        ntp_model_free(m);
        printf("%-14s 3 sequences in one batch vs alone, tp 2 by %s: %.2e\n", name,
               split ? "experts" : "features", worst);
        CHECK(worst <= 1e-5);
    }
}

/* Expert weights in a block format (a type or a mix), against the reference. */
static void check_quant(const char *arch, const char *fmt)
{
    struct ntp_gen_params p = moe_small(arch);
    p.n_embd = 256; /* k-quants need rows of whole 256-element blocks */
    p.head_dim = 64;
    p.n_ff = 256;
    p.n_ff_exp = strcmp(arch, "llama") == 0 ? 0 : 256;
    /* Every token to every expert: the weights still come from the router, but no choice
       hangs on a near-tie that quantized activations would tip (the F32 models above
       check the choosing) */
    p.n_expert = p.n_expert_used = 4;
    if (ntp__gen_parse_mix(fmt, &p) != NTP_OK) {
        fprintf(stderr, "%s: %s\n", fmt, ntp_last_error());
        ntp_test_failures++;
        return;
    }
    char path[300], name[64];
    snprintf(name, sizeof name, "%s-%s", arch, fmt);
    if (fwd_gen(&p, name, path, sizeof path) != 0)
        return;
    int32_t toks[N_PROMPT], g;
    fwd_tokens(toks, N_PROMPT, NV, 4);
    CHECK(fwd_engine(path, NTP_TYPE_F16, 512, toks, N_PROMPT, eng, 0, NULL) == 0);
    CHECK(fwd_reference(path, toks, N_PROMPT, "f16", 0, ref, N_PROMPT * NV, &g) == 0);
    const double err = fwd_rel_err(eng, ref, N_PROMPT * NV);
    /* decode reads the experts through the matvec kernels: the same logits as prefill */
    CHECK(fwd_engine(path, NTP_TYPE_F16, 1, toks, N_PROMPT, alt, 0, NULL) == 0);
    const double e1 = fwd_rel_err(alt, eng, N_PROMPT * NV);
    printf("%-18s max|diff|/max|ref| = %.2e, batch 1 vs 32: %.2e\n", name, err, e1);
    const bool floats = strcmp(fmt, "f16") == 0 || strcmp(fmt, "bf16") == 0;
    CHECK(err <= (floats ? 1e-4 : 5e-2));
    CHECK(e1 <= (floats ? 1e-4 : 5e-2));
}

int main(void)
{
    if (access("/usr/bin/python3", X_OK) != 0 ||
        system("/usr/bin/python3 -c 'import numpy' 2>/dev/null") != 0)
        NTP_TEST_SKIP("needs /usr/bin/python3 with numpy for the reference");
    fwd_init();
    struct ntp_gen_params q = moe_small("qwen3moe"), l = moe_small("llama");
    fwd_check_reference("qwen3moe-f32", &q, N_PROMPT, N_GREEDY, eng, ref);
    fwd_check_reference("mixtral-f32", &l, N_PROMPT, N_GREEDY, eng, ref);
    char path[300];
    fwd_check_batching_tp("qwen3moe-batch", &q, N_PROMPT, 3, eng, alt, path, sizeof path);
    printf("\n");
    fwd_check_batching_tp("mixtral-batch", &l, N_PROMPT, 3, eng, alt, path, sizeof path);
    printf("\n");
    check_seqs("qwen3moe-seqs", &q);
    static const char *const fmts[] = {"f16",  "bf16", "q8_0", "q4_0", "q4_1", "q5_0",  "q5_1",
                                       "q2_k", "q3_k", "q4_k", "q5_k", "q6_k", "q4_k_m"};
    for (size_t i = 0; i < sizeof fmts / sizeof fmts[0]; i++)
        check_quant("qwen3moe", fmts[i]);
    check_quant("llama", "q4_0");
    check_quant("llama", "q4_k_m");
    fwd_cleanup();
    return ntp_test_result("forward_moe");
}
