# Convenience recipes; the README's two commands work without `just` (cargo install just).

# install the toolchains and tools (idempotent)
setup:
    bash .ci/setup

# build, verify, pack and prove the hello-c example
demo: setup
    cargo run --release -- build recipes/hello-c

# the whole test suite, as CI runs it
test:
    bash .ci/run

lint:
    cargo fmt --all -- --check
    cargo clippy --all-targets -- -D warnings

# every bench: layers against gzip/pigz/zstd/umoci(/buildah), one vs two platforms, the no-op
# rebuild, push against skopeo copy, the overhead over the bare compiler command, the build
# jail's cost against the commit before it
bench:
    bash benches/layers.sh
    bash benches/platforms.sh
    bash benches/cache.sh
    bash benches/push.sh
    bash benches/overhead.sh
    bash benches/jail.sh
