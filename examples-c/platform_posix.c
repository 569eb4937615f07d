/* The POSIX side of platform.h. */
#include "platform.h"

#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

int platform_init(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	return 0;
}

double platform_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

bool platform_is_terminal(FILE *out)
{
	const char *term = getenv("TERM");

	/* A terminal that cannot move the cursor gets plain lines. */
	return isatty(fileno(out)) && term && *term && strcmp(term, "dumb") != 0;
}

void platform_terminal_size(FILE *out, int *width, int *rows)
{
	struct winsize ws;

	*width = 80;
	*rows = 24;
	if (ioctl(fileno(out), TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0 && ws.ws_row > 0) {
		*width = ws.ws_col;
		*rows = ws.ws_row;
	}
}

void platform_mutex_init(platform_mutex *m)
{
	pthread_mutex_init(m, NULL);
}

void platform_mutex_destroy(platform_mutex *m)
{
	pthread_mutex_destroy(m);
}

void platform_mutex_lock(platform_mutex *m)
{
	pthread_mutex_lock(m);
}

void platform_mutex_unlock(platform_mutex *m)
{
	pthread_mutex_unlock(m);
}

void platform_cond_init(platform_cond *c)
{
	pthread_cond_init(c, NULL);
}

void platform_cond_destroy(platform_cond *c)
{
	pthread_cond_destroy(c);
}

void platform_cond_signal(platform_cond *c)
{
	pthread_cond_signal(c);
}

void platform_cond_wait_for(platform_cond *c, platform_mutex *m, double seconds)
{
	struct timespec until;
	long ns = (long)(seconds * 1e9);

	/* pthread_cond_timedwait takes a deadline on CLOCK_REALTIME. */
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += ns / 1000000000L;
	until.tv_nsec += ns % 1000000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_cond_timedwait(c, m, &until);
}

struct start {
	void (*run)(void *);
	void *arg;
};

static void *trampoline(void *start)
{
	struct start s = *(struct start *)start;

	free(start);
	s.run(s.arg);
	return NULL;
}

int platform_thread_start(platform_thread *t, void (*run)(void *), void *arg)
{
	struct start *s = malloc(sizeof(*s));

	if (!s)
		return -1;
	s->run = run;
	s->arg = arg;
	if (pthread_create(t, NULL, trampoline, s) != 0) {
		free(s);
		return -1;
	}
	return 0;
}

void platform_thread_join(platform_thread t)
{
	pthread_join(t, NULL);
}
