package olreg_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	olreg "github.com/olreg/olreg-go"
)

func TestCopyExportImport(t *testing.T) {
	src := startRegistry(t, "--model", "library/tiny:latest=1K,64K", "--model", "other/b:v2=3K")
	dst := startRegistry(t)
	model := src.Models[0]
	ctx := context.Background()

	// Copy: registry to registry, nothing in the store.
	c, store := open(t, olreg.Options{})
	var rec recorder
	m, err := c.Copy(ctx, src.Name(model.Name), dst.Name("team/tiny:v1"), rec.add)
	if err != nil {
		t.Fatalf("Copy: %v", err)
	}
	checkManifest(t, m, model)
	if got := dst.Manifest(t, "team/tiny:v1"); string(got) != model.Manifest {
		t.Errorf("copied manifest:\n%s\nwant:\n%s", got, model.Manifest)
	}
	if events := rec.all(); len(events) == 0 || events[len(events)-1].Event != olreg.EventFinished {
		t.Errorf("copy events: %v", events)
	}
	if entries, _ := os.ReadDir(filepath.Join(store, "blobs")); len(entries) != 0 {
		t.Errorf("Copy wrote %d blobs into the store", len(entries))
	}

	// Export both models into one layout, import one back by its tag.
	for _, name := range []string{model.Name, src.Models[1].Name} {
		if _, err := c.Pull(ctx, src.Name(name), nil); err != nil {
			t.Fatalf("Pull: %v", err)
		}
	}
	for _, dest := range []string{filepath.Join(t.TempDir(), "layout"), filepath.Join(t.TempDir(), "layout.tar")} {
		for _, name := range []string{model.Name, src.Models[1].Name} {
			if err := c.Export(ctx, src.Name(name), dest, nil); err != nil {
				t.Fatalf("Export %s to %s: %v", name, dest, err)
			}
		}
		other, _ := open(t, olreg.Options{})
		_, err := other.Import(ctx, dest, "local/x:v1", "", nil)
		if !errors.Is(err, olreg.ErrInvalidArgument) || !strings.Contains(err.Error(), "other/b:v2") {
			t.Errorf("Import without ref from two images: %v", err)
		}
		got, err := other.Import(ctx, dest, "local/tiny:v1", "latest", nil)
		if err != nil {
			t.Fatalf("Import: %v", err)
		}
		checkManifest(t, got, model)
		shown, err := other.Show("local/tiny:v1")
		if err != nil || string(shown) != model.Manifest {
			t.Errorf("Show after import: %q, %v", shown, err)
		}
		_, err = other.Import(ctx, dest, "local/y:v1", "nope", nil)
		if !errors.Is(err, olreg.ErrNotFound) {
			t.Errorf("Import of an unknown ref: %v, want ErrNotFound", err)
		}
	}

	// A cancelled context stops an export before it writes anything.
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	dest := filepath.Join(t.TempDir(), "never")
	if err := c.Export(cancelled, src.Name(model.Name), dest, nil); !errors.Is(err, olreg.ErrCancelled) {
		t.Errorf("Export with a cancelled context: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dest, "index.json")); err == nil {
		t.Errorf("a cancelled export wrote an index")
	}
}
