//go:build olreg_pkgconfig && !olreg_static

package olreg

// With -tags olreg_pkgconfig: flags from `pkg-config olreg` (an installed
// copy, or PKG_CONFIG_PATH=<repo>/build/lib/pkgconfig). The library must
// then be on the loader's path (ldconfig, or LD_LIBRARY_PATH).

/*
#cgo pkg-config: olreg
*/
import "C"
