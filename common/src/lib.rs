//! `#[repr(C)]` types shared by the kernel programs (`tracer-ebpf`) and the tracer's userspace.
//!
//! Every type here crosses the user/kernel boundary through a BPF map, so its layout is a
//! contract between two separately compiled programs: change both sides together.
#![no_std]

/// Per-cgroup dentry counters, one copy per CPU (a `PerCpuHashMap` value) so the kernel side
/// never takes a lock; userspace sums the CPUs when it reads them.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Dentries allocated (`__d_alloc`, which every allocation path goes through).
    pub alloc: u64,
}

#[cfg(feature = "user")]
// SAFETY: plain old data, `repr(C)`, no padding, every bit pattern valid.
unsafe impl aya::Pod for Counters {}

/// Name of the per-cgroup counters map in the eBPF object.
pub const COUNTERS_MAP: &str = "COUNTERS";
/// Upper bound on distinct cgroups counted at once; a busy node has a few thousand.
pub const MAX_CGROUPS: u32 = 16384;
