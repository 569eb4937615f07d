package olreg

/*
#include "shim.h"
*/
import "C"

import (
	"fmt"
	"strconv"
	"strings"
)

// abiWrittenFor is the libolreg ABI generation this package was written
// for: the major version, or "0.MINOR" while the major version is 0 (the
// rule that also names the shared library, libolreg.so.0.1).
const abiWrittenFor = "0.1"

// abiErr is non-nil when the library this package is built against or
// linked with has another ABI: every Open returns it.
var abiErr = checkABI(
	fmt.Sprintf("%d.%d.%d", C.OLREG_VERSION_MAJOR, C.OLREG_VERSION_MINOR, C.OLREG_VERSION_PATCH),
	Version(),
)

// ABIError says that libolreg's ABI is not the one this package was
// written for: calling into it could corrupt memory, so nothing is called.
type ABIError struct {
	WrittenFor string // the ABI this package expects, e.g. "0.1"
	Header     string // OLREG_VERSION of the olreg.h it was compiled with
	Library    string // olreg_version() of the library it is linked with
}

func (e *ABIError) Error() string {
	return fmt.Sprintf("olreg: this Go package is written for libolreg ABI %s, but was built with olreg.h %s and runs with libolreg %s: use a matching library or package version",
		e.WrittenFor, e.Header, e.Library)
}

// checkABI compares the ABI generations of the header and library versions
// ("MAJOR.MINOR.PATCH") with abiWrittenFor.
func checkABI(header, library string) error {
	if abiOf(header) == abiWrittenFor && abiOf(library) == abiWrittenFor {
		return nil
	}
	return &ABIError{WrittenFor: abiWrittenFor, Header: header, Library: library}
}

// abiOf is the ABI generation of a version: "MAJOR", or "0.MINOR" while the
// major version is 0; "" if the version is malformed.
func abiOf(version string) string {
	parts := strings.Split(version, ".")
	if len(parts) != 3 {
		return ""
	}
	for _, p := range parts {
		if _, err := strconv.ParseUint(p, 10, 32); err != nil {
			return ""
		}
	}
	if parts[0] == "0" {
		return "0." + parts[1]
	}
	return parts[0]
}
