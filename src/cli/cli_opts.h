/*
 * cli_opts.h - what the inference subcommands (run, perplexity) share:
 * option parsing from a table and model loading with progress on stderr.
 * Defined in cmd_run.c.
 */
#ifndef NTP_CLI_OPTS_H
#define NTP_CLI_OPTS_H

#include "ntp.h"

enum ntp_cli_opt_kind {
    NTP_CLI_INT,   /* int64_t, any sign */
    NTP_CLI_FLOAT, /* float, finite */
    NTP_CLI_STR,   /* const char * (points into argv) */
    NTP_CLI_FLAG,  /* bool, set to true */
};

struct ntp_cli_opt {
    const char *name;  /* "--temp" */
    const char *alias; /* "-n", or NULL */
    enum ntp_cli_opt_kind kind;
    void *dst; /* where the value goes, of the kind's type */
};

/*
 * Parse argv[1..argc) against opts (terminated by a NULL name). "--name v",
 * "--name=v" and "-a v" are accepted. 0 on success; 2 after printing a
 * message naming the option (prefixed with "numatp <cmd>:") on a usage error.
 */
int ntp_cli_parse_opts(const char *cmd, int argc, char **argv, const struct ntp_cli_opt *opts);

/*
 * Load a model, printing progress on stderr when the file is large. 0 on
 * success; 1 after printing the error.
 */
int ntp_cli_load_model(const char *cmd, const char *path, int n_threads, ntp_model **out);

/* Seconds of a monotonic clock. */
double ntp_cli_now(void);

/*
 * The tensor-parallel topology options every inference command takes
 * (DESIGN.md "Threads and memory"); ntp_cli_tp_help lists them for --help.
 */
struct ntp_cli_tp_args {
    const char *tp;             /* --tp auto|N; NULL: auto */
    const char *numa_nodes;     /* --numa-nodes LIST; NULL: every node */
    int64_t threads_per_device; /* --threads-per-device N; 0: one per core (or -t / devices) */
    bool smt;                   /* --smt: use every hardware thread of a core */
    bool verify_numa;           /* --verify-numa: check where every page is */
    int64_t gpu_layers;         /* --gpu-layers/-ngl N: first N blocks on the GPU (CUDA issue) */
    bool gpu_output;            /* --gpu-output: the output head on the GPU too (CUDA issue) */
};

/* Entries of the options above for an option table. */
#define NTP_CLI_TP_N_OPTS 7
extern const char ntp_cli_tp_help[];

/* Write the NTP_CLI_TP_N_OPTS table entries for a into opts[0, NTP_CLI_TP_N_OPTS). */
void ntp_cli_tp_opts(struct ntp_cli_tp_args *a, struct ntp_cli_opt *opts);
/* Put a's choices into mp. 0, or 2 after a message naming the option. */
int ntp_cli_tp_apply(const char *cmd, const struct ntp_cli_tp_args *a, ntp_model_params *mp);
/* ntp_cli_load_model with every parameter (mp.progress is set here). */
int ntp_cli_load_model_params(const char *cmd, const char *path, ntp_model_params mp,
                              ntp_model **out);
/*
 * Print where the pages of the model's devices (and of c's KV cache and
 * scratch) are, on stderr. 0 when all are on their device's node; 1 after
 * saying which are not.
 */
int ntp_cli_verify_numa(const char *cmd, const ntp_model *m, const ntp_context *c);

#endif /* NTP_CLI_OPTS_H */
