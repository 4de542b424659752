//! The one hot-path `unsafe` helper outside the AF_XDP/BPF layer
//! (docs/architecture.md): a software prefetch, so that the worker can ask
//! for a whole batch's flow-table buckets while it is still classifying the
//! batch, without stalling on each load. `perf/RESULTS.md` ("The 1M-flow
//! pipeline: prefetch") has the benchmark that justifies it.
#![allow(unsafe_code)]

/// Asks the CPU to bring the cache line holding `*r` into every cache
/// level, and returns at once. A hint: it changes no value and cannot fault.
#[inline(always)]
pub fn prefetch<T>(r: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `_mm_prefetch` is `unsafe` only because it is an SSE
    // intrinsic, and SSE is part of the x86_64 baseline that every x86_64
    // CPU (and this crate's target) has. PREFETCHT0 is a hint: it reads no
    // value the program sees, writes nothing, and never faults, whatever the
    // address; here the address is that of a live reference anyway.
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(
            (r as *const T).cast::<i8>(),
        );
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = r;
}
