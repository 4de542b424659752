#!/usr/bin/env bash
# The original's example Proxy HA cluster in network namespaces.
#
#   scripts/lab.sh up [--no-proxyha] [--version 2|3] [--group-b]
#                                                       build the lab (and start proxyha on each node);
#                                                       --version 3 runs VRRPv3 with 10 cs adverts,
#                                                       --group-b adds a second Proxy HA group (LBID 20,
#                                                       VRID 52, VIP 198.18.0.251, its own heartbeat
#                                                       key) on the same segment,
#                                                       --redirect-80 adds a port redirect 80 -> 9090,
#                                                       --rogue adds a host with no role (198.18.0.66)
#                                                       for the hostile-peer tests,
#                                                       --queues N gives every link N RX and N TX queues
#                                                       (proxyha serves them all: dataplane.queues = "all"),
#                                                       --supervise runs each daemon under a supervisor loop
#                                                       that restarts it 0.5 s after it dies (where there is
#                                                       no systemd: packaging/systemd/proxyha@.service does
#                                                       the same with Restart=always),
#                                                       --vlan ID runs the segment tagged: every host uses
#                                                       eth0.ID (802.1Q) on its veth eth0,
#                                                       --active-active runs both directors forwarding at
#                                                       once behind an ECMP router (bird2, BGP + BFD): the
#                                                       client moves to 198.19.0.100/16 behind PREFIX-router
#                                                       (docs/active-active.md)
#                                                       --extra-config FILE appends FILE (TOML, e.g. a
#                                                       [notify] or [metrics] table) to every node's config
#                                                       --ipv6 (with --version 3) adds the IPv6 VIP
#                                                       2001:2::250/64 and management_ip6 to group A
#                                                       (docs/ipv6.md; vrrp.peers is dropped, it names
#                                                       IPv4 sources only)
#   scripts/lab.sh down                                 tear everything down (always safe to run)
#   scripts/lab.sh exec NODE CMD...                     run CMD inside a node's namespace
#   scripts/lab.sh status                               show what runs where
#   scripts/lab.sh restart NODE                         (re)start proxyha on one node
#   scripts/lab.sh birdc NODE CMD...                    ask bird2 on router, director-a or director-b
#
# Topology (the original's example segment becomes 198.18.0.0/24):
#
#   pha-sw      the L2 segment: bridge br0 (in its own namespace)
#   pha-client  198.18.0.100   the client, uses 198.18.0.250:9090 as its proxy
#   pha-dira    198.18.0.1     Active Director / Scanning Node  (priority 99)
#   pha-dirb    198.18.0.2     Passive Director / Scanning Node (priority 89)
#   pha-scan    198.18.0.3     Scanning Node only               (priority 0)
#   pha-origin  198.18.0.200   the origin web server (port 80)
#   VIP 198.18.0.250/24, VRID 51, LBID 10, port redirect http 9090 -> 9090
#   Every host also has 2001:2::N/64 (N: the last octet of its IPv4 address,
#   written as IPv6 text: 198.18.0.100 -> 2001:2::100), from 2001:2::/48.
#
# With --active-active (cluster.mode = "active-active" on every node):
#
#   pha-router  198.18.0.254 on the segment, 198.19.0.1/16 towards the client;
#               bird2 (AS 65000) learns VIP/32 from both directors over BGP
#               with BFD and installs it as one ECMP route (layer-4 hash:
#               net.ipv4.fib_multipath_hash_policy=3 with the five-tuple
#               fields, see add_router)
#   pha-client  198.19.0.100/16, default route via the router
#   pha-dira/b  bird2 (AS 65001) next to proxyha: exports table 100, where
#               proxyha puts VIP/32 while it may take traffic
#   every node on the segment routes via 198.18.0.254, so the scanning
#   nodes answer the client directly through the router
#
# Every scanning node (both directors and the scanner) runs squid on 9090 with a
# config generated here; logs stay under $LAB_DIR/<node>/.
#
# Heartbeats are authenticated: each group gets a fresh key at `up`, written by
# `proxyha key new` to $LAB_DIR/group-a.key (group-b.key), mode 0600; the node
# configs point heartbeat.key_file at it. No key is ever committed.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
LAB_DIR="${LAB_DIR:-/tmp/proxyha-lab}"
PROXYHA="${PROXYHA:-$ROOT/target/release/proxyha}"
PREFIX="${LAB_PREFIX:-pha}"
VIP=198.18.0.250
SW="$PREFIX-sw"
SOCK_DIR="${LAB_SOCK_DIR:-/run/proxyha}"

# node  ns-suffix  ip  config
NODES=(
  "director-a dira 198.18.0.1 pipelines/cluster-a/director-a.toml"
  "director-b dirb 198.18.0.2 pipelines/cluster-a/director-b.toml"
  "scanner-c scan 198.18.0.3 pipelines/cluster-a/scanner-c.toml"
)
GROUP_B=(
  "b-director-a bdira 198.18.0.11 pipelines/cluster-b/director-a.toml"
  "b-scanner-c bscan 198.18.0.13 pipelines/cluster-b/scanner-c.toml"
)
# Group B is part of the lab when its marker file exists (set by `up --group-b`).
if [ -f "$LAB_DIR/group-b" ]; then NODES+=("${GROUP_B[@]}"); fi
# Active-active: the router namespace, bird2 next to each director.
AA=0
[ -f "$LAB_DIR/active-active" ] && AA=1
ROUTER_IP=198.18.0.254
ANNOUNCE_TABLE=100
# Queues per link and the VLAN, as `up` recorded them (1 and none by default).
QUEUES=1
VLAN=
[ -f "$LAB_DIR/queues" ] && QUEUES=$(cat "$LAB_DIR/queues")
[ -f "$LAB_DIR/vlan" ] && VLAN=$(cat "$LAB_DIR/vlan")
# The interface hosts use: eth0, or its VLAN interface eth0.ID.
IF=eth0
[ -n "$VLAN" ] && IF="eth0.$VLAN"

# Background daemons must not inherit our caller's pipes (a caller waiting for
# EOF would hang): close every descriptor above stderr except bash's own 255.
for fd in /proc/$$/fd/*; do
  fd=${fd##*/}
  if [ "$fd" -gt 2 ] && [ "$fd" -ne 255 ]; then eval "exec $fd>&-" 2>/dev/null || true; fi
done

log() { printf '[lab] %s\n' "$*" >&2; }
ns_of() { echo "$PREFIX-$1"; }
nsx() { local ns=$1; shift; ip netns exec "$ns" "$@"; }


add_host() { # ns-suffix ip [mac]
  local ns txq; ns=$(ns_of "$1")
  ip netns add "$ns"
  # veth hands a frame's TX queue index to the peer as a recorded RX queue
  # plus one, and a bridge forwarding it picks the outgoing TX queue from that:
  # the client's TX queue 0 is hashed, 1..N become queues 0..N-1 of the
  # director's link. One more TX queue on the client (N > 1) spreads its flows
  # over all N of the director's RX queues; with N TX queues, queue N-1
  # would get almost nothing.
  txq=$QUEUES
  if [ "$1" = client ] && [ "$QUEUES" -gt 1 ]; then txq=$((QUEUES + 1)); fi
  ip link add eth0 netns "$ns" numtxqueues "$txq" numrxqueues "$QUEUES" type veth \
    peer name "$1" netns "$SW" numtxqueues "$QUEUES" numrxqueues "$txq"
  nsx "$SW" ip link set "$1" master br0 up
  nsx "$ns" ip link set lo up
  if [ -n "${3:-}" ]; then nsx "$ns" ip link set eth0 address "$3"; fi
  nsx "$ns" ip link set eth0 up
  if [ -n "$VLAN" ]; then
    # The bridge forwards the tagged frames as they are (no VLAN filtering).
    nsx "$ns" ip link add link eth0 name "$IF" type vlan id "$VLAN"
    nsx "$ns" ip link set "$IF" up
  fi
  nsx "$ns" ip addr add "$2/24" dev "$IF"
  nsx "$ns" ip -6 addr add "2001:2::${2##*.}/64" dev "$IF" nodad
}

squid_conf() { # name ip dir
  cat <<CONF
# generated by scripts/lab.sh for $1
http_port 9090
visible_hostname $1
acl lab src 198.18.0.0/15
acl lab src 2001:2::/48
http_access allow lab
http_access deny all
cache deny all
cache_mem 8 MB
pid_filename $3/squid.pid
access_log stdio:$3/access.log
cache_log $3/cache.log
cache_store_log none
coredump_dir $3
dns_nameservers 127.0.0.1
hosts_file none
workers 1
shutdown_lifetime 1 seconds
tcp_outgoing_address $2
forwarded_for on
CONF
}

start_squid() { # name ns ip
  local dir="$LAB_DIR/$1"
  mkdir -p "$dir"
  squid_conf "$1" "$3" "$dir" > "$dir/squid.conf"
  chown -R proxy:proxy "$dir" 2>/dev/null || chmod 0777 "$dir"
  nsx "$2" squid -f "$dir/squid.conf" >"$dir/squid.out" 2>&1
}

wait_port() { # ns ip port seconds
  local i
  for ((i = 0; i < $4 * 10; i++)); do
    if nsx "$1" bash -c "exec 3<>/dev/tcp/$2/$3" 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  return 1
}

# The node's config: the file from pipelines/, with the lab's socket directory
# and, for --version 3, VRRPv3 with 10 cs adverts.
node_config() { # name config
  local dir="$LAB_DIR/$1" version=2
  [ -f "$LAB_DIR/vrrp-version" ] && version=$(cat "$LAB_DIR/vrrp-version")
  mkdir -p "$dir"
  sed -e "s|^control_socket = .*|control_socket = \"$SOCK_DIR/$1.sock\"|" "$ROOT/$2" > "$dir/node.toml"
  if [ "$version" = 3 ]; then
    sed -i -e 's|^version = 2 .*|version = 3|' -e 's|^advert_interval = .*|advert_interval = "10cs"|' "$dir/node.toml"
  fi
  # Each group's heartbeat key (HMAC-SHA256), made once per lab.
  local group=a key
  case "$1" in b-*) group=b ;; esac
  key="$LAB_DIR/group-$group.key"
  [ -f "$key" ] || "$PROXYHA" key new "$key" >/dev/null
  sed -i "s|^key_file = .*|key_file = \"$key\"|" "$dir/node.toml"
  if [ -n "$VLAN" ]; then
    sed -i "s|^interface = \"eth0\"|interface = \"$IF\"|" "$dir/node.toml"
  fi
  if [ "$AA" = 1 ]; then
    printf '\n[cluster]\nmode = "active-active"\nannounce_table = %s\n' "$ANNOUNCE_TABLE" >> "$dir/node.toml"
  fi
  if [ -f "$LAB_DIR/ipv6" ]; then
    case "$1" in
      b-*) ;;
      *)
        # IPv6 VIP and management address for group A; vrrp.peers names IPv4
        # sources only, which IPv6 VIPs do not allow (docs/ipv6.md).
        sed -i -e 's|^management_ip = "198\.18\.0\.\([0-9]*\)".*|&\nmanagement_ip6 = "2001:2::\1"|' \
          -e '/^peers = /d' "$dir/node.toml"
        printf '\n[[virtual_ip]]\naddress = "2001:2::250/64"\n' >> "$dir/node.toml"
        ;;
    esac
  fi
  if [ -f "$LAB_DIR/redirect-80" ]; then
    # A port redirect whose ports differ: proxyha adds an nftables redirect.
    printf '\n[[port_redirect]]\nprotocol = "http-alt"\noriginal_ports = "80"\nproxy_port = 9090\n' >> "$dir/node.toml"
  fi
  if [ -f "$LAB_DIR/extra.toml" ]; then
    printf '\n' >> "$dir/node.toml"
    cat "$LAB_DIR/extra.toml" >> "$dir/node.toml"
  fi
  echo "$dir/node.toml"
}

start_proxyha() { # name ns config
  local dir="$LAB_DIR/$1" cfg
  cfg=$(node_config "$1" "$3")
  if [ -e "$LAB_DIR/supervise" ]; then
    # A supervisor loop: restarts the daemon 0.5 s after it exits, until
    # the loop itself is stopped (down, restart); proxyha.pid is always the
    # current daemon's PID, supervisor.pid the loop's.
    kill_pidfile "$dir/supervisor.pid"
    (
      trap 'kill "$child" 2>/dev/null; wait "$child" 2>/dev/null; exit 0' TERM
      while :; do
        ip netns exec "$2" "$PROXYHA" run --config "$cfg" </dev/null >>"$dir/proxyha.log" 2>&1 &
        child=$!
        echo "$child" > "$dir/proxyha.pid"
        wait "$child" || true
        echo "supervisor: proxyha exited, restarting in 0.5 s" >>"$dir/proxyha.log"
        sleep 0.5
      done
    ) </dev/null >/dev/null 2>&1 &
    echo $! > "$dir/supervisor.pid"
    return
  fi
  # `ip netns exec` execs the daemon, so $! is proxyha's own PID.
  ip netns exec "$2" "$PROXYHA" run --config "$cfg" </dev/null >>"$dir/proxyha.log" 2>&1 &
  echo $! > "$dir/proxyha.pid"
}

# bird2 on the router: BGP from both directors, BFD, ECMP into the kernel.
# docs/active-active.md explains it line by line.
router_bird_conf() { # dir
  cat <<CONF
# generated by scripts/lab.sh: the upstream router (AS 65000)
log "$1/bird.log" all;
router id $ROUTER_IP;
protocol device { scan time 10; }
protocol bfd {
  interface "eth0" { interval 100 ms; multiplier 3; };
}
protocol kernel {
  ipv4 { import none; export all; };
  merge paths on;
}
template bgp director {
  local $ROUTER_IP as 65000;
  bfd on;
  hold time 3;
  keepalive time 1;
  connect retry time 1;
  error wait time 1, 5;
  ipv4 { import where net ~ [ $VIP/32 ]; export none; };
}
protocol bgp director_a from director { neighbor 198.18.0.1 as 65001; }
protocol bgp director_b from director { neighbor 198.18.0.2 as 65001; }
CONF
}

# bird2 next to a director: exports what proxyha puts in the announce table.
director_bird_conf() { # dir ip
  cat <<CONF
# generated by scripts/lab.sh: next to proxyha on $2 (AS 65001)
log "$1/bird.log" all;
router id $2;
protocol device { scan time 10; }
protocol bfd {
  interface "eth0" { interval 100 ms; multiplier 3; };
}
protocol kernel announce {
  ipv4 { import all; export none; };
  kernel table $ANNOUNCE_TABLE;
  learn;
  scan time 10;
}
protocol bgp upstream {
  local $2 as 65001;
  neighbor $ROUTER_IP as 65000;
  bfd on;
  hold time 3;
  keepalive time 1;
  connect retry time 1;
  error wait time 1, 5;
  ipv4 { import none; export where proto = "announce" && net ~ [ $VIP/32 ]; };
}
CONF
}

start_bird() { # name ns [ip]: the router when no ip
  local dir="$LAB_DIR/$1"
  mkdir -p "$dir"
  if [ -z "${3:-}" ]; then router_bird_conf "$dir" > "$dir/bird.conf"; else director_bird_conf "$dir" "$3" > "$dir/bird.conf"; fi
  nsx "$2" bird -c "$dir/bird.conf" -s "$dir/bird.ctl" -P "$dir/bird.pid" >"$dir/bird.out" 2>&1
}

# The router between the client's subnet and the segment.
add_router() {
  local r c
  r=$(ns_of router); c=$(ns_of client)
  ip netns add "$r"
  ip netns add "$c"
  ip link add eth0 netns "$r" type veth peer name router netns "$SW"
  nsx "$SW" ip link set router master br0 up
  ip link add eth1 netns "$r" type veth peer name eth0 netns "$c"
  nsx "$r" ip link set lo up
  nsx "$r" ip link set eth0 up
  nsx "$r" ip link set eth1 up
  nsx "$r" ip addr add "$ROUTER_IP/24" dev eth0
  nsx "$r" ip addr add 198.19.0.1/16 dev eth1
  # Layer-4 ECMP: the next hop is a hash of the five-tuple. Policy 1 would
  # be that on a router fed by a wire, but a veth hands the router the
  # client socket's own random flow hash (skb->hash, set from sk_txhash,
  # re-drawn by TCP after a retransmission timeout), and policy 1 uses any
  # such hash as it is: flows would land at random and move on timeouts.
  # Policy 3 with the fields src/dst address, protocol, src/dst port
  # (0x0037) always hashes the five-tuple, as `ip route get ... sport P`
  # computes it.
  nsx "$r" sysctl -qw net.ipv4.ip_forward=1 net.ipv4.fib_multipath_hash_policy=3 \
    net.ipv4.fib_multipath_hash_fields=0x0037 \
    net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.eth0.rp_filter=0 net.ipv4.conf.eth1.rp_filter=0
  nsx "$c" ip link set lo up
  nsx "$c" ip link set eth0 up
  nsx "$c" ip addr add 198.19.0.100/16 dev eth0
  nsx "$c" ip route add default via 198.19.0.1
}

up() {
  local start_ha=1 version=2 group_b=0 redirect80=0 rogue=0 aa=0 queues=1 vlan= supervise=0 extra= ipv6=0 n name sfx ip cfg
  while [ $# -gt 0 ]; do
    case "$1" in
      --no-proxyha) start_ha=0 ;;
      --queues) queues="${2:-}"; shift ;;
      --vlan) vlan="${2:-}"; shift ;;
      --version) version="${2:-}"; shift ;;
      --group-b) group_b=1 ;;
      --redirect-80) redirect80=1 ;;
      --extra-config) extra="${2:-}"; shift ;;
      --rogue) rogue=1 ;;
      --supervise) supervise=1 ;;
      --active-active) aa=1 ;;
      --ipv6) ipv6=1 ;;
      *) echo "lab.sh up: unknown option $1" >&2; exit 2 ;;
    esac
    shift
  done
  case "$version" in 2|3) ;; *) echo "lab.sh up: --version must be 2 or 3" >&2; exit 2 ;; esac
  if [ "$ipv6" = 1 ] && [ "$version" != 3 ]; then
    echo "lab.sh up: --ipv6 needs --version 3 (VRRPv2 is IPv4 only)" >&2; exit 2
  fi
  if ! [[ "$queues" =~ ^[0-9]+$ ]] || [ "$queues" -lt 1 ] || [ "$queues" -gt 64 ]; then
    echo "lab.sh up: --queues must be 1..64" >&2; exit 2
  fi
  if [ -n "$vlan" ] && { ! [[ "$vlan" =~ ^[0-9]+$ ]] || [ "$vlan" -lt 1 ] || [ "$vlan" -gt 4094 ]; }; then
    echo "lab.sh up: --vlan must be 1..4094" >&2; exit 2
  fi
  if [ -n "$vlan" ]; then
    modprobe 8021q 2>/dev/null || true
    if [ ! -e /proc/net/vlan/config ]; then
      echo "lab.sh up: --vlan needs the kernel's 802.1Q support (CONFIG_VLAN_8021Q, module 8021q); this kernel has none" >&2
      exit 2
    fi
  fi
  down >/dev/null 2>&1 || true
  mkdir -p "$LAB_DIR"
  rm -f "$LAB_DIR/group-a.key" "$LAB_DIR/group-b.key"   # fresh keys for every lab
  echo "$version" > "$LAB_DIR/vrrp-version"
  echo "$queues" > "$LAB_DIR/queues"
  if [ "$supervise" = 1 ]; then touch "$LAB_DIR/supervise"; fi
  QUEUES=$queues
  if [ -n "$vlan" ]; then echo "$vlan" > "$LAB_DIR/vlan"; else rm -f "$LAB_DIR/vlan"; fi
  VLAN=$vlan
  IF=eth0
  [ -n "$VLAN" ] && IF="eth0.$VLAN"
  if [ "$group_b" = 1 ]; then touch "$LAB_DIR/group-b"; NODES+=("${GROUP_B[@]}"); fi
  if [ "$redirect80" = 1 ]; then touch "$LAB_DIR/redirect-80"; else rm -f "$LAB_DIR/redirect-80"; fi
  if [ "$aa" = 1 ]; then
    command -v bird >/dev/null || { echo "lab.sh up: --active-active needs bird2 (scripts/setup.sh)" >&2; exit 2; }
    if [ -n "$vlan" ] || [ "$group_b" = 1 ]; then
      echo "lab.sh up: --active-active does not combine with --vlan or --group-b" >&2; exit 2
    fi
    touch "$LAB_DIR/active-active"
  else
    rm -f "$LAB_DIR/active-active"
  fi
  AA=$aa
  if [ -n "$extra" ]; then cp "$extra" "$LAB_DIR/extra.toml"; else rm -f "$LAB_DIR/extra.toml"; fi
  if [ "$ipv6" = 1 ]; then touch "$LAB_DIR/ipv6"; else rm -f "$LAB_DIR/ipv6"; fi
  log "segment: bridge br0 in $SW"
  ip netns add "$SW"
  nsx "$SW" ip link add br0 type bridge
  # No multicast snooping: the lab has no MLD querier, and neighbour
  # discovery's solicited-node groups and ff02::12 must reach every port.
  nsx "$SW" ip link set br0 type bridge mcast_snooping 0
  nsx "$SW" ip link set br0 up
  for k in net.bridge.bridge-nf-call-iptables net.bridge.bridge-nf-call-ip6tables net.bridge.bridge-nf-call-arptables; do
    nsx "$SW" sysctl -qw "$k=0" 2>/dev/null || true
  done

  if [ "$AA" = 1 ]; then
    log "router: 198.18.0.254 on the segment, 198.19.0.1/16 to the client (198.19.0.100)"
    add_router
  else
    add_host client 198.18.0.100
  fi
  # veth offloads TX checksums: a packet then carries only a partial checksum
  # plus kernel metadata that says so. The director's AF_XDP copy of the frame
  # loses that metadata, so the scanning node would see a bad checksum and drop
  # it. Real NICs put full checksums on the wire; the lab's client must too.
  nsx "$(ns_of client)" ethtool -K eth0 tx off >/dev/null
  if [ -n "$VLAN" ]; then nsx "$(ns_of client)" ethtool -K "$IF" tx off >/dev/null; fi
  # A small receive window keeps a rate-limited download on the wire for its
  # whole length (with the default 6 MiB window the 4 MiB test file would sit
  # in the client's socket buffer within a second), so the failover tests'
  # long-lived connections really are in flight across a takeover.
  nsx "$(ns_of client)" sysctl -qw net.ipv4.tcp_rmem="4096 16384 65536"
  add_host origin 198.18.0.200
  # A host on the segment with no role, for the hostile-peer tests: it sends
  # forged frames (scripts/inject.py) and must never receive client flows.
  if [ "$rogue" = 1 ]; then add_host rogue 198.18.0.66; fi
  # XDP_TX into a veth reaches the peer only if the peer runs an XDP program:
  # the directors' fast path (docs/dataplane.md) forwards with XDP_TX, so the
  # switch side of every node's veth gets a pass-everything program, as a
  # real NIC needs none.
  clang -O2 -target bpf -I "$ROOT/src/bpf" -c "$ROOT/src/bpf/pass.bpf.c" -o "$LAB_DIR/pass.bpf.o"
  for n in "${NODES[@]}"; do
    read -r name sfx ip cfg <<<"$n"
    add_host "$sfx" "$ip"
    nsx "$SW" ip link set dev "$sfx" xdpdrv obj "$LAB_DIR/pass.bpf.o" sec xdp
    local ns; ns=$(ns_of "$sfx")
    # proxyha itself puts the VIP on lo with arp_ignore/arp_announce (DSR, as
    # LVS-DR) and removes it on exit; the lab only makes reverse-path
    # filtering loose for the director's TAP delivery.
    nsx "$ns" sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.eth0.rp_filter=0
    # Active-active: replies to the client (off the segment) go through the router.
    if [ "$AA" = 1 ]; then nsx "$ns" ip route add default via "$ROUTER_IP"; fi
    if [ -n "$VLAN" ]; then echo 0 | nsx "$ns" tee "/proc/sys/net/ipv4/conf/$IF/rp_filter" >/dev/null; fi
  done

  log "origin: python3 http.server on 198.18.0.200:80"
  mkdir -p "$LAB_DIR/origin/www"
  head -c 65536 /dev/urandom > "$LAB_DIR/origin/www/64k.bin"
  head -c 4194304 /dev/urandom > "$LAB_DIR/origin/www/4m.bin"
  echo "hello from the origin" > "$LAB_DIR/origin/www/index.html"
  (cd "$LAB_DIR/origin/www" && exec ip netns exec "$(ns_of origin)" python3 -m http.server 80 \
    --bind 198.18.0.200 </dev/null >"$LAB_DIR/origin/http.log" 2>&1) &
  echo $! > "$LAB_DIR/origin/http.pid"

  for n in "${NODES[@]}"; do
    read -r name sfx ip cfg <<<"$n"
    log "$name: squid on 9090 ($ip)"
    start_squid "$name" "$(ns_of "$sfx")" "$ip"
  done
  wait_port "$(ns_of origin)" 198.18.0.200 80 10 || { log "origin did not start"; exit 1; }
  for n in "${NODES[@]}"; do
    read -r name sfx ip cfg <<<"$n"
    wait_port "$(ns_of "$sfx")" "$ip" 9090 20 || { log "$name: squid did not start (see $LAB_DIR/$name/)"; exit 1; }
  done

  if [ "$AA" = 1 ]; then
    log "router: bird2 (AS 65000, BGP + BFD to both directors, ECMP)"
    start_bird router "$(ns_of router)"
    for n in "${NODES[@]}"; do
      read -r name sfx ip cfg <<<"$n"
      case "$name" in director-*) log "$name: bird2 (AS 65001, exports table $ANNOUNCE_TABLE)"; start_bird "$name" "$(ns_of "$sfx")" "$ip" ;; esac
    done
  fi
  if [ "$start_ha" = 1 ]; then
    [ -x "$PROXYHA" ] || { log "no binary at $PROXYHA (cargo build --release)"; exit 1; }
    for n in "${NODES[@]}"; do
      read -r name sfx ip cfg <<<"$n"
      log "$name: proxyha run --config $cfg"
      start_proxyha "$name" "$(ns_of "$sfx")" "$cfg"
    done
  fi
  log "up"
}

kill_pidfile() { # file
  local pid
  [ -f "$1" ] || return 0
  pid=$(cat "$1" 2>/dev/null || true)
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$1"
}

down() {
  local n name sfx ip cfg ns
  for n in "${NODES[@]}"; do
    read -r name sfx ip cfg <<<"$n"
    kill_pidfile "$LAB_DIR/$name/supervisor.pid"
    kill_pidfile "$LAB_DIR/$name/proxyha.pid"
    kill_pidfile "$LAB_DIR/$name/squid.pid"
    kill_pidfile "$LAB_DIR/$name/bird.pid"
  done
  kill_pidfile "$LAB_DIR/router/bird.pid"
  kill_pidfile "$LAB_DIR/origin/http.pid"
  rm -f "$LAB_DIR/group-b" "$LAB_DIR/queues" "$LAB_DIR/vlan" "$LAB_DIR/supervise" "$LAB_DIR/active-active" "$LAB_DIR/ipv6"
  for sfx in client origin rogue router dira dirb scan bdira bscan sw; do
    ns=$(ns_of "$sfx")
    if ip netns list | grep -qw "$ns"; then
      # Any process we started that is still in the namespace (squid's kids).
      for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
      ip netns del "$ns"
    fi
  done
  log "down"
}

status() {
  ip netns list | grep "^$PREFIX-" || echo "no lab namespaces"
}

cmd="${1:-}"
shift || true
case "$cmd" in
  up) up "$@" ;;
  down) down ;;
  exec) node="$1"; shift; nsx "$(ns_of "$node")" "$@" ;;
  status) status ;;
  birdc) # NODE CMD...: ask a node's bird2 (router, director-a, director-b)
    node="$1"; shift
    case "$node" in router) ns=$(ns_of router) ;; director-a) ns=$(ns_of dira) ;; director-b) ns=$(ns_of dirb) ;;
      *) echo "lab.sh birdc: no bird on $node" >&2; exit 2 ;; esac
    nsx "$ns" birdc -s "$LAB_DIR/$node/bird.ctl" "$@" ;;
  restart) # NODE: (re)start proxyha on one node
    found=0
    for n in "${NODES[@]}"; do
      read -r name sfx ip cfg <<<"$n"
      if [ "$name" = "${1:-}" ]; then
        kill_pidfile "$LAB_DIR/$name/supervisor.pid"
        kill_pidfile "$LAB_DIR/$name/proxyha.pid"
        start_proxyha "$name" "$(ns_of "$sfx")" "$cfg"
        found=1
      fi
    done
    [ "$found" = 1 ] || { echo "lab.sh restart: no node ${1:-}" >&2; exit 2; } ;;
  *) sed -n '2,/^# Topology/p' "$0" | sed '$d'; exit 2 ;;
esac
