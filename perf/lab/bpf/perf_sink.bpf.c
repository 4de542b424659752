/* SPDX-License-Identifier: (MIT OR Apache-2.0) */
/*
 * The perf lab's sink: native XDP on a sink's veth that counts and drops.
 *
 * Frames that are lab TCP frames (IPv4, TCP, destination port cfg.dst_port,
 * 64 bytes) count as `frames`; anything else as `other`. When cfg.latency
 * is set, it also reads the send time the generator put in the payload and
 * records now - sent into a log-linear histogram: 16 linear sub-buckets per
 * power of two (6% resolution), see bucket_of().
 */
#include "perf_defs.h"

#define SUB_BITS 4
#define SUB (1 << SUB_BITS)
#define MAX_EXP 40
#define BUCKETS ((MAX_EXP + 1) * SUB)

struct sink_config {
	__u32 dst_port; /* host order */
	__u32 latency;  /* 1: record latency */
};

struct sink_stats {
	__u64 frames;
	__u64 bytes;
	__u64 other;
	__u64 lat_samples;
	__u64 last_seq; /* highest payload sequence number seen (as u32) */
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sink_config);
} perf_sink_cfg SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sink_stats);
} perf_sink_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, BUCKETS);
	__type(key, __u32);
	__type(value, __u64);
} perf_sink_lat SEC(".maps");

static __always_inline __u32 msb64(__u64 v)
{
	__u32 r = 0;
	if (v >> 32) { v >>= 32; r += 32; }
	if (v >> 16) { v >>= 16; r += 16; }
	if (v >> 8) { v >>= 8; r += 8; }
	if (v >> 4) { v >>= 4; r += 4; }
	if (v >> 2) { v >>= 2; r += 2; }
	if (v >> 1) { r += 1; }
	return r;
}

/* Values below SUB map to themselves; a value with most significant bit e
 * (e >= SUB_BITS) maps to (e - SUB_BITS + 1) * SUB + the SUB_BITS bits below
 * the top bit. Userspace (sinkcount.rs) inverts this. */
static __always_inline __u32 bucket_of(__u64 v)
{
	if (v < SUB)
		return (__u32)v;
	__u32 e = msb64(v);
	if (e > MAX_EXP - 1 + SUB_BITS)
		return BUCKETS - 1;
	__u32 b = (e - SUB_BITS + 1) * SUB + ((v >> (e - SUB_BITS)) & (SUB - 1));
	return b < BUCKETS ? b : BUCKETS - 1;
}

SEC("xdp")
int perf_sink(struct xdp_md *ctx)
{
	__u8 *data = (__u8 *)(long)ctx->data;
	__u8 *data_end = (__u8 *)(long)ctx->data_end;
	__u32 zero = 0;

	struct sink_stats *st = bpf_map_lookup_elem(&perf_sink_stats, &zero);
	struct sink_config *cfg = bpf_map_lookup_elem(&perf_sink_cfg, &zero);
	if (!st || !cfg)
		return XDP_DROP;

	__u8 *pl;

	if (data + FRAME_LEN <= data_end && data[12] == 0x08 && data[13] == 0x00 &&
	    data[IP_OFF] == 0x45 && data[IP_OFF + 9] == 6 &&
	    (((__u32)data[TCP_OFF + 2] << 8) | data[TCP_OFF + 3]) == cfg->dst_port) {
		pl = data + PAYLOAD_OFF;
	} else if (data + FRAME6_LEN <= data_end && data[12] == 0x86 && data[13] == 0xdd &&
		   (data[IP_OFF] >> 4) == 6 && data[IP_OFF + 6] == 6 &&
		   (((__u32)data[IP6_TCP_OFF + 2] << 8) | data[IP6_TCP_OFF + 3]) == cfg->dst_port) {
		pl = data + IP6_PAYLOAD_OFF;
	} else {
		st->other++;
		return XDP_DROP;
	}
	st->frames++;
	st->bytes += data_end - data;

	__u32 seq = ((__u32)pl[0] << 24) | ((__u32)pl[1] << 16) | ((__u32)pl[2] << 8) | pl[3];
	if (seq > st->last_seq)
		st->last_seq = seq;
	if (cfg->latency) {
		__u64 sent = ((__u64)pl[4] << 40) | ((__u64)pl[5] << 32) | ((__u64)pl[6] << 24) |
			     ((__u64)pl[7] << 16) | ((__u64)pl[8] << 8) | pl[9];
		__u64 now = bpf_ktime_get_ns() & 0xffffffffffffull;
		__u64 d = (now - sent) & 0xffffffffffffull;
		__u32 b = bucket_of(d);
		__u64 *c = bpf_map_lookup_elem(&perf_sink_lat, &b);
		if (c)
			(*c)++;
		st->lat_samples++;
	}
	return XDP_DROP;
}

/* An XDP_PASS stub for the peers of veths that receive XDP_TX or redirected
 * frames (veth delivers those only when the receiving end runs XDP). */
SEC("xdp")
int perf_pass(struct xdp_md *ctx)
{
	return XDP_PASS;
}

char _license[] SEC("license") = "Dual MIT/GPL";
