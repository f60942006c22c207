//! Kernel programs of the dentry tracer.
//!
//! Every probe exists twice, as a kprobe (`kp_*`) and as fentry/fexit (`fe_*`, cheaper, needs
//! BTF and no lockdown); the tracer picks per probe at load time. Both call the same handler,
//! so maps and events are identical either way.
#![no_std]
#![no_main]
// Inline assembly for the stores LLVM would not emit (mem).
#![cfg_attr(target_arch = "bpf", feature(asm_experimental_arch))]

mod arm;
mod dentry;
mod emit;
mod live;
mod maps;
mod mem;
mod path_cache;

use aya_ebpf::{
    macros::{fentry, fexit, kprobe, kretprobe},
    programs::{FEntryContext, FExitContext, ProbeContext, RetProbeContext},
};
use dentry_common::{Counters, FLAG_ALLOCATED, Operation};

use crate::maps::{FLOOR, count, count_one};

type Ptr = *const u8;

/// Declares the kprobe and the fentry variant of one entry probe.
macro_rules! entry_probe {
    ($function:literal, $kp:ident, $fe:ident, $handler:ident($($n:literal),*)) => {
        #[kprobe]
        #[allow(unused_variables, reason = "handlers without arguments ignore ctx")]
        pub fn $kp(ctx: ProbeContext) -> u32 {
            $handler($(ctx.arg::<Ptr>($n).unwrap_or(core::ptr::null())),*);
            0
        }

        #[fentry(function = $function)]
        #[allow(unused_variables, reason = "handlers without arguments ignore ctx")]
        pub fn $fe(ctx: FEntryContext) -> u32 {
            $handler($(ctx.arg::<Ptr>($n)),*);
            0
        }
    };
}

// __d_alloc(sb, name): every allocation, on every kernel (6.12's lookup path skips d_alloc).
entry_probe!("__d_alloc", kp_d_alloc_any, fe_d_alloc_any, on_alloc());
// d_add(dentry, inode): tmpfs-style lookups and some creates.
entry_probe!("d_add", kp_d_add, fe_d_add, on_lookup(0, 1));
// d_splice_alias(inode, dentry): disk filesystems' lookups.
entry_probe!(
    "d_splice_alias",
    kp_d_splice_alias,
    fe_d_splice_alias,
    on_splice(1, 0)
);
// d_instantiate(dentry, inode) / d_instantiate_new(dentry, inode): creates.
entry_probe!(
    "d_instantiate",
    kp_d_instantiate,
    fe_d_instantiate,
    on_attach(0, 1)
);
entry_probe!(
    "d_instantiate_new",
    kp_d_instantiate_new,
    fe_d_instantiate_new,
    on_attach(0, 1)
);
// d_make_persistent(dentry, inode): since 7.x, tmpfs, ramfs and the like give a created
// dentry its inode (and pin it) here instead of through d_instantiate.
entry_probe!(
    "d_make_persistent",
    kp_d_make_persistent,
    fe_d_make_persistent,
    on_attach(0, 1)
);
// d_delete(dentry): unlink/rmdir; the dentry turns negative.
entry_probe!("d_delete", kp_d_delete, fe_d_delete, on_delete(0));
// shrink_dcache_sb(sb): remount and friends.
entry_probe!(
    "shrink_dcache_sb",
    kp_shrink_dcache_sb,
    fe_shrink_dcache_sb,
    on_shrink(0)
);
// prune_dcache_sb(sb, sc): the superblock shrinker.
entry_probe!(
    "prune_dcache_sb",
    kp_prune_dcache_sb,
    fe_prune_dcache_sb,
    on_prune(0)
);

// __d_free(head) / __d_free_external(head): a dentry's memory going back to the slab (RCU
// callbacks, so never inlined). Only while tracing: they keep the path cache right.
entry_probe!("__d_free", kp_d_free, fe_d_free, on_free(0));
entry_probe!(
    "__d_free_external",
    kp_d_free_external,
    fe_d_free_external,
    on_free(0)
);

/// __d_move (renames, exchanges, a directory alias spliced into place) has changed names and
/// parents by the time it returns: cached paths read before then may be stale.
#[kretprobe]
pub fn kr_d_move(_ctx: RetProbeContext) -> u32 {
    maps::invalidate_paths();
    0
}

#[fexit(function = "__d_move")]
pub fn fx_d_move(_ctx: FExitContext) -> u32 {
    maps::invalidate_paths();
    0
}

// dentry_free(dentry): every dentry freed, whether or not it waits for an RCU grace period
// (`__d_free` is inlined where it does not). Live counting only.
entry_probe!(
    "dentry_free",
    kp_dentry_free,
    fe_dentry_free,
    on_dentry_free(0)
);
// dentry_unlink_inode(dentry): a positive dentry turns negative (unlink, or being killed).
entry_probe!(
    "dentry_unlink_inode",
    kp_dentry_unlink_inode,
    fe_dentry_unlink_inode,
    on_unlink(0)
);

/// `__d_alloc` returns the new dentry: live counting needs its address (its slab object).
#[kretprobe]
pub fn kr_d_alloc_live(ctx: RetProbeContext) -> u32 {
    live::on_alloc(ctx.ret::<Ptr>());
    0
}

#[fexit(function = "__d_alloc")]
pub fn fx_d_alloc_live(ctx: FExitContext) -> u32 {
    live::on_alloc(ctx.arg::<Ptr>(2));
    0
}

#[inline(always)]
fn on_dentry_free(dentry: Ptr) {
    live::on_free(dentry);
}

#[inline(always)]
fn on_unlink(dentry: Ptr) {
    live::on_unlink(dentry);
}

/// A freed directory that a path cache holds: its address may come back as another dentry.
#[inline(always)]
fn on_free(rcu_head: Ptr) {
    let dentry = rcu_head.wrapping_sub(maps::offsets().dentry_d_rcu as usize);
    if maps::CACHED_DIRS.remove(dentry as u64).is_ok() {
        maps::invalidate_paths();
    }
}

/// prune_dcache_sb returns how many dentries it freed.
#[kretprobe]
pub fn kr_prune_dcache_sb(ctx: RetProbeContext) -> u32 {
    on_pruned(ctx.ret::<i64>());
    0
}

#[fexit(function = "prune_dcache_sb")]
pub fn fx_prune_dcache_sb(ctx: FExitContext) -> u32 {
    on_pruned(ctx.arg::<i64>(2));
    0
}

/// The benchmark's floor: the cheapest possible probe on the allocation path.
#[kprobe]
pub fn kp_floor(_ctx: ProbeContext) -> u32 {
    count_one(&FLOOR);
    0
}

#[fentry(function = "__d_alloc")]
pub fn fe_floor(_ctx: FEntryContext) -> u32 {
    count_one(&FLOOR);
    0
}

/// The floor's second probe, on the lookup's end: what two floor-cheap probes cost, which is
/// the least the counters can cost (a failed lookup passes two of their probes).
#[kprobe]
pub fn kp_floor_lookup(_ctx: ProbeContext) -> u32 {
    count_one(&FLOOR);
    0
}

#[fentry(function = "d_splice_alias")]
pub fn fe_floor_lookup(_ctx: FEntryContext) -> u32 {
    count_one(&FLOOR);
    0
}

/// The live gauges' floor: the cheapest probes on the two functions they add, the allocation's
/// return and the free.
#[kretprobe]
pub fn kr_floor_alloc(_ctx: RetProbeContext) -> u32 {
    count_one(&FLOOR);
    0
}

#[fexit(function = "__d_alloc")]
pub fn fx_floor_alloc(_ctx: FExitContext) -> u32 {
    count_one(&FLOOR);
    0
}

#[kprobe]
pub fn kp_floor_free(_ctx: ProbeContext) -> u32 {
    count_one(&FLOOR);
    0
}

#[fentry(function = "dentry_free")]
pub fn fe_floor_free(_ctx: FEntryContext) -> u32 {
    count_one(&FLOOR);
    0
}

#[inline(always)]
fn on_alloc() {
    count(|c| c.alloc += 1, |_| {});
}

/// A lookup's result on the dentry it allocated (both functions require an unhashed dentry,
/// which only a fresh allocation is): one event stands for the allocation and the result.
#[inline(always)]
fn on_lookup(dentry: Ptr, inode: Ptr) {
    live::on_positive(dentry, inode, false);
    attach(dentry, inode, FLAG_ALLOCATED);
}

/// `d_splice_alias`: as `on_lookup`, but a directory with a dentry already keeps that one.
#[inline(always)]
fn on_splice(dentry: Ptr, inode: Ptr) {
    live::on_positive(dentry, inode, true);
    attach(dentry, inode, FLAG_ALLOCATED);
}

/// A create (or similar) giving an existing negative dentry its inode.
#[inline(always)]
fn on_attach(dentry: Ptr, inode: Ptr) {
    live::on_positive(dentry, inode, false);
    attach(dentry, inode, 0);
}

#[inline(always)]
fn attach(dentry: Ptr, inode: Ptr, flags: u16) {
    let target = emit::Target::Dentry(dentry);
    if inode.is_null() {
        count_and_trace(Operation::Negative, target, flags, |c| c.negative += 1);
    } else {
        count_and_trace(Operation::Positive, target, flags, |c| c.positive += 1);
    }
}

#[inline(always)]
fn on_delete(dentry: Ptr) {
    let target = emit::Target::Dentry(dentry);
    count_and_trace(Operation::Delete, target, 0, |c| c.negative += 1);
}

#[inline(always)]
fn on_shrink(sb: Ptr) {
    let target = emit::Target::SuperBlock(sb);
    count_and_trace(Operation::Shrink, target, 0, |c| c.shrink_calls += 1);
}

#[inline(always)]
fn on_prune(sb: Ptr) {
    let target = emit::Target::SuperBlock(sb);
    count_and_trace(Operation::Prune, target, 0, |c| c.prune_calls += 1);
}

/// Counts for the current cgroup, then traces with the cgroup the count found (unless the
/// CPU's state was claimed by a program this one interrupted: see `maps::Claim`).
#[inline(always)]
fn count_and_trace(
    op: Operation,
    target: emit::Target,
    flags: u16,
    counts: impl FnOnce(&mut Counters),
) {
    count(counts, |_| emit::event(op, target, flags));
}

#[inline(always)]
fn on_pruned(freed: i64) {
    if freed > 0 {
        count(|c| c.pruned += freed as u64, |_| {});
    }
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
