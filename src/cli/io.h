/*
 * io.h - what every command shares about the process around it: write
 * errors on stdout, text read from a file or stdin within a stated size,
 * and Ctrl-C between the steps of a long job.
 */
#ifndef NTP_CLI_IO_H
#define NTP_CLI_IO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* The exit status of a command stopped by SIGINT (128 + 2, as the shells report it). */
#define NTP_CLI_EXIT_INTERRUPTED 130

/* --max-input-bytes's default: far above any text one tokenizes, far below a runaway read. */
#define NTP_CLI_MAX_INPUT_DEFAULT (256ull << 20)

/*
 * fflush(stdout), for the paths that stream (run and chat tokens,
 * perplexity's chunks): false after a write error, whose errno is kept for
 * ntp_cli_finish's message; the caller stops its job.
 */
bool ntp_cli_flush(void);

/*
 * After a command returned rc: flush and close stdout. A write error there
 * or earlier prints "numatp CMD: write error: <reason>" (CMD NULL: "numatp:")
 * and gives 1 when rc was 0. A closed pipe (EPIPE, when SIGPIPE is ignored)
 * gives 1 without a message, as a pipe's reader that stopped early expects.
 */
int ntp_cli_finish(const char *cmd, int rc);

/*
 * The whole of path ("-": stdin) in a malloc'd NUL-terminated buffer; *len
 * gets its bytes. More than limit bytes is refused (the message names
 * --max-input-bytes). NULL after printing why, prefixed with "numatp CMD:".
 */
char *ntp_cli_read_text(const char *cmd, const char *path, uint64_t limit, size_t *len);

/*
 * From now on SIGINT sets a flag that the command checks between steps
 * (ntp_cli_interrupted) instead of killing the process. A blocking read of
 * stdin returns with EINTR, so chat stops waiting for the next line.
 */
void ntp_cli_catch_sigint(void);

/* Whether SIGINT arrived since ntp_cli_catch_sigint. */
bool ntp_cli_interrupted(void);

/*
 * getline(3) on stdin, the line's length (-1 at the end of input). Under
 * mpirun rank 0 reads (stdin reaches only rank 0) and every rank gets the
 * line; -1 also when rank 0 was interrupted.
 */
ssize_t ntp_cli_read_line(char **line, size_t *cap);

#endif /* NTP_CLI_IO_H */
