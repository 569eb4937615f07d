#!/usr/bin/env bash
# Builds the real Ollama (v0.12.6, CPU backend) from the Go module proxy,
# once: the `ollama` binary is kept in the tools cache that scripts/deps.sh
# also uses ($OLREG_TOOLS_DIR, default ~/.cache/olreg/tools) and reused by
# later runs. Prints the binary's path.
#
#   scripts/build-ollama.sh            build it unless it is there; print its path
#   scripts/build-ollama.sh --cached   print its path if it is there, else fail
#
# Ollama's module zip lacks llama.cpp's vendor/ headers: nlohmann/json and
# stb_image come from Debian (`scripts/deps.sh ollama` installs them), and
# miniaudio.h from the source distribution of PyPI's miniaudio 1.71 (checked
# against its SHA-256 below). The compile (mostly llama.cpp's C++) takes
# about 12 minutes of CPU on a 2-core machine cold, and runs at the lowest
# priority so that the machine's other work keeps its pace (docs/ollama.md).
set -euo pipefail
cd "$(dirname "$0")/.."

version=v0.12.6
miniaudio=miniaudio-1.71.tar.gz
miniaudio_sha256=ff51e2887bb673e2e757752b586b3dc924d59aa5fbcae9bbc45f4a111bd3262b

tools=${OLREG_TOOLS_DIR:-$HOME/.cache/olreg/tools}
dir=$tools/ollama-$version
if [[ ${1:-} == --cached ]]; then
    [[ -x $dir/ollama ]] && echo "$dir/ollama"
    exit
fi

# One build at a time: a second caller waits for the first and uses its binary.
mkdir -p "$tools"
exec 9>"$tools/ollama-$version.lock"
flock 9
if [[ -x $dir/ollama ]]; then
    echo "$dir/ollama"
    exit 0
fi

scripts/deps.sh ollama >&2

work=$(mktemp -d)
trap 'rm -rf "$work" "$dir.tmp"' EXIT
echo "build-ollama: fetching miniaudio.h (PyPI sdist $miniaudio)" >&2
python3 -m pip download --quiet --disable-pip-version-check --no-deps \
    --no-binary :all: "miniaudio==1.71" -d "$work" >&2
echo "$miniaudio_sha256  $work/$miniaudio" | sha256sum --check --quiet >&2
tar -xzf "$work/$miniaudio" -C "$work" miniaudio-1.71/miniaudio/miniaudio.h

echo "build-ollama: building ollama $version (Go module proxy, nice 19; about 12 min of CPU cold)" >&2
rm -rf "$dir.tmp"
mkdir -p "$dir.tmp"
start=$SECONDS
GOBIN=$dir.tmp CPATH=$work/miniaudio-1.71 GOFLAGS="-mod=mod -buildvcs=false" CGO_ENABLED=1 \
    nice -n 19 go install -ldflags "-X github.com/ollama/ollama/version.Version=${version#v}" \
    "github.com/ollama/ollama@$version" >&2
rm -rf "$dir"
mv "$dir.tmp" "$dir"
echo "build-ollama: built ollama $version in $((SECONDS - start)) s" >&2
echo "$dir/ollama"
