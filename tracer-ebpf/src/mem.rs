//! Memory accesses written as the BPF instructions we want, where LLVM's BPF backend would
//! emit something else.

/// `*at += n` atomically across CPUs (Rust offers no atomic add on BPF, which has no
/// compare-and-swap before v3; the plain atomic add is v1). On x86 the JIT makes it a `lock
/// add`, which also orders the writes before it.
#[inline(always)]
pub fn atomic_add(at: *mut u64, n: u64) {
    #[cfg(target_arch = "bpf")]
    // SAFETY: `at` points into a map value that outlives the program run.
    unsafe {
        core::arch::asm!(
            "lock *(u64 *)({at} + 0) += {n}",
            at = in(reg) at,
            n = in(reg) n,
            options(nostack)
        );
    }
    #[cfg(not(target_arch = "bpf"))]
    // SAFETY: as above.
    unsafe {
        core::sync::atomic::AtomicU64::from_ptr(at)
            .fetch_add(n, core::sync::atomic::Ordering::SeqCst);
    }
}

/// `*at |= bits` atomically across CPUs (other objects' bits share the word).
#[inline(always)]
pub fn atomic_or(at: *mut u64, bits: u64) {
    #[cfg(target_arch = "bpf")]
    // SAFETY: `at` points into a map value that outlives the program run.
    unsafe {
        core::arch::asm!(
            "lock *(u64 *)({at} + 0) |= {bits}",
            at = in(reg) at,
            bits = in(reg) bits,
            options(nostack)
        );
    }
    #[cfg(not(target_arch = "bpf"))]
    // SAFETY: as above.
    unsafe {
        core::sync::atomic::AtomicU64::from_ptr(at)
            .fetch_or(bits, core::sync::atomic::Ordering::SeqCst);
    }
}

/// `*at &= bits` atomically across CPUs.
#[inline(always)]
pub fn atomic_and(at: *mut u64, bits: u64) {
    #[cfg(target_arch = "bpf")]
    // SAFETY: `at` points into a map value that outlives the program run.
    unsafe {
        core::arch::asm!(
            "lock *(u64 *)({at} + 0) &= {bits}",
            at = in(reg) at,
            bits = in(reg) bits,
            options(nostack)
        );
    }
    #[cfg(not(target_arch = "bpf"))]
    // SAFETY: as above.
    unsafe {
        core::sync::atomic::AtomicU64::from_ptr(at)
            .fetch_and(bits, core::sync::atomic::Ordering::SeqCst);
    }
}

/// `*(at as *mut u64) = value` as one store at any alignment. LLVM's BPF backend splits an
/// unaligned store into eight byte stores and seven shifts, and turns a run of aligned zero
/// stores into a call to its `memset`, a loop storing a byte per iteration. The verifier accepts
/// an unaligned store where the architecture handles them (x86-64 and arm64, the tracer's).
#[inline(always)]
pub fn store_word(at: *mut u8, value: u64) {
    #[cfg(target_arch = "bpf")]
    // SAFETY: the callers pass 8 writable bytes inside a map value or the stack.
    unsafe {
        core::arch::asm!(
            "*(u64 *)({at} + 0) = {value}",
            at = in(reg) at,
            value = in(reg) value,
            options(nostack)
        );
    }
    #[cfg(not(target_arch = "bpf"))]
    // SAFETY: as above.
    unsafe {
        at.cast::<u64>().write_unaligned(value)
    };
}
