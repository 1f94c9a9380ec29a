/*
 * test_tok_fixtures.c - llama.cpp's tokenizer test vectors: every case of
 * tests/data/tokenizer/<vocab>.gguf.inp must give the ids of the matching
 * line of .out (tokenized without BOS and without parsing special tokens),
 * read exactly as llama.cpp's tests/test-tokenizer-0.cpp reads them. Decoding
 * the ids must give the text back, except for the cases listed per file,
 * where llama.cpp's detokenizer does not give it back either (see below).
 * A fixture may name another pre-tokenizer for its vocabulary: the file is
 * then copied with that tokenizer.ggml.pre, and the ids are those llama.cpp's
 * llama-tokenize gives for the copy (<vocab>.gguf.<pre>.out; the deepseek-v3
 * pre-tokenizer has no vocabulary of its own among llama.cpp's test files).
 *
 * Usage: test_tok_fixtures [vocab.gguf ...] (default: every fixture).
 */
#include "test.h"
#include "tokenizer/tokenizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    long n;
    if (!f)
        return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
        (buf = malloc((size_t)n + 1)) != NULL) {
        *len = fread(buf, 1, (size_t)n, f);
        buf[*len] = '\0';
    }
    fclose(f);
    return buf;
}

/*
 * Cases whose decoded text differs from the input in llama.cpp too: GPT-2
 * and StarCoder vocabularies "clean up tokenization spaces" when decoding,
 * so " ?" comes back as "?" (cases 32 and 45 hold "😁 ?").
 */
struct fixture {
    const char *name;
    const char *no_roundtrip; /* comma-separated case numbers, or "" */
    const char *pre;          /* another tokenizer.ggml.pre for the vocabulary, or NULL */
};

/* A copy of the vocabulary file path with tokenizer.ggml.pre = pre, at out. */
static void copy_with_pre(const char *path, const char *pre, const char *out)
{
    ntp_gguf *g = NULL;
    ntp_gguf_writer *w = NULL;
    CHECK_OK(ntp_gguf_open(path, &g));
    CHECK_OK(ntp_gguf_writer_new(&w));
    for (int64_t i = 0; g && w && i < ntp_gguf_n_kv(g); i++) {
        const char *key = ntp_gguf_kv_key(g, i);
        if (strcmp(key, "tokenizer.ggml.pre") == 0)
            CHECK_OK(ntp_gguf_writer_set_str(w, key, pre));
        else
            CHECK_OK(ntp_gguf_writer_set_value(w, key, ntp_gguf_kv_value(g, i)));
    }
    if (w)
        CHECK_OK(ntp_gguf_writer_write_file(w, out));
    ntp_gguf_writer_free(w);
    ntp_gguf_free(g);
}

static bool listed(const char *list, int k)
{
    char key[16];
    snprintf(key, sizeof key, ",%d,", k);
    char buf[256];
    snprintf(buf, sizeof buf, ",%s,", list);
    return strstr(buf, key) != NULL;
}

/* Parse a line of ids like llama.cpp: strip, then space-separated integers. */
static size_t parse_ids(const char *line, size_t len, int32_t *out, size_t cap)
{
    size_t n = 0, i = 0;
    while (i < len) {
        while (i < len && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r'))
            i++;
        if (i >= len)
            break;
        if (n < cap)
            out[n] = (int32_t)strtol(line + i, NULL, 10);
        n++;
        while (i < len && line[i] != ' ')
            i++;
    }
    return n;
}

static void check_case(const ntp_tokenizer *t, const struct fixture *fx, int k, const char *text,
                       size_t len, const char *line, size_t line_len)
{
    int32_t want[1024], got[1024];
    size_t n_want = parse_ids(line, line_len, want, 1024), n_got = 0;
    CHECK_OK(ntp__tokenizer_encode(t, text, len, false, false, got, 1024, &n_got));
    bool same = n_got == n_want && memcmp(got, want, n_got * sizeof *got) == 0;
    if (!same) {
        fprintf(stderr, "%s case %d: '%.*s'\n  want:", fx->name, k, (int)len, text);
        for (size_t i = 0; i < n_want; i++)
            fprintf(stderr, " %d", want[i]);
        fprintf(stderr, "\n  got: ");
        for (size_t i = 0; i < n_got; i++)
            fprintf(stderr, " %d", got[i]);
        fprintf(stderr, "\n");
    }
    CHECK(same);
    char back[8192];
    size_t blen = 0;
    CHECK_OK(ntp__tokenizer_decode(t, got, n_got, back, sizeof back, &blen));
    bool round = blen == len && memcmp(back, text, len) == 0;
    if (round == listed(fx->no_roundtrip, k)) {
        fprintf(stderr, "%s case %d: decode %s: '%.*s' -> '%.*s'\n", fx->name, k,
                round ? "unexpectedly round-trips" : "does not round-trip", (int)len, text,
                (int)blen, back);
        ntp_test_failures++;
    }
}

static void run_fixture(const struct fixture *fx, const char *dir)
{
    char path[1024], pin[1040], pout[1080], copy[64] = "";
    snprintf(path, sizeof path, "%s/%s", dir, fx->name);
    snprintf(pin, sizeof pin, "%s.inp", path);
    snprintf(pout, sizeof pout, "%s%s%s.out", path, fx->pre ? "." : "", fx->pre ? fx->pre : "");
    if (fx->pre) {
        snprintf(copy, sizeof copy, "/tmp/ntp_tok_pre_%d.gguf", (int)getpid());
        copy_with_pre(path, fx->pre, copy);
        snprintf(path, sizeof path, "%s", copy);
    }
    ntp_gguf *g = NULL;
    ntp_tokenizer *t = NULL;
    size_t lin = 0, lout = 0;
    char *inp = slurp(pin, &lin), *out = slurp(pout, &lout);
    CHECK(inp && out);
    CHECK_OK(ntp_gguf_open(path, &g));
    if (g)
        CHECK_OK(ntp__tokenizer_load(g, &t));
    ntp_gguf_free(g);
    if (!t || !inp || !out)
        goto done;
    static const char sep[] = "\n__ggml_vocab_test__\n";
    size_t pos = 0, opos = 0;
    int k = 0;
    while (pos < lin) {
        const char *next = strstr(inp + pos, sep);
        size_t clen = next ? (size_t)(next - (inp + pos)) : lin - pos;
        const char *nl = memchr(out + opos, '\n', lout - opos);
        size_t llen = nl ? (size_t)(nl - (out + opos)) : lout - opos;
        CHECK(opos < lout);
        if (opos >= lout)
            break;
        check_case(t, fx, k++, inp + pos, clen, out + opos, llen);
        opos += llen + (nl != NULL);
        pos = next ? pos + clen + sizeof sep - 1 : lin;
    }
    CHECK(opos == lout); /* as many lines as cases */
    printf("%s%s%s: %d cases\n", fx->name, fx->pre ? " as " : "", fx->pre ? fx->pre : "", k);
done:
    if (copy[0])
        remove(copy);
    ntp__tokenizer_free(t);
    free(inp);
    free(out);
}

int main(int argc, char **argv)
{
    static const struct fixture all[] = {
        {"ggml-vocab-llama-spm.gguf", "", NULL},
        {"ggml-vocab-phi-3.gguf", "", NULL},
        {"ggml-vocab-gpt-2.gguf", "32,45", NULL},
        {"ggml-vocab-starcoder.gguf", "32,45", NULL},
        {"ggml-vocab-gpt-2.gguf", "", "deepseek-v3"}, /* no cleaning of spaces there */
    };
    const char *dir = NTP_SOURCE_ROOT "/tests/data/tokenizer";
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        bool want = argc < 2;
        for (int a = 1; a < argc; a++)
            want |= strcmp(argv[a], all[i].name) == 0;
        if (want)
            run_fixture(&all[i], dir);
    }
    return ntp_test_result("tok_fixtures");
}
