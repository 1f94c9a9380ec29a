/* main.c - `numatp <command> [options]`: dispatch to the subcommands. */
#include "cli/cli.h"
#include "cli/io.h"
#include "comm/world.h"
#include "ntp.h"

#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const struct ntp_cli_cmd commands[] = {
    {"run", ntp_cli_run, "generate text from a prompt"},
    {"chat", ntp_cli_chat, "talk with a model using its chat template"},
    {"perplexity", ntp_cli_perplexity,
     "perplexity of a text file, computed as llama-perplexity does"},
    {"tokenize", ntp_cli_tokenize, "print the token ids of a text"},
    {"info", ntp_cli_info, "show a GGUF model's architecture, tokenizer and tensors; the machine"},
    {"gen", ntp_cli_gen, "write a GGUF model with random weights (for tests and benchmarks)"},
    {"bench", ntp_cli_bench, "prompt and generation speed like llama-bench, with weight bandwidth"},
    {"numa-bench", ntp_cli_numa_bench,
     "measure the NUMA bandwidth and latency matrix of this machine"},
#if NTP_HAVE_SERVER
    {"serve", ntp_cli_serve, "an OpenAI-compatible HTTP server (chat and text completions)"},
#endif
    {"plan", ntp_cli_plan, "show how a model's weights are split over tensor-parallel devices"},
    {NULL, NULL, NULL},
};

static void usage(FILE *f)
{
    fprintf(f,
            "usage: numatp <command> [options]\n\n"
            "numatp %s runs GGUF language models with one tensor-parallel device per NUMA node.\n\n"
            "commands:\n",
            ntp_version());
    for (const struct ntp_cli_cmd *c = commands; c->name; c++)
        fprintf(f, "  %-12s %s\n", c->name, c->summary);
    fprintf(f, "\n`numatp <command> --help` describes a command's options.\n");
}

/*
 * OpenBLAS starts its worker threads in its constructor, before main, and
 * under a tight `ulimit -v` they can keep the process from exiting. numatp
 * runs OpenBLAS on one thread per call anyway (docs/architecture.md,
 * "Threads and memory"), so the process starts again with
 * OPENBLAS_NUM_THREADS=1, which OpenBLAS reads in that constructor. If the
 * exec fails, numatp goes on as it is.
 */
static void openblas_one_thread(char **argv)
{
#if NTP_HAVE_OPENBLAS
    const char *v = getenv("OPENBLAS_NUM_THREADS");
    if (v && strcmp(v, "1") == 0)
        return;
    if (setenv("OPENBLAS_NUM_THREADS", "1", 1) == 0)
        execv("/proc/self/exe", argv);
#else
    (void)argv;
#endif
}

static int dispatch(int argc, char **argv, const char **cmd)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) {
        printf("numatp %s\n", ntp_version());
        return 0;
    }
    for (const struct ntp_cli_cmd *c = commands; c->name; c++)
        if (strcmp(argv[1], c->name) == 0) {
            *cmd = c->name;
            return c->fn(argc - 1, argv + 1);
        }
#if !NTP_HAVE_SERVER
    if (strcmp(argv[1], "serve") == 0) {
        fprintf(stderr, "numatp: this build has no server: `serve` needs libmicrohttpd and "
                        "jansson (scripts/setup.sh installs them; meson option -Dserver)\n");
        return 1;
    }
#endif
    fprintf(stderr, "numatp: unknown command '%s' (see numatp --help)\n", argv[1]);
    return 2;
}

/*
 * Under mpirun (comm/world.h): the commands that run on every rank, in step
 * (serve: rank 0 serving, the others repeating its context calls), rank 0
 * writing the output (the others' stdout goes nowhere and their log says
 * only warnings). 0, or the exit status of a refusal.
 */
static int world_start(int argc, char **argv)
{
    static const char *const in_step[] = {"run", "chat", "perplexity", "bench", "serve", NULL};
    if (ntp__world_size() == 1)
        return 0;
    bool ok = false;
    for (int i = 0; argc > 1 && in_step[i]; i++)
        ok = ok || strcmp(argv[1], in_step[i]) == 0;
    if (!ok) {
        if (ntp__world_rank() == 0)
            fprintf(stderr,
                    "numatp: under mpirun (%d processes) numatp runs run, chat, perplexity, "
                    "bench and serve; "
                    "'%s' is not one of them\n",
                    ntp__world_size(), argc > 1 ? argv[1] : "");
        return 2;
    }
    if (ntp__world_rank() > 0) {
        setenv("NTP_LOG", "warn", 0);
        if (freopen("/dev/null", "w", stdout) == NULL)
            return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    openblas_one_thread(argv);
    /* A write past the file-size limit (ulimit -f) then fails with EFBIG and is
       reported as a write error, instead of the signal ending the process. */
    signal(SIGXFSZ, SIG_IGN);
    if (ntp__world_init(&argc, &argv) != NTP_OK) {
        fprintf(stderr, "numatp: %s\n", ntp_last_error());
        ntp__world_abort(1);
    }
    const char *cmd = NULL;
    int rc = world_start(argc, argv); /* a refusal every rank makes alike: all end normally */
    if (rc != 0) {
        ntp__world_finish();
        return rc;
    }
    rc = dispatch(argc, argv, &cmd);
    rc = ntp_cli_finish(cmd, rc);
    /* One rank that fails would leave the others waiting in a collective: end them all. */
    if (rc != 0 && ntp__world_size() > 1) {
        fprintf(stderr, "numatp: rank %d of %d failed (exit %d); stopping every rank\n",
                ntp__world_rank(), ntp__world_size(), rc);
        ntp__world_abort(rc);
    }
    ntp__world_finish();
    return rc;
}
