/* SPDX-License-Identifier: (MIT OR Apache-2.0) */
/*
 * An XDP program that passes every frame. Attach it to the peer of a veth
 * that receives XDP_TX or redirected frames: veth delivers those only when
 * the receiving end runs XDP (or has GRO on). Used by tests and the lab.
 */
#include "bpf_defs.h"

SEC("xdp")
int proxyha_pass(struct xdp_md *ctx)
{
	return XDP_PASS;
}

char _license[] SEC("license") = "Dual MIT/GPL";
