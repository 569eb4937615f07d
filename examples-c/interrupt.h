/*
 * Ctrl-C during pull, push and verify: the first one cancels the running
 * call through its olreg_cancel token, so olreg stops cleanly, keeps what
 * it downloaded for the next pull, and the program exits with
 * "olreg: ... cancelled". A second one kills the program at once (safe:
 * the store's files are renamed into place only when complete).
 *
 * POSIX (interrupt_posix.c): SIGINT and SIGTERM are blocked in every
 * thread and taken by a watcher thread with sigwait(), so nothing runs in
 * a signal handler and olreg's own threads never see them. That only works
 * if interrupt_block() runs before any other thread exists, which means
 * before the first olreg call.
 *
 * Windows (interrupt_windows.c): a console control handler takes Ctrl-C
 * and Ctrl-Break; Windows runs it on a thread of its own, so there is
 * nothing to block. Closing the console ends the program at once.
 */
#ifndef OLREG_CLI_INTERRUPT_H
#define OLREG_CLI_INTERRUPT_H

#include <stdbool.h>

#include <olreg.h>

/* Blocks SIGINT and SIGTERM in this thread and in every thread it creates
 * (nothing to do on Windows). 0 on success. */
int interrupt_block(void);

/* Starts watching for Ctrl-C, to cancel `cancel`. 0 on success. */
int interrupt_watch(const olreg_cancel *cancel);

/* Stops cancelling the token (which the caller may then free). */
void interrupt_unwatch(void);

#endif
