#!/bin/sh
# `make install PREFIX=<tmp>` gives a copy a C program can build against with
# nothing but pkg-config, dynamically and statically, and the program runs
# with the library it was compiled for.
#
# Usage: tests/c/install_test.sh   (needs pkg-config; builds the library if needed)
set -eu

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
CC=${CC:-cc}

command -v pkg-config >/dev/null || {
	echo "install: pkg-config is missing (apt-get install pkg-config)"
	exit 1
}

prefix=$(mktemp -d)
trap 'rm -rf "$prefix"' EXIT

step() { echo "install: $*"; }
die() { echo "install: FAILED: $*"; exit 1; }

step "make install PREFIX=$prefix"
make -C "$repo" install PREFIX="$prefix" > "$prefix/make.log" 2>&1 || {
	cat "$prefix/make.log"
	die "make install"
}

export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
unset PKG_CONFIG_LIBDIR PKG_CONFIG_SYSROOT_DIR 2>/dev/null || true
pkg-config --exists olreg || die "pkg-config does not find olreg.pc in $PKG_CONFIG_PATH"
cflags=$(pkg-config --cflags olreg)
libs=$(pkg-config --libs olreg)
libdir=$(pkg-config --variable=libdir olreg)
[ "$libdir" = "$prefix/lib" ] || die "libdir is $libdir, not $prefix/lib"
step "pkg-config: cflags '$cflags', libs '$libs', version $(pkg-config --modversion olreg)"

# The shared library carries its SONAME and the links that name it.
soname=$(readelf -d "$libdir/libolreg.so" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[ -n "$soname" ] || die "libolreg.so has no SONAME"
[ -e "$libdir/$soname" ] || die "no $soname in $libdir"
step "SONAME $soname"

mkdir "$prefix/src"
cat > "$prefix/src/version.c" <<'SRC'
#include <stdio.h>
#include <string.h>

#include <olreg.h>

/* The library it runs with is the one it was compiled against, and it works. */
int main(void)
{
	olreg_options *opts = NULL;

	printf("header %s, library %s\n", OLREG_VERSION, olreg_version());
	if (strcmp(olreg_version(), OLREG_VERSION) != 0)
		return 1;
	if (olreg_options_new(&opts) != OLREG_OK)
		return 1;
	olreg_options_free(opts);
	return strcmp(olreg_status_str(OLREG_CANCELLED), "unknown status") == 0;
}
SRC

step "dynamic: $CC version.c \$(pkg-config --cflags --libs olreg)"
# shellcheck disable=SC2086 # word splitting of pkg-config output is intended
$CC -std=c11 -Wall -Wextra -Wpedantic -Werror $cflags "$prefix/src/version.c" $libs \
	-Wl,-rpath,"$libdir" -o "$prefix/version" || die "dynamic link"
"$prefix/version" || die "the dynamically linked program"
ldd "$prefix/version" | grep -q "$libdir/$soname" || {
	ldd "$prefix/version"
	die "the program does not load $libdir/$soname"
}

# Static: the archive plus what `pkg-config --static` lists as private.
private=$(pkg-config --static --libs olreg | tr ' ' '\n' | grep -v -e '^-lolreg$' -e '^-L' | tr '\n' ' ')
step "static: $CC version.c $libdir/libolreg.a $private"
# shellcheck disable=SC2086
$CC -std=c11 -Wall -Wextra -Wpedantic -Werror $cflags "$prefix/src/version.c" \
	"$libdir/libolreg.a" $private -o "$prefix/version-static" || die "static link"
"$prefix/version-static" || die "the statically linked program"
if ldd "$prefix/version-static" | grep -q libolreg; then
	die "the static program still loads libolreg.so"
fi
step "ok"
