/*
 * opts.h - the one command-line option parser of numatp: every command
 * describes its options in tables of struct ntp_cli_opt and hands them to
 * ntp_cli_parse. Values are checked against their kind and range here, so a
 * message about a bad value reads the same in every command
 * (docs/architecture.md, "Command-line options").
 */
#ifndef NTP_CLI_OPTS_H
#define NTP_CLI_OPTS_H

#include <stdbool.h>
#include <stdint.h>

enum ntp_cli_opt_kind {
    NTP_CLI_INT,    /* int64_t in [lo, hi] */
    NTP_CLI_INTS,   /* struct ntp_cli_ints: up to max_n comma-separated values in [lo, hi] */
    NTP_CLI_FLOAT,  /* float, finite (above 0 with .positive) */
    NTP_CLI_STR,    /* const char * (points into argv) */
    NTP_CLI_CHOICE, /* int: the index of the value in choices */
    NTP_CLI_FLAG,   /* bool, set to true; takes no value */
    NTP_CLI_SIZE,   /* uint64_t: a byte count as ntp_cli_parse_size reads it */
};

/* Most values of one list option (`numatp bench -t 1,2,4`). */
#define NTP_CLI_MAX_LIST 32

struct ntp_cli_ints {
    int64_t v[NTP_CLI_MAX_LIST];
    int n; /* values given; 0: the option was not given */
};

struct ntp_cli_opt {
    const char *name;  /* "--threads"; NULL ends a table */
    const char *alias; /* other spellings separated by spaces ("-t"), or NULL */
    enum ntp_cli_opt_kind kind;
    void *dst;                  /* where the value goes, of the kind's type */
    int64_t lo, hi;             /* NTP_CLI_INT(S): allowed range (hi INT64_MAX: no upper bound) */
    const char *word;           /* NTP_CLI_INT(S): a word that stands for 0 ("auto"), or NULL */
    int max_n;                  /* NTP_CLI_INTS: most values; 0 or 1: a single value */
    bool positive;              /* NTP_CLI_FLOAT: the value must be above 0 */
    const char *const *choices; /* NTP_CLI_CHOICE: the accepted values, NULL-terminated */
};

/*
 * Parse argv[1..argc) against the tables (a NULL-terminated list of
 * NULL-name-terminated tables). "--name v", "--name=v" and "-a v" are
 * accepted; an option given twice keeps the last value. 0 on success; 2
 * after a message prefixed with "numatp <cmd>:" that names the option as it
 * was written: unknown option, missing value, not a number, out of range.
 */
int ntp_cli_parse(const char *cmd, int argc, char **argv, const struct ntp_cli_opt *const *tables);

/*
 * Parse a byte count: digits with an optional K, M, G or T suffix (binary:
 * 1K = 1024; an optional trailing 'B' or 'iB' is accepted). false for
 * anything else, zero, or a value that does not fit in 64 bits.
 */
bool ntp_cli_parse_size(const char *s, uint64_t *out);

#endif /* NTP_CLI_OPTS_H */
