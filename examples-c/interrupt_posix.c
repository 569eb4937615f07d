/* Ctrl-C handling on POSIX systems: see interrupt.h. */
#include "interrupt.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>

static sigset_t watched;
static atomic_bool requested;
/* The token the watcher cancels; the lock keeps it alive while it does. */
static pthread_mutex_t token_lock = PTHREAD_MUTEX_INITIALIZER;
static const olreg_cancel *token;

int interrupt_block(void)
{
	sigemptyset(&watched);
	sigaddset(&watched, SIGINT);
	sigaddset(&watched, SIGTERM);
	return pthread_sigmask(SIG_BLOCK, &watched, NULL);
}

/* Dies of `sig` as if it had never been caught, so the shell sees why we stopped. */
static void die_of(int sig)
{
	sigset_t just_this;

	signal(sig, SIG_DFL);
	sigemptyset(&just_this);
	sigaddset(&just_this, sig);
	pthread_sigmask(SIG_UNBLOCK, &just_this, NULL);
	raise(sig);
}

static void *watch(void *unused)
{
	int sig;

	(void)unused;
	for (;;) {
		if (sigwait(&watched, &sig) != 0)
			continue;
		if (atomic_exchange(&requested, true)) {
			/*
			 * Asked twice: stop waiting for a clean finish. Killing
			 * olreg mid-write is safe, the store's files are
			 * renamed into place only when complete.
			 */
			die_of(sig);
		}
		pthread_mutex_lock(&token_lock);
		if (token)
			olreg_cancel_cancel(token);
		pthread_mutex_unlock(&token_lock);
	}
	return NULL;
}

int interrupt_watch(const olreg_cancel *cancel)
{
	pthread_t thread;
	int rc;

	pthread_mutex_lock(&token_lock);
	token = cancel;
	pthread_mutex_unlock(&token_lock);
	rc = pthread_create(&thread, NULL, watch, NULL);
	if (rc == 0)
		pthread_detach(thread);
	return rc;
}

void interrupt_unwatch(void)
{
	/* The thread stays parked in sigwait() until the process exits. */
	pthread_mutex_lock(&token_lock);
	token = NULL;
	pthread_mutex_unlock(&token_lock);
}
