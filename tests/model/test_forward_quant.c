/*
 * test_forward_quant.c - models whose weights are in every block format run,
 * give finite logits, and stay close to the numpy reference, which
 * dequantizes the same weights to float and multiplies them by float
 * activations. The engine quantizes activations to Q8_0/Q8_1/Q8_K first (as
 * ggml does), so the agreement is looser than for F32 weights; the bounds
 * below (max |diff| / max |ref| over all 32 prompt positions) are about 3x
 * the errors measured when they were set (1.2e-2 .. 1.9e-2 for every block
 * format, Q8_0 included: the activation quantization dominates); F16 and BF16
 * weights take float activations and agree to ~1e-6.
 */
#include "forward_util.h"

#define N_PROMPT 32
#define NV       300

static float eng[N_PROMPT * NV], ref[N_PROMPT * NV];

struct fmt_case {
    const char *name; /* type or mix name for ntp__gen_parse_mix */
    double bound;     /* largest accepted max|diff|/max|ref| */
};

static const struct fmt_case cases[] = {
    {"f16", 1e-4},  {"bf16", 1e-4}, {"q8_0", 5e-2},   {"q4_0", 5e-2}, {"q4_1", 5e-2},
    {"q5_0", 5e-2}, {"q5_1", 5e-2}, {"q2_k", 5e-2},   {"q3_k", 5e-2}, {"q4_k", 5e-2},
    {"q5_k", 5e-2}, {"q6_k", 5e-2}, {"q4_k_m", 5e-2},
};

static void run_case(const struct fmt_case *fc, const char *arch)
{
    struct ntp_gen_params p = fwd_small(arch);
    p.n_embd = 256; /* k-quants need rows that are whole 256-element blocks */
    p.n_ff = 512;
    p.head_dim = 64;
    if (ntp__gen_parse_mix(fc->name, &p) != NTP_OK) {
        fprintf(stderr, "%s: %s\n", fc->name, ntp_last_error());
        ntp_test_failures++;
        return;
    }
    char path[300], name[64];
    snprintf(name, sizeof name, "%s-%s", arch, fc->name);
    if (fwd_gen(&p, name, path, sizeof path) != 0)
        return;
    int32_t toks[N_PROMPT];
    fwd_tokens(toks, N_PROMPT, NV, 4);
    int32_t g;
    CHECK(fwd_engine(path, NTP_TYPE_F16, 512, toks, N_PROMPT, eng, 0, NULL) == 0);
    CHECK(fwd_reference(path, toks, N_PROMPT, "f16", 0, ref, N_PROMPT * NV, &g) == 0);
    const double err = fwd_rel_err(eng, ref, N_PROMPT * NV);
    printf("%-16s max|diff|/max|ref| = %.2e (bound %.0e)\n", name, err, fc->bound);
    CHECK(isfinite(err));
    CHECK(err <= fc->bound);
}

int main(void)
{
    fwd_init();
    static const char *const archs[] = {"llama", "qwen2", "qwen3"};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        run_case(&cases[i], archs[i % 3]);
    fwd_cleanup();
    return ntp_test_result("test_forward_quant");
}
