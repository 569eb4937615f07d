/*
 * olreg_copy, olreg_export and olreg_import through the C API: a model
 * copied from the test registry (Ollama protocol) to Docker Distribution
 * with token auth, never touching the store, and a second copy that sends
 * nothing; the model exported as a directory and as a tar archive and
 * imported back byte-identical; a layout with a damaged blob refused with
 * its digest and the store left as it was; cancellation; NULL arguments.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"

#define SOURCE "library/src:v1"

static struct registry src;
static char source_name[256];

/* Blob outcomes of one operation, from its progress events. */
struct tally {
	int done, cached, bytes, finished;
	int cancel_when_waiting;	/* non-zero: cancel when the operation waits for a lock */
};

static int count_outcomes(void *user_data, const olreg_progress *p)
{
	struct tally *t = user_data;

	t->done += p->event == OLREG_EVENT_DONE;
	t->cached += p->event == OLREG_EVENT_CACHED;
	t->bytes += p->event == OLREG_EVENT_BYTES;
	t->finished += p->event == OLREG_EVENT_FINISHED;
	return t->cancel_when_waiting && p->event == OLREG_EVENT_WAITING;
}

/* The number of entries (not starting with '.') in `dir`, 0 if it is absent. */
static size_t count_entries(const char *dir)
{
	struct dirent *e;
	size_t n = 0;
	DIR *d = opendir(dir);

	if (!d)
		return 0;
	while ((e = readdir(d)) != NULL)
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

/* mkdir -p for a path of at most two missing levels below an existing one. */
static int mkdir_p(const char *path)
{
	char parent[1024];
	char *slash;

	snprintf(parent, sizeof(parent), "%s", path);
	slash = strrchr(parent, '/');
	if (slash) {
		*slash = '\0';
		if (mkdir(parent, 0755) != 0 && errno != EEXIST)
			return -1;
	}
	return mkdir(path, 0755) != 0 && errno != EEXIST ? -1 : 0;
}

static olreg_client *token_client(const char *store, const struct distribution *d)
{
	olreg_options *opts = store_options(store);
	olreg_error *err = NULL;

	REQUIRE_OK(olreg_options_set_retries(opts, 2, 10, 200), err);
	REQUIRE_OK(olreg_options_add_credential(opts, d->host, d->user, d->password), err);
	return client_from(opts);
}

static void test_copy_to_token_distribution(void)
{
	struct distribution dist;
	char *store = tmpdir_new(), *back = tmpdir_new();
	char target[256], blobs[1024];
	struct tally t = { 0, 0, 0, 0, 0 };
	olreg_client *client, *reader;
	olreg_manifest *m = NULL, *pulled = NULL;
	olreg_error *err = NULL;

	distribution_start(&dist, "token");
	snprintf(target, sizeof(target), "%s/team/copied:v2", dist.url);
	client = token_client(store, &dist);
	REQUIRE_OK(olreg_copy(client, source_name, target, count_outcomes, &t, NULL, &m, &err), err);
	CHECK_INT(olreg_manifest_layer_count(m), 3);
	CHECK_INT(t.done, 4);
	CHECK_INT(t.finished, 1);
	snprintf(blobs, sizeof(blobs), "%s/blobs", store);
	CHECK_INT(count_entries(blobs), 0);

	/* The destination serves the same manifest. */
	reader = token_client(back, &dist);
	REQUIRE_OK(olreg_pull(reader, target, NULL, NULL, NULL, &pulled, &err), err);
	CHECK_STR(olreg_manifest_digest(pulled), olreg_manifest_digest(m));

	/* A second copy finds every blob there. */
	memset(&t, 0, sizeof(t));
	REQUIRE_OK(olreg_copy(client, source_name, target, count_outcomes, &t, NULL, NULL, &err), err);
	CHECK_INT(t.cached, 4);
	CHECK_INT(t.bytes, 0);

	/* A destination with @digest is refused before any request. */
	CHECK_STATUS(olreg_copy(client, source_name,
				"http://127.0.0.1:1/a/b@sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
				NULL, NULL, NULL, NULL, &err), OLREG_INVALID_NAME);
	olreg_error_free(err);

	olreg_manifest_free(pulled);
	olreg_manifest_free(m);
	olreg_client_free(reader);
	olreg_client_free(client);
	distribution_stop(&dist);
	tmpdir_remove(back);
	tmpdir_remove(store);
}

/* Exports SOURCE to `dest` and imports it into a fresh store: identical. */
static void round_trip(const olreg_client *client, const char *dest)
{
	char *back = tmpdir_new();
	olreg_client *importer = test_client(back, 1);
	olreg_manifest *m = NULL;
	olreg_error *err = NULL;
	char *a = NULL, *b = NULL;
	size_t alen = 0, blen = 0;
	struct tally t = { 0, 0, 0, 0, 0 };

	REQUIRE_OK(olreg_export(client, source_name, dest, count_outcomes, &t, NULL, &err), err);
	CHECK_INT(t.finished, 1);
	REQUIRE_OK(olreg_import(importer, dest, "local/imported:v1", NULL, NULL, NULL, NULL, &m, &err),
		   err);
	CHECK_INT(olreg_manifest_layer_count(m), 3);
	REQUIRE_OK(olreg_show(client, source_name, &a, &alen, &err), err);
	REQUIRE_OK(olreg_show(importer, "local/imported:v1", &b, &blen, &err), err);
	CHECK(alen == blen && memcmp(a, b, alen) == 0);

	/* The reference picks the entry by its tag; an unknown one is not found. */
	REQUIRE_OK(olreg_import(importer, dest, "local/again:v1", "v1", NULL, NULL, NULL, NULL, &err),
		   err);
	CHECK_STATUS(olreg_import(importer, dest, "local/x:v1", "nope", NULL, NULL, NULL, NULL, &err),
		     OLREG_NOT_FOUND);
	olreg_error_free(err);

	olreg_string_free(a);
	olreg_string_free(b);
	olreg_manifest_free(m);
	olreg_client_free(importer);
	tmpdir_remove(back);
}

static void test_export_import(void)
{
	char *store = tmpdir_new(), *out = tmpdir_new();
	olreg_client *client = test_client(store, 1);
	olreg_error *err = NULL;
	char dir[1024], tar[1024];

	REQUIRE_OK(olreg_pull(client, source_name, NULL, NULL, NULL, NULL, &err), err);
	snprintf(dir, sizeof(dir), "%s/layout", out);
	snprintf(tar, sizeof(tar), "%s/layout.tar", out);
	round_trip(client, dir);
	round_trip(client, tar);

	olreg_client_free(client);
	tmpdir_remove(out);
	tmpdir_remove(store);
}

static void test_damaged_layout_changes_nothing(void)
{
	char *store = tmpdir_new(), *out = tmpdir_new(), *victim = tmpdir_new();
	olreg_client *client = test_client(store, 1), *importer = test_client(victim, 1);
	olreg_manifest *m = NULL;
	olreg_error *err = NULL;
	char dir[1024], blob[1200], blobs[1024];
	FILE *f;

	REQUIRE_OK(olreg_pull(client, source_name, NULL, NULL, NULL, &m, &err), err);
	snprintf(dir, sizeof(dir), "%s/layout", out);
	REQUIRE_OK(olreg_export(client, source_name, dir, NULL, NULL, NULL, &err), err);
	/* Flip the last byte of the largest layer. */
	snprintf(blob, sizeof(blob), "%s/blobs/sha256/%s", dir,
		 olreg_manifest_layer_digest(m, 2) + strlen("sha256:"));
	f = fopen(blob, "r+b");
	REQUIRE(f);
	REQUIRE(fseek(f, -1, SEEK_END) == 0);
	fputc('!', f);
	fclose(f);

	CHECK_STATUS(olreg_import(importer, dir, "local/bad:v1", NULL, NULL, NULL, NULL, NULL, &err),
		     OLREG_DIGEST_MISMATCH);
	{
		/* The message names the blob by its short digest (sha256: and 12 hex). */
		char short_digest[20];

		snprintf(short_digest, sizeof(short_digest), "%.19s", olreg_manifest_layer_digest(m, 2));
		CHECK(strstr(olreg_error_message(err), short_digest) != NULL);
	}
	olreg_error_free(err);
	err = NULL;
	snprintf(blobs, sizeof(blobs), "%s/blobs", victim);
	CHECK_INT(count_entries(blobs), 0);

	/*
	 * Cancelled from the progress callback while another writer (this test,
	 * holding the blob's lock as a concurrent pull would) has the largest
	 * layer: nothing is linked either.
	 */
	{
		struct tally t = { 0, 0, 0, 0, 1 };
		char good[1024], locks[1024], lock[1200];
		int fd;

		snprintf(locks, sizeof(locks), "%s/.olreg/locks", victim);
		REQUIRE(mkdir_p(locks) == 0);
		snprintf(lock, sizeof(lock), "%s/sha256-%s.lock", locks,
			 olreg_manifest_layer_digest(m, 2) + strlen("sha256:"));
		fd = open(lock, O_RDWR | O_CREAT, 0644);
		REQUIRE(fd >= 0 && flock(fd, LOCK_EX) == 0);
		snprintf(good, sizeof(good), "%s/good.tar", out);
		REQUIRE_OK(olreg_export(client, source_name, good, NULL, NULL, NULL, &err), err);
		CHECK_STATUS(olreg_import(importer, good, "local/c:v1", NULL, count_outcomes, &t,
					  NULL, NULL, &err), OLREG_CANCELLED);
		olreg_error_free(err);
		err = NULL;
		close(fd);
	}
	{
		olreg_string_list *list = NULL;

		REQUIRE_OK(olreg_list(importer, &list, &err), err);
		CHECK_INT(olreg_string_list_len(list), 0);
		olreg_string_list_free(list);
	}

	olreg_manifest_free(m);
	olreg_client_free(importer);
	olreg_client_free(client);
	tmpdir_remove(victim);
	tmpdir_remove(out);
	tmpdir_remove(store);
}

static void test_null_arguments(void)
{
	char *store = tmpdir_new();
	olreg_client *client = test_client(store, 1);
	olreg_error *err = NULL;

	CHECK_STATUS(olreg_copy(NULL, "a", "b", NULL, NULL, NULL, NULL, &err), OLREG_NULL_ARGUMENT);
	olreg_error_free(err);
	CHECK_STATUS(olreg_copy(client, NULL, "b", NULL, NULL, NULL, NULL, NULL), OLREG_NULL_ARGUMENT);
	CHECK_STATUS(olreg_copy(client, "a", NULL, NULL, NULL, NULL, NULL, NULL), OLREG_NULL_ARGUMENT);
	CHECK_STATUS(olreg_export(client, "a", NULL, NULL, NULL, NULL, NULL), OLREG_NULL_ARGUMENT);
	CHECK_STATUS(olreg_export(client, NULL, "/tmp/x", NULL, NULL, NULL, NULL), OLREG_NULL_ARGUMENT);
	CHECK_STATUS(olreg_export(client, "a", "", NULL, NULL, NULL, NULL), OLREG_INVALID_ARGUMENT);
	CHECK_STATUS(olreg_import(client, NULL, "a", NULL, NULL, NULL, NULL, NULL, NULL),
		     OLREG_NULL_ARGUMENT);
	CHECK_STATUS(olreg_import(client, "/tmp", NULL, NULL, NULL, NULL, NULL, NULL, NULL),
		     OLREG_NULL_ARGUMENT);
	/* A local model that does not exist. */
	CHECK_STATUS(olreg_export(client, "absent/model:v1", "/tmp/never-written", NULL, NULL, NULL,
				  &err), OLREG_NOT_FOUND);
	olreg_error_free(err);
	{
		struct stat st;

		CHECK(stat("/tmp/never-written", &st) != 0);
	}
	olreg_client_free(client);
	tmpdir_remove(store);
}

int main(void)
{
	static const char *const args[] = {
		"--model", SOURCE "=1K,2K,3000001",
		"--seed", "12", NULL
	};

	registry_start(&src, args);
	registry_name(&src, SOURCE, source_name, sizeof(source_name));

	RUN(test_copy_to_token_distribution);
	RUN(test_export_import);
	RUN(test_damaged_layout_changes_nothing);
	RUN(test_null_arguments);

	registry_stop(&src);
	return harness_finish();
}
