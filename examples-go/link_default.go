//go:build !olreg_pkgconfig && !olreg_static

package olreg

// Default linking: the library staged in the repository by `make lib`
// (../build), dynamically, with an rpath so test binaries and commands run
// without LD_LIBRARY_PATH. CGO_CFLAGS and CGO_LDFLAGS from the environment
// come first on the compiler and linker command lines, so they can point at
// another copy (e.g. CGO_LDFLAGS="-L/opt/olreg/lib -Wl,-rpath,/opt/olreg/lib").
// Build with -tags olreg_pkgconfig to use an installed copy through
// pkg-config, or -tags olreg_static to link libolreg.a.

/*
#cgo CFLAGS: -I${SRCDIR}/../build/include
#cgo LDFLAGS: -L${SRCDIR}/../build/lib -Wl,-rpath,${SRCDIR}/../build/lib -lolreg
*/
import "C"
