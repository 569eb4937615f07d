/* The Windows side of platform.h. */
#include "platform.h"

#include <fcntl.h>
#include <io.h>
#include <process.h>
#include <shellapi.h>
#include <stdlib.h>

/* The console's output code page before platform_init, put back at exit. */
static UINT console_output_cp;

static void restore_console(void)
{
	if (console_output_cp)
		SetConsoleOutputCP(console_output_cp);
}

/* The command line again, each argument in UTF-8. */
static char **utf8_arguments(int *argc)
{
	wchar_t **wide = CommandLineToArgvW(GetCommandLineW(), argc);
	char **argv;
	int i;

	if (!wide)
		return NULL;
	argv = calloc((size_t)*argc + 1, sizeof(*argv));
	for (i = 0; argv && i < *argc; i++) {
		int n = WideCharToMultiByte(CP_UTF8, 0, wide[i], -1, NULL, 0, NULL, NULL);

		if (n <= 0 || !(argv[i] = malloc((size_t)n)))
			break;
		WideCharToMultiByte(CP_UTF8, 0, wide[i], -1, argv[i], n, NULL, NULL);
	}
	LocalFree(wide);
	if (argv && i < *argc) {
		while (i-- > 0)
			free(argv[i]);
		free(argv);
		return NULL;
	}
	return argv;
}

int platform_init(int *argc, char ***argv)
{
	/* Kept for the life of the process, as the C runtime's argv is. */
	char **utf8 = utf8_arguments(argc);
	DWORD mode;

	if (!utf8)
		return -1;
	*argv = utf8;
	_setmode(_fileno(stdout), _O_BINARY);
	_setmode(_fileno(stderr), _O_BINARY);
	if (GetConsoleMode(GetStdHandle(STD_ERROR_HANDLE), &mode)) {
		console_output_cp = GetConsoleOutputCP();
		if (SetConsoleOutputCP(CP_UTF8))
			atexit(restore_console);
		else
			console_output_cp = 0;
	}
	return 0;
}

double platform_now(void)
{
	static LARGE_INTEGER frequency;
	LARGE_INTEGER now;

	/* Both calls always succeed on Windows XP and later. */
	if (!frequency.QuadPart)
		QueryPerformanceFrequency(&frequency);
	QueryPerformanceCounter(&now);
	return (double)now.QuadPart / (double)frequency.QuadPart;
}

static HANDLE handle_of(FILE *out)
{
	return (HANDLE)_get_osfhandle(_fileno(out));
}

bool platform_is_terminal(FILE *out)
{
	HANDLE h = handle_of(out);
	DWORD mode;

	/* Pipes and files (and mintty's pty pipes) are no console: plain lines. */
	if (!GetConsoleMode(h, &mode))
		return false;
	/* Windows 10 and later interpret ANSI escapes once asked to. */
	return (mode & ENABLE_VIRTUAL_TERMINAL_PROCESSING) ||
	       SetConsoleMode(h, mode | ENABLE_VIRTUAL_TERMINAL_PROCESSING);
}

void platform_terminal_size(FILE *out, int *width, int *rows)
{
	CONSOLE_SCREEN_BUFFER_INFO info;

	*width = 80;
	*rows = 24;
	if (GetConsoleScreenBufferInfo(handle_of(out), &info)) {
		*width = info.srWindow.Right - info.srWindow.Left + 1;
		*rows = info.srWindow.Bottom - info.srWindow.Top + 1;
	}
}

void platform_mutex_init(platform_mutex *m)
{
	InitializeSRWLock(m);
}

void platform_mutex_destroy(platform_mutex *m)
{
	(void)m;	/* an SRW lock holds no resources */
}

void platform_mutex_lock(platform_mutex *m)
{
	AcquireSRWLockExclusive(m);
}

void platform_mutex_unlock(platform_mutex *m)
{
	ReleaseSRWLockExclusive(m);
}

void platform_cond_init(platform_cond *c)
{
	InitializeConditionVariable(c);
}

void platform_cond_destroy(platform_cond *c)
{
	(void)c;	/* nor does a condition variable */
}

void platform_cond_signal(platform_cond *c)
{
	WakeConditionVariable(c);
}

void platform_cond_wait_for(platform_cond *c, platform_mutex *m, double seconds)
{
	SleepConditionVariableSRW(c, m, (DWORD)(seconds * 1000), 0);
}

struct start {
	void (*run)(void *);
	void *arg;
};

static unsigned __stdcall trampoline(void *start)
{
	struct start s = *(struct start *)start;

	free(start);
	s.run(s.arg);
	return 0;
}

int platform_thread_start(platform_thread *t, void (*run)(void *), void *arg)
{
	struct start *s = malloc(sizeof(*s));
	uintptr_t h;

	if (!s)
		return -1;
	s->run = run;
	s->arg = arg;
	/* _beginthreadex, not CreateThread: the thread uses the C runtime. */
	h = _beginthreadex(NULL, 0, trampoline, s, 0, NULL);
	if (!h) {
		free(s);
		return -1;
	}
	*t = (HANDLE)h;
	return 0;
}

void platform_thread_join(platform_thread t)
{
	WaitForSingleObject(t, INFINITE);
	CloseHandle(t);
}
