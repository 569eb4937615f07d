/* The smallest useful olreg program: pull one model, show progress. */
#include <inttypes.h>
#include <stdio.h>

#include <olreg.h>

/* Runs on the calling thread; return non-zero to cancel the pull. */
static int on_progress(void *user_data, const olreg_progress *p)
{
	(void)user_data;
	if (p->event == OLREG_EVENT_BYTES || p->event == OLREG_EVENT_DONE ||
	    p->event == OLREG_EVENT_CACHED)
		fprintf(stderr, "\r%" PRIu64 "/%" PRIu64 " bytes, %u/%u blobs",
			p->completed, p->total, p->layers_done, p->layers_total);
	return 0;
}

int main(int argc, char **argv)
{
	olreg_options *opts = NULL;
	olreg_client *client = NULL;
	olreg_error *err = NULL;
	olreg_status status;

	if (argc != 2) {
		fprintf(stderr, "usage: %s NAME\n", argv[0]);
		return 2;
	}
	/* Defaults: $OLLAMA_MODELS or ~/.ollama/models, ~/.ollama/id_ed25519. */
	status = olreg_options_new(&opts);
	if (status == OLREG_OK)
		status = olreg_client_new(opts, &client, &err);
	olreg_options_free(opts);	/* the client copied what it needs */
	if (status == OLREG_OK)
		status = olreg_pull(client, argv[1], on_progress, NULL, NULL, NULL, &err);
	fputc('\n', stderr);

	if (status != OLREG_OK) {
		/* err is NULL only if olreg had no memory for it. */
		fprintf(stderr, "pull: %s (%s, HTTP %u, registry code %s)\n",
			err ? olreg_error_message(err) : "", olreg_status_str(status),
			olreg_error_http_status(err),
			olreg_error_registry_code(err) ? olreg_error_registry_code(err) : "none");
	}
	olreg_error_free(err);
	olreg_client_free(client);
	return status == OLREG_OK ? 0 : 1;
}
