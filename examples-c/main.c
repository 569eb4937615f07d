/*
 * olreg: pull and push Ollama models from the command line.
 *
 * This file parses the command line, sets up the client and dispatches
 * to a command (commands.c). Exit status: 0 success, 1 failure (one
 * "olreg: <message>" line on stderr), 2 usage error (usage on stderr).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <olreg.h>

#include "commands.h"
#include "interrupt.h"
#include "platform.h"
#include "report.h"

#define EXIT_USAGE 2
/* More parallel requests than this is a typo, not a tuning choice. */
#define MAX_STREAMS 1024

static const char usage_text[] =
	"usage: olreg [--models DIR] [--insecure] [--streams N] [--mirror URL]...\n"
	"             [--platform OS/ARCH[/VARIANT]] [--limit-rate RATE] [--quiet] [-v]\n"
	"             COMMAND [ARGS]\n"
	"\n"
	"commands:\n"
	"  pull NAME               download NAME's manifest and every blob into the store\n"
	"  push NAME [--from SRC]  upload the local model SRC (default NAME) as NAME\n"
	"  list                    one fully-qualified name a line (host/namespace/model:tag), sorted\n"
	"  show NAME               the local manifest, byte for byte as stored\n"
	"  rm NAME                 remove the name; blobs stay\n"
	"  prune                   delete blobs that no manifest references\n"
	"  verify [NAME]           re-hash blobs (all, or NAME's); exit 1 if any is corrupt\n"
	"  copy SRC DST            copy a model from one registry to another (the store is\n"
	"                          not used; blobs the destination has are not sent)\n"
	"  export NAME DEST        write the local model as an OCI image layout: a directory,\n"
	"                          or a tar archive when DEST ends in .tar (added to if it exists)\n"
	"  import SRC NAME [--ref REF]\n"
	"                          read an OCI image layout (directory or .tar) into the store\n"
	"                          as NAME; REF picks the image when the layout holds several\n"
	"\n"
	"options:\n"
	"  --models DIR    the model store (default $OLLAMA_MODELS, else ~/.ollama/models)\n"
	"  --insecure      accept any TLS certificate, and https redirecting to http\n"
	"  --streams N     parallel requests per operation, 1 to 1024\n"
	"                  (default $OLLAMA_REGISTRY_MAXSTREAMS, else the number of CPUs)\n"
	"  --mirror URL    pull through this mirror first: URL for every registry, or\n"
	"                  HOST=URL for one; repeatable (default: $OLREG_MIRRORS, a\n"
	"                  comma-separated list of the same)\n"
	"  --platform P    which entry of an image index or manifest list to pull:\n"
	"                  os/arch[/variant], e.g. linux/arm64 (default: this machine's)\n"
	"  --limit-rate RATE\n"
	"                  move at most RATE bytes a second in all (every stream, pulls\n"
	"                  and pushes); K, M and G multiply by 1024, e.g. 50M; 0: no cap\n"
	"                  (default $OLREG_LIMIT_RATE, else no cap)\n"
	"  -q, --quiet     no progress and no summaries; errors only\n"
	"  -v, --verbose   the library's log lines on stderr; -vv adds debug lines\n"
	"  -h, --help      this text\n"
	"      --version   the program's and the library's versions\n"
	"\n"
	"NAME is [scheme://][host/][namespace/]model[:tag], completed from\n"
	"registry.ollama.ai/library/_:latest. Requests are signed with\n"
	"~/.ollama/id_ed25519 when it exists. Progress and messages go to stderr;\n"
	"stdout carries only the output of list and show.\n"
	"Exit status: 0 success, 1 failure, 2 usage error.\n";

struct global_options {
	const char *models;
	bool insecure;
	uint32_t streams;		/* 0: the library's default */
	bool limit_rate_set;		/* false: the library's default */
	uint64_t limit_rate;		/* bytes a second; 0: no cap */
	const char **mirrors;
	size_t mirror_count;
	const char *platform;	/* NULL: the library's default */
	bool quiet;
	int verbose;
};

typedef int (*command_fn)(const struct cli *, const struct command_args *);

static const struct command {
	const char *name;
	command_fn run;
	int min_args, max_args;	/* positional arguments */
	const char *option;	/* the one option it takes ("--from", "--ref"), or NULL */
	const char *operands;	/* for "needs ..." messages */
	bool cancellable;	/* long-running: Ctrl-C cancels it cleanly */
} commands[] = {
	{ "pull",   cmd_pull,   1, 1, NULL,     "a NAME",          true },
	{ "push",   cmd_push,   1, 1, "--from", "a NAME",          true },
	{ "list",   cmd_list,   0, 0, NULL,     NULL,              false },
	{ "show",   cmd_show,   1, 1, NULL,     "a NAME",          false },
	{ "rm",     cmd_rm,     1, 1, NULL,     "a NAME",          false },
	{ "prune",  cmd_prune,  0, 0, NULL,     NULL,              false },
	{ "verify", cmd_verify, 0, 1, NULL,     NULL,              true },
	{ "copy",   cmd_copy,   2, 2, NULL,     "SRC and DST",     true },
	{ "export", cmd_export, 2, 2, NULL,     "NAME and DEST",   true },
	{ "import", cmd_import, 2, 2, "--ref",  "SRC and NAME",    true },
};

#if defined(__GNUC__)
__attribute__((format(printf, 1, 2)))
#endif
static int usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs("olreg: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\n\n", stderr);
	fputs(usage_text, stderr);
	return EXIT_USAGE;
}

/*
 * Matches `--name VALUE` and `--name=VALUE` at argv[*i]. Returns 1 and sets
 * *value (advancing *i past a separate value), 0 if argv[*i] is another
 * option, -1 if the value is missing.
 */
static int option_value(int argc, char **argv, int *i, const char *name, const char **value)
{
	const char *arg = argv[*i];
	size_t len = strlen(name);

	if (strncmp(arg, name, len) != 0)
		return 0;
	if (arg[len] == '=') {
		*value = arg + len + 1;
		return 1;
	}
	if (arg[len] != '\0')
		return 0;
	if (*i + 1 >= argc)
		return -1;
	*value = argv[++*i];
	return 1;
}

/* A whole number from 1 to MAX_STREAMS, nothing else. */
static bool parse_streams(const char *text, uint32_t *out)
{
	unsigned long n;
	char *end;

	if (*text < '0' || *text > '9')
		return false;
	errno = 0;
	n = strtoul(text, &end, 10);
	if (errno || *end || n < 1 || n > MAX_STREAMS)
		return false;
	*out = (uint32_t)n;
	return true;
}

/* A rate: a whole or decimal number of bytes a second with an optional K,
 * M or G (powers of 1024, as curl's --limit-rate counts); 0 is no cap. */
static bool parse_rate(const char *text, uint64_t *out)
{
	double n, scale = 1;
	char *end;

	if ((*text < '0' || *text > '9') && *text != '.')
		return false;
	errno = 0;
	n = strtod(text, &end);
	if (errno || end == text)
		return false;
	switch (*end) {
	case 'k': case 'K': scale = 1024.0; end++; break;
	case 'm': case 'M': scale = 1024.0 * 1024; end++; break;
	case 'g': case 'G': scale = 1024.0 * 1024 * 1024; end++; break;
	}
	if (*end || strpbrk(text, "eExXpP") || n * scale >= 18446744073709551615.0)
		return false;
	*out = (uint64_t)(n * scale + 0.5);
	return true;
}

enum parsed {
	PARSED_OK,	/* go on and run the command */
	PARSED_EXIT,	/* --help or --version: done, exit 0 */
	PARSED_USAGE	/* a usage error was printed: exit 2 */
};

/* Applies the option `arg` that carries `value`. */
static enum parsed apply_valued_option(const char *arg, const char *value,
				       struct global_options *opts)
{
	if (strncmp(arg, "--models", 8) == 0) {
		opts->models = value;
	} else if (strncmp(arg, "--platform", 10) == 0) {
		opts->platform = value;
	} else if (strncmp(arg, "--streams", 9) == 0) {
		if (!parse_streams(value, &opts->streams)) {
			usage_error("--streams needs a whole number from 1 to %d, not '%s'",
				    MAX_STREAMS, value);
			return PARSED_USAGE;
		}
	} else if (strncmp(arg, "--limit-rate", 12) == 0) {
		opts->limit_rate_set = true;
		if (!parse_rate(value, &opts->limit_rate)) {
			usage_error("--limit-rate needs bytes a second, optionally with K, M or G "
				    "(e.g. 50M), not '%s'", value);
			return PARSED_USAGE;
		}
	} else {
		opts->mirrors[opts->mirror_count++] = value;
	}
	return PARSED_OK;
}

/* Applies bundled short flags: -q, -v, -vv, -qv. False if one is unknown. */
static bool apply_short_flags(const char *arg, struct global_options *opts)
{
	const char *c;

	if (arg[1] == '\0' || arg[1] == '-' || strspn(arg + 1, "qv") != strlen(arg + 1))
		return false;
	for (c = arg + 1; *c; c++) {
		if (*c == 'q')
			opts->quiet = true;
		else
			opts->verbose++;
	}
	return true;
}

/* Parses the options before COMMAND and sets *command to COMMAND's index. */
static enum parsed parse_global_options(int argc, char **argv, struct global_options *opts,
					int *command)
{
	int i;

	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		const char *arg = argv[i], *value = NULL;
		int matched;

		if (strcmp(arg, "--") == 0) {
			i++;
			break;
		}
		if ((matched = option_value(argc, argv, &i, "--models", &value)) != 0 ||
		    (matched = option_value(argc, argv, &i, "--streams", &value)) != 0 ||
		    (matched = option_value(argc, argv, &i, "--platform", &value)) != 0 ||
		    (matched = option_value(argc, argv, &i, "--limit-rate", &value)) != 0 ||
		    (matched = option_value(argc, argv, &i, "--mirror", &value)) != 0) {
			if (matched < 0) {
				usage_error("option '%s' needs a value", arg);
				return PARSED_USAGE;
			}
			if (apply_valued_option(arg, value, opts) != PARSED_OK)
				return PARSED_USAGE;
		} else if (strcmp(arg, "--insecure") == 0) {
			opts->insecure = true;
		} else if (strcmp(arg, "--quiet") == 0) {
			opts->quiet = true;
		} else if (strcmp(arg, "--verbose") == 0) {
			opts->verbose++;
		} else if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
			fputs(usage_text, stdout);
			return PARSED_EXIT;
		} else if (strcmp(arg, "--version") == 0) {
			printf("olreg %s (library %s)\n", OLREG_VERSION, olreg_version());
			return PARSED_EXIT;
		} else if (!apply_short_flags(arg, opts)) {
			usage_error("unknown option '%s'", arg);
			return PARSED_USAGE;
		}
	}
	if (i >= argc) {
		usage_error("no command given");
		return PARSED_USAGE;
	}
	*command = i;
	return PARSED_OK;
}

static const struct command *find_command(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	return NULL;
}

/* Parses a command's own arguments (argv[0] is the command). Returns 0 or EXIT_USAGE. */
static int parse_command_args(const struct command *cmd, int argc, char **argv,
			      struct command_args *args)
{
	const char *positional[2];
	int count = 0, i;
	bool options_done = false;

	for (i = 1; i < argc; i++) {
		const char *value = NULL;
		int matched;

		if (!options_done && strcmp(argv[i], "--") == 0) {
			options_done = true;
			continue;
		}
		if (!options_done && argv[i][0] == '-' && argv[i][1] != '\0') {
			matched = cmd->option ? option_value(argc, argv, &i, cmd->option, &value) : 0;
			if (matched < 0)
				return usage_error("option '%s' needs a value", cmd->option);
			if (matched == 0)
				return usage_error("unknown option '%s' for '%s'", argv[i], cmd->name);
			if (strcmp(cmd->option, "--from") == 0)
				args->from = value;
			else
				args->ref = value;
			continue;
		}
		if (count == cmd->max_args)
			return usage_error("too many arguments for '%s'", cmd->name);
		positional[count++] = argv[i];
	}
	if (count < cmd->min_args)
		return usage_error("'%s' needs %s", cmd->name, cmd->operands);
	args->name = count > 0 ? positional[0] : NULL;
	args->second = count > 1 ? positional[1] : NULL;
	return 0;
}

/* Reports a failed options call; returns true if it failed. */
static bool failed(olreg_status status, const char *what)
{
	if (status == OLREG_OK)
		return false;
	report_error("%s: %s", what, olreg_status_str(status));
	return true;
}

static olreg_options *build_options(const struct global_options *g)
{
	olreg_options *opts = NULL;
	size_t i;
	bool bad = false;

	if (failed(olreg_options_new(&opts), "options"))
		return NULL;
	if (g->models)
		bad |= failed(olreg_options_set_models_dir(opts, g->models), "--models");
	if (g->insecure)
		bad |= failed(olreg_options_set_insecure(opts, true), "--insecure");
	if (g->streams)
		bad |= failed(olreg_options_set_streams(opts, g->streams), "--streams");
	if (g->limit_rate_set)
		bad |= failed(olreg_options_set_rate_limit(opts, g->limit_rate), "--limit-rate");
	for (i = 0; i < g->mirror_count; i++)
		bad |= failed(olreg_options_add_mirror(opts, g->mirrors[i]), "--mirror");
	if (g->platform)
		bad |= failed(olreg_options_set_platform(opts, g->platform), "--platform");
	if (g->verbose > 0)
		bad |= failed(olreg_options_set_log_callback(opts, report_log, NULL,
				g->verbose > 1 ? OLREG_LOG_DEBUG : OLREG_LOG_INFO), "-v");
	if (bad) {
		olreg_options_free(opts);
		return NULL;
	}
	return opts;
}

/* Sets up the client (and Ctrl-C handling) and runs the command. */
static int run(const struct command *cmd, const struct command_args *args,
	       const struct global_options *g)
{
	struct cli cli = { NULL, NULL, g->quiet };
	olreg_options *opts;
	olreg_client *client = NULL;
	olreg_cancel *cancel = NULL;
	olreg_error *err = NULL;
	olreg_status status;
	int rc;

	/*
	 * Commands that finish quickly keep the default SIGINT: killing them
	 * is harmless. The others must block it before olreg starts threads.
	 */
	if (cmd->cancellable) {
		if (interrupt_block() != 0 || failed(olreg_cancel_new(&cancel), "cancel token"))
			return 1;
		if (interrupt_watch(cancel) != 0) {
			report_error("cannot watch for Ctrl-C");
			olreg_cancel_free(cancel);
			return 1;
		}
	}
	opts = build_options(g);
	if (!opts) {
		interrupt_unwatch();
		olreg_cancel_free(cancel);
		return 1;
	}
	status = olreg_client_new(opts, &client, &err);
	olreg_options_free(opts);
	if (status != OLREG_OK) {
		report_failure(status, err);
		olreg_error_free(err);
		interrupt_unwatch();
		olreg_cancel_free(cancel);
		return 1;
	}
	cli.client = client;
	cli.cancel = cancel;
	rc = cmd->run(&cli, args);
	olreg_client_free(client);
	interrupt_unwatch();
	olreg_cancel_free(cancel);
	return rc;
}

int main(int argc, char **argv)
{
	struct global_options g = { 0 };
	struct command_args args = { NULL, NULL, NULL, NULL };
	const struct command *cmd;
	enum parsed parsed;
	int first = 0, rc;

	if (platform_init(&argc, &argv) != 0) {
		report_error("out of memory");
		return 1;
	}
	/* Every --mirror could be one of argv's entries. */
	g.mirrors = calloc((size_t)argc, sizeof(*g.mirrors));
	if (!g.mirrors) {
		report_error("out of memory");
		return 1;
	}
	parsed = parse_global_options(argc, argv, &g, &first);
	if (parsed != PARSED_OK) {
		rc = parsed == PARSED_EXIT ? 0 : EXIT_USAGE;
	} else if ((cmd = find_command(argv[first])) == NULL) {
		rc = usage_error("unknown command '%s'", argv[first]);
	} else if (parse_command_args(cmd, argc - first, argv + first, &args) != 0) {
		rc = EXIT_USAGE;
	} else {
		report_set_quiet(g.quiet);
		rc = run(cmd, &args, &g);
	}
	free(g.mirrors);
	return rc;
}
