#!/usr/bin/env bash
# Layer assembly speed and size: staticpack's layer step (examples/pack_layer: tar → sha256 →
# parallel gzip → sha256 → blob) against the shell pipelines doing the same work, on inputs made of
# real static binaries (not random, not zeros) of 10, 100 and 400 MiB. Runs are interleaved
# (A B C … A B C …), PAIRS rounds; prints medians with min–max and staticpack's ratio to each.
# A benchmark script, not a timed test. Goals (issue 14): ≤ 0.3× gzip -6, ≤ 0.55× pigz -6 at
# ≤ 1.02× pigz's size.
#
#   PAIRS=3 SIZES="10 100 400" bash benches/layers.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PAIRS=${PAIRS:-3}
SIZES=${SIZES:-10 100 400}

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

tools=(staticpack gzip-6 zstd-3)
command -v pigz >/dev/null && tools+=(pigz-6)
command -v umoci >/dev/null && tools+=(umoci-insert)
command -v buildah >/dev/null && tools+=(buildah)

run_tool() { # TOOL INPUT → prints compressed size
  local in=$1/app
  case $2 in
    staticpack) rm -rf "$1/blobs"; "$pack" "$in" "$1/blobs" | awk '{print $3}' ;;
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

printf '%-6s %-13s %-22s %-12s %s\n' MiB tool "wall ms median (min–max)" size "staticpack ÷ tool (time, size)"
for mib in $SIZES; do
  d="$work/$mib" && mkdir -p "$d"
  make_input "$mib" "$d/app"
  declare -A times=() sizes=()
  for _ in $(seq "$PAIRS"); do
    for t in "${tools[@]}"; do
      t0=$(now_ns)
      s=$(run_tool "$d" "$t" 2>/dev/null | tail -1)
      times[$t]+="$(( ($(now_ns) - t0) / 1000000 )) "
      sizes[$t]=$s
    done
  done
  sp=$(tr ' ' '\n' <<<"${times[staticpack]}" | grep . | median)
  for t in "${tools[@]}"; do
    m=$(tr ' ' '\n' <<<"${times[$t]}" | grep . | median)
    printf '%-6s %-13s %-22s %-12s %s\n' "$mib" "$t" \
      "$(tr ' ' '\n' <<<"${times[$t]}" | grep . | stats)" "${sizes[$t]}" \
      "$(awk -v a="$sp" -v b="$m" -v x="${sizes[staticpack]}" -v y="${sizes[$t]}" \
        'BEGIN {printf "%.2f×, %.3f×", a / b, x / y}')"
  done
  unset times sizes
  rm -rf "$d"
done
