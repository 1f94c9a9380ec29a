/* log.c - leveled logging to stderr. */
#include "core.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * The level is the one process-wide setting of the library, from NTP_LOG: it
 * is read by every thread, so it is atomic, and read from the environment on
 * first use (-1: not yet).
 */
static _Atomic int log_level = -1;

static enum ntp_log_level level_from_env(void)
{
    static const char *const names[] = {"debug", "info", "warn", "error", "none"};
    const char *e = getenv("NTP_LOG");
    if (e) {
        for (int i = 0; i <= NTP_LOG_NONE; i++)
            if (strcmp(e, names[i]) == 0)
                return (enum ntp_log_level)i;
    }
    return NTP_LOG_INFO;
}

enum ntp_log_level ntp__log_get_level(void)
{
    int l = atomic_load(&log_level);
    if (l < 0) {
        l = (int)level_from_env();
        atomic_store(&log_level, l);
    }
    return (enum ntp_log_level)l;
}

void ntp__log(enum ntp_log_level level, const char *fmt, ...)
{
    static const char *const tags[] = {"debug: ", "", "warning: ", "error: "};
    if (level < ntp__log_get_level() || level >= NTP_LOG_NONE)
        return;
    char line[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    /* One fprintf per line so lines from different threads do not interleave. */
    fprintf(stderr, "numatp: %s%s\n", tags[level], line);
}
