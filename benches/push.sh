#!/usr/bin/env bash
# Pushes one generated OCI image with `staticpack push` and with
# `skopeo copy oci:… docker://…`, each to its own fresh local docker-registry (same config), then
# re-pushes it unchanged. Prints the median times and the ratios staticpack/skopeo (below 1:
# staticpack is faster). A benchmark script, not a timed test.
#
#   SIZE_MB=64 LAYERS=4 RUNS=3 bash benches/push.sh
set -euo pipefail
cd "$(dirname "$0")/.."

SIZE_MB=${SIZE_MB:-64}
LAYERS=${LAYERS:-4}
RUNS=${RUNS:-3}
PROFILE=${PROFILE:-release}

for tool in docker-registry skopeo gzip sha256sum; do
  command -v "$tool" >/dev/null || {
    echo "benches/push.sh needs $tool: bash .ci/setup (apt-get install docker-registry skopeo)" >&2
    exit 1
  }
done

work=$(mktemp -d)
registry_pid=""
cleanup() {
  [ -n "$registry_pid" ] && kill "$registry_pid" 2>/dev/null && wait "$registry_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

echo "building staticpack ($PROFILE)…" >&2
if [ "$PROFILE" = release ]; then
  cargo build --quiet --release --bin staticpack
  bin_dir=release
else
  cargo build --quiet --bin staticpack
  bin_dir=debug
fi
push_bin="${CARGO_TARGET_DIR:-target}/$bin_dir/staticpack"
# Its blob-location cache (for cross-repository mounts) starts empty, like skopeo's.
export XDG_CACHE_HOME="$work/cache"

# --- the image: LAYERS gzip layers of random bytes, sizes 4:3:2:1…, SIZE_MB in all ---------------
layout="$work/layout"
mkdir -p "$layout/blobs/sha256"
echo '{"imageLayoutVersion":"1.0.0"}' >"$layout/oci-layout"
add_blob() { # file → prints "digest size", moves the file into blobs/
  local d s
  d=$(sha256sum <"$1" | cut -d' ' -f1)
  s=$(stat -c %s "$1")
  mv "$1" "$layout/blobs/sha256/$d"
  echo "$d $s"
}
weights=0
for ((i = 1; i <= LAYERS; i++)); do weights=$((weights + i)); done
layers="" diff_ids=""
for ((i = LAYERS; i >= 1; i--)); do
  bytes=$((SIZE_MB * 1024 * 1024 * i / weights))
  head -c "$bytes" /dev/urandom >"$work/raw"
  diff_ids+="${diff_ids:+,}\"sha256:$(sha256sum <"$work/raw" | cut -d' ' -f1)\""
  gzip -1 -c "$work/raw" >"$work/blob"
  read -r d s < <(add_blob "$work/blob")
  layers+="${layers:+,}{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"sha256:$d\",\"size\":$s}"
done
rm -f "$work/raw"
printf '{"architecture":"amd64","os":"linux","config":{},"rootfs":{"type":"layers","diff_ids":[%s]}}' \
  "$diff_ids" >"$work/blob"
read -r cd cs < <(add_blob "$work/blob")
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[%s]}' \
  "$cd" "$cs" "$layers" >"$work/blob"
read -r md ms < <(add_blob "$work/blob")
printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"bench"}}]}' \
  "$md" "$ms" >"$layout/index.json"

# --- a fresh registry per measurement: nothing is there yet, nothing can be mounted ---------------
free_port() {
  local port
  while :; do
    port=$((20000 + RANDOM % 40000))
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || { echo "$port"; return; }
  done
}
start_registry() {
  port=$(free_port)
  local dir="$work/registry-$port"
  mkdir -p "$dir"
  cat >"$dir/config.yml" <<EOF
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $dir/storage
http:
  addr: 127.0.0.1:$port
  secret: bench
EOF
  docker-registry serve "$dir/config.yml" >"$dir/log" 2>&1 &
  registry_pid=$!
  for _ in $(seq 200); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return
    sleep 0.05
  done
  echo "docker-registry did not start:" >&2
  cat "$dir/log" >&2
  exit 1
}
stop_registry() {
  kill "$registry_pid" 2>/dev/null || true
  wait "$registry_pid" 2>/dev/null || true
  registry_pid=""
}
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
median() { tr ' ' '\n' | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

sp_push="" sp_again="" sk_push="" sk_again=""
for ((run = 1; run <= RUNS; run++)); do
  start_registry
  t0=$(now)
  "$push_bin" push "$layout:bench" "127.0.0.1:$port/bench:v1" >/dev/null
  t1=$(now)
  "$push_bin" push "$layout:bench" "127.0.0.1:$port/bench:v1" >/dev/null
  t2=$(now)
  sp_push+=" $(elapsed "$t0" "$t1")" sp_again+=" $(elapsed "$t1" "$t2")"
  # Not timed: the registry must serve exactly the manifest that was pushed.
  got=$(skopeo --insecure-policy inspect --raw --tls-verify=false "docker://127.0.0.1:$port/bench:v1" | sha256sum | cut -d' ' -f1)
  [ "$got" = "$md" ] || { echo "staticpack pushed the wrong manifest: $got != $md" >&2; exit 1; }
  stop_registry

  start_registry
  t0=$(now)
  skopeo --insecure-policy copy --quiet --dest-tls-verify=false \
    "oci:$layout:bench" "docker://127.0.0.1:$port/bench:v1"
  t1=$(now)
  skopeo --insecure-policy copy --quiet --dest-tls-verify=false \
    "oci:$layout:bench" "docker://127.0.0.1:$port/bench:v1"
  t2=$(now)
  sk_push+=" $(elapsed "$t0" "$t1")" sk_again+=" $(elapsed "$t1" "$t2")"
  stop_registry
done

report() { # label staticpack-times skopeo-times
  local sp sk
  sp=$(echo "$2" | median)
  sk=$(echo "$3" | median)
  awk -v l="$1" -v sp="$sp" -v sk="$sk" \
    'BEGIN { printf "%-28s staticpack %7.3fs   skopeo %7.3fs   ratio %.2f\n", l, sp, sk, sp / sk }'
}
echo "image: ${SIZE_MB} MiB in $LAYERS layers, median of $RUNS runs, $(nproc) CPUs"
report "push to an empty registry:" "$sp_push" "$sk_push"
report "re-push unchanged image:" "$sp_again" "$sk_again"
