/*
 * infer.h - what every command that loads a model for inference (run, chat,
 * perplexity, bench, and a server) shares: the model, context, thread,
 * tensor-parallel, NUMA and GPU options, defined once with their names,
 * ranges and help text; turning them into the library's parameters; loading
 * the model and making a context with them. Also the sampling options of
 * the commands that generate text (docs/architecture.md, "Command-line
 * options").
 */
#ifndef NTP_CLI_INFER_H
#define NTP_CLI_INFER_H

#include "cli/opts.h"
#include "ntp.h"
#include "sampler/sampler.h"

#include <stdio.h>

/* Ranges of the shared options. */
#define NTP_CLI_MAX_CTX     (1 << 24) /* -c */
#define NTP_CLI_MAX_THREADS 4096      /* -t, --threads-per-device */
#define NTP_CLI_MAX_TP      16        /* --tp: the layout's NTP_LAYOUT_MAX_DEV */
#define NTP_CLI_MAX_NGL     100000    /* -ngl: more than any model has */
#define NTP_CLI_MAX_PARALLEL 256      /* serve and plan --parallel: sequences of one context */

struct ntp_cli_infer {
    const char *model;              /* -m, --model */
    int64_t ctx;                    /* -c; 0: min(training context, 4096); < 0: the command's */
    struct ntp_cli_ints threads;    /* -t; none: one per physical core */
    struct ntp_cli_ints tp;         /* --tp; 0 (auto): one device per NUMA node */
    struct ntp_cli_ints gpu_layers; /* -ngl; none: 0 */
    const char *numa_nodes;         /* --numa-nodes; NULL: every node */
    int64_t threads_per_device;     /* --threads-per-device; 0: not given */
    bool smt;                       /* --smt */
    bool verify_numa;               /* --verify-numa */
    bool gpu_output;                /* --gpu-output */
    bool cpu_moe;                   /* --cpu-moe */
    int64_t pp;                     /* --pp: pipeline stages over mpirun's processes */
    bool no_mmap;                   /* --no-mmap */
    int kv_type;                    /* --kv-type: 0 f16, 1 f32, 2 q8_0, 3 q4_0 */
    int kv_type_k, kv_type_v;       /* -ctk, -ctv: the same (not given: f16, as llama.cpp) */
    int moe_split;                  /* --moe-split: enum ntp_moe_split, index of
                                       ntp_cli_moe_splits */
};

/* The values of --moe-split, in the order of enum ntp_moe_split (NULL-terminated). */
extern const char *const ntp_cli_moe_splits[];

/* Table entries of the options above, plus the NULL entry that ends them. */
#define NTP_CLI_INFER_N_OPTS 17

/*
 * The entries for o into out[0, NTP_CLI_INFER_N_OPTS] (the last one ends the
 * table). lists: -t, --tp and -ngl take comma-separated lists (bench);
 * otherwise one value each.
 */
void ntp_cli_infer_opts(struct ntp_cli_infer *o, bool lists, struct ntp_cli_opt *out);

/* The options' --help lines; ctx_default describes the command's -c default. */
void ntp_cli_infer_help(FILE *f, const char *ctx_default);

/* The KV cache type the options name, as llama.cpp writes it ("f16", "q8_0"). */
const char *ntp_cli_infer_kv_name(const struct ntp_cli_infer *o);

/*
 * Check what the parser cannot (-m given, --numa-nodes syntax, --gpu-output
 * with GPU layers) and fill the library's parameters from the first value of
 * each list. 0, or 2 after a message naming the option.
 */
int ntp_cli_infer_apply(const char *cmd, const struct ntp_cli_infer *o, ntp_model_params *mp,
                        ntp_context_params *cp);

/*
 * ntp_cli_infer_apply, then load the model with progress on stderr when the
 * file is large and one line saying what was loaded where. *cp gets the
 * context parameters of the options. 0; 1 after printing a load error; 2 on
 * a usage error.
 */
int ntp_cli_infer_load(const char *cmd, const struct ntp_cli_infer *o, ntp_model **m,
                       ntp_context_params *cp);

/*
 * A context with cp; with --verify-numa, the page placement of the model and
 * context printed and checked. 0, or 1 after printing the error.
 */
int ntp_cli_infer_context(const char *cmd, const struct ntp_cli_infer *o, ntp_model *m,
                          ntp_context_params cp, ntp_context **c);

/* Seconds of a monotonic clock. */
double ntp_cli_now(void);

/* The sampling options of the commands that generate text (run, chat). */
struct ntp_cli_sampling {
    float temp, top_p, min_p, repeat_penalty;
    int64_t top_k, repeat_last_n, seed; /* seed -1: from the clock */
};

#define NTP_CLI_SAMPLING_N_OPTS 7

/* llama.cpp's defaults (the sampler's). */
struct ntp_cli_sampling ntp_cli_sampling_default(void);
/* The entries for s into out[0, NTP_CLI_SAMPLING_N_OPTS] (the last one ends the table). */
void ntp_cli_sampling_opts(struct ntp_cli_sampling *s, struct ntp_cli_opt *out);
void ntp_cli_sampling_help(FILE *f);
struct ntp_sampler_params ntp_cli_sampling_params(const struct ntp_cli_sampling *s);

/*
 * The next token from logits (run, chat), accepted into the sampler, and
 * whether Ctrl-C asks to stop. Under mpirun rank 0's token and stop hold on
 * every rank (broadcast), so the ranks cannot drift apart.
 */
ntp_status ntp_cli_sample(struct ntp_sampler *smp, const float *logits, int32_t *tok, bool *stop);

#endif /* NTP_CLI_INFER_H */
