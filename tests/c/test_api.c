/*
 * The C API against a live test registry: pull with progress events, the
 * local store (list, show, rm, prune, verify), push, errors with their
 * HTTP status and registry code, log lines and re-entrancy.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

static struct registry reg;
static char *store;

/* Every event of one call, copied (the struct is only borrowed by the callback). */
struct event {
	olreg_event kind;
	uint32_t index;
	char digest[80];
	uint64_t layer_completed, layer_total, completed, total;
	uint32_t layers_done, layers_total;
};

struct recorder {
	struct event *events;
	size_t count, alloc;
	pthread_t caller;
	bool wrong_thread, short_struct;
};

static int record(void *user_data, const olreg_progress *p)
{
	struct recorder *rec = user_data;
	struct event *e;

	if (!pthread_equal(pthread_self(), rec->caller))
		rec->wrong_thread = true;
	if (p->struct_size < sizeof(olreg_progress))
		rec->short_struct = true;
	if (rec->count == rec->alloc) {
		rec->alloc = rec->alloc ? rec->alloc * 2 : 64;
		rec->events = realloc(rec->events, rec->alloc * sizeof(*rec->events));
		REQUIRE(rec->events);
	}
	e = &rec->events[rec->count++];
	memset(e, 0, sizeof(*e));
	e->kind = p->event;
	e->index = p->index;
	if (p->digest)
		snprintf(e->digest, sizeof(e->digest), "%s", p->digest);
	e->layer_completed = p->layer_completed;
	e->layer_total = p->layer_total;
	e->completed = p->completed;
	e->total = p->total;
	e->layers_done = p->layers_done;
	e->layers_total = p->layers_total;
	return 0;
}

static void recorder_init(struct recorder *rec)
{
	memset(rec, 0, sizeof(*rec));
	rec->caller = pthread_self();
}

static size_t count_kind(const struct recorder *rec, olreg_event kind)
{
	size_t i, n = 0;

	for (i = 0; i < rec->count; i++)
		n += rec->events[i].kind == kind;
	return n;
}

static const char *name(const char *repo_tag)
{
	static char buf[8][256];
	static int next;

	next = (next + 1) % 8;
	return registry_name(&reg, repo_tag, buf[next], sizeof(buf[next]));
}

/* "127.0.0.1:PORT/library/tiny:latest": how list spells a name. */
static const char *listed(const char *repo_tag)
{
	static char buf[256];

	snprintf(buf, sizeof(buf), "%s/%s", reg.host, repo_tag);
	return buf;
}

/*
 * The events of a first pull: RESOLVED first with the totals, one DONE per
 * blob with all its bytes, nothing about a blob after its DONE, FINISHED
 * last with everything completed.
 */
static void check_pull_events(const struct recorder *rec, const olreg_manifest *m)
{
	uint32_t blobs = (uint32_t)olreg_manifest_layer_count(m) + 1;	/* + config */
	size_t i, j;

	REQUIRE(rec->count >= 3);
	CHECK(!rec->wrong_thread);
	CHECK(!rec->short_struct);
	CHECK_INT(rec->events[0].kind, OLREG_EVENT_RESOLVED);
	CHECK_INT(rec->events[0].total, olreg_manifest_total_size(m));
	CHECK_INT(rec->events[0].layers_total, blobs);
	CHECK_INT(rec->events[0].completed, 0);
	CHECK_INT(rec->events[rec->count - 1].kind, OLREG_EVENT_FINISHED);
	CHECK_INT(rec->events[rec->count - 1].completed, olreg_manifest_total_size(m));
	CHECK_INT(rec->events[rec->count - 1].layers_done, blobs);
	CHECK_INT(count_kind(rec, OLREG_EVENT_RESOLVED), 1);
	CHECK_INT(count_kind(rec, OLREG_EVENT_FINISHED), 1);
	CHECK_INT(count_kind(rec, OLREG_EVENT_DONE), blobs);
	CHECK_INT(count_kind(rec, OLREG_EVENT_FAILED), 0);

	for (i = 0; i < rec->count; i++) {
		const struct event *e = &rec->events[i];

		if (i > 0)
			CHECK(e->completed >= rec->events[i - 1].completed);
		CHECK_INT(e->total, olreg_manifest_total_size(m));
		if (e->kind != OLREG_EVENT_DONE)
			continue;
		CHECK_INT(e->layer_completed, e->layer_total);
		CHECK(strncmp(e->digest, "sha256:", 7) == 0);
		for (j = i + 1; j < rec->count; j++)
			if (strcmp(rec->events[j].digest, e->digest) == 0)
				harness_fail(__FILE__, __LINE__, "event %d about %s after its DONE",
					     (int)rec->events[j].kind, e->digest);
	}
}

static void test_pull_progress(void)
{
	olreg_client *client = test_client(store, 2);
	olreg_manifest *m = NULL;
	olreg_error *err = NULL;
	struct recorder rec;
	size_t len = 0;

	recorder_init(&rec);
	REQUIRE_OK(olreg_pull(client, name("library/tiny:latest"), record, &rec, NULL, &m, &err), err);
	REQUIRE(m != NULL);
	CHECK_INT(olreg_manifest_layer_count(m), 3);
	CHECK_INT(olreg_manifest_layer_size(m, 0), 1024);
	CHECK_INT(olreg_manifest_layer_size(m, 2), 3 << 20);
	CHECK(strncmp(olreg_manifest_digest(m), "sha256:", 7) == 0);
	CHECK(olreg_manifest_bytes(m, &len) != NULL && len > 0);
	CHECK(olreg_manifest_layer_digest(m, 3) == NULL);
	CHECK(olreg_manifest_layer_media_type(m, 0) != NULL);
	check_pull_events(&rec, m);

	/* Again: every blob is already there. */
	free(rec.events);
	recorder_init(&rec);
	REQUIRE_OK(olreg_pull(client, name("library/tiny:latest"), record, &rec, NULL, NULL, &err), err);
	CHECK_INT(rec.events[0].kind, OLREG_EVENT_RESOLVED);
	CHECK_INT(count_kind(&rec, OLREG_EVENT_CACHED), olreg_manifest_layer_count(m) + 1);
	CHECK_INT(count_kind(&rec, OLREG_EVENT_DONE), 0);
	CHECK_INT(rec.events[rec.count - 1].kind, OLREG_EVENT_FINISHED);

	free(rec.events);
	olreg_manifest_free(m);
	olreg_client_free(client);
}

/* show returns the manifest byte for byte: as pulled, and as the registry serves it. */
static void test_show_is_exact(void)
{
	olreg_client *client = test_client(store, 2);
	olreg_manifest *m = NULL;
	olreg_error *err = NULL;
	char *bytes = NULL, *served = NULL;
	size_t len = 0, pulled_len = 0, served_len = 0;
	const char *pulled;

	REQUIRE_OK(olreg_resolve(client, name("library/tiny:latest"), NULL, &m, &err), err);
	pulled = olreg_manifest_bytes(m, &pulled_len);
	REQUIRE_OK(olreg_show(client, name("library/tiny:latest"), &bytes, &len, &err), err);
	CHECK_INT(len, pulled_len);
	CHECK(memcmp(bytes, pulled, len) == 0);
	CHECK(bytes[len] == '\0');
	CHECK_INT(registry_control(&reg, "GET", "/_testreg/manifests/library/tiny/latest", NULL,
				   &served, &served_len), 200);
	CHECK_INT(served_len, len);
	CHECK(served && memcmp(served, bytes, len) == 0);
	free(served);
	olreg_string_free(bytes);
	olreg_manifest_free(m);
	olreg_client_free(client);
}

/* Flips one byte of a stored blob. */
static void corrupt_blob(const char *digest)
{
	char path[1024];
	FILE *f;
	int c;

	snprintf(path, sizeof(path), "%s/blobs/sha256-%s", store, digest + 7);
	f = fopen(path, "r+b");
	REQUIRE(f);
	c = fgetc(f);
	REQUIRE(c != EOF);
	fseek(f, 0, SEEK_SET);
	fputc(c ^ 0xff, f);
	fclose(f);
}

static void test_list_verify_rm_prune(void)
{
	olreg_client *client = test_client(store, 2);
	olreg_string_list *list = NULL, *problems = NULL;
	olreg_manifest *m = NULL;
	olreg_error *err = NULL;
	uint64_t removed = 0, freed = 0;
	char *bytes = NULL;
	size_t len = 0, i;
	char digest[80];

	REQUIRE_OK(olreg_pull(client, name("library/other:v1"), NULL, NULL, NULL, &m, &err), err);
	REQUIRE_OK(olreg_list(client, &list, &err), err);
	CHECK(list_contains(list, listed("library/tiny:latest")));
	CHECK(list_contains(list, listed("library/other:v1")));
	for (i = 1; i < olreg_string_list_len(list); i++)
		CHECK(strcmp(olreg_string_list_get(list, i - 1), olreg_string_list_get(list, i)) < 0);
	CHECK(olreg_string_list_get(list, olreg_string_list_len(list)) == NULL);
	olreg_string_list_free(list);

	REQUIRE_OK(olreg_verify(client, NULL, NULL, NULL, NULL, &problems, &err), err);
	CHECK_INT(olreg_string_list_len(problems), 0);
	olreg_string_list_free(problems);

	/* A corrupt blob is a problem to report, not a failed call. */
	snprintf(digest, sizeof(digest), "%s", olreg_manifest_layer_digest(m, 0));
	corrupt_blob(digest);
	REQUIRE_OK(olreg_verify(client, name("library/other:v1"), NULL, NULL, NULL, &problems, &err), err);
	CHECK_INT(olreg_string_list_len(problems), 1);
	if (olreg_string_list_len(problems) == 1) {
		CHECK(strstr(olreg_string_list_get(problems, 0), digest) != NULL);
		CHECK(strstr(olreg_string_list_get(problems, 0), "corrupt") != NULL);
	}
	olreg_string_list_free(problems);
	REQUIRE_OK(olreg_verify(client, name("library/tiny:latest"), NULL, NULL, NULL, &problems, &err), err);
	CHECK_INT(olreg_string_list_len(problems), 0);
	olreg_string_list_free(problems);

	/* rm drops the name, keeps the blobs; prune frees them. */
	REQUIRE_OK(olreg_remove(client, name("library/other:v1"), &err), err);
	CHECK_STATUS(olreg_show(client, name("library/other:v1"), &bytes, &len, &err), OLREG_NOT_FOUND);
	CHECK(bytes == NULL);
	olreg_error_free(err);
	err = NULL;
	CHECK_STATUS(olreg_remove(client, name("library/other:v1"), &err), OLREG_NOT_FOUND);
	olreg_error_free(err);
	err = NULL;
	REQUIRE_OK(olreg_list(client, &list, &err), err);
	CHECK(!list_contains(list, listed("library/other:v1")));
	CHECK(list_contains(list, listed("library/tiny:latest")));
	olreg_string_list_free(list);

	REQUIRE_OK(olreg_prune(client, &removed, &freed, &err), err);
	CHECK_INT(removed, olreg_manifest_layer_count(m) + 1);
	CHECK_INT(freed, olreg_manifest_total_size(m));
	REQUIRE_OK(olreg_prune(client, &removed, &freed, &err), err);
	CHECK_INT(removed, 0);
	CHECK_INT(freed, 0);
	REQUIRE_OK(olreg_prune(client, NULL, NULL, &err), err);

	/* The corrupt blob went with the prune: the store is whole again. */
	REQUIRE_OK(olreg_verify(client, NULL, NULL, NULL, NULL, &problems, &err), err);
	CHECK_INT(olreg_string_list_len(problems), 0);
	olreg_string_list_free(problems);
	olreg_manifest_free(m);
	olreg_client_free(client);
}

static void test_push(void)
{
	olreg_client *client = test_client(store, 2);
	olreg_error *err = NULL;
	char *other = tmpdir_new();
	olreg_client *fresh = test_client(other, 2);
	struct recorder rec;

	recorder_init(&rec);
	REQUIRE_OK(olreg_push(client, name("library/copy:v2"), name("library/tiny:latest"),
			      record, &rec, NULL, &err), err);
	CHECK(!rec.wrong_thread);
	CHECK_INT(rec.events[0].kind, OLREG_EVENT_RESOLVED);
	CHECK_INT(rec.events[rec.count - 1].kind, OLREG_EVENT_FINISHED);
	free(rec.events);
	/* What was pushed pulls into an empty store. */
	REQUIRE_OK(olreg_pull(fresh, name("library/copy:v2"), NULL, NULL, NULL, NULL, &err), err);
	/* A model the store does not have cannot be pushed. */
	CHECK_STATUS(olreg_push(client, name("library/absent:v1"), NULL, NULL, NULL, NULL, &err),
		     OLREG_NOT_FOUND);
	olreg_error_free(err);
	olreg_client_free(fresh);
	olreg_client_free(client);
	tmpdir_remove(other);
}

static void test_not_found(void)
{
	olreg_client *client = test_client(store, 2);
	olreg_manifest *m = (olreg_manifest *)&reg;	/* must stay untouched */
	olreg_error *err = NULL;

	CHECK_STATUS(olreg_pull(client, name("library/nope:latest"), NULL, NULL, NULL, &m, &err),
		     OLREG_NOT_FOUND);
	CHECK(m == (olreg_manifest *)&reg);
	REQUIRE(err != NULL);
	CHECK_STATUS(olreg_error_status(err), OLREG_NOT_FOUND);
	CHECK_INT(olreg_error_http_status(err), 404);
	CHECK_STR(olreg_error_registry_code(err), "MANIFEST_UNKNOWN");
	CHECK(strstr(olreg_error_message(err), "nope") != NULL);
	olreg_error_free(err);
	olreg_client_free(client);
}

static void test_invalid_names(void)
{
	static const char *const bad[] = {
		"bad name!!", "", "../../etc/passwd", "a/b/c/d/e", "model:tag:extra",
		"http://127.0.0.1:1/library/..:latest", "library/m\x01:t",
	};
	olreg_client *client = test_client(store, 1);
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		olreg_error *err = NULL;
		char *bytes = NULL;
		size_t len;

		CHECK_STATUS(olreg_pull(client, bad[i], NULL, NULL, NULL, NULL, &err), OLREG_INVALID_NAME);
		CHECK_INT(olreg_error_http_status(err), 0);
		CHECK(olreg_error_registry_code(err) == NULL);
		olreg_error_free(err);
		err = NULL;
		CHECK_STATUS(olreg_show(client, bad[i], &bytes, &len, &err), OLREG_INVALID_NAME);
		olreg_error_free(err);
	}
	olreg_client_free(client);
}

static void test_server_error(void)
{
	olreg_client *client = test_client(store, 2);
	olreg_error *err = NULL;

	registry_add_fault(&reg, "{\"target\":\"manifest\",\"kind\":{\"status\":{\"code\":500,"
			   "\"body\":{\"ollama\":{\"code\":\"INTERNAL\",\"message\":\"boom\"}},"
			   "\"retry_after\":null}},\"times\":0}");
	CHECK_STATUS(olreg_pull(client, name("library/tiny:latest"), NULL, NULL, NULL, NULL, &err),
		     OLREG_HTTP);
	CHECK_INT(olreg_error_http_status(err), 500);
	CHECK_STR(olreg_error_registry_code(err), "INTERNAL");
	CHECK(strstr(olreg_error_message(err), "boom") != NULL);
	olreg_error_free(err);
	registry_clear_faults(&reg);
	olreg_client_free(client);
}

static void test_unauthorized(void)
{
	static const char *const args[] = { "--auth", "basic:alice:secret",
					    "--model", "private/m:v1=2K", NULL };
	struct registry locked;
	olreg_options *opts = NULL;
	olreg_client *client;
	olreg_error *err = NULL;
	char model[256];

	registry_start(&locked, args);
	registry_name(&locked, "private/m:v1", model, sizeof(model));
	client = test_client(store, 1);
	CHECK_STATUS(olreg_pull(client, model, NULL, NULL, NULL, NULL, &err), OLREG_UNAUTHORIZED);
	CHECK_INT(olreg_error_http_status(err), 401);
	olreg_error_free(err);
	err = NULL;
	olreg_client_free(client);

	REQUIRE_OK(olreg_options_new(&opts), err);
	REQUIRE_OK(olreg_options_set_models_dir(opts, store), err);
	REQUIRE_OK(olreg_options_set_key_file(opts, NULL), err);
	REQUIRE_OK(olreg_options_set_docker_config(opts, NULL), err);
	REQUIRE_OK(olreg_options_add_credential(opts, locked.host, "alice", "secret"), err);
	REQUIRE_OK(olreg_client_new(opts, &client, &err), err);
	olreg_options_free(opts);
	REQUIRE_OK(olreg_pull(client, model, NULL, NULL, NULL, NULL, &err), err);
	olreg_client_free(client);
	registry_stop(&locked);
}

static void test_status_strings(void)
{
	olreg_status s;

	/* Every status has a text and its C name; the numbers are dense. */
	for (s = OLREG_OK; s <= OLREG_INTERNAL; s++) {
		CHECK(olreg_status_str(s) != NULL);
		CHECK(strcmp(olreg_status_str(s), "unknown status") != 0);
		CHECK(olreg_status_name(s) != NULL);
	}
	CHECK_STR(olreg_status_name(OLREG_OK), "OLREG_OK");
	CHECK_STR(olreg_status_name(OLREG_NOT_FOUND), "OLREG_NOT_FOUND");
	CHECK_STR(olreg_status_name(OLREG_CANCELLED), "OLREG_CANCELLED");
	CHECK_STR(olreg_status_name(OLREG_INTERNAL), "OLREG_INTERNAL");
	CHECK_STR(olreg_status_str(OLREG_NOT_FOUND), "not found");
	CHECK(olreg_status_name(OLREG_INTERNAL + 1) == NULL);
	CHECK(olreg_status_name(-1) == NULL);
	CHECK_STR(olreg_status_str(9999), "unknown status");
	CHECK_STR(olreg_status_str(-1), "unknown status");
	CHECK_STR(olreg_version(), OLREG_VERSION);
}

/* Log lines arrive on the thread that made the call. */
struct log_sink {
	pthread_t caller;
	int lines, debug_lines, bad_level, wrong_thread;
	const olreg_client *client;
	olreg_status reentrant;
};

static void on_log(void *user_data, olreg_log_level level, const char *message)
{
	struct log_sink *sink = user_data;

	sink->lines++;
	sink->debug_lines += level == OLREG_LOG_DEBUG;
	if (level < OLREG_LOG_ERROR || level > OLREG_LOG_DEBUG || !message || !*message)
		sink->bad_level++;
	if (!pthread_equal(pthread_self(), sink->caller))
		sink->wrong_thread++;
	/* Calling back into olreg from a log line must be refused, not deadlock. */
	if (sink->client && sink->reentrant == OLREG_OK) {
		olreg_string_list *list = NULL;
		olreg_error *err = NULL;

		sink->reentrant = olreg_list(sink->client, &list, &err);
		if (sink->reentrant == OLREG_OK)
			sink->reentrant = -1;	/* recorded as a wrong answer below */
		olreg_string_list_free(list);
		olreg_error_free(err);
	}
}

static olreg_client *logging_client(struct log_sink *sink, olreg_log_level level)
{
	olreg_options *opts = store_options(store);
	olreg_error *err = NULL;

	memset(sink, 0, sizeof(*sink));
	sink->caller = pthread_self();
	REQUIRE_OK(olreg_options_set_log_callback(opts, on_log, sink, level), err);
	return client_from(opts);
}

static void test_log_callback(void)
{
	struct log_sink sink;
	olreg_error *err = NULL;
	olreg_client *client = logging_client(&sink, OLREG_LOG_DEBUG);
	int after_new = sink.lines;

	/* The client announces its store at INFO while it is made. */
	CHECK(after_new > 0);
	REQUIRE_OK(olreg_pull(client, name("library/tiny:latest"), NULL, NULL, NULL, NULL, &err), err);
	CHECK(sink.lines > after_new);
	CHECK(sink.debug_lines > 0);
	CHECK_INT(sink.bad_level, 0);
	CHECK_INT(sink.wrong_thread, 0);

	sink.client = client;
	REQUIRE_OK(olreg_pull(client, name("library/tiny:latest"), NULL, NULL, NULL, NULL, &err), err);
	CHECK_STATUS(sink.reentrant, OLREG_REENTRANT);
	olreg_client_free(client);

	/* Below the level, nothing. */
	client = logging_client(&sink, OLREG_LOG_ERROR);
	REQUIRE_OK(olreg_pull(client, name("library/tiny:latest"), NULL, NULL, NULL, NULL, &err), err);
	CHECK_INT(sink.lines, 0);
	olreg_client_free(client);
}

struct reentry {
	const olreg_client *client;
	olreg_status list, pull, verify;
	int calls;
};

static int call_back_in(void *user_data, const olreg_progress *p)
{
	struct reentry *r = user_data;
	olreg_string_list *list = NULL;
	olreg_error *err = NULL;

	(void)p;
	if (r->calls++ > 0)
		return 0;
	r->list = olreg_list(r->client, &list, &err);
	CHECK(list == NULL);
	olreg_error_free(err);
	err = NULL;
	r->pull = olreg_pull(r->client, name("library/tiny:latest"), NULL, NULL, NULL, NULL, &err);
	olreg_error_free(err);
	err = NULL;
	r->verify = olreg_verify(r->client, NULL, NULL, NULL, NULL, &list, &err);
	olreg_string_list_free(list);
	olreg_error_free(err);
	return 0;
}

static void test_reentrancy(void)
{
	olreg_client *client = test_client(store, 2);
	struct reentry r = { client, OLREG_OK, OLREG_OK, OLREG_OK, 0 };
	olreg_error *err = NULL;

	/* The refused calls do not spoil the one that is running. */
	REQUIRE_OK(olreg_pull(client, name("library/tiny:latest"), call_back_in, &r, NULL, NULL, &err), err);
	CHECK(r.calls > 0);
	CHECK_STATUS(r.list, OLREG_REENTRANT);
	CHECK_STATUS(r.pull, OLREG_REENTRANT);
	CHECK_STATUS(r.verify, OLREG_REENTRANT);
	olreg_client_free(client);
}

int main(void)
{
	static const char *const args[] = {
		"--model", "library/tiny:latest=1K,2K,3M",
		"--model", "library/other:v1=5K,1M",
		"--seed", "7", NULL
	};

	registry_start(&reg, args);
	store = tmpdir_new();

	RUN(test_pull_progress);
	RUN(test_show_is_exact);
	RUN(test_list_verify_rm_prune);
	RUN(test_push);
	RUN(test_not_found);
	RUN(test_invalid_names);
	RUN(test_server_error);
	RUN(test_unauthorized);
	RUN(test_status_strings);
	RUN(test_log_callback);
	RUN(test_reentrancy);

	tmpdir_remove(store);
	registry_stop(&reg);
	return harness_finish();
}
