#!/usr/bin/env bash
# hab's whole test suite, as CI runs it: installs what is missing (Rust toolchain check,
# servers from Debian's packages), then formatting, lints, and every test — unit tests,
# CLI tests and live tests that start real RabbitMQ and Redis processes on loopback ports.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v cargo >/dev/null 2>&1 || { echo "test.sh: cargo is missing: install Rust (https://rustup.rs)" >&2; exit 1; }
scripts/install-servers.sh
# Headless Chromium for the report's layout check.
scripts/install-test-tools.sh
# The real Celery worker the live tests also run (a virtualenv with celery from PyPI).
scripts/celery/setup.sh
# kubernetes-validate (PyPI), which tests/deploy_kubernetes.rs runs on deploy/kubernetes/.
scripts/kubernetes/setup.sh

# A one-off build (CI's clean clone) gains nothing from incremental state, ~1.8 GB of it.
if [ -n "${CI:-}" ]; then export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"; fi

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets --locked -- -D warnings
echo "== cargo test (unit, CLI and live tests)"
# Property tests (the worker's triage of arbitrary deliveries): a fixed case count.
export PROPTEST_CASES="${PROPTEST_CASES:-1024}"
# Live tests start their own servers; two at a time is what 2 cores can take. With
# cargo-nextest (on this project's machines; .config/nextest.toml) the two slots are
# shared by all test files, so a file's long test no longer idles a core while the next
# file waits (~13 min of tests instead of ~17), and tests that run a whole HA stack take
# turns across files. Without it, cargo test runs the same tests file by file.
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --locked --no-fail-fast --test-threads "${HAB_TEST_THREADS:-2}"
  # nextest does not run doctests.
  cargo test --locked --doc
else
  echo "test.sh: cargo-nextest is not installed; running the tests with cargo test (slower: file by file)"
  cargo test --locked -- --test-threads "${HAB_TEST_THREADS:-2}"
fi
echo "== cargo test --bench '*' (each benchmark once)"
# Only the bench targets: `--benches` would also run the library's unit tests a second time.
cargo test --locked --bench '*'
echo "test.sh: all passed"
