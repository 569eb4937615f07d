/* The C tests' harness: see harness.h. */
#include "harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

int harness_failures;
static const char *current_test = "(setup)";

void harness_fail(const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s:%d: %s: ", file, line, current_test);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	harness_failures++;
}

void harness_abort(const char *file, int line, const char *what)
{
	fprintf(stderr, "%s:%d: %s: required: %s; giving up\n", file, line, current_test, what);
	fflush(stderr);
	/*
	 * _exit, not exit: the leak checker would report everything the
	 * interrupted test still holds. Our registries die with their stdin.
	 */
	_exit(1);
}

void harness_run(const char *name, void (*test)(void))
{
	int before = harness_failures;
	double start = now_seconds();

	current_test = name;
	fprintf(stderr, "-- %s\n", name);
	test();
	fprintf(stderr, "-- %s: %s (%.2fs)\n", name,
		harness_failures == before ? "ok" : "FAILED", now_seconds() - start);
	current_test = "(between tests)";
}

int harness_finish(void)
{
	if (harness_failures) {
		fprintf(stderr, "%d check(s) failed\n", harness_failures);
		return 1;
	}
	fprintf(stderr, "all passed\n");
	return 0;
}

double now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The string value of the first `"key":"..."` in `json`, unescaped (only what the registry emits). */
static bool json_string(const char *json, const char *key, char *out, size_t len)
{
	char pattern[64];
	const char *p;
	size_t n = 0;

	snprintf(pattern, sizeof(pattern), "\"%s\":\"", key);
	p = strstr(json, pattern);
	if (!p)
		return false;
	for (p += strlen(pattern); *p && *p != '"' && n + 1 < len; p++) {
		if (*p == '\\' && p[1])
			p++;
		out[n++] = *p;
	}
	out[n] = '\0';
	return *p == '"';
}

static void cloexec(int fd)
{
	fcntl(fd, F_SETFD, FD_CLOEXEC);
}

/* Reads the child's first line (its JSON description), waiting up to a minute. */
static char *read_line(int fd)
{
	size_t len = 0, alloc = 4096;
	char *buf = malloc(alloc);
	double deadline = now_seconds() + 60;

	REQUIRE(buf);
	for (;;) {
		struct pollfd pfd = { fd, POLLIN, 0 };
		ssize_t n;

		if (now_seconds() > deadline || poll(&pfd, 1, 1000) < 0) {
			free(buf);
			return NULL;
		}
		if (!(pfd.revents & (POLLIN | POLLHUP)))
			continue;
		if (len + 1 == alloc) {
			alloc *= 2;
			buf = realloc(buf, alloc);
			REQUIRE(buf);
		}
		n = read(fd, buf + len, alloc - len - 1);
		if (n <= 0) {
			free(buf);
			return NULL;
		}
		len += (size_t)n;
		buf[len] = '\0';
		if (memchr(buf, '\n', len))
			return buf;
	}
}

/*
 * Starts `$OLREG_TESTREG MODE ARGS...` with pipes on its stdin and stdout and
 * waits for its JSON line (malloc'd into *info). Aborts the program if it cannot.
 */
static pid_t testreg_spawn(const char *mode, const char *const *args, int *stdin_fd, char **info)
{
	const char *program = getenv("OLREG_TESTREG");
	posix_spawn_file_actions_t actions;
	char *argv[64];
	int in[2], out[2], argc = 0;
	pid_t pid;

	if (!program || !*program) {
		fprintf(stderr, "OLREG_TESTREG is not set (run the tests through `make test-c`)\n");
		_exit(1);
	}
	argv[argc++] = (char *)program;
	argv[argc++] = (char *)mode;
	while (args && *args && argc < 62)
		argv[argc++] = (char *)*args++;
	argv[argc] = NULL;

	REQUIRE(pipe(in) == 0 && pipe(out) == 0);
	/* Only the child's own copies (made by dup2) may survive exec: a registry
	 * started later must not hold this one's stdin open. */
	cloexec(in[0]);
	cloexec(in[1]);
	cloexec(out[0]);
	cloexec(out[1]);
	posix_spawn_file_actions_init(&actions);
	posix_spawn_file_actions_adddup2(&actions, in[0], 0);
	posix_spawn_file_actions_adddup2(&actions, out[1], 1);
	REQUIRE(posix_spawn(&pid, program, &actions, NULL, argv, environ) == 0);
	posix_spawn_file_actions_destroy(&actions);
	close(in[0]);
	close(out[1]);
	*stdin_fd = in[1];

	*info = read_line(out[0]);
	close(out[0]);
	REQUIRE(*info != NULL);
	return pid;
}

/* Closes the child's stdin (it exits on EOF) and reaps it. */
static void testreg_stop(pid_t pid, int stdin_fd)
{
	int status;

	close(stdin_fd);
	if (waitpid(pid, &status, 0) < 0)
		kill(pid, SIGKILL);
}

void registry_start(struct registry *r, const char *const *args)
{
	const char *colon;

	memset(r, 0, sizeof(*r));
	r->pid = testreg_spawn("serve", args, &r->stdin_fd, &r->info);
	REQUIRE(json_string(r->info, "url", r->url, sizeof(r->url)));
	REQUIRE(json_string(r->info, "host", r->host, sizeof(r->host)));
	colon = strrchr(r->host, ':');
	REQUIRE(colon != NULL);
	r->port = atoi(colon + 1);
}

void registry_stop(struct registry *r)
{
	if (r->pid <= 0)
		return;
	testreg_stop(r->pid, r->stdin_fd);	/* EOF on stdin: the server exits */
	free(r->info);
	r->info = NULL;
	r->pid = 0;
}

void distribution_start(struct distribution *d, const char *auth)
{
	const char *const args[] = { "--auth", auth, NULL };

	memset(d, 0, sizeof(*d));
	d->pid = testreg_spawn("distribution", args, &d->stdin_fd, &d->info);
	REQUIRE(json_string(d->info, "url", d->url, sizeof(d->url)));
	REQUIRE(json_string(d->info, "host", d->host, sizeof(d->host)));
	REQUIRE(json_string(d->info, "log_path", d->log_path, sizeof(d->log_path)));
	/* null without auth: left empty */
	json_string(d->info, "user", d->user, sizeof(d->user));
	json_string(d->info, "password", d->password, sizeof(d->password));
	REQUIRE(strcmp(auth, "none") == 0 || (*d->user && *d->password));
}

void distribution_stop(struct distribution *d)
{
	if (d->pid <= 0)
		return;
	testreg_stop(d->pid, d->stdin_fd);	/* EOF on stdin: it kills the registry and exits */
	free(d->info);
	d->info = NULL;
	d->pid = 0;
}

const char *registry_name(const struct registry *r, const char *repo_tag, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s", r->url, repo_tag);
	return buf;
}

static bool write_all(int fd, const char *data, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, data, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		data += n;
		len -= (size_t)n;
	}
	return true;
}

/* Undoes chunked transfer encoding in place; returns the new length. */
static size_t dechunk(char *body, size_t len)
{
	char *in = body, *out = body, *end = body + len;

	while (in < end) {
		char *line_end;
		unsigned long size = strtoul(in, &line_end, 16);

		line_end = strstr(in, "\r\n");
		if (!line_end || size == 0)
			break;
		in = line_end + 2;
		if (in + size > end)
			size = (unsigned long)(end - in);
		memmove(out, in, size);
		out += size;
		in += size + 2;
	}
	*out = '\0';
	return (size_t)(out - body);
}

int registry_control(const struct registry *r, const char *method, const char *path,
		     const char *json, char **body, size_t *body_len)
{
	struct sockaddr_in addr;
	char header[512], *response = NULL, *start;
	size_t len = 0, alloc = 0;
	int fd, status = -1;

	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		return -1;
	memset(&addr, 0, sizeof(addr));
	addr.sin_family = AF_INET;
	addr.sin_port = htons((uint16_t)r->port);
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0)
		goto out;
	snprintf(header, sizeof(header),
		 "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n"
		 "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
		 method, path, r->host, json ? strlen(json) : 0);
	if (!write_all(fd, header, strlen(header)) || (json && !write_all(fd, json, strlen(json))))
		goto out;
	for (;;) {
		ssize_t n;

		if (alloc - len < 65536) {
			alloc = alloc ? alloc * 2 : 65536;
			response = realloc(response, alloc + 1);
			REQUIRE(response);
		}
		n = read(fd, response + len, alloc - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	if (!response || sscanf(response, "HTTP/1.%*d %d", &status) != 1)
		goto out;
	response[len] = '\0';
	start = strstr(response, "\r\n\r\n");
	if (body && start) {
		bool chunked;

		*start = '\0';
		chunked = strstr(response, "chunked") != NULL;
		start += 4;
		len -= (size_t)(start - response);
		memmove(response, start, len + 1);
		if (chunked)
			len = dechunk(response, len);
		*body = response;
		if (body_len)
			*body_len = len;
		response = NULL;
	}
out:
	free(response);
	close(fd);
	return status;
}

void registry_add_fault(const struct registry *r, const char *fault_json)
{
	REQUIRE(registry_control(r, "POST", "/_testreg/faults", fault_json, NULL, NULL) == 204);
}

void registry_clear_faults(const struct registry *r)
{
	REQUIRE(registry_control(r, "DELETE", "/_testreg/faults", NULL, NULL, NULL) == 204);
}

char *tmpdir_new(void)
{
	const char *base = getenv("TMPDIR");
	char *dir;
	size_t len;

	if (!base || !*base)
		base = "/tmp";
	len = strlen(base) + sizeof("/olreg-c-XXXXXX");
	dir = malloc(len);
	REQUIRE(dir);
	snprintf(dir, len, "%s/olreg-c-XXXXXX", base);
	REQUIRE(mkdtemp(dir) != NULL);
	return dir;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

void tmpdir_remove(char *dir)
{
	if (!dir)
		return;
	nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(dir);
}

olreg_options *store_options(const char *store)
{
	olreg_options *opts = NULL;
	olreg_error *err = NULL;

	REQUIRE_OK(olreg_options_new(&opts), err);
	REQUIRE_OK(olreg_options_set_models_dir(opts, store), err);
	/* Neither the developer's ~/.ollama key nor their Docker logins. */
	REQUIRE_OK(olreg_options_set_key_file(opts, NULL), err);
	REQUIRE_OK(olreg_options_set_docker_config(opts, NULL), err);
	return opts;
}

olreg_client *client_from(olreg_options *opts)
{
	olreg_client *client = NULL;
	olreg_error *err = NULL;

	REQUIRE_OK(olreg_client_new(opts, &client, &err), err);
	olreg_options_free(opts);
	return client;
}

olreg_client *test_client(const char *store, uint32_t attempts)
{
	olreg_options *opts = store_options(store);
	olreg_error *err = NULL;

	REQUIRE_OK(olreg_options_set_retries(opts, attempts, 10, 200), err);
	REQUIRE_OK(olreg_options_set_streams(opts, 4), err);
	return client_from(opts);
}

bool list_contains(const olreg_string_list *list, const char *s)
{
	size_t i;

	for (i = 0; i < olreg_string_list_len(list); i++)
		if (strcmp(olreg_string_list_get(list, i), s) == 0)
			return true;
	return false;
}
