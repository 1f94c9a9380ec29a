/*
 * test_tokenizer.c - the tokenizer beyond llama.cpp's test vectors:
 * pre-tokenizer splits for the families without a vector file (expected
 * words derived by hand from llama.cpp's regexes and checked against Python's
 * `regex` module), loading errors, invalid UTF-8, special tokens, BOS/EOS,
 * pieces and decoding, on small vocabularies written here and on the
 * llama-spm / phi-3 / gpt-2 files of tests/data/tokenizer.
 */
#include "test.h"
#include "tokenizer/pretok.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"

#include <stdlib.h>
#include <string.h>

#define DATA NTP_SOURCE_ROOT "/tests/data/tokenizer/"

/* ------------------------------------------------------ pre-tokenizers */

/*
 * Split text with kind and compare with want: the expected words joined by
 * '|' (the texts used here contain no '|').
 */
static void check_split(enum ntp__pre_kind kind, const char *text, const char *want)
{
    uint32_t cps[256];
    size_t n = 0, i = 0, len = strlen(text);
    while (i < len && n < 256)
        cps[n++] = ntp__utf8_next(text, &i);
    struct ntp__segs s = {0};
    CHECK_OK(ntp__pre_split(kind, cps, n, &s));
    char got[1024];
    size_t g = 0, byte = 0, cp = 0;
    for (size_t w = 0; w < s.n; w++) {
        size_t start = byte;
        for (size_t k = 0; k < s.len[w]; k++, cp++)
            byte += ntp__utf8_seq_len((unsigned char)text[byte]);
        if (w)
            got[g++] = '|';
        memcpy(got + g, text + start, byte - start);
        g += byte - start;
    }
    got[g] = '\0';
    if (strcmp(got, want) != 0) {
        fprintf(stderr, "split kind %d of '%s':\n  want '%s'\n  got  '%s'\n", (int)kind, text, want,
                got);
        ntp_test_failures++;
    }
    ntp__segs_free(&s);
}

static void test_splits(void)
{
    /* Llama 3: case-insensitive contractions, numbers in threes, newline runs kept whole. */
    check_split(NTP__PRE_LLAMA3, "I'VE 12345 apples\n\n  ok", "I|'VE| |123|45| apples|\n\n| | ok");
    check_split(NTP__PRE_LLAMA3, "don't  stop!!\r\nx", "don|'t| | stop|!!\r\n|x");
    check_split(NTP__PRE_LLAMA3, "1234567", "123|456|7");
    /* Qwen2: the same but single digits. */
    check_split(NTP__PRE_QWEN2, "I'VE 12345 apples", "I|'VE| |1|2|3|4|5| apples");
    check_split(NTP__PRE_QWEN2, "x'S  ok", "x|'S| | ok");
    check_split(NTP__PRE_QWEN2_NO_CONTR, "it's 42", "it|'s| |4|2");
    /* GPT-2: case-sensitive contractions, a space glued to the next word. */
    check_split(NTP__PRE_GPT2, "Hello  world 's 123", "Hello| | world| '|s| 123");
    check_split(NTP__PRE_GPT2, "I'VE ok", "I|'|VE| ok");
    /* default: punctuation runs first, then GPT-2, numbers, digit triples. */
    check_split(NTP__PRE_DEFAULT, "a+b=c 12345, 'll", "a|+|b|=|c| |123|45|,| |'|ll");
    /* StarCoder: every digit alone. */
    check_split(NTP__PRE_STARCODER, "abc123 4x", "abc|1|2|3| |4|x");
    /* Falcon: '`' counts as punctuation, digits in leftmost triples. */
    check_split(NTP__PRE_FALCON, "x`y 1234567 z", "x|`|y| |123|456|7| z");
    /* DeepSeek LLM: listed letters, CJK runs, trailing whitespace, U+3000 as \s. */
    check_split(NTP__PRE_DEEPSEEK_LLM, "Hello 世界123 ok!  \nπ ",
                "Hello| |世界|123| ok|!|  |\n|π| ");
    check_split(NTP__PRE_DEEPSEEK_LLM,
                "ab\xe3\x80\x80"
                "cd",
                "ab|\xe3\x80\x80"
                "cd");
    /* DeepSeek Coder: letters and punctuation with one optional space, single digits. */
    check_split(NTP__PRE_DEEPSEEK_CODER, "Hello, 世界 x42\n", "Hello|,| |世界| x|4|2|\n");
}

/* ------------------------------------------------- a small BPE vocabulary */

/* What make_vocab writes; a field left NULL is left out of the file. */
struct spec {
    const char *model;  /* tokenizer.ggml.model */
    const char *pre;    /* tokenizer.ggml.pre */
    bool merges;        /* write tokenizer.ggml.merges */
    bool tokens_as_u32; /* write tokenizer.ggml.tokens with the wrong type */
    bool no_tokens;     /* leave tokenizer.ggml.tokens out */
};

enum { V_HELLO = 256, V_XYZ, V_EOT, V_IM_START, V_COUNT };

static char sym_text[256][4];

static ntp_status make_vocab(const struct spec *sp, ntp_tokenizer **out)
{
    const char *toks[V_COUNT];
    int32_t types[V_COUNT];
    for (int b = 0; b < 256; b++) {
        sym_text[b][ntp__utf8_put(ntp__gpt2_byte_to_cp((uint8_t)b), sym_text[b])] = '\0';
        toks[b] = sym_text[b];
        types[b] = 1;
    }
    toks[V_HELLO] = "hello", types[V_HELLO] = 1;
    toks[V_XYZ] = "xyz", types[V_XYZ] = 1; /* no merge makes it */
    toks[V_EOT] = "<|endoftext|>", types[V_EOT] = 3;
    toks[V_IM_START] = "<|im_start|>", types[V_IM_START] = 3;
    static const char *const merges[] = {"h e", "l l", "ll o", "he llo"};
    ntp_gguf_writer *w = NULL;
    ntp_gguf *g = NULL;
    void *buf = NULL;
    size_t len = 0;
    CHECK_OK(ntp_gguf_writer_new(&w));
    if (sp->model)
        ntp_gguf_writer_set_str(w, "tokenizer.ggml.model", sp->model);
    if (sp->pre)
        ntp_gguf_writer_set_str(w, "tokenizer.ggml.pre", sp->pre);
    if (sp->tokens_as_u32)
        ntp_gguf_writer_set_u32(w, "tokenizer.ggml.tokens", 7);
    else if (!sp->no_tokens)
        ntp_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", toks, V_COUNT);
    ntp_gguf_writer_set_arr_data(w, "tokenizer.ggml.token_type", NTP_GGUF_INT32, types, V_COUNT);
    if (sp->merges)
        ntp_gguf_writer_set_arr_str(w, "tokenizer.ggml.merges", merges, 4);
    ntp_gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", V_EOT);
    ntp_gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", V_EOT);
    CHECK_OK(ntp_gguf_writer_to_buffer(w, &buf, &len));
    ntp_gguf_writer_free(w);
    CHECK_OK(ntp_gguf_parse(buf, len, &g));
    ntp_status st = g ? ntp__tokenizer_load(g, out) : NTP_E_INTERNAL;
    ntp_gguf_free(g);
    free(buf);
    return st;
}

static void check_ids(const ntp_tokenizer *t, const char *text, bool add_special,
                      bool parse_special, const int32_t *want, size_t n_want)
{
    int32_t got[64];
    size_t n = 0;
    CHECK_OK(ntp__tokenizer_encode(t, text, strlen(text), add_special, parse_special, got, 64, &n));
    bool same = n == n_want && memcmp(got, want, n * sizeof *got) == 0;
    if (!same) {
        fprintf(stderr, "encode '%s': got", text);
        for (size_t i = 0; i < n; i++)
            fprintf(stderr, " %d", got[i]);
        fprintf(stderr, "\n");
    }
    CHECK(same);
}

static void expect_error(const struct spec *sp, ntp_status want, const char *needle)
{
    ntp_tokenizer *t = (ntp_tokenizer *)1;
    CHECK_STATUS(make_vocab(sp, &t), want);
    CHECK(t == NULL);
    if (!strstr(ntp_last_error(), needle)) {
        fprintf(stderr, "error '%s' does not name '%s'\n", ntp_last_error(), needle);
        ntp_test_failures++;
    }
}

static void test_load_errors(void)
{
    expect_error(&(struct spec){"gpt2", "no-such-pre", true, false, false}, NTP_E_UNSUPPORTED,
                 "no-such-pre");
    expect_error(&(struct spec){"bert", "default", true, false, false}, NTP_E_UNSUPPORTED,
                 "'bert'");
    expect_error(&(struct spec){NULL, "default", true, false, false}, NTP_E_NOT_FOUND,
                 "tokenizer.ggml.model");
    expect_error(&(struct spec){"gpt2", "gpt-2", true, false, true}, NTP_E_NOT_FOUND,
                 "tokenizer.ggml.tokens");
    expect_error(&(struct spec){"gpt2", "gpt-2", true, true, false}, NTP_E_TYPE,
                 "tokenizer.ggml.tokens");
    expect_error(&(struct spec){"gpt2", "gpt-2", false, false, false}, NTP_E_NOT_FOUND,
                 "tokenizer.ggml.merges");
}

static void test_bpe_small(void)
{
    ntp_tokenizer *t = NULL;
    CHECK_OK(make_vocab(&(struct spec){"gpt2", "gpt-2", true, false, false}, &t));
    if (!t)
        return;
    CHECK(ntp__tokenizer_n_vocab(t) == V_COUNT);
    CHECK(ntp__tokenizer_model(t) == NTP__TOK_BPE);
    CHECK(strcmp(ntp__tokenizer_pre(t), "gpt-2") == 0);
    /* Merges reach "hello"; GPT-2 adds no BOS by default; "xyz" is no merge result. */
    check_ids(t, "hello", true, false, (int32_t[]){V_HELLO}, 1);
    check_ids(t, "xyz", false, false, (int32_t[]){'x', 'y', 'z'}, 3);
    /* Control tokens only with parse_special. */
    check_ids(t, "<|im_start|>hello", false, true, (int32_t[]){V_IM_START, V_HELLO}, 2);
    int32_t ids[64];
    size_t n = 0;
    CHECK_OK(ntp__tokenizer_encode(t, "<|im_start|>", 12, false, false, ids, 64, &n));
    CHECK(n > 1 && ids[0] != V_IM_START);
    /* EOT and EOG found by text; pieces and decoding. */
    CHECK(ntp__tokenizer_eot(t) == V_EOT);
    CHECK(ntp__tokenizer_is_eog(t, V_EOT));
    CHECK(!ntp__tokenizer_is_eog(t, V_HELLO));
    CHECK(!ntp__tokenizer_is_eog(t, -1));
    size_t len;
    const char *p = ntp__tokenizer_piece(t, 0, true, &len); /* "\xc4\x80" stands for 0x00 */
    CHECK(p && len == 1 && p[0] == '\0');
    p = ntp__tokenizer_piece(t, V_EOT, false, &len);
    CHECK(p && len == 0);
    p = ntp__tokenizer_piece(t, V_EOT, true, &len);
    CHECK(p && len == 13 && memcmp(p, "<|endoftext|>", 13) == 0);
    CHECK(ntp__tokenizer_piece(t, V_COUNT, true, &len) == NULL);
    char out[64];
    CHECK_OK(ntp__tokenizer_decode(t, (int32_t[]){V_EOT, V_HELLO}, 2, out, sizeof out, &len));
    CHECK(len == 5 && strcmp(out, "hello") == 0);
    CHECK_OK(ntp__tokenizer_decode_ex(t, (int32_t[]){V_EOT, V_HELLO}, 2, NTP__DECODE_SPECIAL, out,
                                      sizeof out, &len));
    CHECK(len == 18 && strcmp(out, "<|endoftext|>hello") == 0);
    CHECK_STATUS(ntp__tokenizer_decode(t, (int32_t[]){V_HELLO}, 1, out, 3, &len), NTP_E_OVERFLOW);
    CHECK(len == 5);
    CHECK_STATUS(ntp__tokenizer_decode(t, (int32_t[]){V_COUNT}, 1, out, 64, &len),
                 NTP_E_INVALID_ARG);
    /* Too small an output reports the count needed. */
    CHECK_STATUS(ntp__tokenizer_encode(t, "hello hello", 11, false, false, NULL, 0, &n),
                 NTP_E_OVERFLOW);
    CHECK(n == 3);
    ntp__tokenizer_free(t);

    /* Llama 3's pre-tokenizer adds BOS by default and takes words that are tokens whole. */
    CHECK_OK(make_vocab(&(struct spec){"gpt2", "llama-bpe", true, false, false}, &t));
    if (t) {
        CHECK(ntp__tokenizer_add_bos(t));
        check_ids(t, "xyz", true, false, (int32_t[]){V_EOT, V_XYZ}, 2);
        ntp__tokenizer_free(t);
    }
    /* Every family the brief names loads and runs; only Llama 3's adds BOS by default. */
    static const char *const pres[] = {"default", "gpt-2",        "llama3",        "qwen2",
                                       "smollm",  "starcoder",    "refact",        "mpt",
                                       "falcon",  "deepseek-llm", "deepseek-coder"};
    for (size_t i = 0; i < sizeof pres / sizeof pres[0]; i++) {
        CHECK_OK(make_vocab(&(struct spec){"gpt2", pres[i], true, false, false}, &t));
        if (!t)
            continue;
        CHECK(strcmp(ntp__tokenizer_pre(t), pres[i]) == 0);
        CHECK(ntp__tokenizer_add_bos(t) == (strcmp(pres[i], "llama3") == 0));
        check_ids(t, "hello", false, false, (int32_t[]){V_HELLO}, 1);
        ntp__tokenizer_free(t);
    }
    ntp__tokenizer_free(NULL);
}

/* ---------------------------------------------------------- invalid UTF-8 */

static void test_invalid_utf8(void)
{
    static const struct {
        const char *s;
        size_t off;
    } bad[] = {
        {"ab\xC3(", 2},           /* missing continuation */
        {"\xC0\xAF", 0},          /* overlong '/' */
        {"ok \xED\xA0\x80", 3},   /* UTF-16 surrogate */
        {"x\xF4\x90\x80\x80", 1}, /* above U+10FFFF */
        {"euro \xE2\x82", 5},     /* cut short at the end */
        {"\x80", 0},              /* stray continuation byte */
        {"fine\xFF", 4},          /* never valid */
    };
    ntp_tokenizer *t = NULL;
    CHECK_OK(make_vocab(&(struct spec){"gpt2", "gpt-2", true, false, false}, &t));
    if (!t)
        return;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int32_t ids[16];
        size_t n = 99;
        char needle[32];
        CHECK_STATUS(ntp__tokenizer_encode(t, bad[i].s, strlen(bad[i].s), true, true, ids, 16, &n),
                     NTP_E_INVALID_ARG);
        snprintf(needle, sizeof needle, "offset %zu ", bad[i].off);
        if (!strstr(ntp_last_error(), needle)) {
            fprintf(stderr, "'%s' does not say '%s'\n", ntp_last_error(), needle);
            ntp_test_failures++;
        }
        CHECK(n == 0);
    }
    ntp__tokenizer_free(t);
}

/* ------------------------------------------------ the llama.cpp test files */

static ntp_tokenizer *open_vocab(const char *name)
{
    ntp_gguf *g = NULL;
    ntp_tokenizer *t = NULL;
    CHECK_OK(ntp_gguf_open(name, &g));
    if (g)
        CHECK_OK(ntp__tokenizer_load(g, &t));
    ntp_gguf_free(g);
    return t;
}

/* ids of text (no BOS, no special parsing) into out; returns the count. */
static size_t enc(const ntp_tokenizer *t, const char *text, bool special, int32_t *out)
{
    size_t n = 0;
    CHECK_OK(ntp__tokenizer_encode(t, text, strlen(text), false, special, out, 64, &n));
    return n;
}

static void test_spm(void)
{
    ntp_tokenizer *t = open_vocab(DATA "ggml-vocab-llama-spm.gguf");
    if (!t)
        return;
    CHECK(ntp__tokenizer_model(t) == NTP__TOK_SPM);
    CHECK(ntp__tokenizer_bos(t) == 1 && ntp__tokenizer_eos(t) == 2 && ntp__tokenizer_unk(t) == 0);
    CHECK(ntp__tokenizer_eot(t) == NTP_TOKEN_NONE);
    CHECK(ntp__tokenizer_is_eog(t, 2) && !ntp__tokenizer_is_eog(t, 1));
    int32_t a[64], b[64];
    size_t n;
    CHECK_OK(ntp__tokenizer_encode(t, "Hello world", 11, true, false, a, 64, &n));
    CHECK(n == 3 && a[0] == 1 && a[1] == 15043 && a[2] == 3186);
    char out[256];
    size_t len;
    CHECK_OK(ntp__tokenizer_decode(t, a + 1, n - 1, out, sizeof out, &len));
    CHECK(len == 11 && strcmp(out, "Hello world") == 0);
    /* As in llama.cpp, the prefix space stays when a BOS comes first (removed or not). */
    CHECK_OK(ntp__tokenizer_decode_ex(t, a, n, NTP__DECODE_REMOVE_BOS, out, sizeof out, &len));
    CHECK(len == 12 && strcmp(out, " Hello world") == 0);
    CHECK_OK(ntp__tokenizer_decode_ex(t, a, n, NTP__DECODE_SPECIAL, out, sizeof out, &len));
    CHECK(len == 15 && strcmp(out, "<s> Hello world") == 0);
    /* Pieces: U+2581 is a space, <0x0A> is a newline byte, control tokens only on request. */
    const char *p = ntp__tokenizer_piece(t, 15043, false, &len);
    CHECK(len == 6 && memcmp(p, " Hello", 6) == 0);
    p = ntp__tokenizer_piece(t, 13, false, &len);
    CHECK(len == 1 && p[0] == '\n');
    ntp__tokenizer_piece(t, 2, false, &len);
    CHECK(len == 0);
    p = ntp__tokenizer_piece(t, 2, true, &len);
    CHECK(len == 4 && memcmp(p, "</s>", 4) == 0);
    /* After a special token the text gets its space prefix again. */
    size_t na = enc(t, "<s>hi", true, a), nb = enc(t, "hi", false, b);
    CHECK(na == nb + 1 && a[0] == 1 && memcmp(a + 1, b, nb * sizeof *b) == 0);
    /* A character no token spells falls back to its UTF-8 bytes. */
    na = enc(t, "\xf0\x9f\xa6\x99", false, a); /* U+1F999 */
    CHECK(na == 5 && a[0] == 29871 && a[1] == 0xF0 + 3 && a[4] == 0x99 + 3);
    ntp__tokenizer_free(t);
}

static void test_phi3_rstrip(void)
{
    ntp_tokenizer *t = open_vocab(DATA "ggml-vocab-phi-3.gguf");
    if (!t)
        return;
    int32_t a[64], b[64];
    /* Phi-3's special tokens swallow the whitespace after them. */
    size_t na = enc(t, "<|end|>  \n hi", true, a), nb = enc(t, "hi", false, b);
    CHECK(na == nb + 1 && a[0] == 32007 && memcmp(a + 1, b, nb * sizeof *b) == 0);
    CHECK(ntp__tokenizer_attr(t, 32007) & NTP__TOK_RSTRIP);
    CHECK(!(ntp__tokenizer_attr(t, 1) & NTP__TOK_RSTRIP));
    CHECK(ntp__tokenizer_eot(t) == 32007); /* "<|end|>" by its text */
    CHECK(ntp__tokenizer_is_eog(t, 32000) && ntp__tokenizer_is_eog(t, 32007));
    ntp__tokenizer_free(t);
}

static void test_gpt2_file(void)
{
    ntp_tokenizer *t = open_vocab(DATA "ggml-vocab-gpt-2.gguf");
    if (!t)
        return;
    int32_t a[64];
    CHECK(enc(t, "<|endoftext|>", true, a) == 1 && a[0] == 50256);
    CHECK(enc(t, "<|endoftext|>", false, a) > 1);
    CHECK(!ntp__tokenizer_add_bos(t));
    CHECK(ntp__tokenizer_bos(t) == 50256 && ntp__tokenizer_eot(t) == 50256);
    /* Clean-up of tokenization spaces, as llama.cpp decodes GPT-2 text. */
    char out[128];
    size_t len, n = enc(t, "Hi , you 're here .", false, a);
    CHECK_OK(ntp__tokenizer_decode(t, a, n, out, sizeof out, &len));
    CHECK(strcmp(out, "Hi, you're here.") == 0);
    ntp__tokenizer_free(t);
}

int main(void)
{
    test_splits();
    test_load_errors();
    test_bpe_small();
    test_invalid_utf8();
    test_spm();
    test_phi3_rstrip();
    test_gpt2_file();
    return ntp_test_result("tokenizer");
}
