/*
 * The progress display of pull, push, verify, copy, export and import, on stderr.
 *
 * On a terminal it is a live block (a header, one line per blob, a total
 * line) redrawn in place; elsewhere (a log file, a CI job) it is plain
 * lines: state changes as they happen and byte counts at most once a
 * second. Either way a summary line ends a successful operation.
 */
#ifndef OLREG_CLI_PROGRESS_H
#define OLREG_CLI_PROGRESS_H

#include <stdbool.h>
#include <stdio.h>

#include <olreg.h>

enum progress_mode {
	PROGRESS_OFF,	/* --quiet: draw nothing */
	PROGRESS_PLAIN,	/* not a terminal: plain lines */
	PROGRESS_LIVE	/* a terminal: redraw in place */
};

enum progress_op {
	PROGRESS_PULL,
	PROGRESS_PUSH,
	PROGRESS_VERIFY,
	PROGRESS_COPY,
	PROGRESS_EXPORT,
	PROGRESS_IMPORT
};

struct progress;

/* The mode for `out`: off when quiet, live on a capable terminal, else plain. */
enum progress_mode progress_mode_for(FILE *out, bool quiet);

/*
 * A display of `op` on `target` (a model name, or NULL for "all blobs"),
 * written to `out`. Returns NULL only when out of memory.
 */
struct progress *progress_new(FILE *out, enum progress_mode mode,
			      enum progress_op op, const char *target);

/*
 * The olreg_progress_cb to pass with the display as user_data. It never
 * cancels: Ctrl-C goes through the cancel token (see interrupt.h).
 */
int progress_callback(void *user_data, const olreg_progress *event);

/* Erases the live block so another message can be printed; the next event redraws it. */
void progress_hide(struct progress *p);

/* Draws the final state and, if `ok`, the summary line. */
void progress_finish(struct progress *p, bool ok);

void progress_free(struct progress *p);

#endif
