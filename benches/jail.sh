#!/usr/bin/env bash
# The wall-time cost of the build jail: `staticpack build --no-cache --no-run` of hello-c (a
# file list: one jailed step per compile and link) and zlib (configure,
# make, make install) by this tree's staticpack against one built from BASE (a commit before
# the jail of issue 26), interleaved (A B A B …), medians with min–max. A benchmark script,
# not a timed test.
#
#   RUNS=5 BASE=7a73f5d bash benches/jail.sh
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-5}
BASE=${BASE:-7a73f5d}
repo=$PWD

cargo build --quiet --release --bin staticpack
after="$PWD/${CARGO_TARGET_DIR:-target}/release/staticpack"
base_tree="$PWD/target/bench-jail-base"
before="$base_tree/target/release/staticpack"
if [ ! -x "$before" ] || [ "$(cat "$base_tree/.rev" 2>/dev/null)" != "$BASE" ]; then
  rm -rf "$base_tree"
  mkdir -p "$base_tree"
  git archive "$BASE" | tar -x -C "$base_tree"
  (cd "$base_tree" && CARGO_TARGET_DIR="$base_tree/target" cargo build --quiet --release --bin staticpack)
  echo "$BASE" >"$base_tree/.rev"
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export STATICPACK_CACHE="$work/cache"

now_ms() { echo $(($(date +%s%N) / 1000000)); }
summary() { sort -n | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%d (%d–%d)", m, a[1], a[NR]}'; }
median_of() { sort -n | awk '{a[NR]=$1} END {print (NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2}'; }

bench() {
  local name=$1 recipe=$2 a=() b=()
  "$before" build "$recipe" --out "$work/a" --no-run >/dev/null 2>&1 # warm-up (downloads, page cache)
  "$after" build "$recipe" --out "$work/b" --no-run >/dev/null 2>&1
  for _ in $(seq "$RUNS"); do
    t0=$(now_ms)
    "$before" build "$recipe" --out "$work/a" --no-cache --no-run >/dev/null 2>&1
    a+=($(($(now_ms) - t0)))
    t0=$(now_ms)
    "$after" build "$recipe" --out "$work/b" --no-cache --no-run >/dev/null 2>&1
    b+=($(($(now_ms) - t0)))
  done
  local ma mb
  ma=$(printf '%s\n' "${a[@]}" | median_of)
  mb=$(printf '%s\n' "${b[@]}" | median_of)
  printf '| %s | %s | %s | %s ms | %.2f× |\n' "$name" \
    "$(printf '%s\n' "${a[@]}" | summary)" "$(printf '%s\n' "${b[@]}" | summary)" \
    "$((mb - ma))" "$(awk -v a="$ma" -v b="$mb" 'BEGIN {print b / a}')"
}

echo "machine: $(nproc) cores, $(uname -m); $RUNS interleaved pairs, ms median (min–max); before = $BASE"
echo "| recipe | before (old jail) | after (this jail) | cost | ratio |"
echo "|---|---|---|---|---|"
bench hello-c "$repo/recipes/hello-c"
bench zlib "$repo/recipes/zlib"
