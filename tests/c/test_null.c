/*
 * Every NULL argument the header calls required gives OLREG_NULL_ARGUMENT
 * (with an error object saying so, when one was asked for), leaves the
 * out-parameters alone and never crashes; every NULL it calls optional
 * works; and the accessors and *_free functions accept NULL.
 * No registry is needed: each call fails before any request.
 */
#include <stdlib.h>
#include <string.h>

#include "harness.h"

/* Stands for "not written": no olreg object lives at this address. */
static char sentinel_storage;
#define SENTINEL ((void *)&sentinel_storage)

/*
 * `call` (which may use the variable `err`) fails with OLREG_NULL_ARGUMENT
 * and fills `err` with an error of that status and a message.
 */
#define CHECK_NULL_ARG(call) \
	do { \
		olreg_error *err = NULL; \
		CHECK_STATUS(call, OLREG_NULL_ARGUMENT); \
		if (!err) { \
			harness_fail(__FILE__, __LINE__, "%s: no error object", #call); \
		} else { \
			CHECK_STATUS(olreg_error_status(err), OLREG_NULL_ARGUMENT); \
			CHECK(*olreg_error_message(err) != '\0'); \
			CHECK_INT(olreg_error_http_status(err), 0); \
		} \
		olreg_error_free(err); \
	} while (0)

static char *store;
static olreg_client *client;
/* A well-formed name whose registry would refuse connections: nothing may reach it. */
static const char name[] = "http://127.0.0.1:9/library/m:latest";

static void test_cancel_and_client(void)
{
	olreg_client *out = SENTINEL;
	olreg_options *opts = NULL;
	olreg_error *err = NULL;

	CHECK_STATUS(olreg_cancel_new(NULL), OLREG_NULL_ARGUMENT);
	CHECK_STATUS(olreg_cancel_cancel(NULL), OLREG_NULL_ARGUMENT);
	CHECK(!olreg_cancel_is_cancelled(NULL));
	olreg_cancel_free(NULL);

	CHECK_NULL_ARG(olreg_client_new(NULL, NULL, &err));
	CHECK_STATUS(olreg_client_new(NULL, NULL, NULL), OLREG_NULL_ARGUMENT);
	REQUIRE_OK(olreg_options_new(&opts), err);
	CHECK_NULL_ARG(olreg_client_new(opts, NULL, &err));
	olreg_options_free(opts);
	olreg_client_free(NULL);

	/* NULL options mean the defaults (the store comes from $OLLAMA_MODELS here). */
	REQUIRE_OK(olreg_client_new(NULL, &out, &err), err);
	CHECK(out != SENTINEL && out != NULL);
	olreg_client_free(out);
}

static void test_operations(void)
{
	olreg_manifest *manifest = SENTINEL;
	olreg_string_list *list = SENTINEL;
	char *bytes = SENTINEL;
	size_t len = 12345;
	uint64_t removed = 7, freed = 7;

	CHECK_NULL_ARG(olreg_pull(NULL, name, NULL, NULL, NULL, &manifest, &err));
	CHECK_NULL_ARG(olreg_pull(client, NULL, NULL, NULL, NULL, &manifest, &err));
	CHECK_STATUS(olreg_pull(client, NULL, NULL, NULL, NULL, NULL, NULL), OLREG_NULL_ARGUMENT);
	CHECK(manifest == SENTINEL);

	CHECK_NULL_ARG(olreg_push(NULL, name, NULL, NULL, NULL, NULL, &err));
	CHECK_NULL_ARG(olreg_push(client, NULL, name, NULL, NULL, NULL, &err));

	CHECK_NULL_ARG(olreg_resolve(NULL, name, NULL, &manifest, &err));
	CHECK_NULL_ARG(olreg_resolve(client, NULL, NULL, &manifest, &err));
	CHECK_NULL_ARG(olreg_resolve(client, name, NULL, NULL, &err));
	CHECK(manifest == SENTINEL);

	CHECK_NULL_ARG(olreg_list(NULL, &list, &err));
	CHECK_NULL_ARG(olreg_list(client, NULL, &err));
	CHECK(list == SENTINEL);

	CHECK_NULL_ARG(olreg_show(NULL, name, &bytes, &len, &err));
	CHECK_NULL_ARG(olreg_show(client, NULL, &bytes, &len, &err));
	CHECK_NULL_ARG(olreg_show(client, name, NULL, &len, &err));
	CHECK_NULL_ARG(olreg_show(client, name, &bytes, NULL, &err));
	CHECK(bytes == SENTINEL);
	CHECK_INT(len, 12345);

	CHECK_NULL_ARG(olreg_remove(NULL, name, &err));
	CHECK_NULL_ARG(olreg_remove(client, NULL, &err));

	CHECK_NULL_ARG(olreg_prune(NULL, &removed, &freed, &err));
	CHECK_INT(removed, 7);
	CHECK_INT(freed, 7);

	CHECK_NULL_ARG(olreg_verify(NULL, NULL, NULL, NULL, NULL, &list, &err));
	CHECK_NULL_ARG(olreg_verify(client, NULL, NULL, NULL, NULL, NULL, &err));
	CHECK_NULL_ARG(olreg_verify(client, name, NULL, NULL, NULL, NULL, &err));
	CHECK(list == SENTINEL);
}

/* What the header calls optional may be NULL. */
static void test_optional_arguments(void)
{
	olreg_string_list *list = NULL;
	olreg_error *err = NULL;

	/* prune's counters, verify's name: an empty store has nothing to do. */
	REQUIRE_OK(olreg_prune(client, NULL, NULL, &err), err);
	REQUIRE_OK(olreg_prune(client, NULL, NULL, NULL), err);
	REQUIRE_OK(olreg_verify(client, NULL, NULL, NULL, NULL, &list, &err), err);
	CHECK_INT(olreg_string_list_len(list), 0);
	olreg_string_list_free(list);
	REQUIRE_OK(olreg_list(client, &list, NULL), err);
	CHECK_INT(olreg_string_list_len(list), 0);
	olreg_string_list_free(list);
}

static void test_accessors(void)
{
	size_t len = 99;

	CHECK_STATUS(olreg_error_status(NULL), OLREG_NULL_ARGUMENT);
	CHECK_STR(olreg_error_message(NULL), "");
	CHECK_INT(olreg_error_http_status(NULL), 0);
	CHECK(olreg_error_registry_code(NULL) == NULL);
	olreg_error_free(NULL);

	CHECK(olreg_manifest_digest(NULL) == NULL);
	CHECK(olreg_manifest_bytes(NULL, &len) == NULL);
	CHECK(olreg_manifest_bytes(NULL, NULL) == NULL);
	CHECK_INT(olreg_manifest_layer_count(NULL), 0);
	CHECK(olreg_manifest_layer_digest(NULL, 0) == NULL);
	CHECK(olreg_manifest_layer_media_type(NULL, 0) == NULL);
	CHECK_INT(olreg_manifest_layer_size(NULL, 0), 0);
	CHECK_INT(olreg_manifest_total_size(NULL), 0);
	olreg_manifest_free(NULL);

	olreg_string_free(NULL);
	CHECK_INT(olreg_string_list_len(NULL), 0);
	CHECK(olreg_string_list_get(NULL, 0) == NULL);
	olreg_string_list_free(NULL);
}

static void test_options(void)
{
	olreg_options *opts = NULL;
	olreg_client *out = SENTINEL;
	olreg_error *err = NULL;

	CHECK_STATUS(olreg_options_new(NULL), OLREG_NULL_ARGUMENT);
	olreg_options_free(NULL);

	/* Every setter with no options object. */
	CHECK_STATUS(olreg_options_set_models_dir(NULL, "/tmp"), OLREG_NULL_ARGUMENT);
	CHECK_STATUS(olreg_options_set_name_mask(NULL, "registry.ollama.ai/library/_:latest"), OLREG_NULL_ARGUMENT);
	CHECK_STATUS(olreg_options_set_key_file(NULL, NULL), OLREG_NULL_ARGUMENT);
	CHECK_STATUS(olreg_options_set_streams(NULL, 4), OLREG_NULL_ARGUMENT);
	CHECK_STATUS(olreg_options_set_chunking(NULL, 1, 1), OLREG_NULL_ARGUMENT);
	CHECK_STATUS(olreg_options_set_upload_chunk_size(NULL, 1 << 20), OLREG_NULL_ARGUMENT);
	CHECK_STATUS(olreg_options_set_user_agent(NULL, "ua"), OLREG_NULL_ARGUMENT);
	CHECK_STATUS(olreg_options_set_timeouts(NULL, 1, 1), OLREG_NULL_ARGUMENT);
	CHECK_STATUS(olreg_options_set_retries(NULL, 1, 1, 1), OLREG_NULL_ARGUMENT);
	CHECK_STATUS(olreg_options_set_proxy(NULL, "http://127.0.0.1:9"), OLREG_NULL_ARGUMENT);
	CHECK_STATUS(olreg_options_add_ca_file(NULL, "/nonexistent.pem"), OLREG_NULL_ARGUMENT);
	CHECK_STATUS(olreg_options_add_ca_pem(NULL, "x", 1), OLREG_NULL_ARGUMENT);
	CHECK_STATUS(olreg_options_set_insecure(NULL, true), OLREG_NULL_ARGUMENT);
	CHECK_STATUS(olreg_options_add_credential(NULL, "h", "u", "p"), OLREG_NULL_ARGUMENT);
	CHECK_STATUS(olreg_options_set_docker_config(NULL, NULL), OLREG_NULL_ARGUMENT);
	CHECK_STATUS(olreg_options_add_mirror(NULL, "http://127.0.0.1:9"), OLREG_NULL_ARGUMENT);
	CHECK_STATUS(olreg_options_set_limits(NULL, 0, 0, 0), OLREG_NULL_ARGUMENT);
	CHECK_STATUS(olreg_options_set_platform(NULL, "linux/amd64"), OLREG_NULL_ARGUMENT);
	CHECK_STATUS(olreg_options_set_log_callback(NULL, NULL, NULL, OLREG_LOG_INFO), OLREG_NULL_ARGUMENT);

	/* Required strings. */
	REQUIRE_OK(olreg_options_new(&opts), err);
	CHECK_STATUS(olreg_options_set_models_dir(opts, NULL), OLREG_NULL_ARGUMENT);
	CHECK_STATUS(olreg_options_set_name_mask(opts, NULL), OLREG_NULL_ARGUMENT);
	CHECK_STATUS(olreg_options_set_user_agent(opts, NULL), OLREG_NULL_ARGUMENT);
	CHECK_STATUS(olreg_options_set_proxy(opts, NULL), OLREG_NULL_ARGUMENT);
	CHECK_STATUS(olreg_options_add_ca_file(opts, NULL), OLREG_NULL_ARGUMENT);
	CHECK_STATUS(olreg_options_add_ca_pem(opts, NULL, 10), OLREG_NULL_ARGUMENT);
	CHECK_STATUS(olreg_options_add_credential(opts, NULL, "u", "p"), OLREG_NULL_ARGUMENT);
	CHECK_STATUS(olreg_options_add_credential(opts, "h", NULL, "p"), OLREG_NULL_ARGUMENT);
	CHECK_STATUS(olreg_options_add_credential(opts, "h", "u", NULL), OLREG_NULL_ARGUMENT);
	CHECK_STATUS(olreg_options_add_mirror(opts, NULL), OLREG_NULL_ARGUMENT);
	CHECK_STATUS(olreg_options_set_platform(opts, NULL), OLREG_NULL_ARGUMENT);

	/* Optional ones: anonymous, no Docker config, logging off. */
	CHECK_STATUS(olreg_options_set_key_file(opts, NULL), OLREG_OK);
	CHECK_STATUS(olreg_options_set_docker_config(opts, NULL), OLREG_OK);
	CHECK_STATUS(olreg_options_set_log_callback(opts, NULL, NULL, OLREG_LOG_DEBUG), OLREG_OK);

	/* Values out of range are olreg_client_new()'s to report (test_options.c). */

	/* A bad mask is caught when the client is made, and nothing is written. */
	REQUIRE_OK(olreg_options_set_models_dir(opts, store), err);
	REQUIRE_OK(olreg_options_set_name_mask(opts, "not a mask!!"), err);
	CHECK_STATUS(olreg_client_new(opts, &out, &err), OLREG_INVALID_NAME);
	CHECK(out == SENTINEL);
	olreg_error_free(err);
	olreg_options_free(opts);
}

int main(void)
{
	store = tmpdir_new();
	/* Where NULL options put the store. */
	setenv("OLLAMA_MODELS", store, 1);
	client = test_client(store, 1);

	RUN(test_cancel_and_client);
	RUN(test_operations);
	RUN(test_optional_arguments);
	RUN(test_accessors);
	RUN(test_options);

	olreg_client_free(client);
	tmpdir_remove(store);
	return harness_finish();
}
