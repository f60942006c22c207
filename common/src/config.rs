//! The load-time settings of the programs.

/// Load-time settings (a read-only global: the verifier prunes what they switch off).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Config {
    /// Non-zero: emit trace events (counters always run).
    pub trace: u32,
    /// Non-zero: only tasks in `TARGETS` cgroups (or below them) produce events.
    pub scoped: u32,
    /// Bit n set: also match the task's ancestor cgroup at level n against `TARGETS`
    /// (a pod's cgroup, so its containers, restarted ones included, are covered).
    pub ancestor_levels: u32,
    /// Wake the consumer only once this many bytes wait in the ring buffer; below it, events
    /// are written without a wakeup and userspace drains them on its own tick. A wakeup per
    /// event costs an irq_work and often an IPI, more than the event itself.
    pub wakeup_bytes: u32,
    /// Benchmarks only (`BENCH_*`): stop an event part-way, to price each stage.
    pub bench: u32,
}

/// `Config::bench`: return after the scope check (no path walk, nothing written).
pub const BENCH_STOP_AFTER_SCOPE: u32 = 1;
/// `Config::bench`: walk the path, but write nothing to the ring buffer.
pub const BENCH_STOP_BEFORE_OUTPUT: u32 = 2;
