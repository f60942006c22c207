//! Building trace events: scope check, header, path, copy into the ring buffer.
use aya_ebpf::helpers::{
    bpf_get_current_pid_tgid, bpf_ktime_get_ns,
    generated::{
        bpf_get_current_ancestor_cgroup_id, bpf_get_current_comm, bpf_get_current_task,
        bpf_ringbuf_output, bpf_ringbuf_query,
    },
};
use dentry_common::{
    BENCH_STOP_AFTER_SCOPE, BENCH_STOP_BEFORE_OUTPUT, COMM_LEN, EventHeader, FLAG_TRUNCATED,
    HotCounters, KERNEL_FILTER_PATH, MAX_CGROUP_LEVEL, Operation, PATH_BUF, SCOPE_IN, SCOPE_OUT,
    SCOPE_UNKNOWN, SWITCH_TRACE,
};

use crate::{
    Ptr, dentry,
    maps::{
        DROPS, EVENTS, FILTERED, HOT_COUNTERS, SCRATCH, SWITCH, TARGETS, config, count_one,
        offsets, path_cache_on, patterns,
    },
    mem::store_word,
    path_cache,
};

const BPF_RB_NO_WAKEUP: u64 = 1;
const BPF_RB_FORCE_WAKEUP: u64 = 2;
const BPF_RB_AVAIL_DATA: u64 = 0;

/// What an event is about.
pub enum Target {
    /// A linked dentry.
    Dentry(Ptr),
    /// A whole superblock (reclaim).
    SuperBlock(Ptr),
}

/// Whether the slot's cgroup is traced; the verdict is checked once per cgroup switch.
#[inline(always)]
fn in_scope(hot: &mut HotCounters) -> bool {
    if config().scoped == 0 {
        return true;
    }
    if hot.scope == SCOPE_UNKNOWN {
        hot.scope = if matches_targets(hot.cgroup) {
            SCOPE_IN
        } else {
            SCOPE_OUT
        };
    }
    hot.scope == SCOPE_IN
}

#[inline(always)]
fn matches_targets(cgroup: u64) -> bool {
    let cfg = config();
    // SAFETY: map lookups of plain values.
    if unsafe { TARGETS.get(cgroup) }.is_some() {
        return true;
    }
    let levels = cfg.ancestor_levels;
    for level in 0..MAX_CGROUP_LEVEL {
        if levels & (1 << level) != 0 {
            let ancestor = ancestor_cgroup_id(level);
            // SAFETY: a map lookup of a plain value.
            if unsafe { TARGETS.get(ancestor) }.is_some() {
                return true;
            }
        }
    }
    false
}

/// The id of the current task's cgroup v2 ancestor at `level` (0 if it is not that deep).
/// Tracing programs have a helper for it since 5.11; before, the loader sets where the task's
/// default-hierarchy cgroup lists its ancestors' ids, and the helper call is never verified.
#[inline(always)]
fn ancestor_cgroup_id(level: u32) -> u64 {
    let off = offsets();
    if off.cgroup_ancestor_ids == 0 {
        // SAFETY: FFI helper without preconditions.
        return unsafe { bpf_get_current_ancestor_cgroup_id(level as i32) };
    }
    // SAFETY: FFI helper without preconditions; the task is read through probe reads only.
    let task = unsafe { bpf_get_current_task() } as Ptr;
    let cgroup = dentry::field::<Ptr>(task, off.task_cgroups)
        .and_then(|css_set| dentry::field::<Ptr>(css_set, off.css_set_dfl_cgrp));
    let Some(cgroup) = cgroup else {
        return 0;
    };
    match dentry::field::<i32>(cgroup, off.cgroup_level) {
        Some(deepest) if deepest >= level as i32 => {
            dentry::field::<u64>(cgroup, off.cgroup_ancestor_ids + 8 * level).unwrap_or(0)
        }
        _ => 0,
    }
}

/// The path length in the record's header, read from memory: a fresh value for the verifier,
/// unrelated to the walk's (each of the walk's ways out leaves a different one, and every
/// later branch on it would be checked once per way).
#[inline(always)]
fn recorded_len(ev: &dentry_common::Event) -> usize {
    // SAFETY: a plain read of the scratch slot's header.
    usize::from(unsafe { core::ptr::read_volatile(&ev.header.path_len) })
}

/// Emits one event when tracing is on and the current task (whose cgroup this CPU's counting
/// slot holds, as `maps::count` left it, under its claim) is in scope. `flags` are `FLAG_*`
/// bits for userspace (the walk adds its own).
///
/// The work is three BPF global functions called in turn (the walk, the pattern test, the
/// write): the verifier checks each once per program, with arguments it knows nothing about,
/// instead of once per call site in the caller's state; inlined, the walk and the pattern
/// search made most of every program's verification, and on 7.x passed the verifier's
/// million-instruction limit. They pass what they found through the scratch event and
/// `PENDING_PREFIX`, and a call chain of one keeps each within the 512-byte stack.
#[inline(always)]
pub fn event(op: Operation, target: Target, flags: u16) {
    if config().trace == 0 {
        return;
    }
    let (kind, at) = match target {
        Target::Dentry(d) => (TARGET_DENTRY, d),
        Target::SuperBlock(sb) => (TARGET_SUPERBLOCK, sb),
    };
    // A global function takes numbers only; an fentry program's arguments are typed pointers,
    // which a helper's copy turns into numbers.
    let Some(at) = crate::mem::number(at) else {
        return;
    };
    match dentry_emit_walk(at, kind, u64::from(flags)) {
        WALKED_SEND => {}
        WALKED_TEST if dentry_patterns_found() != 0 => {}
        WALKED_TEST => {
            path_cache::prefix_held_no_pattern();
            count_one(&FILTERED);
            return;
        }
        _ => return,
    }
    dentry_emit_send(op as u64);
}

const TARGET_DENTRY: u64 = 0;
const TARGET_SUPERBLOCK: u64 = 1;

/// `dentry_emit_walk`: nothing to send (off, out of scope, a benchmark stop, no state).
const WALKED_NOTHING: u64 = 0;
/// The record is ready; the kernel patterns must pass it first.
const WALKED_TEST: u64 = 1;
/// The record is ready to send.
const WALKED_SEND: u64 = 2;

/// The scope check, the header's path fields and the path walk into this CPU's scratch event;
/// says what is left to do (`WALKED_*`).
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn dentry_emit_walk(at: u64, kind: u64, flags: u64) -> u64 {
    let cfg = config();
    if SWITCH.get(SWITCH_TRACE).is_none_or(|on| *on == 0) {
        return WALKED_NOTHING;
    }
    let Some(hot) = HOT_COUNTERS.get_ptr_mut(0) else {
        return WALKED_NOTHING;
    };
    // SAFETY: this CPU's counting slot; the caller holds the CPU's claim (`maps::Claim`).
    let hot = unsafe { &mut *hot };
    if !in_scope(hot) || cfg.bench & BENCH_STOP_AFTER_SCOPE != 0 {
        return WALKED_NOTHING;
    }
    let Some(slot) = SCRATCH.get_ptr_mut(0) else {
        return WALKED_NOTHING;
    };
    // SAFETY: per-CPU scratch slot, only this CPU touches it.
    let ev = unsafe { &mut *slot };
    let off = offsets();
    let h = &mut ev.header;
    const _: () = assert!(dentry_common::FSTYPE_LEN == 16);
    store_word(h.fstype.as_mut_ptr(), 0);
    store_word(h.fstype.as_mut_ptr().wrapping_add(8), 0);
    h.cgroup_id = hot.cgroup;
    let is_dentry = kind == TARGET_DENTRY;
    // The path cache's steps below run for every event, whether the cache is on or not: a
    // flag kept from here to there would make the verifier check the pattern test twice.
    path_cache::forget_prefix();
    // With kernel patterns, a clean cached directory path is copied only if the leaf matches.
    let defer = patterns().count != 0;
    let walk = if is_dentry {
        dentry::walk(at as Ptr, path_cache_on(), defer)
    } else {
        dentry::superblock(at as Ptr, off, &mut h.fstype);
        dentry::Walk::new(0)
    };
    let h = &mut ev.header;
    h.path_len = walk.len.min(PATH_BUF) as u16;
    h.depth = walk.depth;
    h.flags = walk.flags | flags as u16;
    // As for `recorded_len`.
    // SAFETY: a plain read of the scratch slot's header.
    let walk_flags = unsafe { core::ptr::read_volatile(&ev.header.flags) };
    path_cache::settle_miss(ev);
    if cfg.bench & BENCH_STOP_BEFORE_OUTPUT != 0 {
        return WALKED_NOTHING;
    }
    // Reclaim events carry no path, and cut paths cannot be tested: userspace decides.
    let end = recorded_len(ev);
    if !is_dentry
        || walk_flags & FLAG_TRUNCATED != 0
        || patterns().count == 0
        || end > KERNEL_FILTER_PATH
    {
        return WALKED_SEND;
    }
    dentry_common::end_path(ev, end);
    WALKED_TEST
}

/// The kernel patterns' search over this CPU's scratch event (its path ended by `end_path`).
/// Non-zero: a pattern matches (or the path is too long to tell).
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn dentry_patterns_found() -> u64 {
    let Some(slot) = SCRATCH.get_ptr(0) else {
        return 1;
    };
    // SAFETY: this CPU's scratch slot; the caller holds the CPU's claim.
    let ev = unsafe { &*slot };
    // Read from the header: the walk's own copy is out of reach here anyway.
    if recorded_len(ev) > KERNEL_FILTER_PATH {
        return 1;
    }
    for step in 0..dentry_common::STEPS {
        match dentry_pattern_step(step as u64) {
            STEP_FOUND => return 1,
            STEP_NEXT => {}
            _ => return 0,
        }
    }
    0
}

const STEP_FOUND: u64 = 1;
const STEP_NEXT: u64 = 2;

/// One 8-byte step of the pattern search (`KernelPatterns::step`), as a global function: the
/// verifier checks one step once, not every unrolled step in the state the one before left.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn dentry_pattern_step(step: u64) -> u64 {
    let Some(slot) = SCRATCH.get_ptr(0) else {
        return 0;
    };
    // SAFETY: this CPU's scratch slot; the caller holds the CPU's claim.
    let ev = unsafe { &*slot };
    let len = recorded_len(ev);
    if len > KERNEL_FILTER_PATH {
        return 0;
    }
    match patterns().step(ev, len, step as usize) {
        dentry_common::Step::Found => STEP_FOUND,
        dentry_common::Step::Next => STEP_NEXT,
        dentry_common::Step::End => 0,
    }
}

/// The rest of the header and the copy of the record into the ring buffer.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn dentry_emit_send(op: u64) -> u64 {
    let cfg = config();
    let Some(slot) = SCRATCH.get_ptr_mut(0) else {
        return 0;
    };
    // SAFETY: per-CPU scratch slot, only this CPU touches it (under the caller's claim).
    let ev = unsafe { &mut *slot };
    path_cache::complete_deferred(ev);
    // The rest of the header only for a record that is written: three helper calls that a
    // record the pattern test leaves out does not pay.
    let h = &mut ev.header;
    // SAFETY: FFI helpers without preconditions.
    h.ts_ns = unsafe { bpf_ktime_get_ns() };
    h.pid = (bpf_get_current_pid_tgid() >> 32) as u32;
    h.op = op as u32;
    // Straight into the header: aya's wrapper zeroes a stack copy first, and the helper zeroes
    // the buffer itself when it fails.
    // SAFETY: the helper writes at most COMM_LEN bytes into the field.
    unsafe { bpf_get_current_comm(h.comm.as_mut_ptr().cast(), COMM_LEN as u32) };
    // Prune's freed count is known only at its return, where it goes to the counters.
    h.count = 0;
    let path_len = recorded_len(ev);
    if path_len > PATH_BUF {
        return 0;
    }
    let size = core::mem::size_of::<EventHeader>() + path_len;
    let ring = core::ptr::addr_of!(EVENTS).cast_mut().cast();
    // SAFETY: FFI helper on our own ring buffer map.
    let waiting = unsafe { bpf_ringbuf_query(ring, BPF_RB_AVAIL_DATA) };
    let wakeup = if waiting >= u64::from(cfg.wakeup_bytes) {
        BPF_RB_FORCE_WAKEUP
    } else {
        BPF_RB_NO_WAKEUP
    };
    // SAFETY: `size` is at most the header plus PATH_BUF, inside the scratch value.
    let ret = unsafe {
        bpf_ringbuf_output(
            ring,
            (ev as *mut dentry_common::Event).cast(),
            size as u64,
            wakeup,
        )
    };
    if ret < 0 {
        count_one(&DROPS);
    }
    0
}
