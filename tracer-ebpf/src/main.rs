//! Kernel programs of the dentry tracer.
//!
//! Counters live in a per-CPU hash keyed by the current task's cgroup v2 id, so the hot path
//! takes no lock and userspace does nothing per event: it sums the CPUs when it scrapes.
#![no_std]
#![no_main]

use aya_ebpf::{
    helpers::bpf_get_current_cgroup_id,
    macros::{kprobe, map},
    maps::PerCpuHashMap,
    programs::ProbeContext,
};
use dentry_common::{Counters, MAX_CGROUPS};

#[map(name = "COUNTERS")]
static COUNTERS: PerCpuHashMap<u64, Counters> = PerCpuHashMap::with_max_entries(MAX_CGROUPS, 0);

/// `__d_alloc(sb, name)`: every dentry allocation goes through it on every kernel we support
/// (on 6.12 the lookup path no longer calls `d_alloc`, see docs/architecture.md).
#[kprobe]
pub fn dentry_alloc(_ctx: ProbeContext) -> u32 {
    count(|c| c.alloc += 1);
    0
}

#[inline(always)]
fn count(bump: impl FnOnce(&mut Counters)) {
    // SAFETY: the helper has no preconditions; it is `unsafe` only because it is FFI.
    let cgroup = unsafe { bpf_get_current_cgroup_id() };
    if let Some(ptr) = COUNTERS.get_ptr_mut(cgroup) {
        // SAFETY: a per-CPU value is only ever touched by this CPU, and BPF programs are not
        // preempted by other programs of the same type on one CPU.
        bump(unsafe { &mut *ptr });
        return;
    }
    let mut fresh = Counters::default();
    bump(&mut fresh);
    // From a BPF program an update of a per-CPU hash writes this CPU's slot only, so a racing
    // first insert on another CPU loses nothing. A full map drops the event; the tracer
    // reports how many cgroups it tracks against MAX_CGROUPS.
    let _ = COUNTERS.insert(cgroup, fresh, 0);
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
