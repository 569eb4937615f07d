package olreg_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testRegistry is one `olreg-testreg serve` process.
type testRegistry struct {
	URL          string      `json:"url"`  // http://127.0.0.1:PORT
	Host         string      `json:"host"` // 127.0.0.1:PORT
	BlobStoreURL string      `json:"blob_store_url"`
	CAPEM        *string     `json:"ca_pem"`
	Models       []testModel `json:"models"`
}

type testModel struct {
	Name     string   `json:"name"` // ns/model:tag
	Repo     string   `json:"repo"`
	Tag      string   `json:"tag"`
	Manifest string   `json:"manifest"` // exact bytes (UTF-8 in practice)
	Digest   string   `json:"digest"`
	Config   testBlob `json:"config"`
	Layers   []testBlob
}

type testBlob struct {
	Digest    string `json:"digest"`
	Size      int64  `json:"size"`
	MediaType string `json:"media_type"`
}

func (m testModel) totalSize() int64 {
	n := m.Config.Size
	for _, l := range m.Layers {
		n += l.Size
	}
	return n
}

// testregPath finds the test registry program: $OLREG_TESTREG, else the
// workspace's release build next to this module.
func testregPath(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("OLREG_TESTREG"); p != "" {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("OLREG_TESTREG=%s: %v", p, err)
		}
		return p
	}
	p, err := filepath.Abs(filepath.Join("..", "target", "release", "olreg-testreg"))
	if err == nil {
		if _, err = os.Stat(p); err == nil {
			return p
		}
	}
	t.Fatal("no test registry: run `make lib` at the repository root, or set OLREG_TESTREG")
	return ""
}

// startRegistry runs `olreg-testreg serve args...` until the test ends. Its
// stdin is a pipe we hold: closing it (or our death) stops the server.
func startRegistry(t testing.TB, args ...string) *testRegistry {
	t.Helper()
	cmd := exec.Command(testregPath(t), append([]string{"serve"}, args...)...)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	line, err := bufio.NewReader(stdout).ReadBytes('\n')
	if err != nil {
		t.Fatalf("test registry: no ready line: %v", err)
	}
	go func() { _, _ = io.Copy(io.Discard, stdout) }()
	var reg testRegistry
	if err := json.Unmarshal(line, &reg); err != nil {
		t.Fatalf("test registry: bad ready line %q: %v", line, err)
	}
	return &reg
}

// Name is the full olreg name of ns/model:tag on this registry.
func (r *testRegistry) Name(short string) string { return r.URL + "/" + short }

// QualifiedName is how List spells ns/model:tag from this registry.
func (r *testRegistry) QualifiedName(short string) string { return r.Host + "/" + short }

func (r *testRegistry) control(t testing.TB, method, path string, body any) []byte {
	t.Helper()
	var rd io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, r.URL+"/_testreg/"+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode/100 != 2 {
		t.Fatalf("%s %s: %s: %s", method, path, resp.Status, data)
	}
	return data
}

// AddModel makes a model with layers of these sizes (POST /_testreg/models).
func (r *testRegistry) AddModel(t testing.TB, name string, sizes ...int64) testModel {
	t.Helper()
	data := r.control(t, "POST", "models", map[string]any{"name": name, "layer_sizes": sizes, "seed": 1})
	var m testModel
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatalf("new model: %v: %s", err, data)
	}
	return m
}

// AddFault injects a fault (see testreg/src/registry/faults.rs).
func (r *testRegistry) AddFault(t testing.TB, fault map[string]any) {
	t.Helper()
	r.control(t, "POST", "faults", fault)
}

// ClearFaults removes every fault.
func (r *testRegistry) ClearFaults(t testing.TB) { r.control(t, "DELETE", "faults", nil) }

// Manifest is the registry's stored manifest for ns/model:ref.
func (r *testRegistry) Manifest(t testing.TB, short string) []byte {
	t.Helper()
	repo, ref, ok := strings.Cut(short, ":")
	if !ok {
		t.Fatalf("%s: no tag", short)
	}
	return r.control(t, "GET", fmt.Sprintf("manifests/%s/%s", repo, ref), nil)
}

type requestRecord struct {
	Server       string `json:"server"`
	Method       string `json:"method"`
	PathAndQuery string `json:"path_and_query"`
	Status       int    `json:"status"`
}

// Requests is the server's request log.
func (r *testRegistry) Requests(t testing.TB) []requestRecord {
	t.Helper()
	var recs []requestRecord
	if err := json.Unmarshal(r.control(t, "GET", "requests", nil), &recs); err != nil {
		t.Fatal(err)
	}
	return recs
}
