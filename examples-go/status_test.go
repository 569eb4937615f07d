package olreg_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"strings"
	"testing"

	olreg "github.com/olreg/olreg-go"
)

// declared reads errors.go: the Go constant of each C status
// (StatusX Status = C.OLREG_X: "OLREG_X" -> "StatusX") and the constants
// that have a sentinel error (ErrX error = StatusX).
func declared(t *testing.T) (constants map[string]string, sentinels map[string]bool) {
	t.Helper()
	file, err := parser.ParseFile(token.NewFileSet(), "errors.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	constants, sentinels = map[string]string{}, map[string]bool{}
	ast.Inspect(file, func(n ast.Node) bool {
		spec, ok := n.(*ast.ValueSpec)
		if !ok || len(spec.Names) != 1 || len(spec.Values) != 1 {
			return true
		}
		switch v := spec.Values[0].(type) {
		case *ast.SelectorExpr:
			if x, ok := v.X.(*ast.Ident); ok && x.Name == "C" && strings.HasPrefix(v.Sel.Name, "OLREG_") {
				constants[v.Sel.Name] = spec.Names[0].Name
			}
		case *ast.Ident:
			if strings.HasPrefix(spec.Names[0].Name, "Err") {
				sentinels[v.Name] = true
			}
		}
		return true
	})
	return constants, sentinels
}

// Every status the library knows (olreg_status_name, from 0 up to the first
// unknown number) has a Go constant read from the header and, except OK, a
// sentinel error; Go declares no status the library does not know.
func TestStatusesMatchTheLibrary(t *testing.T) {
	constants, sentinels := declared(t)
	known := 0
	for code := 0; ; code++ {
		s := olreg.Status(code)
		name := s.Name()
		if name == "" {
			break
		}
		known++
		ident, ok := constants[name]
		if !ok {
			t.Errorf("status %d (%s: %s) has no constant in errors.go", code, name, s)
			continue
		}
		if s != olreg.StatusOK && !sentinels[ident] {
			t.Errorf("%s has no Err* sentinel in errors.go", ident)
		}
	}
	if known != len(constants) {
		t.Errorf("errors.go declares %d statuses, the library knows %d", len(constants), known)
	}
	if got := olreg.StatusNotFound.Name(); got != "OLREG_NOT_FOUND" {
		t.Errorf("StatusNotFound.Name() = %q", got)
	}
	if got := olreg.StatusNotFound.String(); got != "not found" {
		t.Errorf("StatusNotFound.String() = %q", got)
	}
	if got := olreg.Status(-1).Name(); got != "" {
		t.Errorf("Status(-1).Name() = %q", got)
	}
}
