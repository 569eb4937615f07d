// Package olreg pulls and pushes Ollama models (a manifest plus
// content-addressed blobs) between registries and Ollama's on-disk model
// store. It is a cgo binding of libolreg's C ABI (olreg.h).
//
// A Client is safe for concurrent use by any number of goroutines. Blocking
// calls (Pull, Push, Resolve, Verify, Copy, Export, Import) take a
// context.Context: cancelling it makes the call return promptly with an
// *Error that matches both ErrCancelled and the context's error (errors.Is).
//
// Progress funcs are called synchronously: one event at a time, each before
// the next, all before the call returns, so they need no locks for state the
// caller reads afterwards. Each runs on a goroutine of its own while the
// calling goroutine waits inside the library's callback (a panic or a
// runtime.Goexit must not unwind through C frames). They should return
// quickly. If one panics, the binding recovers, cancels the call, waits for
// the library to return and clean up, then panics again on the calling
// goroutine with a *CallbackPanic. If one calls runtime.Goexit (t.FailNow,
// t.Fatal in a test), the call is cancelled the same way and the calling
// goroutine then exits with runtime.Goexit. A progress func may call the
// Client's other methods, but not Close.
//
// The package checks when it is loaded that the libolreg it is linked with
// has the ABI it was written for; if not, Open returns an *ABIError.
package olreg

/*
#include "shim.h"
*/
import "C"

import (
	"context"
	"encoding/json"
	"runtime"
	"runtime/cgo"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"
)

// Version is the version of the loaded libolreg, "MAJOR.MINOR.PATCH".
func Version() string { return C.GoString(C.olreg_version()) }

// Client is a handle on one model store and its settings. Create it with
// Open and release it with Close.
type Client struct {
	res    *resources
	closed atomic.Bool
}

// resources are the library's client and the Logger's handle. The library
// client is freed by the garbage collector once the Client is unreachable
// (no call can then be using it); Close only closes it.
type resources struct {
	ptr        *C.olreg_client
	logger     cgo.Handle
	loggerGone sync.Once
}

// releaseLogger deletes the Logger's handle, once the library can no longer
// call it (the client is closed).
func (r *resources) releaseLogger() {
	r.loggerGone.Do(func() {
		if r.logger != 0 {
			r.logger.Delete()
		}
	})
}

// free frees the library's client (closing it first, if Close was not
// called) and the Logger's handle.
func (r *resources) free() {
	C.olreg_client_free(r.ptr)
	r.releaseLogger()
}

// Open creates a Client from opts: loads the key and credentials, checks the
// options and starts the library's worker threads. The Logger, if any, may
// run during Open. A bad option is an *Error naming it.
func Open(opts Options) (*Client, error) {
	if abiErr != nil {
		return nil, abiErr
	}
	var o *C.olreg_options
	if st := C.olreg_options_new(&o); st != C.OLREG_OK {
		return nil, takeError(st, nil)
	}
	defer C.olreg_options_free(o)

	res := &resources{}
	if opts.Logger != nil {
		res.logger = cgo.NewHandle(&logSink{fn: opts.Logger})
	}
	b := optionsBuilder{o: o}
	b.apply(&opts, C.uintptr_t(res.logger))
	if b.err != nil {
		res.releaseLogger()
		return nil, b.err
	}
	var cerr *C.olreg_error
	if st := C.olreg_client_new(o, &res.ptr, &cerr); st != C.OLREG_OK {
		res.releaseLogger()
		return nil, takeError(st, cerr)
	}
	c := &Client{res: res}
	runtime.AddCleanup(c, (*resources).free, res)
	return c, nil
}

// Close cancels the calls still running on c (they return an *Error matching
// ErrCancelled and ErrClosed), waits for them to return, and stops the
// library's worker threads for c. Later calls return ErrClosed; Close itself
// may be called again and returns nil. It must not be called from a
// progress func or a Logger.
func (c *Client) Close() error {
	if c.closed.Swap(true) {
		return nil
	}
	// The library cancels the calls in progress and waits for them; calls
	// that start meanwhile are refused. The handle stays valid until the
	// garbage collector frees it, so no call can use a freed client.
	C.olreg_client_close(c.res.ptr)
	c.res.releaseLogger()
	return nil
}

// Version is the package-level Version, for convenience.
func (c *Client) Version() string { return Version() }

// call is one library call in flight: its cancel token, tied to the context.
type call struct {
	c      *Client
	ctx    context.Context
	ptr    *C.olreg_client
	tok    *C.olreg_cancel
	stop   func() bool   // detaches the context watcher
	ranOut chan struct{} // closed once the watcher has cancelled
}

// begin starts a call. It fails if ctx is already done or c is closed.
func (c *Client) begin(ctx context.Context) (*call, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	if ctx.Err() != nil {
		return nil, &Error{Status: StatusCancelled, Message: "cancelled before the call started", causes: contextCauses(ctx)}
	}
	if c.closed.Load() {
		return nil, ErrClosed
	}
	var tok *C.olreg_cancel
	if st := C.olreg_cancel_new(&tok); st != C.OLREG_OK {
		return nil, takeError(st, nil)
	}
	cl := &call{c: c, ctx: ctx, ptr: c.res.ptr, tok: tok, ranOut: make(chan struct{})}
	// A goroutine waits on ctx.Done() and cancels the token; it is started
	// only if and when the context is done.
	cl.stop = context.AfterFunc(ctx, func() {
		defer close(cl.ranOut)
		C.olreg_cancel_cancel(tok)
	})
	return cl, nil
}

// end detaches the context and frees the token.
func (cl *call) end() {
	if !cl.stop() {
		<-cl.ranOut // the watcher started: let it finish with the token
	}
	C.olreg_cancel_free(cl.tok)
	// The Client, whose cleanup frees the library's client, stays reachable
	// until the call has returned.
	runtime.KeepAlive(cl.c)
}

// fail converts a failed status; a cancelled call learns why it was cancelled.
func (cl *call) fail(st C.olreg_status, cerr *C.olreg_error) error {
	e := takeError(st, cerr)
	if e.Status == StatusCancelled {
		e.causes = contextCauses(cl.ctx)
		if e.causes == nil && cl.c.closed.Load() {
			e.causes = []error{ErrClosed}
		}
	}
	return e
}

// cName converts a model name for C; an embedded NUL is an invalid name.
func cName(name string) (*C.char, error) {
	if strings.IndexByte(name, 0) >= 0 {
		return nil, invalid(StatusInvalidName, "invalid name "+quote(name)+": contains a NUL byte")
	}
	return C.CString(name), nil
}

func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func free(s *C.char) { C.free(unsafe.Pointer(s)) }

// Pull downloads name's manifest and every blob the store lacks, then links
// the manifest, and returns it. progress (may be nil) receives every event:
// EventResolved first, EventFinished last on success. Whatever the outcome,
// the store holds only complete blobs; bytes downloaded are kept for the next
// pull.
func (c *Client) Pull(ctx context.Context, name string, progress func(Progress)) (*Manifest, error) {
	cname, err := cName(name)
	if err != nil {
		return nil, err
	}
	defer free(cname)
	cl, err := c.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer cl.end()
	sink, h, release := newProgressHandle(progress)
	defer release()

	var m *C.olreg_manifest
	var cerr *C.olreg_error
	st := C.olreg_go_pull(cl.ptr, cname, h, cl.tok, &m, &cerr)
	var out *Manifest
	if st == C.OLREG_OK {
		out = takeManifest(m)
	}
	sink.rethrow()
	if st != C.OLREG_OK {
		return nil, cl.fail(st, cerr)
	}
	return out, nil
}

// Push uploads the local model from ("" means name itself) as name: it checks
// that every blob is present with its size first (making no request
// otherwise), uploads what the registry lacks, then puts the manifest's exact
// bytes. progress works as for Pull.
func (c *Client) Push(ctx context.Context, name, from string, progress func(Progress)) error {
	cname, err := cName(name)
	if err != nil {
		return err
	}
	defer free(cname)
	var cfrom *C.char
	if from != "" {
		if cfrom, err = cName(from); err != nil {
			return err
		}
		defer free(cfrom)
	}
	cl, err := c.begin(ctx)
	if err != nil {
		return err
	}
	defer cl.end()
	sink, h, release := newProgressHandle(progress)
	defer release()

	var cerr *C.olreg_error
	st := C.olreg_go_push(cl.ptr, cname, cfrom, h, cl.tok, &cerr)
	sink.rethrow()
	if st != C.OLREG_OK {
		return cl.fail(st, cerr)
	}
	return nil
}

// Resolve fetches name's manifest from its registry (or a mirror) without
// storing anything.
func (c *Client) Resolve(ctx context.Context, name string) (*Manifest, error) {
	cname, err := cName(name)
	if err != nil {
		return nil, err
	}
	defer free(cname)
	cl, err := c.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer cl.end()

	var m *C.olreg_manifest
	var cerr *C.olreg_error
	if st := C.olreg_resolve(cl.ptr, cname, cl.tok, &m, &cerr); st != C.OLREG_OK {
		return nil, cl.fail(st, cerr)
	}
	return takeManifest(m), nil
}

// List returns the local models, fully qualified ("host/namespace/model:tag"),
// sorted.
func (c *Client) List() ([]string, error) {
	cl, err := c.begin(context.Background())
	if err != nil {
		return nil, err
	}
	defer cl.end()
	var list *C.olreg_string_list
	var cerr *C.olreg_error
	if st := C.olreg_list(cl.ptr, &list, &cerr); st != C.OLREG_OK {
		return nil, cl.fail(st, cerr)
	}
	return takeStrings(list), nil
}

// Show returns name's local manifest, byte for byte as stored.
func (c *Client) Show(name string) ([]byte, error) {
	cname, err := cName(name)
	if err != nil {
		return nil, err
	}
	defer free(cname)
	cl, err := c.begin(context.Background())
	if err != nil {
		return nil, err
	}
	defer cl.end()
	var buf *C.char
	var n C.size_t
	var cerr *C.olreg_error
	if st := C.olreg_show(cl.ptr, cname, &buf, &n, &cerr); st != C.OLREG_OK {
		return nil, cl.fail(st, cerr)
	}
	defer C.olreg_string_free(buf)
	return goBytes(buf, n), nil
}

// Remove removes name from the store. Its blobs stay until Prune.
func (c *Client) Remove(name string) error {
	cname, err := cName(name)
	if err != nil {
		return err
	}
	defer free(cname)
	cl, err := c.begin(context.Background())
	if err != nil {
		return err
	}
	defer cl.end()
	var cerr *C.olreg_error
	if st := C.olreg_remove(cl.ptr, cname, &cerr); st != C.OLREG_OK {
		return cl.fail(st, cerr)
	}
	return nil
}

// PruneReport says what Prune deleted.
type PruneReport struct {
	BlobsRemoved int64
	BytesFreed   int64
}

// Prune deletes blobs that no manifest and no running pull or push needs, and
// abandoned partial downloads. Files olreg does not recognise stay.
func (c *Client) Prune() (PruneReport, error) {
	cl, err := c.begin(context.Background())
	if err != nil {
		return PruneReport{}, err
	}
	defer cl.end()
	var blobs, bytes C.uint64_t
	var cerr *C.olreg_error
	if st := C.olreg_prune(cl.ptr, &blobs, &bytes, &cerr); st != C.OLREG_OK {
		return PruneReport{}, cl.fail(st, cerr)
	}
	return PruneReport{BlobsRemoved: int64(blobs), BytesFreed: int64(bytes)}, nil
}

// Verify re-hashes name's blobs (config included), or every blob in the
// store when name is "". It returns one line per bad blob
// ("sha256:<hex>: corrupt: …", "… missing", "… wrong size: …"), none when all
// is well; problems are not an error. progress works as for Pull.
func (c *Client) Verify(ctx context.Context, name string, progress func(Progress)) ([]string, error) {
	var cname *C.char
	if name != "" {
		var err error
		if cname, err = cName(name); err != nil {
			return nil, err
		}
		defer free(cname)
	}
	cl, err := c.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer cl.end()
	sink, h, release := newProgressHandle(progress)
	defer release()

	var list *C.olreg_string_list
	var cerr *C.olreg_error
	st := C.olreg_go_verify(cl.ptr, cname, h, cl.tok, &list, &cerr)
	var problems []string
	if st == C.OLREG_OK {
		problems = takeStrings(list)
	}
	sink.rethrow()
	if st != C.OLREG_OK {
		return nil, cl.fail(st, cerr)
	}
	return problems, nil
}

// takeStrings copies and frees a string list.
func takeStrings(list *C.olreg_string_list) []string {
	defer C.olreg_string_list_free(list)
	n := int(C.olreg_string_list_len(list))
	out := make([]string, 0, n)
	for i := 0; i < n; i++ {
		out = append(out, C.GoString(C.olreg_string_list_get(list, C.size_t(i))))
	}
	return out
}

// goBytes copies n bytes at p (which may exceed what C.GoBytes's int allows).
func goBytes(p *C.char, n C.size_t) []byte {
	if p == nil || n == 0 {
		return []byte{}
	}
	return append([]byte(nil), unsafe.Slice((*byte)(unsafe.Pointer(p)), int(n))...)
}
