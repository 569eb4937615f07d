/*
 * Messages on stderr: errors, notes and the library's log lines.
 *
 * Each message is exactly one line starting with "olreg: ". If a live
 * progress block is on screen it is erased first, so the message does not
 * land in the middle of it (the block is redrawn below at the next event).
 */
#ifndef OLREG_CLI_REPORT_H
#define OLREG_CLI_REPORT_H

#include <stdbool.h>

#include <olreg.h>

struct progress;

/* --quiet: drop notes (errors are always printed). */
void report_set_quiet(bool quiet);

/* The progress display to erase before printing; NULL when none is on screen. */
void report_set_progress(struct progress *p);

#if defined(__GNUC__)
#define REPORT_PRINTF __attribute__((format(printf, 1, 2)))
#else
#define REPORT_PRINTF
#endif

/* "olreg: <message>", always. */
void report_error(const char *fmt, ...) REPORT_PRINTF;

/* "olreg: <message>", unless quiet. */
void report_note(const char *fmt, ...) REPORT_PRINTF;

/* The message of a failed call: `err`'s, or the status's name if there is no `err`. */
void report_failure(olreg_status status, const olreg_error *err);

/*
 * An olreg_log_cb printing "olreg: <level>: <message>". olreg calls it on
 * the thread that made the call, like the progress callback.
 */
void report_log(void *user_data, olreg_log_level level, const char *message);

#endif
