/*
 * What a hostile registry or a careless setup must not get from olreg
 * (docs/security.md), through the C API against live test registries and
 * real files: tokens stay with their registry, upload steps are never
 * redirected, trickles end, key and config files are read with care.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

/* The key of tests/fixtures/auth-vector.json (a test key, used nowhere else). */
static const char test_key[] =
	"-----BEGIN OPENSSH PRIVATE KEY-----\n"
	"b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n"
	"QyNTUxOQAAACDpJigKx8aIAO1h6zz+6rnL6Ry2ParfAuQ641lz+VYWSAAAAJDxgl2D8YJd\n"
	"gwAAAAtzc2gtZWQyNTUxOQAAACDpJigKx8aIAO1h6zz+6rnL6Ry2ParfAuQ641lz+VYWSA\n"
	"AAAEBPhI3cn23drPyXgMTrLmu7E1xUojieKmXOr3e3pOhdgukmKArHxogA7WHrPP7qucvp\n"
	"HLY9qt8C5DrjWXP5VhZIAAAACm9scmVnLXRlc3QBAgM=\n"
	"-----END OPENSSH PRIVATE KEY-----\n";

/* Writes `text` to `dir/name` with `mode`; returns the malloc'd path. */
static char *write_file(const char *dir, const char *name, const char *text, mode_t mode)
{
	size_t len = strlen(dir) + strlen(name) + 2;
	char *path = malloc(len);
	FILE *f;

	REQUIRE(path);
	snprintf(path, len, "%s/%s", dir, name);
	f = fopen(path, "w");
	REQUIRE(f);
	fputs(text, f);
	fclose(f);
	REQUIRE(chmod(path, mode) == 0);
	return path;
}

/* The request log of `r` (malloc'd JSON). */
static char *request_log(const struct registry *r)
{
	char *body = NULL;

	REQUIRE(registry_control(r, "GET", "/_testreg/requests", NULL, &body, NULL) == 200);
	return body;
}

/* Options for a client on `store` with key file `key` and Docker config `config` (NULL: none). */
static olreg_options *options_for(const char *store, const char *key, const char *config)
{
	olreg_options *opts = store_options(store);
	olreg_error *err = NULL;

	REQUIRE_OK(olreg_options_set_key_file(opts, key), err);
	REQUIRE_OK(olreg_options_set_docker_config(opts, config), err);
	return opts;
}

/*
 * Registry B names registry A's token realm, service and scope in its
 * challenge. The token A issued to this client must never reach B.
 */
static void test_tokens_stay_with_their_registry(void)
{
	const char *const a_args[] = { "--auth", "challenge", "--model", "library/m:v1=1K", NULL };
	struct registry a, b;
	char realm[200], name[256], *dir = tmpdir_new(), *store = tmpdir_new(), *key;
	char *a_log, *b_log, *at;
	olreg_options *opts = NULL;
	olreg_client *client = NULL;
	olreg_error *err = NULL;
	olreg_manifest *m = NULL;
	int tokens = 0;

	registry_start(&a, a_args);
	snprintf(realm, sizeof(realm), "%s/token", a.url);
	{
		const char *const b_args[] = { "--auth", "challenge", "--realm", realm,
					       "--service", a.host, "--model", "library/m:v1=1K",
					       NULL };
		registry_start(&b, b_args);
	}
	key = write_file(dir, "id_ed25519", test_key, 0600);
	opts = options_for(store, key, NULL);
	REQUIRE_OK(olreg_options_set_retries(opts, 1, 10, 10), err);
	client = client_from(opts);

	/* A: its challenge, a signed request to its realm, a token. */
	REQUIRE_OK(olreg_pull(client, registry_name(&a, "library/m:v1", name, sizeof(name)), NULL,
			      NULL, NULL, &m, &err), err);
	olreg_manifest_free(m);
	m = NULL;
	/* B: the same realm, service and scope. */
	CHECK(olreg_pull(client, registry_name(&b, "library/m:v1", name, sizeof(name)), NULL, NULL,
			 NULL, &m, &err) != OLREG_OK);
	olreg_manifest_free(m);
	olreg_error_free(err);

	a_log = request_log(&a);
	b_log = request_log(&b);
	/* Every token A accepted (48 hex digits after "Bearer ") is absent from B's log. */
	for (at = strstr(a_log, "\"Bearer "); at; at = strstr(at + 1, "\"Bearer ")) {
		char token[64];
		size_t n = strspn(at + 8, "0123456789abcdef");

		if (n != 48 || at[8 + n] != '"')
			continue;
		memcpy(token, at + 8, n);
		token[n] = '\0';
		tokens++;
		if (strstr(b_log, token))
			harness_fail(__FILE__, __LINE__, "registry B received A's token %s", token);
	}
	CHECK(tokens > 0);
	free(a_log);
	free(b_log);
	olreg_client_free(client);
	registry_stop(&b);
	registry_stop(&a);
	free(key);
	tmpdir_remove(dir);
	tmpdir_remove(store);
}

/* A client on `store` with 1 MiB chunks above 1 MiB (so uploads to sessions use PATCH). */
static olreg_client *chunking_client(const char *store)
{
	olreg_options *opts = options_for(store, NULL, NULL);
	olreg_error *err = NULL;

	REQUIRE_OK(olreg_options_set_retries(opts, 2, 10, 50), err);
	REQUIRE_OK(olreg_options_set_chunking(opts, 1 << 20, 1 << 20), err);
	REQUIRE_OK(olreg_options_set_upload_chunk_size(opts, 1 << 20), err);
	return client_from(opts);
}

/* A model pulled from a registry of its own into a chunking client's store, to push elsewhere. */
struct pushing {
	struct registry src;
	char from[256];	/* the model's name at its source */
	char *store;
	olreg_client *client;
};

static void pushing_start(struct pushing *p, const char *model_spec)
{
	const char *const args[] = { "--model", model_spec, NULL };
	olreg_error *err = NULL;

	p->store = tmpdir_new();
	p->client = chunking_client(p->store);
	registry_start(&p->src, args);
	REQUIRE_OK(olreg_pull(p->client, registry_name(&p->src, "library/m:v1", p->from,
						    sizeof(p->from)),
			      NULL, NULL, NULL, NULL, &err), err);
}

/* Pushes the model to `dst` as library/m:v1. */
static olreg_status pushing_to(struct pushing *p, const struct registry *dst, olreg_error **err)
{
	char to[256];

	return olreg_push(p->client, registry_name(dst, "library/m:v1", to, sizeof(to)), p->from,
			  NULL, NULL, NULL, err);
}

static void pushing_stop(struct pushing *p)
{
	olreg_client_free(p->client);
	registry_stop(&p->src);
	tmpdir_remove(p->store);
}

/*
 * A redirect answering an upload step (manifest PUT, blob POST, PUT or
 * PATCH) means the step did not happen: the push fails with the status,
 * and the registry holds no manifest.
 */
static void test_redirected_upload_steps_fail(void)
{
	static const struct {
		const char *mode, *fault;
	} cases[] = {
		{ NULL, "{\"target\":\"manifest_put\",\"kind\":{\"redirect\":{\"location\":\"/elsewhere\",\"code\":308}},\"times\":0}" },
		{ NULL, "{\"target\":\"upload_put\",\"kind\":{\"redirect\":{\"location\":\"/elsewhere\",\"code\":308}},\"times\":0}" },
		{ NULL, "{\"target\":\"upload\",\"kind\":{\"redirect\":{\"location\":\"/elsewhere\",\"code\":308}},\"times\":0}" },
		{ "--session-uploads", "{\"target\":\"upload_put\",\"kind\":{\"redirect\":{\"location\":\"/elsewhere\",\"code\":307}},\"times\":0}" },
	};
	struct pushing p;
	olreg_error *err = NULL;
	size_t i;

	pushing_start(&p, "library/m:v1=3M");
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *const dst_args[] = { cases[i].mode, NULL };
		struct registry dst;
		olreg_status st;

		registry_start(&dst, dst_args);
		registry_add_fault(&dst, cases[i].fault);
		st = pushing_to(&p, &dst, &err);
		if (st != OLREG_PROTOCOL || !strstr(olreg_error_message(err), " 30"))
			harness_fail(__FILE__, __LINE__, "%s: push returned %s: %s", cases[i].fault,
				     olreg_status_str(st), olreg_error_message(err));
		CHECK(registry_control(&dst, "GET", "/_testreg/manifests/library/m/v1", NULL, NULL,
				       NULL) == 404);
		olreg_error_free(err);
		err = NULL;
		registry_stop(&dst);
	}
	pushing_stop(&p);
}

/* The warnings a client logged, joined by newlines. */
struct warnings {
	char text[4096];
};

static void collect_warnings(void *user_data, olreg_log_level level, const char *message)
{
	struct warnings *w = user_data;
	size_t used = strlen(w->text);

	if (level == OLREG_LOG_WARN)
		snprintf(w->text + used, sizeof(w->text) - used, "%s\n", message);
}

/* olreg_client_new with the key at `key` and the Docker config at `config` (NULL: none). */
static olreg_status new_client(const char *store, const char *key, const char *config,
			       struct warnings *w, olreg_client **client, olreg_error **err)
{
	olreg_options *opts = options_for(store, key, config);
	olreg_status st;

	if (w)
		REQUIRE_OK(olreg_options_set_log_callback(opts, collect_warnings, w, OLREG_LOG_WARN),
			   *err);
	st = olreg_client_new(opts, client, err);
	olreg_options_free(opts);
	return st;
}

/*
 * Ollama's signed per-request token goes unasked only to Ollama's hosts
 * and to hosts the caller lists; an unlisted registry never receives it.
 */
static void test_signed_tokens_go_only_to_listed_hosts(void)
{
	const char *const args[] = { "--model", "library/m:v1=1K", NULL };
	struct registry reg;
	char name[256], *dir = tmpdir_new(), *store = tmpdir_new(), *log;
	char *key = write_file(dir, "id_ed25519", test_key, 0600);
	olreg_options *opts = NULL;
	olreg_client *client = NULL;
	olreg_error *err = NULL;

	registry_start(&reg, args);
	registry_name(&reg, "library/m:v1", name, sizeof(name));
	REQUIRE_OK(new_client(store, key, NULL, NULL, &client, &err), err);
	REQUIRE_OK(olreg_pull(client, name, NULL, NULL, NULL, NULL, &err), err);
	olreg_client_free(client);
	log = request_log(&reg);
	CHECK(strstr(log, "\"authorization\"") == NULL);
	free(log);

	/* Listed: every request to the registry carries it (the blob store still gets nothing). */
	REQUIRE(registry_control(&reg, "DELETE", "/_testreg/requests", NULL, NULL, NULL) == 204);
	opts = options_for(store, key, NULL);
	REQUIRE_OK(olreg_options_add_signed_host(opts, reg.host), err);
	REQUIRE_OK(olreg_client_new(opts, &client, &err), err);
	REQUIRE_OK(olreg_pull(client, name, NULL, NULL, NULL, NULL, &err), err);
	olreg_client_free(client);
	log = request_log(&reg);
	CHECK(strstr(log, "\"authorization\",\"Bearer ") != NULL);
	free(log);

	/* A host that is not host[:port] is refused by name. */
	REQUIRE_OK(olreg_options_add_signed_host(opts, "https://x.example/path"), err);
	CHECK_STATUS(olreg_client_new(opts, &client, &err), OLREG_INVALID_ARGUMENT);
	CHECK(strstr(olreg_error_message(err), "https://x.example/path") != NULL);
	olreg_error_free(err);
	olreg_options_free(opts);
	registry_stop(&reg);
	free(key);
	tmpdir_remove(dir);
	tmpdir_remove(store);
}

/* A key others may read is used, with a warning that names it and its mode. */
static void test_exposed_key_is_used_with_a_warning(void)
{
	const char *const args[] = { "--auth", "challenge", "--model", "library/m:v1=1K", NULL };
	struct registry reg;
	struct warnings w = { "" };
	char name[256], *dir = tmpdir_new(), *store = tmpdir_new();
	char *key = write_file(dir, "id_ed25519", test_key, 0644);
	olreg_client *client = NULL;
	olreg_error *err = NULL;

	registry_start(&reg, args);
	REQUIRE_OK(new_client(store, key, NULL, &w, &client, &err), err);
	CHECK(strstr(w.text, key) != NULL);
	CHECK(strstr(w.text, "0644") != NULL);
	/* Still signing: the registry's challenge is answered. */
	REQUIRE_OK(olreg_pull(client, registry_name(&reg, "library/m:v1", name, sizeof(name)), NULL,
			      NULL, NULL, NULL, &err), err);
	olreg_client_free(client);

	/* A private key file draws no warning. */
	memset(&w, 0, sizeof(w));
	REQUIRE(chmod(key, 0600) == 0);
	REQUIRE_OK(new_client(store, key, NULL, &w, &client, &err), err);
	CHECK_STR(w.text, "");
	olreg_client_free(client);
	registry_stop(&reg);
	free(key);
	tmpdir_remove(dir);
	tmpdir_remove(store);
}

/*
 * A key file or Docker config that is a FIFO, a device or a huge file is
 * refused at once: no hang, no memory eaten. (SIGALRM ends a hang.)
 */
static void test_key_and_config_files_are_read_with_care(void)
{
	char *dir = tmpdir_new(), *store = tmpdir_new(), fifo[512], big[512];
	const char *bad[] = { fifo, "/dev/zero", big };
	olreg_options *opts;
	olreg_client *client = NULL;
	olreg_error *err = NULL;
	FILE *f;
	size_t i;

	snprintf(fifo, sizeof(fifo), "%s/fifo", dir);
	REQUIRE(mkfifo(fifo, 0600) == 0);
	snprintf(big, sizeof(big), "%s/big", dir);
	f = fopen(big, "w");
	REQUIRE(f);
	REQUIRE(fseek(f, 64L << 20, SEEK_SET) == 0 && fputc('x', f) != EOF);
	fclose(f);

	alarm(60);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		double start = now_seconds();
		olreg_status st = new_client(store, bad[i], NULL, NULL, &client, &err);

		CHECK_STATUS(st, OLREG_INVALID_ARGUMENT);
		if (st != OLREG_OK && !strstr(olreg_error_message(err), bad[i]))
			harness_fail(__FILE__, __LINE__, "key %s: %s", bad[i], olreg_error_message(err));
		olreg_error_free(err);
		err = NULL;
		olreg_client_free(client);
		client = NULL;

		st = new_client(store, NULL, bad[i], NULL, &client, &err);
		CHECK_STATUS(st, OLREG_INVALID_ARGUMENT);
		if (st != OLREG_OK && !strstr(olreg_error_message(err), bad[i]))
			harness_fail(__FILE__, __LINE__, "config %s: %s", bad[i], olreg_error_message(err));
		olreg_error_free(err);
		err = NULL;
		olreg_client_free(client);
		client = NULL;

		/* An extra CA file too: a FIFO hung client creation, /dev/zero ate memory. */
		opts = options_for(store, NULL, NULL);
		REQUIRE(olreg_options_add_ca_file(opts, bad[i]) == OLREG_OK);
		st = olreg_client_new(opts, &client, &err);
		olreg_options_free(opts);
		CHECK_STATUS(st, OLREG_INVALID_ARGUMENT);
		if (st != OLREG_OK && (!strstr(olreg_error_message(err), bad[i]) ||
				       !strstr(olreg_error_message(err), "ca_file")))
			harness_fail(__FILE__, __LINE__, "CA file %s: %s", bad[i], olreg_error_message(err));
		olreg_error_free(err);
		err = NULL;
		olreg_client_free(client);
		client = NULL;
		CHECK(now_seconds() - start < 10);
	}
	alarm(0);
	tmpdir_remove(dir);
	tmpdir_remove(store);
}

/* Cancels `cancel` after `seconds`, unless stopped first: a hang fails the test instead of hanging it. */
struct watchdog {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t stop;
	bool stopped;
	int seconds;
	olreg_cancel *cancel;
};

static void *watchdog_run(void *arg)
{
	struct watchdog *w = arg;
	struct timespec until;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += w->seconds;
	pthread_mutex_lock(&w->lock);
	while (!w->stopped)
		if (pthread_cond_timedwait(&w->stop, &w->lock, &until) == ETIMEDOUT)
			break;
	if (!w->stopped)
		olreg_cancel_cancel(w->cancel);
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

static void watchdog_start(struct watchdog *w, int seconds)
{
	olreg_error *err = NULL;

	memset(w, 0, sizeof(*w));
	w->seconds = seconds;
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->stop, NULL);
	REQUIRE_OK(olreg_cancel_new(&w->cancel), err);
	REQUIRE(pthread_create(&w->thread, NULL, watchdog_run, w) == 0);
}

static void watchdog_stop(struct watchdog *w)
{
	pthread_mutex_lock(&w->lock);
	w->stopped = true;
	pthread_cond_signal(&w->stop);
	pthread_mutex_unlock(&w->lock);
	pthread_join(w->thread, NULL);
	olreg_cancel_free(w->cancel);
	pthread_cond_destroy(&w->stop);
	pthread_mutex_destroy(&w->lock);
}

/* A client with a 1 s stall timeout, 2 attempts, and `min_speed` (UINT64_MAX: the default). */
static olreg_client *trickle_client(const char *store, uint64_t min_speed)
{
	olreg_options *opts = options_for(store, NULL, NULL);
	olreg_error *err = NULL;

	REQUIRE_OK(olreg_options_set_retries(opts, 2, 10, 50), err);
	REQUIRE_OK(olreg_options_set_timeouts(opts, 0, 1000), err);
	if (min_speed != UINT64_MAX)
		REQUIRE_OK(olreg_options_set_min_speed(opts, min_speed), err);
	return client_from(opts);
}

/* Pulls `name` with a 60 s watchdog; returns the status and, in `message`, the error. */
static olreg_status watched_pull(olreg_client *client, const char *name, char *message, size_t len)
{
	struct watchdog w;
	olreg_error *err = NULL;
	olreg_status st;

	watchdog_start(&w, 60);
	st = olreg_pull(client, name, NULL, NULL, w.cancel, NULL, &err);
	watchdog_stop(&w);
	snprintf(message, len, "%s", olreg_error_message(err));
	olreg_error_free(err);
	return st;
}

/*
 * A registry that keeps a connection alive with a trickle (1 byte per
 * 0.5 s, below the stall timeout) is dropped like a stalled one; the
 * minimum speed is a setting.
 */
static void test_trickles_end(void)
{
	const char *const args[] = { "--model", "library/slow:v1=16K", NULL };
	struct registry reg;
	char name[256], message[1024], *store = tmpdir_new();
	olreg_client *client = trickle_client(store, UINT64_MAX);
	double start;
	olreg_status st;

	registry_start(&reg, args);
	registry_name(&reg, "library/slow:v1", name, sizeof(name));
	registry_add_fault(&reg, "{\"target\":\"manifest\",\"kind\":{\"trickle\":{\"bytes\":1,\"millis\":500}},\"times\":0}");
	start = now_seconds();
	st = watched_pull(client, name, message, sizeof(message));
	CHECK_STATUS(st, OLREG_NETWORK);
	if (!strstr(message, "minimum speed"))
		harness_fail(__FILE__, __LINE__, "manifest trickle: %s", message);
	CHECK(now_seconds() - start < 30);
	registry_clear_faults(&reg);
	olreg_client_free(client);

	/* Blobs at ~5 KiB/s: too slow for 8 KiB/s, fast enough for the default 1 KiB/s. */
	registry_add_fault(&reg, "{\"target\":{\"blob_store\":{}},\"kind\":{\"trickle\":{\"bytes\":512,\"millis\":100}},\"times\":0}");
	client = trickle_client(store, 8192);
	st = watched_pull(client, name, message, sizeof(message));
	CHECK_STATUS(st, OLREG_NETWORK);
	if (!strstr(message, "minimum speed of 8192 bytes/s"))
		harness_fail(__FILE__, __LINE__, "blob trickle: %s", message);
	olreg_client_free(client);
	client = trickle_client(store, UINT64_MAX);
	st = watched_pull(client, name, message, sizeof(message));
	CHECK_STATUS(st, OLREG_OK);
	olreg_client_free(client);
	registry_stop(&reg);
	tmpdir_remove(store);
}

/*
 * A registry that hangs up while olreg still sends a body makes the write
 * fail (EPIPE); it must never raise SIGPIPE in the calling process, whose
 * default action would end it.
 */
static void test_a_hang_up_mid_upload_is_an_error_not_a_signal(void)
{
	static const char *const modes[] = { NULL, "--session-uploads" };
	struct pushing p;
	olreg_error *err = NULL;
	size_t i;
	int round;

	pushing_start(&p, "library/m:v1=8M");
	for (i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		const char *const dst_args[] = { modes[i], NULL };
		struct registry dst;

		registry_start(&dst, dst_args);
		registry_add_fault(&dst, "{\"target\":\"upload_put\",\"kind\":\"hang_up\",\"times\":0}");
		for (round = 0; round < 3; round++) {
			CHECK_STATUS(pushing_to(&p, &dst, &err), OLREG_NETWORK);
			olreg_error_free(err);
			err = NULL;
		}
		registry_stop(&dst);
	}
	pushing_stop(&p);
}

int main(void)
{
	RUN(test_tokens_stay_with_their_registry);
	RUN(test_redirected_upload_steps_fail);
	RUN(test_a_hang_up_mid_upload_is_an_error_not_a_signal);
	RUN(test_signed_tokens_go_only_to_listed_hosts);
	RUN(test_exposed_key_is_used_with_a_warning);
	RUN(test_key_and_config_files_are_read_with_care);
	RUN(test_trickles_end);
	return harness_finish();
}
