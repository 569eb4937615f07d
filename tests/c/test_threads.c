/*
 * One client shared by eight threads pulling at once: four different
 * models, and the same model from four threads (which must wait for each
 * other's blobs, not fail or write them twice). Each thread's progress
 * callback runs on that thread. Then the store must verify clean, and the
 * client may be freed from a thread other than the one that made it.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "harness.h"

#define THREADS 8
#define MODELS 4

static struct registry reg;
static char models[MODELS][256];

struct worker {
	const olreg_client *client;
	const char *model;
	pthread_barrier_t *start;
	pthread_t self;
	olreg_status status;
	char message[512];
	int events, finished, wrong_thread;
};

static int count_event(void *user_data, const olreg_progress *p)
{
	struct worker *w = user_data;

	w->events++;
	w->finished += p->event == OLREG_EVENT_FINISHED;
	if (!pthread_equal(pthread_self(), w->self))
		w->wrong_thread++;
	return 0;
}

static void *pull_one(void *arg)
{
	struct worker *w = arg;
	olreg_error *err = NULL;

	w->self = pthread_self();
	/* All threads call olreg_pull at the same moment. */
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

	RUN(test_shared_client);
	RUN(test_two_clients_one_store);

	registry_stop(&reg);
	return harness_finish();
}
