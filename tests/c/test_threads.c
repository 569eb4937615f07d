/*
 * One client shared by eight threads pulling at once: four different
 * models, and the same model from four threads (which must wait for each
 * other's blobs, not fail or write them twice). Each thread's progress
 * callback runs on that thread. Then the store must verify clean, and the
 * client may be freed from a thread other than the one that made it.
 *
 * A client may be freed (or closed) while calls run on other threads: they
 * return OLREG_CANCELLED, and olreg_client_free() returns only after them,
 * so no callback runs once it has returned (ASan sees the callbacks'
 * user_data freed right after). From inside a callback, close and free
 * cancel without waiting. Freeing a client stops its threads before it
 * returns.
 */
#include <dirent.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "harness.h"

#define THREADS 8
#define MODELS 4

static struct registry reg;
static char models[MODELS][256];

/* A thread pulling one model. */
struct worker {
	const olreg_client *client;
	const char *model;
	pthread_barrier_t *start;	/* when not NULL, waited on before the pull */
	atomic_int *transferring;	/* when not NULL, counts the worker once its bytes flow */
	pthread_t self;
	olreg_status status;
	char message[512];
	int events, finished, wrong_thread, counted;
};

static int count_event(void *user_data, const olreg_progress *p)
{
	struct worker *w = user_data;

	w->events++;
	w->finished += p->event == OLREG_EVENT_FINISHED;
	if (!pthread_equal(pthread_self(), w->self))
		w->wrong_thread++;
	if (p->event == OLREG_EVENT_BYTES && w->transferring && !w->counted) {
		w->counted = 1;
		atomic_fetch_add(w->transferring, 1);
	}
	return 0;
}

static void *pull_one(void *arg)
{
	struct worker *w = arg;
	olreg_error *err = NULL;

	w->self = pthread_self();
	/* All threads call olreg_pull at the same moment. */
	if (w->start)
		pthread_barrier_wait(w->start);
	w->status = olreg_pull(w->client, w->model, count_event, w, NULL, NULL, &err);
	snprintf(w->message, sizeof(w->message), "%s", olreg_error_message(err));
	olreg_error_free(err);
	return NULL;
}

static void pull_all_at_once(const olreg_client *client)
{
	struct worker workers[THREADS];
	pthread_t threads[THREADS];
	pthread_barrier_t start;
	int i;

	REQUIRE(pthread_barrier_init(&start, NULL, THREADS) == 0);
	for (i = 0; i < THREADS; i++) {
		memset(&workers[i], 0, sizeof(workers[i]));
		workers[i].client = client;
		/* Threads 0-3 pull models 0-3; threads 4-7 all pull model 0 too. */
		workers[i].model = models[i < MODELS ? i : 0];
		workers[i].start = &start;
		REQUIRE(pthread_create(&threads[i], NULL, pull_one, &workers[i]) == 0);
	}
	for (i = 0; i < THREADS; i++) {
		pthread_join(threads[i], NULL);
		if (workers[i].status != OLREG_OK)
			harness_fail(__FILE__, __LINE__, "thread %d pulling %s: %s: %s", i,
				     workers[i].model, olreg_status_str(workers[i].status),
				     workers[i].message);
		CHECK_INT(workers[i].finished, 1);
		CHECK_INT(workers[i].wrong_thread, 0);
		CHECK(workers[i].events > 0);
	}
	pthread_barrier_destroy(&start);
}

static void check_store(const olreg_client *client)
{
	olreg_string_list *list = NULL, *problems = NULL;
	olreg_error *err = NULL;

	REQUIRE_OK(olreg_list(client, &list, &err), err);
	CHECK_INT(olreg_string_list_len(list), MODELS);
	olreg_string_list_free(list);
	REQUIRE_OK(olreg_verify(client, NULL, NULL, NULL, NULL, &problems, &err), err);
	CHECK_INT(olreg_string_list_len(problems), 0);
	olreg_string_list_free(problems);
}

static void *free_client(void *client)
{
	olreg_client_free(client);
	return NULL;
}

static void test_shared_client(void)
{
	char *store = tmpdir_new();
	olreg_client *client = test_client(store, 3);
	pthread_t thread;

	pull_all_at_once(client);
	check_store(client);
	/* Once more: now every blob is cached. */
	pull_all_at_once(client);
	check_store(client);

	REQUIRE(pthread_create(&thread, NULL, free_client, client) == 0);
	pthread_join(thread, NULL);
	tmpdir_remove(store);
}

/* The threads of this process, counted in /proc/self/task (Linux). */
static int thread_count(void)
{
	DIR *dir = opendir("/proc/self/task");
	struct dirent *entry;
	int n = 0;

	REQUIRE(dir != NULL);
	while ((entry = readdir(dir)) != NULL)
		if (entry->d_name[0] != '.')
			n++;
	closedir(dir);
	return n;
}

/* olreg_client_free() returns once the client's worker threads have
 * stopped, so none still runs library code when the host exits or unloads
 * the library (under Wine, a process that exited while they closed their
 * sockets was killed). Run before any other test makes a client. */
static void test_free_stops_the_clients_threads(void)
{
	char *store = tmpdir_new();
	int before = thread_count();
	olreg_client *client = test_client(store, 3);
	olreg_error *err = NULL;

	CHECK_STATUS(olreg_pull(client, models[2], NULL, NULL, NULL, NULL, &err), OLREG_OK);
	olreg_error_free(err);
	CHECK(thread_count() > before);
	olreg_client_free(client);
	CHECK_INT(thread_count(), before);
	tmpdir_remove(store);
}

/* Two clients on one store behave like two processes: both succeed. */
static void test_two_clients_one_store(void)
{
	char *store = tmpdir_new();
	olreg_client *a = test_client(store, 3), *b = test_client(store, 3);
	struct worker workers[2];
	pthread_t threads[2];
	pthread_barrier_t start;
	int i;

	REQUIRE(pthread_barrier_init(&start, NULL, 2) == 0);
	for (i = 0; i < 2; i++) {
		memset(&workers[i], 0, sizeof(workers[i]));
		workers[i].client = i == 0 ? a : b;
		workers[i].model = models[1];
		workers[i].start = &start;
		REQUIRE(pthread_create(&threads[i], NULL, pull_one, &workers[i]) == 0);
	}
	for (i = 0; i < 2; i++) {
		pthread_join(threads[i], NULL);
		if (workers[i].status != OLREG_OK)
			harness_fail(__FILE__, __LINE__, "client %d: %s", i, workers[i].message);
	}
	pthread_barrier_destroy(&start);
	olreg_client_free(a);
	olreg_client_free(b);
	tmpdir_remove(store);
}

/* How long freeing or closing a client with calls in progress may take. */
#define PROMPT 1.0

/* Every blob response sends 64 KiB, then nothing for 20 s. */
static void stall_downloads(void)
{
	registry_add_fault(&reg, "{\"target\":{\"blob_store\":{\"digest\":null}},"
			   "\"kind\":{\"stall\":{\"after_bytes\":65536,\"millis\":20000}},\"times\":0}");
}

/* What the log callback writes to: freed right after the client. */
struct log_sink {
	atomic_int lines;
};

static void count_line(void *user_data, olreg_log_level level, const char *message)
{
	struct log_sink *sink = user_data;

	(void)level;
	(void)message;
	atomic_fetch_add(&sink->lines, 1);
}

/* A client on `store` logging everything into `sink`. */
static olreg_client *logging_client(const char *store, struct log_sink *sink)
{
	olreg_options *opts = store_options(store);
	olreg_error *err = NULL;

	REQUIRE_OK(olreg_options_set_log_callback(opts, count_line, sink, OLREG_LOG_DEBUG), err);
	return client_from(opts);
}

/*
 * Starts a stalled pull of each model on its own thread and returns once
 * every one is transferring: all are inside olreg_pull.
 */
static void start_pulls(const olreg_client *client, struct worker *pulls,
			pthread_t *threads, atomic_int *started)
{
	struct timespec pause = { 0, 5 * 1000 * 1000 };
	double deadline = now_seconds() + 20;
	int i;

	for (i = 0; i < MODELS; i++) {
		memset(&pulls[i], 0, sizeof(pulls[i]));
		pulls[i].client = client;
		pulls[i].model = models[i];
		pulls[i].transferring = started;
		REQUIRE(pthread_create(&threads[i], NULL, pull_one, &pulls[i]) == 0);
	}
	while (atomic_load(started) < MODELS && now_seconds() < deadline)
		nanosleep(&pause, NULL);
	REQUIRE(atomic_load(started) == MODELS);
}

/* Joins the pulls: each was cancelled. */
static void join_cancelled(struct worker *pulls, pthread_t *threads)
{
	int i;

	for (i = 0; i < MODELS; i++) {
		pthread_join(threads[i], NULL);
		if (pulls[i].status != OLREG_CANCELLED)
			harness_fail(__FILE__, __LINE__, "pull %d: %s (%s)", i,
				     olreg_status_name(pulls[i].status), pulls[i].message);
	}
}

static void test_free_while_calls_run(void)
{
	char *store = tmpdir_new();
	struct log_sink *sink = calloc(1, sizeof(*sink));
	struct worker pulls[MODELS];
	pthread_t threads[MODELS];
	atomic_int started = 0;
	olreg_client *client;
	double start, took;

	REQUIRE(sink);
	client = logging_client(store, sink);
	stall_downloads();
	start_pulls(client, pulls, threads, &started);

	start = now_seconds();
	olreg_client_free(client);
	took = now_seconds() - start;
	/* Every call has returned: nothing may touch the callbacks' data now. */
	free(sink);
	join_cancelled(pulls, threads);
	fprintf(stderr, "   olreg_client_free with %d pulls running took %.3fs\n", MODELS, took);
	if (took > PROMPT)
		harness_fail(__FILE__, __LINE__, "olreg_client_free took %.2fs", took);
	registry_clear_faults(&reg);
	tmpdir_remove(store);
}

static void test_close_while_calls_run(void)
{
	char *store = tmpdir_new();
	struct log_sink sink = { 0 };
	struct worker pulls[MODELS];
	pthread_t threads[MODELS];
	atomic_int started = 0;
	olreg_client *client = logging_client(store, &sink);
	olreg_string_list *list = NULL;
	olreg_error *err = NULL;

	stall_downloads();
	start_pulls(client, pulls, threads, &started);
	CHECK_STATUS(olreg_client_close(client), OLREG_OK);
	join_cancelled(pulls, threads);

	/* Closed: every later call is refused at once, the handle still valid. */
	CHECK_STATUS(olreg_list(client, &list, &err), OLREG_CANCELLED);
	CHECK(list == NULL);
	CHECK(strstr(olreg_error_message(err), "closed") != NULL);
	olreg_error_free(err);
	err = NULL;
	CHECK_STATUS(olreg_pull(client, models[1], NULL, NULL, NULL, NULL, &err), OLREG_CANCELLED);
	olreg_error_free(err);
	CHECK_STATUS(olreg_client_close(client), OLREG_OK);
	CHECK_STATUS(olreg_client_close(NULL), OLREG_NULL_ARGUMENT);
	olreg_client_free(client);
	registry_clear_faults(&reg);
	tmpdir_remove(store);
}

/* Closing or freeing from inside a callback cancels without waiting. */
struct from_callback {
	olreg_client *client;
	bool free_it;
	olreg_status closed;
	int calls;
};

static int close_from_callback(void *user_data, const olreg_progress *p)
{
	struct from_callback *f = user_data;

	if (p->event != OLREG_EVENT_BYTES || f->calls++ > 0)
		return 0;
	if (f->free_it)
		olreg_client_free(f->client);
	else
		f->closed = olreg_client_close(f->client);
	return 0;
}

static void test_close_and_free_from_a_callback(void)
{
	char *store = tmpdir_new();
	struct from_callback f = { NULL, false, OLREG_OK, 0 };
	olreg_error *err = NULL;

	stall_downloads();
	f.client = test_client(store, 1);
	CHECK_STATUS(olreg_pull(f.client, models[2], close_from_callback, &f, NULL, NULL, &err),
		     OLREG_CANCELLED);
	CHECK_STATUS(f.closed, OLREG_REENTRANT);
	olreg_error_free(err);
	err = NULL;
	olreg_client_free(f.client);

	/* Freed by its own callback: the pull still returns, and only then is it freed. */
	f.client = test_client(store, 1);
	f.free_it = true;
	f.calls = 0;
	CHECK_STATUS(olreg_pull(f.client, models[2], close_from_callback, &f, NULL, NULL, &err),
		     OLREG_CANCELLED);
	olreg_error_free(err);
	registry_clear_faults(&reg);
	tmpdir_remove(store);
}

int main(void)
{
	static const char *const args[] = {
		"--model", "library/m0:latest=24M,1K",
		"--model", "library/m1:latest=2M,2K",
		"--model", "library/m2:latest=1M,3K",
		"--model", "other/m3:q4=4M,4K",
		"--seed", "11", NULL
	};
	static const char *const repo_tags[MODELS] = {
		"library/m0:latest", "library/m1:latest", "library/m2:latest", "other/m3:q4",
	};
	int i;

	registry_start(&reg, args);
	for (i = 0; i < MODELS; i++)
		registry_name(&reg, repo_tags[i], models[i], sizeof(models[i]));

	RUN(test_free_stops_the_clients_threads);
	RUN(test_shared_client);
	RUN(test_two_clients_one_store);
	RUN(test_free_while_calls_run);
	RUN(test_close_while_calls_run);
	RUN(test_close_and_free_from_a_callback);

	registry_stop(&reg);
	return harness_finish();
}
