/*
 * The C side of the Go binding: entry points that take a cgo.Handle as a
 * uintptr_t (so Go never converts an integer to an unsafe.Pointer) and
 * install the trampolines that call back into Go.
 *
 * Declarations only: this header is included by Go files that //export
 * functions, so it must not define anything.
 */
#ifndef OLREG_GO_SHIM_H
#define OLREG_GO_SHIM_H

#include <stdint.h>
#include <stdlib.h>
#include "olreg.h"

/* `progress` is a cgo.Handle of a *progressSink, or 0 for no callback. */
olreg_status olreg_go_pull(const olreg_client *client, const char *name,
                           uintptr_t progress, const olreg_cancel *cancel,
                           olreg_manifest **manifest, olreg_error **err);

olreg_status olreg_go_push(const olreg_client *client, const char *name,
                           const char *from, uintptr_t progress,
                           const olreg_cancel *cancel, olreg_error **err);

olreg_status olreg_go_verify(const olreg_client *client, const char *name,
                             uintptr_t progress, const olreg_cancel *cancel,
                             olreg_string_list **problems, olreg_error **err);

olreg_status olreg_go_copy(const olreg_client *client, const char *src,
                           const char *dst, uintptr_t progress,
                           const olreg_cancel *cancel, olreg_manifest **manifest,
                           olreg_error **err);

olreg_status olreg_go_export(const olreg_client *client, const char *name,
                             const char *dest, uintptr_t progress,
                             const olreg_cancel *cancel, olreg_error **err);

olreg_status olreg_go_import(const olreg_client *client, const char *src,
                             const char *name, const char *reference,
                             uintptr_t progress, const olreg_cancel *cancel,
                             olreg_manifest **manifest, olreg_error **err);

/* `logger` is a cgo.Handle of a *logSink; it must outlive every client
 * made from `opts`. */
olreg_status olreg_go_set_logger(olreg_options *opts, uintptr_t logger,
                                 olreg_log_level level);

#endif
