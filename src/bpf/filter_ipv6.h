/* SPDX-License-Identifier: (MIT OR Apache-2.0) */
/*
 * proxyha's XDP filter, IPv6 part (issue 16), included by filter.bpf.c and
 * kept apart from the IPv4 rules.
 *
 * To the sockets go, while the VRRP flag is set (every director):
 *   - IPv6 next header 112 (VRRP, RFC 5798) whose VRID is ours: the IPv6
 *     VRRP instance listens;
 *   - ICMPv6 neighbour solicitations (type 135, hop limit 255) whose target
 *     is an IPv6 VIP (proxyha_vips6): the control plane answers them on the
 *     Master with the virtual MAC, and a Backup must not answer (its kernel
 *     would not either: the VIP sits on lo).
 * And, only while the active flag is set (the Active Director), every
 * IPv6 packet sent to the IPv6 virtual MAC 00:00:5e:00:02:{VRID} for an
 * IPv6 VIP: the workers balance TCP/UDP on redirected ports, steer ICMPv6
 * errors to their flow's node, drop and count extension headers and
 * fragments, and hand the rest to the local stack (the kernel would drop
 * it as PACKET_OTHERHOST: the virtual MAC is not the device's). With the
 * fast path on, a TCP/UDP packet without extension headers is looked up in
 * the flow cache first, under its folded addresses and the IPv6 family bit
 * (filter.bpf.c, fast_path).
 * Only the 40-byte fixed header is read; VRRP adverts and solicitations
 * carry no extension headers. Everything else IPv6 is passed.
 */
#ifndef PROXYHA_FILTER_IPV6_H
#define PROXYHA_FILTER_IPV6_H

#define ETH_P_IPV6 0x86DD
#define IPV6_HEADER_LEN 40
#define IPV6_NEXT_HEADER_OFFSET 6
#define IPV6_HOP_LIMIT_OFFSET 7
#define IPPROTO_ICMPV6 58
#define ICMPV6_NS 135
/* type(1) code(1) checksum(2) reserved(4) target(16) */
#define NS_TARGET_OFFSET 8

struct vip6 {
	__u8 addr[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, struct vip6);
	__type(value, __u8);
} proxyha_vips6 SEC(".maps");

/*
 * An IPv6 address folded into 32 bits, as the workers fold it for their
 * flow keys (dataplane::classify::ipv6_flow::fold): both 64-bit halves,
 * the high one rotated by 29, a fixed seed, then fmix64, and the two
 * halves of the result XORed.
 */
static __always_inline __u32 fold6(const __u8 *a)
{
	__u64 hi, lo, x;

	__builtin_memcpy(&hi, a, 8);
	__builtin_memcpy(&lo, a + 8, 8);
	hi = __builtin_bswap64(hi);
	lo = __builtin_bswap64(lo);
	x = mix(lo ^ ((hi << 29) | (hi >> 35)) ^ 0x9e3779b97f4a7c15ULL);
	return (__u32)x ^ (__u32)(x >> 32);
}

static __always_inline int filter_ipv6(struct xdp_md *ctx,
				       struct filter_config *cfg, void *data,
				       __u32 off, void *end)
{
	__u8 *ip6 = data + off;
	__u8 *l4 = ip6 + IPV6_HEADER_LEN;

	if ((void *)(l4 + 2) > end)
		return pass();
	if ((ip6[0] >> 4) != 6)
		return pass();
	if (ip6[IPV6_NEXT_HEADER_OFFSET] == IPPROTO_VRRP) {
		if (!(cfg->flags & FLAG_VRRP))
			return pass();
		if (l4[1] != cfg->vrid)
			return pass();
		return to_xsk(ctx, STAT_TO_XSK_VRRP, cfg);
	}
	if (ip6[IPV6_NEXT_HEADER_OFFSET] == IPPROTO_ICMPV6 && l4[0] == ICMPV6_NS) {
		struct vip6 target;

		if (!(cfg->flags & FLAG_VRRP))
			return pass();
		if (ip6[IPV6_HOP_LIMIT_OFFSET] != 255)
			return pass();
		if ((void *)(l4 + NS_TARGET_OFFSET + 16) > end)
			return pass();
		__builtin_memcpy(target.addr, l4 + NS_TARGET_OFFSET, 16);
		if (!bpf_map_lookup_elem(&proxyha_vips6, &target))
			return pass();
		return to_xsk(ctx, STAT_TO_XSK_ARP, cfg);
	}
	if (cfg->flags & FLAG_ACTIVE) {
		struct ethhdr *eth = data;
		struct vip6 dst;

		/* The IPv6 virtual MAC: the IPv4 one with 0x02 in byte 4. */
		if (eth->dst[0] != cfg->vmac[0] || eth->dst[1] != cfg->vmac[1] ||
		    eth->dst[2] != cfg->vmac[2] || eth->dst[3] != cfg->vmac[3] ||
		    eth->dst[4] != 0x02 || eth->dst[5] != cfg->vmac[5])
			return pass();
		__builtin_memcpy(dst.addr, ip6 + 24, 16);
		if (!bpf_map_lookup_elem(&proxyha_vips6, &dst))
			return pass();
		/* TCP/UDP without extension headers: the fast path first. */
		if ((cfg->flags & FLAG_OFFLOAD) &&
		    (ip6[IPV6_NEXT_HEADER_OFFSET] == IPPROTO_TCP ||
		     ip6[IPV6_NEXT_HEADER_OFFSET] == IPPROTO_UDP) &&
		    (void *)(l4 + 4) <= end) {
			__u32 folded[2] = { bpf_htonl(fold6(ip6 + 8)),
					    bpf_htonl(fold6(ip6 + 24)) };
			__u64 addrs;
			int fast;

			__builtin_memcpy(&addrs, folded, 8);
			fast = fast_path(ctx, cfg, eth, addrs, FLOW_FAMILY_V6,
					 ip6[IPV6_NEXT_HEADER_OFFSET], l4, end);
			if (fast >= 0)
				return fast;
		}
		return to_xsk(ctx, STAT_TO_XSK_VIP, cfg);
	}
	return pass();
}

#endif
