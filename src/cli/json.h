/*
 * json.h - the one JSON writer of numatp's commands (info --json, bench
 * --json, numa-bench --json): string literals, numbers and the UTC time
 * stamp the machine-readable reports carry. The commands write the structure
 * ({, [, keys) themselves; the values come from here, so every report quotes
 * and rounds alike.
 */
#ifndef NTP_CLI_JSON_H
#define NTP_CLI_JSON_H

#include <stddef.h>
#include <stdio.h>

/*
 * s[0, n) as a JSON string literal: quotes, backslashes and control
 * characters escaped, a byte that does not start valid UTF-8 written as
 * U+FFFD (JSON text must be UTF-8).
 */
void ntp_cli_json_strn(FILE *f, const char *s, size_t n);

/* s as a JSON string literal; NULL writes null. */
void ntp_cli_json_str(FILE *f, const char *s);

/* A number; NaN and infinities (which JSON lacks) write null. */
void ntp_cli_json_num(FILE *f, double v);

/* "2026-11-21T17:24:41Z" (UTC, now) into buf (at least 32 bytes). */
void ntp_cli_iso_time(char *buf, size_t cap);

#endif /* NTP_CLI_JSON_H */
