/* status.c - names and descriptions of status codes, and the per-thread error message. */
#include "core.h"

#include <stdio.h>
#include <string.h>

const char *ntp_version(void)
{
    return NTP_VERSION_STRING;
}

const char *ntp_status_str(ntp_status s)
{
    switch (s) {
#define NTP_X_NAME(name, value, desc)                                                              \
    case name:                                                                                     \
        return #name;
        NTP_STATUS_LIST(NTP_X_NAME)
#undef NTP_X_NAME
    }
    return "NTP_E_UNKNOWN";
}

const char *ntp_status_desc(ntp_status s)
{
    switch (s) {
#define NTP_X_DESC(name, value, desc)                                                              \
    case name:                                                                                     \
        return desc;
        NTP_STATUS_LIST(NTP_X_DESC)
#undef NTP_X_DESC
    }
    return "unknown status";
}

/*
 * The last message is per thread, like errno: a failing call on one device's
 * thread must not overwrite what another thread is about to print.
 */
static _Thread_local char last_error[1024];

const char *ntp_last_error(void)
{
    return last_error;
}

void ntp__error_clear(void)
{
    last_error[0] = '\0';
}

ntp_status ntp__error(ntp_status s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    return s;
}

void ntp__error_prefix(const char *fmt, ...)
{
    char prefix[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    /* Slide the old message right and put "prefix: " in front, truncating at the end. */
    size_t plen = strlen(prefix);
    size_t olen = strlen(last_error);
    if (plen + 2 + olen >= sizeof last_error)
        olen = sizeof last_error - plen - 3;
    memmove(last_error + plen + 2, last_error, olen);
    last_error[plen + 2 + olen] = '\0';
    memcpy(last_error, prefix, plen);
    memcpy(last_error + plen, ": ", 2);
}
