#include "shim.h"
#include "_cgo_export.h"

/* Trampolines: olreg's callback signatures, forwarding to the exported Go
 * functions in callback.go. olreg runs both on the thread that made the
 * call (a goroutine's thread, inside its cgo call), never on its own. */

static int olreg_go_progress_trampoline(void *user_data, const olreg_progress *p) {
    return olregGoProgress((uintptr_t)user_data, (olreg_progress *)p);
}

static void olreg_go_log_trampoline(void *user_data, olreg_log_level level, const char *message) {
    olregGoLog((uintptr_t)user_data, level, (char *)message);
}

olreg_status olreg_go_pull(const olreg_client *client, const char *name,
                           uintptr_t progress, const olreg_cancel *cancel,
                           olreg_manifest **manifest, olreg_error **err) {
    return olreg_pull(client, name, progress ? olreg_go_progress_trampoline : NULL,
                      (void *)progress, cancel, manifest, err);
}

olreg_status olreg_go_push(const olreg_client *client, const char *name,
                           const char *from, uintptr_t progress,
                           const olreg_cancel *cancel, olreg_error **err) {
    return olreg_push(client, name, from, progress ? olreg_go_progress_trampoline : NULL,
                      (void *)progress, cancel, err);
}

olreg_status olreg_go_verify(const olreg_client *client, const char *name,
                             uintptr_t progress, const olreg_cancel *cancel,
                             olreg_string_list **problems, olreg_error **err) {
    return olreg_verify(client, name, progress ? olreg_go_progress_trampoline : NULL,
                        (void *)progress, cancel, problems, err);
}

olreg_status olreg_go_copy(const olreg_client *client, const char *src,
                           const char *dst, uintptr_t progress,
                           const olreg_cancel *cancel, olreg_manifest **manifest,
                           olreg_error **err) {
    return olreg_copy(client, src, dst, progress ? olreg_go_progress_trampoline : NULL,
                      (void *)progress, cancel, manifest, err);
}

olreg_status olreg_go_export(const olreg_client *client, const char *name,
                             const char *dest, uintptr_t progress,
                             const olreg_cancel *cancel, olreg_error **err) {
    return olreg_export(client, name, dest, progress ? olreg_go_progress_trampoline : NULL,
                        (void *)progress, cancel, err);
}

olreg_status olreg_go_import(const olreg_client *client, const char *src,
                             const char *name, const char *reference,
                             uintptr_t progress, const olreg_cancel *cancel,
                             olreg_manifest **manifest, olreg_error **err) {
    return olreg_import(client, src, name, reference,
                        progress ? olreg_go_progress_trampoline : NULL,
                        (void *)progress, cancel, manifest, err);
}

olreg_status olreg_go_set_logger(olreg_options *opts, uintptr_t logger,
                                 olreg_log_level level) {
    return olreg_options_set_log_callback(opts, logger ? olreg_go_log_trampoline : NULL,
                                          (void *)logger, level);
}
