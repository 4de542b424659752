/* SPDX-License-Identifier: (MIT OR Apache-2.0) */
/*
 * proxyha's XDP filter: steers only proxyha's own frames into the AF_XDP
 * sockets (the XSKMAP entry of the receiving queue) and passes everything
 * else to the kernel untouched.
 *
 * To the sockets go:
 *   - IPv4 to a VIP sent to the configured MAC (the VRRP virtual MAC; an
 *     active-active director's own MAC), but only while the "active" flag
 *     is set (this node forwards: src/control/forwarding.rs): TCP/UDP on a
 *     redirected port is balanced by the workers, anything else (ICMP, other
 *     ports) is handed by them to the local stack. A backup director or a scanning node passes these frames, so
 *     the redirected frames a scanning node receives under its own MAC reach
 *     its kernel and its proxy.
 *   - ARP requests whose target address is a VIP, also only while active
 *     (the master answers for the VIP with the virtual MAC; a backup must
 *     not).
 *   - IPv4 protocol 112 (VRRP) whose VRID is ours, while the VRRP flag is set
 *     (every director listens to adverts, master or backup).
 *   - IPv4 protocol 253 (proxyha heartbeats) of this node's LBID, while the
 *     heartbeat flag is set. The LBID sits at bytes 10..12 of the heartbeat
 *     message (docs/heartbeat.md §2.1), found through the IHL so that IP
 *     options do not hide it. A heartbeat of another LBID, or one too short
 *     to carry an LBID, is dropped here and counted (STAT_DROP_HEARTBEAT):
 *     another group's traffic and forged floods never reach the control
 *     queue.
 * With FLAG_PEERS (active-active), VIP frames whose source MAC is in
 * proxyha_peers (a member's redirect to this node) are passed instead.
 * While active, everything else sent to the virtual MAC for a VIP (ICMP
 * errors, fragments, other ports) also goes to the sockets: the workers
 * steer ICMP errors and fragments of balanced flows to the owning node and
 * hand the rest to the local stack.
 * IPv6: see filter_ipv6.h.
 * One 802.1Q (or 802.1ad) tag is looked through. Non-first IPv4 fragments
 * carry no ports and are passed. A frame that qualifies but whose queue has
 * no socket in the XSKMAP is passed and counted (STAT_NO_SOCKET), except
 * VIP traffic under FLAG_DROP_ORPHANS (active-active directors), which is
 * dropped.
 *
 * The fast path (docs/dataplane.md, "The XDP fast path"): while both
 * FLAG_ACTIVE and FLAG_OFFLOAD are set, an IPv4 TCP/UDP frame to the
 * configured MAC (not a fragment) is first looked up in proxyha_flows, which
 * the workers fill with established flows only, before the VIP and port
 * checks (an IPv6 TCP/UDP frame without extension headers likewise, after
 * the IPv6 VIP check: filter_ipv6.h): an entry exists only for a flow a
 * worker balanced, and the control
 * plane moves the epoch on whenever a VIP or a port leaves (so no entry
 * outlives the VIP or port it was installed for). A hit whose node slot in
 * proxyha_nodes still has the flow's generation and keeps flows (up or
 * draining) gets its MACs rewritten and leaves with XDP_TX, counted per node
 * in proxyha_fast; the director's own share leaves with XDP_PASS
 * (destination rewritten to our_mac, so the stack takes it for the VIP on
 * lo) when FLAG_OFFLOAD_LOCAL is set. A miss, a stale generation, a SYN, a
 * fragment: on to the checks below and the sockets, as before. A SYN
 * without ACK also voids the tuple's entry (a new connection on a reused
 * tuple is the workers' to place). An entry installed under an older epoch
 * (before this node's last takeover) is a miss: the map starts empty at
 * every takeover without a walk.
 *
 * proxyha_flows is a flow cache, not a hash map: a set-associative array
 * of 8-byte entries, eight ways to a set and one 64-byte cache line per
 * set, that the workers write directly through a shared mapping
 * (BPF_F_MMAPABLE; src/xsk/fastpath.rs), with no syscall. A lookup reads
 * one cache line and takes no lock, where an LRU hash map costs a bucket
 * walk and two dependent cache misses; at 8 bytes an entry, 262,144 flows
 * take 2 MiB (half of what 16-byte entries took). The
 * set is named by the top bits of the flow's id (a keyed 64-bit hash of
 * the tuple: a random seed per filter, in the config, so an outsider can
 * neither aim tuples at one set nor forge an id), and an entry holds 31 more
 * bits of the id (its tag) beside its target, all in one word: the program
 * reads it with one load and writers replace it with one store, so a read
 * never pairs a flow with another flow's target, on any CPU.

 * The control plane writes the maps below; all-zero maps (the state right
 * after loading) steer nothing, so loading the program alone never steals
 * traffic. The Rust side mirrors these layouts in src/xsk/filter.rs.
 */
#include "bpf_defs.h"

#define FLAG_ACTIVE 0x01
#define FLAG_VRRP 0x02
#define FLAG_HEARTBEAT 0x04
#define FLAG_DROP_ORPHANS 0x08
#define FLAG_PEERS 0x10
#define FLAG_OFFLOAD 0x20
#define FLAG_OFFLOAD_LOCAL 0x40

#define STAT_RX 0
#define STAT_TO_XSK_VIP 1
#define STAT_TO_XSK_ARP 2
#define STAT_TO_XSK_VRRP 3
#define STAT_TO_XSK_HEARTBEAT 4
#define STAT_PASS 5
#define STAT_NO_SOCKET 6
#define STAT_DROP_HEARTBEAT 7
#define STAT_DROP_ORPHAN 8
#define STAT_FAST_TX 9
#define STAT_FAST_LOCAL 10
#define STAT_FAST_STALE 11
#define STAT_COUNT 12

/* Node slots (health::CAPACITY) and slot states (health::State). */
#define NODE_SLOTS 256
#define NODE_UP 1
#define NODE_DRAINING 2
/* No local slot (filter_config.local_slot). */
#define NO_SLOT 0xffff
/* The fast-path flow cache (xsk::fastpath): 2^15 sets of 8 ways. */
#define FLOW_SET_BITS 15
#define FLOW_WAYS 8
#define FLOW_SETS (1 << FLOW_SET_BITS)
#define BPF_F_MMAPABLE (1U << 10)
/*
 * An entry older than this (units of 2^30 ns: about 64 s; the stamp has 8
 * bits, so ages wrap at 256 units) is a miss: the
 * flow's next packet goes to its worker, which installs it again. So a
 * worker sees every live offloaded flow at least once a minute, and its
 * flow-table entry (300 s idle timeout) never expires under a flow that is
 * still running, in case the flow later loses its cache entry.
 */
#define FLOW_REFRESH 60

#define TCP_FIN 0x01
#define TCP_SYN 0x02
#define TCP_RST 0x04
#define TCP_ACK 0x10

#define ETH_P_IP 0x0800
#define ETH_P_ARP 0x0806
#define ETH_P_8021Q 0x8100
#define ETH_P_8021AD 0x88A8

#define IPPROTO_TCP 6
#define IPPROTO_UDP 17
#define IPPROTO_VRRP 112
#define IPPROTO_HEARTBEAT 253

/* Offset of the LBID in a heartbeat message (docs/heartbeat.md §2.1). */
#define HEARTBEAT_LBID_OFFSET 10

/* One array entry: what this node steers. 24 bytes. */
struct filter_config {
	__u8 vmac[6];
	__u8 vrid;
	__u8 flags;
	__u8 lbid[2]; /* big-endian, as on the wire */
	__u8 local_slot[2]; /* big-endian; NO_SLOT: none */
	__u8 our_mac[6]; /* the interface's MAC: the fast path's source MAC */
	__u8 pad[2];
	__u32 epoch; /* grows at every takeover: older flow entries are void */
	__u64 flow_seed; /* keys the flow cache's set index */
};

/*
 * One flow-cache set: FLOW_WAYS entries, each one 64-bit word in host order,
 *   tag | slot << 32 | generation << 40 | epoch << 48 | stamp << 56:
 *   the low 32 bits of flow_id() (bit 0 always set; a word of 0 is an empty
 *   way, or one a SYN voided), the node slot, the low 8 bits of its
 *   generation, the low 8 bits of filter_config.epoch, and the install time
 *   in units of 2^30 ns of CLOCK_MONOTONIC (coarse), low 8 bits.
 */
struct flow_set {
	__u64 way[FLOW_WAYS];
};

/* A node slot as the control plane mirrors it from the health table. */
struct node_slot {
	__u8 mac[6];
	__u16 generation;
	__u8 state; /* health::State */
	__u8 pad[3];
};

/* Per node, per CPU: what the fast path forwarded. */
struct fast_counter {
	__u64 packets;
	__u64 bytes;
};

/* One array entry: a bit per destination port, per protocol. 16 KiB. */
struct port_bitmap {
	__u64 tcp[1024];
	__u64 udp[1024];
};

struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u32);
} proxyha_xsks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct filter_config);
} proxyha_config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, __be32);
	__type(value, __u8);
} proxyha_vips SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct port_bitmap);
} proxyha_ports SEC(".maps");

/* Active-active: the cluster members' MACs (6 bytes, then 2 zero bytes). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, __u64);
	__type(value, __u8);
} proxyha_peers SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, STAT_COUNT);
	__type(key, __u32);
	__type(value, __u64);
} proxyha_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, FLOW_SETS);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, struct flow_set);
} proxyha_flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, NODE_SLOTS);
	__type(key, __u32);
	__type(value, struct node_slot);
} proxyha_nodes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, NODE_SLOTS);
	__type(key, __u32);
	__type(value, struct fast_counter);
} proxyha_fast SEC(".maps");

struct ethhdr {
	__u8 dst[6];
	__u8 src[6];
	__be16 proto;
};

struct iphdr {
	__u8 ver_ihl;
	__u8 tos;
	__be16 tot_len;
	__be16 id;
	__be16 frag_off;
	__u8 ttl;
	__u8 protocol;
	__be16 check;
	__be32 saddr;
	__be32 daddr;
};

static __always_inline void count(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&proxyha_stats, &idx);
	if (v)
		*v += 1;
}

static __always_inline int pass(void)
{
	count(STAT_PASS);
	return XDP_PASS;
}

static __always_inline int to_xsk(struct xdp_md *ctx, __u32 stat,
				  const struct filter_config *cfg)
{
	__u32 q = ctx->rx_queue_index;

	if (!bpf_map_lookup_elem(&proxyha_xsks, &q)) {
		count(STAT_NO_SOCKET);
		/*
		 * Active-active: a VIP frame to this director's own MAC with no
		 * socket (the daemon died, the program stays) would reach a
		 * kernel that owns the VIP and resets every flow it does not
		 * serve; dropped, TCP retransmits once the router has moved
		 * the flow to another director.
		 */
		if (stat == STAT_TO_XSK_VIP && (cfg->flags & FLAG_DROP_ORPHANS)) {
			count(STAT_DROP_ORPHAN);
			return XDP_DROP;
		}
		return pass();
	}
	count(stat);
	/* The low bits of flags are the action if the entry vanished since. */
	return bpf_redirect_map(&proxyha_xsks, q, XDP_PASS);
}

static __always_inline int is_vip(__be32 addr)
{
	return bpf_map_lookup_elem(&proxyha_vips, &addr) != 0;
}

static __always_inline int mac_eq(const __u8 *a, const __u8 *b)
{
	return a[0] == b[0] && a[1] == b[1] && a[2] == b[2] && a[3] == b[3] &&
	       a[4] == b[4] && a[5] == b[5];
}

/*
 * Active-active (FLAG_PEERS): a frame from a member is another director's
 * redirect of a flow this node serves; it goes to the kernel, never to be
 * balanced again (two directors whose flow tables disagree could otherwise
 * pass a flow back and forth).
 */
static __always_inline int from_peer(const struct filter_config *cfg,
				     const struct ethhdr *eth)
{
	__u64 key = 0;

	if (!(cfg->flags & FLAG_PEERS))
		return 0;
	__builtin_memcpy(&key, eth->src, 6);
	return bpf_map_lookup_elem(&proxyha_peers, &key) != 0;
}

static __always_inline int port_set(__u8 protocol, __u16 port)
{
	__u32 zero = 0;
	struct port_bitmap *bm = bpf_map_lookup_elem(&proxyha_ports, &zero);
	__u32 word = (port >> 6) & 1023;
	__u64 bit = 1ULL << (port & 63);

	if (!bm)
		return 0;
	if (protocol == IPPROTO_TCP)
		return (bm->tcp[word] & bit) != 0;
	return (bm->udp[word] & bit) != 0;
}

static __always_inline void count_node(__u32 slot, __u64 bytes)
{
	struct fast_counter *c = bpf_map_lookup_elem(&proxyha_fast, &slot);
	if (c) {
		c->packets += 1;
		c->bytes += bytes;
	}
}

/* A 64-bit finaliser (MurmurHash3's fmix64); xsk::fastpath::mix. */
static __always_inline __u64 mix(__u64 x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	x ^= x >> 33;
	return x;
}

/* A flow's id: its top FLOW_SET_BITS bits are its set, its low 32 bits
 * (bit 0 set) its tag (xsk::fastpath::FlowKey::id). */
static __always_inline __u64 flow_id(__u64 addrs, __u64 ports, __u64 seed)
{
	return mix(addrs ^ mix(ports ^ seed)) | 1;
}

#define READ_ONCE(x) (*(volatile __u64 *)&(x))

/* The way of the flow `id` in its set, if any; its word in *word. */
static __always_inline __u64 *flow_find(__u64 id, __u64 *word)
{
	__u32 set = (__u32)(id >> (64 - FLOW_SET_BITS));
	struct flow_set *s = bpf_map_lookup_elem(&proxyha_flows, &set);

	if (!s)
		return 0;
#pragma unroll
	for (int way = 0; way < FLOW_WAYS; way++) {
		__u64 w = READ_ONCE(s->way[way]);
		if ((__u32)w == (__u32)id) {
			*word = w;
			return &s->way[way];
		}
	}
	return 0;
}

/* The family bit of an IPv6 flow's ports word (xsk::fastpath::FAMILY_SHIFT). */
#define FLOW_FAMILY_V6 (1ULL << 40)

/*
 * The fast path for a TCP/UDP frame to the configured MAC, not a fragment,
 * while active with the fast path on (l4 holds at least the ports). addrs
 * holds the source and destination addresses as the workers key the flow
 * (IPv4: the wire bytes; IPv6: folded), family the family bit. XDP_TX or
 * XDP_PASS for an installed flow whose node slot is still valid, -1 for
 * everything else (which then takes the filter's usual way to the sockets
 * or the kernel).
 */
static __always_inline int fast_path(struct xdp_md *ctx,
				     struct filter_config *cfg,
				     struct ethhdr *eth, __u64 addrs,
				     __u64 family, __u8 protocol, __u8 *l4,
				     void *end)
{
	struct node_slot *n;
	__u64 ports, id, target, *e;
	__u32 p4, slot;
	__u16 local;

	__builtin_memcpy(&p4, l4, 4);
	ports = (__u64)p4 | ((__u64)protocol << 32) | family;
	id = flow_id(addrs, ports, cfg->flow_seed);
	if (protocol == IPPROTO_TCP) {
		if ((void *)(l4 + 14) > end)
			return -1;
		if (l4[13] & TCP_SYN) {
			/* A new connection on this tuple: the workers place it. */
			if (!(l4[13] & TCP_ACK)) {
				e = flow_find(id, &target);
				if (e)
					*e = 0;
			}
			return -1;
		}
	}
	e = flow_find(id, &target);
	if (!e)
		return -1;
	if (((target >> 48) & 0xff) != (cfg->epoch & 0xff))
		return -1;
	if ((__u8)((bpf_ktime_get_coarse_ns() >> 30) - (target >> 56)) > FLOW_REFRESH)
		return -1;
	slot = (target >> 32) & 0xff;
	n = bpf_map_lookup_elem(&proxyha_nodes, &slot);
	if (!n || (n->generation & 0xff) != ((target >> 40) & 0xff) ||
	    (n->state != NODE_UP && n->state != NODE_DRAINING)) {
		count(STAT_FAST_STALE);
		return -1;
	}
	local = ((__u16)cfg->local_slot[0] << 8) | cfg->local_slot[1];
	if (slot == local) {
		if (!(cfg->flags & FLAG_OFFLOAD_LOCAL))
			return -1;
		/* Ours: to the stack, which takes the VIP on lo. */
		__builtin_memcpy(eth->dst, cfg->our_mac, 6);
		count(STAT_FAST_LOCAL);
		count_node(slot, (__u64)(ctx->data_end - ctx->data));
		return XDP_PASS;
	}
	__builtin_memcpy(eth->dst, n->mac, 6);
	__builtin_memcpy(eth->src, cfg->our_mac, 6);
	count(STAT_FAST_TX);
	count_node(slot, (__u64)(ctx->data_end - ctx->data));
	return XDP_TX;
}

#include "filter_ipv6.h"

SEC("xdp")
int proxyha_filter(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct filter_config *cfg;
	__u32 zero = 0;
	__u32 off = sizeof(struct ethhdr);
	__be16 proto;

	count(STAT_RX);
	cfg = bpf_map_lookup_elem(&proxyha_config, &zero);
	if (!cfg)
		return pass();
	if ((void *)(eth + 1) > end)
		return pass();
	proto = eth->proto;
	if (proto == bpf_htons(ETH_P_8021Q) || proto == bpf_htons(ETH_P_8021AD)) {
		__be16 *inner = (void *)(eth + 1) + 2;
		if ((void *)(inner + 1) > end)
			return pass();
		proto = *inner;
		off += 4;
	}

	if (proto == bpf_htons(ETH_P_ARP)) {
		/* htype(2) ptype(2) hlen(1) plen(1) oper(2) sha(6) spa(4) tha(6) tpa(4) */
		__u8 *arp = data + off;
		__be32 tpa;

		if (!(cfg->flags & FLAG_ACTIVE))
			return pass();
		if ((void *)(arp + 28) > end)
			return pass();
		if (arp[2] != 0x08 || arp[3] != 0x00 || arp[4] != 6 || arp[5] != 4)
			return pass();
		if (arp[6] != 0 || arp[7] != 1) /* request */
			return pass();
		__builtin_memcpy(&tpa, arp + 24, 4);
		if (!is_vip(tpa))
			return pass();
		return to_xsk(ctx, STAT_TO_XSK_ARP, cfg);
	}

	if (proto == bpf_htons(ETH_P_IPV6))
		return filter_ipv6(ctx, cfg, data, off, end);
	if (proto != bpf_htons(ETH_P_IP))
		return pass();

	struct iphdr *ip = data + off;
	if ((void *)(ip + 1) > end)
		return pass();
	if ((ip->ver_ihl >> 4) != 4)
		return pass();
	__u32 ihl = ip->ver_ihl & 0x0f;
	if (ihl < 5)
		return pass();
	__u8 *l4 = (__u8 *)ip + ihl * 4;

	switch (ip->protocol) {
	case IPPROTO_VRRP:
		/* VRRP: version/type(1) VRID(1) ... */
		if (!(cfg->flags & FLAG_VRRP))
			return pass();
		if ((void *)(l4 + 2) > end)
			return pass();
		if (l4[1] != cfg->vrid)
			return pass();
		return to_xsk(ctx, STAT_TO_XSK_VRRP, cfg);
	case IPPROTO_HEARTBEAT:
		if (!(cfg->flags & FLAG_HEARTBEAT))
			return pass();
		if ((void *)(l4 + HEARTBEAT_LBID_OFFSET + 2) > end ||
		    l4[HEARTBEAT_LBID_OFFSET] != cfg->lbid[0] ||
		    l4[HEARTBEAT_LBID_OFFSET + 1] != cfg->lbid[1]) {
			count(STAT_DROP_HEARTBEAT);
			return XDP_DROP;
		}
		return to_xsk(ctx, STAT_TO_XSK_HEARTBEAT, cfg);
	case IPPROTO_TCP:
	case IPPROTO_UDP: {
		if (!(cfg->flags & FLAG_ACTIVE))
			return pass();
		if (!mac_eq(eth->dst, cfg->vmac))
			return pass();
		if (from_peer(cfg, eth))
			return pass();
		if (ip->frag_off & bpf_htons(0x1fff))
			break;
		if ((void *)(l4 + 4) > end)
			break;
		/* A first fragment (MF set) needs the workers' fragment cache. */
		if ((cfg->flags & FLAG_OFFLOAD) && !(ip->frag_off & bpf_htons(0x2000))) {
			__u64 addrs;
			int fast;

			__builtin_memcpy(&addrs, &ip->saddr, 8);
			fast = fast_path(ctx, cfg, eth, addrs, 0, ip->protocol,
					 l4, end);
			if (fast >= 0)
				return fast;
		}
		if (!is_vip(ip->daddr))
			return pass();
		__u16 dport = ((__u16)l4[2] << 8) | l4[3];
		if (!port_set(ip->protocol, dport))
			break;
		return to_xsk(ctx, STAT_TO_XSK_VIP, cfg);
	}
	default:
		break;
	}
	/*
	 * Anything else sent to the virtual MAC for a VIP while active (ICMP,
	 * other ports, fragments): the kernel would drop it as PACKET_OTHERHOST,
	 * since the virtual MAC is not the device's address, so it goes to the
	 * worker too, which hands it to the local stack through the TAP with the
	 * destination MAC rewritten. That is how the Active Director answers
	 * ping to the VIP.
	 */
	if ((cfg->flags & FLAG_ACTIVE) && mac_eq(eth->dst, cfg->vmac) &&
	    is_vip(ip->daddr) && !from_peer(cfg, eth))
		return to_xsk(ctx, STAT_TO_XSK_VIP, cfg);
	return pass();
}
