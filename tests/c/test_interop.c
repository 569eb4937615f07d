/*
 * Interoperability through the C API against the test registry: the
 * platform option picks an image index's entry (and a malformed one is
 * refused by olreg_client_new()), an index without the platform says what
 * it offers, and a push goes on when every existence check (HEAD) fails.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
#define OCI_INDEX "application/vnd.oci.image.index.v1+json"

static struct registry reg;

/* One child of the index: its manifest bytes and digest. */
struct child {
	const char *tag;	/* "amd64" or "arm64": the architecture, too */
	char *manifest;
	size_t len;
	char digest[80];
};

static struct child children[] = { { "amd64", NULL, 0, "" }, { "arm64", NULL, 0, "" } };

static const char *name(const char *repo_tag)
{
	static char buf[4][256];
	static int next;

	next = (next + 1) % 4;
	return registry_name(&reg, repo_tag, buf[next], sizeof(buf[next]));
}

/* Serves `ns/m:v1` as an OCI index of the two children. */
static void serve_index(void)
{
	char index[2048], *body = NULL, *store = tmpdir_new();
	olreg_client *client = test_client(store, 3);
	olreg_error *err = NULL;
	size_t i;
	int n;

	n = snprintf(index, sizeof(index), "{\"schemaVersion\":2,\"mediaType\":\"%s\",\"manifests\":[",
		     OCI_INDEX);
	for (i = 0; i < 2; i++) {
		struct child *c = &children[i];
		char path[128], repo_tag[32];
		olreg_manifest *m = NULL;

		snprintf(path, sizeof(path), "/_testreg/manifests/ns/m/%s", c->tag);
		REQUIRE(registry_control(&reg, "GET", path, NULL, &c->manifest, &c->len) == 200);
		snprintf(repo_tag, sizeof(repo_tag), "ns/m:%s", c->tag);
		REQUIRE_OK(olreg_resolve(client, name(repo_tag), NULL, &m, &err), err);
		snprintf(c->digest, sizeof(c->digest), "%s", olreg_manifest_digest(m));
		olreg_manifest_free(m);
		n += snprintf(index + n, sizeof(index) - (size_t)n,
			      "%s{\"mediaType\":\"%s\",\"digest\":\"%s\",\"size\":%zu,"
			      "\"platform\":{\"os\":\"linux\",\"architecture\":\"%s\"}}",
			      i ? "," : "", DOCKER_MANIFEST, c->digest, c->len, c->tag);
	}
	snprintf(index + n, sizeof(index) - (size_t)n, "]}");
	REQUIRE(registry_control(&reg, "PUT", "/_testreg/manifests/ns/m/v1", index, &body, NULL) == 200);
	free(body);
	olreg_client_free(client);
	tmpdir_remove(store);
}

/* A client on `store` pulling for `platform`, or olreg_client_new()'s status. */
static olreg_status platform_client(const char *store, const char *platform, olreg_client **out,
				    olreg_error **err)
{
	olreg_options *opts = NULL;
	olreg_status st;

	REQUIRE_OK(olreg_options_new(&opts), *err);
	REQUIRE_OK(olreg_options_set_models_dir(opts, store), *err);
	REQUIRE_OK(olreg_options_set_key_file(opts, NULL), *err);
	REQUIRE_OK(olreg_options_set_docker_config(opts, NULL), *err);
	/* Setters only store: the value is checked by olreg_client_new(). */
	CHECK_STATUS(olreg_options_set_platform(opts, platform), OLREG_OK);
	st = olreg_client_new(opts, out, err);
	olreg_options_free(opts);
	return st;
}

static void test_the_platform_option_picks_the_entry(void)
{
	size_t i;

	for (i = 0; i < 2; i++) {
		char *store = tmpdir_new(), *shown = NULL, platform[32];
		olreg_client *client = NULL;
		olreg_manifest *m = NULL;
		olreg_error *err = NULL;
		size_t shown_len = 0;

		snprintf(platform, sizeof(platform), "linux/%s", children[i].tag);
		REQUIRE_OK(platform_client(store, platform, &client, &err), err);
		REQUIRE_OK(olreg_pull(client, name("ns/m:v1"), NULL, NULL, NULL, &m, &err), err);
		CHECK_STR(olreg_manifest_digest(m), children[i].digest);
		REQUIRE_OK(olreg_show(client, name("ns/m:v1"), &shown, &shown_len, &err), err);
		CHECK_INT(shown_len, children[i].len);
		CHECK(shown && memcmp(shown, children[i].manifest, shown_len) == 0);
		olreg_string_free(shown);
		olreg_manifest_free(m);
		olreg_client_free(client);
		tmpdir_remove(store);
	}
}

static void test_an_index_without_the_platform_lists_its_platforms(void)
{
	char *store = tmpdir_new();
	olreg_client *client = NULL;
	olreg_manifest *m = NULL;
	olreg_error *err = NULL;
	const char *msg;

	REQUIRE_OK(platform_client(store, "windows/amd64", &client, &err), err);
	CHECK_STATUS(olreg_pull(client, name("ns/m:v1"), NULL, NULL, NULL, &m, &err), OLREG_NOT_FOUND);
	CHECK(m == NULL);
	msg = olreg_error_message(err);
	CHECK(strstr(msg, "image index") != NULL);
	CHECK(strstr(msg, "windows/amd64") != NULL);
	CHECK(strstr(msg, "linux/amd64, linux/arm64") != NULL);
	olreg_error_free(err);
	olreg_client_free(client);
	tmpdir_remove(store);
}

static void test_a_malformed_platform_is_refused_by_client_new(void)
{
	static const char *const bad[] = { "linux", "linux/amd64/v8/x", "linux/am d64", "" };
	olreg_error *err = NULL;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *store = tmpdir_new();
		olreg_client *client = NULL;

		err = NULL;
		CHECK_STATUS(platform_client(store, bad[i], &client, &err), OLREG_INVALID_ARGUMENT);
		CHECK(client == NULL);
		CHECK(err && strstr(olreg_error_message(err), "os/arch") != NULL);
		olreg_error_free(err);
		tmpdir_remove(store);
	}
}

static void test_a_push_goes_on_when_every_head_fails(void)
{
	static const char *const args[] = { NULL };
	struct registry dst;
	char *store = tmpdir_new(), target[256], *body = NULL;
	olreg_client *client = test_client(store, 3);
	olreg_error *err = NULL;
	const char *at;
	size_t heads = 0;

	registry_start(&dst, args);
	registry_add_fault(&dst, "{\"target\":{\"blob_head\":{}},"
				 "\"kind\":{\"status\":{\"code\":503}},\"times\":0}");
	REQUIRE_OK(olreg_pull(client, name("ns/m:amd64"), NULL, NULL, NULL, NULL, &err), err);
	registry_name(&dst, "ns/copy:v1", target, sizeof(target));
	REQUIRE_OK(olreg_push(client, target, name("ns/m:amd64"), NULL, NULL, NULL, &err), err);
	/* Each blob was asked about once, and no HEAD was retried. */
	REQUIRE(registry_control(&dst, "GET", "/_testreg/requests", NULL, &body, NULL) == 200);
	for (at = body; (at = strstr(at, "\"method\":\"HEAD\"")) != NULL; at++)
		heads++;
	CHECK_INT(heads, 2);	/* one layer and the config */
	free(body);
	registry_stop(&dst);
	olreg_client_free(client);
	tmpdir_remove(store);
}

int main(void)
{
	static const char *const args[] = {
		"--model", "ns/m:amd64=1K", "--model", "ns/m:arm64=2K", "--seed", "9", NULL
	};
	size_t i;

	registry_start(&reg, args);
	serve_index();
	RUN(test_the_platform_option_picks_the_entry);
	RUN(test_an_index_without_the_platform_lists_its_platforms);
	RUN(test_a_malformed_platform_is_refused_by_client_new);
	RUN(test_a_push_goes_on_when_every_head_fails);
	registry_stop(&reg);
	for (i = 0; i < 2; i++)
		free(children[i].manifest);
	return harness_finish();
}
