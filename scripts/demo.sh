#!/usr/bin/env bash
# The main job, offline: build everything, start the bundled test registry
# serving a generated model, pull it with a live progress bar, list the
# store, and push the model to a second registry.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh
make --no-print-directory all >&2

work=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

# Starts a test registry; its first line on stdout describes it.
start_registry() {
    local out=$1; shift
    target/release/olreg-testreg serve --ignore-stdin "$@" >"$out" </dev/null &
    pids+=($!)
    for _ in $(seq 100); do [[ -s $out ]] && return; sleep 0.1; done
    echo "demo: the test registry did not start" >&2
    exit 1
}
host_of() { python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).readline())["host"])' "$1"; }

start_registry "$work/source.json" --model library/demo:latest=384M,12K,1K
start_registry "$work/target.json"
src="http://$(host_of "$work/source.json")/library/demo:latest"
dst="http://$(host_of "$work/target.json")/library/demo:latest"
olreg=(examples-c/olreg --models "$work/models")

echo "== olreg pull $src" >&2
"${olreg[@]}" pull "$src"
echo "== olreg list" >&2
"${olreg[@]}" list
echo "== olreg push $dst --from $src" >&2
"${olreg[@]}" push "$dst" --from "$src"
echo "== olreg verify" >&2
"${olreg[@]}" verify
echo "demo: done (store was $work/models, removed on exit)" >&2
