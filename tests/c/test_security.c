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
	REQUIRE_OK(olreg_options_new(&opts), err);
	REQUIRE_OK(olreg_options_set_models_dir(opts, store), err);
	REQUIRE_OK(olreg_options_set_key_file(opts, key), err);
	REQUIRE_OK(olreg_options_set_docker_config(opts, NULL), err);
	REQUIRE_OK(olreg_options_set_retries(opts, 1, 10, 10), err);
	REQUIRE_OK(olreg_client_new(opts, &client, &err), err);
	olreg_options_free(opts);

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
	olreg_options *opts = NULL;
	olreg_client *client = NULL;
	olreg_error *err = NULL;

	REQUIRE_OK(olreg_options_new(&opts), err);
	REQUIRE_OK(olreg_options_set_models_dir(opts, store), err);
	REQUIRE_OK(olreg_options_set_key_file(opts, NULL), err);
	REQUIRE_OK(olreg_options_set_docker_config(opts, NULL), err);
	REQUIRE_OK(olreg_options_set_retries(opts, 2, 10, 50), err);
	REQUIRE_OK(olreg_options_set_chunking(opts, 1 << 20, 1 << 20), err);
	REQUIRE_OK(olreg_options_set_upload_chunk_size(opts, 1 << 20), err);
	REQUIRE_OK(olreg_client_new(opts, &client, &err), err);
	olreg_options_free(opts);
	return client;
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
	const char *const src_args[] = { "--model", "library/m:v1=3M", NULL };
	struct registry src;
	char from[256], to[256], *store = tmpdir_new();
	olreg_client *client = chunking_client(store);
	olreg_manifest *m = NULL;
	olreg_error *err = NULL;
	size_t i;

	registry_start(&src, src_args);
	REQUIRE_OK(olreg_pull(client, registry_name(&src, "library/m:v1", from, sizeof(from)), NULL,
			      NULL, NULL, &m, &err), err);
	olreg_manifest_free(m);
	m = NULL;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *const dst_args[] = { cases[i].mode, NULL };
		struct registry dst;
		olreg_status st;

		registry_start(&dst, dst_args);
		registry_add_fault(&dst, cases[i].fault);
		st = olreg_push(client, registry_name(&dst, "library/m:v1", to, sizeof(to)), from,
				NULL, NULL, NULL, &err);
		if (st != OLREG_PROTOCOL || !strstr(olreg_error_message(err), " 30"))
			harness_fail(__FILE__, __LINE__, "%s: push returned %s: %s", cases[i].fault,
				     olreg_status_str(st), olreg_error_message(err));
		CHECK(registry_control(&dst, "GET", "/_testreg/manifests/library/m/v1", NULL, NULL,
				       NULL) == 404);
		olreg_error_free(err);
		err = NULL;
		registry_stop(&dst);
	}
	olreg_client_free(client);
	registry_stop(&src);
	tmpdir_remove(store);
}

int main(void)
{
	RUN(test_tokens_stay_with_their_registry);
	RUN(test_redirected_upload_steps_fail);
	return harness_finish();
}
