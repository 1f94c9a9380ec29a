/*
 * test.h - the few helpers every C test shares: checks that report file and
 * line and count failures, and the exit codes meson understands (77 = skip).
 */
#ifndef NTP_TEST_H
#define NTP_TEST_H

#include "ntp.h"

#include <stdio.h>
#include <stdlib.h>

static int ntp_test_failures;

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);               \
            ntp_test_failures++;                                                                   \
        }                                                                                          \
    } while (0)

/* Check a status and print ntp_last_error() when it is not the expected one. */
#define CHECK_STATUS(expr, expected)                                                               \
    do {                                                                                           \
        ntp_status check_s_ = (expr);                                                              \
        if (check_s_ != (expected)) {                                                              \
            fprintf(stderr, "%s:%d: %s returned %s, expected %s (%s)\n", __FILE__, __LINE__,       \
                    #expr, ntp_status_str(check_s_), ntp_status_str(expected),                     \
                    ntp_last_error());                                                             \
            ntp_test_failures++;                                                                   \
        }                                                                                          \
    } while (0)

#define CHECK_OK(expr) CHECK_STATUS(expr, NTP_OK)

/* Exit code of a test: 0 pass, 1 fail. */
static inline int ntp_test_result(const char *name)
{
    if (ntp_test_failures) {
        fprintf(stderr, "%s: %d check(s) failed\n", name, ntp_test_failures);
        return 1;
    }
    printf("%s: ok\n", name);
    return 0;
}

/* Skip with a reason (meson counts exit 77 as skipped). */
#define NTP_TEST_SKIP(...)                                                                         \
    do {                                                                                           \
        printf("SKIP: ");                                                                          \
        printf(__VA_ARGS__);                                                                       \
        printf("\n");                                                                              \
        exit(77);                                                                                  \
    } while (0)

#endif /* NTP_TEST_H */
