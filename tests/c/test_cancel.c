/*
 * Cancellation: by a progress callback's non-zero return, by
 * olreg_cancel_cancel() from another thread while a download stalls, by a
 * token cancelled beforehand; each returns OLREG_CANCELLED promptly, and
 * the next pull resumes what was downloaded. And 200 cancels at random
 * moments of a chunked pull: every one OLREG_CANCELLED, the store
 * consistent after each.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "harness.h"

/* How long a cancelled call may take to return. */
#define PROMPT 1.0

static struct registry reg;
static char model[256];

/* The blob store sends 1 MiB of every blob, then nothing for 20 s. */
static void stall_downloads(void)
{
	registry_add_fault(&reg, "{\"target\":{\"blob_store\":{\"digest\":null}},"
			   "\"kind\":{\"stall\":{\"after_bytes\":1048576,\"millis\":20000}},\"times\":0}");
}

struct stop_at {
	olreg_event event;
	int seen;
};

static int stop_at_event(void *user_data, const olreg_progress *p)
{
	struct stop_at *s = user_data;

	if (p->event != s->event)
		return 0;
	s->seen++;
	return 1;
}

static void test_callback_cancels(void)
{
	static const olreg_event at[] = { OLREG_EVENT_RESOLVED, OLREG_EVENT_STARTED, OLREG_EVENT_BYTES };
	char *store = tmpdir_new();
	olreg_client *client = test_client(store, 2);
	olreg_string_list *list = NULL;
	olreg_error *err = NULL;
	size_t i;

	stall_downloads();
	for (i = 0; i < sizeof(at) / sizeof(at[0]); i++) {
		struct stop_at s = { at[i], 0 };
		double start = now_seconds(), took;

		CHECK_STATUS(olreg_pull(client, model, stop_at_event, &s, NULL, NULL, &err), OLREG_CANCELLED);
		took = now_seconds() - start;
		CHECK_INT(s.seen, 1);	/* no event after the one that said stop */
		CHECK_STATUS(olreg_error_status(err), OLREG_CANCELLED);
		CHECK(strstr(olreg_error_message(err), "cancel") != NULL);
		if (took > PROMPT)
			harness_fail(__FILE__, __LINE__, "cancel at event %d took %.2fs", (int)at[i], took);
		olreg_error_free(err);
		err = NULL;
	}
	registry_clear_faults(&reg);
	/* Nothing was linked. */
	REQUIRE_OK(olreg_list(client, &list, &err), err);
	CHECK_INT(olreg_string_list_len(list), 0);
	olreg_string_list_free(list);
	olreg_client_free(client);
	tmpdir_remove(store);
}

struct canceller {
	const olreg_cancel *token;
	atomic_int started;	/* set by the progress callback */
	double cancelled_at;
};

static int note_start(void *user_data, const olreg_progress *p)
{
	struct canceller *c = user_data;

	if (p->event == OLREG_EVENT_BYTES || p->event == OLREG_EVENT_STARTED)
		atomic_store(&c->started, 1);
	return 0;
}

/* Waits for the download to be under way and stalled, then cancels. */
static void *cancel_later(void *arg)
{
	struct canceller *c = arg;
	struct timespec pause = { 0, 10 * 1000 * 1000 };
	double deadline = now_seconds() + 10;

	while (!atomic_load(&c->started) && now_seconds() < deadline)
		nanosleep(&pause, NULL);
	pause.tv_nsec = 500 * 1000 * 1000;	/* well into the stall */
	nanosleep(&pause, NULL);
	c->cancelled_at = now_seconds();
	CHECK_STATUS(olreg_cancel_cancel(c->token), OLREG_OK);
	return NULL;
}

struct resumed {
	uint64_t resumed_bytes;
};

static int note_resume(void *user_data, const olreg_progress *p)
{
	struct resumed *r = user_data;

	if (p->event == OLREG_EVENT_STARTED && p->layer_completed > r->resumed_bytes)
		r->resumed_bytes = p->layer_completed;
	return 0;
}

static void test_cancel_from_another_thread(void)
{
	char *store = tmpdir_new();
	olreg_client *client = test_client(store, 2);
	struct canceller c;
	struct resumed r = { 0 };
	olreg_cancel *token = NULL;
	olreg_error *err = NULL;
	pthread_t thread;
	double took;

	REQUIRE_OK(olreg_cancel_new(&token), err);
	memset(&c, 0, sizeof(c));
	c.token = token;
	stall_downloads();
	REQUIRE(pthread_create(&thread, NULL, cancel_later, &c) == 0);
	CHECK_STATUS(olreg_pull(client, model, note_start, &c, token, NULL, &err), OLREG_CANCELLED);
	took = now_seconds() - c.cancelled_at;
	pthread_join(thread, NULL);
	CHECK(olreg_cancel_is_cancelled(token));
	CHECK_STATUS(olreg_error_status(err), OLREG_CANCELLED);
	fprintf(stderr, "   returned %.3fs after olreg_cancel_cancel()\n", took);
	if (took > PROMPT)
		harness_fail(__FILE__, __LINE__, "the pull returned %.2fs after the cancel", took);
	olreg_error_free(err);
	err = NULL;

	/* The bytes that arrived before the stall are kept: the next pull resumes. */
	registry_clear_faults(&reg);
	REQUIRE_OK(olreg_pull(client, model, note_resume, &r, NULL, NULL, &err), err);
	CHECK(r.resumed_bytes >= 512 * 1024);
	fprintf(stderr, "   resumed at %llu bytes\n", (unsigned long long)r.resumed_bytes);

	olreg_cancel_free(token);
	olreg_client_free(client);
	tmpdir_remove(store);
}

/* A token stays cancelled: every call started with it stops at once. */
static void test_cancelled_token(void)
{
	char *store = tmpdir_new();
	olreg_client *client = test_client(store, 2);
	olreg_string_list *problems = NULL;
	olreg_cancel *token = NULL;
	olreg_error *err = NULL;

	REQUIRE_OK(olreg_cancel_new(&token), err);
	CHECK(!olreg_cancel_is_cancelled(token));
	CHECK_STATUS(olreg_cancel_cancel(token), OLREG_OK);
	CHECK_STATUS(olreg_cancel_cancel(token), OLREG_OK);
	CHECK(olreg_cancel_is_cancelled(token));
	CHECK_STATUS(olreg_pull(client, model, NULL, NULL, token, NULL, &err), OLREG_CANCELLED);
	olreg_error_free(err);
	err = NULL;
	CHECK_STATUS(olreg_verify(client, NULL, NULL, NULL, token, &problems, &err), OLREG_CANCELLED);
	CHECK(problems == NULL);
	olreg_error_free(err);
	olreg_cancel_free(token);
	olreg_client_free(client);
	tmpdir_remove(store);
}

/* How many random cancels, and the latest moment one lands (after the call starts). */
#define RANDOM_CANCELS 200
#define LATEST_CANCEL_US 10000

struct delayed_cancel {
	const olreg_cancel *token;
	long delay_us;
};

static void *cancel_after(void *arg)
{
	struct delayed_cancel *d = arg;
	struct timespec pause = { 0, d->delay_us * 1000 };

	nanosleep(&pause, NULL);
	olreg_cancel_cancel(d->token);
	return NULL;
}

static int note_bytes(void *user_data, const olreg_progress *p)
{
	atomic_int *transferring = user_data;

	if (p->event == OLREG_EVENT_STARTED || p->event == OLREG_EVENT_BYTES)
		atomic_store(transferring, 1);
	return 0;
}

/*
 * A chunked pull (8 chunks of 1 MiB, all at once) of a blob whose every
 * response stalls halfway, so that it never finishes on its own, cancelled
 * from another thread after a random delay: before the manifest, during
 * the probe, while chunks stream or stall. Cancelled siblings must not
 * turn into OLREG_PANIC or OLREG_INTERNAL. Replay with OLREG_CANCEL_SEED.
 */
static void test_random_cancels_of_a_chunked_pull(void)
{
	char *store = tmpdir_new();
	olreg_options *opts = store_options(store);
	olreg_client *client;
	olreg_error *err = NULL;
	const char *seed_env = getenv("OLREG_CANCEL_SEED");
	unsigned seed = seed_env ? (unsigned)strtoul(seed_env, NULL, 10) : (unsigned)time(NULL);
	int i, wrong = 0, transferring_at_cancel = 0;
	double start = now_seconds();

	REQUIRE_OK(olreg_options_set_streams(opts, 10), err);
	REQUIRE_OK(olreg_options_set_chunking(opts, 1 << 20, 1 << 20), err);
	client = client_from(opts);

	/* Each response sends 256 KiB, then pauses 2 s (longer than any delay below). */
	registry_add_fault(&reg, "{\"target\":{\"blob_store\":{\"digest\":null}},"
			   "\"kind\":{\"stall\":{\"after_bytes\":262144,\"millis\":2000}},\"times\":0}");
	fprintf(stderr, "   seed %u (OLREG_CANCEL_SEED replays it)\n", seed);
	for (i = 0; i < RANDOM_CANCELS && wrong < 5; i++) {
		struct delayed_cancel d;
		olreg_cancel *token = NULL;
		olreg_string_list *list = NULL, *problems = NULL;
		atomic_int transferring = 0;
		pthread_t thread;
		olreg_status st;

		REQUIRE_OK(olreg_cancel_new(&token), err);
		d.token = token;
		d.delay_us = (long)(rand_r(&seed) % LATEST_CANCEL_US);
		REQUIRE(pthread_create(&thread, NULL, cancel_after, &d) == 0);
		st = olreg_pull(client, model, note_bytes, &transferring, token, NULL, &err);
		pthread_join(thread, NULL);
		transferring_at_cancel += atomic_load(&transferring);
		if (st != OLREG_CANCELLED) {
			harness_fail(__FILE__, __LINE__, "cancel %d after %ld us: %s (%s)", i, d.delay_us,
				     olreg_status_name(st), err ? olreg_error_message(err) : "");
			wrong++;
		}
		olreg_error_free(err);
		err = NULL;
		olreg_cancel_free(token);

		/* Consistent: nothing linked; every blob present hashes to its name. */
		REQUIRE_OK(olreg_list(client, &list, &err), err);
		CHECK_INT(olreg_string_list_len(list), 0);
		olreg_string_list_free(list);
		REQUIRE_OK(olreg_verify(client, NULL, NULL, NULL, NULL, &problems, &err), err);
		CHECK_INT(olreg_string_list_len(problems), 0);
		olreg_string_list_free(problems);
		/* Partials go too: the next pull starts from nothing again. */
		REQUIRE_OK(olreg_prune(client, NULL, NULL, &err), err);
	}
	registry_clear_faults(&reg);
	fprintf(stderr, "   %d cancels in %.1fs, %d of them while blobs were transferring\n", i,
		now_seconds() - start, transferring_at_cancel);
	/* Most cancels must land in the chunked download, or this tests little. */
	if (i == RANDOM_CANCELS)
		CHECK(transferring_at_cancel >= RANDOM_CANCELS / 4);

	olreg_client_free(client);
	tmpdir_remove(store);
}

int main(void)
{
	static const char *const args[] = { "--model", "library/stalls:latest=8M,1K", NULL };

	registry_start(&reg, args);
	registry_name(&reg, "library/stalls:latest", model, sizeof(model));

	RUN(test_callback_cancels);
	RUN(test_cancel_from_another_thread);
	RUN(test_cancelled_token);
	RUN(test_random_cancels_of_a_chunked_pull);

	registry_stop(&reg);
	return harness_finish();
}
