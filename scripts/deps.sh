#!/usr/bin/env bash
# Installs what olreg's build, demo and tests need on a fresh Debian machine
# of the project's kind (Rust, Go, Python 3 with pytest, gcc and make are
# already there). Idempotent: installs only what is missing.
#
#   scripts/deps.sh          what `make test` needs
#   scripts/deps.sh ollama   that, plus what the real-Ollama check needs:
#                            two C++ headers Ollama's build takes from the
#                            system and Python's gguf for its test model
set -euo pipefail
# shellcheck source=scripts/apt-install.sh
source "$(dirname "$0")/apt-install.sh"
ollama=0
[[ ${1:-} == ollama ]] && ollama=1

need_apt=()
command -v docker-registry >/dev/null 2>&1 || need_apt+=(docker-registry)
command -v pkg-config >/dev/null 2>&1 || need_apt+=(pkg-config)
command -v mount >/dev/null 2>&1 || need_apt+=(mount)
# make install strips the library and splits off its debug info; the install
# test reads both back and builds a C++ program with CMake's find_package.
command -v objcopy >/dev/null 2>&1 || need_apt+=(binutils)
command -v cmake >/dev/null 2>&1 || need_apt+=(cmake)
command -v c++ >/dev/null 2>&1 || need_apt+=(g++)
# llama.cpp inside Ollama includes <nlohmann/json.hpp> and "stb/stb_image.h",
# which Ollama's Go module leaves out (scripts/build-ollama.sh).
if ((ollama)); then
    [[ -e /usr/include/nlohmann/json.hpp ]] || need_apt+=(nlohmann-json3-dev)
    [[ -e /usr/include/stb/stb_image.h ]] || need_apt+=(libstb-dev)
fi

if ((${#need_apt[@]})); then
    apt_install deps "${need_apt[@]}"
    # The package starts a system registry on :5000; the tests start their own.
    sudo=""
    if [[ $(id -u) -ne 0 ]]; then sudo="sudo"; fi
    if command -v systemctl >/dev/null 2>&1; then $sudo systemctl disable --now docker-registry >/dev/null 2>&1 || true; fi
    $sudo pkill -x docker-registry >/dev/null 2>&1 || true
fi

# pytest runs the Python tests; flit_core builds the Python package that
# `make test-python` installs (without build isolation: nothing downloaded then).
need_pip=()
python3 -c 'import pytest' >/dev/null 2>&1 || need_pip+=(pytest)
python3 -c 'import flit_core' >/dev/null 2>&1 || need_pip+=("flit_core>=3.12,<5")
# gguf writes the tiny model the Ollama check runs (tests/cli/ollama_model.py).
if ((ollama)); then
    python3 -c 'import gguf' >/dev/null 2>&1 || need_pip+=("gguf>=0.17,<1")
fi
if ((${#need_pip[@]})); then
    echo "deps: installing ${need_pip[*]}" >&2
    python3 -m pip install --quiet "${need_pip[@]}"
fi

# oras and crane, the OCI tools the layout tests check olreg against (they
# read what `olreg export` writes and write what `olreg import` reads): built
# once from the Go module proxy into a cache that later runs reuse (about a
# minute on a fresh 2-core machine; nothing once cached).
tools="${OLREG_TOOLS_DIR:-$HOME/.cache/olreg/tools}"
go_tool() { # NAME VERSION MODULE
    local dir="$tools/$1-$2"
    [[ -x "$dir/$1" ]] && return 0
    echo "deps: building $1 $2 into $dir (once)" >&2
    rm -rf "$dir.tmp"
    mkdir -p "$dir.tmp"
    GOBIN="$dir.tmp" GOFLAGS=-mod=mod go install "$3@$2"
    rm -rf "$dir"
    mv "$dir.tmp" "$dir"
}
go_tool oras v1.3.6 oras.land/oras/cmd/oras
go_tool crane v0.22.1 github.com/google/go-containerregistry/cmd/crane
