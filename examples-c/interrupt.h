/*
 * Ctrl-C during pull, push and verify: the first SIGINT (or SIGTERM)
 * cancels the running call through its olreg_cancel token, so olreg stops
 * cleanly, keeps what it downloaded for the next pull, and the program
 * exits with "olreg: ... cancelled". A second one kills the program at once.
 *
 * The signals are blocked in every thread and taken by a watcher thread
 * with sigwait(), so nothing runs in a signal handler and olreg's own
 * threads never see them. That only works if interrupt_block() runs before
 * any other thread exists, which means before the first olreg call.
 */
#ifndef OLREG_CLI_INTERRUPT_H
#define OLREG_CLI_INTERRUPT_H

#include <stdbool.h>

#include <olreg.h>

/* Blocks SIGINT and SIGTERM in this thread and in every thread it creates. */
int interrupt_block(void);

/* Starts the thread that waits for them and cancels `cancel`. 0 on success. */
int interrupt_watch(const olreg_cancel *cancel);

/* Stops cancelling the token (which the caller may then free). */
void interrupt_unwatch(void);

#endif
