#!/usr/bin/env bash
# One platform against two: times a --no-cache build of hello-c for linux/amd64 alone (A) and
# for linux/amd64,linux/arm64 into one index (B), interleaved A B A B … for ROUNDS rounds (so
# that a warming disk or a busy neighbour weighs on both alike), and prints each median and the
# ratio B / A. The arm64 half cross-compiles and runs its proof under qemu-aarch64-static.
# A benchmark script, not a timed test. Target (issue 15): a ratio of at most 2.2.
#
#   ROUNDS=3 bash benches/platforms.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}

cargo build --locked --quiet --release --bin staticpack
bin="$PWD/${CARGO_TARGET_DIR:-target}/release/staticpack"
recipe="$PWD/recipes/hello-c"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

now_ns() { date +%s%N; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }

# One build, in ms; its output goes to a log that is shown if it fails.
timed() {
  local out=$1 platforms=$2 t0
  t0=$(now_ns)
  if ! (cd "$work" && "$bin" --cache-dir "$work/cache" build "$recipe" --no-cache \
        --out "$out" --platform "$platforms" >"$work/log" 2>&1); then
    cat "$work/log" >&2
    exit 1
  fi
  echo $(( ($(now_ns) - t0) / 1000000 ))
}

# Warm-up (the shared download cache, the page cache), not counted.
timed one linux/amd64 >/dev/null
timed two linux/amd64,linux/arm64 >/dev/null

: >"$work/a"
: >"$work/b"
for round in $(seq "$ROUNDS"); do
  a=$(timed one linux/amd64)
  b=$(timed two linux/amd64,linux/arm64)
  echo "round $round: one platform $a ms, two platforms $b ms"
  echo "$a" >>"$work/a"
  echo "$b" >>"$work/b"
done
one=$(median <"$work/a")
two=$(median <"$work/b")
printf 'hello-c --no-cache: one platform %s ms, two platforms %s ms (medians of %s); ratio %s (goal <= 2.2)\n' \
  "$one" "$two" "$ROUNDS" "$(awk -v a="$one" -v b="$two" 'BEGIN {printf "%.2f", b / a}')"
printf 'index %s\n' "$(tail -n 1 "$work/log" | cut -d' ' -f1)"
