/*
 * test_rope_scaling.c - RoPE scaling end to end against the numpy reference
 * (tests/reference/forward.py, which mirrors llama.cpp's hparams/cparams and
 * ggml's rope_yarn): for linear, YaRN (with and without an original context
 * and an attention factor), linear with an attention factor, llama3
 * rope_freqs, type "none", on llama (normal
 * RoPE) and qwen2/qwen3 (NeoX), the engine's logits of a 48-token prompt
 * agree to 1e-3 (max |diff| / max |ref|) and 12 greedy tokens are identical.
 * Each scaled model is also run unscaled (same weights) to show the scaling
 * changed the logits, so an engine ignoring the metadata cannot pass. The
 * generator's small random weights give nearly uniform attention, where
 * positions hardly matter, so Q and K are scaled up first (sharpen()).
 * Also checks what `numatp gen` writes: the rope.scaling.* keys, llama3's
 * frequency factors, and its refusals. argv[1] is the numatp binary.
 */
#include "forward_util.h"

#include <sys/wait.h>

#define N_PROMPT 48
#define N_GREEDY 12
#define NV       300

static const char *numatp;
static float eng[N_PROMPT * NV], ref[N_PROMPT * NV], plain[N_PROMPT * NV];

/* One scaled model: which parameters differ from fwd_small(arch). */
struct rope_case {
    const char *name;
    const char *arch;
    enum ntp_gen_rope_scaling scaling;
    float scale;
    int64_t orig_ctx;
    float attn_factor;
    bool freqs;
    bool changes; /* whether the logits must differ from the unscaled model's */
};

/*
 * Rewrite path with every attn_q/attn_k weight (F32) multiplied by 6, so the
 * attention scores grow 36-fold and the rotation angles decide where each
 * query looks.
 */
static int sharpen(const char *path)
{
    char tmp[320];
    snprintf(tmp, sizeof tmp, "%s.sharp", path);
    ntp_gguf *g = NULL;
    ntp_gguf_writer *w = NULL;
    ntp_status s = ntp_gguf_open(path, &g);
    if (s == NTP_OK)
        s = ntp_gguf_writer_new(&w);
    for (int64_t i = 0; s == NTP_OK && i < ntp_gguf_n_kv(g); i++)
        s = ntp_gguf_writer_set_value(w, ntp_gguf_kv_key(g, i), ntp_gguf_kv_value(g, i));
    for (int64_t i = 0; s == NTP_OK && i < ntp_gguf_n_tensors(g); i++) {
        const ntp_gguf_tensor *t = ntp_gguf_tensor_at(g, i);
        const bool qk = strstr(t->name, "attn_q.weight") || strstr(t->name, "attn_k.weight");
        if (!qk || t->type != NTP_TYPE_F32) {
            s = ntp_gguf_writer_add_tensor(w, t->name, t->type, t->n_dims, t->ne, t->data);
            continue;
        }
        const size_t n = (size_t)(t->size / sizeof(float));
        float *x = malloc(t->size);
        if (x == NULL)
            exit(1);
        memcpy(x, t->data, t->size);
        for (size_t j = 0; j < n; j++)
            x[j] *= 6.0f;
        s = ntp_gguf_writer_add_tensor(w, t->name, t->type, t->n_dims, t->ne, x);
        free(x);
    }
    if (s == NTP_OK)
        s = ntp_gguf_writer_write_file(w, tmp);
    ntp_gguf_writer_free(w);
    ntp_gguf_free(g);
    if (s == NTP_OK && rename(tmp, path) != 0)
        s = NTP_E_IO;
    if (s != NTP_OK) {
        fprintf(stderr, "sharpening %s: %s\n", path, ntp_last_error());
        ntp_test_failures++;
        return -1;
    }
    return 0;
}

static struct ntp_gen_params case_params(const struct rope_case *c, bool scaled)
{
    struct ntp_gen_params p = fwd_small(c->arch);
    if (strcmp(c->arch, "qwen3") == 0)
        p.head_dim = 32;
    if (scaled) {
        p.rope_scaling = c->scaling;
        p.rope_scale = c->scale;
        p.rope_orig_ctx = c->orig_ctx;
        p.rope_attn_factor = c->attn_factor;
        p.rope_freqs = c->freqs;
    }
    return p;
}

static void check_case(const struct rope_case *c)
{
    char path[300], name[64];
    struct ntp_gen_params p = case_params(c, true);
    if (fwd_gen(&p, c->name, path, sizeof path) != 0 || sharpen(path) != 0)
        return;
    int32_t toks[N_PROMPT], g_eng[N_GREEDY], g_ref[N_GREEDY];
    fwd_tokens(toks, N_PROMPT, NV, 21);
    CHECK(fwd_engine(path, NTP_TYPE_F16, 512, toks, N_PROMPT, eng, N_GREEDY, g_eng) == 0);
    CHECK(fwd_reference(path, toks, N_PROMPT, "f16", N_GREEDY, ref, N_PROMPT * NV, g_ref) == 0);
    const double err = fwd_rel_err(eng, ref, N_PROMPT * NV);
    /* The unscaled twin has the same weights: tensors are seeded by their names. */
    p = case_params(c, false);
    snprintf(name, sizeof name, "%s-plain", c->name);
    double moved = 0;
    if (fwd_gen(&p, name, path, sizeof path) == 0 && sharpen(path) == 0 &&
        fwd_engine(path, NTP_TYPE_F16, 512, toks, N_PROMPT, plain, 0, NULL) == 0)
        moved = fwd_rel_err(plain, eng, N_PROMPT * NV);
    printf("%-14s max|diff|/max|ref| = %.2e, change vs unscaled = %.2e\n", c->name, err, moved);
    CHECK(err <= 1e-3);
    CHECK(c->changes ? moved >= 3e-2 && moved >= 1e3 * err : moved <= 1e-6);
    const bool same = memcmp(g_eng, g_ref, sizeof g_eng) == 0;
    for (int i = 0; !same && i < N_GREEDY; i++)
        fprintf(stderr, "  greedy %d: engine %d reference %d\n", i, g_eng[i], g_ref[i]);
    CHECK(same);
}

/* llama3's factors for n_rot 16, base 10000, factor 8, original context 64, in double. */
static void check_llama3_factors(const float *got, int64_t n)
{
    CHECK(n == 8);
    for (int64_t i = 0; i < n && i < 8; i++) {
        const double freq = pow(10000.0, -2.0 * (double)i / 16.0);
        const double wavelen = 2 * M_PI / freq; /* 6.28, 19.9, 62.8, 199, ... */
        double want;
        if (wavelen < 64.0 / 4.0)
            want = 1.0;
        else if (wavelen > 64.0)
            want = 8.0;
        else {
            const double smooth = (64.0 / wavelen - 1.0) / (4.0 - 1.0);
            want = 1.0 / ((1.0 - smooth) / 8.0 + smooth);
        }
        if (fabs(got[i] - want) > 1e-5 * want) {
            fprintf(stderr, "  rope_freqs[%lld] = %g, expected %g\n", (long long)i, (double)got[i],
                    want);
            ntp_test_failures++;
        }
    }
    /* pair 0 is untouched, pair 1 and 2 are smoothed, the rest divided by 8 */
    CHECK(got[0] == 1.0f && got[1] > 1.0f && got[2] > got[1] && got[2] < 8.0f && got[3] == 8.0f);
}

/* Run a command line; its exit status (or -1). */
static int run_status(const char *cmd)
{
    const int st = system(cmd);
    return st != -1 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* `numatp gen` with the scaling options writes the keys the loader and reference read. */
static void check_gen_cli(void)
{
    char path[300], cmd[1024];
    snprintf(path, sizeof path, "%s/cli-yarn.gguf", fwd_tmpdir);
    snprintf(cmd, sizeof cmd,
             "%s gen -q -o '%s' --dim 64 --heads 4 --kv-heads 2 --ff 96 --vocab 300 --ctx 128 "
             "--rope-scaling yarn --rope-scale 4 --rope-orig-ctx 4096 --rope-attn-factor 0.9",
             numatp, path);
    CHECK(run_status(cmd) == 0);
    ntp_gguf *g = NULL;
    CHECK_OK(ntp_gguf_open(path, &g));
    if (g) {
        const char *type = NULL;
        float factor = 0, attn = 0;
        int64_t orig = 0;
        CHECK_OK(ntp_gguf_get_str(g, "llama.rope.scaling.type", &type));
        CHECK(type && strcmp(type, "yarn") == 0);
        CHECK_OK(ntp_gguf_get_f32(g, "llama.rope.scaling.factor", &factor));
        CHECK_OK(ntp_gguf_get_f32(g, "llama.rope.scaling.attn_factor", &attn));
        CHECK_OK(ntp_gguf_get_i64(g, "llama.rope.scaling.original_context_length", &orig));
        CHECK(factor == 4.0f && attn == 0.9f && orig == 4096);
        CHECK(ntp_gguf_find_tensor(g, "rope_freqs.weight") == NULL);
        ntp_gguf_free(g);
    }
    snprintf(path, sizeof path, "%s/cli-llama3.gguf", fwd_tmpdir);
    snprintf(cmd, sizeof cmd,
             "%s gen -q -o '%s' --dim 64 --heads 4 --kv-heads 2 --ff 96 --vocab 300 "
             "--rope-freqs --rope-orig-ctx 64",
             numatp, path);
    CHECK(run_status(cmd) == 0);
    CHECK_OK(ntp_gguf_open(path, &g));
    if (g) {
        const ntp_gguf_tensor *t = ntp_gguf_find_tensor(g, "rope_freqs.weight");
        CHECK(t != NULL && t->type == NTP_TYPE_F32 && t->n_dims == 1);
        if (t)
            check_llama3_factors((const float *)t->data, t->ne[0]);
        CHECK(ntp_gguf_find_key(g, "llama.rope.scaling.type") < 0);
        ntp_gguf_free(g);
    }
    /* refusals: usage errors, exit 2, nothing written */
    const char *bad[] = {"--rope-scaling cubic", "--rope-scale 4", "--arch qwen2 --rope-freqs",
                         "--rope-scaling linear --rope-scale -1", "--rope-attn-factor 2"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(cmd, sizeof cmd, "%s gen -q -o '%s/bad.gguf' %s 2>/dev/null", numatp, fwd_tmpdir,
                 bad[i]);
        const int rc = run_status(cmd);
        if (rc != 2)
            fprintf(stderr, "  numatp gen %s: exit %d, expected 2\n", bad[i], rc);
        CHECK(rc == 2);
    }
    snprintf(path, sizeof path, "%s/bad.gguf", fwd_tmpdir);
    CHECK(access(path, F_OK) != 0);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: test_rope_scaling NUMATP\n");
        return 1;
    }
    numatp = argv[1];
    fwd_init();
    static const struct rope_case cases[] = {
        {"linear", "llama", NTP_GEN_ROPE_LINEAR, 4.0f, 0, 0, false, true},
        /* original context 4096: the ramp runs over pairs 2..6 of 8 */
        {"yarn", "llama", NTP_GEN_ROPE_YARN, 4.0f, 4096, 0, false, true},
        /* no original context: the file's 128; an attention factor; NeoX */
        {"yarn-qwen2", "qwen2", NTP_GEN_ROPE_YARN, 8.0f, 0, 0.8f, false, true},
        {"linear-qwen3", "qwen3", NTP_GEN_ROPE_LINEAR, 2.0f, 0, 0, false, true},
        /* llama3 factors alone, then with YaRN on top of them */
        {"llama3", "llama", NTP_GEN_ROPE_UNSET, 8.0f, 64, 0, true, true},
        {"llama3-yarn", "llama", NTP_GEN_ROPE_YARN, 2.0f, 64, 0, true, true},
        /* type none: llama.cpp ignores the factor, so the logits do not move */
        {"none", "llama", NTP_GEN_ROPE_NONE, 4.0f, 0, 0, false, false},
        /* llama.cpp applies rope.scaling.attn_factor to every scaling type */
        {"linear-attn", "llama", NTP_GEN_ROPE_LINEAR, 2.0f, 0, 0.7f, false, true},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        check_case(&cases[i]);
    check_gen_cli();
    fwd_cleanup();
    return ntp_test_result("test_rope_scaling");
}
