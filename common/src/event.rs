//! A trace event: what happened, the record's header, the path buffer it is built in.

/// What happened to a dentry, as carried by a trace event.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    /// A lookup allocated a dentry for a name not in the cache.
    Alloc = 0,
    /// A lookup found nothing: the dentry stays in the cache without an inode.
    Negative = 1,
    /// The dentry got an inode (lookup hit on disk, or create).
    Positive = 2,
    /// An unlink turned a positive dentry negative.
    Delete = 3,
    /// `shrink_dcache_sb`: a whole superblock's unused dentries dropped.
    Shrink = 4,
    /// `prune_dcache_sb`: the memory-pressure shrinker ran on a superblock.
    Prune = 5,
}

impl Operation {
    pub fn from_u32(raw: u32) -> Option<Operation> {
        Some(match raw {
            0 => Operation::Alloc,
            1 => Operation::Negative,
            2 => Operation::Positive,
            3 => Operation::Delete,
            4 => Operation::Shrink,
            5 => Operation::Prune,
            _ => return None,
        })
    }

    /// The name in the TSV `operation` column.
    pub fn name(self) -> &'static str {
        match self {
            Operation::Alloc => "alloc",
            Operation::Negative => "negative",
            Operation::Positive => "positive",
            Operation::Delete => "delete",
            Operation::Shrink => "reclaim-shrink",
            Operation::Prune => "reclaim-prune",
        }
    }
}

/// Path components walked from the dentry towards the filesystem root, at most.
pub const MAX_DEPTH: usize = 16;
/// Longest component name (NAME_MAX) plus its NUL.
pub const NAME_BUF: usize = 256;
/// Bytes for components; an offset into it is masked with `PATH_BUF - 1` (a power of two) so
/// the verifier can prove every `NAME_BUF`-byte read stays inside `path`.
pub const PATH_BUF: usize = 4096;
pub const FSTYPE_LEN: usize = 16;
pub const COMM_LEN: usize = 16;

/// `EventHeader::flags`: the walk stopped before the root (depth or buffer exhausted).
pub const FLAG_TRUNCATED: u16 = 1;
/// `EventHeader::flags`: a lookup's result (`d_add`, `d_splice_alias`) on the dentry the lookup
/// allocated for it. The record stands for two events, the allocation and the result: one
/// path walk and one record per lookup instead of two. Userspace writes both lines.
pub const FLAG_ALLOCATED: u16 = 2;

/// Fixed part of a trace event. The ring buffer record is this header followed by
/// `path_len` bytes: the path's components leaf first, each NUL-terminated.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct EventHeader {
    /// CLOCK_MONOTONIC nanoseconds (`bpf_ktime_get_ns`).
    pub ts_ns: u64,
    pub cgroup_id: u64,
    pub pid: u32,
    /// An `Operation`.
    pub op: u32,
    pub comm: [u8; COMM_LEN],
    pub fstype: [u8; FSTYPE_LEN],
    pub path_len: u16,
    pub depth: u16,
    pub flags: u16,
    pub _pad: u16,
    /// For `Prune`: dentries freed (0 when not known).
    pub count: u64,
}

/// A whole event as built in a per-CPU scratch slot. `NAME_BUF` of slack after `PATH_BUF`
/// lets the last masked read overrun the logical end without leaving the value.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Event {
    pub header: EventHeader,
    pub path: [u8; PATH_BUF + NAME_BUF],
}
