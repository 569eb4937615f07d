/*
 * A tiny test harness for the C API tests: checks, the test registry (and
 * Docker Distribution) as a child process, its control API over plain HTTP,
 * temporary stores.
 *
 * CHECK* record a failure and go on; REQUIRE stops the program (when what
 * follows cannot run). Each test program calls RUN() per test and returns
 * harness_finish().
 */
#ifndef OLREG_TEST_HARNESS_H
#define OLREG_TEST_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>

#include <olreg.h>

extern int harness_failures;

void harness_fail(const char *file, int line, const char *fmt, ...)
#if defined(__GNUC__)
	__attribute__((format(printf, 3, 4)))
#endif
	;
void harness_abort(const char *file, int line, const char *what);

#define CHECK(cond) \
	do { if (!(cond)) harness_fail(__FILE__, __LINE__, "check failed: %s", #cond); } while (0)

#define CHECK_INT(got, want) \
	do { \
		long long got_ = (long long)(got), want_ = (long long)(want); \
		if (got_ != want_) \
			harness_fail(__FILE__, __LINE__, "%s is %lld, expected %lld", #got, got_, want_); \
	} while (0)

/* A status, printed with its name. */
#define CHECK_STATUS(got, want) \
	do { \
		olreg_status got_ = (got), want_ = (want); \
		if (got_ != want_) \
			harness_fail(__FILE__, __LINE__, "%s returned %d (%s), expected %d (%s)", #got, \
				     (int)got_, olreg_status_str(got_), (int)want_, olreg_status_str(want_)); \
	} while (0)

#define CHECK_STR(got, want) \
	do { \
		const char *got_ = (got), *want_ = (want); \
		if (!got_ || strcmp(got_, want_) != 0) \
			harness_fail(__FILE__, __LINE__, "%s is \"%s\", expected \"%s\"", #got, \
				     got_ ? got_ : "(null)", want_); \
	} while (0)

#define REQUIRE(cond) \
	do { if (!(cond)) harness_abort(__FILE__, __LINE__, #cond); } while (0)

/* A call that must succeed: on failure prints `err`'s message (the call's error out-parameter) and stops. */
#define REQUIRE_OK(call, err) \
	do { \
		olreg_status req_st_ = (call); \
		if (req_st_ != OLREG_OK) { \
			harness_fail(__FILE__, __LINE__, "%s returned %d: %s", #call, (int)req_st_, \
				     olreg_error_message(err)); \
			harness_abort(__FILE__, __LINE__, #call); \
		} \
	} while (0)

#define RUN(test) harness_run(#test, test)

void harness_run(const char *name, void (*test)(void));
/* Prints the result; returns the exit status. */
int harness_finish(void);

/* Seconds on a monotonic clock. */
double now_seconds(void);

/* The test registry program running as a child. */
struct registry {
	pid_t pid;
	int stdin_fd;		/* closing it stops the server */
	char *info;		/* the JSON line it printed */
	char url[128];		/* http://127.0.0.1:PORT */
	char host[128];		/* 127.0.0.1:PORT */
	int port;
};

/*
 * Starts `$OLREG_TESTREG serve ARGS...` (args is NULL-terminated) and waits
 * for its JSON line. Aborts the program if it cannot.
 */
void registry_start(struct registry *r, const char *const *args);
void registry_stop(struct registry *r);

/* Docker Distribution (`$OLREG_TESTREG distribution`) running as a child. */
struct distribution {
	pid_t pid;
	int stdin_fd;		/* closing it stops the registry */
	char *info;		/* the JSON line it printed */
	char url[128];		/* http://127.0.0.1:PORT */
	char host[128];		/* 127.0.0.1:PORT */
	char user[64];		/* what basic and token auth accept ("" without auth) */
	char password[64];
	char log_path[512];	/* the registry's log (with an access log line per request) */
};

/*
 * Starts `$OLREG_TESTREG distribution --auth AUTH` (none, basic or token)
 * and waits for its JSON line. Aborts the program if it cannot.
 */
void distribution_start(struct distribution *d, const char *auth);
void distribution_stop(struct distribution *d);

/* A model name on `r`: "http://127.0.0.1:PORT/<repo_tag>", written into `buf`. */
const char *registry_name(const struct registry *r, const char *repo_tag, char *buf, size_t len);

/*
 * One request to the control API (plain HTTP on the registry host).
 * Returns the HTTP status (or -1), and the body in *body (malloc'd,
 * NUL-terminated; the caller frees it) when body is not NULL.
 */
int registry_control(const struct registry *r, const char *method, const char *path,
		     const char *json, char **body, size_t *body_len);

/* POST /_testreg/faults with `fault_json`; DELETE /_testreg/faults. */
void registry_add_fault(const struct registry *r, const char *fault_json);
void registry_clear_faults(const struct registry *r);

/* A fresh empty directory under $TMPDIR (malloc'd path); removed with its contents. */
char *tmpdir_new(void);
void tmpdir_remove(char *dir);

/*
 * Options on `store`, anonymous and without the developer's Docker logins,
 * for the caller to add to.
 */
olreg_options *store_options(const char *store);

/* A client from `opts`, which it frees. Aborts the program if it fails. */
olreg_client *client_from(olreg_options *opts);

/* A client on `store`, anonymous, with `attempts` tries per request and short backoffs. */
olreg_client *test_client(const char *store, uint32_t attempts);

/* Whether `list` holds `s`. */
bool list_contains(const olreg_string_list *list, const char *s);

#endif
