/* SPDX-License-Identifier: (MIT OR Apache-2.0) */
/*
 * Self-contained definitions for the perf lab's XDP programs (perf_*.bpf.c),
 * so that they build with clang alone. Values are the stable kernel UAPI ones
 * (include/uapi/linux/bpf.h).
 */
#ifndef PROXYHA_PERF_DEFS_H
#define PROXYHA_PERF_DEFS_H

typedef unsigned char __u8;
typedef unsigned short __u16;
typedef unsigned int __u32;
typedef unsigned long long __u64;

#define XDP_ABORTED 0
#define XDP_DROP 1
#define XDP_PASS 2
#define XDP_TX 3
#define XDP_REDIRECT 4

#define BPF_MAP_TYPE_ARRAY 2
#define BPF_MAP_TYPE_PERCPU_ARRAY 6

struct xdp_md {
	__u32 data;
	__u32 data_end;
	__u32 data_meta;
	__u32 ingress_ifindex;
	__u32 rx_queue_index;
	__u32 egress_ifindex;
};

#define SEC(name) __attribute__((section(name), used))
#define __uint(name, val) int(*name)[val]
#define __type(name, val) typeof(val) *name
#define __always_inline inline __attribute__((always_inline))

static void *(*bpf_map_lookup_elem)(void *map, const void *key) = (void *)1;
static __u64 (*bpf_ktime_get_ns)(void) = (void *)5;
static long (*bpf_redirect)(__u32 ifindex, __u64 flags) = (void *)23;

/* Lab frame layout (all offsets from the start of the Ethernet header). */
#define ETH_LEN 14
#define IP_OFF 14
#define TCP_OFF 34
#define PAYLOAD_OFF 54
/* 64-byte frames (without FCS): 10 payload bytes = 4-byte sequence number
 * (big endian) + the low 48 bits of bpf_ktime_get_ns() (big endian). */
#define FRAME_LEN 64

/* One's-complement sum helpers. */
static __always_inline __u16 csum_fold(__u32 sum)
{
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum;
}

#endif
