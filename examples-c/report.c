/* Messages on stderr: see report.h. */
#include "report.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "progress.h"

static bool quiet;
static struct progress *on_screen;

void report_set_quiet(bool q)
{
	quiet = q;
}

void report_set_progress(struct progress *p)
{
	on_screen = p;
}

/*
 * Writes "olreg: " + prefix + text + newline. Control characters in the
 * text (a registry's error body can hold anything) become spaces, so that
 * a message is always one line and cannot move the cursor.
 */
static void print_line(const char *prefix, const char *text)
{
	const unsigned char *c;

	progress_hide(on_screen);
	fputs("olreg: ", stderr);
	fputs(prefix, stderr);
	for (c = (const unsigned char *)text; *c; c++)
		fputc(*c < 0x20 || *c == 0x7f ? ' ' : *c, stderr);
	fputc('\n', stderr);
	fflush(stderr);
}

static void vprint(const char *fmt, va_list ap)
{
	char small[256], *text = small;
	va_list copy;
	int n;

	va_copy(copy, ap);
	n = vsnprintf(small, sizeof(small), fmt, ap);
	if (n >= (int)sizeof(small) && (text = malloc((size_t)n + 1)) != NULL)
		vsnprintf(text, (size_t)n + 1, fmt, copy);
	va_end(copy);
	print_line("", text ? text : small);
	if (text != small)
		free(text);
}

void report_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vprint(fmt, ap);
	va_end(ap);
}

void report_note(const char *fmt, ...)
{
	va_list ap;

	if (quiet)
		return;
	va_start(ap, fmt);
	vprint(fmt, ap);
	va_end(ap);
}

void report_failure(olreg_status status, const olreg_error *err)
{
	const char *message = olreg_error_message(err);

	/* olreg_error_message(NULL) is "", and a message should never be empty. */
	print_line("", *message ? message : olreg_status_str(status));
}

void report_log(void *user_data, olreg_log_level level, const char *message)
{
	const char *prefix;

	(void)user_data;
	switch (level) {
	case OLREG_LOG_ERROR: prefix = "error: "; break;
	case OLREG_LOG_WARN:  prefix = "warn: ";  break;
	case OLREG_LOG_INFO:  prefix = "info: ";  break;
	default:              prefix = "debug: "; break;
	}
	print_line(prefix, message ? message : "");
}
