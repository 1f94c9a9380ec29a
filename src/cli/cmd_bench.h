/*
 * cmd_bench.h - what `numatp bench` and `numatp numa-bench` share: size
 * parsing, a UTC timestamp and JSON string output. Defined in
 * cmd_numa_bench.c.
 */
#ifndef NTP_CLI_CMD_BENCH_H
#define NTP_CLI_CMD_BENCH_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/*
 * Parse a byte count: digits with an optional K, M, G or T suffix (binary:
 * 1K = 1024; an optional trailing 'B' or 'iB' is accepted). false for
 * anything else, zero, or a value that does not fit in 64 bits.
 */
bool ntp_cli_parse_size(const char *s, uint64_t *out);

/* "2026-11-21T17:24:41Z" (UTC, now) into buf (at least 32 bytes). */
void ntp_cli_iso_time(char *buf, size_t cap);

/* s as a JSON string literal (quoted, escaped); NULL prints null. */
void ntp_cli_json_str(FILE *f, const char *s);

#endif /* NTP_CLI_CMD_BENCH_H */
