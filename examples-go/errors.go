package olreg

/*
#include "shim.h"
*/
import "C"

import (
	"context"
	"errors"
	"strings"
)

// Status is one of libolreg's status codes. Its numbers never change.
// A Status is also an error: the Err* sentinels below are Status values, and
// an *Error matches (errors.Is) the sentinel of its Status.
type Status int32

// The statuses of olreg.h, with the same numbers (cgo reads them from the
// header; TestStatusesMatchTheLibrary checks that none is missing).
const (
	StatusOK              Status = C.OLREG_OK
	StatusNullArgument    Status = C.OLREG_NULL_ARGUMENT
	StatusInvalidArgument Status = C.OLREG_INVALID_ARGUMENT
	StatusInvalidName     Status = C.OLREG_INVALID_NAME
	StatusInvalidDigest   Status = C.OLREG_INVALID_DIGEST
	StatusNotFound        Status = C.OLREG_NOT_FOUND
	StatusUnauthorized    Status = C.OLREG_UNAUTHORIZED
	StatusInvalidManifest Status = C.OLREG_INVALID_MANIFEST
	StatusHTTP            Status = C.OLREG_HTTP
	StatusNetwork         Status = C.OLREG_NETWORK
	StatusProtocol        Status = C.OLREG_PROTOCOL
	StatusDigestMismatch  Status = C.OLREG_DIGEST_MISMATCH
	StatusSizeMismatch    Status = C.OLREG_SIZE_MISMATCH
	StatusIO              Status = C.OLREG_IO
	StatusNoSpace         Status = C.OLREG_NO_SPACE
	StatusCancelled       Status = C.OLREG_CANCELLED
	StatusReentrant       Status = C.OLREG_REENTRANT
	StatusPanic           Status = C.OLREG_PANIC
	StatusInternal        Status = C.OLREG_INTERNAL
)

// Sentinel errors, for errors.Is. Every error a Client returns for a failed
// library call is an *Error that matches exactly one of these.
var (
	ErrNullArgument    error = StatusNullArgument
	ErrInvalidArgument error = StatusInvalidArgument
	ErrInvalidName     error = StatusInvalidName
	ErrInvalidDigest   error = StatusInvalidDigest
	ErrNotFound        error = StatusNotFound
	ErrUnauthorized    error = StatusUnauthorized
	ErrInvalidManifest error = StatusInvalidManifest
	ErrHTTP            error = StatusHTTP
	ErrNetwork         error = StatusNetwork
	ErrProtocol        error = StatusProtocol
	ErrDigestMismatch  error = StatusDigestMismatch
	ErrSizeMismatch    error = StatusSizeMismatch
	ErrIO              error = StatusIO
	ErrNoSpace         error = StatusNoSpace
	ErrCancelled       error = StatusCancelled
	ErrReentrant       error = StatusReentrant
	ErrPanic           error = StatusPanic
	ErrInternal        error = StatusInternal
)

// ErrClosed is returned by calls on a closed Client. A call that was running
// when Close cancelled it returns an *Error matching both ErrCancelled and
// ErrClosed.
var ErrClosed = errors.New("olreg: client is closed")

// String is the library's English description of the status
// (olreg_status_str), e.g. "not found".
func (s Status) String() string {
	return C.GoString(C.olreg_status_str(C.olreg_status(s)))
}

// Name is the status's C name (olreg_status_name), e.g. "OLREG_NOT_FOUND",
// or "" for a number the library does not know.
func (s Status) Name() string {
	if name := C.olreg_status_name(C.olreg_status(s)); name != nil {
		return C.GoString(name)
	}
	return ""
}

// Error makes a Status usable as a sentinel error.
func (s Status) Error() string { return "olreg: " + s.String() }

// Error is a failed call: the library's status, message, and (when the
// failure came from a registry's answer) the HTTP status and the registry's
// error code.
//
// errors.Is(err, ErrX) is true when Status is X's status. A call cancelled
// through its context also matches the context's error (context.Canceled or
// context.DeadlineExceeded, and its cause, see context.Cause), and one
// cancelled by Client.Close matches ErrClosed.
type Error struct {
	Status       Status
	Message      string // the full message, naming the model and blob
	HTTPStatus   int    // 0 when the error did not come from an HTTP answer
	RegistryCode string // e.g. "MANIFEST_UNKNOWN"; "" when the registry sent none

	causes []error // why the call was cancelled (context error, ErrClosed)
}

// Error returns "olreg: <message>", followed by the cancellation cause, if
// any.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("olreg: ")
	if e.Message != "" {
		b.WriteString(e.Message)
	} else {
		b.WriteString(e.Status.String())
	}
	if len(e.causes) > 0 {
		b.WriteString(" (")
		b.WriteString(e.causes[0].Error())
		b.WriteString(")")
	}
	return b.String()
}

// Is reports whether target is the sentinel of e's Status.
func (e *Error) Is(target error) bool {
	s, ok := target.(Status)
	return ok && s == e.Status
}

// As lets errors.As(err, &status) extract the Status.
func (e *Error) As(target any) bool {
	if s, ok := target.(*Status); ok {
		*s = e.Status
		return true
	}
	return false
}

// Unwrap returns why a cancelled call was cancelled (the context's error and
// cause, or ErrClosed), or nil.
func (e *Error) Unwrap() []error { return e.causes }

// takeError converts and frees a C error object (which may be NULL, in which
// case the status alone describes the failure).
func takeError(st C.olreg_status, cerr *C.olreg_error) *Error {
	e := &Error{Status: Status(st)}
	if cerr != nil {
		e.Message = C.GoString(C.olreg_error_message(cerr))
		e.HTTPStatus = int(C.olreg_error_http_status(cerr))
		if code := C.olreg_error_registry_code(cerr); code != nil {
			e.RegistryCode = C.GoString(code)
		}
		C.olreg_error_free(cerr)
	}
	return e
}

// contextCauses lists what a cancelled context says about itself:
// ctx.Err(), then context.Cause(ctx) when it differs.
func contextCauses(ctx context.Context) []error {
	err := ctx.Err()
	if err == nil {
		return nil
	}
	causes := []error{err}
	if cause := context.Cause(ctx); cause != nil && cause != err {
		causes = append(causes, cause)
	}
	return causes
}

// invalid makes an error for a bad argument found before calling C.
func invalid(status Status, msg string) *Error {
	return &Error{Status: status, Message: msg}
}
