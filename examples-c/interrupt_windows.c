/* Ctrl-C handling on Windows: see interrupt.h. */
#include "interrupt.h"

#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#include <windows.h>

static volatile LONG requested;
/* The token the handler cancels; the lock keeps it alive while it does. */
static SRWLOCK token_lock = SRWLOCK_INIT;
static const olreg_cancel *token;

/*
 * Windows runs console control handlers on a thread of its own, created
 * for the event: the handler may take locks and call olreg_cancel_cancel()
 * directly. Returning FALSE passes the event on to the default handler,
 * which ends the process (exit status STATUS_CONTROL_C_EXIT).
 */
static BOOL WINAPI on_console_event(DWORD event)
{
	if (event != CTRL_C_EVENT && event != CTRL_BREAK_EVENT)
		return FALSE;	/* closing the console, logging off: end now */
	if (InterlockedExchange(&requested, 1))
		return FALSE;	/* asked twice: stop waiting for a clean finish */
	AcquireSRWLockExclusive(&token_lock);
	if (token)
		olreg_cancel_cancel(token);
	ReleaseSRWLockExclusive(&token_lock);
	return TRUE;
}

int interrupt_block(void)
{
	return 0;	/* no signals to block: the handler has its own thread */
}

int interrupt_watch(const olreg_cancel *cancel)
{
	AcquireSRWLockExclusive(&token_lock);
	token = cancel;
	ReleaseSRWLockExclusive(&token_lock);
	return SetConsoleCtrlHandler(on_console_event, TRUE) ? 0 : -1;
}

void interrupt_unwatch(void)
{
	/* The handler stays installed and finds no token until the process exits. */
	AcquireSRWLockExclusive(&token_lock);
	token = NULL;
	ReleaseSRWLockExclusive(&token_lock);
}
