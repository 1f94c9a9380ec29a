/* main.c - `numatp <command> [options]`: dispatch to the subcommands. */
#include "cli/cli.h"
#include "ntp.h"

#include <stdio.h>
#include <string.h>

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

int main(int argc, char **argv)
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
        if (strcmp(argv[1], c->name) == 0)
            return c->fn(argc - 1, argv + 1);
    fprintf(stderr, "numatp: unknown command '%s' (see numatp --help)\n", argv[1]);
    return 2;
}
