#!/bin/sh
# `make install PREFIX=<tmp>` gives a copy that a C program builds against
# with nothing but pkg-config, and a C++17 program with nothing but CMake's
# find_package(olreg), each dynamically and statically; the programs run with
# the library they were compiled for. The installed shared library is
# stripped, and its separate debug info is found (name and CRC) by binutils.
#
# Usage: tests/c/install_test.sh   (needs pkg-config, cmake, c++, binutils;
#                                   builds the library if needed)
set -eu

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
CC=${CC:-cc}

for tool in pkg-config cmake readelf; do
	command -v $tool >/dev/null || {
		echo "install: $tool is missing (scripts/deps.sh installs it)"
		exit 1
	}
done
CXX=${CXX:-c++}

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

# The shared library is stripped; its debug info is in .debug/ beside it,
# found through the .gnu_debuglink (the name and a CRC of the file), which is
# how gdb, elfutils and binutils find it.
real=$(readlink -f "$libdir/$soname")
debug="$libdir/.debug/$(basename "$real").debug"
if readelf -S -W "$real" | grep -qE ' \.(debug_[a-z]+|symtab) '; then
	die "$real still has debug sections or a symbol table"
fi
link=$(readelf --string-dump=.gnu_debuglink "$real" | sed -n 's/^ *\[ *0\] *//p')
[ "$link" = "$(basename "$debug")" ] || die "the .gnu_debuglink of $real names '$link', not $(basename "$debug")"
readelf -S -W "$debug" | grep -q ' \.debug_line ' || die "$debug holds no line tables"
readelf --debug-dump=follow-links --debug-dump=line "$real" 2>&1 |
	grep -m1 -qF "(loaded from $debug)" ||
	die "readelf does not load $debug through the debug link (CRC mismatch?)"
build_id() { readelf -n "$1" | sed -n 's/.*Build ID: //p'; }
[ "$(build_id "$real")" = "$(build_id "$debug")" ] || die "the build IDs of $real and $debug differ"
step "stripped: $(basename "$real") $(stat -c %s "$real") bytes (staged, with debug info:" \
	"$(stat -c %s "$repo/build/lib/$(basename "$real")")), debug info in .debug/: $(stat -c %s "$debug") bytes"

# CMake: find_package(olreg) in a C++17 project, the shared and the static
# target, and the version file's verdicts (same ABI generation, not older).
header_version() { sed -n "s/^#define OLREG_VERSION_$1 //p" "$prefix/include/olreg.h"; }
major=$(header_version MAJOR) minor=$(header_version MINOR) patch=$(header_version PATCH)
mkdir "$prefix/cmake-src"
cat > "$prefix/cmake-src/CMakeLists.txt" <<'CMAKE'
cmake_minimum_required(VERSION 3.16)
project(olreg_consumer LANGUAGES CXX)
set(CMAKE_CXX_STANDARD 17)
set(CMAKE_CXX_STANDARD_REQUIRED ON)
set(CMAKE_CXX_EXTENSIONS OFF)

foreach(unsuitable IN LISTS UNSUITABLE)
  find_package(olreg ${unsuitable} QUIET)
  if(olreg_FOUND)
    message(FATAL_ERROR "olreg ${olreg_VERSION} claims to satisfy find_package(olreg ${unsuitable})")
  endif()
endforeach()
find_package(olreg ${SUITABLE} REQUIRED)
message(STATUS "olreg ${olreg_VERSION} from ${olreg_DIR}")
foreach(target olreg::olreg olreg::olreg_static)
  get_target_property(file ${target} IMPORTED_LOCATION)
  get_target_property(include ${target} INTERFACE_INCLUDE_DIRECTORIES)
  if(NOT EXISTS "${file}" OR NOT EXISTS "${include}/olreg.h")
    message(FATAL_ERROR "${target}: no ${file} or ${include}/olreg.h")
  endif()
endforeach()

add_executable(app_shared app.cpp)
target_compile_options(app_shared PRIVATE -Wall -Wextra -Wpedantic -Werror)
target_link_libraries(app_shared PRIVATE olreg::olreg)
add_executable(app_static app.cpp)
target_compile_options(app_static PRIVATE -Wall -Wextra -Wpedantic -Werror)
target_link_libraries(app_static PRIVATE olreg::olreg_static)
CMAKE
cat > "$prefix/cmake-src/app.cpp" <<'SRC'
// A C++17 user of olreg: RAII over the C handles, one real call on an empty store.
#include <olreg.h>

#include <cstdio>
#include <memory>
#include <string_view>

template <auto Free> struct deleter {
	template <typename T> void operator()(T *p) const noexcept { Free(p); }
};
using options = std::unique_ptr<olreg_options, deleter<olreg_options_free>>;
using client = std::unique_ptr<olreg_client, deleter<olreg_client_free>>;
using error = std::unique_ptr<olreg_error, deleter<olreg_error_free>>;
using string_list = std::unique_ptr<olreg_string_list, deleter<olreg_string_list_free>>;

int main(int argc, char **argv)
{
	if (argc != 2 || std::string_view(olreg_version()) != OLREG_VERSION)
		return 1;
	olreg_options *raw_opts = nullptr;
	if (olreg_options_new(&raw_opts) != OLREG_OK)
		return 1;
	options opts(raw_opts);
	olreg_options_set_models_dir(opts.get(), argv[1]);
	olreg_options_set_key_file(opts.get(), nullptr);
	olreg_options_set_docker_config(opts.get(), nullptr);

	olreg_client *raw_client = nullptr;
	olreg_error *raw_err = nullptr;
	olreg_status st = olreg_client_new(opts.get(), &raw_client, &raw_err);
	client c(raw_client);
	error err(raw_err);
	if (st != OLREG_OK) {
		std::fprintf(stderr, "%s\n", olreg_error_message(err.get()));
		return 1;
	}
	olreg_string_list *raw_list = nullptr;
	if (olreg_list(c.get(), &raw_list, nullptr) != OLREG_OK)
		return 1;
	string_list models(raw_list);
	std::printf("olreg %s: %zu models\n", olreg_version(), olreg_string_list_len(models.get()));
	return olreg_string_list_len(models.get()) == 0 ? 0 : 1;
}
SRC
# configure BUILD_DIR PREFIX UNSUITABLE: the project above against the package
# under PREFIX, which it must find there.
configure() {
	cmake -S "$prefix/cmake-src" -B "$1" -DCMAKE_PREFIX_PATH="$2" -DCMAKE_CXX_COMPILER="$CXX" \
		-DSUITABLE="$major.$minor" -DUNSUITABLE="$3" > "$1.log" 2>&1 || {
		cat "$1.log"
		die "cmake configure against $2"
	}
	grep -q "olreg $major.$minor.$patch from $2/lib/cmake/olreg" "$1.log" || {
		cat "$1.log"
		die "cmake did not find the package under $2"
	}
}
unsuitable="$major.$((minor + 1));$((major + 1)).0;$major.$minor.$((patch + 1))"
step "cmake: find_package(olreg $major.$minor) with CMAKE_PREFIX_PATH=$prefix; refuses $unsuitable"
configure "$prefix/cmake-build" "$prefix" "$unsuitable"
cmake --build "$prefix/cmake-build" > "$prefix/cmake-build.log" 2>&1 || {
	cat "$prefix/cmake-build.log"
	die "cmake build"
}
mkdir "$prefix/models"
"$prefix/cmake-build/app_shared" "$prefix/models" || die "the olreg::olreg program"
ldd "$prefix/cmake-build/app_shared" | grep -q "$libdir/$soname" || {
	ldd "$prefix/cmake-build/app_shared"
	die "the olreg::olreg program does not load $libdir/$soname"
}
"$prefix/cmake-build/app_static" "$prefix/models" || die "the olreg::olreg_static program"
if ldd "$prefix/cmake-build/app_static" | grep -q libolreg; then
	die "the olreg::olreg_static program still loads libolreg.so"
fi

# The CMake package names its files relative to itself: a moved tree works
# (and the old place no longer exists).
mkdir "$prefix/moved"
mv "$prefix/lib" "$prefix/include" "$prefix/moved/"
configure "$prefix/cmake-moved" "$prefix/moved" ""
step "cmake: the package works from a moved tree"
step "ok"
