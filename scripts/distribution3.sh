#!/usr/bin/env bash
# Builds Docker Distribution 3.x registries from the Go module proxy, once:
# each version's `registry` binary is kept in the tools cache that
# scripts/deps.sh also uses ($OLREG_TOOLS_DIR, default ~/.cache/olreg/tools)
# and reused by later runs. Prints one binary path a line.
#
#   scripts/distribution3.sh              v3.0.0 and v3.1.2
#   scripts/distribution3.sh v3.1.2 ...   these versions
#
# The module's dependencies (about 1.9 GB of cloud SDKs) are downloaded into
# a private module cache that is deleted after the build; the Go build cache
# is the usual one. A cold build takes about 2 minutes a version on a
# 2-core machine (see README, "Registries tested").
set -euo pipefail
cd "$(dirname "$0")/.."

tools=${OLREG_TOOLS_DIR:-$HOME/.cache/olreg/tools}
versions=("$@")
((${#versions[@]})) || versions=(v3.0.0 v3.1.2)

# One private module cache for every version built by this run.
modcache=""
cleanup() { if [[ -n $modcache ]]; then chmod -R u+w "$modcache"; rm -rf "$modcache"; fi; }
trap cleanup EXIT

for version in "${versions[@]}"; do
    if [[ ! $version =~ ^v3\.[0-9]+\.[0-9]+$ ]]; then
        echo "distribution3: $version is not a v3.X.Y version" >&2
        exit 2
    fi
    dir=$tools/distribution-$version
    if [[ ! -x $dir/registry ]]; then
        [[ -n $modcache ]] || modcache=$(mktemp -d)
        echo "distribution3: building registry $version (Go module proxy)" >&2
        mkdir -p "$dir"
        start=$SECONDS
        GOBIN=$dir GOMODCACHE=$modcache GOFLAGS=-buildvcs=false \
            go install "github.com/distribution/distribution/v3/cmd/registry@$version" >&2
        echo "distribution3: built $version in $((SECONDS - start)) s" >&2
    fi
    echo "$dir/registry"
done
