/*
 * A model pulled from the test registry (Ollama protocol) is pushed to
 * Docker Distribution and pulled back into a fresh store byte-identical:
 * with no auth, Basic auth and token auth, its largest blob downloaded in
 * ranges and uploaded in PATCH pieces. Without credentials, a locked
 * Distribution refuses the push (and the pull) as OLREG_UNAUTHORIZED.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define SOURCE "library/src:v1"
#define TARGET "library/rt:v1"

static struct registry src;
static char *store_a;		/* holds SOURCE, pulled from `src` */
static char source_name[256];
static char *source_manifest;	/* the bytes `src` serves for SOURCE */
static size_t source_manifest_len;

/*
 * A client on `store` that downloads blobs over 1 MiB in 1 MiB ranges and
 * uploads them in 1 MiB pieces; with `d`'s user and password for its host
 * unless `d` is NULL (and never anything from ~/.docker).
 */
static olreg_client *chunking_client(const char *store, const struct distribution *d)
{
	olreg_options *opts = store_options(store);
	olreg_error *err = NULL;

	REQUIRE_OK(olreg_options_set_retries(opts, 2, 10, 200), err);
	REQUIRE_OK(olreg_options_set_streams(opts, 4), err);
	REQUIRE_OK(olreg_options_set_chunking(opts, 1 << 20, 1 << 20), err);
	REQUIRE_OK(olreg_options_set_upload_chunk_size(opts, 1 << 20), err);
	if (d)
		REQUIRE_OK(olreg_options_add_credential(opts, d->host, d->user, d->password), err);
	return client_from(opts);
}

/* A whole file (malloc'd), or NULL if it cannot be read. */
static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *data = NULL;
	size_t alloc = 0, n;

	*len = 0;
	if (!f)
		return NULL;
	do {
		if (alloc - *len < 65536) {
			alloc = alloc ? alloc * 2 : 1 << 20;
			data = realloc(data, alloc);
			REQUIRE(data);
		}
		n = fread(data + *len, 1, alloc - *len, f);
		*len += n;
	} while (n > 0);
	fclose(f);
	return data;
}

/* The regular files in `store`/blobs (entries not starting with '.'). */
static size_t count_blobs(const char *store)
{
	char path[1024];
	struct dirent *e;
	size_t n = 0;
	DIR *dir;

	snprintf(path, sizeof(path), "%s/blobs", store);
	dir = opendir(path);
	if (!dir)
		return 0;
	while ((e = readdir(dir)) != NULL)
		n += e->d_name[0] != '.';
	closedir(dir);
	return n;
}

/*
 * Every file in `b`/blobs is in `a`/blobs with the same bytes, and there
 * are `want` of them in each: the two stores hold the same blobs.
 */
static void check_same_blobs(const char *a, const char *b, size_t want)
{
	char dir_path[1024], path_a[1024], path_b[1024];
	struct dirent *e;
	DIR *dir;

	CHECK_INT(count_blobs(a), want);
	CHECK_INT(count_blobs(b), want);
	snprintf(dir_path, sizeof(dir_path), "%s/blobs", b);
	dir = opendir(dir_path);
	REQUIRE(dir);
	while ((e = readdir(dir)) != NULL) {
		char *data_a, *data_b;
		size_t len_a, len_b;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path_a, sizeof(path_a), "%s/blobs/%s", a, e->d_name);
		snprintf(path_b, sizeof(path_b), "%s/blobs/%s", b, e->d_name);
		data_a = slurp(path_a, &len_a);
		data_b = slurp(path_b, &len_b);
		if (!data_a)
			harness_fail(__FILE__, __LINE__, "%s is in the new store only", e->d_name);
		else if (!data_b || len_a != len_b || memcmp(data_a, data_b, len_a) != 0)
			harness_fail(__FILE__, __LINE__, "%s differs (%zu bytes, expected %zu)",
				     e->d_name, len_b, len_a);
		free(data_a);
		free(data_b);
	}
	closedir(dir);
}

/*
 * The access log lines of `d` (`HOST - USER [TIME] "METHOD URI HTTP/1.1"
 * STATUS SIZE ...`) that hold both `request` and `status`.
 */
static int count_requests(const struct distribution *d, const char *request, const char *status)
{
	size_t len;
	char *log = slurp(d->log_path, &len), *line, *end;
	int n = 0;

	REQUIRE(log);
	log = realloc(log, len + 1);
	REQUIRE(log);
	log[len] = '\0';
	for (line = log; *line; line = end + 1) {
		end = strchr(line, '\n');
		if (!end)
			break;
		*end = '\0';
		n += strncmp(line, "127.0.0.1 - ", 12) == 0 && strstr(line, request) && strstr(line, status);
	}
	free(log);
	return n;
}

/* Blob outcomes of one push, from its progress events. */
struct tally {
	int done, cached, failed;
};

static int count_outcomes(void *user_data, const olreg_progress *p)
{
	struct tally *t = user_data;

	t->done += p->event == OLREG_EVENT_DONE;
	t->cached += p->event == OLREG_EVENT_CACHED;
	t->failed += p->event == OLREG_EVENT_FAILED;
	return 0;
}

/* Pushes SOURCE as `target`; checks how many blobs were uploaded and how many were there. */
static void push_source(const olreg_client *client, const char *target, int uploaded, int present)
{
	struct tally t = { 0, 0, 0 };
	olreg_error *err = NULL;

	REQUIRE_OK(olreg_push(client, target, source_name, count_outcomes, &t, NULL, &err), err);
	CHECK_INT(t.done, uploaded);
	CHECK_INT(t.cached, present);
	CHECK_INT(t.failed, 0);
}

/* The local manifest of `name` in `client`'s store is exactly `src`'s SOURCE. */
static void check_shows_source(const olreg_client *client, const char *name)
{
	olreg_error *err = NULL;
	char *bytes = NULL;
	size_t len = 0;

	REQUIRE_OK(olreg_show(client, name, &bytes, &len, &err), err);
	CHECK_INT(len, source_manifest_len);
	CHECK(len == source_manifest_len && memcmp(bytes, source_manifest, len) == 0);
	olreg_string_free(bytes);
}

static void test_pull_source(void)
{
	olreg_client *client = chunking_client(store_a, NULL);
	olreg_manifest *m = NULL;
	olreg_error *err = NULL;

	CHECK_INT(registry_control(&src, "GET", "/_testreg/manifests/library/src/v1", NULL,
				   &source_manifest, &source_manifest_len), 200);
	REQUIRE(source_manifest != NULL && source_manifest_len > 0);
	REQUIRE_OK(olreg_pull(client, source_name, NULL, NULL, NULL, &m, &err), err);
	CHECK_INT(olreg_manifest_layer_count(m), 3);
	/* Over the 1 MiB threshold and not a whole number of chunks. */
	CHECK_INT(olreg_manifest_layer_size(m, 2), 3000001);
	check_shows_source(client, source_name);
	olreg_manifest_free(m);
	olreg_client_free(client);
}

/* Pushes SOURCE from store A to a Distribution with `auth`, pulls it into a fresh store. */
static void round_trip(const char *auth)
{
	bool locked = strcmp(auth, "none") != 0;
	struct distribution dist;
	olreg_client *a, *b;
	olreg_manifest *m = NULL;
	olreg_string_list *problems = NULL, *list = NULL;
	olreg_error *err = NULL;
	char *store_b = tmpdir_new();
	char target[256], listed[256];

	distribution_start(&dist, auth);
	snprintf(target, sizeof(target), "%s/" TARGET, dist.url);
	snprintf(listed, sizeof(listed), "%s/" TARGET, dist.host);

	if (locked) {
		/* No credentials: refused, with the host named, and nothing stored. */
		olreg_client *anon = chunking_client(store_a, NULL);
		olreg_client *anon_b = chunking_client(store_b, NULL);

		CHECK_STATUS(olreg_push(anon, target, source_name, NULL, NULL, NULL, &err),
			     OLREG_UNAUTHORIZED);
		CHECK_INT(olreg_error_http_status(err), 401);
		CHECK(strstr(olreg_error_message(err), dist.host) != NULL);
		olreg_error_free(err);
		err = NULL;
		olreg_client_free(anon);
		a = chunking_client(store_a, &dist);
		push_source(a, target, 4, 0);
		CHECK_STATUS(olreg_pull(anon_b, target, NULL, NULL, NULL, NULL, &err), OLREG_UNAUTHORIZED);
		olreg_error_free(err);
		err = NULL;
		REQUIRE_OK(olreg_list(anon_b, &list, &err), err);
		CHECK_INT(olreg_string_list_len(list), 0);
		olreg_string_list_free(list);
		list = NULL;
		olreg_client_free(anon_b);
	} else {
		a = chunking_client(store_a, NULL);
		push_source(a, target, 4, 0);
	}

	b = chunking_client(store_b, locked ? &dist : NULL);
	REQUIRE_OK(olreg_pull(b, target, NULL, NULL, NULL, &m, &err), err);
	CHECK_INT(olreg_manifest_layer_count(m), 3);
	check_shows_source(b, target);
	check_same_blobs(store_a, store_b, olreg_manifest_layer_count(m) + 1);

	REQUIRE_OK(olreg_verify(b, NULL, NULL, NULL, NULL, &problems, &err), err);
	CHECK_INT(olreg_string_list_len(problems), 0);
	olreg_string_list_free(problems);
	REQUIRE_OK(olreg_list(b, &list, &err), err);
	CHECK_INT(olreg_string_list_len(list), 1);
	CHECK(list_contains(list, listed));
	olreg_string_list_free(list);

	/* Pushed again: every blob (config included) is there already. */
	push_source(a, target, 0, 4);

	/*
	 * The large blob went up in 1 MiB PATCH pieces (3000001 bytes: 3) and
	 * came down in 1 MiB ranges (a one-byte probe, then 3), all answered by
	 * Distribution itself.
	 */
	CHECK(count_requests(&dist, "\"PATCH /v2/library/rt/blobs/uploads/", "HTTP/1.1\" 202 ") >= 2);
	CHECK(count_requests(&dist, "\"GET /v2/library/rt/blobs/sha256:", "HTTP/1.1\" 206 ") >= 4);

	olreg_manifest_free(m);
	olreg_client_free(b);
	olreg_client_free(a);
	distribution_stop(&dist);
	tmpdir_remove(store_b);
}

static void test_no_auth(void)
{
	round_trip("none");
}

static void test_basic_auth(void)
{
	round_trip("basic");
}

static void test_token_auth(void)
{
	round_trip("token");
}

int main(void)
{
	static const char *const args[] = {
		"--model", SOURCE "=1K,2K,3000001",
		"--seed", "11", NULL
	};

	registry_start(&src, args);
	registry_name(&src, SOURCE, source_name, sizeof(source_name));
	store_a = tmpdir_new();

	RUN(test_pull_source);
	RUN(test_no_auth);
	RUN(test_basic_auth);
	RUN(test_token_auth);

	free(source_manifest);
	tmpdir_remove(store_a);
	registry_stop(&src);
	return harness_finish();
}
