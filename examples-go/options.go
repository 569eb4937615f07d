package olreg

/*
#include "shim.h"
*/
import "C"

import (
	"fmt"
	"math"
	"strings"
	"time"
	"unsafe"
)

// Options configure a Client. A zero field means the library's default for
// it (olreg.h documents each, at olreg_options_new and the setters; the
// README's configuration table lists them). The library checks every
// option when the Client is opened; a bad one is an *Error naming it.
type Options struct {
	// ModelsDir is the store root (Ollama's layout).
	ModelsDir string
	// NameMask completes short names, e.g. "http://127.0.0.1:5000/library/_:latest".
	NameMask string

	// KeyFile signs requests with this OpenSSH Ed25519 key (it must exist).
	KeyFile string
	// NoKey makes every request anonymous, even if ~/.ollama/id_ed25519
	// exists. It excludes KeyFile.
	NoKey bool

	// Streams is how many requests run in parallel per call.
	Streams int
	// Blobs over ChunkThreshold bytes download in ranged chunks of ChunkSize
	// bytes (at least 1 MiB) over parallel connections.
	ChunkThreshold int64
	ChunkSize      int64
	// UploadChunkSize is the PATCH piece size of upload sessions (at least
	// 1 MiB).
	UploadChunkSize int64

	// RateLimit caps the bytes per second the whole client moves, shared by
	// every stream of every call, pulls and pushes alike (0: the default,
	// $OLREG_LIMIT_RATE such as "50M" if set, else no cap).
	RateLimit int64

	// UserAgent replaces the default (Ollama-shaped) User-Agent.
	UserAgent string

	// ConnectTimeout bounds connecting; StallTimeout bounds how long a
	// connection may deliver nothing before it is abandoned and retried.
	// Millisecond resolution.
	ConnectTimeout time.Duration
	StallTimeout   time.Duration

	// Retries is how many times a failed request is tried again (network
	// errors, 429 and 5xx only); a negative value disables retries.
	Retries int
	// RetryBaseDelay and RetryMaxDelay bound the exponential, jittered
	// backoff.
	RetryBaseDelay time.Duration
	RetryMaxDelay  time.Duration

	// Proxy sends every request through this proxy URL (NO_PROXY still
	// applies). "" honours HTTPS_PROXY, HTTP_PROXY and NO_PROXY.
	Proxy string

	// CAFiles and CAPEM add trusted CA certificates (PEM), besides the
	// system's. Files are read by Open.
	CAFiles []string
	CAPEM   []byte
	// Insecure accepts any TLS certificate from every registry.
	Insecure bool

	// Credentials for Basic and token challenges, per host ("host[:port]").
	Credentials []Credential
	// DockerConfig reads more credentials from this Docker config.json
	// ("" : $DOCKER_CONFIG/config.json or ~/.docker/config.json if present).
	DockerConfig string
	// NoDockerConfig reads no Docker config at all. It excludes DockerConfig.
	NoDockerConfig bool

	// Mirrors are tried before the named registry for pulls: "URL" for every
	// host, or "HOST=URL" for one.
	Mirrors []string

	// Platform picks the entry of an image index or manifest list a pull
	// follows: "os/arch[/variant]" in Go's names, e.g. "linux/arm64"
	// ("": this machine's). A malformed value fails Open.
	Platform string

	// SignedHosts get Ollama's signed per-request token without asking for
	// it, as registry.ollama.ai and ollama.com do ("host[:port]"; none:
	// $OLREG_SIGNED_HOSTS). Other registries get a signature only through
	// their own challenge.
	SignedHosts []string
	// MinSpeed is the least a response body must deliver, in bytes per
	// second averaged over the stall timeout; slower counts as a stall.
	// A negative value turns the rule off.
	MinSpeed int64

	// Limits on what a registry's manifest may claim: its size, one blob's
	// size, the layer count.
	MaxManifestBytes int64
	MaxBlobSize      int64
	MaxLayers        int

	// Logger receives the library's log lines at LogLevel or more severe
	// (LogLevel 0 means LogInfo), during the call that produced them (Open,
	// Pull, …). With concurrent calls it runs concurrently, so it must be
	// safe for concurrent use. Like a progress func it runs on a goroutine of
	// its own; a Logger that panics or calls runtime.Goexit loses that line
	// and nothing else happens.
	Logger   func(level LogLevel, msg string)
	LogLevel LogLevel
}

// Credential is a user name and password for one registry host.
type Credential struct {
	Host     string // "host" or "host:port"
	User     string
	Password string
}

// optionsBuilder fills a C options object and stops at the first value Go
// cannot pass (a negative size, a NUL in a string). The library checks the
// values themselves in olreg_client_new; every setter passes 0 to mean "the
// library's default", as the C setters do.
type optionsBuilder struct {
	o   *C.olreg_options
	err error
}

// check records a setter's failure. Setters only store and fail only on a
// NULL argument, which the builder never passes.
func (b *optionsBuilder) check(what string, st C.olreg_status) {
	if b.err == nil && st != C.OLREG_OK {
		b.err = invalid(Status(st), fmt.Sprintf("option %s: %s", what, Status(st).String()))
	}
}

func (b *optionsBuilder) fail(what, why string) {
	if b.err == nil {
		b.err = invalid(StatusInvalidArgument, fmt.Sprintf("option %s: %s", what, why))
	}
}

// str calls set with s as a C string (NUL-free), freed afterwards.
func (b *optionsBuilder) str(what, s string, set func(*C.char) C.olreg_status) {
	if b.err != nil {
		return
	}
	if strings.IndexByte(s, 0) >= 0 {
		b.fail(what, "contains a NUL byte")
		return
	}
	cs := C.CString(s)
	defer C.free(unsafe.Pointer(cs))
	b.check(what, set(cs))
}

func millis(what string, d time.Duration, b *optionsBuilder) C.uint32_t {
	switch {
	case d < 0:
		b.fail(what, "negative duration")
		return 0
	case d == 0:
		return 0
	case d < time.Millisecond:
		return 1
	case d.Milliseconds() > math.MaxUint32:
		return math.MaxUint32
	}
	return C.uint32_t(d.Milliseconds())
}

func nonNegative(what string, n int64, b *optionsBuilder) C.uint64_t {
	if n < 0 {
		b.fail(what, "negative")
		return 0
	}
	return C.uint64_t(n)
}

// apply writes every non-zero field of opts into b.o; logger is the handle of
// the Logger's sink (0 without one).
func (b *optionsBuilder) apply(opts *Options, logger C.uintptr_t) {
	o := b.o
	if opts.ModelsDir != "" {
		b.str("ModelsDir", opts.ModelsDir, func(s *C.char) C.olreg_status { return C.olreg_options_set_models_dir(o, s) })
	}
	if opts.NameMask != "" {
		b.str("NameMask", opts.NameMask, func(s *C.char) C.olreg_status { return C.olreg_options_set_name_mask(o, s) })
	}
	switch {
	case opts.NoKey && opts.KeyFile != "":
		b.fail("KeyFile", "set together with NoKey")
	case opts.NoKey:
		b.check("NoKey", C.olreg_options_set_key_file(o, nil))
	case opts.KeyFile != "":
		b.str("KeyFile", opts.KeyFile, func(s *C.char) C.olreg_status { return C.olreg_options_set_key_file(o, s) })
	}
	if opts.Streams < 0 || int64(opts.Streams) > math.MaxUint32 {
		b.fail("Streams", "out of range")
	} else if opts.Streams > 0 {
		b.check("Streams", C.olreg_options_set_streams(o, C.uint32_t(opts.Streams)))
	}
	if opts.ChunkThreshold != 0 || opts.ChunkSize != 0 {
		t, s := nonNegative("ChunkThreshold", opts.ChunkThreshold, b), nonNegative("ChunkSize", opts.ChunkSize, b)
		if b.err == nil {
			b.check("ChunkSize", C.olreg_options_set_chunking(o, t, s))
		}
	}
	if opts.RateLimit != 0 {
		r := nonNegative("RateLimit", opts.RateLimit, b)
		if r > 0 {
			b.check("RateLimit", C.olreg_options_set_rate_limit(o, r))
		}
	}
	if opts.UploadChunkSize != 0 {
		s := nonNegative("UploadChunkSize", opts.UploadChunkSize, b)
		if b.err == nil {
			b.check("UploadChunkSize", C.olreg_options_set_upload_chunk_size(o, s))
		}
	}
	if opts.UserAgent != "" {
		b.str("UserAgent", opts.UserAgent, func(s *C.char) C.olreg_status { return C.olreg_options_set_user_agent(o, s) })
	}
	if opts.ConnectTimeout != 0 || opts.StallTimeout != 0 {
		c, s := millis("ConnectTimeout", opts.ConnectTimeout, b), millis("StallTimeout", opts.StallTimeout, b)
		if b.err == nil {
			b.check("timeouts", C.olreg_options_set_timeouts(o, c, s))
		}
	}
	if opts.Retries != 0 || opts.RetryBaseDelay != 0 || opts.RetryMaxDelay != 0 {
		var attempts int64 // 0: the library's default
		switch {
		case opts.Retries < 0:
			attempts = 1
		case opts.Retries > 0:
			attempts = min(int64(opts.Retries)+1, math.MaxUint32)
		}
		bm, mm := millis("RetryBaseDelay", opts.RetryBaseDelay, b), millis("RetryMaxDelay", opts.RetryMaxDelay, b)
		if b.err == nil {
			b.check("Retries", C.olreg_options_set_retries(o, C.uint32_t(attempts), bm, mm))
		}
	}
	if opts.Proxy != "" {
		b.str("Proxy", opts.Proxy, func(s *C.char) C.olreg_status { return C.olreg_options_set_proxy(o, s) })
	}
	for _, f := range opts.CAFiles {
		b.str("CAFiles", f, func(s *C.char) C.olreg_status { return C.olreg_options_add_ca_file(o, s) })
	}
	if len(opts.CAPEM) > 0 && b.err == nil {
		pem := C.CBytes(opts.CAPEM)
		b.check("CAPEM", C.olreg_options_add_ca_pem(o, (*C.char)(pem), C.size_t(len(opts.CAPEM))))
		C.free(pem)
	}
	if opts.Insecure {
		b.check("Insecure", C.olreg_options_set_insecure(o, true))
	}
	for _, cr := range opts.Credentials {
		for _, s := range []string{cr.Host, cr.User, cr.Password} {
			if strings.IndexByte(s, 0) >= 0 {
				b.fail("Credentials", "contains a NUL byte")
			}
		}
		if b.err != nil {
			break
		}
		h, u, p := C.CString(cr.Host), C.CString(cr.User), C.CString(cr.Password)
		b.check("Credentials", C.olreg_options_add_credential(o, h, u, p))
		C.free(unsafe.Pointer(h))
		C.free(unsafe.Pointer(u))
		C.free(unsafe.Pointer(p))
	}
	switch {
	case opts.NoDockerConfig && opts.DockerConfig != "":
		b.fail("DockerConfig", "set together with NoDockerConfig")
	case opts.NoDockerConfig:
		b.check("NoDockerConfig", C.olreg_options_set_docker_config(o, nil))
	case opts.DockerConfig != "":
		b.str("DockerConfig", opts.DockerConfig, func(s *C.char) C.olreg_status { return C.olreg_options_set_docker_config(o, s) })
	}
	for _, m := range opts.Mirrors {
		b.str("Mirrors", m, func(s *C.char) C.olreg_status { return C.olreg_options_add_mirror(o, s) })
	}
	if opts.Platform != "" {
		b.str("Platform", opts.Platform, func(s *C.char) C.olreg_status { return C.olreg_options_set_platform(o, s) })
	}
	for _, h := range opts.SignedHosts {
		b.str("SignedHosts", h, func(s *C.char) C.olreg_status { return C.olreg_options_add_signed_host(o, s) })
	}
	switch {
	case opts.MinSpeed < 0:
		b.check("MinSpeed", C.olreg_options_set_min_speed(o, 0))
	case opts.MinSpeed > 0:
		b.check("MinSpeed", C.olreg_options_set_min_speed(o, C.uint64_t(opts.MinSpeed)))
	}
	if opts.MaxManifestBytes != 0 || opts.MaxBlobSize != 0 || opts.MaxLayers != 0 {
		mb, bs := nonNegative("MaxManifestBytes", opts.MaxManifestBytes, b), nonNegative("MaxBlobSize", opts.MaxBlobSize, b)
		if opts.MaxLayers < 0 || int64(opts.MaxLayers) > math.MaxUint32 {
			b.fail("MaxLayers", "out of range")
		}
		if b.err == nil {
			b.check("limits", C.olreg_options_set_limits(o, mb, bs, C.uint32_t(opts.MaxLayers)))
		}
	}
	if logger != 0 {
		level := opts.LogLevel
		if level == 0 {
			level = LogInfo
		}
		b.check("Logger", C.olreg_go_set_logger(o, logger, C.olreg_log_level(level)))
	}
}
