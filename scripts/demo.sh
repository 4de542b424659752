#!/usr/bin/env bash
# The main job: the original's example Proxy HA cluster, end to end, in
# network namespaces on this machine (see scripts/lab.sh for the topology).
#
#  1. installs what it needs and builds proxyha in release mode
#  2. brings the lab up: client, origin, director-a (99), director-b (89), scanner-c (0)
#  3. sends requests from the client through VIP:9090 and shows which node served each
#  4. prints `proxyha status` from both directors and `proxyha stats` from the active one
#  5. kill -9s the Active Director while requests keep flowing, and measures the downtime
#  6. restarts it and shows preemption
#  7. prints a summary and tears everything down (also on failure or Ctrl-C)
#
# Options are passed to `scripts/lab.sh up`, e.g. `scripts/demo.sh --queues 4`
# runs the cluster on links with 4 RX/TX queues (one pinned worker per queue).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
export LAB_DIR=${LAB_DIR:-/tmp/proxyha-demo}
export PROXYHA=$ROOT/target/release/proxyha
LAB=scripts/lab.sh
VIP=198.18.0.250
URL=http://198.18.0.200/index.html
T0=$(date +%s.%N)

step() { printf '\n== [%5.1fs] %s\n' "$(awk -v a="$(date +%s.%N)" -v b="$T0" 'BEGIN {print a - b}')" "$*"; }
die() { echo "demo: FAILED: $*" >&2; exit 1; }
cleanup() { step "tearing the lab down"; $LAB down || true; }

if [ "$(id -u)" -ne 0 ]; then die "run as root (network namespaces, XDP)"; fi

step "installing packages (scripts/setup.sh)"
scripts/setup.sh

step "building proxyha (release)"
cargo build --quiet --release --bin proxyha

trap cleanup EXIT
trap 'exit 130' INT TERM

step "bringing the lab up (scripts/lab.sh up $*)"
$LAB up "$@"

st() { "$PROXYHA" status --node "$1" "${@:2}"; }
vrrp_state() { st "$1" --json 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["vrrp_state"])' 2>/dev/null || echo down; }
wait_state() { # node state seconds
  local i
  for ((i = 0; i < $3 * 10; i++)); do
    [ "$(vrrp_state "$1")" = "$2" ] && return 0
    sleep 0.1
  done
  return 1
}
served_by() { # [timeout] one request; prints the node that served it or FAIL
  $LAB exec client curl -s -m "${1:-2}" -o /dev/null -D - -x "http://$VIP:9090" "$URL" 2>/dev/null \
    | tr -d '\r' | awk '/^X-Cache:/ {print $NF; found=1} END {if (!found) print "FAIL"}' || true
}

step "waiting for the election (director-a, priority 99, should become Master)"
wait_state director-a Master 15 || die "director-a did not become Master"
wait_state director-b Backup 5 || die "director-b is not Backup"
echo "director-a: Master   director-b: Backup"

step "12 requests from the client through $VIP:9090"
declare -A count=()
for i in $(seq 1 12); do
  n=$(served_by)
  count[$n]=$(( ${count[$n]:-0} + 1 ))
  printf '  request %2d -> served by %s\n' "$i" "$n"
done
[ -z "${count[FAIL]:-}" ] || die "${count[FAIL]} requests failed"

step "sleeping 3 s so that heartbeats report every node"
sleep 3
step "proxyha status on director-a (Active Director)"
st director-a
step "proxyha status on director-b (Passive Director)"
st director-b
step "proxyha check on scanner-c (the original's mwg-mon -c)"
$LAB exec scan "$PROXYHA" check --config "$LAB_DIR/scanner-c/node.toml"
step "proxyha stats on director-a"
"$PROXYHA" stats --node director-a

step "kill -9 the Active Director while the client keeps sending requests"
LOOP_LOG=$LAB_DIR/failover.log
: > "$LOOP_LOG"
(
  end=$(( $(date +%s) + 12 ))
  while [ "$(date +%s)" -lt "$end" ]; do
    n=$(served_by 0.5)
    echo "$(date +%s.%N) $n" >> "$LOOP_LOG"
    sleep 0.1
  done
) &
LOOP=$!
sleep 2
KILL_AT=$(date +%s.%N)
kill -9 "$(cat "$LAB_DIR/director-a/proxyha.pid")"
echo "killed director-a's proxyha at $(date -d @"$KILL_AT" +%T.%N | cut -c1-12)"
wait_state director-b Master 10 || die "director-b did not take over"
echo "director-b is Master"
wait "$LOOP"
DOWNTIME=$(python3 - "$LOOP_LOG" "$KILL_AT" <<'PY'
import sys
kill = float(sys.argv[2])
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
# Times are when each request finished, so one that started before the kill
# may finish after it: the downtime is the longest gap between two successful
# requests that spans the kill.
ok = sorted(float(t) for t, n in rows if n != "FAIL")
fails = sum(1 for t, n in rows if n == "FAIL")
gaps = [b - a for a, b in zip(ok, ok[1:]) if b > kill]
if not gaps or ok[0] > kill:
    print("unknown"); sys.exit()
print(f"{max(gaps):.2f}s ({fails} failed requests, {len(rows)} sent)")
PY
)
echo "downtime seen by the client: $DOWNTIME"
echo "who served the requests after the takeover:"
awk -v k="$KILL_AT" '$1 > k {print $2}' "$LOOP_LOG" | sort | uniq -c | sed 's/^/  /'

step "restarting director-a: it preempts and becomes Active again"
$LAB restart director-a
wait_state director-a Master 15 || die "director-a did not preempt"
wait_state director-b Backup 5 || die "director-b did not step back"
echo "director-a: Master   director-b: Backup"
n=$(served_by)
echo "a request after preemption was served by $n"
[ "$n" != FAIL ] || die "request after preemption failed"

step "summary"
echo "  election:   director-a (99) Master, director-b (89) Backup"
echo "  balancing:  $(for k in "${!count[@]}"; do printf '%s=%s ' "$k" "${count[$k]}"; done)"
echo "  failover:   downtime $DOWNTIME"
echo "  preemption: director-a Master again"
echo "demo: OK"
