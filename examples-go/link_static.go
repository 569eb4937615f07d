//go:build olreg_static

package olreg

// With -tags olreg_static: libolreg.a from the repository's build/ (or the
// first libolreg.a on a -L path given in CGO_LDFLAGS), so the program needs
// no shared library at run time.

/*
#cgo CFLAGS: -I${SRCDIR}/../build/include
#cgo LDFLAGS: -L${SRCDIR}/../build/lib -l:libolreg.a -lpthread -ldl -lm -lgcc_s
*/
import "C"
