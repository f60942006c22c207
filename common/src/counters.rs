//! The per-cgroup counters the probes keep, and the per-CPU slot they count into.

/// Per-cgroup dentry counters, one copy per CPU (a `PerCpuHashMap` value) so the kernel side
/// never takes a lock; userspace sums the CPUs when it reads them.
///
/// Semantics (docs/counters.md): `alloc` counts every dentry allocation (`__d_alloc`);
/// `negative` counts dentries left without an inode (a lookup that found nothing: `d_add` or
/// `d_splice_alias` with a NULL inode; an unlink: `d_delete`); `positive` counts dentries given
/// an inode (`d_instantiate`, `d_instantiate_new`, `d_add`/`d_splice_alias` with an inode). A
/// create therefore counts one alloc, one negative (its lookup) and one positive.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    pub alloc: u64,
    pub positive: u64,
    pub negative: u64,
    /// Calls of `shrink_dcache_sb` (remount, some unmount paths) made by this cgroup's tasks.
    pub shrink_calls: u64,
    /// Calls of `prune_dcache_sb` (the superblock shrinker: memory pressure, drop_caches).
    pub prune_calls: u64,
    /// Dentries `prune_dcache_sb` reported freed.
    pub pruned: u64,
}

impl Counters {
    /// Every field, in declaration order: what field-wise operations go through.
    pub fn fields_mut(&mut self) -> [&mut u64; 6] {
        [
            &mut self.alloc,
            &mut self.positive,
            &mut self.negative,
            &mut self.shrink_calls,
            &mut self.prune_calls,
            &mut self.pruned,
        ]
    }

    /// `f` applied to each pair of fields of `self` and `other`.
    pub fn zip_with(&self, other: &Counters, f: impl Fn(u64, u64) -> u64) -> Counters {
        let (mut out, mut other) = (*self, *other);
        for (a, b) in out.fields_mut().into_iter().zip(other.fields_mut()) {
            *a = f(*a, *b);
        }
        out
    }

    /// Field-wise sum (per-CPU slots into a total, or totals across cgroups).
    pub fn add(&self, other: &Counters) -> Counters {
        self.zip_with(other, |a, b| a + b)
    }

    /// Field-wise maximum (two readings of the same monotonic counters: the later of each).
    pub fn max(&self, other: &Counters) -> Counters {
        self.zip_with(other, u64::max)
    }
}

/// One CPU's counters for the cgroup it counted for last (a one-slot `PerCpuArray` value).
///
/// A task runs for many probes in a row, so the cgroup rarely changes between two probes on a
/// CPU: counting into this slot costs an array index where the per-cgroup hash costs a hash
/// and a bucket walk per probe. When another cgroup comes, the slot is written back to
/// `COUNTERS` (this CPU's value for `cgroup`) and reloaded from it for the new one. So a
/// cgroup's count on a CPU is this slot while `cgroup` names it, else its `COUNTERS` value;
/// both only grow, and the slot is never behind the hash. Userspace takes the larger of the
/// two per field.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HotCounters {
    /// The cgroup id the slot holds; 0 (no cgroup has it) until the first probe.
    pub cgroup: u64,
    /// The scope verdict for `cgroup` (`SCOPE_*`), cached for as long as the slot holds it:
    /// `TARGETS` is set before the programs attach and a cgroup's ancestors never change.
    pub scope: u64,
    pub counters: Counters,
}

/// `HotCounters::scope`: not checked yet.
pub const SCOPE_UNKNOWN: u64 = 0;
/// `HotCounters::scope`: the cgroup's tasks are not traced.
pub const SCOPE_OUT: u64 = 1;
/// `HotCounters::scope`: the cgroup's tasks are traced.
pub const SCOPE_IN: u64 = 2;
