/*
 * The commands: see commands.h.
 *
 * stdout carries only what list and show produce, so that
 * `olreg show m > manifest.json` and `olreg list | grep` work; progress,
 * notes and errors all go to stderr.
 */
#include "commands.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "format.h"
#include "progress.h"
#include "report.h"

/* Reports a failed call (if it failed) and turns its status into an exit status. */
static int finish_call(olreg_status status, olreg_error *err)
{
	if (status != OLREG_OK)
		report_failure(status, err);
	olreg_error_free(err);
	return status == OLREG_OK ? 0 : 1;
}

/* Output to a full disk or a closed pipe must not look like success. */
static int finish_stdout(void)
{
	if (fflush(stdout) != 0 || ferror(stdout)) {
		report_error("write error on standard output: %s", strerror(errno));
		return 1;
	}
	return 0;
}

/* A progress display on stderr, registered so messages erase it first. */
static struct progress *start_progress(const struct cli *cli, enum progress_op op,
				       const char *target)
{
	struct progress *p = progress_new(stderr, progress_mode_for(stderr, cli->quiet),
					  op, target);

	/* Without memory for a display, run without one (the callback accepts NULL). */
	report_set_progress(p);
	return p;
}

static void end_progress(struct progress *p, bool ok)
{
	progress_finish(p, ok);
	report_set_progress(NULL);
	progress_free(p);
}

int cmd_pull(const struct cli *cli, const struct command_args *args)
{
	struct progress *p = start_progress(cli, PROGRESS_PULL, args->name);
	olreg_error *err = NULL;
	olreg_status status;

	status = olreg_pull(cli->client, args->name, progress_callback, p,
			    cli->cancel, NULL, &err);
	end_progress(p, status == OLREG_OK);
	return finish_call(status, err);
}

int cmd_push(const struct cli *cli, const struct command_args *args)
{
	struct progress *p = start_progress(cli, PROGRESS_PUSH, args->name);
	olreg_error *err = NULL;
	olreg_status status;

	status = olreg_push(cli->client, args->name, args->from, progress_callback, p,
			    cli->cancel, &err);
	end_progress(p, status == OLREG_OK);
	return finish_call(status, err);
}

int cmd_list(const struct cli *cli, const struct command_args *args)
{
	olreg_string_list *names = NULL;
	olreg_error *err = NULL;
	olreg_status status;
	size_t i;

	(void)args;
	status = olreg_list(cli->client, &names, &err);
	if (status != OLREG_OK)
		return finish_call(status, err);
	for (i = 0; i < olreg_string_list_len(names); i++)
		printf("%s\n", olreg_string_list_get(names, i));
	olreg_string_list_free(names);
	return finish_stdout();
}

int cmd_show(const struct cli *cli, const struct command_args *args)
{
	olreg_error *err = NULL;
	olreg_status status;
	char *bytes = NULL;
	size_t len = 0;

	status = olreg_show(cli->client, args->name, &bytes, &len, &err);
	if (status != OLREG_OK)
		return finish_call(status, err);
	/* The exact bytes (its digest is the hash of them): no newline added. */
	fwrite(bytes, 1, len, stdout);
	olreg_string_free(bytes);
	return finish_stdout();
}

int cmd_rm(const struct cli *cli, const struct command_args *args)
{
	olreg_error *err = NULL;
	/* Two statements: the order in which arguments are evaluated is
	 * unspecified, and `err` must be read after the call has set it. */
	olreg_status status = olreg_remove(cli->client, args->name, &err);

	return finish_call(status, err);
}

int cmd_prune(const struct cli *cli, const struct command_args *args)
{
	uint64_t blobs = 0, bytes = 0;
	olreg_error *err = NULL;
	olreg_status status;
	char freed[FORMAT_LEN];

	(void)args;
	status = olreg_prune(cli->client, &blobs, &bytes, &err);
	if (status != OLREG_OK)
		return finish_call(status, err);
	report_note("removed %llu blob%s, freed %s", (unsigned long long)blobs,
		    blobs == 1 ? "" : "s", format_bytes(freed, bytes));
	return 0;
}

int cmd_verify(const struct cli *cli, const struct command_args *args)
{
	struct progress *p = start_progress(cli, PROGRESS_VERIFY, args->name);
	olreg_string_list *problems = NULL;
	olreg_error *err = NULL;
	olreg_status status;
	size_t i, count;

	status = olreg_verify(cli->client, args->name, progress_callback, p, cli->cancel,
			      &problems, &err);
	count = olreg_string_list_len(problems);
	end_progress(p, status == OLREG_OK && count == 0);
	if (status != OLREG_OK)
		return finish_call(status, err);
	/* Problems are the result, not chatter: printed even with --quiet. */
	for (i = 0; i < count; i++)
		report_error("%s", olreg_string_list_get(problems, i));
	olreg_string_list_free(problems);
	return count == 0 ? 0 : 1;
}

int cmd_copy(const struct cli *cli, const struct command_args *args)
{
	struct progress *p = start_progress(cli, PROGRESS_COPY, args->second);
	olreg_error *err = NULL;
	olreg_status status;

	status = olreg_copy(cli->client, args->name, args->second, progress_callback, p,
			    cli->cancel, NULL, &err);
	end_progress(p, status == OLREG_OK);
	return finish_call(status, err);
}

int cmd_export(const struct cli *cli, const struct command_args *args)
{
	struct progress *p = start_progress(cli, PROGRESS_EXPORT, args->second);
	olreg_error *err = NULL;
	olreg_status status;

	status = olreg_export(cli->client, args->name, args->second, progress_callback, p,
			      cli->cancel, &err);
	end_progress(p, status == OLREG_OK);
	return finish_call(status, err);
}

int cmd_import(const struct cli *cli, const struct command_args *args)
{
	struct progress *p = start_progress(cli, PROGRESS_IMPORT, args->second);
	olreg_error *err = NULL;
	olreg_status status;

	status = olreg_import(cli->client, args->name, args->second, args->ref, progress_callback,
			      p, cli->cancel, NULL, &err);
	end_progress(p, status == OLREG_OK);
	return finish_call(status, err);
}
