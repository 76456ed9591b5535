#!/usr/bin/env bash
# The build cache's no-op rebuild: builds each hello recipe once, then times RUNS rebuilds of the
# unchanged recipe (inputs digest computed, toolchain versions read, layout checked, nothing
# rebuilt or rewritten) and a --no-cache rebuild for comparison. Prints medians in ms.
# A benchmark script, not a timed test. Target: a no-op rebuild within 200 ms.
#
#   RUNS=20 bash benches/cache.sh
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-20}

cargo build --quiet --release --bin staticpack
bin="$PWD/${CARGO_TARGET_DIR:-target}/release/staticpack"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

now_ns() { date +%s%N; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }

for recipe in hello-c hello-c-static; do
  (cd "$work" && "$bin" build "$OLDPWD/recipes/$recipe" >/dev/null 2>&1)
  noop=$(for _ in $(seq "$RUNS"); do
    t0=$(now_ns)
    (cd "$work" && "$bin" build "$OLDPWD/recipes/$recipe" >/dev/null 2>&1)
    echo $(( ($(now_ns) - t0) / 1000000 ))
  done | median)
  full=$(for _ in $(seq 3); do
    t0=$(now_ns)
    (cd "$work" && "$bin" build "$OLDPWD/recipes/$recipe" --no-cache >/dev/null 2>&1)
    echo $(( ($(now_ns) - t0) / 1000000 ))
  done | median)
  printf '%-16s no-op rebuild %5s ms (median of %s)   full rebuild %6s ms   ratio %s\n' \
    "$recipe" "$noop" "$RUNS" "$full" "$(awk -v a="$noop" -v b="$full" 'BEGIN {printf "%.3f", a / b}')"
done
