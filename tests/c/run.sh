#!/bin/sh
# Runs the C tests: the header compiles as C11 and C++17, the API tests under
# AddressSanitizer, UndefinedBehaviorSanitizer and LeakSanitizer against the
# test registry (and Docker Distribution, /usr/bin/docker-registry), and an
# install into a temporary prefix.
#
# Usage: tests/c/run.sh [header|test_null|test_options|test_api|test_cancel|test_threads|test_distribution|test_transfer|test_interop|test_security|install]...
#        (no argument: all of them; `make lib` first, or use `make test-c`)
set -u

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)

: "${OLREG_LIB_DIR:=$repo/build/lib}"
: "${OLREG_INCLUDE_DIR:=$repo/build/include}"
: "${OLREG_TESTREG:=$repo/target/release/olreg-testreg}"
export OLREG_LIB_DIR OLREG_INCLUDE_DIR OLREG_TESTREG
# Leaks are failures; so is any undefined behaviour (UBSan only warns by default).
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=1"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}print_stacktrace=1:halt_on_error=1"
# Keep the developer's key, Docker logins and mirrors out of the tests (but
# let cargo, which the install test runs through make, find its toolchain).
export RUSTUP_HOME="${RUSTUP_HOME:-$HOME/.rustup}" CARGO_HOME="${CARGO_HOME:-$HOME/.cargo}"
export HOME="${TMPDIR:-/tmp}/olreg-c-home.$$"
unset OLREG_MIRRORS OLREG_SIGNED_HOSTS OLLAMA_MODELS OLLAMA_REGISTRY_MAXSTREAMS HTTPS_PROXY HTTP_PROXY https_proxy http_proxy
mkdir -p "$HOME"
trap 'rm -rf "$HOME"' EXIT

[ -x "$OLREG_TESTREG" ] || { echo "no test registry at $OLREG_TESTREG (make lib)"; exit 1; }
[ -f "$OLREG_LIB_DIR/libolreg.so" ] || { echo "no library in $OLREG_LIB_DIR (make lib)"; exit 1; }

make -s -C "$here" OLREG_LIB_DIR="$OLREG_LIB_DIR" OLREG_INCLUDE_DIR="$OLREG_INCLUDE_DIR" all || exit 1

all="header test_null test_options test_api test_cancel test_threads test_distribution test_transfer test_interop test_security install"
failed=""
for name in ${*:-$all}; do
	echo "== $name"
	case $name in
	header)  "$here/header_test.sh" "$repo/include" ;;
	install) "$here/install_test.sh" ;;
	test_*)  "$here/$name" ;;
	*)       echo "unknown test $name"; false ;;
	esac
	rc=$?
	if [ $rc -eq 0 ]; then
		echo "== $name: ok"
	else
		echo "== $name: FAILED (exit $rc)"
		failed="$failed $name"
	fi
done

if [ -n "$failed" ]; then
	echo "C tests failed:$failed"
	exit 1
fi
echo "C tests passed"
