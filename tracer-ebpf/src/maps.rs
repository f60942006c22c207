//! Maps and load-time globals.
use aya_ebpf::{
    helpers::bpf_get_current_cgroup_id,
    macros::map,
    maps::{Array, HashMap, PerCpuArray, PerCpuHashMap, RingBuf},
};
use dentry_common::{
    Config, Counters, Event, HotCounters, KERNEL_PATTERNS, KernelOffsets, KernelPattern,
    KernelPatterns, LevelLayout, MAX_CACHED_DIRS, MAX_CGROUPS, MAX_TARGETS, PREFIX_SLOTS,
    PathPrefix, PendingPrefix, SCOPE_UNKNOWN, SuperblockCache,
};

#[map(name = "COUNTERS")]
pub static COUNTERS: PerCpuHashMap<u64, Counters> = PerCpuHashMap::with_max_entries(MAX_CGROUPS, 0);

/// cgroup ids whose tasks produce trace events when `Config::scoped` is set.
#[map(name = "TARGETS")]
pub static TARGETS: HashMap<u64, u8> = HashMap::with_max_entries(MAX_TARGETS, 0);

/// Trace events. Userspace sets the real size at load time.
#[map(name = "EVENTS")]
pub static EVENTS: RingBuf = RingBuf::with_byte_size(1 << 22, 0);

/// Events lost because the ring buffer was full.
#[map(name = "DROPS")]
pub static DROPS: PerCpuArray<u64> = PerCpuArray::with_max_entries(1, 0);

/// Where an event is assembled before it is copied into the ring buffer at its real length.
#[map(name = "SCRATCH")]
pub static SCRATCH: PerCpuArray<Event> = PerCpuArray::with_max_entries(1, 0);

/// Slot `SWITCH_TRACE` non-zero: emit trace events. Userspace clears it when a cap is reached,
/// so tracing stops without the ring buffer filling up and counting drops. Slot
/// `SWITCH_PATH_CACHE` non-zero: the path cache may be used.
#[map(name = "SWITCH")]
pub static SWITCH: Array<u32> = Array::with_max_entries(2, 0);

/// Per CPU, a few directories' paths (`PathPrefix`), so events under them walk their own name
/// only.
#[map(name = "PREFIXES")]
pub static PREFIXES: PerCpuArray<PathPrefix> = PerCpuArray::with_max_entries(PREFIX_SLOTS, 0);

/// What the walk found at its leaf's directory, for the same event's later path-cache steps.
#[map(name = "PENDING_PREFIX")]
pub static PENDING_PREFIX: PerCpuArray<PendingPrefix> = PerCpuArray::with_max_entries(1, 0);

/// Every directory a path cache took in, until it is freed: its free must move `GENERATION`.
#[map(name = "CACHED_DIRS")]
pub static CACHED_DIRS: HashMap<u64, u8> = HashMap::with_max_entries(MAX_CACHED_DIRS, 0);

/// Moves whenever a cached path may have gone stale (see `PathPrefix`).
#[map(name = "GENERATION")]
pub static GENERATION: Array<u64> = Array::with_max_entries(1, 0);

/// Events whose directory path came from the path cache.
#[map(name = "PATH_CACHE_HITS")]
pub static PATH_CACHE_HITS: PerCpuArray<u64> = PerCpuArray::with_max_entries(1, 0);

/// The last superblock this CPU saw, its filesystem type name and its root dentry.
#[map(name = "SUPERBLOCKS")]
pub static SUPERBLOCKS: PerCpuArray<SuperblockCache> = PerCpuArray::with_max_entries(1, 0);

/// This CPU's counters for the cgroup it counted last, and that cgroup's scope verdict.
#[map(name = "HOT_COUNTERS")]
pub static HOT_COUNTERS: PerCpuArray<HotCounters> = PerCpuArray::with_max_entries(1, 0);

/// Events the kernel did not send because no pattern matched their path.
#[map(name = "FILTERED")]
pub static FILTERED: PerCpuArray<u64> = PerCpuArray::with_max_entries(1, 0);

/// Per CPU, how many programs hold or are trying for this CPU's state (the counting slot, the
/// scratch event, the path cache): see `Claim`.
#[map(name = "BUSY")]
pub static BUSY: PerCpuArray<u64> = PerCpuArray::with_max_entries(1, 0);

/// Probe hits that found this CPU's state claimed (a program they preempted or interrupted
/// holds it): counted in `SPILLED`, not traced.
#[map(name = "CONTENDED")]
pub static CONTENDED: PerCpuArray<u64> = PerCpuArray::with_max_entries(1, 0);

/// Counts of the hits `CONTENDED` counts, per cgroup, added atomically (no slot involved);
/// userspace adds them to the rest.
#[map(name = "SPILLED")]
pub static SPILLED: PerCpuHashMap<u64, Counters> = PerCpuHashMap::with_max_entries(MAX_CGROUPS, 0);

/// The benchmark floor's counter.
#[map(name = "FLOOR")]
pub static FLOOR: PerCpuArray<u64> = PerCpuArray::with_max_entries(1, 0);

#[unsafe(no_mangle)]
static OFFSETS: KernelOffsets = KernelOffsets {
    dentry_d_parent: 0,
    dentry_d_name: 0,
    dentry_d_inode: 0,
    dentry_d_sb: 0,
    qstr_name: 0,
    super_block_s_type: 0,
    file_system_type_name: 0,
    dentry_d_iname: 0,
    qstr_len: 0,
    super_block_s_root: 0,
    dentry_d_rcu: 0,
    cgroup_kn: 0,
    kernfs_node_id: 0,
    task_cgroups: 0,
    css_set_dfl_cgrp: 0,
    cgroup_level: 0,
    cgroup_ancestor_ids: 0,
    level: LevelLayout {
        name: 0,
        len: 0,
        len_shift: 0,
        iname: 0,
        sb: 0,
        _pad: 0,
    },
};

#[unsafe(no_mangle)]
static CONFIG: Config = Config {
    trace: 0,
    scoped: 0,
    ancestor_levels: 0,
    wakeup_bytes: 0,
    bench: 0,
};

#[unsafe(no_mangle)]
static PATTERNS: KernelPatterns = KernelPatterns {
    count: 0,
    _pad: 0,
    patterns: [KernelPattern {
        words: [0; 2],
        masks: [0; 2],
        first: 0,
        second: 0,
        second_mask: 0,
        len: 0,
        _pad: 0,
    }; KERNEL_PATTERNS],
};

/// A load-time global behind a pointer the compiler cannot see through: it would fold the
/// placeholder zeros, and the loader rewrites the global before the programs are loaded. (A
/// volatile read of the whole value instead loads every field up front and keeps them on the
/// stack for the whole program; through the pointer each field is loaded where it is used, and
/// the verifier still knows it as a constant, the map being frozen.)
#[inline(always)]
pub(crate) fn global<T>(at: &'static T) -> &'static T {
    let at: *const T = at;
    // SAFETY: reading back a pointer to a static; it stays valid for the program's life.
    unsafe { &*core::ptr::read_volatile(&at) }
}

/// Struct offsets for the running kernel (set by the tracer from BTF).
#[inline(always)]
pub fn offsets() -> &'static KernelOffsets {
    global(&OFFSETS)
}

#[inline(always)]
pub fn config() -> &'static Config {
    global(&CONFIG)
}

/// This CPU's state, claimed until dropped.
///
/// kprobe programs run with preemption off and never nest, but fentry programs run with only
/// migration disabled: on a preemptible kernel another task's program can run on this CPU
/// while one is preempted half-way, and a program in an interrupt can run inside another. The
/// claim keeps them off the same per-CPU slot and scratch event. Taking it is one atomic add
/// and a read: a program holds the claim only if the count it reads back is 1, so two can
/// never both hold it whichever order their adds and reads interleave in (at worst both give
/// up). The add is a single instruction, so a preemption falls before or after it.
pub struct Claim(*mut u64);

impl Claim {
    #[inline(always)]
    pub fn take() -> Option<Claim> {
        let busy = BUSY.get_ptr_mut(0)?;
        crate::mem::atomic_add(busy, 1);
        // SAFETY: a plain read of this CPU's slot.
        if unsafe { core::ptr::read_volatile(busy) } == 1 {
            return Some(Claim(busy));
        }
        crate::mem::atomic_add(busy, u64::MAX);
        None
    }
}

impl Drop for Claim {
    #[inline(always)]
    fn drop(&mut self) {
        // An add, not a store of 0: a contender's add may be in flight.
        crate::mem::atomic_add(self.0, u64::MAX);
    }
}

/// Counts for the current cgroup with `count`. With this CPU's state claimed, `then` runs on
/// the counting slot (which now holds the current cgroup) before the claim is released.
/// Otherwise the count goes to `SPILLED` and the hit to `CONTENDED`, and `then` does not run.
#[inline(always)]
pub fn count(count: impl FnOnce(&mut Counters), then: impl FnOnce(&mut HotCounters)) {
    // SAFETY: the helper has no preconditions; it is `unsafe` only because it is FFI.
    let cgroup = unsafe { bpf_get_current_cgroup_id() };
    let Some(_claim) = Claim::take() else {
        spill(cgroup, count);
        // Atomic: this counter alone is written without the claim.
        if let Some(contended) = CONTENDED.get_ptr_mut(0) {
            crate::mem::atomic_add(contended, 1);
        }
        return;
    };
    let Some(hot) = HOT_COUNTERS.get_ptr_mut(0) else {
        return;
    };
    // SAFETY: this CPU's slot, and the claim keeps every other program off it.
    let hot = unsafe { &mut *hot };
    if hot.cgroup != cgroup {
        switch_cgroup(hot, cgroup);
    }
    count(&mut hot.counters);
    then(hot);
}

/// Adds `count`'s increments to `cgroup`'s `SPILLED` value on this CPU, atomically: spills
/// can nest too.
#[inline(always)]
fn spill(cgroup: u64, count: impl FnOnce(&mut Counters)) {
    let mut delta = Counters::default();
    count(&mut delta);
    let value = match SPILLED.get_ptr_mut(cgroup) {
        Some(value) => value,
        None => {
            // A nested spill may insert first: then this insert fails and the lookup finds it.
            let _ = SPILLED.insert(cgroup, Counters::default(), BPF_NOEXIST);
            let Some(value) = SPILLED.get_ptr_mut(cgroup) else {
                return;
            };
            value
        }
    };
    // SAFETY: a live map value, written only with atomic adds.
    let fields = unsafe { &mut *value }.fields_mut();
    for (at, n) in fields.into_iter().zip(delta.fields_mut()) {
        if *n != 0 {
            crate::mem::atomic_add(at, *n);
        }
    }
}

const BPF_NOEXIST: u64 = 1;

/// Writes the slot's cgroup back to `COUNTERS` and loads `cgroup`'s counts into it.
#[inline(always)]
fn switch_cgroup(hot: &mut HotCounters, cgroup: u64) {
    if hot.cgroup != 0 {
        // From a BPF program an update of a per-CPU hash writes this CPU's value only, so a
        // racing first insert on another CPU loses nothing. A full map drops the count; the
        // tracer reports how many cgroups it tracks against MAX_CGROUPS.
        let _ = COUNTERS.insert(hot.cgroup, hot.counters, 0);
    }
    // SAFETY: a plain copy of this CPU's value.
    hot.counters = unsafe { COUNTERS.get(cgroup) }.copied().unwrap_or_default();
    hot.cgroup = cgroup;
    hot.scope = SCOPE_UNKNOWN;
}

/// The kernel patterns.
#[inline(always)]
pub fn patterns() -> &'static KernelPatterns {
    global(&PATTERNS)
}

/// Adds one to this CPU's slot of a one-slot per-CPU counter (`DROPS`, `FILTERED`,
/// `PATH_CACHE_HITS`, `FLOOR`); userspace sums the CPUs. A plain add: all but `FLOOR` are
/// counted under the CPU's claim (`Claim`), and the benchmark's floor stays the cheapest
/// probe there is.
#[inline(always)]
pub fn count_one(counter: &PerCpuArray<u64>) {
    if let Some(slot) = counter.get_ptr_mut(0) {
        // SAFETY: a per-CPU slot; the claim keeps other programs on this CPU off it.
        unsafe { *slot += 1 };
    }
}

/// The path caches' generation (see `PathPrefix`).
#[inline(always)]
pub fn generation() -> Option<u64> {
    // SAFETY: a plain read of an array slot; a racing bump gives the old or the new value.
    GENERATION
        .get_ptr(0)
        .map(|g| unsafe { core::ptr::read_volatile(g) })
}

/// Makes every CPU's cached paths stale.
#[inline(always)]
pub fn invalidate_paths() {
    if let Some(g) = GENERATION.get_ptr_mut(0) {
        crate::mem::atomic_add(g, 1);
    }
}

/// Whether the path cache may be used (`SWITCH_PATH_CACHE` set).
#[inline(always)]
pub fn path_cache_on() -> bool {
    SWITCH
        .get(dentry_common::SWITCH_PATH_CACHE)
        .is_some_and(|on| *on != 0)
}
