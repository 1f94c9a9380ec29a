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

#endif /* NTP_CLI_OPTS_H */
