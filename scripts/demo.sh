#!/usr/bin/env bash
# The main job on a fresh Debian machine: install what is missing, build in release mode,
# run the seed workloads on the standalone topology. Extra arguments go to `hab run`.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v cargo >/dev/null 2>&1 || { echo "demo.sh: cargo is missing: install Rust (https://rustup.rs)" >&2; exit 1; }
scripts/install-servers.sh
cargo build --release --locked
exec "${CARGO_TARGET_DIR:-target}/release/hab" run --topology topologies/standalone.toml --workload workloads/seed.toml "$@"
