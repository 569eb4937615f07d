package olreg

/*
#include "shim.h"
*/
import "C"

import (
	"fmt"
	"runtime"
	"runtime/cgo"
	"runtime/debug"
)

// Event is the kind of a progress event.
type Event int32

// The events of olreg.h, with the same numbers.
const (
	EventResolved  Event = C.OLREG_EVENT_RESOLVED  // the manifest is known; totals are set (first event)
	EventQueued    Event = C.OLREG_EVENT_QUEUED    // a blob will be transferred
	EventStarted   Event = C.OLREG_EVENT_STARTED   // a blob's transfer began (LayerCompleted: bytes resumed)
	EventBytes     Event = C.OLREG_EVENT_BYTES     // more bytes moved (about ten a second per blob at most)
	EventCached    Event = C.OLREG_EVENT_CACHED    // a blob needed no transfer
	EventVerifying Event = C.OLREG_EVENT_VERIFYING // all of a blob's bytes arrived; hash check finishing
	EventDone      Event = C.OLREG_EVENT_DONE      // a blob is complete
	EventFailed    Event = C.OLREG_EVENT_FAILED    // a blob failed; Message says why
	EventRetrying  Event = C.OLREG_EVENT_RETRYING  // a request will be retried; Message says why
	EventWaiting   Event = C.OLREG_EVENT_WAITING   // another process or thread is downloading the blob
	EventFinished  Event = C.OLREG_EVENT_FINISHED  // the operation finished (last event of a success)
)

var eventNames = map[Event]string{
	EventResolved:  "resolved",
	EventQueued:    "queued",
	EventStarted:   "started",
	EventBytes:     "bytes",
	EventCached:    "cached",
	EventVerifying: "verifying",
	EventDone:      "done",
	EventFailed:    "failed",
	EventRetrying:  "retrying",
	EventWaiting:   "waiting",
	EventFinished:  "finished",
}

// String returns the event's lower-case name ("resolved", "bytes", …).
func (e Event) String() string {
	if name, ok := eventNames[e]; ok {
		return name
	}
	return fmt.Sprintf("Event(%d)", int32(e))
}

// Progress is one progress event, copied from the library's olreg_progress:
// the callback may keep it.
type Progress struct {
	Event     Event
	Index     int    // the blob's position among the operation's blobs (0 for whole-operation events)
	Digest    string // the blob's digest, "" for whole-operation events
	MediaType string // the blob's media type, "" when unknown or not about a blob
	Message   string // why, for EventFailed and EventRetrying

	LayerCompleted int64 // bytes of this blob done (0 when not about a blob)
	LayerTotal     int64 // this blob's size (0 when not about a blob)
	Completed      int64 // bytes of the whole operation done, blobs already present included
	Total          int64 // the operation's total, known from EventResolved on
	LayersDone     int   // blobs finished (done or cached)
	LayersTotal    int   // blobs in the operation, config included
}

// goProgress copies the borrowed C struct. Every field read here exists since
// the first version of olreg_progress; fields are only ever appended.
func goProgress(p *C.olreg_progress) Progress {
	return Progress{
		Event:          Event(p.event),
		Index:          int(p.index),
		Digest:         goStringOrEmpty(p.digest),
		MediaType:      goStringOrEmpty(p.media_type),
		Message:        goStringOrEmpty(p.message),
		LayerCompleted: int64(p.layer_completed),
		LayerTotal:     int64(p.layer_total),
		Completed:      int64(p.completed),
		Total:          int64(p.total),
		LayersDone:     int(p.layers_done),
		LayersTotal:    int(p.layers_total),
	}
}

func goStringOrEmpty(s *C.char) string {
	if s == nil {
		return ""
	}
	return C.GoString(s)
}

// outcome is how a user func ran on its own goroutine.
type outcome struct {
	panicked bool
	goexited bool // it called runtime.Goexit (t.FailNow, t.Fatal, …)
	value    any  // the recovered panic value
	stack    []byte
}

// bad reports whether the func did not return normally.
func (o outcome) bad() bool { return o.panicked || o.goexited }

// isolate runs fn on a new goroutine and waits for it. A panic is recovered
// there, and a runtime.Goexit ends only that goroutine: neither may unwind
// through the library's C frames, which the calling goroutine is between.
func isolate(fn func()) outcome {
	done := make(chan outcome, 1)
	go func() {
		returned := false
		defer func() {
			if returned {
				done <- outcome{}
				return
			}
			if r := recover(); r != nil {
				done <- outcome{panicked: true, value: r, stack: debug.Stack()}
				return
			}
			done <- outcome{goexited: true}
		}()
		fn()
		returned = true
	}()
	return <-done
}

// progressSink is what a call's cgo.Handle refers to: the caller's progress
// func, and how it failed, if it did. Only the calling goroutine (inside the
// library's callback, then after the call) touches it.
type progressSink struct {
	fn     func(Progress)
	failed outcome
}

// newProgressHandle wraps fn for a call; 0 (no callback) when fn is nil.
func newProgressHandle(fn func(Progress)) (*progressSink, C.uintptr_t, func()) {
	if fn == nil {
		return nil, 0, func() {}
	}
	sink := &progressSink{fn: fn}
	h := cgo.NewHandle(sink)
	return sink, C.uintptr_t(h), h.Delete
}

// rethrow repeats on the calling goroutine, after the C call has returned
// and the library has cleaned up, what the progress func did instead of
// returning: a panic (as a *CallbackPanic) or runtime.Goexit.
func (s *progressSink) rethrow() {
	switch {
	case s == nil:
	case s.failed.panicked:
		panic(&CallbackPanic{Value: s.failed.value, Stack: s.failed.stack})
	case s.failed.goexited:
		runtime.Goexit()
	}
}

// CallbackPanic is the value Pull, Push and Verify panic with when their
// progress func panicked: the panic cannot unwind through the library's C
// frames, so the binding recovers it, cancels the call, lets the library
// clean up, and then panics again with this value on the calling goroutine.
// Value is what the progress func panicked with; Stack is where.
type CallbackPanic struct {
	Value any
	Stack []byte
}

func (p *CallbackPanic) Error() string {
	return fmt.Sprintf("olreg: progress func panicked: %v\n\n%s", p.Value, p.Stack)
}

// Unwrap returns Value when it is an error.
func (p *CallbackPanic) Unwrap() error {
	err, _ := p.Value.(error)
	return err
}

//export olregGoProgress
func olregGoProgress(h C.uintptr_t, p *C.olreg_progress) (ret C.int) {
	// Nothing may unwind into C: recover whatever happens here, and cancel.
	defer func() {
		if r := recover(); r != nil {
			ret = 1
		}
	}()
	sink, ok := cgo.Handle(h).Value().(*progressSink)
	if !ok || sink.failed.bad() {
		return 1
	}
	progress := goProgress(p)
	if sink.failed = isolate(func() { sink.fn(progress) }); sink.failed.bad() {
		return 1 // cancels the call
	}
	return 0
}

// logSink holds a client's Logger.
type logSink struct {
	fn func(LogLevel, string)
}

//export olregGoLog
func olregGoLog(h C.uintptr_t, level C.olreg_log_level, msg *C.char) {
	// A Logger that panics or exits its goroutine loses that line; it goes
	// no further.
	defer func() { _ = recover() }()
	sink, ok := cgo.Handle(h).Value().(*logSink)
	if !ok {
		return
	}
	line := C.GoString(msg)
	isolate(func() { sink.fn(LogLevel(level), line) })
}

// LogLevel is the severity of a log line.
type LogLevel int32

// The levels of olreg.h. Options.LogLevel selects the least severe level
// delivered.
const (
	LogError LogLevel = C.OLREG_LOG_ERROR
	LogWarn  LogLevel = C.OLREG_LOG_WARN
	LogInfo  LogLevel = C.OLREG_LOG_INFO
	LogDebug LogLevel = C.OLREG_LOG_DEBUG
)

// String returns "error", "warn", "info" or "debug".
func (l LogLevel) String() string {
	switch l {
	case LogError:
		return "error"
	case LogWarn:
		return "warn"
	case LogInfo:
		return "info"
	case LogDebug:
		return "debug"
	}
	return fmt.Sprintf("LogLevel(%d)", int32(l))
}
