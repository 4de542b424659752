/* SPDX-License-Identifier: (MIT OR Apache-2.0) */
/*
 * Perf lab baseline (b): the director's job done in the kernel. A frame to
 * the virtual MAC, the VIP and the balanced TCP port gets a backend chosen by
 * a hash of (source IP, source port), its destination MAC rewritten to that
 * backend's and its source MAC to ours, and goes back out with XDP_TX. The
 * IP packet is unchanged (DSR). Everything else is passed to the kernel.
 */
#include "perf_defs.h"

#define MAX_BACKENDS 8

struct rw_config {
	__u8 vmac[6];
	__u8 own_mac[6];
	__u32 vip;       /* host order */
	__u32 dst_port;  /* host order */
	__u32 backends;  /* 1..MAX_BACKENDS */
	__u8 backend_mac[MAX_BACKENDS][6];
};

struct rw_stats {
	__u64 tx;
	__u64 pass;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct rw_config);
} perf_rw_cfg SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct rw_stats);
} perf_rw_stats SEC(".maps");

SEC("xdp")
int perf_rewrite(struct xdp_md *ctx)
{
	__u8 *data = (__u8 *)(long)ctx->data;
	__u8 *data_end = (__u8 *)(long)ctx->data_end;
	__u32 zero = 0;

	struct rw_config *cfg = bpf_map_lookup_elem(&perf_rw_cfg, &zero);
	struct rw_stats *st = bpf_map_lookup_elem(&perf_rw_stats, &zero);
	if (!cfg || !st)
		return XDP_PASS;
	if (data + TCP_OFF + 4 > data_end)
		goto pass;
#pragma unroll
	for (int i = 0; i < 6; i++)
		if (data[i] != cfg->vmac[i])
			goto pass;
	if (data[12] != 0x08 || data[13] != 0x00 || (data[IP_OFF] & 0xf0) != 0x40 ||
	    data[IP_OFF + 9] != 6)
		goto pass;
	__u32 ihl = (data[IP_OFF] & 0x0f) * 4;
	if (ihl != 20) /* the lab sends no options; keep the verifier simple */
		goto pass;
	__u32 daddr = ((__u32)data[IP_OFF + 16] << 24) | ((__u32)data[IP_OFF + 17] << 16) |
		      ((__u32)data[IP_OFF + 18] << 8) | data[IP_OFF + 19];
	__u32 dport = ((__u32)data[TCP_OFF + 2] << 8) | data[TCP_OFF + 3];
	if (daddr != cfg->vip || dport != cfg->dst_port)
		goto pass;
	__u32 saddr = ((__u32)data[IP_OFF + 12] << 24) | ((__u32)data[IP_OFF + 13] << 16) |
		      ((__u32)data[IP_OFF + 14] << 8) | data[IP_OFF + 15];
	__u32 sport = ((__u32)data[TCP_OFF] << 8) | data[TCP_OFF + 1];

	/* A murmur3-style finaliser over (saddr, sport): cheap and well mixed. */
	__u32 h = saddr ^ (sport * 0x9e3779b1u);
	h ^= h >> 16;
	h *= 0x85ebca6bu;
	h ^= h >> 13;
	h *= 0xc2b2ae35u;
	h ^= h >> 16;
	__u32 n = cfg->backends;
	if (n == 0 || n > MAX_BACKENDS)
		goto pass;
	__u32 idx = h % n;
	/* Hide idx's range from clang so that the mask stays for the verifier. */
	asm volatile("" : "+r"(idx));
	idx &= MAX_BACKENDS - 1;
#pragma unroll
	for (int i = 0; i < 6; i++) {
		data[i] = cfg->backend_mac[idx][i];
		data[6 + i] = cfg->own_mac[i];
	}
	st->tx++;
	return XDP_TX;
pass:
	st->pass++;
	return XDP_PASS;
}

char _license[] SEC("license") = "Dual MIT/GPL";
