/*
 * make_gguf_seeds.c - writes the fuzzer's seed corpus (small valid GGUF files
 * made with the writer) into a folder, or with --check compares the folder
 * with what it would write, so the committed seeds stay in step with the code.
 *
 *   make_gguf_seeds tests/fuzz/corpus/gguf           (re)write the seeds
 *   make_gguf_seeds --check tests/fuzz/corpus/gguf   exit 1 if one differs
 */
#include "ntp.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SEED_BYTES 4096

static void must(ntp_status s)
{
    if (s != NTP_OK) {
        fprintf(stderr, "make_gguf_seeds: %s: %s\n", ntp_status_str(s), ntp_last_error());
        exit(1);
    }
}

static void seed_scalars(ntp_gguf_writer *w)
{
    must(ntp_gguf_writer_set_str(w, "general.architecture", "llama"));
    must(ntp_gguf_writer_set_u32(w, "llama.block_count", 2));
    must(ntp_gguf_writer_set_i32(w, "x.i32", -5));
    must(ntp_gguf_writer_set_u64(w, "x.u64", 1ull << 40));
    must(ntp_gguf_writer_set_f32(w, "llama.rope.freq_base", 10000.0f));
    must(ntp_gguf_writer_set_bool(w, "x.bool", true));
    const ntp_gguf_value more[] = {
        {.type = NTP_GGUF_UINT8, .u8 = 200},           {.type = NTP_GGUF_INT8, .i8 = -3},
        {.type = NTP_GGUF_UINT16, .u16 = 999},         {.type = NTP_GGUF_INT16, .i16 = -999},
        {.type = NTP_GGUF_INT64, .i64 = -1},           {.type = NTP_GGUF_FLOAT64, .f64 = 0.5},
        {.type = NTP_GGUF_STRING, .str = {"a\0b", 3}},
    };
    for (size_t i = 0; i < sizeof more / sizeof more[0]; i++) {
        char key[16];
        snprintf(key, sizeof key, "x.v%zu", i);
        must(ntp_gguf_writer_set_value(w, key, &more[i]));
    }
}

static void seed_arrays(ntp_gguf_writer *w)
{
    static const uint8_t raw[32] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
    for (int t = 0; t < NTP_GGUF_TYPE_COUNT; t++) {
        if (t == NTP_GGUF_STRING || t == NTP_GGUF_ARRAY || t == NTP_GGUF_BOOL)
            continue;
        char key[32];
        snprintf(key, sizeof key, "a.%s", ntp_gguf_type_name(t));
        must(ntp_gguf_writer_set_arr_data(w, key, (enum ntp_gguf_type)t, raw, 2));
    }
    must(ntp_gguf_writer_set_arr_data(w, "a.bool", NTP_GGUF_BOOL, (bool[]){true, false}, 2));
    ntp_gguf_value e[2] = {{.type = NTP_GGUF_STRING, .str = {"x", 1}},
                           {.type = NTP_GGUF_STRING, .str = {"yz", 2}}};
    ntp_gguf_value in[2] = {{.type = NTP_GGUF_ARRAY, .arr = {NTP_GGUF_STRING, 2, e}},
                            {.type = NTP_GGUF_ARRAY, .arr = {NTP_GGUF_STRING, 0, NULL}}};
    ntp_gguf_value nested = {.type = NTP_GGUF_ARRAY, .arr = {NTP_GGUF_ARRAY, 2, in}};
    must(ntp_gguf_writer_set_value(w, "a.nested", &nested));
}

static void seed_vocab(ntp_gguf_writer *w)
{
    const char *tokens[] = {"<unk>", "<s>", "</s>", "\xe2\x96\x81the", "a", "b", "ab", "<0x0A>"};
    const float scores[] = {0, 0, 0, -1, -2, -3, -4, -5};
    const int32_t types[] = {2, 3, 3, 1, 1, 1, 1, 6};
    const char *merges[] = {"a b", "\xc4\xa0 t"};
    must(ntp_gguf_writer_set_str(w, "tokenizer.ggml.model", "llama"));
    must(ntp_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", tokens, 8));
    must(ntp_gguf_writer_set_arr_data(w, "tokenizer.ggml.scores", NTP_GGUF_FLOAT32, scores, 8));
    must(ntp_gguf_writer_set_arr_data(w, "tokenizer.ggml.token_type", NTP_GGUF_INT32, types, 8));
    must(ntp_gguf_writer_set_arr_str(w, "tokenizer.ggml.merges", merges, 2));
    must(ntp_gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", 1));
}

static void seed_tensors(ntp_gguf_writer *w)
{
    static uint8_t data[2 * 210];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (uint8_t)(i * 13);
    must(ntp_gguf_writer_set_alignment(w, 64));
    must(ntp_gguf_writer_add_tensor(w, "token_embd.weight", NTP_TYPE_F32, 2, (int64_t[]){4, 3},
                                    data));
    must(
        ntp_gguf_writer_add_tensor(w, "output_norm.weight", NTP_TYPE_F16, 1, (int64_t[]){6}, data));
    must(ntp_gguf_writer_add_tensor(w, "blk.0.attn_q.weight", NTP_TYPE_Q4_0, 3,
                                    (int64_t[]){32, 2, 1}, data));
    must(ntp_gguf_writer_add_tensor(w, "blk.0.ffn_up.weight", NTP_TYPE_Q8_0, 2, (int64_t[]){64, 1},
                                    data));
    must(ntp_gguf_writer_add_tensor(w, "blk.0.ffn_down.weight", NTP_TYPE_Q6_K, 4,
                                    (int64_t[]){256, 1, 1, 1}, data));
    must(ntp_gguf_writer_add_tensor(w, "blk.0.x.weight", NTP_TYPE_IQ2_XXS, 1, (int64_t[]){256},
                                    data));
}

struct seed {
    const char *name;
    void (*fill)(ntp_gguf_writer *w);
    uint8_t version; /* what the version field says: 2 or 3 (same layout) */
};

static void seed_tensors_v2(ntp_gguf_writer *w)
{
    must(ntp_gguf_writer_set_str(w, "general.name", "v2"));
    must(ntp_gguf_writer_add_tensor(w, "w", NTP_TYPE_BF16, 2, (int64_t[]){8, 2},
                                    (uint8_t[32]){1, 2, 3}));
}

static void seed_empty(ntp_gguf_writer *w)
{
    (void)w;
}

static const struct seed seeds[] = {
    {"empty.gguf", seed_empty, 3},     {"scalars.gguf", seed_scalars, 3},
    {"arrays.gguf", seed_arrays, 3},   {"vocab.gguf", seed_vocab, 3},
    {"tensors.gguf", seed_tensors, 3}, {"tensors-v2.gguf", seed_tensors_v2, 2},
};

/* 0 when path holds exactly buf[0, len). */
static int compare_file(const char *path, const void *buf, size_t len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return 1;
    static uint8_t have[MAX_SEED_BYTES + 1];
    size_t n = fread(have, 1, sizeof have, f);
    fclose(f);
    return n != len || memcmp(have, buf, len) != 0;
}

int main(int argc, char **argv)
{
    int check = argc == 3 && strcmp(argv[1], "--check") == 0;
    if (argc != 2 + check) {
        fprintf(stderr, "usage: %s [--check] <corpus dir>\n", argv[0]);
        return 2;
    }
    const char *dir = argv[1 + check];
    int bad = 0;
    for (size_t i = 0; i < sizeof seeds / sizeof seeds[0]; i++) {
        ntp_gguf_writer *w;
        must(ntp_gguf_writer_new(&w));
        seeds[i].fill(w);
        void *buf;
        size_t len;
        must(ntp_gguf_writer_to_buffer(w, &buf, &len));
        ntp_gguf_writer_free(w);
        ((uint8_t *)buf)[4] = seeds[i].version;
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, seeds[i].name);
        if (len > MAX_SEED_BYTES) {
            fprintf(stderr, "%s: %zu bytes, seeds stay under %d\n", path, len, MAX_SEED_BYTES);
            bad = 1;
        } else if (check) {
            if (compare_file(path, buf, len) != 0) {
                fprintf(stderr, "%s differs from what make_gguf_seeds writes; rerun it\n", path);
                bad = 1;
            }
        } else {
            FILE *f = fopen(path, "wb");
            bool ok = f != NULL && fwrite(buf, 1, len, f) == len;
            if (f != NULL && fclose(f) != 0)
                ok = false;
            if (!ok) {
                fprintf(stderr, "%s: cannot write\n", path);
                bad = 1;
            }
            printf("%s: %zu bytes\n", path, len);
        }
        free(buf);
    }
    return bad;
}
