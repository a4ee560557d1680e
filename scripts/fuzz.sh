#!/usr/bin/env bash
# Run every libFuzzer target (fuzz_*) in BUILD for SECONDS each, from its seed corpus in
# tests/fuzz/corpus/NAME. A crash fails the run and leaves the reproducer in var/fuzz/.
set -euo pipefail
build=${1:-build-fuzz}; secs=${2:-60}
top=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$top/var/fuzz"
found=0
# every libFuzzer target (fuzz_*) the build made, wherever its module put it
for bin in $(find "$build" -type f -name 'fuzz_*' -perm -u+x ! -path '*/CMakeFiles/*' | sort); do
  name=$(basename "$bin")
  seeds="$top/tests/fuzz/corpus/$name"
  work="$top/var/fuzz/$name"; mkdir -p "$work"
  echo "fuzz: $name for ${secs}s"
  found=$((found + 1))
  dirs=("$work"); [ -d "$seeds" ] && dirs+=("$seeds")
  ASAN_OPTIONS=detect_leaks=1 "$bin" -max_total_time="$secs" -rss_limit_mb=2048 \
    -artifact_prefix="$top/var/fuzz/$name-" -print_final_stats=0 "${dirs[@]}" \
    > "$top/var/fuzz/$name.log" 2>&1 || { tail -40 "$top/var/fuzz/$name.log"; exit 1; }
  grep -E 'Done [0-9]+ runs' "$top/var/fuzz/$name.log" | tail -1 | sed "s/^/fuzz: $name: /"
done
[ "$found" -gt 0 ] || { echo "fuzz: no targets built"; exit 1; }
echo "fuzz: $found targets passed"
