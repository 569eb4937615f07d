package olreg

import (
	"errors"
	"testing"
)

func TestABICheck(t *testing.T) {
	if abiErr != nil {
		t.Fatalf("the library under test: %v", abiErr)
	}
	for _, tc := range []struct {
		header, library string
		ok              bool
	}{
		{"0.1.0", "0.1.0", true},
		{"0.1.0", "0.1.7", true}, // a patch release keeps the ABI
		{"0.1.0", "0.2.0", false},
		{"0.2.0", "0.1.0", false},
		{"0.1.0", "1.1.0", false},
		{"0.1.0", "0.1", false},
		{"0.1.0", "", false},
	} {
		err := checkABI(tc.header, tc.library)
		var abi *ABIError
		switch {
		case tc.ok && err != nil:
			t.Errorf("checkABI(%q, %q) = %v, want nil", tc.header, tc.library, err)
		case !tc.ok && !errors.As(err, &abi):
			t.Errorf("checkABI(%q, %q) = %v, want an *ABIError", tc.header, tc.library, err)
		case !tc.ok && (abi.Library != tc.library || abi.WrittenFor != abiWrittenFor):
			t.Errorf("checkABI(%q, %q) = %+v", tc.header, tc.library, abi)
		}
	}
	if got := abiOf("3.4.5"); got != "3" {
		t.Errorf("abiOf(3.4.5) = %q", got)
	}
}

// Open refuses a library of another ABI before calling anything else.
func TestOpenRefusesAnotherABI(t *testing.T) {
	saved := abiErr
	t.Cleanup(func() { abiErr = saved })
	abiErr = checkABI("0.1.0", "0.9.0")
	c, err := Open(Options{ModelsDir: t.TempDir(), NoKey: true, NoDockerConfig: true})
	if c != nil || !errors.As(err, new(*ABIError)) {
		t.Fatalf("Open with a mismatched ABI: %v, %v", c, err)
	}
}
