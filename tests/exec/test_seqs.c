/*
 * test_seqs.c - one context holding several sequences (ntp_decode_seqs, the
 * engine step of continuous batching): three sequences whose prompts arrive
 * at different steps and are decoded in batches mixed with the others'
 * generated tokens must each get the logits a context of its own gives, on
 * one device and on two (tensor parallel), with a dense model, a model with
 * sliding-window layers kept in rings (gemma3), and a quantized KV cache.
 * Also: all_logits rows, a sequence reset, and bad calls that compute
 * nothing.
 *
 * With NTP_TEST_GPU=1 (the seqs_gpu tests of suites gpu and fast) the first
 * layer runs on the GPU and the rest on the CPU devices, a pipeline of two
 * stages: on a real GPU (skipped without one) or on a CPU device standing in
 * for it (NTP_GPU_STAND_IN=cpu). Each sequence must then get the logits it
 * gets alone through the same pipeline.
 */
#include "gpu/gpu_util.h"
#include "model/forward_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N_SEQ  3
#define N_GEN  12
#define N_CTX  96
#define NV     300

static const int prompt_len[N_SEQ] = {10, 12, 5};
static const int prompt_step[N_SEQ] = {0, 1, 2}; /* the step whose batch reads the prompt */

struct ref {
    int32_t prompt[N_SEQ][16];
    int32_t gen[N_SEQ][N_GEN];            /* greedy tokens of each sequence alone */
    float logits[N_SEQ][N_GEN + 1][NV];   /* after the prompt, then after each token */
};

static int32_t gpu_layers; /* 1 with NTP_TEST_GPU=1 */

static ntp_model *load(const char *path, int tp)
{
    ntp_model_params mp = ntp_model_default_params();
    mp.n_threads = 2;
    mp.tp = tp;
    mp.n_gpu_layers = gpu_layers;
    ntp_model *m = NULL;
    CHECK_OK(ntp_model_load(path, mp, &m));
    return m;
}

static ntp_context *context(ntp_model *m, enum ntp_type kv, int32_t n_seq)
{
    ntp_context_params cp = ntp_context_default_params();
    cp.n_ctx = N_CTX;
    cp.n_batch = 32;
    cp.kv_type = kv;
    cp.n_seq = n_seq;
    ntp_context *c = NULL;
    CHECK_OK(ntp_context_new(m, cp, &c));
    return c;
}

/* Each sequence alone in a context of one: its prompt at once, then greedy tokens. */
static void alone(ntp_model *m, enum ntp_type kv, struct ref *r)
{
    ntp_context *c = context(m, kv, 1);
    for (int q = 0; q < N_SEQ && c; q++) {
        fwd_tokens(r->prompt[q], prompt_len[q], NV, 11u + (uint32_t)q);
        ntp_context_reset(c);
        CHECK_OK(ntp_decode(c, r->prompt[q], prompt_len[q], false));
        for (int k = 0; k <= N_GEN; k++) {
            memcpy(r->logits[q][k], ntp_get_logits(c, -1), sizeof r->logits[q][k]);
            if (k == N_GEN)
                break;
            r->gen[q][k] = fwd_argmax(r->logits[q][k], NV);
            CHECK_OK(ntp_decode(c, &r->gen[q][k], 1, false));
        }
    }
    ntp_context_free(c);
}

/*
 * All three in one context, as the scheduler runs them: each step's batch is
 * the prompt arriving at that step, then the next token of every sequence
 * already generating (the tokens the sequence chose alone, so one rounding
 * difference cannot send the texts apart). Returns the largest relative
 * difference of any logits row from the sequence's own.
 */
static double together(ntp_model *m, enum ntp_type kv, const struct ref *r)
{
    ntp_context *c = context(m, kv, N_SEQ);
    int32_t tok[32], seq[32];
    int got[N_SEQ] = {0}; /* logits rows compared so far */
    double worst = 0;
    for (int step = 0; c && step < N_GEN + N_SEQ; step++) {
        int n = 0, first[N_SEQ];
        for (int q = 0; q < N_SEQ; q++)
            if (prompt_step[q] == step)
                for (int i = 0; i < prompt_len[q]; i++, n++) {
                    tok[n] = r->prompt[q][i];
                    seq[n] = q;
                }
        for (int q = 0; q < N_SEQ; q++) {
            first[q] = -1;
            if (prompt_step[q] < step && got[q] <= N_GEN && got[q] >= 1) {
                tok[n] = r->gen[q][got[q] - 1];
                seq[n++] = q;
            }
        }
        if (n == 0)
            break;
        CHECK_OK(ntp_decode_seqs(c, tok, seq, n, false));
        for (int i = 0; i < n; i++)
            first[seq[i]] = i; /* each sequence's last token keeps its logits */
        for (int q = 0; q < N_SEQ; q++) {
            if (first[q] < 0 || got[q] > N_GEN)
                continue;
            const float *l = ntp_get_logits(c, first[q]);
            CHECK(l != NULL);
            if (l) {
                const double e = fwd_rel_err(l, r->logits[q][got[q]], NV);
                worst = e > worst ? e : worst;
            }
            got[q]++;
        }
        for (int i = 0; i < n; i++) /* the other rows were not kept */
            CHECK((ntp_get_logits(c, i) != NULL) == (first[seq[i]] == i));
    }
    for (int q = 0; q < N_SEQ; q++) {
        CHECK(got[q] == N_GEN + 1);
        CHECK(ntp_context_seq_pos(c, q) == prompt_len[q] + N_GEN);
    }
    ntp_context_free(c);
    return worst;
}

/* every row's logits with all_logits, a reset sequence starting over, and bad calls */
static void rows_reset_errors(ntp_model *m, const struct ref *r)
{
    ntp_context *c = context(m, NTP_TYPE_F32, 2);
    if (!c)
        return;
    int32_t tok[20], seq[20];
    for (int i = 0; i < 10; i++) { /* sequence 1's prompt and sequence 0's, interleaved */
        tok[2 * i] = r->prompt[1][i];
        seq[2 * i] = 1;
        tok[2 * i + 1] = r->prompt[0][i];
        seq[2 * i + 1] = 0;
    }
    CHECK_OK(ntp_decode_seqs(c, tok, seq, 20, true));
    for (int i = 0; i < 20; i++)
        CHECK(ntp_get_logits(c, i) != NULL);
    CHECK(fwd_rel_err(ntp_get_logits(c, 19), r->logits[0][0], NV) < 1e-4);
    CHECK(ntp_context_seq_pos(c, 0) == 10 && ntp_context_seq_pos(c, 1) == 10);
    /* sequence 1 starts over with sequence 2's prompt; sequence 0 goes on */
    ntp_context_seq_reset(c, 1);
    CHECK(ntp_context_seq_pos(c, 1) == 0 && ntp_context_seq_pos(c, 0) == 10);
    int n = 0;
    for (int i = 0; i < prompt_len[2]; i++, n++) {
        tok[n] = r->prompt[2][i];
        seq[n] = 1;
    }
    tok[n] = r->gen[0][0];
    seq[n++] = 0;
    CHECK_OK(ntp_decode_seqs(c, tok, seq, n, false));
    CHECK(fwd_rel_err(ntp_get_logits(c, prompt_len[2] - 1), r->logits[2][0], NV) < 1e-4);
    CHECK(fwd_rel_err(ntp_get_logits(c, -1), r->logits[0][1], NV) < 1e-4);
    /* bad calls: a sequence out of range, one sequence past n_ctx; nothing moves */
    const int32_t bad_seq[2] = {0, 2};
    CHECK_STATUS(ntp_decode_seqs(c, tok, bad_seq, 2, false), NTP_E_INVALID_ARG);
    CHECK(strstr(ntp_last_error(), "sequence 2") != NULL);
    static int32_t many[N_CTX], many_seq[N_CTX];
    for (int i = 0; i < N_CTX; i++)
        many_seq[i] = i < 4 ? 1 : 0; /* sequence 0 (at 11) gets 92 more: past 96 */
    CHECK_STATUS(ntp_decode_seqs(c, many, many_seq, N_CTX, false), NTP_E_OVERFLOW);
    CHECK(ntp_context_seq_pos(c, 0) == 11 && ntp_context_seq_pos(c, 1) == prompt_len[2]);
    CHECK(ntp_context_seq_pos(c, 2) == -1 && ntp_context_n_seq(c) == 2);
    CHECK(ntp_get_logits(c, 0) == NULL); /* a failed call keeps no rows */
    ntp_context_free(c);
}

static void check_model(const char *path, enum ntp_type kv, double tol, bool extra)
{
    static struct ref r;
    if (gpu_layers && !gpu_stand_in()) /* the GPU's kernels for one token and for a batch */
        tol = 1e-2;
    for (int tp = 1; tp <= 2; tp++) {
        ntp_model *m = load(path, tp);
        if (!m)
            continue;
        alone(m, kv, &r);
        const double e = together(m, kv, &r);
        printf("%s kv %s tp %d: largest difference %.2e\n", strrchr(path, '/') + 1,
               ntp_type_name(kv), tp, e);
        CHECK(e < tol);
        if (extra && tp == 1)
            rows_reset_errors(m, &r);
        ntp_model_free(m);
    }
}

int main(void)
{
    const char *gpu = getenv("NTP_TEST_GPU");
    if (gpu && strcmp(gpu, "1") == 0) {
        gpu_require(true);
        gpu_layers = 1;
    }
    fwd_init();
    char path[256];
    struct ntp_gen_params p = fwd_small("llama");
    p.type = NTP_TYPE_F32;
    if (fwd_gen(&p, "llama_f32", path, sizeof path) == 0)
        check_model(path, NTP_TYPE_F32, 1e-4, true);
    p = fwd_small("gemma3"); /* five of six layers local: their caches are rings */
    p.n_layer = 3;
    p.n_swa = 6;
    p.type = NTP_TYPE_F32;
    if (fwd_gen(&p, "gemma3_swa", path, sizeof path) == 0)
        check_model(path, NTP_TYPE_F16, 1e-4, false);
    if (gpu_layers) { /* the GPU keeps an F16 or F32 cache */
        fwd_cleanup();
        return ntp_test_result("test_seqs");
    }
    p = fwd_small("qwen3");
    p.head_dim = 32;
    p.type = NTP_TYPE_Q4_0;
    if (fwd_gen(&p, "qwen3_q4_0", path, sizeof path) == 0)
        check_model(path, NTP_TYPE_Q8_0, 1e-3, false);
    fwd_cleanup();
    return ntp_test_result("test_seqs");
}
