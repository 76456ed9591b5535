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

# layer assembly speed and size against gzip, pigz, zstd and umoci (benches/layers.sh)
bench:
    bash benches/layers.sh
