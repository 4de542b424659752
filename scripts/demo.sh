#!/usr/bin/env bash
# The main job: the original's example Proxy HA cluster.
#
# Today this validates the example cluster's configs (pipelines/) and prints the
# resolved settings of each node. The network-namespace lab that runs the
# cluster end to end (VRRP election, failover, balancing) comes with issue 6;
# until then this script says so plainly instead of pretending.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
echo "== building proxyha (release)"
cargo build --quiet --release

for f in pipelines/cluster-a/*.toml pipelines/cluster-b/*.toml; do
  echo
  echo "== proxyha config check $f"
  ./target/release/proxyha config check "$f"
done
echo
echo "demo: all example configs are valid."
echo "demo: the end-to-end namespace lab is not built yet (issue 6); nothing was started."
