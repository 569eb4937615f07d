/*
 * Human-readable numbers for progress lines and summaries.
 *
 * Every function writes into a caller-supplied buffer of FORMAT_LEN bytes
 * and returns it, so several results can appear in one printf().
 */
#ifndef OLREG_CLI_FORMAT_H
#define OLREG_CLI_FORMAT_H

#include <stdint.h>

#define FORMAT_LEN 32

/* "512 B", "12.0 KiB", "3.4 GiB" (binary units, one decimal). */
char *format_bytes(char buf[FORMAT_LEN], uint64_t bytes);

/* "5.2 MiB/s"; "--/s" when the rate is not known yet. */
char *format_rate(char buf[FORMAT_LEN], double bytes_per_second);

/* "9s", "3m20s", "2h05m"; "--" for an unknown or absurd duration. */
char *format_duration(char buf[FORMAT_LEN], double seconds);

/* "sha256:abcd1234ef56": the first 12 hex digits, as olreg's messages show them. */
char *format_digest(char buf[FORMAT_LEN], const char *digest);

/* done/total as a whole percentage, 0 when total is unknown. */
unsigned format_percent(uint64_t done, uint64_t total);

#endif
