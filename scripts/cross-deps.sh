#!/usr/bin/env bash
# Installs what the macOS and Windows cross-builds and the Wine test run need
# (`make windows`, `make macos`, `make check-cross`, `make test-wine`, CI), on
# a Debian machine of the project's kind. Idempotent: installs only what is
# missing; prints the zig tools' directory (for PATH) on stdout.
#
#   scripts/cross-deps.sh [macos] [windows] [wine]   (no argument: all three)
#
# macos:   the rustup targets x86_64-apple-darwin and aarch64-apple-darwin,
#          and zig with cargo-zigbuild (PyPI `ziglang`, `cargo-zigbuild`) in a
#          venv under $OLREG_TOOLS_DIR (default ~/.cache/olreg/tools), made
#          once and reused.
# windows: the rustup target x86_64-pc-windows-gnu and Debian's MinGW-w64 C
#          compiler (`gcc-mingw-w64-x86-64`): enough to build and check.
# wine:    Debian's Wine (`wine64`, about 140 MB with MinGW), to run what the
#          Windows build made (`make test-wine`).
set -euo pipefail
# shellcheck source=scripts/apt-install.sh
source "$(dirname "$0")/apt-install.sh"

# The versions CI is measured with; a new pair goes in a new directory.
ZIG_VERSION=0.15.2
ZIGBUILD_VERSION=0.24.1
tools="${OLREG_TOOLS_DIR:-$HOME/.cache/olreg/tools}"
zig_dir="$tools/zig-$ZIG_VERSION-zigbuild-$ZIGBUILD_VERSION"

want=("$@")
((${#want[@]})) || want=(macos windows wine)

targets=()
need_apt=()
for platform in "${want[@]}"; do
    case $platform in
    macos) targets+=(x86_64-apple-darwin aarch64-apple-darwin) ;;
    windows)
        targets+=(x86_64-pc-windows-gnu)
        command -v x86_64-w64-mingw32-gcc >/dev/null 2>&1 || need_apt+=(gcc-mingw-w64-x86-64)
        ;;
    wine) [[ -x /usr/lib/wine/wine64 ]] || need_apt+=(wine64) ;;
    *) echo "usage: $0 [macos] [windows] [wine]" >&2; exit 2 ;;
    esac
done

installed=$(rustup target list --installed)
missing=()
for t in "${targets[@]}"; do
    grep -qx "$t" <<<"$installed" || missing+=("$t")
done
if ((${#missing[@]})); then
    echo "cross-deps: rustup target add ${missing[*]}" >&2
    rustup target add "${missing[@]}" >&2
fi

apt_install cross-deps "${need_apt[@]}"

if [[ " ${want[*]} " == *" macos "* ]]; then
    # Made in place (a venv cannot be moved); `.complete` marks it whole.
    if [[ ! -f "$zig_dir/.complete" ]]; then
        echo "cross-deps: making $zig_dir (zig $ZIG_VERSION, cargo-zigbuild $ZIGBUILD_VERSION; once)" >&2
        rm -rf "$zig_dir"
        python3 -m venv "$zig_dir"
        "$zig_dir/bin/pip" install --quiet --disable-pip-version-check \
            "ziglang==$ZIG_VERSION" "cargo-zigbuild==$ZIGBUILD_VERSION" >&2
        touch "$zig_dir/.complete"
    fi
    echo "$zig_dir/bin"
fi
