/*
 * What differs between POSIX systems and Windows, in one place: the clock,
 * the terminal, the command line's encoding, and the lock, condition
 * variable and thread the live progress display needs. Everything else in
 * the program is standard C11. platform_posix.c and platform_windows.c
 * implement it (interrupt.h has its own two: Ctrl-C differs the most).
 */
#ifndef OLREG_CLI_PLATFORM_H
#define OLREG_CLI_PLATFORM_H

#include <stdbool.h>
#include <stdio.h>

#ifdef _WIN32
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#include <windows.h>
typedef SRWLOCK platform_mutex;
typedef CONDITION_VARIABLE platform_cond;
typedef HANDLE platform_thread;
#else
#include <pthread.h>
typedef pthread_mutex_t platform_mutex;
typedef pthread_cond_t platform_cond;
typedef pthread_t platform_thread;
#endif

/*
 * Prepares the process; call first thing in main(). On Windows: the
 * arguments are replaced by their UTF-8 form (the library takes UTF-8
 * names and paths; the C runtime's argv is in the ANSI code page),
 * stdout and stderr become binary (`show` writes a manifest byte for
 * byte, and every line ends in "\n" on every system, as scripts reading
 * the output expect) and the console prints UTF-8.
 * Elsewhere: nothing. Returns 0, or -1 when out of memory.
 */
int platform_init(int *argc, char ***argv);

/* Seconds on a monotonic clock. */
double platform_now(void);

/*
 * Whether `out` is a terminal that moves the cursor for ANSI escapes: a
 * POSIX tty whose $TERM is set and not "dumb", or a Windows console in
 * which virtual-terminal processing could be turned on.
 */
bool platform_is_terminal(FILE *out);

/* The size of the terminal `out` is; 80 by 24 when it cannot be told. */
void platform_terminal_size(FILE *out, int *width, int *rows);

void platform_mutex_init(platform_mutex *m);
void platform_mutex_destroy(platform_mutex *m);
void platform_mutex_lock(platform_mutex *m);
void platform_mutex_unlock(platform_mutex *m);

void platform_cond_init(platform_cond *c);
void platform_cond_destroy(platform_cond *c);
void platform_cond_signal(platform_cond *c);
/* Waits (holding `m` again on return) until signalled or `seconds` pass. */
void platform_cond_wait_for(platform_cond *c, platform_mutex *m, double seconds);

/* Starts `run(arg)` on a new thread; 0 on success. */
int platform_thread_start(platform_thread *t, void (*run)(void *), void *arg);
void platform_thread_join(platform_thread t);

#endif
