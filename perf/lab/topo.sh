#!/usr/bin/env bash
# The perf lab's topology: one L2 segment (a bridge in its own namespace) with
# a generator, a director and two sinks on it, all in namespaces prefixed
# `phperf-`, addresses only in 198.19.0.0/24 (inside 198.18.0.0/15).
#
#   phperf-gen  pgen0 02:50:19:00:00:01 198.19.0.1/25 ─┐
#   phperf-dir  pdir0 00:00:5e:00:01:33 198.19.0.2/25 ─┤ phperf-sw: bridge pbr0
#               (2 queues, 1 channel until the harness asks for 2)
#   phperf-s1   ps1   02:50:19:00:00:11 198.19.0.11/25─┤  (ports psw-gen, psw-dir,
#   phperf-s2   ps2   02:50:19:00:00:12 198.19.0.12/25─┘   psw-s1, psw-s2)
#
# The VIP 198.19.0.250 is outside the nodes' /25 (nftables DNAT needs the VIP
# outside the client's subnet, see shared/lab.md). The director's interface
# carries the VRRP virtual MAC for VRID 51 itself, so that frames to it are
# for this host in the kernel baselines too.
#
# Usage: topo.sh up | down | status
# `up` first removes any leftover lab, and removes what it built if a step
# fails. XDP programs (sinks, peer stubs, the
# director's) are attached by the harness (proxyha-perflab), not here.
set -Eeuo pipefail

NSES=(phperf-sw phperf-gen phperf-dir phperf-s1 phperf-s2)

down() {
  local ns
  for ns in "${NSES[@]}"; do
    if ip netns list | grep -qw "^$ns"; then
      ip netns del "$ns" 2>/dev/null || true
    fi
  done
}

# node NS IFNAME SWPORT MAC ADDR [QUEUES]
node() {
  local ns=$1 ifn=$2 port=$3 mac=$4 addr=$5 queues=${6:-1}
  ip netns add "$ns"
  ip -n "$ns" link set lo up
  ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
  ip link add "$ifn" netns "$ns" address "$mac" numtxqueues "$queues" numrxqueues "$queues" \
    type veth peer name "$port" netns phperf-sw numtxqueues "$queues" numrxqueues "$queues"
  if [ "$queues" -gt 1 ]; then
    # Start with one channel; the harness switches to two for the 2-worker case.
    ip netns exec "$ns" ethtool -L "$ifn" rx 1 tx 1
    ip netns exec phperf-sw ethtool -L "$port" rx 1 tx 1
  fi
  ip netns exec "$ns" sysctl -qw "net.ipv6.conf.$ifn.disable_ipv6=1"
  ip -n "$ns" addr add "$addr/25" dev "$ifn"
  ip -n "$ns" link set "$ifn" up
  ip -n phperf-sw link set "$port" master pbr0 up
  bridge -n phperf-sw fdb replace "$mac" dev "$port" master static
}

up() {
  down
  # A half-built lab is removed if any step fails.
  trap 'echo "topo.sh: setup failed; removing the lab" >&2; down' ERR
  ip netns add phperf-sw
  ip -n phperf-sw link set lo up
  ip netns exec phperf-sw sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
  ip -n phperf-sw link add pbr0 type bridge stp_state 0 forward_delay 0
  ip -n phperf-sw link set pbr0 up
  # Bridge netfilter off where the kernel has it (shared/lab.md).
  local k
  for k in bridge-nf-call-iptables bridge-nf-call-ip6tables bridge-nf-call-arptables; do
    ip netns exec phperf-sw sysctl -qw "net.bridge.$k=0" 2>/dev/null || true
  done
  node phperf-gen pgen0 psw-gen 02:50:19:00:00:01 198.19.0.1
  # Two queues possible (ethtool -L), for the 2-worker case.
  node phperf-dir pdir0 psw-dir 00:00:5e:00:01:33 198.19.0.2 2
  # The IPv6 cases send to the IPv6 virtual MAC: to the director's port
  # only, never flooded to the sinks.
  bridge -n phperf-sw fdb replace 00:00:5e:00:02:33 dev psw-dir master static
  node phperf-s1 ps1 psw-s1 02:50:19:00:00:11 198.19.0.11
  node phperf-s2 ps2 psw-s2 02:50:19:00:00:12 198.19.0.12
  # The director forwards in the nftables baseline: static neighbours, no
  # ICMP redirects (the sinks are on the same segment), no reverse-path check.
  ip netns exec phperf-dir sysctl -qw net.ipv4.ip_forward=1 \
    net.ipv4.conf.all.send_redirects=0 net.ipv4.conf.pdir0.send_redirects=0 \
    net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.pdir0.rp_filter=0
  ip -n phperf-dir neigh replace 198.19.0.11 lladdr 02:50:19:00:00:11 dev pdir0 nud permanent
  ip -n phperf-dir neigh replace 198.19.0.12 lladdr 02:50:19:00:00:12 dev pdir0 nud permanent
  ip -n phperf-gen neigh replace 198.19.0.2 lladdr 00:00:5e:00:01:33 dev pgen0 nud permanent
  trap - ERR
}

status() {
  local ns
  for ns in "${NSES[@]}"; do
    if ip netns list | grep -qw "^$ns"; then
      echo "== $ns"
      ip -n "$ns" -br link
    fi
  done
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
