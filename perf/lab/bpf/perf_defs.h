/* SPDX-License-Identifier: (MIT OR Apache-2.0) */
/*
 * Definitions for the perf lab's XDP programs (perf_*.bpf.c), on top of
 * src/bpf/bpf_defs.h (build.rs passes -I src/bpf), so that they build with
 * clang alone. Values are the stable
 * kernel UAPI ones (include/uapi/linux/bpf.h).
 */
#ifndef PROXYHA_PERF_DEFS_H
#define PROXYHA_PERF_DEFS_H

/* The UAPI types, XDP actions, map types and libbpf conventions are the
 * filter's (bpf_defs.h); the perf programs add two helpers of their own. */
#include "bpf_defs.h"

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
/* IPv6 frames (gen_config.ipv6): a 40-byte header, the same TCP header and
 * payload, 84 bytes. */
#define IP6_TCP_OFF 54
#define IP6_PAYLOAD_OFF 74
#define FRAME6_LEN 84

/* One's-complement sum helpers. */
static __always_inline __u16 csum_fold(__u32 sum)
{
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum;
}

#endif
