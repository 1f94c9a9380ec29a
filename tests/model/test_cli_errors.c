/*
 * test_cli_errors.c - bad input through the command line (argv[1] is the
 * numatp binary). Each case must exit with status 1 (or 2 for usage), not
 * crash, print nothing on stdout, and say on stderr what was wrong:
 *  - invalid UTF-8 in `run -p`, `tokenize -p`, a `chat` line and a
 *    `perplexity` text file;
 *  - a prompt longer than the context (`run -c 8`, `chat -c 8`);
 *  - unknown architecture, tokenizer model and pre-tokenizer (files written
 *    by the generator, then edited);
 *  - a model file cut inside the header and inside the tensor data, an
 *    empty file, a directory and a missing path.
 * The library-level counterparts are in test_forward_errors.c.
 */
#include "forward_util.h"

#include <sys/wait.h>

static const char *numatp;
static char model[300];

/* How a variant of the base model differs: one string key set to a new value. */
static void make_variant(const char *name, const char *key, const char *value, char *path,
                         size_t size)
{
    snprintf(path, size, "%s/%s.gguf", fwd_tmpdir, name);
    ntp_gguf *g = NULL;
    ntp_gguf_writer *w = NULL;
    CHECK_OK(ntp_gguf_open(model, &g));
    CHECK_OK(ntp_gguf_writer_new(&w));
    if (g == NULL || w == NULL)
        exit(1);
    for (int64_t i = 0; i < ntp_gguf_n_kv(g); i++) {
        const char *k = ntp_gguf_kv_key(g, i);
        if (strcmp(k, key) == 0)
            CHECK_OK(ntp_gguf_writer_set_str(w, k, value));
        else
            CHECK_OK(ntp_gguf_writer_set_value(w, k, ntp_gguf_kv_value(g, i)));
    }
    for (int64_t i = 0; i < ntp_gguf_n_tensors(g); i++) {
        const ntp_gguf_tensor *t = ntp_gguf_tensor_at(g, i);
        CHECK_OK(ntp_gguf_writer_add_tensor(w, t->name, t->type, t->n_dims, t->ne, t->data));
    }
    CHECK_OK(ntp_gguf_writer_write_file(w, path));
    ntp_gguf_writer_free(w);
    ntp_gguf_free(g);
}

/* The first n bytes of the base model in <tmp>/<name>.gguf. */
static void make_truncated(const char *name, long n, char *path, size_t size)
{
    snprintf(path, size, "%s/%s.gguf", fwd_tmpdir, name);
    FILE *in = fopen(model, "rb"), *out = fopen(path, "wb");
    CHECK(in != NULL && out != NULL);
    for (long i = 0; in && out && i < n; i++) {
        const int c = fgetc(in);
        if (c == EOF)
            break;
        fputc(c, out);
    }
    if (in)
        fclose(in);
    if (out)
        fclose(out);
}

static long file_size(const char *path)
{
    FILE *f = fopen(path, "rb");
    long n = -1;
    if (f && fseek(f, 0, SEEK_END) == 0)
        n = ftell(f);
    if (f)
        fclose(f);
    return n;
}

static size_t slurp(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "rb");
    size_t n = f ? fread(buf, 1, cap - 1, f) : 0;
    if (f)
        fclose(f);
    buf[n] = '\0';
    return n;
}

/*
 * Run `numatp ARGS` (stdin from the shell snippet `input`, or /dev/null) and
 * check: exit status want, no output on stdout beyond blank lines, and
 * every needle in stderr.
 */
static void expect_error(const char *what, const char *input, const char *args, int want,
                         const char *const *needles)
{
    char cmd[2048], out[300], err[300], so[4096], se[4096];
    snprintf(out, sizeof out, "%s/stdout", fwd_tmpdir);
    snprintf(err, sizeof err, "%s/stderr", fwd_tmpdir);
    snprintf(cmd, sizeof cmd, "%s %s | %s %s >'%s' 2>'%s'", input ? "printf" : "true",
             input ? input : "", numatp, args, out, err);
    const int st = system(cmd);
    const int rc = st != -1 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    slurp(out, so, sizeof so);
    slurp(err, se, sizeof se);
    printf("%-22s exit %d: %s", what, rc, strstr(se, "numatp") ? strstr(se, "numatp") : se);
    if (rc != want) {
        fprintf(stderr, "  %s: exit %d, expected %d\n", what, rc, want);
        ntp_test_failures++;
    }
    for (const char *c = so; *c; c++)
        if (*c != '\n') {
            fprintf(stderr, "  %s: unexpected stdout '%s'\n", what, so);
            ntp_test_failures++;
            break;
        }
    for (; *needles; needles++)
        if (strstr(se, *needles) == NULL) {
            fprintf(stderr, "  %s: stderr lacks '%s'\n", what, *needles);
            ntp_test_failures++;
        }
}

static void test_utf8(void)
{
    char args[1024], text[300];
    const char *const bad[] = {"not valid UTF-8", "0xFF", NULL};
    snprintf(args, sizeof args, "run -m '%s' -p \"$(printf 'ab\\377\\376cd')\" -n 2 -t 1", model);
    expect_error("run -p invalid UTF-8", NULL, args, 1, bad);
    snprintf(args, sizeof args, "tokenize -m '%s' -p \"$(printf 'ab\\377cd')\"", model);
    expect_error("tokenize invalid UTF-8", NULL, args, 1, bad);
    snprintf(args, sizeof args, "chat -m '%s' -n 2 -t 1 -c 64", model);
    expect_error("chat invalid UTF-8", "'ab\\377cd\\n'", args, 1, bad);
    snprintf(text, sizeof text, "%s/bad.txt", fwd_tmpdir);
    FILE *f = fopen(text, "wb");
    for (int i = 0; f && i < 40; i++)
        fputs("cat sat \xff mat ", f);
    if (f)
        fclose(f);
    snprintf(args, sizeof args, "perplexity -m '%s' -f '%s' -c 16 -t 1", model, text);
    expect_error("perplexity invalid UTF-8", NULL, args, 1,
                 (const char *const[]){text, "not valid UTF-8", NULL});
}

static void test_overflow(void)
{
    char args[1024];
    snprintf(args, sizeof args,
             "run -m '%s' -p 'the cat sat on the mat and then it slept all day' -c 8 -n 2 -t 1",
             model);
    expect_error("run -c 8", NULL, args, 1,
                 (const char *const[]){"context overflow", "n_ctx 8", NULL});
    snprintf(args, sizeof args, "chat -m '%s' -c 8 -n 2 -t 1", model);
    expect_error("chat -c 8", "'the cat sat on the mat and then it slept\\n'", args, 1,
                 (const char *const[]){"fills the context", "of 8 positions", NULL});
}

static void test_bad_files(void)
{
    char path[300], args[1024];
    make_variant("arch", "general.architecture", "mamba", path, sizeof path);
    snprintf(args, sizeof args, "run -m '%s' -p hi -n 2 -t 1", path);
    expect_error("unknown architecture", NULL, args, 1,
                 (const char *const[]){path, "general.architecture", "mamba", NULL});
    make_variant("pre", "tokenizer.ggml.pre", "klingon", path, sizeof path);
    snprintf(args, sizeof args, "run -m '%s' -p hi -n 2 -t 1", path);
    expect_error("unknown pre-tokenizer", NULL, args, 1,
                 (const char *const[]){path, "tokenizer.ggml.pre", "klingon", NULL});
    make_variant("tokmodel", "tokenizer.ggml.model", "wordpiece", path, sizeof path);
    snprintf(args, sizeof args, "run -m '%s' -p hi -n 2 -t 1", path);
    expect_error("unknown tokenizer", NULL, args, 1,
                 (const char *const[]){path, "tokenizer.ggml.model", "wordpiece", NULL});
    make_truncated("cut-header", 3000, path, sizeof path);
    snprintf(args, sizeof args, "run -m '%s' -p hi -n 2 -t 1", path);
    expect_error("cut in the header", NULL, args, 1,
                 (const char *const[]){path, "only", "left", NULL});
    make_truncated("cut-data", file_size(model) - 100, path, sizeof path);
    snprintf(args, sizeof args, "run -m '%s' -p hi -n 2 -t 1", path);
    expect_error("cut in the data", NULL, args, 1,
                 (const char *const[]){path, "outside the file", NULL});
    make_truncated("empty", 0, path, sizeof path);
    snprintf(args, sizeof args, "run -m '%s' -p hi -n 2 -t 1", path);
    expect_error("empty file", NULL, args, 1, (const char *const[]){path, "empty file", NULL});
    snprintf(args, sizeof args, "run -m '%s' -p hi -n 2 -t 1", fwd_tmpdir);
    expect_error("directory", NULL, args, 1,
                 (const char *const[]){fwd_tmpdir, "not a regular file", NULL});
    snprintf(path, sizeof path, "%s/missing.gguf", fwd_tmpdir);
    snprintf(args, sizeof args, "run -m '%s' -p hi -n 2 -t 1", path);
    expect_error("missing file", NULL, args, 1, (const char *const[]){path, NULL});
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: test_cli_errors NUMATP\n");
        return 1;
    }
    numatp = argv[1];
    fwd_init();
    struct ntp_gen_params p = fwd_small("llama");
    if (fwd_gen(&p, "base", model, sizeof model) == 0) {
        test_utf8();
        test_overflow();
        test_bad_files();
    }
    fwd_cleanup();
    return ntp_test_result("test_cli_errors");
}
