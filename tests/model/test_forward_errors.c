/*
 * test_forward_errors.c - ntp_model_load and ntp_decode refuse bad input with
 * the right status and a message naming the file, key or tensor: unknown
 * architecture, missing key, missing tensor, wrong shape, a tensor type the
 * kernels cannot compute with, weights larger than the memory limit (checked
 * before anything is allocated), context overflow and bad token ids; for
 * gemma3 a missing post-norm and bad sliding-window keys; for qwen3moe bad
 * expert counts, expert tensors missing, misshapen or of a type the kernels
 * lack, and an unknown split; for deepseek2 its latent attention's and
 * routing's keys missing or inconsistent, and its tensors missing or
 * misshapen.
 */
#include "forward_util.h"
#include "model/hybrid.h"
#include "model/plan.h"

#include <time.h>

static char base[300];

/* How to change a file while copying it. */
struct edit {
    const char *drop_key;      /* key left out, or NULL */
    const char *arch;          /* new general.architecture, or NULL */
    const char *drop_tensor;   /* tensor left out, or NULL */
    const char *retype_tensor; /* tensor written with type new_type and the same shape */
    enum ntp_type new_type;
    const char *reshape_tensor; /* tensor written with half as many rows */
    const char *set_key;        /* key given the value set_u32 */
    uint32_t set_u32;
    uint64_t n_tokens;   /* tokenizer arrays cut to this many entries; 0: as they are */
    const char *i32_key; /* key added (or replaced) as an INT32 of value i32, or NULL */
    int32_t i32;
    const char *bools_key; /* key added as an array of n_bools BOOLs (all true), or NULL */
    uint64_t n_bools;
};

static void *zeros(size_t n)
{
    void *p = calloc(1, n ? n : 1);
    if (p == NULL)
        exit(1);
    return p;
}

/* Add tensor t to w as e says (dropped, retyped, reshaped or as it is). */
static ntp_status copy_tensor(ntp_gguf_writer *w, const ntp_gguf_tensor *t, const struct edit *e)
{
    if (e->drop_tensor && strcmp(t->name, e->drop_tensor) == 0)
        return NTP_OK;
    int64_t ne[4] = {t->ne[0], t->ne[1], t->ne[2], t->ne[3]};
    if (e->reshape_tensor && strcmp(t->name, e->reshape_tensor) == 0) {
        ne[1] /= 2;
        return ntp_gguf_writer_add_tensor(w, t->name, t->type, t->n_dims, ne, t->data);
    }
    if (e->retype_tensor && strcmp(t->name, e->retype_tensor) == 0) {
        size_t row;
        if (ntp_type_row_size(e->new_type, ne[0], &row) != NTP_OK)
            return NTP_E_INVALID_ARG;
        void *data = zeros(row * (size_t)(ne[1] * ne[2] * ne[3]));
        ntp_status s = ntp_gguf_writer_add_tensor(w, t->name, e->new_type, t->n_dims, ne, data);
        free(data);
        return s;
    }
    return ntp_gguf_writer_add_tensor(w, t->name, t->type, t->n_dims, ne, t->data);
}

/* Copy base into <tmp>/<name>.gguf with the edit applied. */
static void make_variant(const char *name, const struct edit *e, char *path, size_t size)
{
    snprintf(path, size, "%s/%s.gguf", fwd_tmpdir, name);
    ntp_gguf *g = NULL;
    ntp_gguf_writer *w = NULL;
    CHECK_OK(ntp_gguf_open(base, &g));
    CHECK_OK(ntp_gguf_writer_new(&w));
    if (g == NULL || w == NULL)
        exit(1);
    for (int64_t i = 0; i < ntp_gguf_n_kv(g); i++) {
        const char *key = ntp_gguf_kv_key(g, i);
        ntp_gguf_value v = *ntp_gguf_kv_value(g, i);
        if ((e->drop_key && strcmp(key, e->drop_key) == 0) ||
            (e->i32_key && strcmp(key, e->i32_key) == 0))
            continue;
        if (e->n_tokens && strncmp(key, "tokenizer.ggml.", 15) == 0 && v.type == NTP_GGUF_ARRAY &&
            v.arr.len > e->n_tokens)
            v.arr.len = e->n_tokens;
        if (e->arch && strcmp(key, "general.architecture") == 0)
            CHECK_OK(ntp_gguf_writer_set_str(w, key, e->arch));
        else if (e->set_key && strcmp(key, e->set_key) == 0)
            CHECK_OK(ntp_gguf_writer_set_u32(w, key, e->set_u32));
        else
            CHECK_OK(ntp_gguf_writer_set_value(w, key, &v));
    }
    if (e->i32_key)
        CHECK_OK(ntp_gguf_writer_set_i32(w, e->i32_key, e->i32));
    if (e->bools_key) {
        bool *b = zeros(e->n_bools * sizeof *b);
        memset(b, 1, e->n_bools * sizeof *b);
        CHECK_OK(ntp_gguf_writer_set_arr_data(w, e->bools_key, NTP_GGUF_BOOL, b, e->n_bools));
        free(b);
    }
    for (int64_t i = 0; i < ntp_gguf_n_tensors(g); i++)
        CHECK_OK(copy_tensor(w, ntp_gguf_tensor_at(g, i), e));
    CHECK_OK(ntp_gguf_writer_write_file(w, path));
    ntp_gguf_writer_free(w);
    ntp_gguf_free(g);
}

/* Loading path fails with status want and a message holding every one of the needles. */
static void expect_load_error(const char *path, ntp_model_params mp, ntp_status want,
                              const char *const *needles)
{
    ntp_model *m = (ntp_model *)1;
    ntp_status s = ntp_model_load(path, mp, &m);
    const char *msg = ntp_last_error();
    printf("%s -> %s: %s\n", strrchr(path, '/') + 1, ntp_status_str(s), msg);
    CHECK(s == want);
    CHECK(m == NULL);
    CHECK(strstr(msg, path) != NULL);
    for (; *needles; needles++)
        if (strstr(msg, *needles) == NULL) {
            fprintf(stderr, "  message lacks '%s'\n", *needles);
            ntp_test_failures++;
        }
    ntp_model_free(m == (ntp_model *)1 ? NULL : m);
}

static void test_load_errors(void)
{
    char path[300];
    ntp_model_params mp = ntp_model_default_params();
    mp.n_threads = 1;
    make_variant("arch", &(struct edit){.arch = "mamba"}, path, sizeof path);
    expect_load_error(path, mp, NTP_E_UNSUPPORTED,
                      (const char *const[]){"general.architecture", "mamba", NULL});
    make_variant("key", &(struct edit){.drop_key = "llama.embedding_length"}, path, sizeof path);
    expect_load_error(path, mp, NTP_E_NOT_FOUND,
                      (const char *const[]){"llama.embedding_length", NULL});
    make_variant("tensor", &(struct edit){.drop_tensor = "blk.1.ffn_up.weight"}, path, sizeof path);
    expect_load_error(path, mp, NTP_E_NOT_FOUND,
                      (const char *const[]){"blk.1.ffn_up.weight", NULL});
    make_variant("shape", &(struct edit){.reshape_tensor = "blk.1.ffn_up.weight"}, path,
                 sizeof path);
    expect_load_error(
        path, mp, NTP_E_FORMAT,
        (const char *const[]){"blk.1.ffn_up.weight", "[64, 48", "expected [64, 96]", NULL});
    /* Head counts are checked against the tensors before the planner divides by them. */
    make_variant("heads", &(struct edit){.reshape_tensor = "blk.0.attn_k.weight"}, path,
                 sizeof path);
    expect_load_error(path, mp, NTP_E_FORMAT,
                      (const char *const[]){"llama.attention.head_count_kv = 2",
                                            "blk.0.attn_k.weight", "16 rows", NULL});
    make_variant(
        "type", &(struct edit){.retype_tensor = "blk.0.attn_q.weight", .new_type = NTP_TYPE_IQ4_NL},
        path, sizeof path);
    expect_load_error(path, mp, NTP_E_UNSUPPORTED,
                      (const char *const[]){"blk.0.attn_q.weight", "IQ4_NL", NULL});
    make_variant(
        "normtype",
        &(struct edit){.retype_tensor = "blk.0.ffn_norm.weight", .new_type = NTP_TYPE_Q8_0}, path,
        sizeof path);
    expect_load_error(path, mp, NTP_E_UNSUPPORTED,
                      (const char *const[]){"blk.0.ffn_norm.weight", "Q8_0", "F32", NULL});
    /* Too big for the memory: refused with the sizes, before any weight is allocated. */
    mp.memory_limit = 4096;
    expect_load_error(base, mp, NTP_E_NOMEM, (const char *const[]){"needs", "4096 bytes", NULL});
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/*
 * Counts checked against the tensors the file holds before anything loops
 * over them: a block_count of 2^32 - 1 over a file of 2 blocks is refused by
 * the loader, `numatp plan` and the hybrid planner in well under a second (it
 * used to walk every declared block for tens of minutes); a tokenizer of 100
 * tokens against a vocabulary of 300 is refused naming both.
 */
static void test_counts(ntp_model_params mp)
{
    char path[300];
    make_variant("blocks", &(struct edit){.set_key = "llama.block_count", .set_u32 = 4294967295u},
                 path, sizeof path);
    const char *const needles[] = {"llama.block_count = 4294967295", "blk.1 (2 blocks)", NULL};
    const double t0 = now_s();
    expect_load_error(path, mp, NTP_E_FORMAT, needles);
    struct ntp_plan plan;
    struct ntp_hparams hp;
    uint64_t bytes[NTP_PLAN_MAX_DEV];
    CHECK_STATUS(ntp__model_plan_file(path, 2, NTP_MOE_SPLIT_FEATURES, &plan, &hp, bytes, NULL),
                 NTP_E_FORMAT);
    CHECK(strstr(ntp_last_error(), needles[0]) != NULL);
    struct ntp_hybrid_plan hyb;
    CHECK_STATUS(ntp__hybrid_plan_file(path, 100000, false, false, &hyb), NTP_E_FORMAT);
    CHECK(strstr(ntp_last_error(), needles[0]) != NULL);
    const double dt = now_s() - t0;
    printf("block_count 2^32-1 refused by load, plan and hybrid plan in %.3f s\n", dt);
    CHECK(dt < 1.0);
    make_variant("tokens", &(struct edit){.n_tokens = 100}, path, sizeof path);
    expect_load_error(path, mp, NTP_E_FORMAT,
                      (const char *const[]){"100 tokens", "vocabulary has 300", NULL});
}

/*
 * gemma3's own parts: a missing post-norm, a negative window, and a per-layer
 * pattern whose length is not the block count.
 */
static void test_gemma3_errors(ntp_model_params mp)
{
    char path[300];
    make_variant("g3-postnorm", &(struct edit){.drop_tensor = "blk.1.post_ffw_norm.weight"}, path,
                 sizeof path);
    expect_load_error(path, mp, NTP_E_NOT_FOUND,
                      (const char *const[]){"blk.1.post_ffw_norm.weight", "gemma3", NULL});
    make_variant("g3-window",
                 &(struct edit){.i32_key = "gemma3.attention.sliding_window", .i32 = -4}, path,
                 sizeof path);
    expect_load_error(path, mp, NTP_E_FORMAT,
                      (const char *const[]){"gemma3.attention.sliding_window = -4", NULL});
    make_variant(
        "g3-pattern",
        &(struct edit){.bools_key = "gemma3.attention.sliding_window_pattern", .n_bools = 3}, path,
        sizeof path);
    expect_load_error(path, mp, NTP_E_FORMAT,
                      (const char *const[]){"gemma3.attention.sliding_window_pattern",
                                            "array of 2 bools", "array of 3 bool", NULL});
    /* The same array with one entry per block is read: every layer local. */
    make_variant(
        "g3-pattern-ok",
        &(struct edit){.bools_key = "gemma3.attention.sliding_window_pattern", .n_bools = 2}, path,
        sizeof path);
    ntp_model *m = NULL;
    CHECK_OK(ntp_model_load(path, mp, &m));
    ntp_model_free(m);
}

/* qwen3moe's experts: counts checked against each other and the tensors, the tensors' types. */
static void test_moe_errors(ntp_model_params mp)
{
    char path[300];
    make_variant("m-count", &(struct edit){.drop_key = "qwen3moe.expert_count"}, path, sizeof path);
    expect_load_error(path, mp, NTP_E_NOT_FOUND, (const char *const[]){"expert_count", NULL});
    make_variant("m-used", &(struct edit){.set_key = "qwen3moe.expert_used_count", .set_u32 = 9},
                 path, sizeof path);
    expect_load_error(
        path, mp, NTP_E_FORMAT,
        (const char *const[]){"qwen3moe.expert_used_count = 9 is more than", "= 8", NULL});
    make_variant("m-many", &(struct edit){.set_key = "qwen3moe.expert_count", .set_u32 = 100000},
                 path, sizeof path);
    expect_load_error(path, mp, NTP_E_FORMAT,
                      (const char *const[]){"qwen3moe.expert_count = 100000", "1 to 512", NULL});
    make_variant("m-fewer", &(struct edit){.set_key = "qwen3moe.expert_count", .set_u32 = 4}, path,
                 sizeof path);
    expect_load_error(path, mp, NTP_E_FORMAT,
                      (const char *const[]){"blk.0.ffn_gate_inp.weight", "expected [64, 4]", NULL});
    make_variant("m-shape", &(struct edit){.reshape_tensor = "blk.1.ffn_up_exps.weight"}, path,
                 sizeof path);
    expect_load_error(
        path, mp, NTP_E_FORMAT,
        (const char *const[]){"blk.1.ffn_up_exps.weight", "[64, 16, 8, 1]", "[64, 32, 8]", NULL});
    make_variant("m-missing", &(struct edit){.drop_tensor = "blk.1.ffn_down_exps.weight"}, path,
                 sizeof path);
    expect_load_error(path, mp, NTP_E_NOT_FOUND,
                      (const char *const[]){"blk.1.ffn_down_exps.weight", "qwen3moe", NULL});
    make_variant(
        "m-type",
        &(struct edit){.retype_tensor = "blk.0.ffn_gate_exps.weight", .new_type = NTP_TYPE_IQ4_NL},
        path, sizeof path);
    expect_load_error(path, mp, NTP_E_UNSUPPORTED,
                      (const char *const[]){"blk.0.ffn_gate_exps.weight", "IQ4_NL", NULL});
    mp.moe_split = 7;
    expect_load_error(base, mp, NTP_E_INVALID_ARG, (const char *const[]){"moe_split 7", NULL});
}

/* deepseek2: the latent attention's and the routing's keys and tensors. */
static void test_mla_errors(ntp_model_params mp)
{
    char path[300];
    make_variant("d-lora", &(struct edit){.drop_key = "deepseek2.attention.kv_lora_rank"}, path,
                 sizeof path);
    expect_load_error(path, mp, NTP_E_NOT_FOUND,
                      (const char *const[]){"deepseek2.attention.kv_lora_rank", NULL});
    make_variant("d-rope", &(struct edit){.drop_key = "deepseek2.rope.dimension_count"}, path,
                 sizeof path);
    expect_load_error(path, mp, NTP_E_NOT_FOUND,
                      (const char *const[]){"deepseek2.rope.dimension_count", NULL});
    make_variant("d-klen",
                 &(struct edit){.set_key = "deepseek2.attention.key_length", .set_u32 = 24}, path,
                 sizeof path);
    expect_load_error(path, mp, NTP_E_FORMAT,
                      (const char *const[]){"deepseek2.attention.key_length = 24",
                                            "key_length_mla", "= 40", NULL});
    make_variant("d-shared", &(struct edit){.drop_key = "deepseek2.expert_shared_count"}, path,
                 sizeof path);
    expect_load_error(path, mp, NTP_E_NOT_FOUND,
                      (const char *const[]){"deepseek2.expert_shared_count", NULL});
    make_variant("d-gating",
                 &(struct edit){.set_key = "deepseek2.expert_gating_func", .set_u32 = 4}, path,
                 sizeof path);
    expect_load_error(path, mp, NTP_E_UNSUPPORTED,
                      (const char *const[]){"deepseek2.expert_gating_func = 4", "sigmoid", NULL});
    make_variant("d-groups",
                 &(struct edit){.set_key = "deepseek2.expert_group_count", .set_u32 = 3}, path,
                 sizeof path);
    expect_load_error(path, mp, NTP_E_FORMAT,
                      (const char *const[]){"deepseek2.expert_group_count = 3",
                                            "does not divide", NULL});
    make_variant("d-dense",
                 &(struct edit){.set_key = "deepseek2.leading_dense_block_count", .set_u32 = 2},
                 path, sizeof path);
    expect_load_error(path, mp, NTP_E_NOT_FOUND,
                      (const char *const[]){"blk.1.ffn_gate.weight", NULL});
    make_variant("d-nextn", &(struct edit){.i32_key = "deepseek2.nextn_predict_layers", .i32 = 3},
                 path, sizeof path);
    expect_load_error(path, mp, NTP_E_FORMAT,
                      (const char *const[]){"deepseek2.nextn_predict_layers = 3", NULL});
    make_variant("d-kva", &(struct edit){.drop_tensor = "blk.1.attn_kv_a_mqa.weight"}, path,
                 sizeof path);
    expect_load_error(path, mp, NTP_E_NOT_FOUND,
                      (const char *const[]){"blk.1.attn_kv_a_mqa.weight", "deepseek2", NULL});
    make_variant("d-kb", &(struct edit){.reshape_tensor = "blk.0.attn_k_b.weight"}, path,
                 sizeof path);
    expect_load_error(path, mp, NTP_E_FORMAT,
                      (const char *const[]){"blk.0.attn_k_b.weight", "[16, 32, 4]", NULL});
    make_variant("d-shexp", &(struct edit){.drop_tensor = "blk.2.ffn_down_shexp.weight"}, path,
                 sizeof path);
    expect_load_error(path, mp, NTP_E_NOT_FOUND,
                      (const char *const[]){"blk.2.ffn_down_shexp.weight", NULL});
    /* the experts' gate and up fused into one tensor: its shape checked */
    struct ntp_gen_params p = fwd_small_mla();
    p.fuse_gate_up = true;
    char fused[300];
    if (fwd_gen(&p, "base-fused", fused, sizeof fused) != 0)
        return;
    snprintf(base, sizeof base, "%s", fused);
    make_variant("d-fused", &(struct edit){.reshape_tensor = "blk.1.ffn_gate_up_exps.weight"}, path,
                 sizeof path);
    expect_load_error(path, mp, NTP_E_FORMAT,
                      (const char *const[]){"blk.1.ffn_gate_up_exps.weight", "[64, 64, 8]",
                                            "gate and up", NULL});
}

static void test_decode_errors(void)
{
    ntp_model *m = NULL;
    ntp_context *c = NULL;
    ntp_model_params mp = ntp_model_default_params();
    mp.n_threads = 1;
    CHECK_OK(ntp_model_load(base, mp, &m));
    ntp_context_params cp = ntp_context_default_params();
    cp.n_ctx = 16;
    cp.kv_type = NTP_TYPE_Q4_K;
    CHECK_STATUS(ntp_context_new(m, cp, &c), NTP_E_UNSUPPORTED);
    CHECK(strstr(ntp_last_error(), "F16, F32, Q8_0 or Q4_0") != NULL);
    cp.kv_type = NTP_TYPE_F16;
    CHECK_OK(ntp_context_new(m, cp, &c));
    if (c == NULL) {
        ntp_model_free(m);
        return;
    }
    int32_t toks[17];
    fwd_tokens(toks, 17, 300, 1);
    CHECK_STATUS(ntp_decode(c, toks, 17, false), NTP_E_OVERFLOW);
    CHECK(strstr(ntp_last_error(), "n_ctx 16") != NULL);
    CHECK(ntp_context_pos(c) == 0);
    CHECK_OK(ntp_decode(c, toks, 10, false));
    CHECK_STATUS(ntp_decode(c, toks, 7, false), NTP_E_OVERFLOW);
    CHECK(ntp_context_pos(c) == 10);
    CHECK_OK(ntp_decode(c, toks, 6, true));
    CHECK(ntp_get_logits(c, 5) != NULL && ntp_get_logits(c, 6) == NULL);
    CHECK_STATUS(ntp_decode(c, toks, 1, false), NTP_E_OVERFLOW);
    ntp_context_reset(c);
    toks[3] = 300;
    CHECK_STATUS(ntp_decode(c, toks, 5, false), NTP_E_INVALID_ARG);
    toks[3] = -1;
    CHECK_STATUS(ntp_decode(c, toks, 5, false), NTP_E_INVALID_ARG);
    CHECK_STATUS(ntp_decode(c, toks, 0, false), NTP_E_INVALID_ARG);
    ntp_context_free(c);
    ntp_model_free(m);
    ntp_model_free(NULL);
    ntp_context_free(NULL);
}

int main(void)
{
    fwd_init();
    struct ntp_gen_params p = fwd_small("llama");
    if (fwd_gen(&p, "base", base, sizeof base) == 0) {
        test_load_errors();
        ntp_model_params mp = ntp_model_default_params();
        mp.n_threads = 1;
        test_counts(mp);
        test_decode_errors();
    }
    p = fwd_small("gemma3");
    p.n_swa = 4;
    p.tied_output = true;
    if (fwd_gen(&p, "base-gemma3", base, sizeof base) == 0) {
        ntp_model_params mp = ntp_model_default_params();
        mp.n_threads = 1;
        test_gemma3_errors(mp);
    }
    p = fwd_small("qwen3moe");
    p.n_expert = 8;
    p.n_ff_exp = 32;
    if (fwd_gen(&p, "base-moe", base, sizeof base) == 0) {
        ntp_model_params mp = ntp_model_default_params();
        mp.n_threads = 1;
        test_moe_errors(mp);
    }
    p = fwd_small_mla();
    p.n_group = 4;
    p.n_group_used = 2;
    if (fwd_gen(&p, "base-mla", base, sizeof base) == 0) {
        ntp_model_params mp = ntp_model_default_params();
        mp.n_threads = 1;
        test_mla_errors(mp);
    }
    ntp_model *m = (ntp_model *)1;
    CHECK_STATUS(ntp_model_load("/nonexistent/x.gguf", ntp_model_default_params(), &m), NTP_E_IO);
    fwd_cleanup();
    return ntp_test_result("test_forward_errors");
}
