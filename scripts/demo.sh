#!/usr/bin/env bash
# The main job on a fresh Debian machine: install what is missing, build in release mode,
# compare the HA topology with the standalone baseline on the seed workloads (the cost of
# HA) and their failover phase (what it buys). Writes results/<time>-compare-seed/ with
# both run directories, charts, report.md and report.html. Each stack's raw limits are
# measured first on the same stack, so the report sets the task path against them
# (--calibrate 1s: windows of 1 s, ~15 s per stack; with the default 3 s windows ~32 s
# per stack, a third of the comparison's overhead, for figures that agree within the
# runs' own spread — docs/performance.md). Extra arguments go to `hab compare` (e.g. --repeat 3, --json,
# --max-lost 0).
set -euo pipefail
cd "$(dirname "$0")/.."

command -v cargo >/dev/null 2>&1 || { echo "demo.sh: cargo is missing: install Rust (https://rustup.rs)" >&2; exit 1; }
scripts/install-servers.sh
cargo build --release --locked
exec "${CARGO_TARGET_DIR:-target}/release/hab" compare --topology topologies/ha.toml --calibrate 1s "$@"
