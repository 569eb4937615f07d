package olreg

/*
#include "shim.h"
*/
import "C"

import (
	"fmt"
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

// progressSink is what a call's cgo.Handle refers to: the caller's progress
// func, and the panic it raised, if any. Only the calling goroutine's thread
// touches it (olreg runs callbacks on the calling thread), so it needs no lock.
type progressSink struct {
	fn       func(Progress)
	panicked bool
	value    any // the recovered panic value
	stack    []byte
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

// rethrow re-raises, on the calling goroutine and after the C call has
// returned, a panic that the progress func raised inside the callback.
func (s *progressSink) rethrow() {
	if s != nil && s.panicked {
		panic(&CallbackPanic{Value: s.value, Stack: s.stack})
	}
}

// CallbackPanic is the value Pull, Push and Verify panic with when the
// progress func panicked: the panic cannot unwind through the library's C
// frames, so the binding recovers it, cancels the call, lets the library
// clean up, and then panics again with this value on the calling goroutine.
// Value is what the progress func panicked with; Stack is where.
type CallbackPanic struct {
	Value any
	Stack []byte
}

func (p *CallbackPanic) Error() string {
	return fmt.Sprintf("olreg: progress callback panicked: %v\n\n%s", p.Value, p.Stack)
}

// Unwrap returns Value when it is an error.
func (p *CallbackPanic) Unwrap() error {
	err, _ := p.Value.(error)
	return err
}

//export olregGoProgress
func olregGoProgress(h C.uintptr_t, p *C.olreg_progress) (ret C.int) {
	// Nothing may unwind into C: recover whatever happens, and cancel.
	defer func() {
		if r := recover(); r != nil {
			ret = 1
		}
	}()
	sink, ok := cgo.Handle(h).Value().(*progressSink)
	if !ok || sink.panicked {
		return 1
	}
	return sink.deliver(goProgress(p))
}

func (s *progressSink) deliver(p Progress) (ret C.int) {
	returned := false
	defer func() {
		if returned {
			return
		}
		r := recover()
		if r == nil {
			// runtime.Goexit (t.FailNow, …): it cannot be stopped and will
			// unwind through C; nothing more can be done here.
			return
		}
		s.panicked, s.value, s.stack = true, r, debug.Stack()
		ret = 1
	}()
	s.fn(p)
	returned = true
	return 0
}

// logSink holds a client's Logger.
type logSink struct {
	fn func(LogLevel, string)
}

//export olregGoLog
func olregGoLog(h C.uintptr_t, level C.olreg_log_level, msg *C.char) {
	// A panicking Logger loses that line; the panic goes no further.
	defer func() { _ = recover() }()
	sink, ok := cgo.Handle(h).Value().(*logSink)
	if !ok {
		return
	}
	sink.fn(LogLevel(level), C.GoString(msg))
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
