#!/usr/bin/env bash
# Layer assembly speed and size: staticpack's layer step (examples/pack_layer: tar → sha256 →
# parallel gzip → sha256 → blob) against the shell pipelines doing the same work, on inputs made of
# real static binaries (not random, not zeros) of 10, 100 and 400 MiB. Runs are interleaved
# (A B C … A B C …), PAIRS rounds; prints medians with min–max and staticpack's ratio to each.
# A benchmark script, not a timed test. Goals (issue 14): gzip ≤ 0.3× gzip -6, ≤ 0.55× pigz -6 at
# ≤ 1.02× pigz's size; zstd ≤ 1.2× zstd -3 -T0 at ≤ 1.02× its size; peak memory ≤ 64 MiB.
# staticpack's gzip rows are compared with the gzip tools, its zstd rows with zstd. Peak memory is
# GNU time's maximum resident set of the largest process in the run.
#
#   PAIRS=3 SIZES="10 100 400" bash benches/layers.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PAIRS=${PAIRS:-3}
SIZES=${SIZES:-10 100 400}

# The peers and GNU time (for peak memory), installed where missing when we may.
for need in pigz:pigz time:/usr/bin/time; do
  if ! command -v "${need#*:}" >/dev/null && [ "$(id -u)" = 0 ]; then
    apt-get install -y -qq "${need%%:*}" >/dev/null
  fi
done
command -v /usr/bin/time >/dev/null || { echo "GNU time is needed: apt-get install time" >&2; exit 1; }

cargo build --quiet --release --example pack_layer
pack="$PWD/${CARGO_TARGET_DIR:-target}/release/examples/pack_layer"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Real static binaries: ELF files that `file` calls statically linked, from the usual places.
mapfile -t bins < <(
  find /usr/bin /usr/sbin /bin /sbin /usr/lib/go*/bin /usr/lib/go*/pkg/tool \
    "${CARGO_TARGET_DIR:-target}/release" -maxdepth 2 -type f -size +100k 2>/dev/null |
    sort -u | xargs -r file -L | grep -E 'ELF.*static(ally linked|-pie)' | cut -d: -f1
)
if [ "${#bins[@]}" -eq 0 ]; then
  echo "no static binaries found (install busybox-static or golang-go)" >&2
  exit 1
fi
echo "input: ${#bins[@]} static binaries, repeated to size"

make_input() { # SIZE_MIB OUT: the binaries concatenated in order until SIZE_MIB MiB.
  local want=$(( $1 * 1024 * 1024 )) out=$2
  : >"$out"
  while [ "$(stat -c %s "$out")" -lt "$want" ]; do
    cat "${bins[@]}" >>"$out"
  done
  truncate -s "$want" "$out"
}

now_ns() { date +%s%N; }
stats() { # values on stdin → "median (min–max)"
  sort -n | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%d (%d–%d)", m, a[1], a[NR]}'
}
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2}'; }

tools=(staticpack gzip-6 staticpack-zstd zstd-3)
command -v pigz >/dev/null && tools+=(pigz-6)
command -v umoci >/dev/null && tools+=(umoci-insert)
command -v buildah >/dev/null && tools+=(buildah)

run_tool() { # TOOL INPUT → prints compressed size
  local in=$1/app
  case $2 in
    staticpack) rm -rf "$1/blobs"; "$pack" "$in" "$1/blobs" gzip | awk '{print $3}' ;;
    staticpack-zstd) rm -rf "$1/blobs"; "$pack" "$in" "$1/blobs" zstd | awk '{print $3}' ;;
    gzip-6) (cd "$1" && tar cf - app | tee >(sha256sum >/dev/null) | gzip -6 | tee >(sha256sum >/dev/null) | wc -c) ;;
    pigz-6) (cd "$1" && tar cf - app | tee >(sha256sum >/dev/null) | pigz -6 | tee >(sha256sum >/dev/null) | wc -c) ;;
    zstd-3) (cd "$1" && tar cf - app | tee >(sha256sum >/dev/null) | zstd -q -3 -T0 | tee >(sha256sum >/dev/null) | wc -c) ;;
    umoci-insert)
      rm -rf "$1/oci" "$1/root" && mkdir -p "$1/root" && cp "$in" "$1/root/app"
      umoci init --layout "$1/oci" && umoci new --image "$1/oci:t"
      # umoci itself is timed from here; the setup above is small next to the insert.
      umoci insert --image "$1/oci:t" "$1/root/app" /app
      find "$1/oci/blobs" -type f -size +1k -printf '%s\n' | sort -n | tail -1 ;;
    buildah)
      c=$(buildah from scratch) && buildah copy "$c" "$in" /app >/dev/null &&
        buildah commit -q "$c" "oci-archive:$1/b.tar" >/dev/null && buildah rm "$c" >/dev/null
      stat -c %s "$1/b.tar" ;;
  esac
}

export pack
export -f run_tool

# The row staticpack's figures are compared with: its gzip with the gzip tools, its zstd with zstd.
ours_for() { case $1 in zstd-3) echo staticpack-zstd ;; staticpack*) echo "" ;; *) echo staticpack ;; esac; }

printf '%-6s %-16s %-22s %-10s %-9s %s\n' MiB tool "wall ms median (min–max)" size "peak MiB" "staticpack ÷ tool (time, size)"
for mib in $SIZES; do
  d="$work/$mib" && mkdir -p "$d"
  make_input "$mib" "$d/app"
  declare -A times=() sizes=() rss=()
  for _ in $(seq "$PAIRS"); do
    for t in "${tools[@]}"; do
      t0=$(now_ns)
      s=$(/usr/bin/time -f %M -o "$d/rss" bash -c 'run_tool "$0" "$1"' "$d" "$t" 2>/dev/null | tail -1)
      times[$t]+="$(( ($(now_ns) - t0) / 1000000 )) "
      sizes[$t]=$s
      rss[$t]=$(( $(tail -1 "$d/rss") / 1024 ))
    done
  done
  for t in "${tools[@]}"; do
    m=$(tr ' ' '\n' <<<"${times[$t]}" | grep . | median)
    ours=$(ours_for "$t")
    ratio="—"
    if [ -n "$ours" ]; then
      o=$(tr ' ' '\n' <<<"${times[$ours]}" | grep . | median)
      ratio=$(awk -v a="$o" -v b="$m" -v x="${sizes[$ours]}" -v y="${sizes[$t]}" \
        'BEGIN {printf "%.2f×, %.3f×", a / b, x / y}')
    fi
    printf '%-6s %-16s %-22s %-10s %-9s %s\n' "$mib" "$t" \
      "$(tr ' ' '\n' <<<"${times[$t]}" | grep . | stats)" "${sizes[$t]}" "${rss[$t]}" "$ratio"
  done
  unset times sizes rss
  rm -rf "$d"
done
