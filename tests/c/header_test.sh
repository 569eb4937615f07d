#!/bin/sh
# The public header compiles on its own, as C11 and as C++17, with every
# warning an error; every name it defines carries the olreg_/OLREG_ prefix.
#
# Usage: tests/c/header_test.sh [HEADER_DIR]   (default: the repository's include/)
#        CC and CXX name the compilers (cross compilers too: CI checks the
#        header for Windows and macOS with zig's).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
include=${1:-$here/../../include}
header=$include/olreg.h
CC=${CC:-cc}
CXX=${CXX:-c++}
WARN="-Wall -Wextra -Wpedantic -Werror"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# A translation unit valid in both languages that touches every type, macro
# and function, so a broken declaration cannot hide behind not being used.
cat > "$tmp/use.c" <<'SRC'
#include <olreg.h>
#include <olreg.h> /* twice: the include guard holds */

static int on_progress(void *user_data, const olreg_progress *p)
{
	(void)user_data;
	return p->event == OLREG_EVENT_FINISHED && p->layers_done == p->layers_total;
}

static void on_log(void *user_data, olreg_log_level level, const char *message)
{
	(void)user_data;
	(void)level;
	(void)message;
}

int main(void)
{
	olreg_progress_cb progress = on_progress;
	olreg_log_cb log = on_log;
	olreg_status statuses[] = {
		OLREG_OK, OLREG_NULL_ARGUMENT, OLREG_INVALID_ARGUMENT, OLREG_INVALID_NAME,
		OLREG_INVALID_DIGEST, OLREG_NOT_FOUND, OLREG_UNAUTHORIZED, OLREG_INVALID_MANIFEST,
		OLREG_HTTP, OLREG_NETWORK, OLREG_PROTOCOL, OLREG_DIGEST_MISMATCH,
		OLREG_SIZE_MISMATCH, OLREG_IO, OLREG_NO_SPACE, OLREG_CANCELLED,
		OLREG_REENTRANT, OLREG_PANIC, OLREG_INTERNAL,
	};
	olreg_event events[] = {
		OLREG_EVENT_RESOLVED, OLREG_EVENT_QUEUED, OLREG_EVENT_STARTED, OLREG_EVENT_BYTES,
		OLREG_EVENT_CACHED, OLREG_EVENT_VERIFYING, OLREG_EVENT_DONE, OLREG_EVENT_FAILED,
		OLREG_EVENT_RETRYING, OLREG_EVENT_WAITING, OLREG_EVENT_FINISHED,
	};
	olreg_log_level levels[] = { OLREG_LOG_ERROR, OLREG_LOG_WARN, OLREG_LOG_INFO, OLREG_LOG_DEBUG };
	const char *version = OLREG_VERSION;
	int numbers = OLREG_VERSION_MAJOR + OLREG_VERSION_MINOR + OLREG_VERSION_PATCH;
	/* Taking each function's address checks its declaration; void (*)(void)
	 * is the portable "any function" type for the casts. The list is made
	 * from the header itself (functions.inc below), so no function can be
	 * left out of it. */
	typedef void (*any_fn)(void);
	any_fn functions[] = {
#include "functions.inc"
	};
	olreg_cancel *cancel = 0;
	olreg_client *client = 0;
	olreg_error *err = 0;
	olreg_manifest *manifest = 0;
	olreg_options *opts = 0;
	olreg_string_list *list = 0;
	olreg_progress p = { sizeof(olreg_progress), OLREG_EVENT_FINISHED, 0, 0, "", 0, 0, 0, 0, 0, 1, 1 };

	(void)cancel; (void)client; (void)err; (void)manifest; (void)opts; (void)list;
	(void)log; (void)version; (void)numbers;
	(void)statuses; (void)events; (void)levels; (void)functions;
	return progress(0, &p) ? 0 : 1;
}
SRC

# Every function the header declares, as "(any_fn)name,": the same pattern
# the prefix check below uses for function names.
sed -n 's/^[a-z_][a-z0-9_ *]* \**\([a-z_][a-z0-9_]*\)(.*/(any_fn)\1,/p' "$header" > "$tmp/functions.inc"
count=$(wc -l < "$tmp/functions.inc")
if [ "$count" -lt 50 ]; then
	echo "header: only $count function declarations found; the pattern no longer matches the header"
	exit 1
fi

fail=0
check() {
	what=$1
	shift
	if "$@" 2> "$tmp/err"; then
		echo "header: $what: ok"
	else
		echo "header: $what: FAILED"
		cat "$tmp/err"
		fail=1
	fi
}

check "C11"   $CC  -std=c11   $WARN -I"$include" -I"$tmp" -x c   -c "$tmp/use.c" -o "$tmp/c.o"
check "C++17" $CXX -std=c++17 $WARN -I"$include" -I"$tmp" -x c++ -c "$tmp/use.c" -o "$tmp/cxx.o"
# Both compilers must see one ABI: the C++ code names the functions
# unmangled (read from its assembly, the same for ELF, PE and Mach-O
# targets: CC and CXX may be cross compilers).
check "C++17 links with C linkage" sh -c \
	"$CXX -std=c++17 -I'$include' -I'$tmp' -x c++ -S '$tmp/use.c' -o '$tmp/cxx.s' &&
	 grep -q 'olreg_version' '$tmp/cxx.s' && ! grep -q '_Z[0-9]*olreg_' '$tmp/cxx.s'"

# Names the header defines: macros, typedefs, functions.
stray=$(sed -n -e 's/^#define \([A-Za-z_][A-Za-z0-9_]*\).*/\1/p' \
	       -e 's/^typedef .*[ *]\([A-Za-z_][A-Za-z0-9_]*\);$/\1/p' \
	       -e 's/^typedef struct \([A-Za-z_][A-Za-z0-9_]*\) .*/\1/p' \
	       -e 's/^[a-z_][a-z0-9_ *]* \**\([a-z_][a-z0-9_]*\)(.*/\1/p' "$header" |
	grep -v -e '^olreg_' -e '^OLREG_' || true)
if [ -n "$stray" ]; then
	echo "header: names without the olreg prefix: $stray"
	fail=1
else
	echo "header: prefixes: ok"
fi
exit $fail
