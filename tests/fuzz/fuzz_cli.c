/*
 * fuzz_cli.c - libFuzzer target for the numatp commands' arguments. An
 * input is a command name and its arguments, one per line
 * ("run\n-m\n@m\n-p\nhi"); "@m" stands for a vocabulary-only GGUF file and
 * "@t" for a short text, both written once at start-up. The commands run
 * in-process with stdin and stdout at /dev/null: each parses and checks its
 * arguments, reads its text inputs and the model's metadata and tokenizer,
 * and then fails to load weights at once, since the file has none, so no
 * input runs for long. gen (writes files where it is told) and numa-bench
 * (measures for seconds) are left out, and bench gets `--stream-size 0`
 * appended so that it does not measure memory before loading. A crash, a
 * sanitizer report or a leak is a finding.
 */
#include "cli/cli.h"
#include "ntp.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_ARGS  32
#define MAX_INPUT 4096

static char dir[] = "/tmp/ntp-fuzz-cli.XXXXXX";
static char model_path[64], text_path[64];

static const struct {
    const char *name;
    ntp_cli_cmd_fn fn;
} commands[] = {
    {"run", ntp_cli_run},           {"chat", ntp_cli_chat}, {"perplexity", ntp_cli_perplexity},
    {"tokenize", ntp_cli_tokenize}, {"info", ntp_cli_info}, {"plan", ntp_cli_plan},
    {"bench", ntp_cli_bench},
};

/* A finding that is not a crash, or a set-up that failed: stop. */
static void require(bool ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_cli: %s\n", what);
        abort();
    }
}

static void remove_files(void)
{
    unlink(model_path);
    unlink(text_path);
    rmdir(dir);
}

/* The tiny model of `numatp gen`, written again without its tensors. */
static void write_model(void)
{
    char full[64];
    snprintf(full, sizeof full, "%s/full.gguf", dir);
    char *gen_argv[] = {"gen", "-q", "-o", full, NULL};
    require(ntp_cli_gen(4, gen_argv) == 0, "gen");
    ntp_gguf *g = NULL;
    ntp_gguf_writer *w = NULL;
    require(ntp_gguf_open(full, &g) == NTP_OK && ntp_gguf_writer_new(&w) == NTP_OK, "open");
    for (int64_t i = 0; i < ntp_gguf_n_kv(g); i++)
        require(ntp_gguf_writer_set_value(w, ntp_gguf_kv_key(g, i), ntp_gguf_kv_value(g, i)) ==
                    NTP_OK,
                "copy a key");
    require(ntp_gguf_writer_write_file(w, model_path) == NTP_OK, "write the vocabulary");
    ntp_gguf_writer_free(w);
    ntp_gguf_free(g);
    unlink(full);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    require(mkdtemp(dir) != NULL, "mkdtemp");
    snprintf(model_path, sizeof model_path, "%s/vocab.gguf", dir);
    snprintf(text_path, sizeof text_path, "%s/text.txt", dir);
    atexit(remove_files);
    write_model();
    FILE *f = fopen(text_path, "w");
    require(f && fputs("The cat sat on the mat. It was warm, and the cat slept.\n", f) >= 0 &&
                fclose(f) == 0,
            "write the text");
    require(freopen("/dev/null", "r", stdin) && freopen("/dev/null", "w", stdout), "/dev/null");
    return 0;
}

/* One argument: the bytes up to the next newline (or NUL), with @m and @t replaced. */
static char *arg(char *s)
{
    return strcmp(s, "@m") == 0 ? model_path : strcmp(s, "@t") == 0 ? text_path : s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char buf[MAX_INPUT + 1];
    if (size > MAX_INPUT)
        return 0;
    memcpy(buf, data, size);
    buf[size] = '\0';
    char *argv[MAX_ARGS + 3];
    int argc = 0;
    for (char *p = buf; argc < MAX_ARGS;) {
        char *nl = memchr(p, '\n', (size_t)(buf + size - p));
        if (nl)
            *nl = '\0';
        argv[argc++] = arg(p);
        if (nl == NULL)
            break;
        p = nl + 1;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(argv[0], commands[i].name) == 0) {
            if (commands[i].fn == ntp_cli_bench) {
                argv[argc++] = "--stream-size";
                argv[argc++] = "0";
            }
            argv[argc] = NULL;
            commands[i].fn(argc, argv);
        }
    return 0;
}
