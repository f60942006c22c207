//! Memory accesses written as the BPF instructions we want, where LLVM's BPF backend would
//! emit something else.

/// One atomic read-modify-write of a `u64` in a map value, as the single BPF instruction
/// (`lock *(u64 *)(at + 0) OP= value`, no fetch). Only the add: it is the one atomic every
/// kernel from 5.10 has (`BPF_XADD`); the bitwise ones and those that return a value came in
/// 5.12, and a 5.10 verifier refuses a program holding one anywhere, dead code included. Rust
/// offers no atomics on BPF, and on the host (unit tests) the same operation is the standard
/// atomic.
macro_rules! atomic {
    ($(#[$doc:meta])* $name:ident, $op:literal, $host:ident) => {
        $(#[$doc])*
        #[inline(always)]
        pub fn $name(at: *mut u64, value: u64) {
            #[cfg(target_arch = "bpf")]
            // SAFETY: `at` points into a map value that outlives the program run.
            unsafe {
                core::arch::asm!(
                    concat!("lock *(u64 *)({at} + 0) ", $op, " {value}"),
                    at = in(reg) at,
                    value = in(reg) value,
                    options(nostack)
                );
            }
            #[cfg(not(target_arch = "bpf"))]
            // SAFETY: as above.
            unsafe {
                core::sync::atomic::AtomicU64::from_ptr(at)
                    .$host(value, core::sync::atomic::Ordering::SeqCst);
            }
        }
    };
}

atomic!(
    /// `*at += n` across CPUs. On x86 the JIT makes it a `lock add`, which also orders the
    /// writes before it.
    atomic_add,
    "+=",
    fetch_add
);
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

/// A pointer's value as a plain number. An fentry program's arguments are typed pointers,
/// and the verifier refuses arithmetic on them with a value it cannot bound, or passing them
/// where a number is asked (a global function's arguments); a copy made by a helper is a
/// number like any other.
#[inline(always)]
pub fn number(p: *const u8) -> Option<u64> {
    let slot = [p];
    // SAFETY: bpf_probe_read_kernel copes with any address; this one is our own stack.
    unsafe { aya_ebpf::helpers::bpf_probe_read_kernel(slot.as_ptr().cast::<u64>()).ok() }
}
