//! The eBPF object's maps and globals as both sides name and size them, and the path cache's
//! per-CPU entries.

/// The longest directory path the path cache keeps.
pub const PREFIX_BUF: usize = 128;
/// Path cache slots per CPU (a directory's slot is picked from its address).
pub const PREFIX_SLOTS: u32 = 8;
/// Directories the path caches of all CPUs may hold at once (`CACHED_DIRS`); past it, no new
/// ones are cached until some are freed.
pub const MAX_CACHED_DIRS: u32 = 16384;

/// A directory's path as a walk writes it (components from the directory up to the
/// filesystem root, each NUL-terminated), cached per CPU so the next event under the same
/// directory walks only its own name.
///
/// The path stays right while the `GENERATION` counter has the value it had before the walk
/// read it: the counter moves when any dentry is renamed or moved (after `__d_move` returns)
/// and when a cached directory is freed (before its memory can be reused; `CACHED_DIRS`
/// tells which are cached).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct PathPrefix {
    /// The directory's `struct dentry` address; 0: empty.
    pub dentry: u64,
    pub generation: u64,
    pub len: u32,
    pub depth: u16,
    /// Non-zero: no kernel pattern occurs in `path` (a record under this directory is then
    /// tested on its leaf's name alone, and the path is copied only if that matches).
    pub clean: u16,
    pub path: [u8; PREFIX_BUF],
}

/// What the walk found at its leaf's directory, for the same event's later path-cache steps
/// (`PENDING_PREFIX`, one per CPU; the kernel's own scratch).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct PendingPrefix {
    /// The leaf's directory (`struct dentry` address).
    pub dir: u64,
    /// Where the directory's path starts in the walk's output.
    pub from: u64,
    /// `GENERATION` before the walk read the path.
    pub generation: u64,
    /// What the walk left for the steps after it (`PENDING_*` in the kernel programs).
    pub state: u64,
}

/// The last superblock a CPU saw (`SUPERBLOCKS`): a lookup storm stays on one filesystem, and
/// reading these costs four helper calls.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct SuperblockCache {
    /// The `struct super_block` address; 0: empty.
    pub sb: u64,
    /// Its filesystem type's name (`s_type->name`), NUL-padded, as two words.
    pub fstype: [u64; 2],
    /// Its root dentry (`s_root`).
    pub root: u64,
}

/// `SWITCH` slot: trace events on.
pub const SWITCH_TRACE: u32 = 0;
/// `SWITCH` slot: the path cache on (set once the probes that keep it right are attached).
pub const SWITCH_PATH_CACHE: u32 = 1;

/// Map and global names in the eBPF object.
pub mod names {
    pub const COUNTERS: &str = "COUNTERS";
    pub const HOT_COUNTERS: &str = "HOT_COUNTERS";
    pub const TARGETS: &str = "TARGETS";
    pub const EVENTS: &str = "EVENTS";
    pub const DROPS: &str = "DROPS";
    pub const FLOOR: &str = "FLOOR";
    pub const SWITCH: &str = "SWITCH";
    pub const OFFSETS: &str = "OFFSETS";
    pub const CONFIG: &str = "CONFIG";
    pub const PATTERNS: &str = "PATTERNS";
    pub const FILTERED: &str = "FILTERED";
    pub const PATH_CACHE_HITS: &str = "PATH_CACHE_HITS";
    pub const CONTENDED: &str = "CONTENDED";
    pub const SPILLED: &str = "SPILLED";
    pub const LIVE: &str = "LIVE";
    pub const BORN: &str = "BORN";
    pub const OWNER: &str = "OWNER";
    pub const UNTRACKED: &str = "UNTRACKED";
    pub const BASES: &str = "BASES";
    pub const ARMED_PODS: &str = "ARMED_PODS";
    /// The program that arms pods not created yet (`cgroup_mkdir`, a raw tracepoint).
    pub const ARM_PROGRAM: &str = "rtp_cgroup_mkdir";
    pub const ARM_TRACEPOINT: &str = "cgroup_mkdir";
}

/// A pod UID as the API server writes it (`8-4-4-4-12` hex digits and dashes): the key of
/// `ARMED_PODS`.
pub const POD_UID_LEN: usize = 36;
/// Bytes of a new cgroup's path the arming program reads: a pod's cgroup path is about 90
/// (`/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<UID>.slice`); under a
/// nested root (kind, a node in a container) somewhat more.
pub const ARM_PATH_BYTES: usize = 256;

/// Upper bound on distinct cgroups counted at once; a busy node has a few thousand.
pub const MAX_CGROUPS: u32 = 16384;
/// Upper bound on target cgroups (a pod's containers, or explicit ones).
pub const MAX_TARGETS: u32 = 1024;
/// Deepest cgroup level `Config::ancestor_levels` can name.
pub const MAX_CGROUP_LEVEL: u32 = 16;
