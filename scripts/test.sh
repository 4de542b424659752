#!/usr/bin/env bash
# Runs every proxyha test: installs what the build and the tests need
# (scripts/setup.sh), checks formatting and lints, then runs the unit,
# property, integration and (as root) network-namespace tests.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh

echo "== cargo fmt --check"
cargo fmt --check

echo "== cargo clippy --all-targets -- -D warnings"
cargo clippy --quiet --all-targets -- -D warnings

echo "== cargo test (unit, property, integration; benches in test mode)"
if [ "$(id -u)" -ne 0 ]; then
  echo "note: not root: the network-namespace tests will skip themselves"
fi
cargo test --all-targets --no-fail-fast
