/* io.c - stdout write errors, bounded text input and Ctrl-C for every command (io.h). */
#include "cli/io.h"

#include "comm/world.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* errno of the first failed flush of stdout; 0: none yet. */
static int stdout_errno;

bool ntp_cli_flush(void)
{
    if (fflush(stdout) == 0)
        return true;
    if (stdout_errno == 0)
        stdout_errno = errno ? errno : EIO;
    return false;
}

int ntp_cli_finish(const char *cmd, int rc)
{
    /* glibc keeps what it could not write, so flushing again says why; EIO if it says nothing. */
    const bool failed = ferror(stdout) != 0;
    if (!ntp_cli_flush() || failed)
        stdout_errno = stdout_errno ? stdout_errno : EIO;
    if (fclose(stdout) != 0 && stdout_errno == 0)
        stdout_errno = errno;
    if (stdout_errno == 0)
        return rc;
    if (stdout_errno != EPIPE)
        fprintf(stderr, "numatp%s%s: write error: %s\n", cmd ? " " : "", cmd ? cmd : "",
                strerror(stdout_errno));
    return rc != 0 ? rc : 1;
}

static char *too_long(const char *cmd, const char *path, uint64_t limit, FILE *f, char *buf)
{
    fprintf(stderr,
            "numatp %s: %s: more than %llu bytes (the --max-input-bytes limit; give a larger "
            "one to read it)\n",
            cmd, path, (unsigned long long)limit);
    if (f != stdin)
        fclose(f);
    free(buf);
    return NULL;
}

/* Read f to its end or past limit; *n gets the bytes, NULL when out of memory. */
static char *read_up_to(FILE *f, uint64_t limit, size_t *n)
{
    size_t cap = 1 << 16;
    char *buf = malloc(cap);
    *n = 0;
    while (buf) {
        *n += fread(buf + *n, 1, cap - *n - 1, f);
        if (*n < cap - 1 || *n > limit)
            return buf;
        /* Room for one byte past the limit is enough to know the text is too long. */
        const size_t next = cap * 2 < limit + 2 ? cap * 2 : (size_t)limit + 2;
        char *more = realloc(buf, next);
        if (more == NULL)
            free(buf);
        buf = more;
        cap = next;
    }
    return NULL;
}

static char *read_text(const char *cmd, const char *path, uint64_t limit, size_t *len)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    struct stat st;
    if (f == NULL) {
        fprintf(stderr, "numatp %s: cannot open '%s': %s\n", cmd, path, strerror(errno));
        return NULL;
    }
    /* A regular file says its size; a pipe or device is read until it passes the limit. */
    if (fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode) && (uint64_t)st.st_size > limit)
        return too_long(cmd, path, limit, f, NULL);
    size_t n = 0;
    char *buf = read_up_to(f, limit, &n);
    if (buf && n > limit)
        return too_long(cmd, path, limit, f, buf);
    const int err = buf == NULL ? ENOMEM : ferror(f) ? (errno ? errno : EIO) : 0;
    if (f != stdin)
        fclose(f);
    if (err) {
        fprintf(stderr, "numatp %s: cannot read '%s': %s\n", cmd, path, strerror(err));
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

/*
 * Under mpirun rank 0 reads the text (stdin reaches only rank 0) and every
 * rank gets its bytes; the others wait for them.
 */
char *ntp_cli_read_text(const char *cmd, const char *path, uint64_t limit, size_t *len)
{
    if (ntp__world_size() == 1)
        return read_text(cmd, path, limit, len);
    char *buf = ntp__world_rank() == 0 ? read_text(cmd, path, limit, len) : NULL;
    uint64_t n = buf ? (uint64_t)*len : UINT64_MAX;
    if (ntp__world_bcast(&n, sizeof n, 0) != NTP_OK || n == UINT64_MAX) {
        free(buf);
        return NULL; /* rank 0 said why */
    }
    if (buf == NULL && (buf = malloc((size_t)n + 1)) == NULL) {
        fprintf(stderr, "numatp %s: out of memory\n", cmd);
        return NULL;
    }
    if (ntp__world_bcast(buf, (size_t)n, 0) != NTP_OK) {
        fprintf(stderr, "numatp %s: %s\n", cmd, ntp_last_error());
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    *len = (size_t)n;
    return buf;
}

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig)
{
    (void)sig;
    interrupted = 1;
}

void ntp_cli_catch_sigint(void)
{
    /* No SA_RESTART: a read of stdin waiting for chat's next line returns EINTR. */
    struct sigaction sa = {.sa_handler = on_sigint};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
}

bool ntp_cli_interrupted(void)
{
    return interrupted != 0;
}

ssize_t ntp_cli_read_line(char **line, size_t *cap)
{
    int64_t n = -1;
    if (ntp__world_rank() == 0 && !(ntp__world_size() > 1 && ntp_cli_interrupted()))
        n = getline(line, cap, stdin);
    if (ntp__world_size() == 1)
        return (ssize_t)n;
    if (ntp__world_bcast(&n, sizeof n, 0) != NTP_OK || n < 0)
        return -1;
    if (*cap < (size_t)n + 1) {
        char *p = realloc(*line, (size_t)n + 1);
        if (p == NULL)
            return -1;
        *line = p;
        *cap = (size_t)n + 1;
    }
    if (ntp__world_bcast(*line, (size_t)n, 0) != NTP_OK)
        return -1;
    (*line)[n] = '\0';
    return (ssize_t)n;
}
