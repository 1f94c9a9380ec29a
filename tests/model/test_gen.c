/*
 * test_gen.c - the random-weight generator, the architecture table, the
 * synthetic vocabulary and the topology object:
 *  - each architecture in several types re-opens with the exact metadata,
 *    tensor names, shapes and types (written out here, not taken from the
 *    table under test);
 *  - the Q4_K_M mix picks llama-quantize's types layer by layer;
 *  - same seed, same bytes; another seed, other bytes; weights scaled as asked;
 *  - bad parameters fail with messages that name the problem;
 *  - mixture-of-experts files (qwen3moe, Mixtral-style llama) have the
 *    router and 3-D expert tensors instead of the dense FFN, and the keys;
 *  - the synthetic vocabulary is valid BPE at any size;
 *  - a vocabulary copied from a fixture keeps every tokenizer key.
 */
#include "forward_util.h"
#include "model/arch.h"
#include "model/gen.h"
#include "tokenizer/synth_vocab.h"
#include "test.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char tmpdir[64];

static void tmp_path(char *buf, size_t n, const char *name)
{
    snprintf(buf, n, "%.60s/%.50s.gguf", tmpdir, name);
}

/* The forward tests' small model, in type. */
static struct ntp_gen_params small(const char *arch, enum ntp_type type)
{
    struct ntp_gen_params p = fwd_small(arch);
    p.type = type;
    p.seed = 42;
    return p;
}

static uint32_t get_u32(const ntp_gguf *g, const char *key)
{
    uint32_t v = 0;
    CHECK_OK(ntp_gguf_get_u32(g, key, &v));
    return v;
}

static void check_tensor(const ntp_gguf *g, const char *name, enum ntp_type type, int64_t ne0,
                         int64_t ne1)
{
    const ntp_gguf_tensor *t = ntp_gguf_find_tensor(g, name);
    if (t == NULL) {
        fprintf(stderr, "tensor %s missing\n", name);
        CHECK(t != NULL);
        return;
    }
    if (t->type != type || t->ne[0] != ne0 || t->ne[1] != ne1 || t->n_dims != (ne1 > 1 ? 2u : 1u))
        fprintf(stderr, "%s: %s [%lld, %lld] %u dims, expected %s [%lld, %lld]\n", name,
                ntp_type_name(t->type), (long long)t->ne[0], (long long)t->ne[1], t->n_dims,
                ntp_type_name(type), (long long)ne0, (long long)ne1);
    CHECK(t->type == type);
    CHECK(t->ne[0] == ne0 && t->ne[1] == ne1);
}

/* The expected tensors of a small model of arch, written out by hand. */
static void check_tensors(const ntp_gguf *g, const char *arch, const struct ntp_gen_params *p)
{
    const bool qwen2 = strcmp(arch, "qwen2") == 0, qwen3 = strcmp(arch, "qwen3") == 0;
    const int64_t e = p->n_embd, hd = p->head_dim ? p->head_dim : e / p->n_head;
    const int64_t q = p->n_head * hd, kv = p->n_head_kv * hd, f = p->n_ff, v = p->n_vocab;
    const enum ntp_type t = p->type;
    int64_t n = 3 - p->tied_output + p->n_layer * (9 + 3 * qwen2 + 2 * qwen3);
    CHECK(ntp_gguf_n_tensors(g) == n);
    check_tensor(g, "token_embd.weight", t, e, v);
    check_tensor(g, "output_norm.weight", NTP_TYPE_F32, e, 1);
    if (p->tied_output)
        CHECK(ntp_gguf_find_tensor(g, "output.weight") == NULL);
    else
        check_tensor(g, "output.weight", t, e, v);
    for (int il = 0; il < p->n_layer; il++) {
        char name[64];
#define BLK(suffix) (snprintf(name, sizeof name, "blk.%d.%s", il, suffix), name)
        check_tensor(g, BLK("attn_norm.weight"), NTP_TYPE_F32, e, 1);
        check_tensor(g, BLK("attn_q.weight"), t, e, q);
        check_tensor(g, BLK("attn_k.weight"), t, e, kv);
        check_tensor(g, BLK("attn_v.weight"), t, e, kv);
        check_tensor(g, BLK("attn_output.weight"), t, q, e);
        check_tensor(g, BLK("ffn_norm.weight"), NTP_TYPE_F32, e, 1);
        check_tensor(g, BLK("ffn_gate.weight"), t, e, f);
        check_tensor(g, BLK("ffn_up.weight"), t, e, f);
        check_tensor(g, BLK("ffn_down.weight"), t, f, e);
        if (qwen2) {
            check_tensor(g, BLK("attn_q.bias"), NTP_TYPE_F32, q, 1);
            check_tensor(g, BLK("attn_k.bias"), NTP_TYPE_F32, kv, 1);
            check_tensor(g, BLK("attn_v.bias"), NTP_TYPE_F32, kv, 1);
        }
        if (qwen3) {
            check_tensor(g, BLK("attn_q_norm.weight"), NTP_TYPE_F32, hd, 1);
            check_tensor(g, BLK("attn_k_norm.weight"), NTP_TYPE_F32, hd, 1);
        }
#undef BLK
    }
}

static void check_metadata(const ntp_gguf *g, const char *arch, const struct ntp_gen_params *p)
{
    const char *s = NULL;
    char key[128];
    CHECK_OK(ntp_gguf_get_str(g, "general.architecture", &s));
    CHECK(s && strcmp(s, arch) == 0);
    CHECK(get_u32(g, "general.quantization_version") == 2);
    CHECK(get_u32(g, "general.file_type") == ntp__gen_file_type(p));
    snprintf(key, sizeof key, "%s.embedding_length", arch);
    CHECK(get_u32(g, key) == (uint32_t)p->n_embd);
    snprintf(key, sizeof key, "%s.attention.head_count_kv", arch);
    CHECK(get_u32(g, key) == (uint32_t)p->n_head_kv);
    snprintf(key, sizeof key, "%s.feed_forward_length", arch);
    CHECK(get_u32(g, key) == (uint32_t)p->n_ff);
    snprintf(key, sizeof key, "%s.context_length", arch);
    CHECK(get_u32(g, key) == (uint32_t)p->n_ctx);
    float eps = 0, base = 0;
    snprintf(key, sizeof key, "%s.attention.layer_norm_rms_epsilon", arch);
    CHECK_OK(ntp_gguf_get_f32(g, key, &eps));
    snprintf(key, sizeof key, "%s.rope.freq_base", arch);
    CHECK_OK(ntp_gguf_get_f32(g, key, &base));
    const bool llama = strcmp(arch, "llama") == 0;
    CHECK(eps == (llama ? 1e-5f : 1e-6f));
    CHECK(base == (llama ? 10000.0f : 1e6f));
    CHECK_OK(ntp_gguf_get_str(g, "tokenizer.ggml.model", &s));
    CHECK(s && strcmp(s, "gpt2") == 0);
    const ntp_gguf_value *toks = NULL;
    CHECK_OK(ntp_gguf_get_arr(g, "tokenizer.ggml.tokens", NTP_GGUF_STRING, &toks));
    CHECK(toks && (int64_t)toks->arr.len == p->n_vocab);
    /* The loader's reading of the keys gives back what was asked for. */
    struct ntp_hparams hp;
    CHECK_OK(ntp__hparams_read(g, ntp__arch_find(arch), &hp));
    CHECK(hp.n_embd == p->n_embd && hp.n_layer == p->n_layer && hp.n_head == p->n_head);
    CHECK(hp.n_vocab == p->n_vocab && hp.n_ff == p->n_ff);
    CHECK(hp.head_dim_k == (p->head_dim ? p->head_dim : p->n_embd / p->n_head));
    CHECK(hp.n_rot == hp.head_dim_k && hp.head_dim_v == hp.head_dim_k);
}

static void gen_and_check(const char *arch, struct ntp_gen_params p, const char *tag)
{
    char path[128], name[64];
    snprintf(name, sizeof name, "%s_%s", arch, tag);
    tmp_path(path, sizeof path, name);
    CHECK_OK(ntp__model_gen(&p, path));
    ntp_gguf *g = NULL;
    CHECK_OK(ntp_gguf_open(path, &g));
    if (g == NULL)
        return;
    check_metadata(g, arch, &p);
    check_tensors(g, arch, &p);
    ntp_gguf_free(g);
    unlink(path);
}

static void test_archs(void)
{
    const char *archs[] = {"llama", "qwen2", "qwen3"};
    const enum ntp_type types[] = {NTP_TYPE_F32, NTP_TYPE_F16, NTP_TYPE_Q8_0, NTP_TYPE_Q4_0};
    for (int a = 0; a < 3; a++)
        for (int t = 0; t < 4; t++)
            gen_and_check(archs[a], small(archs[a], types[t]), ntp_type_name(types[t]));
    /* qwen3 with a head width of its own, tied output; k-quants at 256. */
    struct ntp_gen_params p = small("qwen3", NTP_TYPE_Q8_0);
    p.head_dim = 32;
    p.tied_output = true;
    gen_and_check("qwen3", p, "hd32_tied");
    p = small("llama", NTP_TYPE_Q4_K);
    p.n_embd = 256;
    p.n_ff = 512;
    gen_and_check("llama", p, "q4k");
    /* A token embedding type of its own. */
    p = small("qwen2", NTP_TYPE_F16);
    p.embd_type = NTP_TYPE_Q8_0;
    char path[128];
    tmp_path(path, sizeof path, "embd_type");
    CHECK_OK(ntp__model_gen(&p, path));
    ntp_gguf *g = NULL;
    CHECK_OK(ntp_gguf_open(path, &g));
    if (g) {
        check_tensor(g, "token_embd.weight", NTP_TYPE_Q8_0, 64, 300);
        check_tensor(g, "output.weight", NTP_TYPE_F16, 64, 300);
        CHECK(get_u32(g, "general.file_type") == 1);
    }
    ntp_gguf_free(g);
    unlink(path);
}

/* Q4_K_M on 8 layers: Q6_K for attn_v/ffn_down of layers 0, 3, 6, 7 and the output. */
static void test_mix(void)
{
    struct ntp_gen_params p = small("llama", NTP_TYPE_F32);
    p.n_embd = 256;
    p.n_ff = 512;
    p.n_layer = 8;
    p.n_head_kv = 4;
    CHECK_OK(ntp__gen_parse_mix("Q4_K_M", &p));
    CHECK(p.mix == NTP_GEN_MIX_Q4_K_M);
    char path[128];
    tmp_path(path, sizeof path, "mix");
    CHECK_OK(ntp__model_gen(&p, path));
    ntp_gguf *g = NULL;
    CHECK_OK(ntp_gguf_open(path, &g));
    if (g == NULL)
        return;
    CHECK(get_u32(g, "general.file_type") == 15);
    check_tensor(g, "output.weight", NTP_TYPE_Q6_K, 256, 300);
    check_tensor(g, "token_embd.weight", NTP_TYPE_Q4_K, 256, 300);
    for (int il = 0; il < 8; il++) {
        const enum ntp_type more =
            (il == 0 || il == 3 || il == 6 || il == 7) ? NTP_TYPE_Q6_K : NTP_TYPE_Q4_K;
        char name[64];
        snprintf(name, sizeof name, "blk.%d.attn_v.weight", il);
        check_tensor(g, name, more, 256, 256);
        snprintf(name, sizeof name, "blk.%d.ffn_down.weight", il);
        check_tensor(g, name, more, 512, 256);
        snprintf(name, sizeof name, "blk.%d.attn_q.weight", il);
        check_tensor(g, name, NTP_TYPE_Q4_K, 256, 256);
        snprintf(name, sizeof name, "blk.%d.attn_norm.weight", il);
        check_tensor(g, name, NTP_TYPE_F32, 256, 1);
    }
    ntp_gguf_free(g);
    /* Tied: the embedding takes the output head's Q6_K. Rows of 896 fall back as llama.cpp. */
    p.tied_output = true;
    p.n_embd = 896;
    p.n_head = 7;
    p.n_head_kv = 1;
    p.n_layer = 1;
    CHECK_OK(ntp__model_gen(&p, path));
    CHECK_OK(ntp_gguf_open(path, &g));
    if (g == NULL)
        return;
    check_tensor(g, "token_embd.weight", NTP_TYPE_Q8_0, 896, 300);
    check_tensor(g, "blk.0.attn_q.weight", NTP_TYPE_Q5_0, 896, 896);
    check_tensor(g, "blk.0.ffn_down.weight", NTP_TYPE_Q6_K, 512, 896);
    ntp_gguf_free(g);
    unlink(path);
}

static void *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    void *buf = malloc(*len ? *len : 1);
    if (buf && fread(buf, 1, *len, f) != *len) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    return buf;
}

static void test_determinism(void)
{
    char a[128], b[128], c[128];
    tmp_path(a, sizeof a, "seed_a");
    tmp_path(b, sizeof b, "seed_b");
    tmp_path(c, sizeof c, "seed_c");
    struct ntp_gen_params p = small("qwen2", NTP_TYPE_Q8_0);
    CHECK_OK(ntp__model_gen(&p, a));
    CHECK_OK(ntp__model_gen(&p, b));
    p.seed = 43;
    CHECK_OK(ntp__model_gen(&p, c));
    size_t la = 0, lb = 0, lc = 0;
    void *da = read_file(a, &la), *db = read_file(b, &lb), *dc = read_file(c, &lc);
    CHECK(da && db && dc);
    CHECK(la == lb && la == lc && la > 0);
    if (da && db && dc && la == lb && la == lc) {
        CHECK(memcmp(da, db, la) == 0);
        CHECK(memcmp(da, dc, la) != 0);
    }
    free(da);
    free(db);
    free(dc);
    unlink(a);
    unlink(b);
    unlink(c);
}

/* Mean and standard deviation of an F32 tensor. */
static void stats(const ntp_gguf *g, const char *name, double *mean, double *std)
{
    const ntp_gguf_tensor *t = ntp_gguf_find_tensor(g, name);
    *mean = *std = NAN;
    CHECK(t && t->type == NTP_TYPE_F32);
    if (t == NULL || t->type != NTP_TYPE_F32)
        return;
    const float *x = t->data;
    const size_t n = t->size / 4;
    double s = 0, s2 = 0;
    for (size_t i = 0; i < n; i++) {
        s += x[i];
        s2 += (double)x[i] * x[i];
    }
    *mean = s / (double)n;
    *std = sqrt(s2 / (double)n - *mean * *mean);
}

static void test_scales(void)
{
    char path[128];
    tmp_path(path, sizeof path, "scales");
    struct ntp_gen_params p = small("qwen2", NTP_TYPE_F32);
    p.n_embd = 256;
    CHECK_OK(ntp__model_gen(&p, path));
    ntp_gguf *g = NULL;
    CHECK_OK(ntp_gguf_open(path, &g));
    if (g == NULL)
        return;
    double m, s;
    stats(g, "blk.1.ffn_up.weight", &m, &s);
    CHECK(fabs(m) < 0.002 && fabs(s - 0.02) < 0.002);
    stats(g, "token_embd.weight", &m, &s);
    CHECK(fabs(m) < 0.002 && fabs(s - 0.02) < 0.002);
    stats(g, "blk.0.attn_norm.weight", &m, &s);
    CHECK(fabs(m - 1.0) < 0.02 && s > 0.01 && s < 0.1);
    stats(g, "blk.0.attn_k.bias", &m, &s);
    CHECK(fabs(m) < 0.01 && s > 0.005 && s < 0.05);
    /* Different tensors are not copies of each other. */
    const ntp_gguf_tensor *t1 = ntp_gguf_find_tensor(g, "blk.0.ffn_up.weight");
    const ntp_gguf_tensor *t2 = ntp_gguf_find_tensor(g, "blk.0.ffn_gate.weight");
    CHECK(t1 && t2 && memcmp(t1->data, t2->data, 1024) != 0);
    ntp_gguf_free(g);
    unlink(path);
}

/* ntp__gen_check fails with code want and a message containing text. */
static void expect_bad(const struct ntp_gen_params *p, ntp_status want, const char *text)
{
    char path[128];
    tmp_path(path, sizeof path, "bad");
    CHECK_STATUS(ntp__gen_check(p), want);
    if (strstr(ntp_last_error(), text) == NULL) {
        fprintf(stderr, "message '%s' lacks '%s'\n", ntp_last_error(), text);
        CHECK(!"message names the problem");
    }
    CHECK_STATUS(ntp__model_gen(p, path), want);
    CHECK(access(path, F_OK) != 0);
}

static void test_bad_params(void)
{
    struct ntp_gen_params p = small("llama", NTP_TYPE_F32);
    p.arch = "gpt5";
    expect_bad(&p, NTP_E_INVALID_ARG, "gpt5");
    p = small("llama", NTP_TYPE_F32);
    p.n_head = 5;
    expect_bad(&p, NTP_E_INVALID_ARG, "--heads");
    p = small("llama", NTP_TYPE_F32);
    p.n_head_kv = 3;
    expect_bad(&p, NTP_E_INVALID_ARG, "--kv-heads");
    p = small("llama", NTP_TYPE_F32);
    p.n_layer = 0;
    expect_bad(&p, NTP_E_INVALID_ARG, "n_layer");
    p = small("llama", NTP_TYPE_F32);
    p.n_vocab = 258;
    expect_bad(&p, NTP_E_INVALID_ARG, "259");
    p = small("llama", NTP_TYPE_F32);
    p.head_dim = 15;
    expect_bad(&p, NTP_E_INVALID_ARG, "even");
    p = small("llama", NTP_TYPE_Q4_K); /* rows of 64 in 256-blocks */
    expect_bad(&p, NTP_E_INVALID_ARG, "'token_embd.weight'");
    CHECK(strstr(ntp_last_error(), "q8_0") != NULL);
    p = small("llama", NTP_TYPE_Q8_0);
    p.n_ff = 80; /* ffn_down's rows are n_ff long */
    expect_bad(&p, NTP_E_INVALID_ARG, "'blk.0.ffn_down.weight'");
    CHECK(strstr(ntp_last_error(), "f16") != NULL);
    p = small("llama", NTP_TYPE_Q8_K);
    expect_bad(&p, NTP_E_UNSUPPORTED, "activation");
    p = small("llama", NTP_TYPE_IQ2_XXS);
    expect_bad(&p, NTP_E_UNSUPPORTED, "IQ2_XXS");
    struct ntp_gen_params q = small("llama", NTP_TYPE_F32);
    CHECK_STATUS(ntp__gen_parse_mix("q4_k_x", &q), NTP_E_NOT_FOUND);
    CHECK_STATUS(ntp__gen_preset("huge", &q), NTP_E_NOT_FOUND);
    CHECK_OK(ntp__gen_preset("tinyllama-1b", &q));
    CHECK(q.n_embd == 2048 && q.n_layer == 22 && q.n_head_kv == 4 && q.n_ff == 5632);
    CHECK(q.seed == 42 && q.type == NTP_TYPE_F32); /* kept */
    CHECK_OK(ntp__gen_check(&q));
    /* A vocabulary file that is not there. */
    p = small("llama", NTP_TYPE_F32);
    p.vocab_from = "/nonexistent/vocab.gguf";
    p.n_vocab = 0;
    char path[128];
    tmp_path(path, sizeof path, "bad");
    CHECK(ntp__model_gen(&p, path) != NTP_OK);
    CHECK(strstr(ntp_last_error(), "/nonexistent/vocab.gguf") != NULL);
}

/* Every merge joins two tokens into a third; tokens are distinct. */
static void check_vocab(const struct ntp_synth_vocab *v, int64_t n)
{
    CHECK(v->n_tokens == n);
    CHECK(v->n_merges >= n - NTP_SYNTH_MIN_VOCAB);
    CHECK(strcmp(v->tokens[0], "!") == 0);
    CHECK(strcmp(v->tokens[188], "\xc4\x80") == 0); /* byte 0 is U+0100 */
    CHECK(strcmp(v->tokens[v->eot_id], "<|endoftext|>") == 0);
    CHECK(strcmp(v->tokens[v->im_end_id], "<|im_end|>") == 0);
    CHECK(v->token_type[v->im_start_id] == NTP_TOKEN_CONTROL &&
          v->token_type[5] == NTP_TOKEN_NORMAL);
    CHECK(v->eot_id == (uint32_t)n - 3);
    int bad = 0;
    for (int64_t i = 0; i < v->n_merges && bad < 5; i++) {
        const char *m = v->merges[i], *sp = strchr(m, ' ');
        if (sp == NULL || strchr(sp + 1, ' ')) {
            bad++;
            continue;
        }
        char joined[512];
        snprintf(joined, sizeof joined, "%.*s%s", (int)(sp - m), m, sp + 1);
        bool l = false, r = false, j = false;
        for (int64_t k = 0; k < n; k++) {
            l |= strncmp(v->tokens[k], m, (size_t)(sp - m)) == 0 && v->tokens[k][sp - m] == '\0';
            r |= strcmp(v->tokens[k], sp + 1) == 0;
            j |= strcmp(v->tokens[k], joined) == 0;
        }
        bad += !(l && r && j);
    }
    CHECK(bad == 0);
}

static void test_synth_vocab(void)
{
    struct ntp_synth_vocab *v = NULL, *w = NULL;
    CHECK_STATUS(ntp__synth_vocab_build(258, &v), NTP_E_INVALID_ARG);
    CHECK(v == NULL);
    const int64_t sizes[] = {259, 260, 300, 1200};
    for (int i = 0; i < 4; i++) {
        CHECK_OK(ntp__synth_vocab_build(sizes[i], &v));
        if (v)
            check_vocab(v, sizes[i]);
        ntp__synth_vocab_free(v);
        v = NULL;
    }
    /* A small vocabulary is a prefix of a large one (merges come in one order). */
    CHECK_OK(ntp__synth_vocab_build(400, &v));
    CHECK_OK(ntp__synth_vocab_build(5000, &w));
    if (v && w) {
        for (int64_t i = 0; i < 397; i++)
            CHECK(strcmp(v->tokens[i], w->tokens[i]) == 0);
        CHECK(strcmp(w->merges[0], "\xc4\xa0 t") == 0); /* "Ġ t", as in GPT-2 */
    }
    ntp__synth_vocab_free(v);
    ntp__synth_vocab_free(w);
    ntp__synth_vocab_free(NULL);
}

static void test_vocab_from(void)
{
    const char *fixture = NTP_SOURCE_ROOT "/tests/data/tokenizer/ggml-vocab-gpt-2.gguf";
    CHECK(access(fixture, R_OK) == 0); /* part of the repository: missing is a failure */
    if (access(fixture, R_OK) != 0)
        return;
    struct ntp_gen_params p = small("qwen2", NTP_TYPE_F16);
    p.vocab_from = fixture;
    p.n_vocab = 0;
    p.tied_output = true;
    p.n_layer = 1;
    char path[128];
    tmp_path(path, sizeof path, "vocab_from");
    CHECK_OK(ntp__model_gen(&p, path));
    ntp_gguf *g = NULL, *src = NULL;
    CHECK_OK(ntp_gguf_open(path, &g));
    CHECK_OK(ntp_gguf_open(fixture, &src));
    if (g && src) {
        check_tensor(g, "token_embd.weight", NTP_TYPE_F16, 64, 50257);
        CHECK(get_u32(g, "qwen2.vocab_size") == 50257);
        CHECK(get_u32(g, "tokenizer.ggml.bos_token_id") == 50256);
        const char *pre = NULL;
        CHECK_OK(ntp_gguf_get_str(g, "tokenizer.ggml.pre", &pre));
        CHECK(pre && strcmp(pre, "gpt-2") == 0);
        const ntp_gguf_value *m1 = ntp_gguf_get(g, "tokenizer.ggml.merges");
        const ntp_gguf_value *m2 = ntp_gguf_get(src, "tokenizer.ggml.merges");
        CHECK(m1 && m2 && m1->arr.len == m2->arr.len);
        if (m1 && m2 && m1->arr.len == m2->arr.len && m1->arr.len > 0)
            CHECK(strcmp(m1->arr.elems[m1->arr.len - 1].str.data,
                         m2->arr.elems[m2->arr.len - 1].str.data) == 0);
    }
    ntp_gguf_free(g);
    ntp_gguf_free(src);
    /* A vocabulary size that disagrees with the file is refused. */
    p.n_vocab = 1000;
    CHECK_STATUS(ntp__model_gen(&p, path), NTP_E_INVALID_ARG);
    unlink(path);
}

static void test_arch_table(void)
{
    char names[64];
    ntp__arch_names(names, sizeof names);
    CHECK(strcmp(names, "llama, qwen2, qwen3, qwen3moe, gemma3, deepseek2") == 0);
    const struct ntp_arch *l = ntp__arch_find("llama"), *q2 = ntp__arch_find("qwen2"),
                          *q3 = ntp__arch_find("qwen3");
    CHECK(l && q2 && q3 && ntp__arch_find("gpt2") == NULL && ntp__arch_find(NULL) == NULL);
    if (!(l && q2 && q3))
        return;
    CHECK(l->rope_type == NTP_ROPE_NORM && q2->rope_type == NTP_ROPE_NEOX &&
          q3->rope_type == NTP_ROPE_NEOX);
    CHECK(ntp__tensor_present(NTP_T_ATTN_Q_BIAS, q2->features));
    CHECK(!ntp__tensor_present(NTP_T_ATTN_Q_BIAS, l->features | q3->features));
    CHECK(ntp__tensor_present(NTP_T_ATTN_K_NORM, q3->features));
    CHECK(!ntp__tensor_present(NTP_T_OUTPUT, l->features));
    CHECK(ntp__tensor_present(NTP_T_OUTPUT, l->features | NTP_FEAT_OUTPUT));
    char buf[64];
    CHECK_OK(ntp__arch_key(q3, NTP_KV_RMS_EPS, buf, sizeof buf));
    CHECK(strcmp(buf, "qwen3.attention.layer_norm_rms_epsilon") == 0);
    CHECK_OK(ntp__tensor_name(NTP_T_FFN_DOWN, 17, buf, sizeof buf));
    CHECK(strcmp(buf, "blk.17.ffn_down.weight") == 0);
    CHECK_STATUS(ntp__tensor_name(NTP_T_FFN_DOWN, 17, buf, 8), NTP_E_OVERFLOW);
    CHECK(ntp__file_type_name(15) && strcmp(ntp__file_type_name(15), "Q4_K_M") == 0);
    CHECK(ntp__file_type_name(4) == NULL && ntp__file_type_name(1000) == NULL);
}

static void check_tensor3(const ntp_gguf *g, const char *name, enum ntp_type type, int64_t ne0,
                          int64_t ne1, int64_t ne2)
{
    const ntp_gguf_tensor *t = ntp_gguf_find_tensor(g, name);
    CHECK(t != NULL);
    if (t == NULL)
        return;
    if (t->type != type || t->ne[0] != ne0 || t->ne[1] != ne1 || t->ne[2] != ne2 || t->n_dims != 3)
        fprintf(stderr, "%s: %s [%lld, %lld, %lld] %u dims, expected %s [%lld, %lld, %lld]\n", name,
                ntp_type_name(t->type), (long long)t->ne[0], (long long)t->ne[1],
                (long long)t->ne[2], t->n_dims, ntp_type_name(type), (long long)ne0, (long long)ne1,
                (long long)ne2);
    CHECK(t->type == type && t->n_dims == 3);
    CHECK(t->ne[0] == ne0 && t->ne[1] == ne1 && t->ne[2] == ne2);
}

/* A mixture of experts: gen writes what the loader reads, and refuses nonsense. */
static void check_moe(struct ntp_gen_params p, int64_t n_exp, int64_t used, int64_t width,
                      const char *tag)
{
    char path[128], key[128];
    tmp_path(path, sizeof path, tag);
    CHECK_OK(ntp__model_gen(&p, path));
    ntp_gguf *g = NULL;
    CHECK_OK(ntp_gguf_open(path, &g));
    if (g == NULL)
        return;
    const bool llama = strcmp(p.arch, "llama") == 0;
    snprintf(key, sizeof key, "%s.expert_count", p.arch);
    CHECK(get_u32(g, key) == (uint32_t)n_exp);
    snprintf(key, sizeof key, "%s.expert_used_count", p.arch);
    CHECK(get_u32(g, key) == (uint32_t)used);
    snprintf(key, sizeof key, "%s.expert_feed_forward_length", p.arch);
    CHECK(llama ? ntp_gguf_find_key(g, key) < 0 : get_u32(g, key) == (uint32_t)width);
    struct ntp_hparams hp;
    CHECK_OK(ntp__hparams_read(g, ntp__arch_find(p.arch), &hp));
    CHECK(hp.n_expert == n_exp && hp.n_expert_used == used && hp.n_ff_exp == width);
    const int64_t e = p.n_embd;
    /* 3 global + per layer: 5 attention, 2 q/k norms (qwen3moe), ffn_norm, router, 3 experts */
    CHECK(ntp_gguf_n_tensors(g) == 3 + p.n_layer * (llama ? 10 : 12));
    for (int il = 0; il < p.n_layer; il++) {
        char name[64];
#define BLK(suffix) (snprintf(name, sizeof name, "blk.%d.%s", il, suffix), name)
        CHECK(ntp_gguf_find_tensor(g, BLK("ffn_gate.weight")) == NULL);
        CHECK(ntp_gguf_find_tensor(g, BLK("ffn_down.weight")) == NULL);
        check_tensor(g, BLK("ffn_gate_inp.weight"), NTP_TYPE_F32, e, n_exp);
        check_tensor3(g, BLK("ffn_gate_exps.weight"), p.type, e, width, n_exp);
        check_tensor3(g, BLK("ffn_up_exps.weight"), p.type, e, width, n_exp);
        check_tensor3(g, BLK("ffn_down_exps.weight"), p.type, width, e, n_exp);
#undef BLK
    }
    ntp_gguf_free(g);
    unlink(path);
}

static void test_moe(void)
{
    struct ntp_gen_params p = small("qwen3moe", NTP_TYPE_Q8_0);
    check_moe(p, 8, 2, p.n_ff, "moe_default"); /* qwen3moe: 8 experts, 2 per token */
    p.n_expert = 6;
    p.n_expert_used = 3;
    p.n_ff_exp = 32;
    check_moe(p, 6, 3, 32, "moe_q3");
    p = small("llama", NTP_TYPE_F16);
    p.n_expert = 4;
    check_moe(p, 4, 2, p.n_ff, "moe_llama");
    /* the presets are shaped like the real models */
    CHECK_OK(ntp__gen_preset("qwen3-30b-a3b", &p));
    CHECK(strcmp(p.arch, "qwen3moe") == 0 && p.n_expert == 128 && p.n_expert_used == 8 &&
          p.n_ff_exp == 768 && p.n_layer == 48 && p.head_dim == 128);
    CHECK_OK(ntp__gen_check(&p));
    CHECK_OK(ntp__gen_preset("mixtral-8x7b", &p));
    CHECK(strcmp(p.arch, "llama") == 0 && p.n_expert == 8 && p.n_expert_used == 2 &&
          p.n_ff == 14336 && p.n_head_kv == 8);
    CHECK_OK(ntp__gen_check(&p));
    /* deepseek2: V2-Lite's shape, V3's widths and routing in 4 blocks; their bad options */
    CHECK_OK(ntp__gen_preset("deepseek-v2-lite", &p));
    CHECK(strcmp(p.arch, "deepseek2") == 0 && p.n_layer == 27 && p.n_expert == 64 &&
          p.n_expert_used == 6 && p.n_ff_exp == 1408 && p.kv_lora == 512 && p.q_lora == 0 &&
          p.n_expert_shared == 2 && p.n_layer_dense == 1 && !p.gating_sigmoid);
    CHECK_OK(ntp__gen_check(&p));
    CHECK_OK(ntp__gen_preset("deepseek-v3-small", &p));
    CHECK(p.n_embd == 7168 && p.n_head == 128 && p.q_lora == 1536 && p.gating_sigmoid &&
          p.probs_bias && p.n_group == 8 && p.n_group_used == 4 && p.expert_scale == 2.5f);
    CHECK_OK(ntp__gen_check(&p));
    p.n_group = 5; /* does not divide the 32 experts */
    CHECK_STATUS(ntp__gen_check(&p), NTP_E_INVALID_ARG);
    CHECK(strstr(ntp_last_error(), "expert groups (--expert-groups) 5") != NULL);
    CHECK_OK(ntp__gen_preset("deepseek-v2-lite", &p));
    p.rope_dim = 192; /* as wide as the head */
    CHECK_STATUS(ntp__gen_check(&p), NTP_E_INVALID_ARG);
    CHECK(strstr(ntp_last_error(), "wider than its RoPE part") != NULL);
    p = small("qwen3moe", NTP_TYPE_F32);
    p.n_expert_shared = 1; /* deepseek2's only */
    CHECK_STATUS(ntp__gen_check(&p), NTP_E_INVALID_ARG);
    CHECK(strstr(ntp_last_error(), "belong to the deepseek2 architecture, not qwen3moe") != NULL);
    CHECK_OK(ntp__gen_preset("tiny", &p));
    CHECK(p.n_expert == 0);
    /* refused: more experts per token than experts, experts on qwen2, a llama expert
       width of its own, experts per token without experts, too many experts */
    const struct {
        const char *arch;
        int64_t n, used, width;
        const char *want;
    } bad[] = {
        {"qwen3moe", 4, 5, 0, "n_expert_used (--experts-used) = 5"},
        {"qwen2", 4, 2, 0, "the qwen2 architecture has no mixture of experts"},
        {"llama", 4, 2, 48, "llama's experts are n_ff (--ff) = 96 wide"},
        {"llama", 0, 2, 0, "need experts (--experts)"},
        {"qwen3moe", NTP_MAX_EXPERTS + 1, 2, 0, "n_expert (--experts) = 513"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        p = small(bad[i].arch, NTP_TYPE_F32);
        p.n_expert = bad[i].n;
        p.n_expert_used = bad[i].used;
        p.n_ff_exp = bad[i].width;
        CHECK_STATUS(ntp__gen_check(&p), NTP_E_INVALID_ARG);
        if (strstr(ntp_last_error(), bad[i].want) == NULL)
            fprintf(stderr, "message '%s' lacks '%s'\n", ntp_last_error(), bad[i].want);
        CHECK(strstr(ntp_last_error(), bad[i].want) != NULL);
    }
}

static void test_topology(void)
{
    ntp_topology *t = NULL;
    CHECK_OK(ntp_topology_detect(&t));
    if (t == NULL)
        return;
    CHECK(ntp_topology_n_nodes(t) >= 1);
    int cores = 0;
    for (int i = 0; i < ntp_topology_n_nodes(t); i++) {
        CHECK(ntp_topology_node_cores(t, i) >= 1);
        CHECK(ntp_topology_node_pus(t, i) >= ntp_topology_node_cores(t, i));
        CHECK(ntp_topology_node_os_index(t, i) >= 0);
        cores += ntp_topology_node_cores(t, i);
    }
    CHECK(cores <= sysconf(_SC_NPROCESSORS_ONLN));
    CHECK(ntp_topology_node_cores(t, ntp_topology_n_nodes(t)) == 0);
    CHECK(ntp_topology_node_os_index(t, -1) == -1);
    printf("topology: %d node(s), node 0: %d cores, %d PUs, %llu bytes; LLC %llu bytes\n",
           ntp_topology_n_nodes(t), ntp_topology_node_cores(t, 0), ntp_topology_node_pus(t, 0),
           (unsigned long long)ntp_topology_node_memory(t, 0),
           (unsigned long long)ntp_topology_llc_bytes(t));
    ntp_topology_free(t);
    ntp_topology_free(NULL);
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/ntp_gen_XXXXXX");
    if (mkdtemp(tmpdir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    test_arch_table();
    test_archs();
    test_moe();
    test_mix();
    test_determinism();
    test_scales();
    test_bad_params();
    test_synth_vocab();
    test_vocab_from();
    test_topology();
    rmdir(tmpdir);
    return ntp_test_result("gen");
}
