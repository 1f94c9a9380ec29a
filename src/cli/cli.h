/*
 * cli.h - the numatp subcommands. Each takes the arguments after its name
 * (argv[0] is the subcommand) and returns the process exit code: 0 success,
 * 1 runtime failure, 2 bad usage. The CLI is the only code that may exit().
 */
#ifndef NTP_CLI_H
#define NTP_CLI_H

typedef int (*ntp_cli_cmd_fn)(int argc, char **argv);

struct ntp_cli_cmd {
    const char *name;
    ntp_cli_cmd_fn fn;
    const char *summary; /* one line for `numatp --help` */
};

/* One function per subcommand, each in its own cmd_<name>.c. */
int ntp_cli_info(int argc, char **argv);
int ntp_cli_gen(int argc, char **argv);
int ntp_cli_run(int argc, char **argv);
int ntp_cli_chat(int argc, char **argv);
int ntp_cli_tokenize(int argc, char **argv);
int ntp_cli_perplexity(int argc, char **argv);
int ntp_cli_plan(int argc, char **argv);
int ntp_cli_numa_bench(int argc, char **argv);
int ntp_cli_bench(int argc, char **argv);
/* Only in a build with the server (NTP_HAVE_SERVER: libmicrohttpd and jansson found). */
int ntp_cli_serve(int argc, char **argv);

#endif /* NTP_CLI_H */
