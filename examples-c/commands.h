/*
 * The commands of the olreg program. Each one runs a single olreg call,
 * prints its result and returns the exit status (0 success, 1 failure,
 * after exactly one "olreg: <message>" line on stderr).
 */
#ifndef OLREG_CLI_COMMANDS_H
#define OLREG_CLI_COMMANDS_H

#include <stdbool.h>

#include <olreg.h>

/* What every command works with, set up by main(). */
struct cli {
	const olreg_client *client;
	const olreg_cancel *cancel;	/* Ctrl-C cancels through it */
	bool quiet;
};

/* A command's arguments, checked by main() against the command's table entry. */
struct command_args {
	const char *name;	/* the first operand: NAME, SRC; NULL where optional (verify) */
	const char *second;	/* the second operand: copy's DST, export's DEST, import's NAME */
	const char *from;	/* push --from SRC, or NULL */
	const char *ref;	/* import --ref REF, or NULL */
};

int cmd_pull(const struct cli *cli, const struct command_args *args);
int cmd_push(const struct cli *cli, const struct command_args *args);
int cmd_list(const struct cli *cli, const struct command_args *args);
int cmd_show(const struct cli *cli, const struct command_args *args);
int cmd_rm(const struct cli *cli, const struct command_args *args);
int cmd_prune(const struct cli *cli, const struct command_args *args);
int cmd_verify(const struct cli *cli, const struct command_args *args);
int cmd_copy(const struct cli *cli, const struct command_args *args);
int cmd_export(const struct cli *cli, const struct command_args *args);
int cmd_import(const struct cli *cli, const struct command_args *args);

#endif
