#!/usr/bin/env bash
# staticpack's overhead over the bare compiler command: `staticpack build --no-cache` (build,
# verify, layer, image, run proof, publish) against the compile command alone, on the same
# recipe, interleaved (A B A B …), medians with min–max. A benchmark script, not a timed test.
#
#   RUNS=5 bash benches/overhead.sh
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-5}

for tool in musl-gcc go; do
  command -v "$tool" >/dev/null || {
    echo "benches/overhead.sh needs $tool: bash .ci/setup" >&2
    exit 1
  }
done

cargo build --quiet --release --bin staticpack
bin="$PWD/${CARGO_TARGET_DIR:-target}/release/staticpack"
repo=$PWD
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# `build --no-cache` compiles Go with an empty build cache (standard library included), so the bare
# Go command gets a fresh empty GOCACHE each run too: both sides compile the same things.
export STATICPACK_CACHE="$work/cache"

now_ms() { echo $(($(date +%s%N) / 1000000)); }
# Prints "median (min–max)" of the numbers on stdin.
summary() { sort -n | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%d (%d–%d)", m, a[1], a[NR]}'; }
median_of() { sort -n | awk '{a[NR]=$1} END {print (NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2}'; }

# bench NAME BARE_COMMAND STATICPACK_RECIPE
bench() {
  local name=$1 bare=$2 recipe=$3 a=() b=()
  (cd "$work" && eval "$bare" >/dev/null 2>&1 && "$bin" build "$recipe" >/dev/null 2>&1) # warm-up
  for _ in $(seq "$RUNS"); do
    t0=$(now_ms)
    (cd "$work" && eval "$bare" >/dev/null 2>&1)
    a+=($(($(now_ms) - t0)))
    t0=$(now_ms)
    (cd "$work" && "$bin" build "$recipe" --no-cache >/dev/null 2>&1)
    b+=($(($(now_ms) - t0)))
  done
  local ma mb
  ma=$(printf '%s\n' "${a[@]}" | median_of)
  mb=$(printf '%s\n' "${b[@]}" | median_of)
  printf '| %s | %s | %s | %s ms | %.2f× |\n' "$name" \
    "$(printf '%s\n' "${a[@]}" | summary)" "$(printf '%s\n' "${b[@]}" | summary)" \
    "$((mb - ma))" "$(awk -v a="$ma" -v b="$mb" 'BEGIN {print b / a}')"
}

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -m); $RUNS interleaved pairs, ms median (min–max)"
echo "| recipe | bare compiler | staticpack build --no-cache | overhead | ratio |"
echo "|---|---|---|---|---|"
bench hello-c \
  "musl-gcc -static-pie -fPIE -O2 -o hello $repo/recipes/hello-c/src/hello.c" \
  "$repo/recipes/hello-c"
bench go-6-nocgo-purego \
  "(cd $repo/recipes/go-6-nocgo-purego/src && GOCACHE=\$(mktemp -d -p $work) CGO_ENABLED=0 go build -trimpath -tags netgo,osusergo -o $work/app .)" \
  "$repo/recipes/go-6-nocgo-purego"
