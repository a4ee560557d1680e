#!/usr/bin/env bash
# Run every bench program (bench_*) in BUILD; each prints its figures last as one JSON line.
set -euo pipefail
build=${1:-build-release}
for bin in $(find "$build/bench" -maxdepth 2 -type f -name 'bench_*' -perm -u+x | sort); do
  echo "== $(basename "$bin")"
  "$bin"
done
