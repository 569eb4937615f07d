/*
 * Options: setters only store (they fail only on NULL); olreg_client_new()
 * checks every option and reports a bad one in its error object, naming it
 * ("option chunk_size: …"), without making a client or touching the store.
 * No registry is needed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "harness.h"

static char *store;

/*
 * olreg_client_new(opts) fails with `status`, a message naming `option`,
 * and no client; `opts` is freed.
 */
static void check_refused(olreg_options *opts, olreg_status status, const char *option,
			  const char *file, int line)
{
	static char sentinel;
	olreg_client *client = (olreg_client *)&sentinel;
	olreg_error *err = NULL;
	char prefix[64];
	olreg_status got = olreg_client_new(opts, &client, &err);

	snprintf(prefix, sizeof(prefix), "option %s: ", option);
	if (got != status)
		harness_fail(file, line, "olreg_client_new returned %s, expected %s for option %s (%s)",
			     olreg_status_str(got), olreg_status_str(status), option,
			     olreg_error_message(err));
	else if (olreg_error_status(err) != status)
		harness_fail(file, line, "the error object says %s", olreg_status_str(olreg_error_status(err)));
	else if (!strstr(olreg_error_message(err), prefix))
		harness_fail(file, line, "the message \"%s\" does not name option %s",
			     olreg_error_message(err), option);
	if (client != (olreg_client *)&sentinel) {
		harness_fail(file, line, "a client was written for a bad option %s", option);
		if (got == OLREG_OK)
			olreg_client_free(client);
	}
	olreg_error_free(err);
	olreg_options_free(opts);
}
#define CHECK_REFUSED(opts, status, option) check_refused(opts, status, option, __FILE__, __LINE__)

/* Fresh options given one setting by `set` (a call on `opts`) are refused so. */
#define CHECK_SETTING_REFUSED(set, status, option) \
	do { \
		olreg_options *opts = store_options(store); \
		set; \
		check_refused(opts, status, option, __FILE__, __LINE__); \
	} while (0)

static void check_accepted(olreg_options *opts, const char *file, int line)
{
	olreg_client *client = NULL;
	olreg_error *err = NULL;

	if (olreg_client_new(opts, &client, &err) != OLREG_OK)
		harness_fail(file, line, "olreg_client_new failed: %s", olreg_error_message(err));
	olreg_client_free(client);
	olreg_error_free(err);
	olreg_options_free(opts);
}
#define CHECK_ACCEPTED(opts) check_accepted(opts, __FILE__, __LINE__)

/* A file in the store holding `text`; returns its malloc'd path. */
static char *write_file(const char *name, const char *text)
{
	char *path = malloc(512);
	FILE *f;

	REQUIRE(path);
	snprintf(path, 512, "%s/%s", store, name);
	f = fopen(path, "w");
	REQUIRE(f);
	fputs(text, f);
	fclose(f);
	return path;
}

static void test_setters_only_store(void)
{
	olreg_options *opts = store_options(store);

	/* Whatever the value, a setter stores it: the client checks. */
	CHECK_STATUS(olreg_options_set_streams(opts, 0), OLREG_OK);
	CHECK_STATUS(olreg_options_set_models_dir(opts, "/tmp/\xff\xfe"), OLREG_OK);
	CHECK_STATUS(olreg_options_add_ca_pem(opts, "not PEM", 7), OLREG_OK);
	CHECK_STATUS(olreg_options_add_ca_file(opts, "/nonexistent/ca.pem"), OLREG_OK);
	CHECK_STATUS(olreg_options_set_log_callback(opts, NULL, NULL, 99), OLREG_OK);
	CHECK_STATUS(olreg_options_add_mirror(opts, "ftp://mirror.example"), OLREG_OK);
	CHECK_STATUS(olreg_options_set_chunking(opts, 1, 1), OLREG_OK);
	olreg_options_free(opts);
}

static void test_each_bad_option_is_named(void)
{
	char *not_json = write_file("config.json", "{ not json");

	/* An empty store root is not the working directory. */
	CHECK_SETTING_REFUSED(olreg_options_set_models_dir(opts, ""), OLREG_INVALID_ARGUMENT, "models_dir");
	CHECK_SETTING_REFUSED(olreg_options_set_models_dir(opts, "/tmp/\xff\xfe"), OLREG_INVALID_ARGUMENT,
			      "models_dir");
	CHECK_SETTING_REFUSED(olreg_options_set_name_mask(opts, "not a mask!!"), OLREG_INVALID_NAME, "name_mask");
	CHECK_SETTING_REFUSED(olreg_options_set_key_file(opts, "/nonexistent/id_ed25519"),
			      OLREG_INVALID_ARGUMENT, "key_file");
	CHECK_SETTING_REFUSED(olreg_options_set_streams(opts, 0), OLREG_INVALID_ARGUMENT, "streams");
	/* Chunks of a few bytes would cost a request per few bytes. */
	CHECK_SETTING_REFUSED(olreg_options_set_chunking(opts, 0, 4096), OLREG_INVALID_ARGUMENT, "chunk_size");
	CHECK_SETTING_REFUSED(olreg_options_set_chunking(opts, 1, (1 << 20) - 1), OLREG_INVALID_ARGUMENT,
			      "chunk_size");
	CHECK_SETTING_REFUSED(olreg_options_set_upload_chunk_size(opts, 1), OLREG_INVALID_ARGUMENT,
			      "upload_chunk_size");
	CHECK_SETTING_REFUSED(olreg_options_set_user_agent(opts, "\xff"), OLREG_INVALID_ARGUMENT, "user_agent");
	CHECK_SETTING_REFUSED(olreg_options_set_user_agent(opts, "two\nlines"), OLREG_INVALID_ARGUMENT,
			      "user_agent");
	CHECK_SETTING_REFUSED(olreg_options_set_proxy(opts, "http://[::1"), OLREG_INVALID_ARGUMENT, "proxy");
	CHECK_SETTING_REFUSED(olreg_options_add_ca_pem(opts, "not PEM", 7), OLREG_INVALID_ARGUMENT, "ca_pem");
	CHECK_SETTING_REFUSED(olreg_options_add_ca_file(opts, "/nonexistent/ca.pem"), OLREG_IO, "ca_file");
	CHECK_SETTING_REFUSED(olreg_options_add_ca_file(opts, not_json), OLREG_INVALID_ARGUMENT, "ca_file");
	CHECK_SETTING_REFUSED(olreg_options_set_docker_config(opts, not_json), OLREG_INVALID_ARGUMENT,
			      "docker_config");
	CHECK_SETTING_REFUSED(olreg_options_add_credential(opts, "\xff", "u", "p"), OLREG_INVALID_ARGUMENT,
			      "credential");
	CHECK_SETTING_REFUSED(olreg_options_add_mirror(opts, "ftp://mirror.example"), OLREG_INVALID_ARGUMENT,
			      "mirror");
	CHECK_SETTING_REFUSED(olreg_options_set_platform(opts, "linux"), OLREG_INVALID_ARGUMENT, "platform");
	CHECK_SETTING_REFUSED(olreg_options_set_log_callback(opts, NULL, NULL, 99), OLREG_INVALID_ARGUMENT, "log");
	free(not_json);
}

static void test_good_values_are_accepted(void)
{
	olreg_options *opts;

	/* The smallest chunks allowed, and 0 for "leave the default". */
	opts = store_options(store);
	CHECK_STATUS(olreg_options_set_chunking(opts, 1, 1 << 20), OLREG_OK);
	CHECK_STATUS(olreg_options_set_upload_chunk_size(opts, 1 << 20), OLREG_OK);
	CHECK_STATUS(olreg_options_set_retries(opts, 0, 0, 0), OLREG_OK);
	CHECK_STATUS(olreg_options_set_timeouts(opts, 0, 0), OLREG_OK);
	CHECK_STATUS(olreg_options_set_limits(opts, 0, 0, 0), OLREG_OK);
	CHECK_ACCEPTED(opts);

	/* A later value of a setting replaces a bad one, as any value. */
	opts = store_options(store);
	olreg_options_set_user_agent(opts, "\xff");
	olreg_options_set_streams(opts, 0);
	olreg_options_set_user_agent(opts, "olreg-test");
	olreg_options_set_streams(opts, 2);
	CHECK_ACCEPTED(opts);
}

/* $OLREG_LIMIT_RATE is the rate_limit option's default: a bad one is named
 * as that option, and the setter (0: no cap) wins over it. */
static void test_rate_limit_from_the_environment(void)
{
	olreg_options *opts;

	REQUIRE(setenv("OLREG_LIMIT_RATE", "fast", 1) == 0);
	CHECK_REFUSED(store_options(store), OLREG_INVALID_ARGUMENT, "rate_limit");
	opts = store_options(store);
	CHECK_STATUS(olreg_options_set_rate_limit(opts, 0), OLREG_OK);
	CHECK_ACCEPTED(opts);
	REQUIRE(setenv("OLREG_LIMIT_RATE", "50M", 1) == 0);
	CHECK_ACCEPTED(store_options(store));
	REQUIRE(unsetenv("OLREG_LIMIT_RATE") == 0);
}

static void test_the_store_is_untouched(void)
{
	struct stat st;
	olreg_options *opts = store_options(store);
	char root[512];

	snprintf(root, sizeof(root), "%s/absent", store);
	olreg_options_set_models_dir(opts, root);
	olreg_options_set_chunking(opts, 0, 1);
	CHECK_REFUSED(opts, OLREG_INVALID_ARGUMENT, "chunk_size");
	CHECK(stat(root, &st) != 0);
}

int main(void)
{
	store = tmpdir_new();

	RUN(test_setters_only_store);
	RUN(test_each_bad_option_is_named);
	RUN(test_good_values_are_accepted);
	RUN(test_rate_limit_from_the_environment);
	RUN(test_the_store_is_untouched);

	tmpdir_remove(store);
	return harness_finish();
}
