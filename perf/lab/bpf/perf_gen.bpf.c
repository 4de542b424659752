/* SPDX-License-Identifier: (MIT OR Apache-2.0) */
/*
 * The perf lab's packet generator. Userspace runs it with BPF_PROG_TEST_RUN
 * and BPF_F_TEST_XDP_LIVE_FRAMES: every run builds one 64-byte TCP frame in
 * place and returns XDP_TX (out of the generator's veth) or redirects it.
 *
 * The kernel recycles frame buffers with whatever we wrote into them, so the
 * whole frame, checksums included, is rebuilt every time.
 *
 * Flow i (0 <= i < flows) has source IP src_ip + i / ports_per_ip and source
 * port sport_base + i % ports_per_ip. Packet number n goes to flow
 * n % flows; the first pass over the flows carries SYN, later ones ACK|PSH.
 * The payload holds n (32 bits) and the send time (48 bits of ktime ns).
 *
 * Paced mode (interval_ns != 0): BPF_PROG_TEST_RUN calls are expensive to set
 * up (tens of ms), so the rate cannot come from many small calls. Instead the
 * program runs in a long call and drops (cheaply, nothing is sent) every run
 * before the next frame is due; a frame is built when ktime reaches next_ns.
 * The generator shares its CPU with other work, so it is sometimes
 * descheduled: it then catches up, but never faster than 1.5x the rate (frames
 * at least 2/3 of an interval apart), and forgets debt older than 20 ms, so
 * that a stall does not become a line-rate burst.
 * Frames go out in small bursts (cfg.burst back to back per burst interval):
 * on veth every frame that finds the receiver's NAPI thread asleep pays for a
 * cross-CPU wakeup (an IPI, costly in a VM), which at low rates made the
 * generator fall 40% short of its rate; bursts of a few frames amortise it.
 */
#include "perf_defs.h"

struct gen_config {
	__u8 dst_mac[6];
	__u8 src_mac[6];
	__u32 src_ip;        /* host order */
	__u32 dst_ip;        /* host order */
	__u16 dst_port;
	__u16 sport_base;
	__u32 flows;         /* >= 1 */
	__u32 ports_per_ip;  /* >= 1 */
	__u32 redirect_ifindex; /* 0: XDP_TX */
	__u32 syn_first;     /* 1: first pass over the flows sends SYN */
	__u64 interval_ns;   /* 0: flat out; else one frame per interval */
	__u32 burst;         /* paced mode: frames sent back to back per due time */
	__u32 ipv6;          /* 1: IPv6 frames, 2001:2::<src_ip> to 2001:2::<dst_ip> */
};

struct gen_state {
	__u64 seq;     /* packets built so far */
	__u64 next_ns; /* paced mode: when the next frame is due */
	__u64 last_ns; /* paced mode: when the last burst started */
	__u64 left;    /* paced mode: frames left in the current burst */
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct gen_config);
} perf_gen_cfg SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct gen_state);
} perf_gen_state SEC(".maps");

static __always_inline void put16(__u8 *p, __u16 v)
{
	p[0] = v >> 8;
	p[1] = v & 0xff;
}

static __always_inline __u32 sum16(__u8 *p, int words)
{
	__u32 s = 0;
#pragma unroll
	for (int i = 0; i < words; i++)
		s += ((__u32)p[2 * i] << 8) | p[2 * i + 1];
	return s;
}

/* The TCP header (20 bytes, no options, checksum 0 for now) and the
 * payload (sequence number, send time) that follow it. */
static __always_inline void tcp_and_payload(__u8 *tcp, __u16 sport, __u16 dport,
					    int syn, __u32 round, __u64 n, __u64 now)
{
	__u32 tseq = 0x10000000u + round * 10u;

	put16(tcp + 0, sport);
	put16(tcp + 2, dport);
	put16(tcp + 4, syn ? 0x1000 : (tseq + 1) >> 16);
	put16(tcp + 6, syn ? 0 : (tseq + 1) & 0xffff);
	put16(tcp + 8, 0);
	put16(tcp + 10, syn ? 0 : 1);
	put16(tcp + 12, syn ? 0x5002 : 0x5018); /* doff 5; SYN or ACK|PSH */
	put16(tcp + 14, 0xffff);
	put16(tcp + 16, 0);
	put16(tcp + 18, 0);

	/* Payload: sequence number and timestamp */
	__u8 *pl = tcp + 20;
	__u32 n32 = (__u32)n;
	put16(pl + 0, n32 >> 16);
	put16(pl + 2, n32 & 0xffff);
	put16(pl + 4, (now >> 32) & 0xffff);
	put16(pl + 6, (now >> 16) & 0xffff);
	put16(pl + 8, now & 0xffff);
}

SEC("xdp")
int perf_gen(struct xdp_md *ctx)
{
	__u8 *data = (__u8 *)(long)ctx->data;
	__u8 *data_end = (__u8 *)(long)ctx->data_end;
	__u32 zero = 0;

	if (data + FRAME_LEN > data_end)
		return XDP_ABORTED;
	struct gen_config *cfg = bpf_map_lookup_elem(&perf_gen_cfg, &zero);
	struct gen_state *st = bpf_map_lookup_elem(&perf_gen_state, &zero);
	if (!cfg || !st)
		return XDP_ABORTED;

	__u64 now = bpf_ktime_get_ns();
	if (cfg->interval_ns) {
		if (st->left == 0) {
			__u32 b = cfg->burst ? cfg->burst : 1;
			__u64 iv = cfg->interval_ns * b;
			if (st->next_ns == 0)
				st->next_ns = now;
			if (now < st->next_ns || now < st->last_ns + iv - iv / 3)
				return XDP_DROP;
			if (now > st->next_ns + 20000000)
				st->next_ns = now - 20000000;
			st->next_ns += iv;
			st->last_ns = now;
			st->left = b;
		}
		st->left--;
	}

	__u64 n = st->seq++;
	__u32 flows = cfg->flows ? cfg->flows : 1;
	__u32 ppi = cfg->ports_per_ip ? cfg->ports_per_ip : 1;
	__u32 flow = n % flows;
	__u32 round = n / flows;
	__u32 saddr = cfg->src_ip + flow / ppi;
	__u16 sport = cfg->sport_base + flow % ppi;
	int syn = cfg->syn_first && round == 0;

	/* Ethernet */
#pragma unroll
	for (int i = 0; i < 6; i++) {
		data[i] = cfg->dst_mac[i];
		data[6 + i] = cfg->src_mac[i];
	}
	if (cfg->ipv6) {
		if (data + FRAME6_LEN > data_end)
			return XDP_ABORTED;
		put16(data + 12, 0x86dd);
		/* IPv6: payload 30 bytes, next header TCP, hop limit 64,
		 * 2001:2::<saddr> -> 2001:2::<dst_ip> (RFC 5180's range). */
		__u8 *ip6 = data + IP_OFF;
		put16(ip6 + 0, 0x6000);
		put16(ip6 + 2, 0);
		put16(ip6 + 4, FRAME6_LEN - IP6_TCP_OFF);
		put16(ip6 + 6, 0x0640);
#pragma unroll
		for (int a = 8; a < 40; a += 16) {
			put16(ip6 + a, 0x2001);
			put16(ip6 + a + 2, 0x0002);
			put16(ip6 + a + 4, 0);
			put16(ip6 + a + 6, 0);
			put16(ip6 + a + 8, 0);
			put16(ip6 + a + 10, 0);
		}
		put16(ip6 + 20, saddr >> 16);
		put16(ip6 + 22, saddr & 0xffff);
		put16(ip6 + 36, cfg->dst_ip >> 16);
		put16(ip6 + 38, cfg->dst_ip & 0xffff);
		__u8 *tcp6 = data + IP6_TCP_OFF;
		tcp_and_payload(tcp6, sport, cfg->dst_port, syn, round, n, now);
		/* TCP checksum over the IPv6 pseudo-header, header and payload. */
		__u32 s6 = sum16(ip6 + 8, 16) + 6 + (FRAME6_LEN - IP6_TCP_OFF);
		s6 += sum16(tcp6, (FRAME6_LEN - IP6_TCP_OFF) / 2);
		put16(tcp6 + 16, csum_fold(s6));
	} else {
		put16(data + 12, 0x0800);
		/* IPv4: 20 bytes, total length 50, DF, TTL 64, TCP */
		__u8 *ip = data + IP_OFF;
		put16(ip + 0, 0x4500);
		put16(ip + 2, FRAME_LEN - ETH_LEN);
		put16(ip + 4, (__u16)n);
		put16(ip + 6, 0x4000);
		put16(ip + 8, 0x4006);
		put16(ip + 10, 0);
		put16(ip + 12, saddr >> 16);
		put16(ip + 14, saddr & 0xffff);
		put16(ip + 16, cfg->dst_ip >> 16);
		put16(ip + 18, cfg->dst_ip & 0xffff);
		put16(ip + 10, csum_fold(sum16(ip, 10)));
		__u8 *tcp = data + TCP_OFF;
		tcp_and_payload(tcp, sport, cfg->dst_port, syn, round, n, now);
		/* TCP checksum over the pseudo-header, header and payload (30 bytes). */
		__u32 s = sum16(ip + 12, 4) + 6 + (FRAME_LEN - TCP_OFF);
		s += sum16(tcp, (FRAME_LEN - TCP_OFF) / 2);
		put16(tcp + 16, csum_fold(s));
	}

	if (cfg->redirect_ifindex)
		return bpf_redirect(cfg->redirect_ifindex, 0);
	return XDP_TX;
}

char _license[] SEC("license") = "Dual MIT/GPL";
