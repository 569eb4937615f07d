package olreg_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	olreg "github.com/olreg/olreg-go"
)

func TestMain(m *testing.M) {
	// The test registries are local: keep a developer's proxy out of it.
	for _, v := range []string{"HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"} {
		os.Unsetenv(v)
	}
	os.Unsetenv("OLREG_MIRRORS")
	os.Unsetenv("OLREG_SIGNED_HOSTS")
	os.Exit(m.Run())
}

// open makes a client on a fresh store, closed when the test ends.
func open(t *testing.T, opts olreg.Options) (*olreg.Client, string) {
	t.Helper()
	if opts.ModelsDir == "" {
		opts.ModelsDir = t.TempDir()
	}
	if opts.KeyFile == "" {
		opts.NoKey = true
	}
	opts.NoDockerConfig = true
	c, err := olreg.Open(opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return c, opts.ModelsDir
}

// recorder collects progress events (they all arrive on the calling
// goroutine, but tests read them from others too).
type recorder struct {
	mu     sync.Mutex
	events []olreg.Progress
}

func (r *recorder) add(p olreg.Progress) {
	r.mu.Lock()
	r.events = append(r.events, p)
	r.mu.Unlock()
}

func (r *recorder) all() []olreg.Progress {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

func (r *recorder) count(ev olreg.Event) int {
	n := 0
	for _, p := range r.all() {
		if p.Event == ev {
			n++
		}
	}
	return n
}

func checkManifest(t *testing.T, got *olreg.Manifest, want testModel) {
	t.Helper()
	if got == nil {
		t.Fatal("no manifest")
	}
	if got.Digest != want.Digest {
		t.Errorf("digest %s, want %s", got.Digest, want.Digest)
	}
	if string(got.Bytes) != want.Manifest {
		t.Errorf("manifest bytes differ:\n got %s\nwant %s", got.Bytes, want.Manifest)
	}
	if got.TotalSize != want.totalSize() {
		t.Errorf("total size %d, want %d", got.TotalSize, want.totalSize())
	}
	if got.Config != (olreg.Layer{Digest: want.Config.Digest, MediaType: want.Config.MediaType, Size: want.Config.Size}) {
		t.Errorf("config %+v, want %+v", got.Config, want.Config)
	}
	if len(got.Layers) != len(want.Layers) {
		t.Fatalf("%d layers, want %d", len(got.Layers), len(want.Layers))
	}
	for i, l := range want.Layers {
		if got.Layers[i] != (olreg.Layer{Digest: l.Digest, MediaType: l.MediaType, Size: l.Size}) {
			t.Errorf("layer %d: %+v, want %+v", i, got.Layers[i], l)
		}
	}
}

func TestVersion(t *testing.T) {
	v := olreg.Version()
	if len(strings.Split(v, ".")) != 3 {
		t.Fatalf("Version() = %q", v)
	}
}

func TestPullWithProgress(t *testing.T) {
	reg := startRegistry(t, "--model", "library/tiny:latest=1K,64K")
	model := reg.Models[0]
	c, _ := open(t, olreg.Options{})

	var rec recorder
	m, err := c.Pull(context.Background(), reg.Name(model.Name), rec.add)
	if err != nil {
		t.Fatalf("Pull: %v", err)
	}
	checkManifest(t, m, model)

	events := rec.all()
	if len(events) < 2 {
		t.Fatalf("only %d events", len(events))
	}
	first, last := events[0], events[len(events)-1]
	if first.Event != olreg.EventResolved {
		t.Errorf("first event %v, want resolved", first.Event)
	}
	if last.Event != olreg.EventFinished {
		t.Errorf("last event %v, want finished", last.Event)
	}
	total := model.totalSize()
	blobs := len(model.Layers) + 1
	if first.Total != total || first.LayersTotal != blobs {
		t.Errorf("resolved: total %d of %d blobs, want %d of %d", first.Total, first.LayersTotal, total, blobs)
	}
	if last.Completed != total || last.Total != total || last.LayersDone != blobs || last.LayersTotal != blobs {
		t.Errorf("finished: %d/%d bytes, %d/%d blobs; want %d, %d", last.Completed, last.Total, last.LayersDone, last.LayersTotal, total, blobs)
	}
	done := map[string]olreg.Progress{}
	var prev int64
	for _, p := range events {
		if p.Completed < prev {
			t.Errorf("completed went back from %d to %d at %v", prev, p.Completed, p.Event)
		}
		prev = p.Completed
		if p.Event == olreg.EventDone {
			done[p.Digest] = p
		}
	}
	for _, l := range append([]testBlob{model.Config}, model.Layers...) {
		p, ok := done[l.Digest]
		if !ok {
			t.Errorf("no done event for %s", l.Digest)
			continue
		}
		if p.LayerCompleted != l.Size || p.LayerTotal != l.Size || p.MediaType != l.MediaType {
			t.Errorf("done %s: %d/%d %q, want %d %q", l.Digest, p.LayerCompleted, p.LayerTotal, p.MediaType, l.Size, l.MediaType)
		}
	}
	if s := olreg.EventBytes.String(); s != "bytes" {
		t.Errorf("EventBytes.String() = %q", s)
	}

	// Again: nothing to download, every blob is cached.
	var again recorder
	if _, err := c.Pull(context.Background(), reg.Name(model.Name), again.add); err != nil {
		t.Fatalf("second Pull: %v", err)
	}
	if n := again.count(olreg.EventCached); n != blobs {
		t.Errorf("second pull: %d cached events, want %d", n, blobs)
	}
	if n := again.count(olreg.EventStarted); n != 0 {
		t.Errorf("second pull: %d started events", n)
	}
}

func TestResolveStoresNothing(t *testing.T) {
	reg := startRegistry(t, "--model", "library/tiny:latest=1K,64K")
	c, _ := open(t, olreg.Options{})
	m, err := c.Resolve(context.Background(), reg.Name(reg.Models[0].Name))
	if err != nil {
		t.Fatalf("Resolve: %v", err)
	}
	checkManifest(t, m, reg.Models[0])
	names, err := c.List()
	if err != nil || len(names) != 0 {
		t.Fatalf("List after Resolve: %v, %v", names, err)
	}
}

func TestNameMask(t *testing.T) {
	reg := startRegistry(t, "--model", "library/tiny:latest=1K")
	c, _ := open(t, olreg.Options{NameMask: reg.URL + "/library/_:latest"})
	if _, err := c.Pull(context.Background(), "tiny", nil); err != nil {
		t.Fatalf("Pull(tiny) with a mask: %v", err)
	}
	if _, err := c.Show("tiny"); err != nil {
		t.Fatalf("Show(tiny): %v", err)
	}
}

func TestListShowVerifyRemovePrune(t *testing.T) {
	reg := startRegistry(t, "--model", "library/tiny:latest=1K,64K")
	model := reg.Models[0]
	name := reg.Name(model.Name)
	c, _ := open(t, olreg.Options{})
	if _, err := c.Pull(context.Background(), name, nil); err != nil {
		t.Fatalf("Pull: %v", err)
	}

	names, err := c.List()
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	if want := []string{reg.QualifiedName(model.Name)}; !slices.Equal(names, want) {
		t.Errorf("List = %q, want %q", names, want)
	}

	shown, err := c.Show(name)
	if err != nil {
		t.Fatalf("Show: %v", err)
	}
	if remote := reg.Manifest(t, model.Name); !bytes.Equal(shown, remote) {
		t.Errorf("Show:\n%s\nregistry has:\n%s", shown, remote)
	}

	var rec recorder
	problems, err := c.Verify(context.Background(), name, rec.add)
	if err != nil || len(problems) != 0 {
		t.Errorf("Verify(name) = %q, %v", problems, err)
	}
	if len(rec.all()) == 0 {
		t.Errorf("Verify sent no progress")
	}
	if problems, err := c.Verify(context.Background(), "", nil); err != nil || len(problems) != 0 {
		t.Errorf("Verify(store) = %q, %v", problems, err)
	}

	if err := c.Remove(name); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	if names, err := c.List(); err != nil || len(names) != 0 {
		t.Errorf("List after Remove = %q, %v", names, err)
	}
	if _, err := c.Show(name); !errors.Is(err, olreg.ErrNotFound) {
		t.Errorf("Show after Remove: %v, want ErrNotFound", err)
	}
	if err := c.Remove(name); !errors.Is(err, olreg.ErrNotFound) {
		t.Errorf("Remove twice: %v, want ErrNotFound", err)
	}

	report, err := c.Prune()
	if err != nil {
		t.Fatalf("Prune: %v", err)
	}
	if want := (olreg.PruneReport{BlobsRemoved: int64(len(model.Layers) + 1), BytesFreed: model.totalSize()}); report != want {
		t.Errorf("Prune = %+v, want %+v", report, want)
	}
	if report, err := c.Prune(); err != nil || report != (olreg.PruneReport{}) {
		t.Errorf("second Prune = %+v, %v", report, err)
	}
}

func TestVerifyFindsCorruption(t *testing.T) {
	reg := startRegistry(t, "--model", "library/tiny:latest=1K,64K")
	model := reg.Models[0]
	name := reg.Name(model.Name)
	c, dir := open(t, olreg.Options{})
	if _, err := c.Pull(context.Background(), name, nil); err != nil {
		t.Fatalf("Pull: %v", err)
	}
	bad := model.Layers[1].Digest
	path := filepath.Join(dir, "blobs", strings.Replace(bad, ":", "-", 1))
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("corrupt"), 100); err != nil {
		t.Fatal(err)
	}
	f.Close()

	problems, err := c.Verify(context.Background(), name, nil)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if len(problems) != 1 || !strings.HasPrefix(problems[0], bad) || !strings.Contains(problems[0], "corrupt") {
		t.Errorf("Verify = %q, want one corrupt line for %s", problems, bad)
	}
}

func TestPushFromAnotherName(t *testing.T) {
	src := startRegistry(t, "--model", "library/tiny:latest=1K,64K")
	dst := startRegistry(t)
	model := src.Models[0]
	c, _ := open(t, olreg.Options{})
	ctx := context.Background()
	from := src.Name(model.Name)
	if _, err := c.Pull(ctx, from, nil); err != nil {
		t.Fatalf("Pull: %v", err)
	}

	to := dst.Name("myns/copy:v1")
	var rec recorder
	if err := c.Push(ctx, to, from, rec.add); err != nil {
		t.Fatalf("Push: %v", err)
	}
	if got := dst.Manifest(t, "myns/copy:v1"); string(got) != model.Manifest {
		t.Errorf("pushed manifest:\n%s\nwant:\n%s", got, model.Manifest)
	}
	events := rec.all()
	if len(events) == 0 || events[0].Event != olreg.EventResolved || events[len(events)-1].Event != olreg.EventFinished {
		t.Errorf("push events: %v", events)
	} else if last := events[len(events)-1]; last.Completed != model.totalSize() {
		t.Errorf("push finished at %d bytes, want %d", last.Completed, model.totalSize())
	}

	// The destination has every blob now: a second push uploads nothing.
	var again recorder
	if err := c.Push(ctx, dst.Name("myns/copy:v2"), from, again.add); err != nil {
		t.Fatalf("second Push: %v", err)
	}
	if n := again.count(olreg.EventCached); n != len(model.Layers)+1 {
		t.Errorf("second push: %d cached blobs, want %d", n, len(model.Layers)+1)
	}

	// A model that is not in the store.
	err := c.Push(ctx, to, src.Name("library/absent:latest"), nil)
	if !errors.Is(err, olreg.ErrNotFound) {
		t.Errorf("Push of a missing local model: %v, want ErrNotFound", err)
	}
}

func TestNotFound(t *testing.T) {
	reg := startRegistry(t, "--model", "library/tiny:latest=1K")
	c, _ := open(t, olreg.Options{})
	for _, op := range []struct {
		what string
		run  func(name string) error
	}{
		{"Pull", func(name string) error { _, err := c.Pull(context.Background(), name, nil); return err }},
		{"Resolve", func(name string) error { _, err := c.Resolve(context.Background(), name); return err }},
	} {
		err := op.run(reg.Name("library/missing:latest"))
		if !errors.Is(err, olreg.ErrNotFound) {
			t.Fatalf("%s: %v, want ErrNotFound", op.what, err)
		}
		if errors.Is(err, olreg.ErrUnauthorized) || errors.Is(err, context.Canceled) {
			t.Errorf("%s: %v matches other errors", op.what, err)
		}
		var e *olreg.Error
		if !errors.As(err, &e) {
			t.Fatalf("%s: %T is not an *olreg.Error", op.what, err)
		}
		if e.Status != olreg.StatusNotFound || e.HTTPStatus != 404 || e.RegistryCode != "MANIFEST_UNKNOWN" {
			t.Errorf("%s: %+v, want status not found, HTTP 404, MANIFEST_UNKNOWN", op.what, e)
		}
		if !strings.Contains(e.Error(), "missing") {
			t.Errorf("%s: message %q does not name the model", op.what, e.Error())
		}
		var st olreg.Status
		if !errors.As(err, &st) || st != olreg.StatusNotFound {
			t.Errorf("%s: errors.As(&Status) = %v", op.what, st)
		}
	}
}

func TestInvalidName(t *testing.T) {
	reg := startRegistry(t)
	c, _ := open(t, olreg.Options{})
	ctx := context.Background()
	for _, name := range []string{
		reg.URL + "/library/bad name:latest",
		reg.URL + "/../etc:latest",
		"tiny\x00:latest",
		"",
	} {
		_, err := c.Pull(ctx, name, nil)
		if !errors.Is(err, olreg.ErrInvalidName) {
			t.Errorf("Pull(%q): %v, want ErrInvalidName", name, err)
		}
		if _, err := c.Show(name); !errors.Is(err, olreg.ErrInvalidName) {
			t.Errorf("Show(%q): %v, want ErrInvalidName", name, err)
		}
		if err := c.Push(ctx, name, "", nil); !errors.Is(err, olreg.ErrInvalidName) {
			t.Errorf("Push(%q): %v, want ErrInvalidName", name, err)
		}
	}
	if recs := reg.Requests(t); len(recs) != 0 {
		t.Errorf("invalid names made %d requests: %+v", len(recs), recs)
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		opts olreg.Options
		want error
	}{
		{olreg.Options{ModelsDir: dir, NameMask: "no spaces allowed/_:x"}, olreg.ErrInvalidName},
		{olreg.Options{ModelsDir: dir, KeyFile: filepath.Join(dir, "absent")}, olreg.ErrInvalidArgument},
		{olreg.Options{ModelsDir: dir, NoKey: true, KeyFile: "x"}, olreg.ErrInvalidArgument},
		{olreg.Options{ModelsDir: dir, Streams: -1}, olreg.ErrInvalidArgument},
		{olreg.Options{ModelsDir: dir, StallTimeout: -time.Second}, olreg.ErrInvalidArgument},
		{olreg.Options{ModelsDir: "a\x00b"}, olreg.ErrInvalidArgument},
		{olreg.Options{ModelsDir: dir, Mirrors: []string{"::not a url::"}}, olreg.ErrInvalidArgument},
		{olreg.Options{ModelsDir: dir, Platform: "linux"}, olreg.ErrInvalidArgument},
		{olreg.Options{ModelsDir: dir, Platform: "linux/amd64/v8/x"}, olreg.ErrInvalidArgument},
		{olreg.Options{ModelsDir: dir, SignedHosts: []string{"https://x.example/path"}}, olreg.ErrInvalidArgument},
	} {
		c, err := olreg.Open(tc.opts)
		if err == nil {
			c.Close()
		}
		if !errors.Is(err, tc.want) {
			t.Errorf("Open(%+v): %v, want %v", tc.opts, err, tc.want)
		}
	}
}

// TestPlatformPicksTheIndexEntry: a tag that is an OCI image index is
// followed to the entry for Options.Platform, which is stored under the tag.
func TestPlatformPicksTheIndexEntry(t *testing.T) {
	reg := startRegistry(t)
	var entries []map[string]any
	models := map[string]testModel{}
	for _, arch := range []string{"amd64", "arm64"} {
		m := reg.AddModel(t, "ns/m:"+arch, 1000)
		models[arch] = m
		entries = append(entries, map[string]any{
			"mediaType": "application/vnd.docker.distribution.manifest.v2+json",
			"digest":    m.Digest,
			"size":      len(m.Manifest),
			"platform":  map[string]any{"os": "linux", "architecture": arch},
		})
	}
	index, err := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.index.v1+json",
		"manifests":     entries,
	})
	if err != nil {
		t.Fatal(err)
	}
	reg.control(t, "PUT", "manifests/ns/m/v1", json.RawMessage(index))

	c, _ := open(t, olreg.Options{Platform: "linux/arm64"})
	m, err := c.Pull(context.Background(), reg.Name("ns/m:v1"), nil)
	if err != nil {
		t.Fatalf("Pull: %v", err)
	}
	if m.Digest != models["arm64"].Digest {
		t.Errorf("pulled %s, want the arm64 entry %s", m.Digest, models["arm64"].Digest)
	}
	shown, err := c.Show(reg.Name("ns/m:v1"))
	if err != nil || string(shown) != models["arm64"].Manifest {
		t.Errorf("Show: %v, %q", err, shown)
	}

	other, _ := open(t, olreg.Options{Platform: "windows/amd64"})
	_, err = other.Pull(context.Background(), reg.Name("ns/m:v1"), nil)
	if !errors.Is(err, olreg.ErrNotFound) || !strings.Contains(err.Error(), "linux/amd64, linux/arm64") {
		t.Errorf("Pull for windows/amd64: %v, want ErrNotFound listing the platforms", err)
	}
}

// stalled starts a registry whose blob store pauses every blob response
// after 64 KiB for 5 s, with a model whose 2 MiB layer hits that.
func stalled(t *testing.T) (*testRegistry, string) {
	reg := startRegistry(t)
	reg.AddModel(t, "library/slow:latest", 2<<20)
	reg.AddFault(t, map[string]any{
		"target": map[string]any{"blob_store": map[string]any{"digest": nil}},
		"kind":   map[string]any{"stall": map[string]any{"after_bytes": 65536, "millis": 5000}},
		"times":  0,
	})
	return reg, reg.Name("library/slow:latest")
}

func TestCancelThroughContext(t *testing.T) {
	reg, name := stalled(t)
	_ = reg
	c, dir := open(t, olreg.Options{})

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	var cancelledAt time.Time
	var once sync.Once
	start := time.Now()
	_, err := c.Pull(ctx, name, func(p olreg.Progress) {
		// Cancel once bytes flow (and the stall holds the rest back).
		if p.Event == olreg.EventBytes || p.Event == olreg.EventStarted {
			once.Do(func() {
				time.AfterFunc(200*time.Millisecond, func() {
					mu.Lock()
					cancelledAt = time.Now()
					mu.Unlock()
					cancel()
				})
			})
		}
	})
	returned := time.Now()
	mu.Lock()
	defer mu.Unlock()
	if !errors.Is(err, olreg.ErrCancelled) || !errors.Is(err, context.Canceled) {
		t.Fatalf("Pull: %v, want ErrCancelled and context.Canceled", err)
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, olreg.ErrClosed) {
		t.Errorf("Pull: %v matches the wrong cause", err)
	}
	if cancelledAt.IsZero() {
		t.Fatalf("returned after %v without cancelling", returned.Sub(start))
	}
	t.Logf("returned %v after the cancel", returned.Sub(cancelledAt))
	if d := returned.Sub(cancelledAt); d > time.Second {
		t.Errorf("returned %v after the cancel", d)
	}
	// Nothing half-done is in the store's namespace.
	if names, err := c.List(); err != nil || len(names) != 0 {
		t.Errorf("List after a cancelled pull: %q, %v", names, err)
	}
	entries, _ := os.ReadDir(filepath.Join(dir, "blobs"))
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "sha256-") && len(e.Name()) == len("sha256-")+64 {
			info, _ := e.Info()
			if info != nil && info.Size() == 2<<20 {
				t.Errorf("the stalled layer %s is complete after a cancel", e.Name())
			}
		}
	}
}

func TestCancelThroughDeadline(t *testing.T) {
	_, name := stalled(t)
	c, _ := open(t, olreg.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.Pull(ctx, name, nil)
	if !errors.Is(err, olreg.ErrCancelled) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Pull: %v, want ErrCancelled and context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 1500*time.Millisecond {
		t.Errorf("Pull took %v with a 500ms deadline", d)
	}
	// A cause given to the context is reachable as well.
	why := errors.New("shutting down")
	ctx2, cancel2 := context.WithCancelCause(context.Background())
	cancel2(why)
	_, err = c.Pull(ctx2, name, nil)
	if !errors.Is(err, olreg.ErrCancelled) || !errors.Is(err, context.Canceled) || !errors.Is(err, why) {
		t.Errorf("Pull with a cancelled context: %v", err)
	}
}

func TestProgressPanic(t *testing.T) {
	reg := startRegistry(t, "--model", "library/tiny:latest=1K,64K")
	name := reg.Name(reg.Models[0].Name)
	c, _ := open(t, olreg.Options{})

	var calls int
	recovered := func() (r any) {
		defer func() { r = recover() }()
		_, _ = c.Pull(context.Background(), name, func(p olreg.Progress) {
			calls++
			panic("boom at " + p.Event.String())
		})
		return nil
	}()
	cp, ok := recovered.(*olreg.CallbackPanic)
	if !ok {
		t.Fatalf("recovered %T %v, want *olreg.CallbackPanic", recovered, recovered)
	}
	if cp.Value != "boom at resolved" || !strings.Contains(string(cp.Stack), "TestProgressPanic") {
		t.Errorf("panic value %v, stack:\n%s", cp.Value, cp.Stack)
	}
	if calls != 1 {
		t.Errorf("the progress func ran %d times after panicking", calls)
	}
	// The call was cancelled before linking anything, and the client works.
	if names, err := c.List(); err != nil || len(names) != 0 {
		t.Errorf("List = %q, %v", names, err)
	}
	if _, err := c.Pull(context.Background(), name, func(olreg.Progress) {}); err != nil {
		t.Fatalf("Pull after a panic: %v", err)
	}
	// Verify and Push report the same way; an error value stays reachable.
	boom := errors.New("boom")
	recovered = func() (r any) {
		defer func() { r = recover() }()
		_, _ = c.Verify(context.Background(), name, func(olreg.Progress) { panic(boom) })
		return nil
	}()
	if err, ok := recovered.(error); !ok || !errors.Is(err, boom) {
		t.Errorf("Verify: recovered %v, want a *CallbackPanic wrapping boom", recovered)
	}
}

func TestProgressGoexit(t *testing.T) {
	reg := startRegistry(t, "--model", "library/tiny:latest=1K,64K")
	name := reg.Name(reg.Models[0].Name)
	c, _ := open(t, olreg.Options{})

	// What t.FailNow inside a progress func does: the call is cancelled,
	// then the calling goroutine exits (running its deferred calls).
	returned := make(chan bool)
	go func() {
		finished := false
		defer func() { returned <- finished }()
		_, _ = c.Pull(context.Background(), name, func(olreg.Progress) { runtime.Goexit() })
		finished = true
	}()
	if <-returned {
		t.Fatal("Pull returned normally after its progress func called runtime.Goexit")
	}
	if names, err := c.List(); err != nil || len(names) != 0 {
		t.Errorf("List = %q, %v", names, err)
	}
	if _, err := c.Pull(context.Background(), name, nil); err != nil {
		t.Fatalf("Pull after a Goexit: %v", err)
	}
}

func TestCallsFromProgressFunc(t *testing.T) {
	reg := startRegistry(t, "--model", "library/tiny:latest=1K", "--model", "library/other:latest=2K")
	c, _ := open(t, olreg.Options{})
	ctx := context.Background()
	var listed []string
	var resolved *olreg.Manifest
	var inner []error
	_, err := c.Pull(ctx, reg.Name(reg.Models[0].Name), func(p olreg.Progress) {
		if p.Event == olreg.EventResolved {
			var err1, err2, err3 error
			listed, err1 = c.List()
			resolved, err2 = c.Resolve(ctx, reg.Name(reg.Models[1].Name))
			_, err3 = c.Pull(ctx, reg.Name(reg.Models[1].Name), func(olreg.Progress) {})
			inner = append(inner, err1, err2, err3)
		}
	})
	if err != nil {
		t.Fatalf("Pull: %v", err)
	}
	if err := errors.Join(inner...); err != nil || len(inner) != 3 {
		t.Fatalf("calls inside a progress func: %v", err)
	}
	if len(listed) != 0 {
		t.Errorf("List inside the first pull's progress func = %q", listed)
	}
	checkManifest(t, resolved, reg.Models[1])
	if names, err := c.List(); err != nil || len(names) != 2 {
		t.Errorf("List = %q, %v", names, err)
	}
}

func TestConcurrentPulls(t *testing.T) {
	var args []string
	for i := range 4 {
		args = append(args, "--model", fmt.Sprintf("library/m%d:latest=32K,200K", i))
	}
	reg := startRegistry(t, args...)
	var lines sync.Mutex
	logged := 0
	c, _ := open(t, olreg.Options{Streams: 4, Logger: func(level olreg.LogLevel, msg string) {
		lines.Lock()
		logged++
		lines.Unlock()
	}, LogLevel: olreg.LogDebug})

	const workers = 8
	var wg sync.WaitGroup
	errs := make([]error, workers)
	got := make([]*olreg.Manifest, workers)
	for i := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			model := reg.Models[i%len(reg.Models)]
			var rec recorder
			got[i], errs[i] = c.Pull(context.Background(), reg.Name(model.Name), rec.add)
			if errs[i] == nil {
				if ev := rec.all(); ev[len(ev)-1].Event != olreg.EventFinished {
					errs[i] = fmt.Errorf("last event %v", ev[len(ev)-1].Event)
				}
			}
		}()
	}
	wg.Wait()
	for i := range workers {
		if errs[i] != nil {
			t.Errorf("pull %d: %v", i, errs[i])
			continue
		}
		checkManifest(t, got[i], reg.Models[i%len(reg.Models)])
	}
	names, err := c.List()
	if err != nil || len(names) != len(reg.Models) {
		t.Errorf("List = %q, %v", names, err)
	}
	if problems, err := c.Verify(context.Background(), "", nil); err != nil || len(problems) != 0 {
		t.Errorf("Verify = %q, %v", problems, err)
	}
	lines.Lock()
	defer lines.Unlock()
	if logged == 0 {
		t.Errorf("no debug log lines")
	}
}

func TestLogger(t *testing.T) {
	reg := startRegistry(t, "--model", "library/tiny:latest=1K")
	var mu sync.Mutex
	var lines []string
	c, _ := open(t, olreg.Options{LogLevel: olreg.LogDebug, Logger: func(level olreg.LogLevel, msg string) {
		mu.Lock()
		lines = append(lines, level.String()+": "+msg)
		mu.Unlock()
		if strings.Contains(msg, "/manifests/") {
			panic("a panicking logger loses its line, nothing more")
		}
	}})
	if _, err := c.Pull(context.Background(), reg.Name(reg.Models[0].Name), nil); err != nil {
		t.Fatalf("Pull: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	text := strings.Join(lines, "\n")
	if !strings.Contains(text, "info: store ") || !strings.Contains(text, "debug: GET ") {
		t.Errorf("log lines:\n%s", text)
	}
}

// closePromptly closes c, which has calls running: they are cancelled, so
// Close returns within a couple of seconds.
func closePromptly(t *testing.T, c *olreg.Client) {
	t.Helper()
	start := time.Now()
	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Close took %v", d)
	}
}

func TestClose(t *testing.T) {
	_, name := stalled(t)
	c, err := olreg.Open(olreg.Options{ModelsDir: t.TempDir(), NoKey: true, NoDockerConfig: true})
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	var once sync.Once
	result := make(chan error, 1)
	go func() {
		_, err := c.Pull(context.Background(), name, func(p olreg.Progress) {
			if p.Event == olreg.EventStarted {
				once.Do(func() { close(started) })
			}
		})
		result <- err
	}()
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("the pull never started")
	}
	time.Sleep(100 * time.Millisecond)
	closePromptly(t, c)
	err = <-result
	if !errors.Is(err, olreg.ErrCancelled) || !errors.Is(err, olreg.ErrClosed) {
		t.Errorf("Pull running during Close: %v, want ErrCancelled and ErrClosed", err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := c.List(); !errors.Is(err, olreg.ErrClosed) {
		t.Errorf("List after Close: %v, want ErrClosed", err)
	}
	if _, err := c.Pull(context.Background(), name, nil); !errors.Is(err, olreg.ErrClosed) {
		t.Errorf("Pull after Close: %v, want ErrClosed", err)
	}
}

// Close while calls keep starting on other goroutines: every call returns
// or fails with ErrClosed (running ones with ErrCancelled too), nothing
// crashes or races, and the library, not the binding, waits for the calls.
func TestCloseWhileCallsStart(t *testing.T) {
	_, name := stalled(t)
	c, err := olreg.Open(olreg.Options{ModelsDir: t.TempDir(), NoKey: true, NoDockerConfig: true})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	unexpected := make(chan error, 16)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				var err error
				if i%2 == 0 {
					_, err = c.List()
				} else {
					_, err = c.Pull(context.Background(), name, nil)
				}
				if err != nil {
					if !errors.Is(err, olreg.ErrClosed) {
						unexpected <- err
					}
					return
				}
			}
		}()
	}
	time.Sleep(200 * time.Millisecond)
	closePromptly(t, c)
	wg.Wait()
	close(unexpected)
	for err := range unexpected {
		t.Errorf("a call during Close: %v, want ErrClosed", err)
	}
}

func TestUnclosedClientIsCollected(t *testing.T) {
	for range 10 {
		if _, err := olreg.Open(olreg.Options{ModelsDir: t.TempDir(), NoKey: true, NoDockerConfig: true,
			Logger: func(olreg.LogLevel, string) {}}); err != nil {
			t.Fatal(err)
		}
	}
	for range 3 {
		runtime.GC()
		time.Sleep(20 * time.Millisecond)
	}
}

func TestTLSWithCAPEM(t *testing.T) {
	reg := startRegistry(t, "--tls", "--model", "library/tiny:latest=1K")
	if reg.CAPEM == nil || !strings.HasPrefix(reg.URL, "https://") {
		t.Fatalf("not a TLS registry: %s", reg.URL)
	}
	name := reg.Name(reg.Models[0].Name)
	c, _ := open(t, olreg.Options{CAPEM: []byte(*reg.CAPEM)})
	if _, err := c.Pull(context.Background(), name, nil); err != nil {
		t.Fatalf("Pull with the registry's CA: %v", err)
	}
	untrusting, _ := open(t, olreg.Options{Retries: -1})
	if _, err := untrusting.Resolve(context.Background(), name); !errors.Is(err, olreg.ErrNetwork) {
		t.Errorf("Resolve without the CA: %v, want ErrNetwork", err)
	}
	insecure, _ := open(t, olreg.Options{Insecure: true})
	if _, err := insecure.Resolve(context.Background(), name); err != nil {
		t.Errorf("Resolve with Insecure: %v", err)
	}
}

func TestBasicAuthCredentials(t *testing.T) {
	reg := startRegistry(t, "--auth", "basic:alice:s3cret", "--model", "library/tiny:latest=1K")
	name := reg.Name(reg.Models[0].Name)
	anonymous, _ := open(t, olreg.Options{})
	_, err := anonymous.Resolve(context.Background(), name)
	var e *olreg.Error
	if !errors.Is(err, olreg.ErrUnauthorized) || !errors.As(err, &e) || e.HTTPStatus != 401 {
		t.Errorf("Resolve without credentials: %v, want ErrUnauthorized with HTTP 401", err)
	}
	c, _ := open(t, olreg.Options{Credentials: []olreg.Credential{{Host: reg.Host, User: "alice", Password: "s3cret"}}})
	if _, err := c.Pull(context.Background(), name, nil); err != nil {
		t.Fatalf("Pull with credentials: %v", err)
	}
}

// RateLimit caps the whole client: 2 MiB at 1 MiB/s take over a second and
// a half (the budget starts with an eighth of a second saved).
func TestRateLimit(t *testing.T) {
	reg := startRegistry(t, "--model", "library/capped:latest=1M,1M")
	model := reg.Models[0]
	c, _ := open(t, olreg.Options{RateLimit: 1 << 20})
	started := time.Now()
	m, err := c.Pull(context.Background(), reg.Name(model.Name), nil)
	if err != nil {
		t.Fatalf("Pull: %v", err)
	}
	checkManifest(t, m, model)
	least := time.Duration(float64(model.totalSize()-(1<<17)) / float64(1<<20) * float64(time.Second))
	if took := time.Since(started); took < least {
		t.Errorf("%d bytes pulled in %v under a 1 MiB/s cap (at least %v)", model.totalSize(), took, least)
	}
	if _, err := olreg.Open(olreg.Options{RateLimit: -1}); err == nil {
		t.Errorf("a negative RateLimit is refused")
	}
}
