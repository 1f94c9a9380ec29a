/*
 * core.h - internal helpers every folder may use: error reporting, logging,
 * aligned allocation and checked arithmetic. Nothing here knows about models,
 * kernels or devices.
 */
#ifndef NTP_CORE_H
#define NTP_CORE_H

#include "ntp.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__)
#define NTP_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define NTP_PRINTF(f, a)
#endif

/*
 * Record the message for ntp_last_error() on this thread and return s, so a
 * failure reads `return ntp__error(NTP_E_FORMAT, "%s: bad magic", path);`.
 */
ntp_status ntp__error(ntp_status s, const char *fmt, ...) NTP_PRINTF(2, 3);
/*
 * Put "prefix: " in front of the current message (used by callers that know
 * the file name when the callee did not, e.g. open() around parse()).
 */
void ntp__error_prefix(const char *fmt, ...) NTP_PRINTF(1, 2);
/* Forget the last message (at the start of a public call that may succeed). */
void ntp__error_clear(void);

enum ntp_log_level { NTP_LOG_DEBUG, NTP_LOG_INFO, NTP_LOG_WARN, NTP_LOG_ERROR, NTP_LOG_NONE };

/* Messages below the level are dropped; NTP_LOG sets it ("debug", "info", ...). */
enum ntp_log_level ntp__log_get_level(void);
/* Log to stderr with a level tag. Never to stdout: stdout carries generated text. */
void ntp__log(enum ntp_log_level level, const char *fmt, ...) NTP_PRINTF(2, 3);

/* 64-byte (cache line) aligned allocation; NULL on failure or size 0. */
void *ntp__alloc_aligned(size_t size, size_t align);
void ntp__free_aligned(void *p);

/* a*b and a+b with overflow checks: false when the result does not fit. */
static inline bool ntp__mul_u64(uint64_t a, uint64_t b, uint64_t *out)
{
    return !__builtin_mul_overflow(a, b, out);
}
static inline bool ntp__add_u64(uint64_t a, uint64_t b, uint64_t *out)
{
    return !__builtin_add_overflow(a, b, out);
}

/*
 * Part [*r0, *r1) of [0, n) that worker ith of nth takes: contiguous, the
 * remainder spread one each over the first parts. Every split of work over
 * threads or devices uses it, so that their boundaries agree.
 */
static inline void ntp__slice(int64_t n, int ith, int nth, int64_t *r0, int64_t *r1)
{
    const int64_t per = n / nth, extra = n % nth;
    *r0 = ith * per + (ith < extra ? ith : extra);
    *r1 = *r0 + per + (ith < extra ? 1 : 0);
}

#endif /* NTP_CORE_H */
