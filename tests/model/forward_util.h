/*
 * forward_util.h - helpers of the forward-pass tests: generate a small model
 * with the random-weight generator, run it with the engine, run the numpy
 * reference (tests/reference/forward.py) on the same tokens, and compare.
 *
 * Agreement metric: max over all compared logits of |engine - reference|,
 * divided by max |reference| (so one number per model, insensitive to the
 * logits' overall scale).
 */
#ifndef NTP_TESTS_FORWARD_UTIL_H
#define NTP_TESTS_FORWARD_UTIL_H

#include "model/gen.h"
#include "test.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FWD_MAX_TOK 64

static char fwd_tmpdir[64];
static int32_t fwd_moe_split; /* a mixture of experts' split in fwd_engine_tp (ntp.h) */

/* A fresh temporary folder for this test's files (removed by fwd_cleanup). */
static inline void fwd_init(void)
{
    snprintf(fwd_tmpdir, sizeof fwd_tmpdir, "/tmp/ntp_fwd_XXXXXX");
    if (mkdtemp(fwd_tmpdir) == NULL) {
        perror("mkdtemp");
        exit(1);
    }
}

static inline void fwd_cleanup(void)
{
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", fwd_tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", fwd_tmpdir);
}

/* Small model parameters: fast in C and numpy alike. */
static inline struct ntp_gen_params fwd_small(const char *arch)
{
    struct ntp_gen_params p = ntp__gen_default_params();
    p.arch = arch;
    p.n_embd = 64;
    p.n_layer = 2;
    p.n_head = 4;
    p.n_head_kv = 2;
    p.n_ff = 96;
    p.n_vocab = 300;
    p.n_ctx = 128;
    p.seed = 7;
    return p;
}

/*
 * A small deepseek2: 3 blocks (the first dense, then 8 experts of 32 and a
 * shared one), 4 heads of 24 (8 of them RoPE) with values of 16 over a
 * latent of 32.
 */
static inline struct ntp_gen_params fwd_small_mla(void)
{
    struct ntp_gen_params p = fwd_small("deepseek2");
    p.n_layer = 3;
    p.n_head_kv = 1;
    p.head_dim = 24;
    p.rope_dim = 8;
    p.v_head_dim = 16;
    p.kv_lora = 32;
    p.n_expert = 8;
    p.n_expert_used = 2;
    p.n_ff_exp = 32;
    p.n_layer_dense = 1;
    p.n_expert_shared = 1;
    return p;
}

/* Write the model described by p to <tmp>/<name>.gguf; path receives the file name. */
static inline int fwd_gen(const struct ntp_gen_params *p, const char *name, char *path, size_t size)
{
    snprintf(path, size, "%s/%s.gguf", fwd_tmpdir, name);
    ntp_status s = ntp__model_gen(p, path);
    if (s != NTP_OK) {
        fprintf(stderr, "generating %s: %s\n", name, ntp_last_error());
        ntp_test_failures++;
        return -1;
    }
    return 0;
}

/* Deterministic prompt tokens in [0, n_vocab). */
static inline void fwd_tokens(int32_t *t, int n, int32_t n_vocab, uint32_t seed)
{
    uint32_t x = seed * 2654435761u + 12345u;
    for (int i = 0; i < n; i++) {
        x = x * 1664525u + 1013904223u;
        t[i] = (int32_t)((x >> 8) % (uint32_t)n_vocab);
    }
}

static inline int32_t fwd_argmax(const float *x, int32_t n)
{
    int32_t best = 0;
    for (int32_t i = 1; i < n; i++)
        if (x[i] > x[best])
            best = i;
    return best;
}

/*
 * Run the reference: logits of every prompt position into ref (n * n_vocab
 * floats) and n_greedy greedy tokens into gen. kv: "f16" or "f32".
 */
static inline int fwd_reference(const char *model, const int32_t *toks, int n, const char *kv,
                                int n_greedy, float *ref, size_t n_floats, int32_t *gen)
{
    char tokstr[FWD_MAX_TOK * 8] = "", out[300], cmd[2048];
    for (int i = 0; i < n; i++)
        snprintf(tokstr + strlen(tokstr), sizeof tokstr - strlen(tokstr), "%s%d", i ? " " : "",
                 (int)toks[i]);
    snprintf(out, sizeof out, "%s/ref.bin", fwd_tmpdir);
    /* NTP_REF_PYTHON: another interpreter with numpy (a GPU machine's, say). */
    const char *py = getenv("NTP_REF_PYTHON");
    snprintf(cmd, sizeof cmd,
             "%s %s/tests/reference/forward.py '%s' --tokens '%s' --all-logits "
             "--logits-out '%s' --kv %s --greedy %d",
             py && *py ? py : "/usr/bin/python3", NTP_SOURCE_ROOT, model, tokstr, out, kv,
             n_greedy);
    FILE *f = popen(cmd, "r");
    if (f == NULL)
        return -1;
    for (int i = 0; i < n_greedy; i++)
        if (fscanf(f, "%d", &gen[i]) != 1)
            gen[i] = -1;
    if (pclose(f) != 0) {
        fprintf(stderr, "reference failed: %s\n", cmd);
        return -1;
    }
    FILE *b = fopen(out, "rb");
    if (b == NULL)
        return -1;
    size_t got = fread(ref, sizeof(float), n_floats, b);
    fclose(b);
    return got == n_floats ? 0 : -1;
}

/* max |a - ref| / max |ref|; infinity when a holds a non-finite value. */
static inline double fwd_rel_err(const float *a, const float *ref, size_t n)
{
    double md = 0, mr = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(a[i]))
            return INFINITY;
        double d = fabs((double)a[i] - ref[i]);
        md = d > md ? d : md;
        mr = fabs(ref[i]) > mr ? fabs(ref[i]) : mr;
    }
    return mr > 0 ? md / mr : md;
}

/*
 * Run the engine: all prompt logits into out (n * n_vocab floats) and, when
 * gen is not NULL, n_greedy greedy tokens. batch: n_batch of the context
 * (1 decodes token by token); n_ctx: its positions.
 */
static inline int fwd_engine_tp(const char *model, enum ntp_type kv, int32_t n_batch, int32_t n_ctx,
                                int tp, const int32_t *toks, int n, float *out, int n_greedy,
                                int32_t *gen)
{
    ntp_model *m = NULL;
    ntp_context *c = NULL;
    ntp_model_params mp = ntp_model_default_params();
    mp.n_threads = 2;
    mp.tp = tp;
    mp.moe_split = fwd_moe_split;
    ntp_context_params cp = ntp_context_default_params();
    cp.kv_type = kv;
    cp.n_batch = n_batch;
    cp.n_ctx = n_ctx;
    int rc = -1;
    if (ntp_model_load(model, mp, &m) != NTP_OK || ntp_context_new(m, cp, &c) != NTP_OK)
        goto done;
    const int32_t nv = ntp_model_n_vocab(m);
    if (ntp_decode(c, toks, n, true) != NTP_OK)
        goto done;
    for (int i = 0; i < n; i++)
        memcpy(out + (size_t)i * nv, ntp_get_logits(c, i), (size_t)nv * sizeof(float));
    for (int i = 0; i < n_greedy && gen; i++) {
        gen[i] = fwd_argmax(ntp_get_logits(c, -1), nv);
        if (i + 1 < n_greedy && ntp_decode(c, &gen[i], 1, false) != NTP_OK)
            goto done;
    }
    rc = 0;
done:
    if (rc != 0)
        fprintf(stderr, "engine failed on %s (kv %s, tp %d): %s\n", model, ntp_type_name(kv), tp,
                ntp_last_error());
    ntp_context_free(c);
    ntp_model_free(m);
    return rc;
}

/* fwd_engine_tp on one device. */
static inline int fwd_engine_ctx(const char *model, enum ntp_type kv, int32_t n_batch,
                                 int32_t n_ctx, const int32_t *toks, int n, float *out,
                                 int n_greedy, int32_t *gen)
{
    return fwd_engine_tp(model, kv, n_batch, n_ctx, 1, toks, n, out, n_greedy, gen);
}

/* fwd_engine_ctx with a 128-position context. */
static inline int fwd_engine(const char *model, enum ntp_type kv, int32_t n_batch,
                             const int32_t *toks, int n, float *out, int n_greedy, int32_t *gen)
{
    return fwd_engine_ctx(model, kv, n_batch, 128, toks, n, out, n_greedy, gen);
}

/*
 * The model p against the reference, with the F16 and the F32 cache: the
 * logits of all n prompt positions agree to 1e-3 (max |diff| / max |ref|),
 * and the next n_greedy greedy tokens are identical. eng and ref hold n *
 * n_vocab floats each.
 */
static inline void fwd_check_reference(const char *name, const struct ntp_gen_params *p, int n,
                                       int n_greedy, float *eng, float *ref)
{
    char path[300];
    if (fwd_gen(p, name, path, sizeof path) != 0)
        return;
    static const struct {
        const char *name;
        enum ntp_type type;
    } kvs[] = {{"f16", NTP_TYPE_F16}, {"f32", NTP_TYPE_F32}};
    const size_t nf = (size_t)n * (size_t)p->n_vocab;
    for (size_t i = 0; i < sizeof kvs / sizeof kvs[0]; i++) {
        int32_t toks[FWD_MAX_TOK], g_eng[FWD_MAX_TOK], g_ref[FWD_MAX_TOK];
        fwd_tokens(toks, n, (int32_t)p->n_vocab, 3);
        CHECK(fwd_engine(path, kvs[i].type, 512, toks, n, eng, n_greedy, g_eng) == 0);
        CHECK(fwd_reference(path, toks, n, kvs[i].name, n_greedy, ref, nf, g_ref) == 0);
        const double err = fwd_rel_err(eng, ref, nf);
        printf("%-16s kv %s: max|diff|/max|ref| = %.2e\n", name, kvs[i].name, err);
        CHECK(err <= 1e-3);
        const bool same = memcmp(g_eng, g_ref, (size_t)n_greedy * sizeof *g_eng) == 0;
        for (int j = 0; !same && j < n_greedy; j++)
            fprintf(stderr, "  greedy %d: engine %d reference %d\n", j, g_eng[j], g_ref[j]);
        CHECK(same);
    }
}

/*
 * The mixture of experts p with an F32 cache: the n prompt tokens (seed 5)
 * in one batch, in batches of 5 and one by one, and at tp 2 .. max_tp with
 * each expert cut, all within 1e-5 of the one batch on one device (its
 * logits left in eng; alt is scratch, both n * n_vocab floats). The file's
 * name goes to path. Prints one line, without its newline.
 */
static inline void fwd_check_batching_tp(const char *name, const struct ntp_gen_params *p, int n,
                                         int max_tp, float *eng, float *alt, char *path,
                                         size_t size)
{
    if (fwd_gen(p, name, path, size) != 0)
        return;
    const size_t nf = (size_t)n * (size_t)p->n_vocab;
    int32_t toks[FWD_MAX_TOK];
    fwd_tokens(toks, n, (int32_t)p->n_vocab, 5);
    CHECK(fwd_engine(path, NTP_TYPE_F32, 512, toks, n, eng, 0, NULL) == 0);
    CHECK(fwd_engine(path, NTP_TYPE_F32, 5, toks, n, alt, 0, NULL) == 0);
    const double e5 = fwd_rel_err(alt, eng, nf);
    CHECK(fwd_engine(path, NTP_TYPE_F32, 1, toks, n, alt, 0, NULL) == 0);
    const double e1 = fwd_rel_err(alt, eng, nf);
    printf("%-16s batch 5 vs %d: %.2e, batch 1 vs %d: %.2e", name, n, e5, n, e1);
    CHECK(e5 <= 1e-5 && e1 <= 1e-5);
    for (int tp = 2; tp <= max_tp; tp++)
        for (int split = 0; split < 2; split++) {
            fwd_moe_split = split ? NTP_MOE_SPLIT_EXPERTS : NTP_MOE_SPLIT_FEATURES;
            CHECK(fwd_engine_tp(path, NTP_TYPE_F32, 512, 128, tp, toks, n, alt, 0, NULL) == 0);
            const double e = fwd_rel_err(alt, eng, nf);
            printf(", tp %d %s: %.2e", tp, split ? "experts" : "features", e);
            CHECK(e <= 1e-5);
        }
    fwd_moe_split = NTP_MOE_SPLIT_FEATURES;
}

#endif /* NTP_TESTS_FORWARD_UTIL_H */
